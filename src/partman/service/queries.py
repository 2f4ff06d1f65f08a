"""Read-only queries on partman's metadata for the API: tables, tenants, runs, audit log.

Writes never happen here: registration goes through `Manager` so that the API changes exactly
what the library would.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql

from ..db import metadata
from ..decide.validate import check_parent
from ..engine import store
from ..engine.world import default_rows, read_catalog
from ..errors import NotRegisteredError, TenantError
from ..model import snapshot
from ..model.columns import canonical_tenant
from ..model.text import iso


def tables(conn: psycopg.Connection[Any], schema: str) -> list[snapshot.TableRecord]:
    if not store.exists(conn, schema):
        return []
    rows = conn.execute(metadata.state_queries(schema)[0]).fetchall()
    return list(metadata.parse_state(rows, [], []).tables)


def table(conn: psycopg.Connection[Any], schema: str, qualified: str) -> snapshot.TableRecord:
    for record in tables(conn, schema):
        if record.qualified_name == qualified:
            return record
    raise NotRegisteredError(
        f"table {qualified} is not managed by partman (GET /api/tables lists the managed ones)"
    )


def tenants(
    conn: psycopg.Connection[Any], schema: str, table_id: int
) -> list[snapshot.TenantRecord]:
    rows = conn.execute(
        sql.SQL(
            "SELECT table_id, tenant_id, retention, partition_count, retention_action "
            "FROM {}.tenants WHERE table_id = %s ORDER BY tenant_id"
        ).format(sql.Identifier(schema)),
        (table_id,),
    ).fetchall()
    return [snapshot.TenantRecord(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def tenant_counts(conn: psycopg.Connection[Any], schema: str) -> dict[int, int]:
    if not store.exists(conn, schema):
        return {}
    rows = conn.execute(
        sql.SQL("SELECT table_id, count(*) FROM {}.tenants GROUP BY table_id").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def canonical(conn: psycopg.Connection[Any], record: snapshot.TableRecord, value: object) -> str:
    """A tenant id as partman stores it for this table (TenantError if the column cannot hold
    it; CatalogError if the table no longer has its registered shape)."""
    if record.tenant_column is None:
        raise TenantError(
            f"{record.qualified_name} has no tenant column; tenants apply to tables partitioned "
            "by RANGE (tenant column, time column)"
        )
    parent = read_catalog(conn, [(record.schema, record.name)]).get((record.schema, record.name))
    tenant_key, _ = check_parent(
        record.qualified_name,
        parent,
        tenant_column=record.tenant_column,
        time_column=record.time_column,
        interval=record.interval,
    )
    assert tenant_key is not None
    return str(canonical_tenant(value, tenant_key, table=record.qualified_name))


def default_partition_rows(
    conn: psycopg.Connection[Any], records: list[snapshot.TableRecord]
) -> dict[str, int]:
    """Exact rows (capped at a million) in each managed table's default partition."""
    if not records:
        return {}
    catalog = read_catalog(conn, [(r.schema, r.name) for r in records])
    defaults = {
        parent.qualified_name: (d.schema, d.name)
        for parent in catalog.values()
        if (d := parent.default_partition) is not None
    }
    return default_rows(conn, defaults)


def runs(conn: psycopg.Connection[Any], schema: str, limit: int) -> list[dict[str, Any]]:
    if not store.exists(conn, schema):
        return []
    rows = conn.execute(
        sql.SQL(
            "SELECT id, manager, started_at, finished_at, outcome, summary FROM {}.runs "
            "ORDER BY started_at DESC, id LIMIT %s"
        ).format(sql.Identifier(schema)),
        (limit,),
    ).fetchall()
    out = []
    for run_id, manager, started, finished, outcome, summary in rows:
        out.append(
            {
                "run_id": str(run_id),
                "manager": manager,
                "started_at": iso(started),
                "finished_at": iso(finished),
                "duration_ms": None
                if finished is None
                else round((finished - started).total_seconds() * 1000, 1),
                "outcome": outcome or "interrupted",
                "summary": summary or {},
            }
        )
    return out


AUDIT_COLUMNS = (
    "id",
    "at",
    "run_id",
    "operation",
    "parent_schema",
    "parent_name",
    "tenant_id",
    "partition_name",
    "outcome",
    "reason",
    "statement",
    "error",
    "duration_ms",
)


def audit(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    limit: int,
    before: int | None = None,
    table: str | None = None,
    outcome: str | None = None,
    run_id: uuid.UUID | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, `limit` at a time; returns the entries and the `before` of the next page."""
    if not store.exists(conn, schema):
        return [], None
    where: list[sql.Composable] = [sql.SQL("true")]
    params: list[Any] = []
    if before is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before)
    if table is not None:
        where.append(sql.SQL("parent_schema || '.' || parent_name = %s"))
        params.append(table)
    if outcome is not None:
        where.append(sql.SQL("outcome = %s"))
        params.append(outcome)
    if run_id is not None:
        where.append(sql.SQL("run_id = %s"))
        params.append(run_id)
    params.append(limit + 1)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM {}.audit_log WHERE {} ORDER BY id DESC LIMIT %s").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in AUDIT_COLUMNS),
            sql.Identifier(schema),
            sql.SQL(" AND ").join(where),
        ),
        params,
    ).fetchall()
    entries = []
    for row in rows[:limit]:
        entry = dict(zip(AUDIT_COLUMNS, row, strict=True))
        entry["at"] = iso(entry["at"])
        entry["run_id"] = None if entry["run_id"] is None else str(entry["run_id"])
        entry["table"] = (
            None
            if entry["parent_schema"] is None
            else f"{entry['parent_schema']}.{entry['parent_name']}"
        )
        entries.append(entry)
    following = entries[-1]["id"] if len(rows) > limit and entries else None
    return entries, following
