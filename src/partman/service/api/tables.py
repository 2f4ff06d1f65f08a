"""The managed tables: policy, tenant and partition counts, shortest runway, default rows."""

from typing import Any

import psycopg
from fastapi import APIRouter

from ...db import reads
from ...decide.coverage import Coverage
from ...engine import lookups
from ...model import snapshot
from ..shared import default_partition_rows, only
from .access import Access
from .host import Host
from .models import TableOut, retention_out
from .params import TableName


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["tables"], dependencies=[access.read])
    meta = host.config.metadata_schema

    @api.get("/api/tables")
    def list_tables() -> list[TableOut]:
        """Every managed table with its policy, tenant and partition counts, shortest runway
        and rows waiting in its default partition."""
        host.ensure_metadata()
        found = host.inventory()
        with host.connection() as conn:
            records = reads.tables(conn, meta)
            counts = reads.tenant_counts(conn, meta)
            defaults = default_partition_rows(conn, found, records)
            strays = stray_tenants(conn, records, defaults)
        return [
            table_out(r, counts, defaults, found.coverage, found.partitions, strays)
            for r in records
        ]

    @api.get("/api/tables/{table}")
    def get_table(table: TableName) -> TableOut:
        host.ensure_metadata()
        found = only(host.inventory(), table)
        with host.connection() as conn:
            record = reads.table(conn, meta, table)
            counts = reads.tenant_counts(conn, meta)
            defaults = default_partition_rows(conn, found, [record])
            strays = stray_tenants(conn, [record], defaults)
        return table_out(record, counts, defaults, found.coverage, found.partitions, strays)

    return api


def stray_tenants(
    conn: psycopg.Connection[Any],
    records: list[snapshot.TableRecord],
    defaults: dict[str, int],
) -> dict[str, dict[str, int]]:
    """Per table, the tenants whose rows wait in its default partition (counted only where
    the default partition holds rows at all)."""
    return {
        r.qualified_name: lookups.default_rows_by_tenant(conn, r)
        for r in records
        if defaults.get(r.qualified_name, 0) > 0
    }


def table_out(
    record: snapshot.TableRecord,
    counts: dict[int, int],
    defaults: dict[str, int],
    coverage: list[Coverage],
    partitions: list[Any],
    strays: dict[str, dict[str, int]] | None = None,
) -> TableOut:
    mine = [c for c in coverage if c.table == record.qualified_name]
    ids = [c.runway_ids for c in mine if c.runway_ids is not None]
    return TableOut(
        table=record.qualified_name,
        schema_name=record.schema,
        name=record.name,
        tenant_column=record.tenant_column,
        time_column=record.time_column,
        partition_interval=str(record.interval),
        by_id=record.by_id,
        epoch=record.epoch,
        retention_period=retention_out(record.retention),
        retention_column=record.retention_column,
        partition_count=record.partition_count,
        retention_action=record.retention_action,
        archive_schema=record.archive_schema,
        default_partition=record.default_partition,
        backfill=record.backfill,
        sub_partition_by=record.sub_partition_by,
        sub_partition_modulus=record.sub_partition_modulus,
        tenant_partitioning=record.tenant_partitioning,
        storage_parameters=dict(record.storage_parameters),
        export_location=record.export_location,
        rollup_after=None if record.rollup_after is None else retention_out(record.rollup_after),
        rollup_interval=None if record.rollup_interval is None else str(record.rollup_interval),
        min_runway_ids=min(ids, default=None) if record.by_id else None,
        tenants=counts.get(record.id, 0),
        partitions=sum(
            1 for p in partitions if p.table == record.qualified_name and not p.is_default
        ),
        default_rows=defaults.get(record.qualified_name),
        default_rows_by_tenant=(strays or {}).get(record.qualified_name, {}),
        min_runway_seconds=min((c.runway_seconds for c in mine), default=None),
    )
