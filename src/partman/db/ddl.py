"""The SQL the executor sends around its DDL, and the wording of a server error it explains.

The DDL itself is rendered by each operation (`model.operations`); what is here are the locks
taken around it (a parent's advisory lock, the lock modes that would make a request queue), the
audit row each operation leaves, and how an error from the server becomes a sentence that says
what to do. Composed with `psycopg.sql`, never sent from here.
"""

from __future__ import annotations

import datetime as dt

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..model.columns import tenant_text
from ..model.operations import Operation, render
from ..model.report import Outcome
from ..model.text import first_line
from .metadata import AuditEntry

RETRYABLE = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected)
"""Lock waits cut short by lock_timeout (or a deadlock): retried, then skipped. A statement
cut short by statement_timeout is a failure, reported as such."""


SUE_CONFLICTS = [
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]


AE_CONFLICTS = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", *SUE_CONFLICTS]


def parent_lock_sql(parent: str) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(
        sql.Literal(f"partman:parent:{parent}")
    )


def parent_key(parent: str) -> sql.Composed:
    return sql.SQL("hashtextextended({}, 0)").format(sql.Literal(f"partman:parent:{parent}"))


def ms(value: dt.timedelta) -> sql.Literal:
    return sql.Literal(f"{max(1, int(value.total_seconds() * 1000))}ms")


def audit_entry(
    op: Operation, outcome: Outcome, error: str | None = None, detail: str | None = None
) -> AuditEntry:
    return AuditEntry(
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
