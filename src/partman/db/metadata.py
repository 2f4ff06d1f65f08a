"""partman's metadata, as data: its schema's migrations, its records and the SQL that reads and
writes them. Pure: `store.py` (generated from `store_async.py`) sends what needs a connection.

It holds what the catalog cannot: which tables and tenants are managed and with which policy,
which partitions partman created or adopted (the only ones it will ever drop), and an audit
row for every operation applied. Reads for a pass are composed here and sent by `world.py` in
the same round trip as the catalog query.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from ..model.config import table_interval, table_retention
from ..model.intervals import Interval, parse_retention
from ..model.snapshot import (
    OwnedPartition,
    State,
    TableRecord,
    TenantRecord,
)
from ..model.storage import Value

SCHEMA_MARKER = "partman metadata (https://pypi.org/project/partman); do not edit by hand"


def migrations(s: sql.Identifier) -> list[sql.Composed]:
    """Append only: a released migration is never edited, a change is a new entry."""
    return [
        sql.SQL(
            """
CREATE TABLE {s}.managed_tables (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    tenant_column text,
    time_column text NOT NULL,
    partition_type text NOT NULL DEFAULT 'range',
    partition_interval text NOT NULL,
    retention text,
    partition_count integer NOT NULL,
    backfill boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schema_name, table_name)
);
COMMENT ON COLUMN {s}.managed_tables.retention IS 'NULL keeps partitions forever';
CREATE TABLE {s}.tenants (
    table_id bigint NOT NULL REFERENCES {s}.managed_tables (id) ON DELETE CASCADE,
    tenant_id text NOT NULL,
    retention text,
    partition_count integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_id, tenant_id)
);
COMMENT ON COLUMN {s}.tenants.retention IS 'NULL inherits the table''s; ''forever'' keeps all';
CREATE TABLE {s}.partitions (
    schema_name text NOT NULL,
    partition_name text NOT NULL,
    parent_schema text NOT NULL,
    parent_name text NOT NULL,
    tenant_id text,
    lower_bound text NOT NULL,
    upper_bound text NOT NULL,
    origin text NOT NULL CHECK (origin IN ('created', 'adopted')),
    previous_comment text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, partition_name)
);
CREATE INDEX ON {s}.partitions (parent_schema, parent_name);
CREATE TABLE {s}.runs (
    id uuid PRIMARY KEY,
    manager text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    outcome text,
    summary jsonb
);
CREATE INDEX ON {s}.runs (started_at);
CREATE TABLE {s}.audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id uuid,
    operation text NOT NULL,
    parent_schema text,
    parent_name text,
    tenant_id text,
    partition_name text,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'failed', 'skipped')),
    reason text,
    statement text,
    error text,
    duration_ms double precision
);
CREATE INDEX ON {s}.audit_log (at);
"""
        ).format(s=s),
        sql.SQL(
            """
ALTER TABLE {s}.managed_tables
    ADD COLUMN default_partition boolean NOT NULL DEFAULT false,
    ADD COLUMN retention_action text NOT NULL DEFAULT 'drop'
        CHECK (retention_action IN ('drop', 'detach', 'archive')),
    ADD COLUMN archive_schema text;
ALTER TABLE {s}.tenants
    ADD COLUMN retention_action text CHECK (retention_action IN ('drop', 'detach', 'archive'));
ALTER TABLE {s}.partitions
    ADD COLUMN state text NOT NULL DEFAULT 'attached'
        CHECK (state IN ('attached', 'staging', 'detaching', 'detached', 'kept', 'archived')),
    ADD COLUMN action text;
COMMENT ON COLUMN {s}.partitions.state IS
    'attached: in use; staging: being filled from the default partition; detaching/detached: '
    'retention under way (action says what comes next); kept/archived: retired by retention';
"""
        ).format(s=s),
        sql.SQL(
            """
ALTER TABLE {s}.managed_tables
    ADD COLUMN storage_parameters jsonb NOT NULL DEFAULT '{{}}'
        CHECK (jsonb_typeof(storage_parameters) = 'object');
COMMENT ON COLUMN {s}.managed_tables.storage_parameters IS
    'WITH (...) of each new partition, e.g. {{"fillfactor": 90}}';
"""
        ).format(s=s),
        sql.SQL(
            """
ALTER TABLE {s}.managed_tables
    ADD COLUMN epoch text
        CHECK (epoch IN ('seconds', 'milliseconds', 'microseconds', 'nanoseconds')),
    ADD COLUMN retention_column text,
    ADD COLUMN sub_partition_by text,
    ADD COLUMN sub_partition_modulus integer CHECK (sub_partition_modulus BETWEEN 2 AND 1024),
    ADD COLUMN tenant_partitioning text NOT NULL DEFAULT 'range'
        CHECK (tenant_partitioning IN ('range', 'list'));
