"""What a pass did: each operation's outcome (an `Outcome`, and a `SkipReason` when it was left
alone), and the `Report` of the whole pass. Pure values: the engine fills them, the CLI, the
API, the metrics and the logs read them. Labels and JSON take the enums' values, never words
matched out of a message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .operations import Operation, Plan


class Outcome(StrEnum):
    """How an operation ended. A `str`: "ok" == Outcome.OK, and JSON shows the value."""

    OK = "ok"
    FAILED = "failed"
    """Nothing of it was committed; the error says why."""
    SKIPPED = "skipped"
    """Left alone on purpose this pass; the next pass tries again."""


class SkipReason(StrEnum):
    """Why an operation was skipped: the label of `partman_skipped_operations_total`."""

    LOCK_TIMEOUT = "lock_timeout"
    """Its lock budget ran out on every retry."""
    LOCK_HOLDER = "lock_holder"
    """The look-ahead found a transaction the lock request would queue behind."""
    NOT_ATTEMPTED = "not_attempted"
    """An earlier operation on the same parent was stopped this pass."""
    PRE_DROP_HOOK = "pre_drop_hook"
    """The pre-drop hook said skip."""
    ROWS_IN_WINDOW = "rows_in_window"
    """The partition holds rows at or after the retention cutoff."""
    CHANGED = "changed"
    """The partition changed since the plan was made (renamed, re-bounded, no longer marked)."""
    DETACH_PENDING = "detach_pending"
    """A detach is pending on the parent; it is finalized first."""
    OTHER = "other"


class Skipped(Exception):
    """An operation left alone on purpose this pass; the message says why, `reason` in a word."""

    def __init__(self, message: str, reason: SkipReason = SkipReason.OTHER) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class OperationResult:
    """One operation of a pass and how it ended."""

    operation: Operation
    outcome: Outcome
    """OK, FAILED (the error says why; nothing of it was committed) or SKIPPED (left alone on
    purpose this pass: a lock that would queue, a newer row, the pre-drop hook)."""
    error: str | None = None
    """Why it failed or was skipped, with the fix where there is one."""
    duration_ms: float = 0.0
    attempts: int = 1
    """Transactions tried: more than 1 when the lock budget ran out and it was retried."""
    detail: str | None = None
    """What else is worth knowing, e.g. rows moved in from the default partition."""
    skip_reason: SkipReason | None = None
    """Why it was skipped, in a word (set with SKIPPED)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.operation.to_dict(),
            "outcome": self.outcome.value,
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
            r.operation
            for r in self.results
            if r.operation.kind in kinds and r.outcome == Outcome.OK
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
    def exported(self) -> list[Operation]:
        """Partitions written to Parquet, checked and dropped by retention ("export")."""
        return self._ok("export")

    @property
    def retired(self) -> list[Operation]:
        """Dropped, detached or archived by retention."""
        return self._ok("drop", "detach", "archive", "export")

    @property
    def failed(self) -> list[OperationResult]:
        """Operations that failed; nothing of them was committed."""
        return [r for r in self.results if r.outcome == Outcome.FAILED]

    @property
    def skipped(self) -> list[OperationResult]:
        """Operations left alone this pass; the next pass tries again."""
        return [r for r in self.results if r.outcome == Outcome.SKIPPED]

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
