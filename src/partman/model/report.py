"""The executor's pure half: the outcome types of a pass, the SQL it sends around its DDL, and
the wording of what it did or could not do. `executor_async.py` (and the sync `executor.py`
generated from it) does the I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..db import metadata
from ..model import snapshot
from .columns import tenant_text
from .operations import Operation, Plan, RetirePartition, render

RETRYABLE = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected)
"""Lock waits cut short by lock_timeout (or a deadlock): retried, then skipped. A statement
cut short by statement_timeout is a failure, reported as such."""
HOOK_DECISIONS = ("drop", "detach", "archive", "skip")


PreDropHook = Callable[[RetirePartition], str | None]
"""Called before retention retires a partition. Return "drop", "detach", "archive", "skip" or
None (do what the policy says). It may take its time (a dump, say): no lock is held."""


StepHook = Callable[[str, Operation], None]
"""Called before each round trip that changes something (progress bars, crash tests)."""

Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]

AsyncPreDropHook = Callable[[RetirePartition], str | Awaitable[str | None] | None]
"""`PreDropHook` for `AsyncManager`: a plain function or a coroutine function."""

AsyncStepHook = Callable[[str, Operation], Awaitable[None] | None]
"""`StepHook` for `AsyncManager`: a plain function or a coroutine function."""


SUE_CONFLICTS = [
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
AE_CONFLICTS = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", *SUE_CONFLICTS]


class Skipped(Exception):
    """An operation left alone on purpose this pass; the message says why."""


class ParentBlocked(Skipped):
    """Left alone for a reason that holds for every later operation on the parent this pass
    (its lock budget ran out, or a detach is pending on it)."""


@dataclass(frozen=True)
class OperationResult:
    """One operation of a pass and how it ended."""

    operation: Operation
    outcome: str
    """"ok", "failed" (the error says why; nothing of it was committed) or "skipped" (left
    alone on purpose this pass: a lock that would queue, a newer row, the pre-drop hook)."""
    error: str | None = None
    """Why it failed or was skipped, with the fix where there is one."""
    duration_ms: float = 0.0
    attempts: int = 1
    """Transactions tried: more than 1 when the lock budget ran out and it was retried."""
    detail: str | None = None
    """What else is worth knowing, e.g. rows moved in from the default partition."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.operation.to_dict(),
            "outcome": self.outcome,
            "error": self.error,
            "detail": self.detail,
            "duration_ms": round(self.duration_ms, 3),
            "attempts": self.attempts,
        }


@dataclass
class Report:
    """What a pass did: every operation's outcome, and what it left alone and why."""

    run_id: str
    """Also the id of the pass's row in partman_meta.runs and of its audit rows."""
    started_at: dt.datetime
    plan: Plan | None
    """The plan the pass applied (None when the whole pass was skipped)."""
    results: list[OperationResult] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    skipped_reason: str | None = None
    """Set when the whole pass was skipped (another pass held the pass lock)."""
    default_rows: dict[str, int] = field(default_factory=dict)
    """Rows waiting in each parent's default partition after the pass ("schema.name" -> rows)."""

    def _ok(self, *kinds: str) -> list[Operation]:
        return [
            r.operation for r in self.results if r.operation.kind in kinds and r.outcome == "ok"
        ]

    @property
    def created(self) -> list[Operation]:
        """Range partitions created (a default partition created on request is not counted;
        it is in `results` as "create_default")."""
        return self._ok("create")

    @property
    def dropped(self) -> list[Operation]:
        """Partitions dropped by retention."""
        return self._ok("drop")

    @property
    def retired(self) -> list[Operation]:
        """Dropped, detached or archived by retention."""
        return self._ok("drop", "detach", "archive")

    @property
    def failed(self) -> list[OperationResult]:
        """Operations that failed; nothing of them was committed."""
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def skipped(self) -> list[OperationResult]:
        """Operations left alone this pass; the next pass tries again."""
        return [r for r in self.results if r.outcome == "skipped"]

    @property
    def ok(self) -> bool:
        """Everything planned was done: nothing failed or skipped, and the pass ran."""
        return not self.failed and not self.skipped and self.skipped_reason is None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "partitions_created": len(self.created),
            "partitions_dropped": len(self.dropped),
            "partitions_retired": len(self.retired),
            "operations_failed": len(self.failed),
            "operations_skipped": len(self.skipped),
            "notices": len(self.plan.notices) if self.plan is not None else 0,
            "default_rows": sum(self.default_rows.values()),
            "skipped_reason": self.skipped_reason,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "results": [r.to_dict() for r in self.results],
            "notices": [n.to_dict() for n in self.plan.notices] if self.plan is not None else [],
            "default_rows_by_table": self.default_rows,
        }

    def __str__(self) -> str:
        s = self.summary()
        text = (
            f"created {s['partitions_created']}, retired {s['partitions_retired']} "
            f"(dropped {s['partitions_dropped']}), failed {s['operations_failed']}, "
            f"skipped {s['operations_skipped']}"
        )
        for r in self.failed + self.skipped:
            text += f"\n  {r.outcome}: {r.operation.kind} {r.operation.partition_name}: {r.error}"
        for table, rows in self.default_rows.items():
            if rows:
                text += f"\n  {table}: {rows} row(s) in the default partition"
        if self.skipped_reason:
            text += f"\n  pass skipped: {self.skipped_reason}"
        return text


def check_verdict(
    op: RetirePartition, guard: Any, oldest: Any, newest: Any, inside: int
) -> Skipped | str:
    """What the check before anything irreversible found: a `Skipped` saying why the partition
    is left alone (not the one the plan saw, or rows inside the retention window), else what
    it holds. `guard` is its (name, schema, bound, comment) row from the catalog, or None."""
    expected = (op.partition_name, op.partition_schema, op.bound_text)
    if guard is None or tuple(guard[:3]) != expected or not snapshot.is_owner_comment(guard[3]):
        return Skipped(
            f"{op.partition_qualified} changed since the plan was made (renamed, "
            "re-bounded, dropped or no longer marked as partman's); left alone"
        )
    if inside:
        return Skipped(
            f"{op.partition_qualified} holds {inside} row(s) at or after the retention "
            f"cutoff {op.cutoff} (newest {newest}); left alone so no row inside the "
            "retention window is lost"
        )
    return f"rows from {oldest} to {newest}" if newest is not None else "empty"


def parent_lock_sql(parent: str) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(
        sql.Literal(f"partman:parent:{parent}")
    )


def parent_key(parent: str) -> sql.Composed:
    return sql.SQL("hashtextextended({}, 0)").format(sql.Literal(f"partman:parent:{parent}"))


def ms(value: dt.timedelta) -> sql.Literal:
    return sql.Literal(f"{max(1, int(value.total_seconds() * 1000))}ms")


def iso(value: dt.datetime | dt.date | None) -> str:
    return "" if value is None else value.isoformat()


def audit_entry(
    op: Operation, outcome: str, error: str | None = None, detail: str | None = None
) -> metadata.AuditEntry:
    return metadata.AuditEntry(
        operation=op.kind,
        outcome=outcome,
        parent_schema=op.parent_schema,
        parent_name=op.parent_name,
        tenant_id=tenant_text(op.tenant),
        partition_name=op.partition_name,
        reason=op.reason if detail is None else f"{op.reason}; {detail}",
        statement="; ".join(render(s) for s in op.statements()),
        error=error,
    )


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


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