COMMENT ON COLUMN {s}.managed_tables.partition_interval IS
    'a period of time, or digits alone: the ids in one window';
COMMENT ON COLUMN {s}.managed_tables.retention IS
    'NULL keeps partitions forever; digits alone: a distance in ids below max(id)';
"""
        ).format(s=s),
        sql.SQL(
            """
ALTER TABLE {s}.managed_tables
    DROP CONSTRAINT managed_tables_retention_action_check,
    ADD CONSTRAINT managed_tables_retention_action_check
        CHECK (retention_action IN ('drop', 'detach', 'archive', 'export')),
    ADD COLUMN export_location text;
COMMENT ON COLUMN {s}.managed_tables.export_location IS
    'where retention_action export writes Parquet files: a directory or an fsspec URL';
ALTER TABLE {s}.tenants
    DROP CONSTRAINT tenants_retention_action_check,
    ADD CONSTRAINT tenants_retention_action_check
        CHECK (retention_action IN ('drop', 'detach', 'archive', 'export'));
CREATE TABLE {s}.archives (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_schema text NOT NULL,
    parent_name text NOT NULL,
    partition_schema text NOT NULL,
    partition_name text NOT NULL,
    tenant_id text,
    lower_bound text NOT NULL,
    upper_bound text NOT NULL,
    location text NOT NULL,
    rows bigint NOT NULL CHECK (rows >= 0),
    bytes bigint NOT NULL CHECK (bytes >= 0),
    checksum text NOT NULL,
    columns jsonb NOT NULL CHECK (jsonb_typeof(columns) = 'array'),
    state text NOT NULL DEFAULT 'archived' CHECK (state IN ('archived', 'restoring', 'restored')),
    exported_at timestamptz NOT NULL DEFAULT now(),
    restored_at timestamptz
);
CREATE INDEX ON {s}.archives (parent_schema, parent_name, lower_bound);
COMMENT ON TABLE {s}.archives IS
    'one row per partition retention exported to Parquet, written only once the file was read '
    'back and its row count and checksum matched the partition';
"""
        ).format(s=s),
        sql.SQL(
            """
CREATE TABLE {s}.conversions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    twin_name text NOT NULL,
    old_name text NOT NULL,
    key_columns text[] NOT NULL,
    key_types text[] NOT NULL,
    settings jsonb NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
    state text NOT NULL DEFAULT 'planned'
        CHECK (state IN ('planned', 'twin', 'capture', 'copy', 'verify', 'swap', 'finished')),
    copy_cursor text[],
    copy_done boolean NOT NULL DEFAULT false,
    rows_copied bigint NOT NULL DEFAULT 0,
    rows_replayed bigint NOT NULL DEFAULT 0,
    verified_rows bigint,
    checksum text,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (schema_name, table_name)
);
COMMENT ON TABLE {s}.conversions IS
    'partman convert: one row per table being converted to a partitioned one; state is the '
    'last step done, copy_cursor the last primary key copied (as text), both written in the '
    'transaction that did the work';
"""
        ).format(s=s),
        sql.SQL(
            """
ALTER TABLE {s}.managed_tables
    ADD COLUMN rollup_after text,
    ADD COLUMN rollup_interval text,
    ADD CONSTRAINT managed_tables_rollup_check
        CHECK ((rollup_after IS NULL) = (rollup_interval IS NULL));
COMMENT ON COLUMN {s}.managed_tables.rollup_after IS
    'roll-ups: coarse periods wholly older than now minus this are merged (NULL: never)';
COMMENT ON COLUMN {s}.managed_tables.rollup_interval IS
    'roll-ups: the coarse period fine partitions are merged into, e.g. 1 month';
COMMENT ON COLUMN {s}.partitions.action IS
    'detaching/detached: what retention does next; staging with action rollup: a coarse '
    'partition being built detached by a roll-up';
"""
        ).format(s=s),
    ]


def latest_version(s: sql.Identifier) -> int:
    return len(migrations(s))


OWNED_RECORD = (
    "parent_schema",
    "parent_name",
    "tenant_id",
    "origin",
    "state",
    "action",
    "lower_bound",
    "upper_bound",
)
"""The columns of an ownership record after its (schema_name, partition_name), in
`OwnedPartition`'s order (which adds whether the table exists and is attached)."""


