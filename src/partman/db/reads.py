"""Every read-only query on partman's metadata, each returning named rows (`psycopg.rows`).

For `partman status`, `tenants list` and `partitions` (last runs, recent problems, managed tables
and their tenants with the policies they resolve to, partition sizes), for the JSON API (tables,
tenants, runs, the audit log), for registration (what is registered already) and for the
engine's own checks (is the metadata there, at which version). Only SELECTs, composed with
psycopg.sql; nothing here creates the metadata schema when it is missing. The status reads run
in a READ ONLY transaction each; the others run as the caller's connection is (the API's are in
autocommit; registration's inside a migration's transaction, which must not be committed).

Not here: the maintenance pass's own read (`metadata.state_queries`, parsed by
`metadata.parse_state`, sent by `engine/world` in one round trip with the catalog). It runs
every pass over tens of thousands of rows and reads positional tuples on purpose; `tables` and
`read_registered` reuse its parser, so that a `TableRecord` is built in one place only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import RowFactory, class_row, dict_row, scalar_row

from ..errors import NotRegisteredError
from ..model.config import FOREVER, table_interval
from ..model.keys import IdInterval
from ..model.snapshot import State, TableRecord, TenantRecord
from ..model.text import iso
from . import metadata

DEFAULT_PROBLEM_WINDOW = dt.timedelta(hours=24)

T = TypeVar("T")


def _rows(
    conn: psycopg.Connection[Any],
    row: RowFactory[T],
    query: sql.SQL | sql.Composed,
    params: Sequence[Any] | None = None,
) -> list[T]:
    with conn.cursor(row_factory=row) as cur:
        return cur.execute(query, params).fetchall()


@contextmanager
def _read_only(conn: psycopg.Connection[Any]) -> Iterator[None]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        yield


# -- the metadata schema itself (the engine sends these too) ----------------------------------

SCHEMA_EXISTS = sql.SQL("SELECT to_regclass(quote_ident(%s) || '.managed_tables') IS NOT NULL")
"""Whether partman's metadata tables are in the schema named by the one parameter."""


def metadata_exists(conn: psycopg.Connection[Any], meta: str) -> bool:
    """Whether partman's metadata tables are there (without creating anything)."""
    return bool(_rows(conn, scalar_row, SCHEMA_EXISTS, (meta,))[0])


@dataclass(frozen=True)
class SchemaFound:
    """What a schema name holds, for `store.migrate` to tell partman's metadata (and its
    version) from an empty schema someone made for it, or from someone else's schema."""

    exists: bool
    comment: str | None
    has_version: bool
    relations: list[str] | None
    functions: int


SCHEMA_FOUND = sql.SQL(
    """
SELECT n.oid IS NOT NULL AS exists,
       obj_description(n.oid, 'pg_namespace') AS comment,
       to_regclass(quote_ident(%(s)s) || '.schema_version') IS NOT NULL AS has_version,
       (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
         WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')) AS relations,
       (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid) AS functions
  FROM (SELECT %(s)s::text AS name) w LEFT JOIN pg_namespace n ON n.nspname = w.name
"""
)
"""One `SchemaFound` row for the schema named by the parameter `s`."""


def schema_version(meta: str) -> sql.Composed:
    """The version partman's metadata is at (0 when none is recorded): one scalar."""
    return sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(
        sql.Identifier(meta)
    )


# -- registrations -----------------------------------------------------------------------------


def read_registered(conn: psycopg.Connection[Any], meta: str) -> State:
    """Registered tables and tenants (not owned partitions); empty when there is no metadata.

    Plain SELECTs in the caller's transaction (`sync.read_state` opens a REPEATABLE READ
    transaction of its own, which cannot be done inside a migration's)."""
    if not metadata_exists(conn, meta):
        return State(tables=(), tenants={}, owned={})
    tables_query, tenants_query, *_ = metadata.state_queries(meta)
    tables = conn.execute(tables_query).fetchall()
    tenants = conn.execute(tenants_query).fetchall()
    return metadata.parse_state(tables, tenants, [])


def tables(conn: psycopg.Connection[Any], meta: str) -> list[TableRecord]:
    """Every registered table, in registration order; none when there is no metadata."""
    if not metadata_exists(conn, meta):
        return []
    rows = conn.execute(metadata.state_queries(meta)[0]).fetchall()
    return list(metadata.parse_state(rows, [], []).tables)


def table(conn: psycopg.Connection[Any], meta: str, qualified: str) -> TableRecord:
    """One registered "schema.name" (NotRegisteredError, worded for the API, if it is not)."""
    for record in tables(conn, meta):
        if record.qualified_name == qualified:
            return record
    raise NotRegisteredError(
        f"table {qualified} is not managed by partman (GET /api/tables lists the managed ones)"
    )


