# Generated from src/partman/store_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""partman's metadata store, the part that needs a connection: migrations and registrations.

The metadata's shape and SQL are pure and live in `db/metadata.py` (the queries it reads, in
`db/reads.py`), its records in `model/snapshot.py`; this module is the source of truth for both
faces: `store.py` is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from ..db.metadata import SCHEMA_MARKER, migrations
from ..db.reads import SCHEMA_EXISTS, SCHEMA_FOUND, SchemaFound, schema_version
from ..errors import MetadataError
from ..model.snapshot import TableRecord, TenantRecord, retention_text


def migrate(conn: psycopg.Connection[Any], schema: str) -> int:
    """Create or upgrade the metadata schema; returns its version. Safe to call concurrently."""
    s = sql.Identifier(schema)
    steps = migrations(s)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '30s'")
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('partman:migrate:' || %s, 0))",
            (schema,),
        )
        current = _current_version(conn, schema)
        if current > len(steps):
            raise MetadataError(
                f"metadata schema {schema!r} is at version {current}, newer than this partman "
                f"knows ({len(steps)}); upgrade partman"
            )
        if current == len(steps):
            return current
        if current == 0:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
            conn.execute(
                sql.SQL("COMMENT ON SCHEMA {} IS {}").format(s, sql.Literal(SCHEMA_MARKER))
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {}.schema_version (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(s)
            )
        for version in range(current + 1, len(steps) + 1):
            conn.execute(steps[version - 1])
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_version (version) VALUES ({})").format(
                    s, sql.Literal(version)
                )
            )
    return len(steps)


def exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Whether partman's metadata tables are there (without creating anything)."""
    cur = conn.cursor(row_factory=scalar_row).execute(SCHEMA_EXISTS, (schema,))
    return bool(cur.fetchone())


def _current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    probe = conn.cursor(row_factory=class_row(SchemaFound))
    probe.execute(SCHEMA_FOUND, {"s": schema})
    found = probe.fetchone()
    assert found is not None
    if not found.exists:
        return 0
    if found.comment == SCHEMA_MARKER and found.has_version:
        version = conn.cursor(row_factory=scalar_row).execute(schema_version(schema))
        return int(version.fetchone() or 0)
    if found.relations or found.functions:
        shown = ", ".join((found.relations or [])[:5]) or f"{found.functions} functions"
        raise MetadataError(
            f"schema {schema!r} already holds objects that are not partman's ({shown}); "
            "choose another Config(metadata_schema=...) (the default is 'partman_meta')"
        )
    return 0  # an empty schema someone made for us: take it


class _Upserted(NamedTuple):
    id: int
    changed: bool


