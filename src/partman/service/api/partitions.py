"""Every partition of the managed tables, and how far ahead they reach per table and tenant."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from starlette.exceptions import HTTPException

from ...db import reads
from ...decide.coverage import Coverage, Inventory
from ..shared import default_partition_rows, only
from .access import Access
from .host import Host
from .models import ArchiveOut, CoverageRowOut, PartitionOut, PartitionsOut


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["partitions"])
    meta = host.config.metadata_schema

    @api.get("/api/partitions", dependencies=[access.read])
    def partitions(
        response: Response,
        table: Annotated[str | None, Query(description='"schema.name"')] = None,
        tenant: Annotated[
            list[str] | None,
            Query(description="a tenant id; repeat it for several (default: every tenant)"),
        ] = None,
        limit: Annotated[
            int | None,
            Query(
                ge=1,
                description="with `table`: the partitions of this many of its tenants at most, "
                "in the order of its tenants listing (default: every one)",
            ),
        ] = None,
        offset: Annotated[int, Query(ge=0, description="with `table`: skip this many tenants")] = 0,
        search: Annotated[
            str | None,
            Query(description="with `table`: only tenant ids containing this (any case)"),
        ] = None,
        order: Annotated[
            Literal["tenant", "runway"],
            Query(description="with `table`: by tenant id, or shortest runway first"),
        ] = "tenant",
    ) -> PartitionsOut:
        """Every partition of the managed tables (owner, bounds, row estimate, default
        partitions flagged), per table and tenant how far ahead they reach, and the periods
        retention exported to Parquet and that are not restored (`archives`).

        At thousands of tenants that is megabytes: ask for some tenants only, by id (`tenant`,
        repeated) or a page of one table's tenants (`limit`, `offset`, `search`, `order`, as
        `GET /api/tables/{table}/tenants` pages them; the tenants the catalog shows but that
        are not registered come after the registered ones). The header `X-Total-Count` then
        says how many tenants match in all. A table's default partition is always included
        (it holds every tenant's strays)."""
        paged = limit is not None or offset > 0 or search is not None or order != "tenant"
        if paged and table is None:
            raise HTTPException(
                422, "limit, offset, search and order page one table's tenants: add table="
            )
        host.ensure_metadata()
        shared = host.inventory()
        with host.connection() as conn:
            records = reads.tables(conn, meta)
            if table is not None:
                records = [r for r in records if r.qualified_name == table]
                if not records:
                    reads.table(conn, meta, table)  # raises NotRegisteredError
            defaults = default_partition_rows(conn, shared, records)
            registered = (
                [t.tenant_id for t in reads.tenants(conn, meta, records[0].id)] if paged else []
            )
        everything = only(shared, table)
        wanted: list[str | None] | None = None if tenant is None else list(tenant)
        if paged:
            assert table is not None
            keys = _page_keys(everything, registered, search, order)
            response.headers["X-Total-Count"] = str(len(keys))
            page = keys[offset:] if limit is None else keys[offset : offset + limit]
            wanted = [*(tenant or []), *page]
        found = everything if wanted is None else only(everything, table, wanted)
        if wanted is not None:  # in the order asked for: a page's rows come in its order
            place = {k: i for i, k in reversed(list(enumerate(wanted)))}
            found.coverage.sort(key=lambda c: place.get(c.tenant, len(place)))
        shown = [p for p in found.partitions if wanted is None or not p.is_default]
        if wanted is not None:  # the default partition holds every tenant's strays
            shown += [p for p in everything.partitions if p.is_default]
        chosen = None if wanted is None else set(wanted)
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
            for a in host.manager.archives(table)
            if a.state != "restored" and (chosen is None or a.tenant in chosen)
        ]
        return PartitionsOut(
            archives=archived,
            now=host.manager.clock.now().isoformat(),
            partitions=[PartitionOut.model_validate(p.to_dict()) for p in shown],
            coverage=[CoverageRowOut.model_validate(c.to_dict()) for c in found.coverage],
            default_rows=defaults,
        )

    return api


def _page_keys(
    found: Inventory, registered: list[str], search: str | None, order: str
) -> list[str | None]:
    """A table's rows as the web UI pages them: its registered tenants in the order of its
    tenants listing, then the tenants the catalog shows that are not registered (a table
    without a tenant column: its one row)."""
    coverage: dict[str | None, Coverage] = {c.tenant: c for c in found.coverage}
    keys: list[str | None] = list(registered) if registered else list(coverage)
    known = set(keys)
    keys += sorted({p.tenant for p in found.partitions if p.tenant is not None} - known)
    if search:
        needle = search.casefold()
        keys = [k for k in keys if k is not None and needle in k.casefold()]
    if order == "runway":
        keys.sort(key=lambda k: (_runway(coverage.get(k)), k or ""))
    return keys


def _runway(coverage: Coverage | None) -> float:
    """Shortest first: no coverage at all, then the runway (in ids or seconds)."""
    if coverage is None:
        return -1.0
    if coverage.runway_ids is not None:
        return float(coverage.runway_ids)
    return coverage.runway_seconds