def tenants(conn: psycopg.Connection[Any], meta: str, table_id: int) -> list[TenantRecord]:
    """A table's registered tenants, by id, with their own policy (None inherits)."""
    query = sql.SQL(
        "SELECT table_id, tenant_id, retention, partition_count, retention_action "
        "FROM {}.tenants WHERE table_id = %s ORDER BY tenant_id"
    ).format(sql.Identifier(meta))
    return _rows(conn, class_row(TenantRecord), query, (table_id,))


class _TenantCount(NamedTuple):
    table_id: int
    tenants: int


def tenant_counts(conn: psycopg.Connection[Any], meta: str) -> dict[int, int]:
    """Table id -> registered tenants (tables without tenants are absent)."""
    if not metadata_exists(conn, meta):
        return {}
    query = sql.SQL(
        "SELECT table_id, count(*) AS tenants FROM {}.tenants GROUP BY table_id"
    ).format(sql.Identifier(meta))
    return {r.table_id: r.tenants for r in _rows(conn, class_row(_TenantCount), query)}


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
    storage_parameters: dict[str, Any] = field(default_factory=dict, hash=False)
    """Each new partition's WITH (...), e.g. {"fillfactor": 90}."""

    @property
    def period(self) -> dt.timedelta:
        """One partition's length (an id table's: its width, an id counted as a second, as
        `decide.coverage.Runway` does)."""
        interval = table_interval(self.interval)
        if isinstance(interval, IdInterval):
            return dt.timedelta(seconds=interval.width)
        return interval.approx

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
            "storage_parameters": self.storage_parameters,
        }


def managed_tables(conn: psycopg.Connection[Any], meta: str) -> list[ManagedTable]:
    query = sql.SQL(
        """
SELECT t.schema_name || '.' || t.table_name AS "table", t.tenant_column, t.time_column,
       t.partition_interval AS "interval", t.retention, t.partition_count, t.retention_action,
       t.archive_schema, t.default_partition, t.backfill,
       (SELECT count(*) FROM {s}.tenants n WHERE n.table_id = t.id) AS tenants,
       t.storage_parameters
  FROM {s}.managed_tables t ORDER BY t.schema_name, t.table_name
"""
    ).format(s=sql.Identifier(meta))
    with _read_only(conn):
        return _rows(conn, class_row(ManagedTable), query)


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


def tenant_policies(
    conn: psycopg.Connection[Any], meta: str, table: str | None = None
) -> list[TenantPolicy]:
    """Registered tenants (of one "schema.name" table, or all), with their policies."""
    where: sql.Composable = sql.SQL("")
    if table is not None:
        where = sql.SQL("WHERE t.schema_name || '.' || t.table_name = {}").format(
            sql.Literal(table)
        )
    query = sql.SQL(
        """
SELECT t.schema_name || '.' || t.table_name AS "table", n.tenant_id AS tenant,
       n.retention AS own_retention, n.partition_count AS own_partition_count,
       n.retention_action AS own_retention_action,
       coalesce(n.retention, t.retention, {forever}) AS retention,
       coalesce(n.partition_count, t.partition_count) AS partition_count,
       coalesce(n.retention_action, t.retention_action) AS retention_action,
       n.created_at AS registered_at
  FROM {s}.tenants n JOIN {s}.managed_tables t ON t.id = n.table_id {where}
 ORDER BY t.schema_name, t.table_name, n.tenant_id
"""
    ).format(s=sql.Identifier(meta), where=where, forever=sql.Literal(FOREVER))
    with _read_only(conn):
        return _rows(conn, class_row(TenantPolicy), query)


# -- history: runs and the audit log -----------------------------------------------------------


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

    def to_api(self) -> dict[str, Any]:
        """The JSON API's shape: `outcome` "interrupted" while unfinished, and a duration."""
        finished = self.finished_at
        return {
            "run_id": self.id,
            "manager": self.manager,
            "started_at": iso(self.started_at),
            "finished_at": iso(finished),
            "duration_ms": None
            if finished is None
            else round((finished - self.started_at).total_seconds() * 1000, 1),
            "outcome": self.outcome or "interrupted",
            "summary": self.summary,
        }


def _runs(conn: psycopg.Connection[Any], meta: str, order: sql.Composable, limit: int) -> list[Run]:
    query = sql.SQL(
        "SELECT r.id::text AS id, r.manager, r.started_at, r.finished_at, r.outcome, "
        "coalesce(r.summary, '{{}}') AS summary FROM {}.runs r ORDER BY {} LIMIT {}"
    ).format(sql.Identifier(meta), order, sql.Literal(limit))
    return _rows(conn, class_row(Run), query)