def upsert_table(
    conn: psycopg.Connection[Any], schema: str, record: TableRecord, *, update_policy: bool
) -> tuple[int, bool]:
    """Insert the table, or update its policy if it differs: (id, whether anything changed).

    Call inside a transaction. With `update_policy` False an existing row is left as it is.
    """
    s = sql.Identifier(schema)
    changed = sql.SQL(
        "(t.retention, t.partition_count, t.backfill, t.default_partition, t.retention_action, "
        "t.archive_schema, t.storage_parameters, t.retention_column, t.sub_partition_by, "
        "t.sub_partition_modulus, t.export_location, t.rollup_after, t.rollup_interval) "
        "IS DISTINCT FROM (EXCLUDED.retention, "
        "EXCLUDED.partition_count, EXCLUDED.backfill, EXCLUDED.default_partition, "
        "EXCLUDED.retention_action, EXCLUDED.archive_schema, EXCLUDED.storage_parameters, "
        "EXCLUDED.retention_column, EXCLUDED.sub_partition_by, EXCLUDED.sub_partition_modulus, "
        "EXCLUDED.export_location, EXCLUDED.rollup_after, EXCLUDED.rollup_interval)"
    )
    query = sql.SQL(
        """
WITH up AS (
    INSERT INTO {s}.managed_tables AS t (schema_name, table_name, tenant_column, time_column,
        partition_interval, retention, partition_count, backfill, default_partition,
        retention_action, archive_schema, storage_parameters, epoch, retention_column,
        sub_partition_by, sub_partition_modulus, tenant_partitioning, export_location,
        rollup_after, rollup_interval)
    VALUES (%(schema)s, %(name)s, %(tenant)s, %(time)s, %(interval)s, %(retention)s,
        %(count)s, %(backfill)s, %(default)s, %(action)s, %(archive)s, %(parameters)s,
        %(epoch)s, %(retention_column)s, %(sub_by)s, %(sub_modulus)s, %(tenant_partitioning)s,
        %(export_location)s, %(rollup_after)s, %(rollup_interval)s)
    ON CONFLICT (schema_name, table_name) DO UPDATE SET retention = EXCLUDED.retention,
        partition_count = EXCLUDED.partition_count, backfill = EXCLUDED.backfill,
        default_partition = EXCLUDED.default_partition,
        retention_action = EXCLUDED.retention_action, archive_schema = EXCLUDED.archive_schema,
        storage_parameters = EXCLUDED.storage_parameters,
        retention_column = EXCLUDED.retention_column,
        sub_partition_by = EXCLUDED.sub_partition_by,
        sub_partition_modulus = EXCLUDED.sub_partition_modulus,
        export_location = EXCLUDED.export_location, rollup_after = EXCLUDED.rollup_after,
        rollup_interval = EXCLUDED.rollup_interval, updated_at = now()
    WHERE {update} AND {changed}
    RETURNING id)
SELECT id, true AS changed FROM up
UNION ALL
SELECT id, false FROM {s}.managed_tables
 WHERE schema_name = %(schema)s AND table_name = %(name)s AND NOT EXISTS (SELECT FROM up)
"""
    ).format(s=s, update=sql.Literal(update_policy), changed=changed)
    params = {
        "schema": record.schema,
        "name": record.name,
        "tenant": record.tenant_column,
        "time": record.time_column,
        "interval": str(record.interval),
        "retention": retention_text(record.retention),
        "count": record.partition_count,
        "backfill": record.backfill,
        "default": record.default_partition,
        "action": record.retention_action,
        "archive": record.archive_schema,
        "parameters": Jsonb(dict(record.storage_parameters)),
        "epoch": record.epoch,
        "retention_column": record.retention_column,
        "sub_by": record.sub_partition_by,
        "sub_modulus": record.sub_partition_modulus,
        "tenant_partitioning": record.tenant_partitioning,
        "export_location": record.export_location,
        "rollup_after": retention_text(record.rollup_after),
        "rollup_interval": None if record.rollup_interval is None else str(record.rollup_interval),
    }
    for _ in range(3):
        cur = conn.cursor(row_factory=class_row(_Upserted)).execute(query, params)
        row = cur.fetchone()
        if row is not None:
            return row.id, row.changed
        # a concurrent registration committed the row after this statement's snapshot was
        # taken (so neither branch saw it); the next statement's snapshot does
    raise RuntimeError(f"could not register {record.qualified_name}")


TENANTS_PER_STATEMENT = 5000
"""Tenants written by one INSERT ... SELECT FROM unnest(arrays): 10,000 tenants are two
statements, not 10,000 (a statement each cost ~0.1 ms of the server's time even pipelined)."""


def upsert_tenants(
    conn: psycopg.Connection[Any], schema: str, table_id: int, tenants: Sequence[TenantRecord]
) -> int:
    """Insert or update tenants; returns how many were new or changed. A tenant given twice is
    written as last given."""
    unique = list({t.tenant_id: t for t in tenants}.values())
    query = sql.SQL(
        "INSERT INTO {}.tenants AS t (table_id, tenant_id, retention, partition_count, "
        "retention_action) "
        "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[]) "
        "ON CONFLICT (table_id, tenant_id) DO UPDATE SET "
        "retention = EXCLUDED.retention, partition_count = EXCLUDED.partition_count, "
        "retention_action = EXCLUDED.retention_action, updated_at = now() "
        "WHERE (t.retention, t.partition_count, t.retention_action) IS DISTINCT FROM "
        "(EXCLUDED.retention, EXCLUDED.partition_count, EXCLUDED.retention_action) "
        "RETURNING 1"
    ).format(sql.Identifier(schema))
    changed = 0
    for i in range(0, len(unique), TENANTS_PER_STATEMENT):
        chunk = unique[i : i + TENANTS_PER_STATEMENT]
        cur = conn.execute(
            query,
            (
                table_id,
                [t.tenant_id for t in chunk],
                [t.retention for t in chunk],
                [t.partition_count for t in chunk],
                [t.retention_action for t in chunk],
            ),
        )
        changed += cur.rowcount
    return changed
