"""The seed's schema (go_partman guide) and small helpers to look at the catalog in tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

import partman

SEED_TABLES = ("events", "event_deliveries", "delivery_attempts")
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def create_seed_schema(conn: psycopg.Connection[Any], schema: str = "convoy") -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for name in SEED_TABLES:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id varchar NOT NULL, project_id varchar NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
                "PRIMARY KEY (id, created_at, project_id)) "
                "PARTITION BY RANGE (project_id, created_at)"
            ).format(sql.Identifier(schema, name))
        )


def seed_table(name: str | None, tenant: str | None = None, **policy: Any) -> partman.Table:
    fields: dict[str, Any] = {
        "name": name,
        "schema": "convoy",
        "tenant_id": tenant,
        "tenant_id_column": "project_id",
        "partition_by": "created_at",
        "partition_type": partman.PartitionType.RANGE,
        "retention_period": dt.timedelta(days=30),
        "partition_interval": dt.timedelta(days=1),
        "partition_count": 10,
    }
    fields.update(policy)
    return partman.Table(**fields)


def partitions(conn: psycopg.Connection[Any], schema: str, parent: str) -> list[tuple[str, str]]:
    """(partition name, bound text) of a parent, by name, with UTC bounds."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows = conn.execute(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
            "ORDER BY 2",
            (sql.Identifier(schema, parent).as_string(conn),),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def catalog_fingerprint(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every user relation, schema and comment: equal before and after means nothing changed."""
    return conn.execute(
        """
SELECT n.nspname::text, c.relname::text, c.relkind::text,
       pg_get_expr(c.relpartbound, c.oid), obj_description(c.oid, 'pg_class')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT nspname::text, NULL, 'schema', NULL, obj_description(oid, 'pg_namespace')
  FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'
 ORDER BY 1, 2 NULLS FIRST
"""
    ).fetchall()


def days_covered(
    conn: psycopg.Connection[Any], schema: str, parent: str, tenant: str
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The [from, to) ranges of one tenant's partitions, sorted."""
    result = []
    for _, bound in partitions(conn, schema, parent):
        if bound == "DEFAULT":
            continue
        inner = bound[len("FOR VALUES FROM (") : -1]
        lower, upper = inner.split(") TO (")
        t1, a = _split(lower)
        t2, b = _split(upper)
        if t1 == tenant == t2:
            result.append((dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)))
    return sorted(result)


def _split(values: str) -> tuple[str, str]:
    tenant, _, time = values.rpartition(", ")
    return tenant.strip("'").replace("''", "'"), time.strip("'")