def last_runs(conn: psycopg.Connection[Any], meta: str, limit: int = 5) -> list[Run]:
    """The newest passes, a running one first among those started at the same time."""
    with _read_only(conn):
        return _runs(
            conn, meta, sql.SQL("r.started_at DESC, r.finished_at DESC NULLS FIRST"), limit
        )


def runs(conn: psycopg.Connection[Any], meta: str, limit: int) -> list[dict[str, Any]]:
    """The newest passes, in the JSON API's shape (`Run.to_api`)."""
    if not metadata_exists(conn, meta):
        return []
    return [run.to_api() for run in _runs(conn, meta, sql.SQL("r.started_at DESC, r.id"), limit)]


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


def recent_problems(
    conn: psycopg.Connection[Any],
    meta: str,
    since: dt.datetime,
    limit: int = 20,
) -> list[AuditProblem]:
    """Operations that failed or were skipped since `since`, newest first."""
    query = sql.SQL(
        """
SELECT at, run_id::text AS run_id, operation, parent_schema || '.' || parent_name AS "table",
       tenant_id AS tenant, partition_name AS "partition", outcome, reason, error
  FROM {}.audit_log WHERE outcome <> 'ok' AND at >= {} ORDER BY at DESC, id DESC LIMIT {}
"""
    ).format(sql.Identifier(meta), sql.Literal(since), sql.Literal(limit))
    with _read_only(conn):
        return _rows(conn, class_row(AuditProblem), query)


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
"""An audit entry's fields in the JSON API, in order (then "table", "schema.name")."""


def audit(
    conn: psycopg.Connection[Any],
    meta: str,
    *,
    limit: int,
    before: int | None = None,
    table: str | None = None,
    outcome: str | None = None,
    run_id: uuid.UUID | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, `limit` at a time; returns the entries and the `before` of the next page."""
    if not metadata_exists(conn, meta):
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
    query = sql.SQL("SELECT {} FROM {}.audit_log WHERE {} ORDER BY id DESC LIMIT %s").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in AUDIT_COLUMNS),
        sql.Identifier(meta),
        sql.SQL(" AND ").join(where),
    )
    rows = _rows(conn, dict_row, query, params)
    entries = []
    for entry in rows[:limit]:
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


# -- sizes -------------------------------------------------------------------------------------


class _Size(NamedTuple):
    parent: str
    partition: str
    bytes: int


def sizes(conn: psycopg.Connection[Any], meta: str) -> dict[str, int]:
    """pg_total_relation_size of every managed parent ("schema.name": the sum of its
    partitions) and of each of their partitions."""
    query = sql.SQL(
        """
SELECT pn.nspname::text || '.' || p.relname::text AS parent,
       cn.nspname::text || '.' || c.relname::text AS "partition",
       pg_total_relation_size(c.oid) AS bytes
  FROM {}.managed_tables m
  JOIN pg_namespace pn ON pn.nspname = m.schema_name
  JOIN pg_class p ON p.relnamespace = pn.oid AND p.relname = m.table_name
  JOIN pg_inherits i ON i.inhparent = p.oid
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace cn ON cn.oid = c.relnamespace
"""
    ).format(sql.Identifier(meta))
    with _read_only(conn):
        rows = _rows(conn, class_row(_Size), query)
    out: dict[str, int] = {}
    for r in rows:
        out[r.partition] = int(r.bytes)
        out[r.parent] = out.get(r.parent, 0) + int(r.bytes)
    return out


@dataclass(frozen=True)
class ArchiveTotal:
    """The Parquet archives of one table in one state: how many files, rows and bytes, and
    when the newest was written (`partman_archive_*` metrics)."""

    table: str
    state: str
    files: int
    rows: int
    bytes: int
    last_exported: dt.datetime


def archive_totals(conn: psycopg.Connection[Any], meta: str) -> list[ArchiveTotal]:
    """One row per (table, state) of partman's archive manifest; none before any export."""
    query = sql.SQL(
        """
SELECT parent_schema || '.' || parent_name AS "table", state, count(*) AS files,
       sum(rows)::int8 AS rows, sum(bytes)::int8 AS bytes, max(exported_at) AS last_exported
  FROM {}.archives
 GROUP BY 1, 2
 ORDER BY 1, 2
"""
    ).format(sql.Identifier(meta))
    with _read_only(conn):
        return _rows(conn, class_row(ArchiveTotal), query)
