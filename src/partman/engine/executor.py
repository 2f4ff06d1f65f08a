# Generated from src/partman/executor_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""Applying a Plan without blocking the application: the only module that sends DDL.

- Before touching a parent, look for transactions that would make a lock request queue
  (holding a conflicting lock for longer than the lock budget, or idle in transaction) and
  skip that parent this pass, naming the backend; the rest of the pass goes on.
- Each transaction is short, runs under `lock_timeout`, takes the parent's advisory lock first
  (two partman processes never work on one parent at once), and carries its own ownership
  records and audit rows, so a crash leaves each step wholly done or wholly undone.
- A transaction that cannot get its locks in time is retried with jittered backoff and then
  skipped with the reason: partman never queues in front of the application.
- The LIST shape's tenants (each one's partition a parent of its own) go many to a
  transaction, each tenant in a subtransaction of its own: a round trip per batch, not per
  tenant; a tenant that fails there goes on alone, as above (`_apply_tenants`).
- Rows waiting in a DEFAULT partition are moved into a new partition (DELETE ... RETURNING
  into INSERT, one statement per batch) before it is attached: never lost, never doubled.
- Retention detaches with `DETACH PARTITION ... CONCURRENTLY` where PostgreSQL allows it,
  checks the partition's real newest row before anything irreversible, asks the pre-drop hook,
  then drops, keeps or archives it.

The statements it sends are composed in `db/ddl.py` (and each operation's DDL in
`model/operations.py`); here is only what to send, in which order, and what the answers mean.

Source of truth for both faces: `executor.py` (`Executor`) is generated from this file
(`AsyncExecutor`) by tools/async_to_sync.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..db import ddl, metadata
from ..db import rollup as rollups
from ..db.catalog import SESSION_SETTINGS
from ..db.fence import Fence, is_fenced
from ..decide.expiry import check_verdict
from ..logs import log_event
from ..model import snapshot
from ..model.archive import ArchiveError
from ..model.backoff import Backoff
from ..model.columns import tenant_text
from ..model.config import Config
from ..model.holders import Holder
from ..model.operations import (
    CreateDefaultPartition,
    CreatePartition,
    FinePartition,
    ForgetPartition,
    Operation,
    RetirePartition,
    RollupPartition,
    Stage,
    identity_index_statement,
)
from ..model.report import OperationResult, Outcome, Skipped, SkipReason
from ..model.text import first_line, iso
from . import export
from .autovacuum import cancel_autovacuum
from .hooks import HOOK_DECISIONS, PreDropHook, Sleep, StepHook

_TENANT_BATCH = 60
"""Tenants a transaction of the LIST shape's batched work at most (`_apply_tenants`): the
per-transaction cost (a commit, a look for lock holders) is paid per batch. Each tenant is a
subtransaction that writes; past 64 of them a backend's subtransaction cache overflows and
every other session's snapshot must then read pg_subtrans while the batch runs (a slowdown
the application would feel), so a batch stays under that."""
_ANALYZE_BATCH = 200
"""Parents one `ANALYZE (SKIP_LOCKED)` statement names (each gets its own transaction)."""
_BATCH_PARTITIONS = 400
"""Partitions a batched transaction makes at most: each holds several locks until the commit,
and the server's lock table is finite (`max_locks_per_transaction`)."""
_CREATE_BUDGET = 1.0
"""Seconds a batch of creates should take: its locks (SHARE UPDATE EXCLUSIVE on each tenant's
partition, which the application's reads and writes do not wait for) are held until its end."""
_LEAST_COST = 0.0005
_LEAST_WAIT = dt.timedelta(milliseconds=1)
"""(`lock_timeout = 0` would mean no limit.)"""
_FAILED = sql.Literal("partman.batch_failed")
"""The transaction-local setting in which a batch's failed subtransactions are gathered."""


