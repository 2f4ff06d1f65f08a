"""Every statement the executor sends around an operation's DDL, and how a server error reads.

Each operation renders its own DDL (`model.operations`); the executor wraps it in the lock
budget, the parent's advisory lock, the re-checks that come before anything irreversible, and
the ownership records and audit rows that commit with it. All of that is composed here, with
`psycopg.sql`, and never sent from here: the executor decides what to send, in which order and
in how many round trips (`script` joins what goes in one), and what the rows that come back mean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..model.columns import tenant_text
from ..model.operations import (
    CreatePartition,
    CreateTenantPartition,
    Operation,
    RetirePartition,
    render,
)
from ..model.report import Outcome
from ..model.snapshot import owner_comment
from ..model.text import first_line, iso
from . import metadata

RETRYABLE = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected)
"""Lock waits cut short by lock_timeout (or a deadlock): retried, then skipped. A statement
cut short by statement_timeout is a failure, reported as such."""


# -- scripts and the lock budget ------------------------------------------------------------

COMMIT = sql.SQL("COMMIT")
ROLLBACK = sql.SQL("ROLLBACK")

RESET_BUDGET = sql.SQL("RESET lock_timeout; RESET statement_timeout")
"""Back to the server's own timeouts, after a step that set them for the session."""


def script(statements: Iterable[sql.Composable]) -> sql.Composed:
    """Several statements sent in one round trip (a transaction is one round trip, so a crash
    leaves it wholly done or wholly undone)."""
    return sql.SQL(";\n").join(statements)


def ms(value: dt.timedelta) -> sql.Literal:
    """A duration as a setting's literal ('250ms'); never 0, which would mean "no limit"."""
    return sql.Literal(f"{max(1, int(value.total_seconds() * 1000))}ms")


def begin(lock_timeout: dt.timedelta, statement_timeout: dt.timedelta) -> sql.Composed:
    """A transaction under the lock budget: a lock not granted in time fails (and is retried)
    instead of making the application's queries queue behind partman's request."""
    return sql.SQL("BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}").format(
        ms(lock_timeout), ms(statement_timeout)
    )


def session_budget(lock_timeout: dt.timedelta, statement_timeout: dt.timedelta) -> sql.Composed:
    """The lock budget for the session, for DETACH ... CONCURRENTLY (it cannot run in a
    transaction block, so SET LOCAL cannot reach it); `release_session` undoes it."""
    return sql.SQL("SET lock_timeout = {}; SET statement_timeout = {}").format(
        ms(lock_timeout), ms(statement_timeout)
    )


# -- the parent's advisory lock -------------------------------------------------------------


def parent_key(parent: str) -> sql.Composed:
    """The advisory lock key of a parent: two partman processes never work on one at once."""
    return sql.SQL("hashtextextended({}, 0)").format(sql.Literal(f"partman:parent:{parent}"))


def parent_lock_sql(parent: str) -> sql.Composed:
    """The parent's advisory lock for the rest of the transaction (waited for)."""
    return sql.SQL("SELECT pg_advisory_xact_lock({})").format(parent_key(parent))


def release_session(key: sql.Composable, *, unlock: bool = True) -> list[sql.Composable]:
    """The end of a session-level step: the server's timeouts back, and (if it was taken) the
    parent's session advisory lock released."""
    out: list[sql.Composable] = [RESET_BUDGET]
    if unlock:
        out.append(sql.SQL("SELECT pg_advisory_unlock({})").format(key))
    return out


def detach_start_query(
    key: sql.Composable,
    partition_schema: str,
    partition_name: str,
    lock_timeout: dt.timedelta,
    statement_timeout: dt.timedelta,
) -> sql.Composed:
    """Before one DETACH ... CONCURRENTLY, in one round trip: try the parent's advisory lock as
    a session lock (never waited for), read whether this partition is detach-pending already (an
    earlier attempt, to FINALIZE), and set the lock budget for the session."""
    pending = sql.SQL(
        "SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {}"
    ).format(sql.Literal(partition_schema), sql.Literal(partition_name))
    return sql.SQL("SELECT pg_try_advisory_lock({}), coalesce(({}), false); {}").format(
        key, pending, session_budget(lock_timeout, statement_timeout)
    )


