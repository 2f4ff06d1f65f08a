"""Read-only views of partman's metadata, for `partman status`, `tenants list` and `partitions`.

Last runs (`runs`), recent problems (`audit_log`), managed tables and their tenants with the
policies they resolve to, partition sizes. Only SELECTs, composed with psycopg.sql, each group
in a READ ONLY transaction; nothing here creates the metadata schema when it is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ..decide.coverage import Coverage
from ..engine import store
from ..model.config import FOREVER
from ..model.intervals import Interval
from ..model.text import iso

DEFAULT_PROBLEM_WINDOW = dt.timedelta(hours=24)


@contextmanager
def _read_only(conn: psycopg.Connection[Any]) -> Iterator[None]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        yield


@dataclass(frozen=True)
class Run:
    """One maintenance pass, from `runs`."""

    id: str
    manager: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: str | None  # "ok" | "partial" | "failed"; None: unfinished (running, or died)
    summary: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "manager": self.manager,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "outcome": self.outcome,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class AuditProblem:
    """An operation that failed or was skipped, from `audit_log`."""

    at: dt.datetime
    run_id: str | None
    operation: str
    table: str | None
    tenant: str | None
    partition: str | None
    outcome: str
    reason: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "run_id": self.run_id,
            "operation": self.operation,
            "table": self.table,
            "tenant": self.tenant,
            "partition": self.partition,
            "outcome": self.outcome,
            "reason": self.reason,
            "error": self.error,
        }


@dataclass(frozen=True)
class ManagedTable:
    """A registered table and its table-wide policy."""

    table: str
    tenant_column: str | None
    time_column: str
    interval: str
    retention: str | None  # None: forever
    partition_count: int
    retention_action: str
    archive_schema: str | None
    default_partition: bool
    backfill: bool
    tenants: int

    @property
    def period(self) -> dt.timedelta:
        return Interval.parse(self.interval).approx

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "tenant_column": self.tenant_column,
            "time_column": self.time_column,
            "partition_interval": self.interval,
            "retention_period": self.retention or "forever",
            "partition_count": self.partition_count,
            "retention_action": self.retention_action,
            "archive_schema": self.archive_schema,
            "default_partition": self.default_partition,
            "backfill": self.backfill,
            "tenants": self.tenants,
        }


@dataclass(frozen=True)
class TenantPolicy:
    """A registered tenant: its own policy fields (None inherits) and what they resolve to."""

    table: str
    tenant: str
    own_retention: str | None  # None: inherit; "forever"; or a period
    own_partition_count: int | None
    own_retention_action: str | None
    retention: str  # effective: a period or "forever"
    partition_count: int
    retention_action: str
    registered_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "tenant": self.tenant,
            "retention_period": self.retention,
            "partition_count": self.partition_count,
            "retention_action": self.retention_action,
            "own": {
                "retention_period": self.own_retention,
                "partition_count": self.own_partition_count,
                "retention_action": self.own_retention_action,
            },
            "registered_at": iso(self.registered_at),
        }


def metadata_exists(conn: psycopg.Connection[Any], meta: str) -> bool:
    return store.exists(conn, meta)


def last_runs(conn: psycopg.Connection[Any], meta: str, limit: int = 5) -> list[Run]:
    query = sql.SQL(
        "SELECT id::text, manager, started_at, finished_at, outcome, summary "
        "FROM {}.runs ORDER BY started_at DESC, finished_at DESC NULLS FIRST LIMIT {}"
    ).format(sql.Identifier(meta), sql.Literal(limit))
    with _read_only(conn):
        rows = conn.execute(query).fetchall()
    return [Run(r[0], r[1], r[2], r[3], r[4], r[5] or {}) for r in rows]


def recent_problems(
    conn: psycopg.Connection[Any],
    meta: str,
    since: dt.datetime,
    limit: int = 20,
) -> list[AuditProblem]:
    """Operations that failed or were skipped since `since`, newest first."""
    query = sql.SQL(
        "SELECT at, run_id::text, operation, parent_schema, parent_name, tenant_id, "
        "partition_name, outcome, reason, error FROM {}.audit_log "
        "WHERE outcome <> 'ok' AND at >= {} ORDER BY at DESC, id DESC LIMIT {}"
    ).format(sql.Identifier(meta), sql.Literal(since), sql.Literal(limit))
    with _read_only(conn):
        rows = conn.execute(query).fetchall()
    return [
        AuditProblem(
            at=r[0],
            run_id=r[1],
            operation=r[2],
            table=None if r[4] is None else f"{r[3]}.{r[4]}",
            tenant=r[5],
            partition=r[6],
            outcome=r[7],
            reason=r[8],
            error=r[9],
        )
        for r in rows
    ]


def managed_tables(conn: psycopg.Connection[Any], meta: str) -> list[ManagedTable]:
    s = sql.Identifier(meta)
    query = sql.SQL(
        "SELECT t.schema_name, t.table_name, t.tenant_column, t.time_column, "
        "t.partition_interval, t.retention, t.partition_count, t.retention_action, "
        "t.archive_schema, t.default_partition, t.backfill, "
        "(SELECT count(*) FROM {s}.tenants n WHERE n.table_id = t.id) "
        "FROM {s}.managed_tables t ORDER BY t.schema_name, t.table_name"
    ).format(s=s)
    with _read_only(conn):
        rows = conn.execute(query).fetchall()
    return [
        ManagedTable(
            table=f"{r[0]}.{r[1]}",
            tenant_column=r[2],
            time_column=r[3],
            interval=r[4],
            retention=r[5],
            partition_count=r[6],
            retention_action=r[7],
            archive_schema=r[8],
            default_partition=r[9],
            backfill=r[10],
            tenants=int(r[11]),
        )
        for r in rows
    ]


def tenant_policies(
    conn: psycopg.Connection[Any], meta: str, table: str | None = None
) -> list[TenantPolicy]:
    """Registered tenants (of one "schema.name" table, or all), with their policies."""
    s = sql.Identifier(meta)
    where: sql.Composable = sql.SQL("")
    if table is not None:
        where = sql.SQL("WHERE t.schema_name || '.' || t.table_name = {}").format(
            sql.Literal(table)
        )
    query = sql.SQL(
        "SELECT t.schema_name, t.table_name, n.tenant_id, n.retention, n.partition_count, "
        "n.retention_action, t.retention, t.partition_count, t.retention_action, n.created_at "
        "FROM {s}.tenants n JOIN {s}.managed_tables t ON t.id = n.table_id {where} "
        "ORDER BY t.schema_name, t.table_name, n.tenant_id"
    ).format(s=s, where=where)
    with _read_only(conn):
        rows = conn.execute(query).fetchall()
    return [
        TenantPolicy(
            table=f"{r[0]}.{r[1]}",
            tenant=r[2],
            own_retention=r[3],
            own_partition_count=r[4],
            own_retention_action=r[5],
            retention=r[3] or r[6] or FOREVER,
            partition_count=r[7] if r[4] is None else r[4],
            retention_action=r[5] or r[8],
            registered_at=r[9],
        )
        for r in rows
    ]


def sizes(conn: psycopg.Connection[Any], meta: str) -> dict[str, int]:
    """pg_total_relation_size of every managed parent ("schema.name": the sum of its
    partitions) and of each of their partitions."""
    query = sql.SQL(
        """
