"""Building an index on a partitioned table without blocking writes: the I/O.

`decide/indexes.py` says which steps are left; this runs them one at a time over one
autocommit connection, each under the lock budget:

- before each step, look for transactions its lock request would queue behind (holders of a
  conflicting lock older than `Config.lock_timeout`, or idle in transaction; for a concurrent
  build also any transaction holding an older snapshot, which the build would wait for) and
  wait for them with backoff, at most `Config.max_retries` times, then skip the step naming
  the holder;
- `CREATE INDEX ... ON ONLY` and `ALTER INDEX ... ATTACH PARTITION` run in short transactions
  under `SET LOCAL lock_timeout`; `CREATE INDEX CONCURRENTLY` and `DROP INDEX CONCURRENTLY`
  cannot run in a transaction block, so they run alone with the budget set for the session
  (and reset after);
- a lock not granted in time is retried with jittered backoff, then the step is skipped and
  reported, and the partition's later steps (its attach, and its parents') wait for the next
  run; the other partitions go on;
- a concurrent build that fails leaves an invalid index: the retry drops it concurrently and
  builds it again (so does the next run, which finds it in the catalog).

When the steps are done the catalog is read again and planned again: partitions created
meanwhile without the index get a second round (steps skipped for a lock wait for the next
run: they were retried already).

Source of truth for both faces: `indexes.py` (`IndexBuilder`) is generated from this file
(`AsyncIndexBuilder`) by tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..db import ddl
from ..db import indexes as q
from ..decide.indexes import check_table, index_states, plan_index, state_of
from ..errors import LockUnavailableError
from ..logs import log_event
from ..model.backoff import Backoff
from ..model.config import Config
from ..model.indexes import (
    IndexPlan,
    IndexReport,
    IndexRequest,
    IndexState,
    IndexStep,
    IndexTree,
    StepKind,
    StepResult,
)
from ..model.report import Outcome
from ..model.text import first_line
from .hooks import AsyncSleep

IndexHook = Callable[[IndexStep, int, int], object]
"""Called before each step with the step, its number and the number of steps in this round
(progress bars, crash tests); may be a coroutine function for `AsyncManager`."""

ROUNDS = 3
"""Plans run per build: the first, then again while a round did something and the new plan
has steps for tables the earlier rounds did not fail on (partitions created meanwhile)."""


def split_table(table: str) -> tuple[str, str]:
    """ "schema.name" -> (schema, name); a bare name is in public."""
    schema, dot, name = table.partition(".")
    return (schema, name) if dot else ("public", table)


class AsyncIndexBuilder:
    """Builds and inspects indexes of partitioned tables; see the module docstring."""

    def __init__(
        self, config: Config, logger: logging.Logger, *, sleep: AsyncSleep = asyncio.sleep
    ) -> None:
        self.config = config
        self.logger = logger
        self.sleep = sleep
        self._backoff = Backoff(config.retry_backoff.total_seconds(), jitter=0.5)

    # -- reading -----------------------------------------------------------------------------

    async def tree(self, conn: psycopg.AsyncConnection[Any], table: str) -> IndexTree:
        """The table's tree and indexes; TableNotFoundError / NotPartitionedError otherwise."""
        schema, name = split_table(table)
        await _rollback(conn)
        cur = await conn.execute(ddl.script(q.read_queries(schema, name, self.config.lock_timeout)))
        sets = await _row_sets(cur)
        relkind, tree = q.parse_tree(sets)
        check_table(f"{schema}.{name}", relkind)
        assert tree is not None
        return tree

    async def status(self, conn: psycopg.AsyncConnection[Any], table: str) -> list[IndexState]:
        return index_states(await self.tree(conn, table))

    # -- building ----------------------------------------------------------------------------

    async def create(
        self,
        conn: psycopg.AsyncConnection[Any],
        table: str,
        request: IndexRequest,
        *,
        on_step: IndexHook | None = None,
        build_timeout: dt.timedelta | None = None,
    ) -> IndexReport:
        started = time.perf_counter()
        tree = await self.tree(conn, table)
        plan = plan_index(tree, request)  # bad input is refused here, before any DDL
        report = IndexReport(
            table=plan.table,
            index=plan.qualified_index,
            definition=plan.definition,
            unique=plan.unique,
            existed=plan.existed,
        )
        key = q.build_key(plan.table)
        cur = await conn.execute(sql.SQL("SELECT pg_try_advisory_lock({})").format(key))
        row = await cur.fetchone()
        if not row or not row[0]:
            raise LockUnavailableError(
                f"another index build on {plan.table} is running (its advisory lock is held); "
                "nothing was done: run this again once it has finished"
            )
        try:
            for _ in range(ROUNDS):
                if not plan.steps:
                    break
                did = await self._round(conn, plan, report, on_step, build_timeout)
                tree = await self.tree(conn, plan.table)
                plan = plan_index(tree, IndexRequest(plan.columns, plan.unique, plan.name))
                tried = {r.step.table.oid for r in report.results if r.outcome != Outcome.OK}
                if not did or {s.table.oid for s in plan.steps} <= tried:
                    break  # nothing new: what was skipped waits for the next run
        finally:
            await _rollback(conn)
            await conn.execute(
                ddl.script([ddl.RESET_BUDGET, sql.SQL("SELECT pg_advisory_unlock({})").format(key)])
            )
        state = state_of(tree, plan.name)
        report.valid = state is not None and state.valid
        report.missing = [] if state is None else sorted(state.holdings)
        report.notes = list(plan.notes)
        report.duration_ms = (time.perf_counter() - started) * 1000
        counts = report.counts()
        log_event(
            self.logger,
            logging.INFO if report.valid else logging.WARNING,
            "index_build_finished",
            f"index {report.index} on {report.table}: "
            + ("valid" if report.valid else f"{len(report.missing)} partition(s) still lack it")
            + f" ({', '.join(f'{k} {v}' for k, v in counts.items() if v)})",
            table=report.table,
            index=report.index,
            valid=report.valid,
            missing=len(report.missing),
            duration_ms=round(report.duration_ms, 1),
            **counts,
        )
        return report

    async def _round(
        self,
        conn: psycopg.AsyncConnection[Any],
        plan: IndexPlan,
        report: IndexReport,
        on_step: IndexHook | None,
        build_timeout: dt.timedelta | None,
    ) -> bool:
        """Run the plan's steps in order; returns whether any of them did something."""
        held: set[int] = set()  # tables whose later steps wait (a step of theirs, or below, failed)
        dead: set[int] = set()  # partitioned tables whose own index could not be made
        did = False
        total = len(plan.steps)
        for number, step in enumerate(plan.steps, 1):
            if step.table.oid in held or dead.intersection(step.path):
                result = StepResult(
                    step,
                    Outcome.SKIPPED,
                    "not attempted: an earlier step of this partition (or below it) did not "
                    "complete; the next run resumes it",
                    attempts=0,
                )
            else:
                if on_step is not None:
                    if True:  # ASYNC
                        done = on_step(step, number, total)
                        if inspect.isawaitable(done):
                            await done
                    else:
                        on_step(step, number, total)
                result = await self._attempt(conn, step, build_timeout)
            report.results.append(result)
            self._log(result)
            if result.outcome == Outcome.OK:
                did = True
            else:
                held.update(step.path)
                if step.kind == StepKind.CREATE_PARENT:
                    dead.add(step.table.oid)
        return did

    async def _attempt(
        self,
        conn: psycopg.AsyncConnection[Any],
        step: IndexStep,
        build_timeout: dt.timedelta | None,
    ) -> StepResult:
        attempts = 0
        started = time.perf_counter()
        budget = self.config.lock_timeout
        while True:
            attempts += 1
            why = await self._blockers(conn, step)
            if why is None:
                try:
                    await self._execute(conn, step, build_timeout)
                except ddl.RETRYABLE as error:
                    await _rollback(conn)
                    why = (
                        f"lock not available within lock_timeout "
                        f"{budget.total_seconds() * 1000:.0f}ms ({first_line(error)})"
                    )
                except psycopg.Error as error:
                    await _rollback(conn)
                    if step.kind == StepKind.BUILD:
                        await self._drop_leftover(conn, step)
                    return StepResult(
                        step,
                        Outcome.FAILED,
                        _explain(step, error),
                        attempts,
                        (time.perf_counter() - started) * 1000,
                    )
                else:
                    return StepResult(
                        step, Outcome.OK, None, attempts, (time.perf_counter() - started) * 1000
                    )
            if attempts > self.config.max_retries:
                return StepResult(
                    step,
                    Outcome.SKIPPED,
                    f"{why}; skipped after {attempts} attempt(s) so the application never waits "
                    "behind partman; run the build again to resume it",
                    attempts,
                    (time.perf_counter() - started) * 1000,
                )
            await self.sleep(self._backoff.delay(attempts))

    async def _blockers(self, conn: psycopg.AsyncConnection[Any], step: IndexStep) -> str | None:
        cur = await conn.execute(q.blockers_query(step, self.config.lock_timeout))
        rows = await cur.fetchall()
        if not rows:
            return None
        who = "; ".join(
            f"pid {pid} ({app or 'no application_name'}, {state}, transaction open "
            f"{age or 0:.1f}s, holds {mode} on {rel}: {query!r})"
            for pid, mode, rel, app, state, age, query in rows
        )
        return f"{step.label} would wait behind {who}"

    async def _execute(
        self,
        conn: psycopg.AsyncConnection[Any],
        step: IndexStep,
        build_timeout: dt.timedelta | None,
    ) -> None:
        config = self.config
        if step.kind in (StepKind.CREATE_PARENT, StepKind.ATTACH):
            await conn.execute(
                ddl.script(
                    [
                        ddl.begin(config.lock_timeout, config.statement_timeout),
                        step.statement(),
                        ddl.COMMIT,
                    ]
                )
            )
            return
        found = await self._index(conn, step)
        if step.kind == StepKind.BUILD:
            if found == "valid":
                return  # built by an earlier attempt that only failed to answer
            if found == "invalid":  # an earlier attempt's leftover
                await self._concurrently(conn, _drop(step), config.statement_timeout)
            await self._concurrently(conn, step.statement(), build_timeout)
            return
        if found == "invalid":  # DROP_INVALID: only what is still an invalid index of this table
            await self._concurrently(conn, step.statement(), config.statement_timeout)

    async def _index(self, conn: psycopg.AsyncConnection[Any], step: IndexStep) -> str | None:
        """Where the step's index stands now: None (no such relation), "valid", "invalid"
        (not valid or not ready); a relation of that name that is not an index of the step's
        table stops the step, which never drops what is not its own."""
        cur = await conn.execute(q.index_query(step.table.schema, step.index))
        found = await cur.fetchone()
        if found is None:
            taken = await conn.execute(
                sql.SQL("SELECT to_regclass({})").format(
                    sql.Literal(step.index_ident.as_string(conn))
                )
            )
            row = await taken.fetchone()
            if row is not None and row[0] is not None:
                raise pgerrors.DuplicateTable(
                    f"relation {step.table.schema}.{step.index} exists and is not an index of "
                    f"{step.table.qualified}; left alone"
                )
            return None
        table, valid, ready = found
        if table != step.table.oid:
            raise pgerrors.DuplicateTable(
                f"index {step.table.schema}.{step.index} is on another table than "
                f"{step.table.qualified}; left alone"
            )
        return "valid" if valid and ready else "invalid"

    async def _concurrently(
        self,
        conn: psycopg.AsyncConnection[Any],
        statement: sql.Composed,
        statement_timeout: dt.timedelta | None,
    ) -> None:
        """A statement that cannot run in a transaction block, alone, with the lock budget set
        for the session and reset after."""
        await conn.execute(q.session_timeouts(self.config.lock_timeout, statement_timeout))
        try:
            await conn.execute(statement)
        finally:
            await _rollback(conn)
            await conn.execute(ddl.RESET_BUDGET)

    async def _drop_leftover(self, conn: psycopg.AsyncConnection[Any], step: IndexStep) -> None:
        """A build that failed for good (duplicate values of a unique index, say) leaves an
        invalid index: drop it (only that: an invalid index of the step's table), under the
        budget; if that cannot be done now, the next run finds it and drops it first."""
        try:
            if await self._index(conn, step) == "invalid":
                await self._concurrently(conn, _drop(step), self.config.statement_timeout)
        except psycopg.Error:
            await _rollback(conn)

    def _log(self, result: StepResult) -> None:
        step = result.step
        level = logging.INFO if result.outcome == Outcome.OK else logging.WARNING
        log_event(
            self.logger,
            level,
            f"index_{step.kind.value}",
            f"{step.label}: {result.outcome}" + (f" ({result.reason})" if result.reason else ""),
            table=step.table.qualified,
            index=f"{step.table.schema}.{step.index}",
            outcome=result.outcome,
            error=result.reason,
            attempts=result.attempts,
            duration_ms=round(result.duration_ms, 3),
        )


def _drop(step: IndexStep) -> sql.Composed:
    return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(step.index_ident)


def _explain(step: IndexStep, error: psycopg.Error) -> str:
    text = first_line(error)
    if isinstance(error, pgerrors.UniqueViolation):
        return (
            f"{text}: {step.table.qualified} holds rows that are not unique on "
            f"({', '.join(step.columns)}); remove the duplicates, then run the build again"
        )
    if isinstance(error, pgerrors.QueryCanceled):
        return f"{text}: the statement ran longer than its statement_timeout"
    return text


async def _row_sets(cur: psycopg.AsyncCursor[Any]) -> list[list[Any]]:
    """The rows of every statement that returned rows, in a multi-statement query."""
    out: list[list[Any]] = []
    while True:
        if cur.description is not None:
            out.append(await cur.fetchall())
        if not cur.nextset():
            return out


async def _rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        await conn.execute(ddl.ROLLBACK)