def try_lock_parent_query(
    key: sql.Composable, parent_schema: str, parent_name: str
) -> sql.Composed:
    """Before a batch of DETACH ... CONCURRENTLY: try the parent's advisory lock as a session
    lock, and read whether any partition of the parent is detach-pending (PostgreSQL allows
    one at a time, so the batch would fail)."""
    return sql.SQL(
        "SELECT pg_try_advisory_lock({}), EXISTS (SELECT FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhparent "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = {} AND c.relname = {} AND i.inhdetachpending)"
    ).format(key, sql.Literal(parent_schema), sql.Literal(parent_name))


# -- the lock budget's look-ahead ------------------------------------------------------------

SUE_CONFLICTS = [
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
"""Lock modes that conflict with SHARE UPDATE EXCLUSIVE (ATTACH, DETACH ... CONCURRENTLY)."""

AE_CONFLICTS = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", *SUE_CONFLICTS]
"""Lock modes that conflict with ACCESS EXCLUSIVE (a plain DETACH, a default partition's
scan-and-move): every one."""


def lock_blockers_query(
    parent_schema: str,
    parent_name: str,
    *,
    exclusive: bool,
    default_too: bool,
    budget: dt.timedelta,
) -> sql.Composed:
    """Who would make our lock request queue: holders of a lock that conflicts with the one we
    need on the parent (ACCESS EXCLUSIVE if `exclusive`, else SHARE UPDATE EXCLUSIVE) or, if
    `default_too`, any lock on its default partition, whose transaction is older than the
    budget or idle in transaction, and any autovacuum worker holding one (see
    `tree_lock_blockers_query`: a lock request under the budget never makes PostgreSQL cancel
    it). Rows: pid, mode, relation, application_name, state, transaction age in seconds, the
    start of the query, whether it is an autovacuum worker, whether that one runs to prevent
    wraparound; oldest first, five at most."""
    return sql.SQL(
        """
WITH p AS (
    SELECT c.oid, pt.partdefid FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
     WHERE n.nspname = {schema} AND c.relname = {name}),
rel AS (
    SELECT p.oid, {parent_modes}::text[] AS modes FROM p
    UNION ALL
    SELECT p.partdefid, {default_modes}::text[] FROM p WHERE p.partdefid <> 0 AND {creates})
SELECT l.pid, l.mode, c.relname::text, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch FROM clock_timestamp() - a.xact_start)::float8, 0),
       left(a.query, 120),
       coalesce(a.backend_type = 'autovacuum worker', false),
       coalesce(a.query LIKE '%to prevent wraparound%', false)
  FROM rel
  JOIN pg_locks l ON l.locktype = 'relation' AND l.relation = rel.oid AND l.granted
                 AND l.mode = ANY (rel.modes) AND l.pid <> pg_backend_pid()
                 AND l.database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
  JOIN pg_class c ON c.oid = rel.oid
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE a.state LIKE 'idle in transaction%'
    OR clock_timestamp() - a.xact_start > {budget}::interval
    OR a.backend_type = 'autovacuum worker'
 ORDER BY a.xact_start
 LIMIT 5
"""
    ).format(
        schema=sql.Literal(parent_schema),
        name=sql.Literal(parent_name),
        parent_modes=sql.Literal(AE_CONFLICTS if exclusive else SUE_CONFLICTS),
        default_modes=sql.Literal(AE_CONFLICTS),
        creates=sql.Literal(default_too),
        budget=ms(budget),
    )


def tree_lock_blockers_query(schema: str, name: str, *, budget: dt.timedelta) -> sql.Composed:
    """Who would make a `LOCK TABLE schema.name` queue. A LOCK of a partitioned table locks
    every partition too, so holders of any lock on the table or on a partition count: those
    whose transaction is older than the budget or idle in transaction, and every autovacuum
    worker (PostgreSQL cancels an autovacuum that blocks a lock request only once the request
    has waited deadlock_timeout, 1 s by default, which a lock_timeout under it never reaches:
    a swap would time out behind it on every attempt). Rows: pid, mode, relation,
    application_name, state, transaction age in seconds, the start of the query, whether it
    is an autovacuum worker, whether that one runs to prevent wraparound (it cannot be
    cancelled); oldest first, ten at most."""
    return sql.SQL(
        """
WITH p AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = {schema} AND c.relname = {name}),
rel AS (
    SELECT p.oid FROM p
    UNION
    SELECT t.relid FROM p, pg_partition_tree(p.oid) AS t)
SELECT l.pid, l.mode, c.relname::text, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch FROM clock_timestamp() - a.xact_start)::float8, 0),
       left(a.query, 120),
       coalesce(a.backend_type = 'autovacuum worker', false),
       coalesce(a.query LIKE '%to prevent wraparound%', false)
  FROM rel
  JOIN pg_locks l ON l.locktype = 'relation' AND l.relation = rel.oid AND l.granted
                 AND l.pid <> pg_backend_pid()
                 AND l.database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
  JOIN pg_class c ON c.oid = rel.oid
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE a.state LIKE 'idle in transaction%'
    OR clock_timestamp() - a.xact_start > {budget}::interval
    OR a.backend_type = 'autovacuum worker'
 ORDER BY a.xact_start
 LIMIT 10
"""
    ).format(schema=sql.Literal(schema), name=sql.Literal(name), budget=ms(budget))


def cancel_backend_sql(pid: int) -> sql.Composed:
    return sql.SQL("SELECT pg_cancel_backend({})").format(sql.Literal(pid))


# -- creating --------------------------------------------------------------------------------


def waiting_rows_query(op: CreatePartition, limit: int) -> sql.Composed:
    """How many rows of the new partition's range wait in the default partition, counted up to
    `limit` only (enough to choose between one transaction and staging)."""
    assert op.move is not None
    return sql.SQL("SELECT count(*) FROM (SELECT FROM {} WHERE {} LIMIT {}) AS x").format(
        op.move.default, op.range_condition(), sql.Literal(limit)
    )


def attach_locks(op: CreatePartition) -> list[sql.Composed]:
    """The locks taken before the last rows move and the partition is attached: the parent
    before its default partition, the order the application's queries lock them in."""
    assert op.move is not None
    return [
        sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(op.parent),
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(op.move.default),
    ]


def created_records(meta: str, op: Operation, state: str = "attached") -> list[sql.Composable]:
    """What marks a new partition as partman's: its comment and its ownership record.
    "staging": created, not attached yet, rows still moving in from the default partition."""
    comment = (
        owner_comment("created")
        if state == "attached"
        else f"partman staging for {op.parent_qualified}: rows are moving in from the "
        "default partition; attached when done"
    )
    children: list[sql.Composable] = []
    if isinstance(op, CreateTenantPartition):  # its periods, made with it
        for child in op.children:
            children += created_records(meta, child, state)
    return [
        *children,
        sql.SQL("COMMENT ON TABLE {} IS {}").format(op.partition, sql.Literal(comment)),
        metadata.record_partition_sql(
            meta,
            partition_schema=op.partition_schema,
            partition_name=op.partition_name,
            parent_schema=op.parent_schema,
            parent_name=op.parent_name,
            tenant_id=tenant_text(op.tenant),
            lower=iso(op.lower) or "",
            upper=iso(op.upper) or "",
            origin="created",
            state=state,
        ),
    ]


def identity_indexes_query(ops: Sequence[Operation]) -> sql.Composed:
    """(schema, name, index) of each new partition whose parent's replica identity is an index:
    the partition's own index of that one, which ATTACH matched or built (so the query runs
    after the ATTACH, in its transaction)."""
    names = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(op.partition_schema), sql.Literal(op.partition_name))
        for op in ops
    )
    return sql.SQL(
        """SELECT pn.nspname::text, p.relname::text, ic.relname::text
  FROM pg_class p JOIN pg_namespace pn ON pn.oid = p.relnamespace
  JOIN pg_inherits pi ON pi.inhrelid = p.oid
  JOIN pg_index px ON px.indrelid = pi.inhparent AND px.indisreplident
  JOIN pg_inherits ii ON ii.inhparent = px.indexrelid
  JOIN pg_index cx ON cx.indexrelid = ii.inhrelid AND cx.indrelid = p.oid
  JOIN pg_class ic ON ic.oid = cx.indexrelid
 WHERE (pn.nspname::text, p.relname::text) IN ({})"""
    ).format(names)