SELECT pn.nspname::text || '.' || p.relname::text, cn.nspname::text || '.' || c.relname::text,
       pg_total_relation_size(c.oid)
  FROM {}.managed_tables m
  JOIN pg_namespace pn ON pn.nspname = m.schema_name
  JOIN pg_class p ON p.relnamespace = pn.oid AND p.relname = m.table_name
  JOIN pg_inherits i ON i.inhparent = p.oid
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace cn ON cn.oid = c.relnamespace
"""
    ).format(sql.Identifier(meta))
    with _read_only(conn):
        rows = conn.execute(query).fetchall()
    out: dict[str, int] = {}
    for parent, child, size in rows:
        out[child] = int(size)
        out[parent] = out.get(parent, 0) + int(size)
    return out


@dataclass(frozen=True)
class Runway:
    """A (table, tenant) whose partitions do not reach one period ahead of now."""

    coverage: Coverage
    period: dt.timedelta
    partition_count: int

    def message(self) -> str:
        who = self.coverage.table + (
            "" if self.coverage.tenant is None else f" tenant {self.coverage.tenant}"
        )
        if self.coverage.covered_until is None:
            return f"{who}: no partition covers now; inserts fail (or go to a default partition)"
        return (
            f"{who}: covered only until {self.coverage.covered_until} (less than one "
            f"{_span(self.period)} period ahead); run `partman apply`"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.coverage.to_dict(),
            "period_seconds": self.period.total_seconds(),
            "partition_count": self.partition_count,
        }


def short_runways(
    coverage: list[Coverage], tables: list[ManagedTable], tenants: list[TenantPolicy]
) -> list[Runway]:
    """Coverage below one period ahead, where the policy asks for partitions ahead (a
    partition_count of 0 asks for the current period only, so it is not counted)."""
    by_table = {t.table: t for t in tables}
    counts = {(t.table, t.tenant): t.partition_count for t in tenants}
    out = []
    for c in coverage:
        table = by_table.get(c.table)
        if table is None:
            continue
        count = counts.get((c.table, c.tenant or ""), table.partition_count)
        period = table.period
        if (count > 0 and c.runway_seconds < period.total_seconds()) or (
            count == 0 and c.covered_until is None
        ):
            out.append(Runway(c, period, count))
    return out


def _span(period: dt.timedelta) -> str:
    if period % dt.timedelta(days=1) == dt.timedelta():
        days = period.days
        return "1-day" if days == 1 else f"{days}-day"
    hours = int(period.total_seconds() // 3600)
    return "1-hour" if hours == 1 else f"{hours}-hour"


