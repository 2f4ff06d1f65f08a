"""Applying a Plan without blocking the application: the only module that sends DDL.

Each transaction is short, runs under `lock_timeout`, takes the parent's advisory lock first
(two partman processes never work on one parent at once), and carries its own ownership
records and audit rows, so a crash leaves each operation wholly done or wholly undone. A
transaction that cannot get its locks in time is retried with jittered backoff and then
skipped, with the reason reported: partman never queues in front of the application.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from . import store
from .catalog import SESSION_SETTINGS
from .columns import tenant_text
from .config import Config
from .logs import log_event
from .operations import CreatePartition, DropPartition, Operation, render

RETRYABLE = (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected, pgerrors.QueryCanceled)


@dataclass(frozen=True)
class OperationResult:
    operation: Operation
    outcome: str  # "ok" | "failed" | "skipped"
    error: str | None = None
    duration_ms: float = 0.0
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.operation.to_dict(),
            "outcome": self.outcome,
            "error": self.error,
            "duration_ms": round(self.duration_ms, 3),
            "attempts": self.attempts,
        }


@dataclass
class Report:
    """What a pass did: every operation's outcome, and what it left alone and why."""

    run_id: str
    started_at: dt.datetime
    plan: Any  # the Plan applied
    results: list[OperationResult] = field(default_factory=list)
    finished_at: dt.datetime | None = None
    skipped_reason: str | None = None  # the whole pass was skipped

    def _of(self, kind: str, outcome: str) -> list[Operation]:
        return [
            r.operation for r in self.results if r.operation.kind == kind and r.outcome == outcome
        ]

    @property
    def created(self) -> list[Operation]:
        return self._of("create", "ok")

    @property
    def dropped(self) -> list[Operation]:
        return self._of("drop", "ok")

    @property
    def failed(self) -> list[OperationResult]:
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def skipped(self) -> list[OperationResult]:
        return [r for r in self.results if r.outcome == "skipped"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and self.skipped_reason is None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "partitions_created": len(self.created),
            "partitions_dropped": len(self.dropped),
            "operations_failed": len(self.failed),
            "operations_skipped": len(self.skipped),
            "notices": len(self.plan.notices) if self.plan is not None else 0,
            "skipped_reason": self.skipped_reason,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "results": [r.to_dict() for r in self.results],
            "notices": [n.to_dict() for n in self.plan.notices] if self.plan is not None else [],
        }

    def __str__(self) -> str:
        s = self.summary()
        text = (
            f"created {s['partitions_created']}, dropped {s['partitions_dropped']}, "
            f"failed {s['operations_failed']}, skipped {s['operations_skipped']}"
        )
        for r in self.failed + self.skipped:
            text += f"\n  {r.outcome}: {r.operation.kind} {r.operation.partition_name}: {r.error}"
        if self.skipped_reason:
            text += f"\n  pass skipped: {self.skipped_reason}"
        return text


def parent_lock_sql(parent: str) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(
        sql.Literal(f"partman:parent:{parent}")
    )


def _ms(value: dt.timedelta) -> sql.Literal:
    return sql.Literal(f"{max(1, int(value.total_seconds() * 1000))}ms")