ANALYZE_ONLY_SINCE = 180000
"""`ANALYZE ONLY parent` (the parent's own statistics, not each partition's) came with
PostgreSQL 18; before it, ANALYZE of a parent analyzes every partition too."""


def analyze_only(
    parent: sql.Identifier, lock_timeout: dt.timedelta, statement_timeout: dt.timedelta
) -> sql.Composed:
    """The parent's statistics after its partition set changed (autovacuum never analyzes a
    partitioned table), under the lock budget: it takes SHARE UPDATE EXCLUSIVE on the parent."""
    return script(
        [begin(lock_timeout, statement_timeout), sql.SQL("ANALYZE ONLY {}").format(parent), COMMIT]
    )


# -- retention -------------------------------------------------------------------------------


def guard_query(oid: int) -> sql.Composed:
    """Is the partition the plan saw still there, under which name, bound and comment? One row
    (name, schema, bound, comment), none if the oid is gone."""
    return sql.SQL(
        "SELECT c.relname::text, n.nspname::text, pg_get_expr(c.relpartbound, c.oid), "
        "obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {}"
    ).format(sql.Literal(oid))


def guards_query(oids: Sequence[int]) -> sql.Composed:
    """`guard_query` for a batch: one row per oid, in their order (nulls for one that is gone)."""
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}::oid)").format(sql.Literal(i), sql.Literal(oid))
        for i, oid in enumerate(oids)
    )
    return sql.SQL(
        "SELECT c.relname::text, n.nspname::text, pg_get_expr(c.relpartbound, c.oid), "
        "obj_description(c.oid, 'pg_class') FROM (VALUES {}) AS o (i, oid) "
        "LEFT JOIN pg_class c ON c.oid = o.oid "
        "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY o.i"
    ).format(values)


