"""Every partition of the managed tables, and how far ahead they reach per table and tenant."""

from typing import Annotated

from fastapi import APIRouter, Query

from ...db import reads
from ...engine import lookups
from .access import Access
from .host import Host
from .models import ArchiveOut, CoverageRowOut, PartitionOut, PartitionsOut


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["partitions"])
    meta = host.config.metadata_schema

    @api.get("/api/partitions", dependencies=[access.read])
    def partitions(
        table: Annotated[str | None, Query(description='"schema.name"')] = None,
        tenant: Annotated[str | None, Query(description="a tenant id")] = None,
    ) -> PartitionsOut:
        """Every partition of the managed tables (owner, bounds, row estimate, default
        partitions flagged), per table and tenant how far ahead they reach, and the periods
        retention exported to Parquet and that are not restored (`archives`)."""
        host.ensure_metadata()
        with host.connection() as conn:
            records = reads.tables(conn, meta)
            if table is not None:
                records = [r for r in records if r.qualified_name == table]
                if not records:
                    reads.table(conn, meta, table)  # raises NotRegisteredError
            defaults = lookups.default_partition_rows(conn, records)
        found = host.manager.inventory(table, tenant)
        shown = [p for p in found.partitions if tenant is None or not p.is_default]
        if tenant is not None:  # the default partition holds every tenant's strays
            shown += [
                p
                for p in host.manager.inventory(table).partitions
                if p.is_default and (table is None or p.table == table)
            ]
        archived = [
            ArchiveOut.model_validate(
                {
                    "table": a.table,
                    "tenant": a.tenant,
                    "partition": a.partition,
                    "from": a.lower,
                    "to": a.upper,
                    "location": a.location,
                    "rows": a.rows,
                    "bytes": a.bytes,
                    "state": a.state,
                    "exported_at": a.exported_at.isoformat(),
                }
            )
            for a in host.manager.archives(table, tenant)
            if a.state != "restored"
        ]
        return PartitionsOut(
            archives=archived,
            now=host.manager.clock.now().isoformat(),
            partitions=[PartitionOut.model_validate(p.to_dict()) for p in shown],
            coverage=[CoverageRowOut.model_validate(c.to_dict()) for c in found.coverage],
            default_rows=defaults,
        )

    return api