class Executor:
    """Applies operations over one autocommit connection; see the module docstring."""

    def __init__(
        self,
        config: Config,
        logger: logging.Logger,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.meta = config.metadata_schema
        self.logger = logger
        self.sleep = sleep

    def _begin(self) -> sql.Composed:
        return sql.SQL(
            "BEGIN; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}"
        ).format(_ms(self.config.lock_timeout), _ms(self.config.statement_timeout))

    def apply(
        self, conn: psycopg.Connection[Any], operations: Sequence[Operation], run_id: str
    ) -> list[OperationResult]:
        results: list[OperationResult] = []
        groups: dict[str, list[Operation]] = {}
        for op in operations:
            groups.setdefault(op.parent_qualified, []).append(op)
        for parent, ops in groups.items():
            results += self._apply_parent(conn, parent, ops, run_id)
        return results

    def _apply_parent(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[Operation], run_id: str
    ) -> list[OperationResult]:
        results: list[OperationResult] = []
        creates: list[Operation] = [op for op in ops if isinstance(op, CreatePartition)]
        drops: list[Operation] = [op for op in ops if isinstance(op, DropPartition)]
        size = self.config.batch_size
        units: list[list[Operation]] = [creates[i : i + size] for i in range(0, len(creates), size)]
        units += [[op] for op in drops]
        for position, unit in enumerate(units):
            outcome = self._run_unit(conn, parent, unit, run_id)
            results += outcome
            if any(r.outcome == "skipped" and r.error and "lock" in r.error for r in outcome):
                reason = (
                    f"not attempted: an earlier operation on {parent} could not get its lock "
                    "within the lock budget; the next pass retries"
                )
                for rest in units[position + 1 :]:
                    results += [OperationResult(op, "skipped", reason, attempts=0) for op in rest]
                self._audit_outcomes(conn, run_id, [r for r in results if r.attempts == 0])
                break
        return results

    def _run_unit(
        self, conn: psycopg.Connection[Any], parent: str, unit: list[Operation], run_id: str
    ) -> list[OperationResult]:
        attempts = 0
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                if isinstance(unit[0], DropPartition):
                    changed = self._drop(conn, parent, unit[0], run_id)
                    if changed:
                        result = OperationResult(unit[0], "skipped", changed, attempts=attempts)
                        self._audit_outcomes(conn, run_id, [result])
                        self._log(result)
                        return [result]
                else:
                    self._create_batch(conn, parent, unit, run_id)
            except RETRYABLE as error:
                _rollback(conn)
                if attempts <= self.config.max_retries:
                    delay = self.config.retry_backoff.total_seconds() * 2 ** (attempts - 1)
                    self.sleep(delay * (0.5 + random.random()))
                    continue
                reason = (
                    f"lock not available on {parent} within lock_timeout "
                    f"{self.config.lock_timeout.total_seconds() * 1000:.0f}ms after {attempts} "
                    f"attempts ({_first_line(error)}); skipped so the application never waits "
                    "behind partman; the next pass retries"
                )
                results = [OperationResult(op, "skipped", reason, attempts=attempts) for op in unit]
                self._audit_outcomes(conn, run_id, results)
                for r in results:
                    self._log(r)
                return results
            except psycopg.Error as error:
                _rollback(conn)
                if len(unit) > 1:  # isolate the one that fails; the others still go in
                    return [r for op in unit for r in self._run_unit(conn, parent, [op], run_id)]
                result = OperationResult(
                    unit[0],
                    "failed",
                    _explain(unit[0], error),
                    attempts=attempts,
                    duration_ms=(time.perf_counter() - started) * 1000,
                )
                self._audit_outcomes(conn, run_id, [result])
                self._log(result)
                return [result]
            elapsed = (time.perf_counter() - started) * 1000
            results = [
                OperationResult(op, "ok", None, elapsed / len(unit), attempts) for op in unit
            ]
            for r in results:
                self._log(r)
            return results

    def _create_batch(
        self, conn: psycopg.Connection[Any], parent: str, unit: list[Operation], run_id: str
    ) -> None:
        parts: list[sql.Composable] = [self._begin(), parent_lock_sql(parent)]
        audits: list[store.AuditEntry] = []
        for op in unit:
            assert isinstance(op, CreatePartition)
            parts += op.statements()
            parts.append(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(
                    op.partition, sql.Literal(store.owner_comment("created"))
                )
            )
            parts.append(
                store.record_partition_sql(
                    self.meta,
                    partition_schema=op.partition_schema,
                    partition_name=op.partition_name,
                    parent_schema=op.parent_schema,
                    parent_name=op.parent_name,
                    tenant_id=tenant_text(op.tenant),
                    lower=op.lower.isoformat(),
                    upper=op.upper.isoformat(),
                    origin="created",
                )
            )
            audits.append(_audit(op, "ok"))
        parts.append(store.audit_sql(self.meta, run_id, audits))
        parts.append(sql.SQL("COMMIT"))
        conn.execute(sql.SQL(";\n").join(parts))

    def _drop(
        self, conn: psycopg.Connection[Any], parent: str, op: DropPartition, run_id: str
    ) -> str | None:
        """Returns why the drop was skipped, or None once done."""
        guard = sql.SQL(
            "SELECT c.relname::text, n.nspname::text, pg_get_expr(c.relpartbound, c.oid), "
            "obj_description(c.oid, 'pg_class') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {}"
        ).format(sql.Literal(op.oid))
        cur = conn.execute(
            sql.SQL(";\n").join([self._begin(), SESSION_SETTINGS, parent_lock_sql(parent), guard])
        )
        while cur.description is None or len(cur.description) != 4:
            if not cur.nextset():
                break
        row = cur.fetchone()
        expected = (op.partition_name, op.partition_schema, op.bound_text)
        if row is None or tuple(row[:3]) != expected or not store.is_owner_comment(row[3]):
            _rollback(conn)
            return (
                f"{op.partition_schema}.{op.partition_name} changed since the plan was made "
                "(renamed, re-bounded, dropped or no longer marked as partman's); left alone"
            )
        conn.execute(
            sql.SQL(";\n").join(
                [
                    *op.statements(),
                    store.forget_partition_sql(self.meta, op.partition_schema, op.partition_name),
                    store.audit_sql(self.meta, run_id, [_audit(op, "ok")]),
                    sql.SQL("COMMIT"),
                ]
            )
        )
        return None

    def _audit_outcomes(
        self, conn: psycopg.Connection[Any], run_id: str, results: Sequence[OperationResult]
    ) -> None:
        if not results:
            return
        entries = [_audit(r.operation, r.outcome, r.error) for r in results]
        try:
            conn.execute(store.audit_sql(self.meta, run_id, entries))
        except psycopg.Error as error:  # the audit must never turn a skip into a crash
            _rollback(conn)
            log_event(
                self.logger, logging.WARNING, "audit_failed", "audit write failed", error=str(error)
            )

    def _log(self, result: OperationResult) -> None:
        op = result.operation
        level = logging.INFO if result.outcome == "ok" else logging.WARNING
        log_event(
            self.logger,
            level,
            f"partition_{op.kind}",
            f"{op.kind} {op.partition_schema}.{op.partition_name}: {result.outcome}",
            **{
                "outcome": result.outcome,
                "table": op.parent_qualified,
                "tenant": tenant_text(op.tenant),
                "partition": f"{op.partition_schema}.{op.partition_name}",
                "lower": op.lower.isoformat(),
                "upper": op.upper.isoformat(),
                "reason": op.reason,
                "error": result.error,
                "attempts": result.attempts,
                "duration_ms": round(result.duration_ms, 3),
            },
        )


def _audit(op: Operation, outcome: str, error: str | None = None) -> store.AuditEntry:
    return store.AuditEntry(
        operation=op.kind,
        outcome=outcome,
        parent_schema=op.parent_schema,
        parent_name=op.parent_name,
        tenant_id=tenant_text(op.tenant),
        partition_name=op.partition_name,
        reason=op.reason,
        statement="; ".join(render(s) for s in op.statements()),
        error=error,
    )


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _explain(op: Operation, error: psycopg.Error) -> str:
    text = _first_line(error)
    if isinstance(error, pgerrors.InvalidObjectDefinition) and "overlap" in text:
        return f"{text}: an existing partition already covers part of this range"
    if isinstance(error, pgerrors.CheckViolation) and "default partition" in text:
        return (
            f"{text}: the default partition holds rows of this range; they must be moved into "
            "the new partition first"
        )
    if isinstance(error, pgerrors.DuplicateTable):
        return f"{text}: a relation with this name exists; rename it or adopt it"
    return text