def _span(op: RetirePartition) -> sql.Composed:
    """The partition's oldest and newest values of the checked column (as text), and how many
    rows are at or after the cutoff. ORDER BY ... LIMIT 1 rather than min()/max(): it reads an
    index on the column as they do, and works for every ordered type (uuid has no min())."""
    column = sql.Identifier(op.time_column)
    return sql.SQL(
        "(SELECT {c}::text FROM {p} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1), "
        "(SELECT {c}::text FROM {p} WHERE {c} IS NOT NULL ORDER BY {c} DESC LIMIT 1), "
        "(SELECT count(*) FROM {p} WHERE {c} >= {cutoff})"
    ).format(c=column, p=op.partition, cutoff=sql.Literal(op.cutoff))


def newest_row_query(op: RetirePartition) -> sql.Composed:
    """What the partition really holds, whatever its bounds say: its oldest and newest values
    of the checked column, and how many rows are at or after the retention cutoff (must be
    none)."""
    return sql.SQL("SELECT {}").format(_span(op))


def newest_rows_query(ops: Sequence[RetirePartition]) -> sql.Composed:
    """`newest_row_query` for a batch, in one statement: one row per partition (its position
    first), in their order."""
    spans = sql.SQL(" UNION ALL ").join(
        sql.SQL("(SELECT {}, {})").format(sql.Literal(i), _span(op)) for i, op in enumerate(ops)
    )
    return sql.SQL("{} ORDER BY 1").format(spans)