def owned_rows(schema: str) -> sql.Composed:
    """partman's ownership records: schema_name, partition_name, then `OWNED_RECORD`."""
    return sql.SQL("SELECT schema_name, partition_name, {} FROM {}.partitions").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in OWNED_RECORD), sql.Identifier(schema)
    )


def state_queries(schema: str) -> list[sql.Composed]:
    """Three SELECTs (tables, tenants, owned partitions), to run inside the pass's snapshot."""
    s = sql.Identifier(schema)
    return [
        sql.SQL(
            "SELECT id, schema_name, table_name, tenant_column, time_column, partition_interval, "
            "retention, partition_count, backfill, default_partition, retention_action, "
            "archive_schema, storage_parameters, epoch, retention_column, sub_partition_by, "
            "sub_partition_modulus, tenant_partitioning, export_location, rollup_after, "
            "rollup_interval "
            "FROM {}.managed_tables ORDER BY id"
        ).format(s),
        sql.SQL(
            "SELECT table_id, tenant_id, retention, partition_count, retention_action "
            "FROM {}.tenants ORDER BY table_id, tenant_id"
        ).format(s),
        sql.SQL(
            """
SELECT p.*, c.oid IS NOT NULL, coalesce(c.relispartition, false)
  FROM ({}) AS p
  LEFT JOIN pg_namespace n ON n.nspname = p.schema_name
  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.partition_name
"""
        ).format(owned_rows(schema)),
    ]


def managed_parents(schema: str) -> sql.Composed:
    """The catalog query's row source during a pass: every managed table."""
    return sql.SQL("SELECT schema_name, table_name FROM {}.managed_tables").format(
        sql.Identifier(schema)
    )


def parse_state(
    tables: Sequence[Sequence[Any]],
    tenants: Sequence[Sequence[Any]],
    owned: Iterable[Sequence[Any]] | OwnedRecords,
) -> State:
    """The metadata's rows as records; `owned` may be records already gathered as they came.

    Reads the rows by position on purpose: this is the pass's hot path (every pass, tens of
    thousands of ownership rows). Every other metadata read is in `reads.py`, with named rows."""
    records = tuple(
        TableRecord(
            id=r[0],
            schema=r[1],
            name=r[2],
            tenant_column=r[3],
            time_column=r[4],
            interval=table_interval(r[5]),
            retention=table_retention(r[6]),
            partition_count=r[7],
            backfill=r[8],
            default_partition=r[9],
            retention_action=r[10],
            archive_schema=r[11],
            storage_parameters=parameters(r[12]),
            epoch=r[13],
            retention_column=r[14],
            sub_partition_by=r[15],
            sub_partition_modulus=r[16],
            tenant_partitioning=r[17],
            export_location=r[18],
            rollup_after=parse_retention(r[19]),
            rollup_interval=None if r[20] is None else Interval.parse(r[20]),
        )
        for r in tables
    )
    by_table: dict[int, list[TenantRecord]] = {}
    for r in tenants:
        by_table.setdefault(r[0], []).append(TenantRecord(r[0], r[1], r[2], r[3], r[4]))
    if not isinstance(owned, OwnedRecords):
        rows, owned = owned, OwnedRecords()
        for r in rows:
            owned.add(r)
    return State(
        tables=records,
        tenants={k: tuple(v) for k, v in by_table.items()},
        owned=owned.by_key,
    )


def parameters(stored: dict[str, Value] | None) -> tuple[tuple[str, Value], ...]:
    """The storage_parameters column (jsonb, read as a dict) as `TableRecord` keeps it."""
    return tuple(sorted((stored or {}).items()))