class Executor:
    """Applies operations over one autocommit connection; see the module docstring."""

    def __init__(
        self,
        config: Config,
        logger: logging.Logger,
        *,
        pre_drop_hook: PreDropHook | None = None,
        on_step: StepHook | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.config = config
        self.meta = config.metadata_schema
        self.logger = logger
        self.pre_drop_hook = pre_drop_hook
        self.on_step = on_step
        self.sleep = sleep
        self._backoff = Backoff(config.retry_backoff.total_seconds(), jitter=0.5)
        self._fence: Fence | None = None
        """The pass's fence (a scheduled pass of the service): checked first in every
        transaction, and before each DETACH ... CONCURRENTLY (`db/fence.py`)."""
        self._create_cost = 0.005
        """Seconds a tenant's creates take in a batch (measured, `_cost`): sizes the next one."""
        self._retire_cost = 0.005
        """Seconds a tenant's retention takes in a batch: sizes the next one to `lock_timeout`."""
        self._rollups: dict[int, dict[str, rollups.CopySnapshot]] = {}
        """A roll-up's progress while `_run` retries it: the partitions copied (with their
        snapshots), by id of the operation; present once its coarse table is built."""
        """Lock retries spread out, so that writers waiting on the same lock do not line up
        again behind each other."""

    # -- the pass ----------------------------------------------------------------------------

    def apply(
        self,
        conn: psycopg.Connection[Any],
        operations: Sequence[Operation],
        run_id: str,
        *,
        fence: Fence | None = None,
    ) -> list[OperationResult]:
        """Apply the operations, table by table. With a `fence`, a fence check that fails
        ends the pass at once (raised): this replica no longer leads."""
        self._fence = fence
        try:
            return self._apply(conn, operations, run_id)
        finally:
            self._fence = None

    def _apply(
        self, conn: psycopg.Connection[Any], operations: Sequence[Operation], run_id: str
    ) -> list[OperationResult]:
        results: list[OperationResult] = []
        groups: dict[str, list[Operation]] = {}
        for op in operations:
            groups.setdefault(op.parent_qualified, []).append(op)
        tenants = {parent: ops for parent, ops in groups.items() if self._batchable(ops)}
        for parent, ops in groups.items():
            if parent not in tenants:
                results += self._apply_group(conn, parent, ops, run_id)
        if tenants:
            results += self._apply_tenants(conn, tenants, run_id)
        self._analyze(conn, results)
        return results

    def _apply_group(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[Operation], run_id: str
    ) -> list[OperationResult]:
        """One parent's operations on their own; an unexpected error fails what is left of
        them, never the other parents."""
        results: list[OperationResult] = []
        try:
            results += self._apply_parent(conn, parent, ops, run_id)
        except Exception as error:  # one bad table never stops the others
            _rollback(conn)
            if is_fenced(error):  # ... but a deposed leader stops altogether
                raise
            handled = {id(r.operation) for r in results}
            reason = f"unexpected error on {parent}: {first_line(error)}"
            rest = [
                OperationResult(op, Outcome.FAILED, reason, attempts=0)
                for op in ops
                if id(op) not in handled
            ]
            self._finish(conn, run_id, rest)
            results += rest
        return results

    # -- a LIST shape's tenants, many to a transaction ----------------------------------------

    def _batchable(self, ops: list[Operation]) -> bool:
        """A LIST tenant's own partition (the parent of its periods: every operation is of
        one tenant) whose work this pass is plain: a few creates with no default partition to
        move rows out of and no replica-identity index to name, and retention of attached
        partitions, not exported. Such parents go many to a transaction (`_apply_tenants`);
        anything else goes parent by parent."""
        tenant = ops[0].tenant
        if tenant is None:
            return False
        creates = retires = 0
        for op in ops:
            if op.tenant != tenant:
                return False
            if type(op) is CreatePartition:
                if op.move is not None or op.traits.replica_identity == "i":
                    return False
                creates += 1
            elif type(op) is RetirePartition:
                if op.stage != Stage.ATTACHED or op.action == "export":
                    return False
                retires += 1
            else:
                return False
        return creates <= self.config.batch_size and retires <= self.config.batch_size

    def _apply_tenants(
        self,
        conn: psycopg.Connection[Any],
        groups: dict[str, list[Operation]],
        run_id: str,
    ) -> list[OperationResult]:
        """Tenants' parents in batches of up to `_TENANT_BATCH` (fewer when a batch would hold
        its locks longer than its budget, and at most `_BATCH_PARTITIONS` partitions a
        transaction). Each tenant of a transaction is a subtransaction of its own
        (`_subtransactions`): one whose lock is not granted in time, or that fails, is rolled
        back alone and goes on parent by parent (`_apply_group`: the look for lock holders,
        which names them, retries with backoff), as does every tenant's retention with DETACH
        ... CONCURRENTLY (it cannot run in a transaction block) or under a pre-drop hook."""
        if not self.config.detach_concurrently:
            groups = {
                parent: [
                    dataclasses.replace(op, concurrently=False)
                    if isinstance(op, RetirePartition)
                    else op
                    for op in ops
                ]
                for parent, ops in groups.items()
            }
        results: list[OperationResult] = []
        later: dict[str, list[Operation]] = {}
        pending = list(groups.items())
        while pending:
            size = min(_TENANT_BATCH, max(1, int(_CREATE_BUDGET / self._create_cost)))
            chunk: list[tuple[str, list[Operation]]] = []
            weight = 0
            while pending and len(chunk) < size:
                w = sum(_weight(op) for op in pending[0][1])
                if chunk and weight + w > _BATCH_PARTITIONS:
                    break
                chunk.append(pending.pop(0))
                weight += w
            done = len(results)
            try:
                self._tenant_batch(conn, dict(chunk), run_id, later, results)
            except Exception as error:  # what is left of the batch goes parent by parent
                _rollback(conn)
                if is_fenced(error):
                    raise
                handled = {id(r.operation) for r in results[done:]}
                handled |= {id(op) for ops in later.values() for op in ops}
                for parent, ops in chunk:
                    rest = [op for op in ops if id(op) not in handled]
                    if rest:
                        later.setdefault(parent, []).extend(rest)
        for parent, ops in later.items():
            results += self._apply_group(conn, parent, ops, run_id)
        return results

    def _tenant_batch(
        self,
        conn: psycopg.Connection[Any],
        chunk: dict[str, list[Operation]],
        run_id: str,
        later: dict[str, list[Operation]],
        results: list[OperationResult],
    ) -> None:
        """One batch of tenants: the look for lock holders of all of them in one round trip,
        their creates in one transaction, then their retention in transactions sized to hold
        ACCESS EXCLUSIVE briefly. A tenant whose creates did not go in waits for the parent by
        parent path with all its work (its retention comes after its creates). Results go
        into `results` as they are committed."""
        concurrent = {
            parent: [op for op in ops if isinstance(op, RetirePartition)]
            for parent, ops in chunk.items()
            if self.pre_drop_hook is not None
            or any(isinstance(op, RetirePartition) and op.concurrently for op in ops)
        }
        for parent, ops in concurrent.items():
            if ops:
                later.setdefault(parent, []).extend(ops)
        live = {
            parent: [
                op for op in ops if not (parent in concurrent and isinstance(op, RetirePartition))
            ]
            for parent, ops in chunk.items()
        }
        live = {parent: ops for parent, ops in live.items() if ops}
        blocked = self._blockers_many(conn, live)
        skipped: list[OperationResult] = []
        for parent, reason in blocked.items():
            log_event(
                self.logger,
                logging.WARNING,
                "table_skipped",
                reason,
                table=parent,
                operations=len(live[parent]),
            )
            skipped += [
                OperationResult(
                    op, Outcome.SKIPPED, reason, attempts=0, skip_reason=SkipReason.LOCK_HOLDER
                )
                for op in live.pop(parent) + later.pop(parent, [])
            ]
        self._finish(conn, run_id, skipped, log=False)
        results += skipped
        creates = {
            parent: [op for op in ops if isinstance(op, CreatePartition)]
            for parent, ops in live.items()
        }
        creates = {parent: ops for parent, ops in creates.items() if ops}
        if creates:
            done, failed = self._create_tenants(conn, creates, run_id)
            results += done
            for parent in failed:  # its retention waits for its creates
                later[parent] = live.pop(parent) + later.get(parent, [])
        retires = {
            parent: [op for op in ops if isinstance(op, RetirePartition)]
            for parent, ops in live.items()
        }
        pending = [(parent, ops) for parent, ops in retires.items() if ops]
        while pending:
            size = max(1, int(self.config.lock_timeout.total_seconds() / self._retire_cost))
            batch = dict(pending[:size])
            del pending[:size]
            results += self._retire_tenants(conn, batch, run_id, later)

    def _blockers_many(
        self, conn: psycopg.Connection[Any], groups: dict[str, list[Operation]]
    ) -> dict[str, str]:
        """`_blockers` for many parents in one round trip: why each blocked one is skipped."""
        if not groups:
            return {}
        cur = conn.execute(ddl.script([self._blockers_query(ops) for ops in groups.values()]))
        found = _row_sets(cur)
        reasons: dict[str, str] = {}
        for parent, rows in zip(groups, found, strict=True):
            holders = self._in_the_way(conn, rows)
            if (reason := _blocked_reason(parent, holders)) is not None:
                reasons[parent] = reason
        return reasons

    def _in_the_way(
        self, conn: psycopg.Connection[Any], rows: Sequence[Any]
    ) -> list[Holder]:
        """The look for holders' rows, less the autovacuum workers cancelled (when nothing
        else is in the way: with another holder the pass skips the parent anyway)."""
        holders = [Holder.of(row) for row in rows]
        if not holders or any(not h.autovacuum for h in holders):
            return holders
        return cancel_autovacuum(conn, holders, self.logger)

    def _create_tenants(
        self,
        conn: psycopg.Connection[Any],
        groups: dict[str, list[CreatePartition]],
        run_id: str,
    ) -> tuple[list[OperationResult], list[str]]:
        """The creates of many tenants in one transaction, one round trip: each tenant's
        advisory lock, DDL, ownership records and audit rows in a subtransaction of its own,
        so what a crash leaves is each tenant's creates wholly done or wholly undone, as
        parent by parent. Returns the results and the tenants whose subtransaction failed."""
        blocks: list[list[sql.Composable]] = []
        for parent, ops in groups.items():
            parts: list[sql.Composable] = [ddl.parent_lock_sql(parent)]
            for op in ops:
                parts += op.statements()
                parts += ddl.created_records(self.meta, op)
            audits = [ddl.audit_entry(op, Outcome.OK) for op in ops]
            parts.append(metadata.audit_sql(self.meta, run_id, audits))
            blocks.append(parts)
            for op in ops:
                self._step("create", op)
        started = time.perf_counter()
        failed = self._subtransactions(conn, blocks, begin=True)
        elapsed = time.perf_counter() - started
        self._create_cost = _cost(self._create_cost, elapsed, len(blocks))
        results: list[OperationResult] = []
        missed: list[str] = []
        each = elapsed * 1000 / max(1, sum(len(ops) for ops in groups.values()))
        for i, (parent, ops) in enumerate(groups.items()):
            if i in failed:
                missed.append(parent)
                continue
            for op in ops:
                r = OperationResult(op, Outcome.OK, None, each, 1)
                self._log(r)
                results.append(r)
        return results, missed

    def _retire_tenants(
        self,
        conn: psycopg.Connection[Any],
        groups: dict[str, list[RetirePartition]],
        run_id: str,
        later: dict[str, list[Operation]],
    ) -> list[OperationResult]:
        """Retention of many tenants (not CONCURRENTLY) in one transaction, two round trips:
        each parent's advisory lock tried (another partman has it: parent by parent) and every
        partition checked (still the plan's, no row inside the window), then each tenant's
        DROP (or DETACH and keep or archive), records and audit rows in a subtransaction of its
        own, its parent locked first with a wait of its share of the lock budget: the waits of
        a batch add up to `lock_timeout` at most, and the batch is sized so its work takes
        about as long (`_retire_cost`), since the application's queries of the tenants
        already done wait for the commit."""
        retiring = [op for group in groups.values() for op in group]
        for op in retiring:
            self._step("check", op)
        parents = list(groups)
        keys = sql.SQL(", ").join(
            sql.SQL("pg_try_advisory_xact_lock({})").format(ddl.parent_key(p)) for p in parents
        )
        try:
            cur = conn.execute(
                ddl.script(
                    [
                        self._begin(),
                        SESSION_SETTINGS,
                        sql.SQL("SELECT {}").format(keys),
                        ddl.guards_query([op.oid for op in retiring]),
                        ddl.newest_rows_query(retiring),
                    ]
                )
            )
            locked, guards, spans = (_row_sets(cur))[-3:]
        except psycopg.Error as error:  # a partition renamed or gone: parent by parent says which
            _rollback(conn)
            if is_fenced(error):
                raise
            for parent, group in groups.items():
                later.setdefault(parent, []).extend(group)
            return []
        held = dict(zip(parents, locked[0], strict=True))
        skipped: list[OperationResult] = []
        details: dict[int, str] = {}
        for op, g, (_, oldest, newest, inside) in zip(retiring, guards, spans, strict=True):
            verdict = check_verdict(op, g, oldest, newest, inside)
            if isinstance(verdict, Skipped):
                skipped.append(
                    OperationResult(op, Outcome.SKIPPED, str(verdict), skip_reason=verdict.reason)
                )
            else:
                details[id(op)] = verdict
        wait = max(self.config.lock_timeout / max(1, len(groups)), _LEAST_WAIT)
        blocks: list[list[sql.Composable]] = []
        batched: list[tuple[str, list[RetirePartition]]] = []
        for parent, group in groups.items():
            if not held[parent]:  # another partman is on it: parent by parent waits for it
                later.setdefault(parent, []).extend(group)
                continue
            good = [op for op in group if id(op) in details]
            if not good:
                continue
            first = good[0]
            locks = sql.SQL(", ").join(
                sql.SQL("ONLY {}").format(t) for t in [first.parent, *(op.partition for op in good)]
            )
            parts: list[sql.Composable] = [
                sql.SQL("SET LOCAL lock_timeout = {}").format(ddl.ms(wait)),
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(locks),
            ]
            dropped = [op.partition for op in good if op.action == "drop"]
            if dropped:
                parts.append(ddl.drop_tables(dropped))
            for op in good:
                if op.action != "drop":
                    parts += [op.detach_statement(), *op.finish_statements(op.action)]
                parts += self._retired_sql(op)
            audits = [ddl.audit_entry(op, Outcome.OK, detail=details[id(op)]) for op in good]
            parts.append(metadata.audit_sql(self.meta, run_id, audits))
            blocks.append(parts)
            batched.append((parent, good))
            for op in good:
                self._step("detach", op)
                self._step("finish", op)
        if not blocks:
            _rollback(conn)
            self._finish(conn, run_id, skipped)
            return skipped
        started = time.perf_counter()
        failed = self._subtransactions(conn, blocks, begin=False)
        elapsed = time.perf_counter() - started
        self._retire_cost = _cost(self._retire_cost, elapsed, len(blocks))
        self._finish(conn, run_id, skipped)
        results = list(skipped)
        each = elapsed * 1000 / max(1, sum(len(good) for _, good in batched))
        for i, (parent, good) in enumerate(batched):
            if i in failed:
                later.setdefault(parent, []).extend(good)
                continue
            for op in good:
                r = OperationResult(op, Outcome.OK, None, each, 1, details[id(op)])
                self._log(r)
                results.append(r)
        return results

    def _subtransactions(
        self,
        conn: psycopg.Connection[Any],
        blocks: list[list[sql.Composable]],
        *,
        begin: bool,
    ) -> set[int]:
        """Run each block of statements in a subtransaction of its own and commit, in one
        round trip: a PL/pgSQL block with an exception handler is a savepoint, so a block that
        fails (a lock not granted within lock_timeout, an error) is rolled back alone while
        the others commit. The failed blocks' numbers are gathered in a setting local to the
        transaction and read back before the commit. With `begin`, the transaction (and the
        fence check) starts here; else it is open already."""
        body = sql.SQL(" ").join(
            sql.SQL(
                "BEGIN {} EXCEPTION WHEN OTHERS THEN PERFORM set_config({name}, "
                "coalesce(current_setting({name}, true), '') || {number}, true); END;"
            ).format(
                sql.SQL(" ").join(
                    sql.SQL("EXECUTE {};").format(sql.Literal(part.as_string(conn)))
                    for part in parts
                ),
                name=_FAILED,
                number=sql.Literal(f" {i}"),
            )
            for i, parts in enumerate(blocks)
        )
        block = sql.SQL("DO {}").format(
            sql.Literal(sql.SQL("BEGIN {} END").format(body).as_string(conn))
        )
        sent: list[sql.Composable] = [self._begin()] if begin else []
        sent += [
            block,
            sql.SQL("SELECT coalesce(current_setting({}, true), '')").format(_FAILED),
            ddl.COMMIT,
        ]
        cur = conn.execute(ddl.script(sent))
        row = _last_row(cur)
        return {int(n) for n in str(row[0] if row else "").split()}

    def _analyze(
        self, conn: psycopg.Connection[Any], results: Sequence[OperationResult]
    ) -> None:
        """`ANALYZE ONLY` each parent whose partition set changed, where the server has it
        (PostgreSQL 18): autovacuum never analyzes a partitioned parent. Outside the DDL
        transactions, under the lock budget; a lock not granted in time skips it, logged."""
        if conn.info.server_version < ddl.ANALYZE_ONLY_SINCE:
            return
        changed = {
            r.operation.parent_qualified: r.operation.parent
            for r in results
            if r.outcome == Outcome.OK and not isinstance(r.operation, ForgetPartition)
        }
        if len(changed) > 1:  # a LIST shape's tenants: many parents, one statement a batch
            self._analyze_many(conn, list(changed.values()))
            return
        for name, parent in changed.items():
            try:
                conn.execute(
                    ddl.analyze_only(
                        parent, self.config.lock_timeout, self.config.statement_timeout
                    )
                )
            except psycopg.Error as error:
                _rollback(conn)
                log_event(
                    self.logger,
                    logging.INFO,
                    "analyze_skipped",
                    f"ANALYZE ONLY {name} skipped ({first_line(error)}); the next pass that "
                    "changes its partitions tries again",
                    table=name,
                    error=first_line(error),
                )

    def _analyze_many(
        self, conn: psycopg.Connection[Any], parents: list[sql.Identifier]
    ) -> None:
        """`ANALYZE (SKIP_LOCKED) ONLY a, ONLY b, ...`, `_ANALYZE_BATCH` parents a statement,
        sent alone so that the server analyzes each parent in a transaction of its own (its
        sample locks every partition under it: one transaction for all of them would pile up
        their locks). A parent whose lock is not free at once is skipped (the server logs it);
        the next pass that changes its partitions tries again. The lock budget is the
        session's meanwhile (SET LOCAL cannot reach a statement that is its own transactions)."""
        conn.execute(
            ddl.session_budget(self.config.lock_timeout, self.config.statement_timeout)
        )
        try:
            for i in range(0, len(parents), _ANALYZE_BATCH):
                chunk = parents[i : i + _ANALYZE_BATCH]
                statement = sql.SQL("ANALYZE (SKIP_LOCKED) {}").format(
                    sql.SQL(", ").join(sql.SQL("ONLY {}").format(p) for p in chunk)
                )
                try:
                    conn.execute(statement)
                except psycopg.Error as error:
                    _rollback(conn)
                    log_event(
                        self.logger,
                        logging.INFO,
                        "analyze_skipped",
                        f"ANALYZE ONLY of {len(chunk)} parent(s) stopped ({first_line(error)}); "
                        "the next pass that changes their partitions tries again",
                        tables=len(chunk),
                        error=first_line(error),
                    )
        finally:
            conn.execute(ddl.RESET_BUDGET)

    def _apply_parent(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[Operation], run_id: str
    ) -> list[OperationResult]:
        if not self.config.detach_concurrently:  # quiet tables: pg_partman's way, in batches
            ops = [
                dataclasses.replace(op, concurrently=False)
                if isinstance(op, RetirePartition) and op.stage == Stage.ATTACHED
                else op
                for op in ops
            ]
        blocked = self._blockers(conn, parent, ops)
        if blocked:
            skipped = [
                OperationResult(
                    op, Outcome.SKIPPED, blocked, attempts=0, skip_reason=SkipReason.LOCK_HOLDER
                )
                for op in ops
            ]
            log_event(
                self.logger,
                logging.WARNING,
                "table_skipped",
                blocked,
                table=parent,
                operations=len(ops),
            )
            self._finish(conn, run_id, skipped, log=False)
            return skipped
        results: list[OperationResult] = []
        units = self._units(ops)
        decided_ids: set[int] = set()  # the pre-drop hook is asked once per operation
        while units:
            unit = units.pop(0)
            if isinstance(unit[0], RetirePartition):
                decided: list[RetirePartition] = []
                for op in unit:
                    assert isinstance(op, RetirePartition)
                    choice = op if id(op) in decided_ids else self._decide(op)
                    if isinstance(choice, OperationResult):
                        self._finish(conn, run_id, [choice])
                        results.append(choice)
                    else:
                        decided_ids.add(id(choice))
                        decided.append(choice)
                if not decided:
                    continue
                if len(decided) > 1:
                    many = self._retire_many if decided[0].concurrently else self._retire_locked
                    done, leftover = many(conn, parent, decided, run_id)
                    results += done
                    units[:0] = [[op] for op in leftover]  # one at a time, with retries
                    continue
                unit = list(decided)
            outcome, blocked = self._run(conn, parent, unit, run_id)
            results += outcome
            if blocked:
                reason = (
                    f"not attempted: an earlier operation on {parent} was stopped ({blocked}); "
                    "the next pass retries"
                )
                rest = [
                    OperationResult(
                        op,
                        Outcome.SKIPPED,
                        reason,
                        attempts=0,
                        skip_reason=SkipReason.NOT_ATTEMPTED,
                    )
                    for later in units
                    for op in later
                ]
                self._finish(conn, run_id, rest)
                results += rest
                break
        return results

    def _units(self, ops: list[Operation]) -> list[list[Operation]]:
        """Transactions, in order: default partition, creates (batched when no rows can be
        waiting in a default), retention, metadata tidying."""
        size = self.config.batch_size
        defaults: list[list[Operation]] = [
            [op] for op in ops if isinstance(op, CreateDefaultPartition)
        ]
        plain: list[Operation] = [
            op for op in ops if isinstance(op, CreatePartition) and op.move is None
        ]
        moving: list[list[Operation]] = [
            [op] for op in ops if isinstance(op, CreatePartition) and op.move is not None
        ]
        # an interrupted detach first: PostgreSQL allows one pending detach per parent; then
        # the expired partitions, in batches (the same steps, each taken for the whole batch
        # at once): those detached CONCURRENTLY, then the others
        retiring = [op for op in ops if isinstance(op, RetirePartition)]
        resumed: list[Operation] = [op for op in retiring if op.stage != Stage.ATTACHED]
        # an export writes a file between its detach and its drop: one at a time, never batched
        exports: list[Operation] = [
            op for op in retiring if op.stage == Stage.ATTACHED and op.action == "export"
        ]
        retiring = [op for op in retiring if op.action != "export"]
        together: list[Operation] = [
            op for op in retiring if op.stage == Stage.ATTACHED and op.concurrently
        ]
        alone: list[Operation] = [
            op for op in retiring if op.stage == Stage.ATTACHED and not op.concurrently
        ]
        retire = (
            [[op] for op in resumed]
            + [[op] for op in exports]
            + [together[i : i + size] for i in range(0, len(together), size)]
            + [alone[i : i + size] for i in range(0, len(alone), size)]
        )
        forget: list[Operation] = [op for op in ops if isinstance(op, ForgetPartition)]
        batches = [plain[i : i + size] for i in range(0, len(plain), size)]
        rolls: list[list[Operation]] = [[op] for op in ops if isinstance(op, RollupPartition)]
        return defaults + moving + batches + rolls + retire + ([forget] if forget else [])

    def _decide(self, op: RetirePartition) -> RetirePartition | OperationResult:
        """Ask the pre-drop hook, once, before any lock is taken."""
        if self.pre_drop_hook is None:
            return op
        try:
            decision = self.pre_drop_hook(op)
        except Exception as error:
            return OperationResult(
                op,
                Outcome.FAILED,
                f"pre-drop hook raised {type(error).__name__}: {error}",
                attempts=0,
            )
        if decision is None:
            return op
        decision = str(decision).lower()
        if decision not in HOOK_DECISIONS:
            return OperationResult(
                op,
                Outcome.FAILED,
                f"pre-drop hook returned {decision!r}; expected one of {', '.join(HOOK_DECISIONS)}",
                attempts=0,
            )
        if decision == "skip":
            return OperationResult(
                op,
                Outcome.SKIPPED,
                "the pre-drop hook said skip",
                attempts=0,
                skip_reason=SkipReason.PRE_DROP_HOOK,
            )
        if decision == "archive" and op.archive_schema is None:
            return OperationResult(
                op,
                Outcome.FAILED,
                "the pre-drop hook chose archive, but the table has no archive_schema",
                attempts=0,
            )
        return dataclasses.replace(op, action=decision)

    def _run(
        self, conn: psycopg.Connection[Any], parent: str, unit: list[Operation], run_id: str
    ) -> tuple[list[OperationResult], str | None]:
        """Run one transaction unit with retries; returns its results, and why the rest of
        the parent should wait for the next pass (or None)."""
        attempts = 0
        blocked: str | None = None
        while True:
            attempts += 1
            started = time.perf_counter()
            try:
                detail = self._do(conn, parent, unit, run_id)
            except ddl.RETRYABLE as error:
                _rollback(conn)
                if attempts <= self.config.max_retries:
                    self.sleep(self._backoff.delay(attempts))
                    continue
                reason = (
                    f"lock not available on {parent} within lock_timeout "
                    f"{self.config.lock_timeout.total_seconds() * 1000:.0f}ms after {attempts} "
                    f"attempts ({first_line(error)}); skipped so the application never waits "
                    "behind partman; the next pass retries"
                )
                results = [
                    OperationResult(
                        op,
                        Outcome.SKIPPED,
                        reason,
                        attempts=attempts,
                        skip_reason=SkipReason.LOCK_TIMEOUT,
                    )
                    for op in unit
                ]
                blocked = "lock budget exhausted"
            except Skipped as why:
                _rollback(conn)
                results = [
                    OperationResult(
                        unit[0],
                        Outcome.SKIPPED,
                        str(why),
                        attempts=attempts,
                        skip_reason=why.reason,
                    )
                ]
            except ArchiveError as error:  # export: refused, or the file not written or wrong
                _rollback(conn)
                elapsed = (time.perf_counter() - started) * 1000
                results = [OperationResult(unit[0], Outcome.FAILED, str(error), elapsed, attempts)]
            except pgerrors.ObjectNotInPrerequisiteState as error:
                _rollback(conn)  # "partition ... already pending detach": one at a time
                reason = f"{first_line(error)}; it is finalized first, the next pass goes on"
                results = [
                    OperationResult(
                        unit[0],
                        Outcome.SKIPPED,
                        reason,
                        attempts=attempts,
                        skip_reason=SkipReason.DETACH_PENDING,
                    )
                ]
                blocked = "a detach is pending on the parent"
            except psycopg.Error as error:
                _rollback(conn)
                if is_fenced(error):
                    raise
                if len(unit) > 1:  # isolate the one that fails; the others still go in
                    out: list[OperationResult] = []
                    for op in unit:
                        done, blocked = self._run(conn, parent, [op], run_id)
                        out += done
                        if blocked:
                            break
                    return out, blocked
                elapsed = (time.perf_counter() - started) * 1000
                results = [
                    OperationResult(unit[0], Outcome.FAILED, ddl.explain(error), elapsed, attempts)
                ]
            else:
                elapsed = (time.perf_counter() - started) * 1000
                ok = [
                    OperationResult(op, Outcome.OK, None, elapsed / len(unit), attempts, detail)
                    for op in unit
                ]
                for r in ok:
                    self._log(r)
                return ok, None
            self._finish(conn, run_id, results)
            return results, blocked

    def _do(
        self, conn: psycopg.Connection[Any], parent: str, unit: list[Operation], run_id: str
    ) -> str | None:
        first = unit[0]
        if isinstance(first, RetirePartition):
            return self._retire(conn, parent, first, run_id)
        if isinstance(first, CreatePartition) and first.move is not None:
            return self._create_moving(conn, parent, first, run_id)
        if isinstance(first, ForgetPartition):
            self._forget(conn, unit, run_id)
            return None
        if isinstance(first, RollupPartition):
            return self._rollup(conn, parent, first, run_id)
        self._create_batch(conn, parent, unit, run_id)
        return None

    # -- the lock budget's look-ahead --------------------------------------------------------

    def _blockers(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[Operation]
    ) -> str | None:
        """Who would make our lock request queue? Holders of a conflicting lock whose
        transaction is older than the lock budget, or idle in transaction."""
        cur = conn.execute(self._blockers_query(ops))
        return _blocked_reason(parent, self._in_the_way(conn, cur.fetchall()))

    def _blockers_query(self, ops: list[Operation]) -> sql.Composed:
        creates = any(  # an ATTACH locks the default partition too
            isinstance(op, CreatePartition | CreateDefaultPartition)
            or (isinstance(op, RollupPartition) and not op.abandon)
            for op in ops
        )
        strong = any(
            (isinstance(op, RetirePartition) and op.stage == Stage.ATTACHED and not op.concurrently)
            or (isinstance(op, RollupPartition) and not op.abandon)
            for op in ops
        )
        return ddl.lock_blockers_query(
            ops[0].parent_schema,
            ops[0].parent_name,
            exclusive=strong,
            default_too=creates,
            budget=self.config.lock_timeout,
        )

    # -- creating ----------------------------------------------------------------------------

    def _begin(self) -> sql.Composed:
        return self._fenced(ddl.begin(self.config.lock_timeout, self.config.statement_timeout))

    def _fenced(self, begin: sql.Composed) -> sql.Composed:
        """A transaction's start, then (in a fenced pass) the fence check: nothing after it
        runs unless this replica still leads."""
        if self._fence is None:
            return begin
        return ddl.script([begin, self._fence.check()])

    def _check_fence(self, conn: psycopg.Connection[Any]) -> None:
        """The fence check on its own, before a statement that cannot run in a transaction
        block (DETACH ... CONCURRENTLY). The pass's connection holds the fence lock meanwhile,
        so a new leader ends it if this replica loses leadership in between."""
        if self._fence is not None:
            conn.execute(self._fence.check())

    def _step(self, name: str, op: Operation) -> None:
        if self.on_step is not None:
            self.on_step(name, op)

    def _create_batch(
        self, conn: psycopg.Connection[Any], parent: str, unit: list[Operation], run_id: str
    ) -> None:
        parts: list[sql.Composable] = [self._begin(), ddl.parent_lock_sql(parent)]
        audits: list[metadata.AuditEntry] = []
        for op in unit:
            assert isinstance(op, CreatePartition | CreateDefaultPartition)
            parts += op.statements()
            parts += ddl.created_records(self.meta, op)  # the default partition is partman's too
            audits.append(ddl.audit_entry(op, Outcome.OK))
        parts.append(metadata.audit_sql(self.meta, run_id, audits))
        self._step("create", unit[0])
        self._commit(conn, parts, unit)

    def _commit(
        self,
        conn: psycopg.Connection[Any],
        parts: list[sql.Composable],
        ops: Sequence[Operation],
    ) -> None:
        """Send `parts` and commit them. A partition whose parent's replica identity is an
        index gets its own index of it first, in the same transaction: ATTACH has just made
        or matched it, and only now can it be named (one more round trip, for those alone)."""
        indexed = [
            op
            for op in ops
            if isinstance(op, CreatePartition | CreateDefaultPartition | RollupPartition)
            and op.traits.replica_identity == "i"
        ]
        if not indexed:
            conn.execute(ddl.script([*parts, ddl.COMMIT]))
            return
        cur = conn.execute(ddl.script([*parts, ddl.identity_indexes_query(indexed)]))
        found = (_row_sets(cur))[-1]
        conn.execute(
            ddl.script(
                [
                    *(identity_index_statement(sql.Identifier(s, n), i) for s, n, i in found),
                    ddl.COMMIT,
                ]
            )
        )

    def _create_moving(
        self, conn: psycopg.Connection[Any], parent: str, op: CreatePartition, run_id: str
    ) -> str:
        """Create a partition of a parent that has a default partition, moving the default's
        rows of its range in first. Few rows: all in the transaction that attaches. Many: in
        batches into the new table while it is still unattached (its `staging` state lets an
        interrupted pass finish the job), then the rest in the transaction that attaches."""
        assert op.move is not None
        batch = self.config.move_batch_rows
        moved = 0
        if not op.resume_staging:
            self._step("count_default", op)
            cur = conn.execute(
                ddl.script(
                    [
                        self._begin(),
                        ddl.parent_lock_sql(parent),
                        ddl.waiting_rows_query(op, batch + 1),
                    ]
                )
            )
            waiting = _last_scalar(cur)
            if waiting > batch:  # too many for one short transaction: stage
                self._step("stage", op)
                conn.execute(
                    ddl.script(
                        [
                            *op.create_statements(),
                            *ddl.created_records(self.meta, op, "staging"),
                            ddl.COMMIT,
                        ]
                    )
                )
            else:
                self._step("create_moving", op)
                return self._attach_moving(conn, op, run_id, create=True)
        while True:  # staged: move batch by batch, each one atomic
            self._step("move_batch", op)
            cur = conn.execute(
                ddl.script(
                    [
                        self._begin(),
                        ddl.parent_lock_sql(parent),
                        op.move_statement(batch),
                        ddl.COMMIT,
                    ]
                )
            )
            count = _rowcount_before_commit(cur)
            moved += count
            if count < batch:
                break
        self._step("attach_staged", op)
        detail = self._attach_moving(conn, op, run_id, create=False)
        return f"{moved} row(s) moved in batches; {detail}"

    def _attach_moving(
        self, conn: psycopg.Connection[Any], op: CreatePartition, run_id: str, *, create: bool
    ) -> str:
        """Move what is left and attach, the parent locked before its default partition (the
        order the application's queries lock them in)."""
        assert op.move is not None
        parts: list[sql.Composable] = []
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            parts += [self._begin(), ddl.parent_lock_sql(op.parent_qualified)]
        parts += ddl.attach_locks(op)
        if create:
            parts += op.create_statements()
        parts.append(op.move_statement(None))
        cur = conn.execute(ddl.script(parts))
        moved = _rowcount_before_commit(cur)
        audit = ddl.audit_entry(
            op, Outcome.OK, detail=f"{moved} row(s) moved from the default partition"
        )
        self._commit(
            conn,
            [
                op.attach_statement(),
                *ddl.created_records(self.meta, op),
                metadata.audit_sql(self.meta, run_id, [audit]),
            ],
            [op],
        )
        return f"{moved} row(s) moved from the default partition"

    # -- roll-ups ----------------------------------------------------------------------------

    def _rollup(
        self, conn: psycopg.Connection[Any], parent: str, op: RollupPartition, run_id: str
    ) -> str:
        """Build the coarse partition detached ("staging", action "rollup"), copy each fine
        partition into it (one transaction each, the fine ones live), then swap them in one
        short transaction (`_swap_rollup`). Each copy replaces the coarse table's rows of its
        range, so a crash anywhere is resumed by the next pass copying again; a retry within
        this pass goes on from where it stopped."""
        if op.abandon:
            return self._abandon_rollup(conn, parent, op, run_id)
        seen = self._rollups.get(id(op))
        if seen is None:
            if op.resume:
                self._check_staging(conn, op)
            else:
                self._step("rollup_create", op)
                conn.execute(
                    ddl.script(
                        [
                            self._begin(),
                            ddl.parent_lock_sql(parent),
                            *op.create_statements(),
                            *rollups.staging_records(self.meta, op),
                            ddl.COMMIT,
                        ]
                    )
                )
            seen = self._rollups[id(op)] = {}
        for fine in op.fines:
            if fine.qualified_name in seen:
                continue
            self._step("rollup_copy", op)
            seen[fine.qualified_name] = self._copy_fine(conn, parent, op, fine)
        self._step("rollup_swap", op)
        detail = self._swap_rollup(conn, parent, op, seen, run_id)
        self._rollups.pop(id(op), None)
        return detail

    def _copy_fine(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        op: RollupPartition,
        fine: FinePartition,
    ) -> rollups.CopySnapshot:
        """Copy one fine partition into the coarse table: one transaction, or batches of its
        blocks (about `Config.move_batch_rows` rows each) when it is large, the first one
        clearing what an earlier copy left. Each transaction is REPEATABLE READ, so its
        snapshot is the one its rows were read with; the first one's is returned: a row it did
        not see, or changed since, is found by the swap (a conservative test: it may copy a
        partition again under the lock, never miss a row)."""
        cur = conn.execute(rollups.size_query(fine))
        size = cur.fetchone()
        blocks, rows, filenode = (
            (int(size[0]), float(size[1]), size[2]) if size else (0, -1.0, None)
        )
        first: rollups.CopySnapshot | None = None
        for i, chunk in enumerate(rollups.batches(blocks, rows, self.config.move_batch_rows)):
            if i:
                self._step("rollup_copy_batch", op)
            cur = conn.execute(
                ddl.script(
                    [
                        self._fenced(
                            rollups.begin_repeatable(
                                self.config.lock_timeout, self.config.statement_timeout
                            )
                        ),
                        ddl.parent_lock_sql(parent),
                        rollups.SNAPSHOT_QUERY,
                        *op.copy_statements(
                            fine,
                            chunk,
                            replace=first is None,
                            seen=None if first is None else rollups.seen_by(first),
                        ),
                        ddl.COMMIT,
                    ]
                )
            )
            row = _last_row(cur)
            if first is None:
                first = rollups.CopySnapshot.parse(row[0], filenode)
        assert first is not None
        return first

    def _swap_rollup(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        op: RollupPartition,
        seen: dict[str, rollups.CopySnapshot],
        run_id: str,
    ) -> str:
        """One transaction under the lock budget: check the fine partitions are still the
        plan's, lock them against writes (reads go on, the parent is not locked yet), copy
        again any that changed since its copy, compare the row counts, then drop them and
        attach the coarse partition (ACCESS EXCLUSIVE on the parent from the DROP to the
        commit: no scan happens under it, the coarse table's CHECK proves its bound)."""
        cur = conn.execute(
            ddl.script([self._begin(), ddl.parent_lock_sql(parent), rollups.guard_query(op)])
        )
        guards = (_row_sets(cur))[-1]
        for fine, (same, attached, comment) in zip(op.fines, guards, strict=True):
            if not same or not attached or not snapshot.is_owner_comment(comment):
                raise Skipped(
                    f"{fine.qualified_name} is no longer the partition the plan saw (gone, "
                    "renamed, detached or no longer partman's); the roll-up waits for the next "
                    "plan",
                    SkipReason.CHANGED,
                )
        cur = conn.execute(
            ddl.script([op.lock_statement(), *rollups.changes_queries(op, op.fines, seen)])
        )
        rows = [found[0] for found in (_row_sets(cur))[-len(op.fines) :]]
        stale = [
            fine
            for fine, (_, total, unseen, copied, same_file) in zip(op.fines, rows, strict=True)
            if unseen or total != copied or not same_file
        ]
        if stale:
            self._step("rollup_recopy", op)
            conn.execute(ddl.script([s for f in stale for s in op.copy_statements(f)]))
        expected = sum(int(r[1]) for r in rows)
        cur = conn.execute(rollups.count_query(op))
        found = cur.fetchone()
        got = int(found[0]) if found else -1
        if got != expected:
            raise Skipped(
                f"{op.partition_qualified} holds {got} row(s), its partitions {expected}: not "
                "swapped; the next pass copies again",
                SkipReason.CHANGED,
            )
        detail = (
            f"{expected} row(s) of {len(op.fines)} partition(s) moved into "
            f"{op.partition_qualified}; {len(stale)} partition(s) copied again under the lock"
        )
        audit = ddl.audit_entry(op, Outcome.OK, detail=detail)
        self._commit(  # with its own index of the parent's replica identity, if any
            conn,
            [
                *op.swap_statements(),
                *rollups.swapped_records(self.meta, op),
                metadata.audit_sql(self.meta, run_id, [audit]),
            ],
            [op],
        )
        return detail

    def _check_staging(self, conn: psycopg.Connection[Any], op: RollupPartition) -> None:
        """A coarse table an earlier pass began: still there, detached, still marked so?"""
        cur = conn.execute(ddl.detached_query(op.partition_schema, op.partition_name))
        row = cur.fetchone()
        if row is None or row[0] or not rollups.is_staging_comment(row[1]):
            raise Skipped(
                f"{op.partition_qualified} is not the roll-up table partman left (gone, "
                "attached or renamed); left alone",
                SkipReason.CHANGED,
            )

    def _abandon_rollup(
        self, conn: psycopg.Connection[Any], parent: str, op: RollupPartition, run_id: str
    ) -> str:
        """Drop a roll-up's detached coarse table whose period no longer needs it (its rows
        are all still in the fine partitions), and forget it."""
        self._step("rollup_abandon", op)
        cur = conn.execute(
            ddl.script(
                [
                    self._begin(),
                    ddl.parent_lock_sql(parent),
                    ddl.detached_query(op.partition_schema, op.partition_name),
                ]
            )
        )
        row = _last_row(cur)
        parts: list[sql.Composable] = []
        if row is not None:
            if row[0] or not rollups.is_staging_comment(row[1]):
                raise Skipped(
                    f"{op.partition_qualified} is not the roll-up table partman left "
                    "(attached or renamed); left alone",
                    SkipReason.CHANGED,
                )
            parts.append(ddl.drop_tables([op.partition]))
        detail = "roll-up table dropped" if row is not None else "roll-up table already gone"
        parts += [
            metadata.forget_partition_sql(self.meta, op.partition_schema, op.partition_name),
            metadata.audit_sql(self.meta, run_id, [ddl.audit_entry(op, Outcome.OK, detail=detail)]),
            ddl.COMMIT,
        ]
        conn.execute(ddl.script(parts))
        return detail

    # -- retention ---------------------------------------------------------------------------

    def _retire(
        self, conn: psycopg.Connection[Any], parent: str, op: RetirePartition, run_id: str
    ) -> str | None:
        if op.action == "export" and op.stage == Stage.ATTACHED:  # refused before any detach
            export.preflight(conn, op)
        try:
            detail = self._detach(conn, parent, op)
        except pgerrors.DatatypeMismatch:
            # columns were added to the parent while the detach was pending: PostgreSQL did
            # not add them to the partition, and FINALIZE can no longer convert its rows. Only
            # dropping it is still possible (a brief ACCESS EXCLUSIVE, under the budget).
            _rollback(conn)
            if op.action != "drop":
                raise
            self._step("drop_pending", op)
            detail = "dropped while detach-pending (FINALIZE impossible after a new column)"
            conn.execute(
                ddl.script(
                    [
                        self._begin(),
                        ddl.parent_lock_sql(parent),
                        ddl.drop_tables([op.partition]),
                        *self._retired_sql(op),
                        metadata.audit_sql(
                            self.meta, run_id, [ddl.audit_entry(op, Outcome.OK, detail=detail)]
                        ),
                        ddl.COMMIT,
                    ]
                )
            )
            return detail
        if op.action == "export":
            return self._export(conn, op, run_id, detail)
        self._step("finish", op)
        conn.execute(
            ddl.script(
                [
                    self._begin(),
                    *op.finish_statements(op.action),
                    *self._retired_sql(op),
                    metadata.audit_sql(
                        self.meta, run_id, [ddl.audit_entry(op, Outcome.OK, detail=detail)]
                    ),
                    ddl.COMMIT,
                ]
            )
        )
        return detail

    def _export(
        self,
        conn: psycopg.Connection[Any],
        op: RetirePartition,
        run_id: str,
        detail: str | None,
    ) -> str:
        """Write the detached partition to Parquet, read it back and check it, then record the
        manifest row and drop the table: all in one transaction that holds the table's rows
        still (SHARE), so a crash or a failure anywhere leaves it detached, for the next pass
        to write again (`engine/export_async.py`)."""
        self._step("export", op)
        try:
            conn.execute(ddl.script([self._begin(), export.lock_sql(op)]))
            written = export.write_partition(conn, op)
            done = (
                f"{written.rows} row(s), {written.size} bytes written to {written.location} "
                f"and read back ({written.checksum})"
            )
            detail = done if detail is None else f"{detail}; {done}"
            self._step("finish", op)
            conn.execute(
                ddl.script(
                    [
                        *export.finish_sql(self.meta, op, written),
                        *self._retired_sql(op),
                        metadata.audit_sql(
                            self.meta, run_id, [ddl.audit_entry(op, Outcome.OK, detail=detail)]
                        ),
                        ddl.COMMIT,
                    ]
                )
            )
        except ddl.RETRYABLE as error:  # the detach is done: retried by the next pass's repair
            _rollback(conn)
            raise ArchiveError(
                f"{op.partition_qualified} is detached, but its rows could not be locked for "
                f"the export within lock_timeout ({first_line(error)}); the next pass exports it"
            ) from None
        return detail

    def _retire_many(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        ops: list[RetirePartition],
        run_id: str,
    ) -> tuple[list[OperationResult], list[RetirePartition]]:
        """Retire several expired partitions of one parent with `_retire`'s steps, each step
        taken for the whole batch in one round trip: check them all (guard and newest row),
        mark them "detaching", DETACH ... CONCURRENTLY each (that statement runs alone), then
        mark them "detached" and drop, keep or archive them all in one transaction.

        Every step leaves the same states a one-by-one retirement would, so a crash anywhere
        is repaired the same way. Anything unexpected (a partition renamed meanwhile, a lock
        not granted in time) stops the batch where it is: what is not done is returned, and
        goes through `_retire` one by one, with its retries."""
        started = time.perf_counter()
        checked = self._check_many(conn, parent, ops)
        if checked is None:
            return [], ops
        skipped, details = checked
        good = [op for op in ops if id(op) in details]
        if not good:
            _rollback(conn)
            self._finish(conn, run_id, skipped)
            return skipped, []
        key = ddl.parent_key(parent)
        pending = ddl.try_lock_parent_query(key, good[0].parent_schema, good[0].parent_name)
        try:  # still in the check's transaction, under the parent's lock: mark, then commit
            cur = conn.execute(
                ddl.script(
                    [
                        *(ddl.partition_state(self.meta, op, "detaching") for op in good),
                        ddl.COMMIT,
                        pending,
                        ddl.session_budget(self.config.lock_timeout, self.config.statement_timeout),
                    ]
                )
            )
            row = _last_row(cur)
        except psycopg.Error:
            _rollback(conn)
            self._reset_session(conn, key, locked=False)
            self._finish(conn, run_id, skipped)
            return skipped, good
        self._finish(conn, run_id, skipped)
        if not row or not row[0] or row[1]:  # another partman, or a detach pending: one by one
            self._reset_session(conn, key, locked=bool(row and row[0]))
            return skipped, good
        detached: list[RetirePartition] = []
        for op in good:
            self._step("detach", op)
            try:
                self._check_fence(conn)
                conn.execute(op.detach_statement())
            except psycopg.Error:  # maybe left pending: one by one FINALIZEs it, with retries
                _rollback(conn)
                break
            detached.append(op)
        rest = good[len(detached) :]
        tail: list[sql.Composable] = [
            *ddl.release_session(key),
            *(ddl.partition_state(self.meta, op, "detached") for op in detached),
            ddl.COMMIT,
        ]
        if not detached:
            conn.execute(ddl.script(tail))
            return skipped, rest
        finish: list[sql.Composable] = [self._begin()]
        for op in detached:
            finish += [*op.finish_statements(op.action), *self._retired_sql(op)]
        audits = [ddl.audit_entry(op, Outcome.OK, detail=details[id(op)]) for op in detached]
        finish += [metadata.audit_sql(self.meta, run_id, audits), ddl.COMMIT]
        for op in detached:
            self._step("finish", op)
        try:
            conn.execute(ddl.script(tail + finish))
        except psycopg.Error:  # "detached" is committed: one by one finishes them
            _rollback(conn)
            again = [dataclasses.replace(op, stage=Stage.DETACHED) for op in detached]
            return skipped, again + rest
        elapsed = (time.perf_counter() - started) * 1000 / len(ops)
        done = [
            OperationResult(op, Outcome.OK, None, elapsed, 1, details[id(op)]) for op in detached
        ]
        for r in done:
            self._log(r)
        return skipped + done, rest

    def _retire_locked(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        ops: list[RetirePartition],
        run_id: str,
    ) -> tuple[list[OperationResult], list[RetirePartition]]:
        """Retire several expired partitions that are not detached CONCURRENTLY (the parent
        has a default partition, or `Config.detach_concurrently` is off): check them, then
        detach and drop, keep or archive them all in the same short transaction, under the
        lock budget. Atomic: a crash leaves all of them as they were. If the lock is not
        granted in time, they go one by one, with retries."""
        started = time.perf_counter()
        checked = self._check_many(conn, parent, ops)
        if checked is None:
            return [], ops
        skipped, details = checked
        good = [op for op in ops if id(op) in details]
        # DROP TABLE of an attached partition detaches it as it goes (one statement for all of
        # them: much cheaper than a DETACH each, which rebuilds the parent's descriptor)
        dropped = [op.partition for op in good if op.action == "drop"]
        parts: list[sql.Composable] = []
        if dropped:
            parts.append(ddl.drop_tables(dropped))
        for op in good:
            if op.action != "drop":
                parts += [op.detach_statement(), *op.finish_statements(op.action)]
            parts += self._retired_sql(op)
        audits = [ddl.audit_entry(op, Outcome.OK, detail=details[id(op)]) for op in good]
        for op in good:
            self._step("detach", op)
            self._step("finish", op)
        try:
            if good:
                parts += [metadata.audit_sql(self.meta, run_id, audits), ddl.COMMIT]
                conn.execute(ddl.script(parts))
            else:
                _rollback(conn)
        except psycopg.Error:
            _rollback(conn)
            self._finish(conn, run_id, skipped)
            return skipped, good
        self._finish(conn, run_id, skipped)
        elapsed = (time.perf_counter() - started) * 1000 / len(ops)
        done = [OperationResult(op, Outcome.OK, None, elapsed, 1, details[id(op)]) for op in good]
        for r in done:
            self._log(r)
        return skipped + done, []

    def _check_many(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[RetirePartition]
    ) -> tuple[list[OperationResult], dict[int, str]] | None:
        """`_check_expired` for a batch, in one round trip; leaves the transaction open (under
        the parent's lock). Returns the skips (changed since the plan, or a row inside the
        window) and, by id, the detail of what each other one holds; None (nothing held) if a
        partition's name no longer resolves: the batch then goes one by one, which says which."""
        for op in ops:  # each operation passes each step (progress bars count them)
            self._step("check", op)
        try:
            found = self._check_rows(conn, parent, ops)
        except psycopg.Error:
            _rollback(conn)
            return None
        skipped = [r for r in found if isinstance(r, OperationResult)]
        details = {id(op): d for op, d in zip(ops, found, strict=True) if isinstance(d, str)}
        return skipped, details

    def _check_rows(
        self, conn: psycopg.Connection[Any], parent: str, ops: list[RetirePartition]
    ) -> list[OperationResult | str]:
        cur = conn.execute(
            ddl.script(
                [
                    self._begin(),
                    SESSION_SETTINGS,
                    ddl.parent_lock_sql(parent),
                    ddl.guards_query([op.oid for op in ops]),
                    ddl.newest_rows_query(ops),
                ]
            )
        )
        found = _row_sets(cur)
        guards, span_rows = found[-2], found[-1]
        out: list[OperationResult | str] = []
        for op, g, (_, oldest, newest, inside) in zip(ops, guards, span_rows, strict=True):
            verdict = check_verdict(op, g, oldest, newest, inside)
            out.append(
                OperationResult(op, Outcome.SKIPPED, str(verdict), skip_reason=verdict.reason)
                if isinstance(verdict, Skipped)
                else verdict
            )
        return out

    def _reset_session(
        self, conn: psycopg.Connection[Any], key: sql.Composable, *, locked: bool
    ) -> None:
        conn.execute(ddl.script(ddl.release_session(key, unlock=locked)))

    def _detach(
        self, conn: psycopg.Connection[Any], parent: str, op: RetirePartition
    ) -> str | None:
        """Bring the partition to "detached", from wherever a previous pass left it."""
        detail = None
        if op.stage == Stage.ATTACHED:
            detail = self._check_expired(conn, parent, op)  # leaves the transaction open
            if op.concurrently:
                conn.execute(
                    ddl.script([ddl.partition_state(self.meta, op, "detaching"), ddl.COMMIT])
                )
                self._detach_concurrently(conn, parent, op, finalize=False)
            else:
                self._step("detach", op)
                conn.execute(
                    ddl.script(
                        [
                            op.detach_statement(),
                            ddl.partition_state(self.meta, op, "detached"),
                            ddl.COMMIT,
                        ]
                    )
                )
        elif op.stage == Stage.PENDING:
            self._detach_concurrently(conn, parent, op, finalize=True)
        else:
            self._check_detached(conn, op)
        return detail

    def _check_expired(
        self, conn: psycopg.Connection[Any], parent: str, op: RetirePartition
    ) -> str:
        """Inside a new transaction: is it still the partition the plan saw, still partman's,
        and is its newest row really older than the cutoff, whatever its bounds say?"""
        self._step("check", op)
        cur = conn.execute(
            ddl.script(
                [
                    self._begin(),
                    SESSION_SETTINGS,
                    ddl.parent_lock_sql(parent),
                    ddl.guard_query(op.oid),
                ]
            )
        )
        row = _last_row(cur)
        verdict = check_verdict(op, row, None, None, 0)  # the span reads it only if it is ours
        if isinstance(verdict, Skipped):
            raise verdict
        span = conn.execute(ddl.newest_row_query(op))
        oldest, newest, inside = _last_row(span) or (None, None, 0)
        verdict = check_verdict(op, row, oldest, newest, inside)
        if isinstance(verdict, Skipped):
            raise verdict
        return verdict

    def _check_detached(
        self, conn: psycopg.Connection[Any], op: RetirePartition
    ) -> None:
        self._step("check", op)
        cur = conn.execute(ddl.detached_query(op.partition_schema, op.partition_name))
        row = cur.fetchone()
        if row is None or row[0] or not snapshot.is_owner_comment(row[1]):
            raise Skipped(
                f"{op.partition_qualified} is not the detached partition partman left "
                "(re-attached, renamed or no longer marked as partman's); left alone",
                SkipReason.CHANGED,
            )

    def _detach_concurrently(
        self,
        conn: psycopg.Connection[Any],
        parent: str,
        op: RetirePartition,
        *,
        finalize: bool,
    ) -> None:
        """DETACH ... CONCURRENTLY cannot run in a transaction block, so it runs alone, with
        the lock budget as session settings and the parent's advisory lock as a session lock.
        If its wait for older transactions times out, the partition stays detach-pending:
        retries (and later passes) FINALIZE it."""
        key = ddl.parent_key(parent)
        cur = conn.execute(
            ddl.detach_start_query(
                key,
                op.partition_schema,
                op.partition_name,
                self.config.lock_timeout,
                self.config.statement_timeout,
            )
        )
        row = cur.fetchone()
        done = False
        try:
            if not row or not row[0]:
                raise pgerrors.LockNotAvailable(f"another partman is working on {parent}")
            if row[1]:  # pending already (an earlier attempt): finish it
                finalize = True
            statement = dataclasses.replace(op, stage=Stage.PENDING if finalize else op.stage)
            self._step("detach", op)
            self._check_fence(conn)
            try:
                conn.execute(statement.detach_statement())
            except ddl.RETRYABLE:
                if not finalize:  # maybe left pending: say so in the metadata now
                    conn.execute(ddl.partition_state(self.meta, op, "detaching"))
                raise
            done = True
        finally:
            tail = ddl.release_session(key)
            if done:
                tail.append(ddl.partition_state(self.meta, op, "detached"))
            conn.execute(ddl.script(tail))

    def _retired_sql(self, op: RetirePartition) -> list[sql.Composable]:
        return ddl.retired_records(self.meta, op, dt.datetime.now(dt.UTC).date())

    def _forget(
        self, conn: psycopg.Connection[Any], unit: list[Operation], run_id: str
    ) -> None:
        self._step("forget", unit[0])
        conn.execute(
            ddl.script(
                [
                    self._begin(),
                    *(
                        metadata.forget_partition_sql(
                            self.meta, op.partition_schema, op.partition_name
                        )
                        for op in unit
                    ),
                    metadata.audit_sql(
                        self.meta, run_id, [ddl.audit_entry(op, Outcome.OK) for op in unit]
                    ),
                    ddl.COMMIT,
                ]
            )
        )

    # -- reporting ---------------------------------------------------------------------------

    def _finish(
        self,
        conn: psycopg.Connection[Any],
        run_id: str,
        results: Sequence[OperationResult],
        *,
        log: bool = True,
    ) -> None:
        """Audit (and log) outcomes that were not committed with their operation."""
        for r in results:
            if log:
                self._log(r)
        if not results:
            return
        entries = [ddl.audit_entry(r.operation, r.outcome, r.error) for r in results]
        try:
            conn.execute(metadata.audit_sql(self.meta, run_id, entries))
        except psycopg.Error as error:  # the audit must never turn a skip into a crash
            _rollback(conn)
            log_event(
                self.logger, logging.WARNING, "audit_failed", "audit write failed", error=str(error)
            )

    def _log(self, result: OperationResult) -> None:
        op = result.operation
        level = logging.INFO if result.outcome == Outcome.OK else logging.WARNING
        log_event(
            self.logger,
            level,
            f"partition_{op.kind}",
            f"{op.kind} {op.partition_qualified}: {result.outcome}"
            + (f" ({result.error})" if result.error else ""),
            outcome=result.outcome,
            table=op.parent_qualified,
            tenant=tenant_text(op.tenant),
            partition=op.partition_qualified,
            lower=iso(op.lower) or "",
            upper=iso(op.upper) or "",
            reason=op.reason,
            error=result.error,
            detail=result.detail,
            attempts=result.attempts,
            duration_ms=round(result.duration_ms, 3),
        )


def _blocked_reason(parent: str, holders: Sequence[Holder]) -> str | None:
    """The look for holders' answer as the reason a parent is skipped (None: no one)."""
    if not holders:
        return None
    grouped: dict[int, tuple[Holder, list[str]]] = {}
    for h in holders:
        if h.pid in grouped:
            grouped[h.pid][1].append(f"{h.mode} on {h.relation}")
        else:
            grouped[h.pid] = (h, [f"{h.mode} on {h.relation}"])
    who = "; ".join(
        h.autovacuum_reason()
        if h.autovacuum
        else f"pid {h.pid} ({h.application or 'no application_name'}, {h.state}, transaction "
        f"open {h.age:.1f}s, holds {', '.join(locks)}: {h.query!r})"
        for h, locks in grouped.values()
    )
    return (
        f"skipped {parent} this pass: a lock request would queue behind {who}, and the "
        "application's queries would queue behind it; the next pass retries"
    )


def _weight(op: Operation) -> int:
    """Partitions an operation makes or retires (a HASH level's leaves count too): what a
    transaction's locks grow with."""
    if isinstance(op, CreatePartition) and op.hash_level is not None:
        return 1 + op.hash_level.modulus
    return 1


def _cost(before: float, elapsed: float, tenants: int) -> float:
    """Seconds a tenant's work takes in a batch, smoothed over the batches so far."""
    return max(_LEAST_COST, (before + elapsed / max(1, tenants)) / 2)


def _last_row(cur: psycopg.Cursor[Any]) -> Any:
    """The first row of the last statement that returned rows, in a multi-statement query."""
    row = None
    while True:
        if cur.description is not None:
            row = cur.fetchone()
        if not cur.nextset():
            return row


def _row_sets(cur: psycopg.Cursor[Any]) -> list[list[Any]]:
    """The rows of every statement that returned rows, in a multi-statement query."""
    out: list[list[Any]] = []
    while True:
        if cur.description is not None:
            out.append(cur.fetchall())
        if not cur.nextset():
            return out


def _last_scalar(cur: psycopg.Cursor[Any]) -> int:
    row = _last_row(cur)
    return int(row[0]) if row else 0


def _rowcount_before_commit(cur: psycopg.Cursor[Any]) -> int:
    """Rows affected by the data-changing statement of a multi-statement query."""
    counts = []
    while True:
        if cur.pgresult is not None and cur.pgresult.command_status:
            status = cur.pgresult.command_status.decode()
            if status.startswith(("INSERT", "DELETE")):
                counts.append(cur.rowcount)
        if not cur.nextset():
            return counts[-1] if counts else 0


def _rollback(conn: psycopg.Connection[Any]) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute(ddl.ROLLBACK)