def detached_query(partition_schema: str, partition_name: str) -> sql.Composed:
    """Is the table partman detached still as it left it: not a partition again, still marked
    as partman's? One row (relispartition, comment), none if it is gone or renamed."""
    return sql.SQL(
        "SELECT c.relispartition, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = {} AND c.relname = {}"
    ).format(sql.Literal(partition_schema), sql.Literal(partition_name))


def drop_tables(tables: Sequence[sql.Composable]) -> sql.Composed:
    """One DROP TABLE for several: dropping an attached partition detaches it as it goes, much
    cheaper than a DETACH each (which rebuilds the parent's descriptor every time)."""
    return sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(tables))


def partition_state(meta: str, op: RetirePartition, state: str) -> sql.Composed:
    """The retention step a partition has reached ("detaching", "detached"), with the action
    that follows, so that an interrupted pass resumes where it stopped."""
    return metadata.partition_state_sql(
        meta, op.partition_schema, op.partition_name, state, action=op.action
    )


def retired_records(meta: str, op: RetirePartition, on: dt.date) -> list[sql.Composable]:
    """What retention leaves once a partition is dropped, kept or archived: no record for a
    dropped one; a kept or archived table says in its comment that partman let it go."""
    if op.action in ("drop", "export"):  # an export's manifest row is its record now
        return [metadata.forget_partition_sql(meta, op.partition_schema, op.partition_name)]
    comment = (
        f"retired by partman retention from {op.parent_qualified} on {on.isoformat()} "
        f"({op.action}); no longer managed"
    )
    if op.action == "archive":
        assert op.archive_schema is not None
        target = sql.Identifier(op.archive_schema, op.partition_name)
        return [
            sql.SQL("COMMENT ON TABLE {} IS {}").format(target, sql.Literal(comment)),
            metadata.partition_state_sql(
                meta,
                op.partition_schema,
                op.partition_name,
                "archived",
                new_schema=op.archive_schema,
            ),
        ]
    return [
        sql.SQL("COMMENT ON TABLE {} IS {}").format(op.partition, sql.Literal(comment)),
        metadata.partition_state_sql(meta, op.partition_schema, op.partition_name, "kept"),
    ]


# -- the audit, and errors -------------------------------------------------------------------


def audit_entry(
    op: Operation, outcome: Outcome, error: str | None = None, detail: str | None = None
) -> metadata.AuditEntry:
    """The audit row of an operation: what was asked, why, the DDL it stands for, and how it
    ended."""
    return metadata.AuditEntry(
        operation=op.kind,
        outcome=outcome.value,
        parent_schema=op.parent_schema,
        parent_name=op.parent_name,
        tenant_id=tenant_text(op.tenant),
        partition_name=op.partition_name,
        reason=op.reason if detail is None else f"{op.reason}; {detail}",
        statement="; ".join(render(s) for s in op.statements()),
        error=error,
    )


def explain(error: psycopg.Error) -> str:
    """A server error as a failure's reason: its first line, and for the errors partman can
    run into, what to do about it."""
    text = first_line(error)
    if isinstance(error, pgerrors.InvalidObjectDefinition) and "overlap" in text:
        return f"{text}: an existing partition already covers part of this range"
    if isinstance(error, pgerrors.CheckViolation) and "default partition" in text:
        return (
            f"{text}: the default partition holds rows of this range; they must be moved into "
            "the new partition first"
        )
    if isinstance(error, pgerrors.DuplicateTable):
        return f"{text}: a relation with this name exists; rename it or adopt it"
    if isinstance(error, pgerrors.DatatypeMismatch) and "row type" in text:
        return (
            f"{text}: a column was added to the parent while this partition's detach was "
            "pending, and PostgreSQL cannot FINALIZE it any more; drop the partition (or drop "
            "the new column from the parent), then the next pass goes on"
        )
    if isinstance(error, pgerrors.QueryCanceled):
        return (
            f"{text}: a statement ran longer than Config.statement_timeout (moving many rows "
            "out of a default partition, or checking a large partition's newest row before "
            "retention); raise statement_timeout, or add an index on the time column"
        )
    return text