class OwnedRecords:
    """Ownership records gathered one row at a time (in `OwnedPartition`'s order), so that a
    big catalog's are never held both as rows and as records."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], OwnedPartition] = {}
        # Parent names, tenants, origins, states and bounds (one period's end is the next
        # one's start) repeat on many rows: keep one string of each.
        self._shared: dict[Any, Any] = {}

    def add(self, r: Sequence[Any]) -> None:
        one = self._shared.setdefault
        self.by_key[(r[0], r[1])] = _new(
            OwnedPartition,
            (r[0], r[1], one(r[2], r[2]), one(r[3], r[3]), one(r[4], r[4]),
             one(r[5], r[5]), one(r[6], r[6]), r[7], one(r[8], r[8]), one(r[9], r[9]),
             r[10], r[11]),
        )  # fmt: skip


_new = tuple.__new__  # OwnedPartition(...) without the keyword-capable __new__: ~3x faster


def record_partition_sql(
    schema: str,
    *,
    partition_schema: str,
    partition_name: str,
    parent_schema: str,
    parent_name: str,
    tenant_id: str | None,
    lower: str,
    upper: str,
    origin: str,
    previous_comment: str | None = None,
    state: str = "attached",
) -> sql.Composed:
    values = [
        partition_schema,
        partition_name,
        parent_schema,
        parent_name,
        tenant_id,
        lower,
        upper,
        origin,
        previous_comment,
        state,
    ]
    return sql.SQL(
        "INSERT INTO {}.partitions (schema_name, partition_name, parent_schema, parent_name, "
        "tenant_id, lower_bound, upper_bound, origin, previous_comment, state) VALUES ({}) "
        "ON CONFLICT (schema_name, partition_name) DO UPDATE SET parent_schema = "
        "EXCLUDED.parent_schema, parent_name = EXCLUDED.parent_name, tenant_id = "
        "EXCLUDED.tenant_id, lower_bound = EXCLUDED.lower_bound, upper_bound = "
        "EXCLUDED.upper_bound, state = EXCLUDED.state, action = NULL, recorded_at = now()"
    ).format(sql.Identifier(schema), sql.SQL(", ").join(sql.Literal(v) for v in values))


def partition_state_sql(
    schema: str,
    partition_schema: str,
    partition_name: str,
    state: str,
    *,
    action: str | None = None,
    new_schema: str | None = None,
) -> sql.Composed:
    """Move an owned partition along its retention (or staging) states."""
    return sql.SQL(
        "UPDATE {} SET state = {}, action = coalesce({}, action), "
        "schema_name = coalesce({}, schema_name), recorded_at = now() "
        "WHERE schema_name = {} AND partition_name = {}"
    ).format(
        sql.Identifier(schema, "partitions"),
        sql.Literal(state),
        sql.Literal(action),
        sql.Literal(new_schema),
        sql.Literal(partition_schema),
        sql.Literal(partition_name),
    )


def forget_partition_sql(schema: str, partition_schema: str, partition_name: str) -> sql.Composed:
    return sql.SQL(
        "DELETE FROM {}.partitions WHERE schema_name = {} AND partition_name = {}"
    ).format(sql.Identifier(schema), sql.Literal(partition_schema), sql.Literal(partition_name))


@dataclass(frozen=True)
class AuditEntry:
    operation: str
    outcome: str
    parent_schema: str | None = None
    parent_name: str | None = None
    tenant_id: str | None = None
    partition_name: str | None = None
    reason: str | None = None
    statement: str | None = None
    error: str | None = None
    duration_ms: float | None = None


def audit_sql(schema: str, run_id: str | None, entries: Sequence[AuditEntry]) -> sql.Composed:
    rows = [
        sql.SQL("({})").format(
            sql.SQL(", ").join(
                [sql.SQL("{}::uuid").format(sql.Literal(run_id))]
                + [
                    sql.Literal(v)
                    for v in (
                        e.operation,
                        e.parent_schema,
                        e.parent_name,
                        e.tenant_id,
                        e.partition_name,
                        e.outcome,
                        e.reason,
                        e.statement,
                        e.error,
                        e.duration_ms,
                    )
                ]
            )
        )
        for e in entries
    ]
    return sql.SQL(
        "INSERT INTO {}.audit_log (run_id, operation, parent_schema, parent_name, tenant_id, "
        "partition_name, outcome, reason, statement, error, duration_ms) VALUES {}"
    ).format(sql.Identifier(schema), sql.SQL(", ").join(rows))


def start_run_sql(schema: str, run_id: str, manager: str, started_at: dt.datetime) -> sql.Composed:
    """Record a new run, closing the runs a killed pass left open first: under the pass lock,
    an unfinished run can only belong to a pass that died."""
    return sql.SQL(
        "UPDATE {s}.runs SET finished_at = clock_timestamp(), outcome = 'interrupted', "
        "summary = jsonb_build_object('closed_by', {id}::text) WHERE finished_at IS NULL; "
        "INSERT INTO {s}.runs (id, manager, started_at) VALUES ({id}, {m}, {at})"
    ).format(
        s=sql.Identifier(schema),
        id=sql.Literal(run_id),
        m=sql.Literal(manager),
        at=sql.Literal(started_at),
    )


def finish_run_sql(schema: str, run_id: str, outcome: str, summary: dict[str, Any]) -> sql.Composed:
    return sql.SQL(
        "UPDATE {}.runs SET finished_at = clock_timestamp(), outcome = {}, summary = {}::jsonb "
        "WHERE id = {}"
    ).format(
        sql.Identifier(schema),
        sql.Literal(outcome),
        sql.Literal(json.dumps(summary, default=str)),
        sql.Literal(run_id),
    )
