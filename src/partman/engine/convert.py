# Generated from src/partman/convert_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""`partman convert`: turn an ordinary table with live traffic into a partitioned table managed by
partman, in resumable steps (issue 15). The source of truth for both faces: `convert.py` is
generated from it by tools/async_to_sync.py.

1. twin: a partitioned table beside the source with its columns, defaults, identity, generated
   columns, check and foreign key constraints, indexes, grants, owner and replica identity;
   registered with partman and its partitions made by a normal pass, back to the oldest row.
2. capture: an AFTER INSERT/UPDATE/DELETE row trigger on the source writes the primary key of
   every changed row (both keys when an update changes it) into a change log.
3. copy: keyset batches on the primary key, each one REPEATABLE READ transaction that copies
   the batch and records the cursor; between batches the change log is replayed (delete the
   captured keys from the twin, insert the source's current rows for those at or below the
   cursor, delete the log rows the snapshot saw). No row is copied twice (the twin never holds a
   key above the cursor) and none is missed (a change not visible to a replay keeps its log row).
4. verify: row counts and an md5 of every row's text in key order, source against twin, in
   batches, each one snapshot, leaving out keys whose changes are still in the log.
5. swap: under the lock budget (holders looked up first, never queued in front of the
   application), one transaction: the last changes replayed, source -> `<name>_old`, twin ->
   `<name>`, the trigger moved to the new table (capturing back for a rollback), identity and
   owned sequences carried, foreign keys that referenced the source pointed at the new table.

`rollback()` swaps back (changes made since the swap carried back first); `finish()` drops the
old table, the trigger and the change log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import ddl
from ..errors import (
    CatalogError,
    ConfigError,
    ConversionError,
    KeyMismatchError,
    LockUnavailableError,
    NotPartitionedError,
    TableNotFoundError,
)
from ..logs import log_event
from ..model import convert as model
from ..model import unpartition as unmodel
from ..model.backoff import Backoff
from ..model.config import Config, RetentionAction, Table
from ..model.convert import (
    TRIGGER_NAME,
    TRUNCATE_TRIGGER_NAME,
    Column,
    ConvertPlan,
    ConvertReport,
    ForeignKey,
    Index,
    Progress,
    SourceTable,
    State,
    Step,
    StepPlan,
)
from ..model.holders import Holder
from ..model.intervals import Interval
from ..model.keys import IdInterval
from ..model.text import first_line, natural_key, sql_name
from ..model.unpartition import Direction
from . import store
from .autovacuum import cancel_autovacuum
from .manager import Manager

StepHook = Callable[[str], object]
"""Called with a point's name: a step's own ("twin", "capture", "copy", "verify", "swap") as it
starts, and inside one before its transaction commits ("twin:created", "twin:registered",
"capture:created", "copy:batch" each batch, "replay" each replay, "verify:recorded",
"swap:locked", "rollback:locked", "finish:locked"); an exception from it stops the conversion
there (tests use it to crash the converter at every step)."""
ProgressHook = Callable[[Progress], object]
_LOCK_MODES = {m: m for m in ("ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE")}
"""The lock modes `_locked` takes (a fixed set: the text goes into the statement)."""
_FILTERS_PER_SCAN = 64
"""Partitions counted per scan of the source by verify (each row is tested against every
partition constraint of its scan: a few dozen is cheap, thousands are not)."""
QUICK_LOOKS = 20
QUICK_LOOK_PAUSE = 0.01
"""A busy application's writers are often caught idle in transaction between two statements
of a transaction a few milliseconds old: the look for holders asks again, every 10 ms up to
20 times, while those are all it finds, instead of spending an attempt (and its backoff) on
them. It never queues the LOCK behind them: that waits for their commit, however long."""
VERIFY_BATCH_ROWS = 50_000
"""Rows per checksum batch (fixed, so that the checksum of a table does not depend on the copy's
batch size: md5 over the batches' md5s, each of the rows' text in key order)."""

_TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date", "uuid")
_INT_TYPES = ("smallint", "integer", "bigint", "numeric")
_TENANT_TYPES = ("text", "character varying", "character", "smallint", "integer", "bigint", "uuid")


class Converter:
    """Converts ordinary tables into partitioned tables managed by partman (see the module).

    `conninfo` is a libpq connection string. Hooks are plain functions in both faces.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        config: Config | None = None,
        batch_rows: int = 10_000,
        throttle: float = 0.0,
        on_step: StepHook | None = None,
        on_progress: ProgressHook | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if not isinstance(conninfo, str):
            raise ConfigError(f"the converter needs a connection string, got {type(conninfo)}")
        if batch_rows < 1:
            raise ConfigError(f"batch_rows must be >= 1, got {batch_rows!r}")
        if throttle < 0:
            raise ConfigError(f"throttle must be >= 0 seconds, got {throttle!r}")
        self.conninfo = conninfo
        self.config = config or Config()
        self.batch_rows = batch_rows
        self.throttle = throttle
        self.on_step = on_step
        self.on_progress = on_progress
        self.logger = logger or logging.getLogger("partman")
        self._backoff = Backoff(self.config.retry_backoff.total_seconds(), jitter=0.5)
        self._meta = self.config.metadata_schema

    # -- connections -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.Connection.connect(
            self.conninfo, autocommit=True, application_name=self.config.application_name
        )

    def _hook(self, point: str) -> None:
        if self.on_step is not None:
            self.on_step(point)

    def _progress(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)

    # -- the public face ---------------------------------------------------------------------

    def plan(self, table: Table, *, extend_unique: bool = False) -> ConvertPlan:
        """What `convert` would do, step by step (reads only)."""
        _named(table)
        conn = self._connect()
        try:
            record = self._record(conn, table)
            source = self._check(conn, table, record, extend_unique=extend_unique)
            return self._plan(conn, table, source, record, extend_unique=extend_unique)
        finally:
            conn.close()

    def convert(
        self, table: Table, *, extend_unique: bool = False, until: Step = Step.SWAP
    ) -> ConvertReport:
        """Run the steps not done yet, up to and including `until`; run it again to resume."""
        _named(table)
        conn = self._connect()
        try:
            record = self._record(conn, table)
            source = self._check(conn, table, record, extend_unique=extend_unique)
            self._advisory(conn, table)
            report = ConvertReport(table.qualified_name, State.PLANNED)
            if record is None or State(record["state"]) is not State.SWAP:
                twin = sql.Identifier(table.schema, model.twin_name(table.name or ""))
                for notice in (_carry(conn, source, twin)).notices:
                    self.logger.warning("convert %s: %s", table.qualified_name, notice)
                    report.notes.append(f"notice: {notice}")
            if record is None:
                store.migrate(conn, self._meta)
                settings = {
                    "partition_by": table.partition_by,
                    "tenant_id_column": table.tenant_id_column,
                    "partition_interval": str(table.interval),
                    "extend_unique": extend_unique,
                }
                record = self._start(
                    conn, table.schema, _named(table), source, source.primary_key, settings
                )
            state = State(record["state"])
            if state is State.SWAP and until is Step.SWAP:
                report.state = state
                report.notes.append(
                    f"{table.qualified_name} is swapped already; `rollback` swaps back, "
                    "`finish` drops the old table"
                )
                return report
            return self._steps(conn, table, source, record, until, report)
        finally:
            conn.close()

    def _steps(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
        until: Step,
        report: ConvertReport,
    ) -> ConvertReport:
        """The steps not done yet, up to `until`, in either direction: `table` is the
        partitioned table to make (convert), or None (unpartition: the twin is ordinary)."""
        state = State(record["state"])
        for step in model.remaining(state, until):
            self._hook(step.value)
            if step is Step.TWIN:
                if table is None:
                    self._twin_plain(conn, source, record, report)
                else:
                    extend = bool(record["settings"]["extend_unique"])
                    self._twin(conn, table, source, record, extend, report)
            elif step is Step.CAPTURE:
                self._capture(conn, source, record)
            elif step is Step.COPY:
                self._copy(conn, table, source, record, report)
            elif step is Step.VERIFY:
                self._verify(conn, table, source, record, report)
            else:
                self._swap(conn, table, source, record, report)
            got = self._record_named(conn, record["schema_name"], record["table_name"])
            assert got is not None
            record = got
            report.steps_run.append(step)
            state = State(record["state"])
        report.state = state
        report.rows_copied = int(record["rows_copied"])
        return report

    def plan_unpartition(self, schema: str, name: str) -> ConvertPlan:
        """What `unpartition` would do, step by step (reads only)."""
        conn = self._connect()
        try:
            record = self._record_named(conn, schema, name)
            record = None if record is None or record["state"] == "finished" else record
            source, key = self._check_plain(conn, schema, name, record)
            return self._plan_plain(conn, source, key, record)
        finally:
            conn.close()

    def unpartition(
        self, schema: str, name: str, *, until: Step = Step.SWAP
    ) -> ConvertReport:
        """A partitioned table (and all its partitions) back into one ordinary table, by the
        steps of `convert` (twin, capture, copy, verify, swap) while the application writes;
        run it again to resume. After the swap the table is no longer managed by partman
        (its policy kept for `rollback`); `finish` drops the old partitioned tree."""
        conn = self._connect()
        try:
            record = self._record_named(conn, schema, name)
            record = None if record is None or record["state"] == "finished" else record
            source, key = self._check_plain(conn, schema, name, record)
            self._advisory_named(conn, f"{schema}.{name}")
            report = ConvertReport(f"{schema}.{name}", State.PLANNED, direction="unpartition")
            if record is None or State(record["state"]) is not State.SWAP:
                twin = sql.Identifier(schema, model.twin_name(name))
                for notice in (_carry(conn, source, twin)).notices:
                    self.logger.warning("unpartition %s.%s: %s", schema, name, notice)
                    report.notes.append(f"notice: {notice}")
            if record is None:
                store.migrate(conn, self._meta)
                settings = {"direction": Direction.UNPARTITION.value, "extend_unique": False}
                record = self._start(conn, schema, name, source, key, settings)
            if record["state"] == State.SWAP.value and until is Step.SWAP:
                report.state = State.SWAP
                report.notes.append(
                    f"{schema}.{name} is unpartitioned already; `rollback` swaps back, "
                    "`finish` drops the old partitioned table"
                )
                return report
            return self._steps(conn, None, source, record, until, report)
        finally:
            conn.close()

    def rollback(self, schema: str, name: str) -> ConvertReport:
        """Swap back a swapped conversion: the changes made to the new table since the swap
        are carried into the old one first; the conversion is then back at its copy step
        (the twin kept up to date by the capture trigger on the source again)."""
        conn = self._connect()
        try:
            record = self._record_named(conn, schema, name)
            if record is None or record["state"] != State.SWAP.value:
                raise ConversionError(
                    f"{schema}.{name} has no swapped conversion to roll back (state: "
                    f"{'none' if record is None else record['state']})"
                )
            self._advisory_named(conn, f"{schema}.{name}")
            direction = unmodel.direction_of(record["settings"]).value
            report = ConvertReport(f"{schema}.{name}", State.SWAP, direction=direction)
            self._swap_back(conn, record, report)
            report.state = State.COPY
            return report
        finally:
            conn.close()

    def finish(self, schema: str, name: str) -> ConvertReport:
        """Drop the old table, the capture trigger and the change log of a swapped conversion."""
        conn = self._connect()
        try:
            record = self._record_named(conn, schema, name)
            if record is None or record["state"] != State.SWAP.value:
                raise ConversionError(
                    f"{schema}.{name} has no swapped conversion to finish (state: "
                    f"{'none' if record is None else record['state']}); finish comes after "
                    "the swap"
                )
            self._advisory_named(conn, f"{schema}.{name}")
            direction = unmodel.direction_of(record["settings"])
            report = ConvertReport(f"{schema}.{name}", State.SWAP, direction=direction.value)
            s = sql.Identifier(schema)
            meta = sql.Identifier(self._meta)
            leaves: list[unmodel.Leaf] = []
            if direction is Direction.UNPARTITION:
                leaves, _ = _tree(conn, schema, record["old_name"])

            def work() -> None:
                conn.execute(
                    sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
                        sql.Identifier(TRIGGER_NAME), s, sql.Identifier(name)
                    )
                )
                conn.execute(
                    sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
                        sql.Identifier(TRUNCATE_TRIGGER_NAME), s, sql.Identifier(name)
                    )
                )
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                        s, sql.Identifier(record["old_name"])
                    )
                )
                forget = (  # an unpartition's old tree: its records go with it
                    "DELETE FROM {m}.managed_tables WHERE schema_name = %(s)s "
                    "AND table_name = %(t)s",
                    "DELETE FROM {m}.partitions WHERE parent_schema = %(s)s "
                    "AND parent_name = %(t)s",
                )
                for statement in forget if direction is Direction.UNPARTITION else ():
                    conn.execute(
                        sql.SQL(statement).format(m=meta), {"s": schema, "t": record["old_name"]}
                    )
                conn.execute(
                    sql.SQL(
                        "DROP TABLE IF EXISTS {}.{}; DROP FUNCTION IF EXISTS {}.{}(); "
                        "DROP FUNCTION IF EXISTS {}.{}()"
                    ).format(
                        meta,
                        sql.Identifier(model.log_name(record["id"])),
                        meta,
                        sql.Identifier(model.function_name(record["id"])),
                        meta,
                        sql.Identifier(model.truncate_function_name(record["id"])),
                    )
                )
                report.notes += self._take_names(conn, schema, name, record["twin_name"])
                self._hook("finish:locked")
                self._set_state(conn, record["id"], State.FINISHED)

            try:
                self._locked(
                    conn, [(schema, name), (schema, record["old_name"])], work, notes=report.notes
                )
            except pgerrors.DependentObjectsStillExist as error:
                raise ConversionError(
                    f"cannot drop {schema}.{record['old_name']}: {first_line(error)}; drop or "
                    "repoint what depends on it first (nothing was dropped)"
                ) from None
            report.state = State.FINISHED
            tree = f" and its {len(leaves)} partition(s)" if leaves else ""
            report.notes.append(f"dropped {schema}.{record['old_name']}{tree} and the change log")
            return report
        finally:
            conn.close()

    def cancel(self, schema: str, name: str) -> ConvertReport:
        """Give up a conversion that has not swapped: the capture and TRUNCATE triggers come
        off the table (under the lock budget), the twin, the change log and their functions
        are dropped, the twin's registration and the conversion's record removed. The table
        is as it was before `convert`. After a swap, `rollback` first."""
        conn = self._connect()
        try:
            record = self._record_named(conn, schema, name)
            if record is None or record["state"] == State.SWAP.value:
                raise ConversionError(
                    f"{schema}.{name} has no conversion to cancel"
                    + (
                        ""
                        if record is None
                        else " before its swap: roll it back first (partman convert "
                        f"{schema}.{name} --rollback), then cancel"
                    )
                )
            self._advisory_named(conn, f"{schema}.{name}")
            report = ConvertReport(f"{schema}.{name}", State(record["state"]))
            s, meta, twin = sql.Identifier(schema), sql.Identifier(self._meta), record["twin_name"]

            def work() -> None:
                for trig in (TRIGGER_NAME, TRUNCATE_TRIGGER_NAME):
                    conn.execute(
                        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
                            sql.Identifier(trig), s, sql.Identifier(name)
                        )
                    )

            self._locked(conn, [(schema, name)], work)
            with conn.transaction():
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}.{}").format(s, sql.Identifier(twin))
                )
                conn.execute(
                    sql.SQL(
                        "DROP TABLE IF EXISTS {m}.{log}; DROP FUNCTION IF EXISTS {m}.{f}(); "
                        "DROP FUNCTION IF EXISTS {m}.{g}()"
                    ).format(
                        m=meta,
                        log=sql.Identifier(model.log_name(record["id"])),
                        f=sql.Identifier(model.function_name(record["id"])),
                        g=sql.Identifier(model.truncate_function_name(record["id"])),
                    )
                )
                for statement in (
                    "DELETE FROM {m}.partitions WHERE parent_schema = %(s)s "
                    "AND parent_name = %(t)s",
                    "DELETE FROM {m}.managed_tables WHERE schema_name = %(s)s "
                    "AND table_name = %(t)s",
                    "DELETE FROM {m}.conversions WHERE id = %(id)s",
                ):
                    conn.execute(
                        sql.SQL(statement).format(m=meta),
                        {"s": schema, "t": twin, "id": record["id"]},
                    )
            report.state = State.PLANNED
            report.notes.append(
                f"cancelled: {schema}.{name} is as it was; dropped {schema}.{twin} and the "
                "change log"
            )
            return report
        finally:
            conn.close()

    def _take_names(
        self, conn: psycopg.Connection[Any], schema: str, name: str, twin_name: str
    ) -> list[str]:
        """Once the old table is gone, the new table's partitions, indexes (and so its primary
        key and unique constraints) and identity sequence named after the twin take the
        table's name: `orders_partman_new_p20260901` -> `orders_p20260901`. A name that would
        be too long or is taken is left as it is."""
        cur = conn.execute(
            "SELECT c.relname::text, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
            "AND left(c.relname, length(%s)) = %s AND c.relkind IN ('r', 'p', 'i', 'I', 'S') "
            "ORDER BY c.relkind DESC, c.relname",
            (schema, twin_name + "_", twin_name + "_"),
        )
        kinds = {"r": "TABLE", "p": "TABLE", "i": "INDEX", "I": "INDEX", "S": "SEQUENCE"}
        kept: list[str] = []
        for relname, kind in cur.fetchall():
            new = name + relname[len(twin_name) :]
            if len(new.encode()) > 63 or _exists(conn, schema, new):
                kept.append(relname)
                continue
            conn.execute(
                sql.SQL("ALTER {} {}.{} RENAME TO {}").format(
                    sql.SQL(kinds[kind]),
                    sql.Identifier(schema),
                    sql.Identifier(relname),
                    sql.Identifier(new),
                )
            )
            if kind in ("r", "p"):
                conn.execute(
                    sql.SQL(
                        "UPDATE {}.partitions SET partition_name = %s "
                        "WHERE schema_name = %s AND partition_name = %s"
                    ).format(sql.Identifier(self._meta)),
                    (new, schema, relname),
                )
        if kept:
            return [f"kept the names of {', '.join(kept)} (too long or taken)"]
        return []

    def status(self, schema: str, name: str) -> dict[str, Any] | None:
        """The conversion's record (state, cursor, rows copied), or None."""
        conn = self._connect()
        try:
            return self._record_named(conn, schema, name)
        finally:
            conn.close()

    # -- metadata ----------------------------------------------------------------------------

    def _record(
        self, conn: psycopg.Connection[Any], table: Table
    ) -> dict[str, Any] | None:
        """The conversion under way (a finished one is history: None)."""
        assert table.name is not None
        record = self._record_named(conn, table.schema, table.name)
        if record is not None and record["state"] == State.FINISHED.value:
            return None
        return record

    def _record_named(
        self, conn: psycopg.Connection[Any], schema: str, name: str
    ) -> dict[str, Any] | None:
        if not store.exists(conn, self._meta):
            return None
        found = conn.execute(
            "SELECT to_regclass(%s)",
            (sql.Identifier(self._meta, "conversions").as_string(conn),),
        )
        row = found.fetchone()
        if row is None or row[0] is None:
            return None
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        cur.execute(
            sql.SQL(
                "SELECT * FROM {}.conversions WHERE schema_name = %s AND table_name = %s"
            ).format(sql.Identifier(self._meta)),
            (schema, name),
        )
        return cur.fetchone()

    def _set_state(self, conn: psycopg.Connection[Any], cid: int, state: State) -> None:
        conn.execute(
            sql.SQL(
                "UPDATE {}.conversions SET state = %s, updated_at = now() WHERE id = %s"
            ).format(sql.Identifier(self._meta)),
            (state.value, cid),
        )

    def _advisory(self, conn: psycopg.Connection[Any], table: Table) -> None:
        self._advisory_named(conn, table.qualified_name)

    def _advisory_named(self, conn: psycopg.Connection[Any], qualified: str) -> None:
        cur = conn.execute(
            "SELECT pg_try_advisory_lock(hashtextextended('partman:convert:' || %s, 0))",
            (qualified,),
        )
        row = cur.fetchone()
        if not row or not row[0]:
            raise ConversionError(
                f"another partman convert is working on {qualified}; wait for it to finish "
                "(or stop it), then run this again"
            )

    def _start(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        name: str,
        source: SourceTable,
        key: Sequence[str],
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        """The conversion's record, either direction: `key` is the unique key the copy pages
        by and the change log records."""
        types = [c.type for k in key for c in source.columns if c.name == k]
        conn.execute(  # a finished conversion of a table of that name: history
            sql.SQL(
                "DELETE FROM {}.conversions WHERE schema_name = %s AND table_name = %s "
                "AND state = 'finished'"
            ).format(sql.Identifier(self._meta)),
            (schema, name),
        )
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        cur.execute(
            sql.SQL(
                "INSERT INTO {}.conversions (schema_name, table_name, twin_name, old_name, "
                "key_columns, key_types, settings) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "RETURNING *"
            ).format(sql.Identifier(self._meta)),
            (
                schema,
                name,
                model.twin_name(name),
                model.old_name(name),
                list(key),
                types,
                Jsonb(settings),
            ),
        )
        row = cur.fetchone()
        assert row is not None
        return row

    # -- reading and checking the source -----------------------------------------------------

    def _refuse_other(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        name: str,
        record: dict[str, Any] | None,
        direction: Direction,
    ) -> None:
        """One conversion a table at a time: refused when one of the other direction is under
        way on it, or when the table is the twin or the old table of one."""
        if record is not None and unmodel.direction_of(record["settings"]) is not direction:
            other = unmodel.direction_of(record["settings"])
            raise ConversionError(
                f"{schema}.{name} is in a {other.command} (last step done: {record['state']}); "
                f"finish it ({other.command} {schema}.{name} --finish --yes) or roll it back "
                f"(--rollback, then --cancel) before {direction.command}; nothing was changed"
            )
        if not store.exists(conn, self._meta) or not _exists(
            conn, self._meta, "conversions"
        ):
            return
        cur = conn.execute(
            sql.SQL(
                "SELECT table_name, settings->>'direction' FROM {}.conversions WHERE "
                "schema_name = %s AND %s IN (twin_name, old_name) AND state <> 'finished'"
            ).format(sql.Identifier(self._meta)),
            (schema, name),
        )
        row = cur.fetchone()
        if row is not None:
            other = Direction(row[1] or Direction.CONVERT.value)
            raise ConversionError(
                f"{schema}.{name} is a table of the {other.command} of {schema}.{row[0]} (its "
                f"twin or its old table); finish or roll back that one, then run "
                f"{direction.command} on {schema}.{row[0]}; nothing was changed"
            )

    def _check(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        record: dict[str, Any] | None,
        *,
        extend_unique: bool,
    ) -> SourceTable:
        """Everything that refuses a conversion, before any DDL."""
        name = _named(table)
        self._refuse_other(conn, table.schema, name, record, Direction.CONVERT)
        if record is not None:
            settings = record["settings"]
            asked = {
                "partition_by": table.partition_by,
                "tenant_id_column": table.tenant_id_column,
                "partition_interval": str(table.interval),
            }
            differ = [
                f"{k} {settings.get(k)!r} (asked for {v!r})"
                for k, v in asked.items()
                if settings.get(k) != v
            ]
            if differ:
                raise ConversionError(
                    f"{table.qualified_name} is being converted with {', '.join(differ)}; "
                    "run it with the same settings to resume"
                )
            if record["state"] == State.SWAP.value:
                name = record["old_name"]  # the source lives on under its old name
        source = read_source(conn, table.schema, name, display=table.qualified_name)
        if record is None and source.kind == "p":
            raise NotPartitionedError(
                f"{table.qualified_name} is partitioned already; register it with "
                "add_managed_table() or a [[table]] in partman.toml instead of converting it"
            )
        if source.kind != "r":
            raise NotPartitionedError(
                f"{table.qualified_name} is not an ordinary table (relkind {source.kind!r}); "
                "convert turns an ordinary table into a partitioned one"
            )
        src = source.table
        if not src.primary_key:
            raise CatalogError(
                f"{table.qualified_name} has no primary key; convert copies and replays rows by "
                "it. Add one (ALTER TABLE ... ADD PRIMARY KEY, built CONCURRENTLY as a unique "
                "index first), then run convert again; nothing was changed"
            )
        key = _key_columns(table)
        for col_name in key:
            column = src.column(col_name)
            if column is None:
                raise KeyMismatchError(
                    f"{table.qualified_name} has no column {col_name!r} to partition by; "
                    f"its columns: {', '.join(c.name for c in src.columns)}"
                )
        by = src.column(table.partition_by)
        assert by is not None
        by_id = isinstance(table.interval, IdInterval)
        if by_id or table.epoch is not None:
            if by.type not in _INT_TYPES:
                raise KeyMismatchError(
                    f"{table.qualified_name}.{by.name} is {by.type}; an integer "
                    "partition_interval (or epoch) needs an integer column"
                )
        elif by.type not in _TIME_TYPES:
            raise KeyMismatchError(
                f"{table.qualified_name}.{by.name} is {by.type}; partition by a timestamptz, "
                "timestamp, date or uuid (v7) column, an integer id with an integer "
                "partition_interval, or an epoch integer with epoch=..."
            )
        if by.type == "uuid" and not by_id:
            low, _ = _key_range(conn, table.schema, name, by.name)
            if isinstance(low, uuid.UUID) and low.version != 7:
                raise KeyMismatchError(
                    f"{table.qualified_name}.{by.name} holds version {low.version} uuids "
                    f"(e.g. {low}); partitioning a uuid by time needs UUIDv7 (time-ordered) "
                    "values. Partition by a time column instead; nothing was changed"
                )
        if table.tenant_id_column is not None:
            tenant = src.column(table.tenant_id_column)
            assert tenant is not None
            if tenant.type not in _TENANT_TYPES:
                raise KeyMismatchError(
                    f"{table.qualified_name}.{tenant.name} is {tenant.type}; a tenant column "
                    "is text, varchar, an integer or uuid"
                )
        if by.generated:
            raise KeyMismatchError(
                f"{table.qualified_name}.{by.name} is a generated column; partition by a "
                "stored column"
            )
        twin = model.twin_indexes(src, key, extend_unique=extend_unique)
        fks = model.foreign_key_plans(src, twin)
        model.check_foreign_keys(src, fks)
        _refuse_unmovable(conn, src)
        cur = conn.execute(
            "SELECT row_security_active(%s::regclass), current_user::text",
            (sql.Identifier(table.schema, name).as_string(conn),),
        )
        active = cur.fetchone()
        if active is not None and active[0]:
            raise ConversionError(
                f"row-level security applies to {active[1]} on {table.qualified_name} (forced, "
                "or not the owner): convert would copy only the rows its policies show. Run "
                "convert as a superuser or a role WITH BYPASSRLS; nothing was changed"
            )
        _refuse_bound(conn, table.schema, name, record, Direction.CONVERT)
        return src

    def _plan(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        source: SourceTable,
        record: dict[str, Any] | None,
        *,
        extend_unique: bool,
    ) -> ConvertPlan:
        assert table.name is not None
        state = None if record is None else State(record["state"])
        done = state.done if state is not None else ()
        key = _key_columns(table)
        twin_name = model.twin_name(table.name)
        old = model.old_name(table.name)
        twin = model.twin_indexes(source, key, extend_unique=extend_unique)
        fks = model.foreign_key_plans(source, twin)
        low, high = _key_range(conn, table.schema, source.name, table.partition_by)
        steps: list[StepPlan] = []
        lines = [
            _create_twin(table.schema, source.name, twin_name, _partition_by(table)).as_string(
                conn
            ),
            f"columns: {', '.join(c.name + ' ' + c.type for c in source.columns)}",
        ]
        for t in twin:
            if t.columns is None:
                lines.append(f"index: {t.source.definition}")
            else:
                what = "primary key" if t.source.primary else "unique"
                extra = f" (extended by {', '.join(t.extended)})" if t.extended else ""
                lines.append(f"{what} ({', '.join(t.columns)}){extra}")
        lines.append("check constraints, outgoing foreign keys, grants, owner, replica identity")
        carried = _carry(conn, source, sql.Identifier(table.schema, twin_name))
        if carried.carried:
            lines.append(
                "also: "
                + "; ".join(carried.carried)
                + (
                    " (triggers made disabled, given their state at the swap)"
                    if any(c.startswith("trigger ") for c in carried.carried)
                    else ""
                )
            )
        lines.append(
            f"register {table.schema}.{twin_name} with partman ({_shape(table)}, interval "
            f"{table.interval}), partitions made by a pass covering {table.partition_by} from "
            f"{low} to {high}" + (" and a DEFAULT partition" if table.default_partition else "")
        )
        steps.append(StepPlan(Step.TWIN, Step.TWIN in done, lines))
        steps += self._middle_steps(source, source.primary_key, record, "")
        swap = [self._swap_line(source, table.name, twin_name, old)]
        for fk in fks:
            swap.append(f"foreign key {fk.key.name} of {fk.key.qualified} pointed at the new table")
        for view in _views(conn, table.schema, source.name):
            swap.append(
                f"view {view.qualified} re-created on the new table (CREATE OR REPLACE VIEW: "
                "its grants and dependants kept)"
            )
        swap.append(f"{old} is kept; `--rollback` swaps back, `--finish` drops it")
        steps.append(StepPlan(Step.SWAP, Step.SWAP in done, swap))
        notes = [
            *carried.notices,
            f"a TRUNCATE of {table.qualified_name} is refused from the capture step until "
            "--finish (or --cancel, or --rollback then --cancel); the new table's partitions, "
            "indexes and sequence keep the twin's names until --finish renames them",
        ]
        return ConvertPlan(table.qualified_name, twin_name, old, state, steps, notes)

    def _middle_steps(
        self, source: SourceTable, key: Sequence[str], record: dict[str, Any] | None, where: str
    ) -> list[StepPlan]:
        """Capture, copy and verify as `--plan` shows them (either direction)."""
        done = () if record is None else State(record["state"]).done
        copied = 0 if record is None else int(record["rows_copied"])
        keys = ", ".join(key)
        capture = (
            f"a trigger {TRIGGER_NAME} AFTER INSERT OR UPDATE OR DELETE ON {source.qualified} "
            f"FOR EACH ROW{where}: the key ({keys}) of each changed row into "
            f"{self._meta}.convert_<id>_log"
        )
        copy = (
            f"copy ~{source.rows_estimate} rows in "
            f"{model.batch_count(source.rows_estimate, self.batch_rows)} batch(es) of "
            f"{self.batch_rows} by ({keys}), {copied} copied so far; the change log replayed "
            "between batches until drained"
            + (f"; {self.throttle:g}s pause between batches" if self.throttle else "")
        )
        verify = "row counts and md5 of every row in key order, source against twin"
        return [
            StepPlan(Step.CAPTURE, Step.CAPTURE in done, [capture]),
            StepPlan(Step.COPY, Step.COPY in done, [copy]),
            StepPlan(Step.VERIFY, Step.VERIFY in done, [verify]),
        ]

    def _swap_line(self, source: SourceTable, name: str, twin_name: str, old: str) -> str:
        return (
            f"VACUUM (ANALYZE) {source.schema}.{twin_name} (the new table's statistics, and no "
            "autovacuum left to start on it), then "
            f"in one transaction under lock_timeout "
            f"{self.config.lock_timeout.total_seconds() * 1000:.0f} ms (up to "
            f"{self.config.max_retries} retries): LOCK {source.qualified}, replay the last "
            f"changes, rename {source.name} -> {old}, {twin_name} -> {name}, move the "
            "trigger to the new table (capturing changes back for a rollback)"
        )

    # -- unpartition: the checks, the plan, the ordinary twin ------------------------------

    def _check_plain(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        name: str,
        record: dict[str, Any] | None,
    ) -> tuple[SourceTable, tuple[str, ...]]:
        """Everything that refuses an unpartition, before any DDL; the partitioned table (the
        row estimate summed over its partitions) and the key the copy pages by."""
        qualified = f"{schema}.{name}"
        self._refuse_other(conn, schema, name, record, Direction.UNPARTITION)
        at = name
        if record is not None and record["state"] == State.SWAP.value:
            at = record["old_name"]  # the partitioned tree lives on under its old name
        found = read_source(conn, schema, at, display=qualified)
        if found.kind != "p":
            raise NotPartitionedError(
                f"{qualified} is not partitioned (relkind {found.kind!r}); unpartition turns "
                "a partitioned table into an ordinary one (partman convert does the reverse); "
                "nothing was changed"
            )
        leaves, partition_key = _tree(conn, schema, at)
        unmodel.check_leaves(qualified, leaves)
        src = found.table
        key = unmodel.keyset_key(src, partition_key)
        model.check_foreign_keys(src, model.foreign_key_plans(src, unmodel.plain_indexes(src)))
        _refuse_unmovable(conn, src)
        _refuse_bound(conn, schema, at, record, Direction.UNPARTITION)
        estimate = sum(max(0, leaf.rows) for leaf in leaves)
        if estimate <= 0 and leaves:  # never analyzed: count (once, for the progress bar)
            cur = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, at))
            )
            counted = cur.fetchone()
            estimate = int(counted[0]) if counted else 0
        return dataclasses.replace(src, rows_estimate=estimate), key

    def _plan_plain(
        self,
        conn: psycopg.Connection[Any],
        source: SourceTable,
        key: tuple[str, ...],
        record: dict[str, Any] | None,
    ) -> ConvertPlan:
        schema, name = source.schema, source.name
        state = None if record is None else State(record["state"])
        done = state.done if state is not None else ()
        leaves, partition_key = _tree(conn, schema, source.name)
        twin_name, old = model.twin_name(name), model.old_name(name)
        carried = _carry(conn, source, sql.Identifier(schema, twin_name))
        policy = self._policy(conn, schema, name)
        if record is not None:  # shown as it was before the swap, when the tree had the name
            name = record["table_name"]
            twin_name, old = record["twin_name"], record["old_name"]
            source = dataclasses.replace(source, name=name)
            saved = record["settings"].get("registration")
            if state is State.SWAP and saved:
                policy = _policy_text(saved["table"])
        lines = [
            _create_twin(schema, source.name, twin_name, None).as_string(conn),
            f"columns: {', '.join(c.name + ' ' + c.type for c in source.columns)}",
        ]
        for t in unmodel.plain_indexes(source):
            if t.columns is None:
                lines.append(f"index: {t.source.definition}")
            else:
                what = "primary key" if t.source.primary else "unique"
                lines.append(f"{what} ({', '.join(t.columns)})")
        lines.append("check constraints, outgoing foreign keys, grants, owner, replica identity")
        if carried.carried:
            triggers = any(c.startswith("trigger ") for c in carried.carried)
            made = " (triggers made disabled, enabled at the swap)" if triggers else ""
            lines.append("also: " + "; ".join(carried.carried) + made)
        deepest = max((leaf.level for leaf in leaves), default=1)
        default = [leaf.name for leaf in leaves if leaf.default]
        lines.append(
            f"rows of {len(leaves)} partition(s) of {source.qualified} (PARTITION BY "
            f"{', '.join(partition_key)}"
            + (f", sub-partitioned {deepest} levels deep" if deepest > 1 else "")
            + (f", the default partition {default[0]} too" if default else "")
            + ") read through the parent"
        )
        steps = [StepPlan(Step.TWIN, Step.TWIN in done, lines)]
        steps += self._middle_steps(
            source, key, record, " (PostgreSQL puts it on every partition, those made later too)"
        )
        swap = [self._swap_line(source, name, twin_name, old)]
        fks = model.foreign_key_plans(source, unmodel.plain_indexes(source))
        for fk in fks:
            swap.append(
                f"foreign key {fk.key.name} of {fk.key.qualified} pointed at the new table "
                "(dropped and added NOT VALID in the swap, validated after it)"
            )
        swap.append(
            f"{schema}.{name} unregistered from partman ({policy}; kept for --rollback): no "
            "pass premakes or drops partitions on it or on the old tree"
            if policy
            else f"{schema}.{name} is not registered with partman: nothing to unregister"
        )
        swap.append(
            f"{old} (the partitioned table and its partitions) is kept; `--rollback` swaps "
            "back, `--finish` drops it"
        )
        steps.append(StepPlan(Step.SWAP, Step.SWAP in done, swap))
        notes = [
            *carried.notices,
            f"a TRUNCATE of {schema}.{name} is refused from the capture step until --finish "
            "(or --rollback); the new table's indexes and sequence keep the twin's names "
            "until --finish renames them",
        ]
        if policy:
            notes.append(
                f"remove {schema}.{name} from partman.toml's [[table]]s once swapped: a pass "
                "that still declares it would refuse it (it is no longer partitioned)"
            )
        return ConvertPlan(
            f"{schema}.{name}", twin_name, old, state, steps, notes, direction="unpartition"
        )

    def _policy(self, conn: psycopg.Connection[Any], schema: str, name: str) -> str:
        """The table's registration with partman, in a few words ('' if it has none)."""
        if not store.exists(conn, self._meta):
            return ""
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        cur.execute(
            sql.SQL(
                "SELECT * FROM {}.managed_tables WHERE schema_name = %s AND table_name = %s"
            ).format(sql.Identifier(self._meta)),
            (schema, name),
        )
        row = cur.fetchone()
        return "" if row is None else _policy_text(row)

    def _twin_plain(
        self,
        conn: psycopg.Connection[Any],
        source: SourceTable,
        record: dict[str, Any],
        report: ConvertReport,
    ) -> None:
        """Step 1 of an unpartition: the ordinary twin, made in one transaction."""
        schema, twin_name = source.schema, record["twin_name"]
        twin = sql.Identifier(schema, twin_name)
        if not _exists(conn, schema, twin_name):
            statements = [_create_twin(schema, source.name, twin_name, None)]
            statements += [_index_sql(t, twin) for t in unmodel.plain_indexes(source)]
            statements += self._twin_traits(conn, source, twin)
            statements += _statistics(source, twin)
            with conn.transaction():
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(ddl.ms(self.config.lock_timeout))
                )
                for statement in statements:
                    conn.execute(statement)
                self._hook("twin:created")
        self._set_state(conn, record["id"], State.TWIN)
        report.notes.append(f"created {schema}.{twin_name}")

    def _twin_traits(
        self, conn: psycopg.Connection[Any], source: SourceTable, twin: sql.Identifier
    ) -> list[sql.Composed]:
        """What the twin gets beyond LIKE and indexes, either direction: outgoing foreign
        keys, owner and grants, replica identity, triggers, policies, comments."""
        schema, name = source.schema, source.name
        return [
            *_outgoing_fks(conn, schema, name, twin),
            *_grants(conn, schema, name, twin),
            *_replica_identity(conn, schema, name, twin),
            *(_carry(conn, source, twin)).statements,
        ]

    # -- step 1: the twin --------------------------------------------------------------------

    def _twin(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        source: SourceTable,
        record: dict[str, Any],
        extend_unique: bool,
        report: ConvertReport,
    ) -> None:
        assert table.name is not None
        twin_name = record["twin_name"]
        twin = sql.Identifier(table.schema, twin_name)
        key = _key_columns(table)
        if not _exists(conn, table.schema, twin_name):
            statements: list[sql.Composed] = [
                _create_twin(table.schema, source.name, twin_name, _partition_by(table))
            ]
            for t in model.twin_indexes(source, key, extend_unique=extend_unique):
                statements.append(_index_sql(t, twin))
            statements += self._twin_traits(conn, source, twin)
            with conn.transaction():
                conn.execute(
                    sql.SQL("SET LOCAL lock_timeout = {}").format(ddl.ms(self.config.lock_timeout))
                )
                for statement in statements:
                    conn.execute(statement)
                self._hook("twin:created")
        self._register(conn, table, source, record)
        self._hook("twin:registered")
        self._set_state(conn, record["id"], State.TWIN)
        report.notes.append(f"created {table.schema}.{twin_name}")

    def _register(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        source: SourceTable,
        record: dict[str, Any],
    ) -> None:
        """The twin registered with partman (its tenants too), partitions made by a pass back
        to the oldest row of the source (and forward to its newest)."""
        twin_table = self._twin_table(conn, table, source, record["twin_name"])
        with Manager(self.conninfo, config=self.config) as manager:
            manager.add_managed_table(twin_table)
            if table.tenant_id_column is not None:
                tenants = _distinct(conn, table.schema, source.name, table.tenant_id_column)
                if tenants:
                    manager.register_tenants(f"{table.schema}.{record['twin_name']}", tenants)
            pass_report = manager.maintain()
            failed = [r for r in pass_report.results if r.outcome.value == "failed"]
            if failed:
                raise ConversionError(
                    f"the pass that makes the twin's partitions failed: {failed[0].error}"
                )
            if twin_table.partition_count != table.partition_count and isinstance(
                table.interval, IdInterval
            ):
                # the windows up to the newest id are made: from here the twin keeps the
                # user's premake, or the pass after the copy (which sees the newest id) would
                # premake as many windows again past it
                manager.add_managed_table(
                    dataclasses.replace(twin_table, partition_count=table.partition_count)
                )
        for statement in _statistics(source, sql.Identifier(table.schema, record["twin_name"])):
            conn.execute(statement)

    def _twin_table(
        self, conn: psycopg.Connection[Any], table: Table, source: SourceTable, name: str
    ) -> Table:
        """The Table partman manages the twin as: the user's, with the reach it needs to hold
        every existing row (a time key: backfill from the oldest row, retention far enough
        back that no pass drops a partition during the conversion, premake up to the newest
        row; an id key: a default partition for rows below the lowest window)."""
        low, high = _key_range(conn, table.schema, source.name, table.partition_by)
        changes: dict[str, Any] = {
            "name": name,
            "tenant_id": None,
            "storage_parameters": model.carried_parameters(source, table.storage_parameters)[0],
        }
        interval = table.interval
        if isinstance(interval, Interval):
            now = dt.datetime.now(dt.UTC)
            lo, hi = _instant_of(low, table), _instant_of(high, table)
            if lo is not None:
                hi = hi or now
                days = max(0, math.ceil((now - lo).total_seconds() / 86400)) + 62
                changes["retention_period"] = dt.timedelta(days=days)
                changes["backfill"] = True
                ahead = interval.index(hi, self.config.tz) - interval.index(now, self.config.tz)
                changes["partition_count"] = min(
                    10_000, max(table.partition_count, ahead + table.partition_count)
                )
                changes["retention_action"] = RetentionAction.DROP
        elif isinstance(interval, IdInterval) and high is not None:
            # an empty id table's pass starts at window 0: premake far enough for the newest
            # id; ids below 0 or too far for 10,000 windows go to a default partition
            windows = int(high) // interval.width + table.partition_count
            changes["partition_count"] = min(10_000, max(table.partition_count, windows))
            if (int(low) < 0 or windows > 10_000) and not table.list_tenants:
                changes["default_partition"] = True
        return dataclasses.replace(table, **changes)

    # -- step 2: capture ---------------------------------------------------------------------

    def _capture(
        self, conn: psycopg.Connection[Any], source: SourceTable, record: dict[str, Any]
    ) -> None:
        log = sql.Identifier(self._meta, model.log_name(record["id"]))
        func = sql.Identifier(self._meta, model.function_name(record["id"]))
        keys = [sql.Identifier(k) for k in record["key_columns"]]
        typed = sql.SQL(", ").join(
            sql.SQL("{} {}").format(k, sql.SQL(t))
            for k, t in zip(keys, record["key_types"], strict=True)
        )
        klist = sql.SQL(", ").join(keys)
        new = sql.SQL(", ").join(sql.SQL("NEW.{}").format(k) for k in keys)
        old = sql.SQL(", ").join(sql.SQL("OLD.{}").format(k) for k in keys)
        body = sql.SQL(
            """
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (op, {k}) VALUES ('I', {new});
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO {log} (op, {k}) VALUES ('D', {old});
    ELSE
        INSERT INTO {log} (op, {k}) VALUES ('U', {new});
        IF ROW({old}) IS DISTINCT FROM ROW({new}) THEN
            INSERT INTO {log} (op, {k}) VALUES ('U', {old});
        END IF;
    END IF;
    RETURN NULL;
END
"""
        ).format(log=log, k=klist, new=new, old=old)
        src = sql.Identifier(source.schema, source.name)

        def work() -> None:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {log} (seq bigint GENERATED ALWAYS AS IDENTITY "
                    'PRIMARY KEY, op "char" NOT NULL, {typed}, at timestamptz NOT NULL DEFAULT '
                    "clock_timestamp())"
                ).format(log=log, typed=typed)
            )
            conn.execute(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql "
                    "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {body}"
                ).format(func=func, body=sql.Literal(body.as_string(conn)))
            )
            conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {}() FROM PUBLIC").format(func))
            self._truncate_guard(conn, record, source.schema, source.name)
            conn.execute(
                sql.SQL(
                    "DROP TRIGGER IF EXISTS {trig} ON {src}; CREATE TRIGGER {trig} AFTER INSERT "
                    "OR UPDATE OR DELETE ON {src} FOR EACH ROW EXECUTE FUNCTION {func}()"
                ).format(trig=sql.Identifier(TRIGGER_NAME), src=src, func=func)
            )
            self._hook("capture:created")
            self._set_state(conn, record["id"], State.CAPTURE)

        self._locked(conn, [(source.schema, source.name)], work, "SHARE ROW EXCLUSIVE")

    def _truncate_guard(
        self, conn: psycopg.Connection[Any], record: dict[str, Any], schema: str, name: str
    ) -> None:
        """A BEFORE TRUNCATE trigger beside the capture trigger, refusing a TRUNCATE of the table
        it is on (the source, after the swap the new table, after a rollback the source again).

        Why refuse rather than capture it: a TRUNCATE is a statement about the whole table, not
        about keys, so the change log could carry it only as "empty the other copy", which
        means an ACCESS EXCLUSIVE lock and a TRUNCATE of the twin (or, after the swap, of the
        old table kept for a rollback) taken by the replay in the middle of a conversion whose
        point is to never block the application. pg_partman users run conversions (its
        `partition_data_*`) as a maintenance operation and expect the table not to be emptied
        meanwhile; a TRUNCATE there is a script that did not know about the conversion, and
        refusing it loudly, naming the ways out, loses nothing: both tables keep every row, and
        after `--cancel` (before the swap), `--rollback` or `--finish` (after it) the TRUNCATE
        goes through. A TRUNCATE of one partition of the new table is not seen (its own
        statement); partman's retention detaches or drops partitions, it never truncates."""
        func = sql.Identifier(self._meta, model.truncate_function_name(record["id"]))
        table = f"{record['schema_name']}.{record['table_name']}"
        command = unmodel.direction_of(record["settings"]).command
        message = (
            f"TRUNCATE of {table} is refused while {command} is converting it: the "
            "change log captures rows, not a TRUNCATE, and the other copy of the table would "
            "keep every row"
        )
        hint = (
            f"Before the swap, cancel the conversion ({command} {table} --cancel); after "
            f"it, finish ({command} {table} --finish) or roll back ({command} "
            f"{table} --rollback, then --cancel); then TRUNCATE."
        )
        body = sql.SQL(
            "BEGIN RAISE EXCEPTION USING ERRCODE = 'object_in_use', MESSAGE = {}, HINT = {}; END"
        ).format(sql.Literal(message), sql.Literal(hint))
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql "
                "SET search_path = pg_catalog, pg_temp AS {body}"
            ).format(func=func, body=sql.Literal(body.as_string(conn)))
        )
        conn.execute(
            sql.SQL(
                "DROP TRIGGER IF EXISTS {trig} ON {t}; CREATE TRIGGER {trig} BEFORE TRUNCATE ON "
                "{t} FOR EACH STATEMENT EXECUTE FUNCTION {func}()"
            ).format(
                trig=sql.Identifier(TRUNCATE_TRIGGER_NAME),
                t=sql.Identifier(schema, name),
                func=func,
            )
        )

    # -- step 3: copy ------------------------------------------------------------------------

    def _copy(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
        report: ConvertReport,
    ) -> None:
        names = _Names(self._meta, source.schema, source.name, record["twin_name"], record, source)
        progress = Progress(Step.COPY, int(record["rows_copied"]), source.rows_estimate)
        while not record["copy_done"]:
            copied, cursor, done = self._placed(
                conn,
                table,
                source,
                record,
                functools.partial(self._copy_batch, conn, names, record),
            )
            record = dict(record, copy_cursor=cursor, copy_done=done)
            progress.rows_copied += copied
            progress.rows_total = max(progress.rows_total, progress.rows_copied)
            report.rows_copied += copied
            replayed = self._placed(
                conn,
                table,
                source,
                record,
                functools.partial(self._replay_all, conn, names, record, drain=False),
            )
            progress.replayed += replayed
            report.replayed += replayed
            self._progress(progress)
            if self.throttle and not done:
                _sleep(self.throttle)
        report.replayed += self._placed(
            conn, table, source, record, lambda: self._replay_all(conn, names, record, drain=True)
        )
        self._settle(conn, table, source, record)
        self._set_state(conn, record["id"], State.COPY)

    def _placed(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
        work: Callable[[], Any],
    ) -> Any:
        """`work()`, and once more after the twin's partitions are made again if a row found
        no partition (a tenant new since the twin was made, a key beyond its premade reach):
        the failed transaction changed nothing. An ordinary twin (`table` None) has none."""
        try:
            return work()
        except pgerrors.CheckViolation as error:
            if "no partition" not in str(error) or table is None:
                raise
        self._register(conn, table, source, record)
        return work()

    def _settle(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
    ) -> None:
        """A pass after the copy: an id table's rows parked in the default partition move into
        their windows (statistics targets given to the partitions it makes)."""
        if table is not None and isinstance(table.interval, IdInterval):
            with Manager(self.conninfo, config=self.config) as manager:
                manager.maintain()
            for statement in _statistics(source, sql.Identifier(table.schema, record["twin_name"])):
                conn.execute(statement)

    def _copy_batch(
        self, conn: psycopg.Connection[Any], names: _Names, record: dict[str, Any]
    ) -> tuple[int, list[str] | None, bool]:
        cursor: list[str] | None = record["copy_cursor"]
        after = names.after(cursor)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur = conn.execute(
                sql.SQL(
                    "SELECT {texts} FROM {src} WHERE {after} ORDER BY {keys} OFFSET %s LIMIT 1"
                ).format(texts=names.key_texts(), src=names.src, after=after, keys=names.keys()),
                (self.batch_rows - 1,),
            )
            end = cur.fetchone()
            bound = sql.SQL("TRUE") if end is None else names.at_most(list(end))
            cur = conn.execute(
                sql.SQL(
                    "INSERT INTO {twin} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {src} "
                    "WHERE {after} AND {bound}"
                ).format(
                    twin=names.twin, cols=names.cols(), src=names.src, after=after, bound=bound
                )
            )
            copied = max(0, cur.rowcount)
            done = end is None
            new_cursor = cursor if end is None else [str(v) for v in end]
            self._hook("copy:batch")
            conn.execute(
                sql.SQL(
                    "UPDATE {}.conversions SET copy_cursor = %s, copy_done = %s, rows_copied = "
                    "rows_copied + %s, updated_at = now() WHERE id = %s"
                ).format(sql.Identifier(self._meta)),
                (new_cursor, done, copied, record["id"]),
            )
        return copied, new_cursor, done

    def _replay_all(
        self,
        conn: psycopg.Connection[Any],
        names: _Names,
        record: dict[str, Any],
        *,
        drain: bool,
    ) -> int:
        """Replay the change log in batches; `drain`: until a batch finds it short (the log
        then holds only what was written since), else until it is below one batch."""
        total = 0
        while True:
            n = self._replay(conn, names, record)
            total += n
            if n < self.batch_rows or not drain:
                return total

    def _replay(
        self,
        conn: psycopg.Connection[Any],
        names: _Names,
        record: dict[str, Any],
        *,
        locked: bool = False,
    ) -> int:
        """One batch of the change log, in one snapshot: the captured keys deleted from the
        target, the source's current rows for them inserted (at or below the copy cursor),
        the log rows this snapshot saw deleted. Returns how many log rows it took."""
        cursor = record["copy_cursor"]
        limit: sql.Composable
        if record["copy_done"]:
            limit = sql.SQL("TRUE")
        elif cursor is None:
            limit = sql.SQL("FALSE")
        else:
            limit = names.at_most(cursor, alias="s")
        with conn.transaction():
            if not locked:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur = conn.execute(
                sql.SQL(
                    "SELECT max(seq), count(*) FROM (SELECT seq FROM {log} ORDER BY seq LIMIT %s) b"
                ).format(log=names.log),
                (self.batch_rows,),
            )
            row = cur.fetchone()
            if row is None or row[0] is None:
                return 0
            top, count = int(row[0]), int(row[1])
            cur = conn.execute(
                sql.SQL("SELECT DISTINCT {texts} FROM {log} WHERE seq <= %s").format(
                    texts=names.key_texts(), log=names.log
                ),
                (top,),
            )
            keys = names.key_arrays(cur.fetchall())
            conn.execute(
                sql.SQL("DELETE FROM {twin} t WHERE {match}").format(
                    twin=names.twin, match=names.match("t")
                ),
                keys,
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {twin} ({cols}) OVERRIDING SYSTEM VALUE SELECT {scols} "
                    "FROM {src} s WHERE {match} AND {limit}"
                ).format(
                    twin=names.twin,
                    cols=names.cols(),
                    scols=names.cols("s"),
                    src=names.src,
                    match=names.match("s"),
                    limit=limit,
                ),
                keys,
            )
            conn.execute(
                sql.SQL("DELETE FROM {log} WHERE seq <= %s").format(log=names.log), (top,)
            )
            self._hook("replay")
            conn.execute(
                sql.SQL(
                    "UPDATE {}.conversions SET rows_replayed = rows_replayed + %s, updated_at = "
                    "now() WHERE id = %s"
                ).format(sql.Identifier(self._meta)),
                (count, record["id"]),
            )
        return count

    # -- step 4: verify ----------------------------------------------------------------------

    def _verify(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
        report: ConvertReport,
    ) -> None:
        names = _Names(self._meta, source.schema, source.name, record["twin_name"], record, source)
        self._placed(
            conn, table, source, record, lambda: self._replay_all(conn, names, record, drain=True)
        )
        cursor: list[str] | None = None
        rows = 0
        digests: list[str] = []
        while True:
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                after = names.after(cursor)
                cur = conn.execute(
                    sql.SQL(
                        "SELECT {texts} FROM {src} WHERE {after} ORDER BY {keys} OFFSET %s LIMIT 1"
                    ).format(
                        texts=names.key_texts(), src=names.src, after=after, keys=names.keys()
                    ),
                    (VERIFY_BATCH_ROWS - 1,),
                )
                end = cur.fetchone()
                bound = sql.SQL("TRUE") if end is None else names.at_most(list(end))
                sums = []
                for rel in (names.src, names.twin):
                    cur = conn.execute(
                        sql.SQL(
                            "SELECT count(*), coalesce(md5(string_agg(x::text, E'\\n' ORDER BY "
                            "{xk})), '') FROM {rel} x WHERE {after} AND {bound} AND NOT EXISTS "
                            "(SELECT FROM {log} l WHERE ({lk}) = ({xk}))"
                        ).format(
                            xk=names.keys("x"),
                            rel=rel,
                            after=names.after(cursor, alias="x"),
                            bound=bound if end is None else names.at_most(list(end), alias="x"),
                            log=names.log,
                            lk=names.keys("l"),
                        )
                    )
                    got = cur.fetchone()
                    assert got is not None
                    sums.append((int(got[0]), str(got[1])))
            if sums[0] != sums[1]:
                where = "from the start" if cursor is None else f"after key {cursor}"
                dropped = (
                    " (or a partition was dropped or detached meanwhile, by retention or by "
                    "hand: that fires no DELETE trigger, so its rows are still in the twin; "
                    "--cancel and run it again)"
                    if table is None
                    else ""
                )
                raise ConversionError(
                    f"{source.qualified}: the twin differs from the source in the batch "
                    f"{where}: source {sums[0][0]} rows (md5 {sums[0][1]}), twin {sums[1][0]} "
                    f"rows (md5 {sums[1][1]}); nothing was swapped. Report this: it is a bug"
                    + dropped
                )
            rows += sums[0][0]
            digests.append(sums[0][1])
            self._progress(Progress(Step.VERIFY, rows, max(rows, source.rows_estimate)))
            if end is None:
                break
            cursor = [str(v) for v in end]
        checksum = _md5("\n".join(digests))
        report.partitions = self._partition_counts(
            conn, names, source, tree_is_source=table is None
        )
        report.verified_rows = rows
        report.checksum = checksum
        self._hook("verify:recorded")
        conn.execute(
            sql.SQL(
                "UPDATE {}.conversions SET state = 'verify', verified_rows = %s, checksum = %s, "
                "updated_at = now() WHERE id = %s"
            ).format(sql.Identifier(self._meta)),
            (rows, checksum, record["id"]),
        )

    def _partition_counts(
        self,
        conn: psycopg.Connection[Any],
        names: _Names,
        source: SourceTable,
        *,
        tree_is_source: bool = False,
    ) -> dict[str, int]:
        """Rows per partition of the partitioned one (the twin; the source when unpartitioning),
        and of the ordinary one by each partition's constraint (`pg_get_partition_constraintdef`,
        ancestors' included, one scan with a FILTER a partition), in one snapshot, keys still
        in the change log left out of both; raises if any differs."""
        tree, flat = (names.src, names.twin) if tree_is_source else (names.twin, names.src)
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur = conn.execute(
                "SELECT c.relname::text, pg_get_partition_constraintdef(c.oid) "
                "FROM pg_partition_tree(%s::regclass) t JOIN pg_class c ON c.oid = t.relid "
                "WHERE t.isleaf ORDER BY 1",
                (tree.as_string(conn),),
            )
            leaves = [(str(n), str(d)) for n, d in cur.fetchall()]
            leaves.sort(key=lambda leaf: natural_key(leaf[0]))  # the report lists them so
            if not leaves:
                return {}
            pending = sql.SQL("NOT EXISTS (SELECT FROM {log} l WHERE ({lk}) = ({xk}))").format(
                log=names.log, lk=names.keys("l"), xk=names.keys("x")
            )
            cur = conn.execute(
                sql.SQL(
                    "SELECT c.relname::text, count(*) FROM {twin} x JOIN pg_class c ON c.oid = "
                    "x.tableoid WHERE {pending} GROUP BY 1"
                ).format(twin=tree, pending=pending)
            )
            twin = {str(n): int(c) for n, c in cur.fetchall()}
            row: list[int] = []
            for start in range(0, len(leaves), _FILTERS_PER_SCAN):
                filters = sql.SQL(", ").join(
                    sql.SQL("count(*) FILTER (WHERE {})").format(sql.SQL(d))
                    for _, d in leaves[start : start + _FILTERS_PER_SCAN]
                )
                cur = conn.execute(
                    sql.SQL("SELECT {filters} FROM {src} x WHERE {pending}").format(
                        filters=filters, src=flat, pending=pending
                    )
                )
                got = cur.fetchone()
                assert got is not None
                row += [int(n) for n in got]
        counts = {leaf: row[i] for i, (leaf, _) in enumerate(leaves)}
        ours, theirs = (twin, counts) if tree_is_source else (counts, twin)
        differ = [
            f"{leaf}: source {ours.get(leaf, 0)}, twin {theirs.get(leaf, 0)}"
            for leaf, n in counts.items()
            if n != twin.get(leaf, 0)
        ]
        if differ:
            raise ConversionError(
                f"{source.qualified}: rows per partition differ ({'; '.join(differ[:5])}); "
                "nothing was swapped. Report this: it is a bug"
            )
        return counts

    # -- step 5: swap ------------------------------------------------------------------------

    def _swap(
        self,
        conn: psycopg.Connection[Any],
        table: Table | None,
        source: SourceTable,
        record: dict[str, Any],
        report: ConvertReport,
    ) -> None:
        names = _Names(self._meta, source.schema, source.name, record["twin_name"], record, source)
        self._vacuum(conn, source.schema, record["twin_name"], report)
        self._placed(  # leave little for the lock
            conn, table, source, record, lambda: self._replay_all(conn, names, record, drain=True)
        )
        fks = self._moved_fks(source, record)
        schema, name, old, twin_name = (
            record["schema_name"],
            record["table_name"],
            record["old_name"],
            record["twin_name"],
        )
        children = [(fk.key.schema, fk.key.table) for fk in fks]

        def work() -> None:
            while self._replay(conn, names, record, locked=True) > 0:
                pass
            self._rename(conn, schema, name, old, twin_name, record, fks, forward=True)
            self._hook("swap:locked")
            self._set_state(conn, record["id"], State.SWAP)

        started = time.perf_counter()
        views = [(v.schema, v.name) for v in _views(conn, schema, name) if not v.materialized]
        locks = [*views, (schema, name), (schema, twin_name), *children]  # as queries: view first
        attempts = self._placed(
            conn, table, source, record, lambda: self._locked(conn, locks, work, notes=report.notes)
        )
        report.swap_ms = (time.perf_counter() - started) * 1000
        report.swap_attempts = attempts
        self._validate_fks(conn, fks)
        for fk in fks:
            report.notes.append(
                f"foreign key {fk.key.name} of {fk.key.qualified} now references {schema}.{name}"
            )
        if table is None:
            report.notes.insert(
                0,
                f"swapped: {schema}.{name} is an ordinary table; the partitioned one is "
                f"{schema}.{old}, kept with its partitions and no longer managed by partman",
            )
            return
        # the registration now carries the user's own policy (retention, premake, ...)
        parameters, _ = model.carried_parameters(source, table.storage_parameters)
        with Manager(self.conninfo, config=self.config) as manager:
            manager.add_managed_table(
                dataclasses.replace(table, tenant_id=None, storage_parameters=parameters)
            )
        report.notes.insert(
            0, f"swapped: {schema}.{name} is partitioned, the old table is {schema}.{old}"
        )

    def _vacuum(
        self, conn: psycopg.Connection[Any], schema: str, twin: str, report: ConvertReport
    ) -> None:
        """The twin's rows were all just inserted: without this, the application's first
        queries after the swap would be planned without statistics (autovacuum never analyzes
        a partitioned table) and read every page's visibility, and autovacuum would soon start
        on each partition, holding a lock the swap needs. Outside any transaction (VACUUM runs
        in its own); it takes SHARE UPDATE EXCLUSIVE on the twin only, which the application
        does not use yet, and supersedes an autovacuum already on it (PostgreSQL cancels that
        one once this waits deadlock_timeout)."""
        started = time.perf_counter()
        # a server-wide statement_timeout would cancel it on a big table: it blocks no one
        conn.execute("SET statement_timeout = 0")
        try:
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, twin)))
        finally:
            conn.execute("RESET statement_timeout")
        seconds = time.perf_counter() - started
        log_event(
            self.logger,
            logging.INFO,
            "convert_vacuumed",
            f"vacuumed and analyzed {schema}.{twin} in {seconds:.1f}s",
            table=f"{schema}.{twin}",
            seconds=round(seconds, 3),
        )
        report.notes.append(f"VACUUM (ANALYZE) of the new table before the swap: {seconds:.1f}s")

    def _moved_fks(
        self, source: SourceTable, record: dict[str, Any]
    ) -> list[model.ForeignKeyPlan]:
        """The foreign keys referencing `source` that the swap points at the other table."""
        settings = record["settings"]
        twin = model.twin_indexes(
            source,
            _key_columns_settings(settings),
            extend_unique=bool(settings.get("extend_unique")),
        )
        return [p for p in model.foreign_key_plans(source, twin) if p.repointed]

    def _rename(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        name: str,
        old: str,
        twin_name: str,
        record: dict[str, Any],
        fks: Sequence[model.ForeignKeyPlan],
        *,
        forward: bool,
    ) -> None:
        """Inside the locked transaction: the names, the trigger, sequences, foreign keys and
        partman's registration moved from one table to the other."""
        s = sql.Identifier(schema)
        trig = sql.Identifier(TRIGGER_NAME)
        func = sql.Identifier(self._meta, model.function_name(record["id"]))
        meta = sql.Identifier(self._meta)
        # forward: name is the source (becomes old), twin_name the twin (becomes name)
        # back: name is the partitioned table (becomes twin_name), old becomes name
        going, coming, going_to = (name, twin_name, old) if forward else (name, old, twin_name)
        views = [v for v in _views(conn, schema, going) if not v.materialized]
        sequences = _identity_sequences(conn, schema, going)
        owned = _owned_sequences(conn, schema, going)
        conn.execute(
            sql.SQL("DROP TRIGGER {} ON {}.{}").format(trig, s, sql.Identifier(going))
        )
        conn.execute(
            sql.SQL("DROP TRIGGER IF EXISTS {} ON {}.{}").format(
                sql.Identifier(TRUNCATE_TRIGGER_NAME), s, sql.Identifier(going)
            )
        )
        _move_triggers(conn, schema, going, coming)
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(
                s, sql.Identifier(going), sql.Identifier(going_to)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(
                s, sql.Identifier(coming), sql.Identifier(name)
            )
        )
        _repoint_views(conn, views)
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {}.{} FOR EACH ROW "
                "EXECUTE FUNCTION {}()"
            ).format(trig, s, sql.Identifier(name), func)
        )
        self._truncate_guard(conn, record, schema, name)
        for column, seq in sequences:  # identity: the new table's continues where ids are
            conn.execute(
                "SELECT setval(pg_get_serial_sequence(%s, %s), v, true) FROM "
                "(SELECT pg_sequence_last_value(%s::regclass) AS v) x WHERE v IS NOT NULL",
                (sql.Identifier(schema, name).as_string(conn), column, seq),
            )
        for column, seq in owned:  # serial: the sequence belongs to the new table
            conn.execute(
                sql.SQL("ALTER SEQUENCE {} OWNED BY {}.{}.{}").format(
                    sql.SQL(seq), s, sql.Identifier(name), sql.Identifier(column)
                )
            )
        for plan in fks:
            fk = plan.key
            child = sql.Identifier(fk.schema, fk.table)
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {child} DROP CONSTRAINT {c}, ADD CONSTRAINT {c} FOREIGN KEY "
                    "({cols}) REFERENCES {s}.{t} ({refs}) {tail} NOT VALID"
                ).format(
                    child=child,
                    c=sql.Identifier(fk.name),
                    cols=sql.SQL(", ").join(map(sql.Identifier, fk.columns)),
                    s=s,
                    t=sql.Identifier(name),
                    refs=sql.SQL(", ").join(map(sql.Identifier, fk.referenced)),
                    tail=sql.SQL(_fk_tail(fk.definition)),
                )
            )
        if unmodel.direction_of(record["settings"]) is Direction.UNPARTITION:
            self._unregister(conn, record, forward=forward)
            return
        # partman's registration follows the partitioned table's name
        partitioned_from, partitioned_to = (twin_name, name) if forward else (name, twin_name)
        moved = {"s": schema, "from": partitioned_from, "to": partitioned_to}
        conn.execute(
            sql.SQL(
                "UPDATE {m}.managed_tables SET table_name = %(to)s, updated_at = now() "
                "WHERE schema_name = %(s)s AND table_name = %(from)s"
            ).format(m=meta),
            moved,
        )
        conn.execute(
            sql.SQL(
                "UPDATE {m}.partitions SET parent_name = %(to)s "
                "WHERE parent_schema = %(s)s AND parent_name = %(from)s"
            ).format(m=meta),
            moved,
        )

    def _unregister(
        self, conn: psycopg.Connection[Any], record: dict[str, Any], *, forward: bool
    ) -> None:
        """Inside an unpartition's swap (`forward`): the partitioned table's registration with
        partman and its tenants saved into the conversion's record and removed (no pass
        premakes or drops on it from here), its partitions' ownership records following it to
        its old name. Inside its rollback: the registration `_reregister` restored under the
        old name follows the tree back to the name."""
        meta = sql.Identifier(self._meta)
        names = {
            "s": record["schema_name"],
            "name": record["table_name"],
            "old": record["old_name"],
            "id": record["id"],
        }
        statements = [
            "UPDATE {m}.managed_tables SET table_name = %(name)s, updated_at = now() "
            "WHERE schema_name = %(s)s AND table_name = %(old)s",
            "UPDATE {m}.partitions SET parent_name = %(name)s "
            "WHERE parent_schema = %(s)s AND parent_name = %(old)s",
        ]
        if forward:
            statements = [
                "UPDATE {m}.conversions c SET settings = c.settings || jsonb_build_object("
                "'registration', (SELECT jsonb_build_object('table', to_jsonb(t), 'tenants', "
                "coalesce((SELECT jsonb_agg(to_jsonb(n)) FROM {m}.tenants n WHERE n.table_id = "
                "t.id), '[]')) FROM {m}.managed_tables t WHERE t.schema_name = %(s)s AND "
                "t.table_name = %(name)s)) WHERE c.id = %(id)s",
                "DELETE FROM {m}.managed_tables WHERE schema_name = %(s)s "
                "AND table_name = %(name)s",
                "UPDATE {m}.partitions SET parent_name = %(old)s "
                "WHERE parent_schema = %(s)s AND parent_name = %(name)s",
            ]
        for statement in statements:
            conn.execute(sql.SQL(statement).format(m=meta), names)

    def _reregister(
        self, conn: psycopg.Connection[Any], record: dict[str, Any]
    ) -> None:
        """Before an unpartition's rollback: the registration saved at the swap restored under
        the old tree's name, and a pass, so that the rows written since the swap find their
        partitions when they are carried back (the swap-back renames it with the tree)."""
        saved = record["settings"].get("registration")
        if not saved:
            return
        meta = sql.Identifier(self._meta)
        for table, rows in (
            ("managed_tables", [dict(saved["table"], table_name=record["old_name"])]),
            ("tenants", saved["tenants"]),
        ):
            if not rows:
                continue
            cur = conn.execute(  # the columns saved that the table still has
                "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute WHERE "
                "attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attname = ANY(%s)",
                (sql.Identifier(self._meta, table).as_string(conn), list(rows[0])),
            )
            got = cur.fetchone()
            cols = sql.SQL(", ").join(map(sql.Identifier, got[0] if got and got[0] else []))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {m}.{t} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM "
                    "jsonb_populate_recordset(NULL::{m}.{t}, %s) ON CONFLICT DO NOTHING"
                ).format(m=meta, t=sql.Identifier(table), cols=cols),
                (Jsonb(rows),),
            )
        with Manager(self.conninfo, config=self.config) as manager:
            manager.maintain()

    def _validate_fks(
        self, conn: psycopg.Connection[Any], fks: Sequence[model.ForeignKeyPlan]
    ) -> None:
        for plan in fks:  # SHARE UPDATE EXCLUSIVE on the child: writes go on meanwhile
            conn.execute(
                sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(
                    sql.Identifier(plan.key.schema, plan.key.table), sql.Identifier(plan.key.name)
                )
            )

    def _swap_back(
        self, conn: psycopg.Connection[Any], record: dict[str, Any], report: ConvertReport
    ) -> None:
        schema, name, old, twin_name = (
            record["schema_name"],
            record["table_name"],
            record["old_name"],
            record["twin_name"],
        )
        read_source(conn, schema, old, display=f"{schema}.{old}")  # still there
        new_src = read_source(conn, schema, name, display=f"{schema}.{name}")
        # changes to the new table flow back into the old one: the old is the target now
        back = dict(record, copy_done=True, copy_cursor=None)
        names = _Names(self._meta, schema, name, old, back, new_src.table)
        unpartition = unmodel.direction_of(record["settings"]) is Direction.UNPARTITION
        if unpartition:  # the old tree managed again (under its old name) before rows go back
            self._reregister(conn, record)
        try:
            report.replayed += self._replay_all(conn, names, back, drain=True)
        except pgerrors.CheckViolation as error:
            if "no partition" not in str(error):
                raise
            raise ConversionError(
                f"a row written to {schema}.{name} since the swap has no partition in "
                f"{schema}.{old}: {first_line(error)}. Create that partition (or a default "
                "partition) on it and run --rollback again; nothing was swapped back"
            ) from None
        # the foreign keys reference the table that has the name now (old_src has none)
        fks = self._moved_fks(new_src.table, record)
        children = [(fk.key.schema, fk.key.table) for fk in fks]

        def work() -> None:
            while self._replay(conn, names, back, locked=True) > 0:
                pass
            self._rename(conn, schema, name, old, twin_name, record, fks, forward=False)
            # the twin is behind from here on: it catches up by the capture on the source
            conn.execute(
                sql.SQL(
                    "UPDATE {}.conversions SET state = 'copy', updated_at = now() WHERE id = %s"
                ).format(sql.Identifier(self._meta)),
                (record["id"],),
            )
            self._hook("rollback:locked")

        started = time.perf_counter()
        views = [(v.schema, v.name) for v in _views(conn, schema, name) if not v.materialized]
        report.swap_attempts = self._locked(
            conn, [*views, (schema, name), (schema, old), *children], work, notes=report.notes
        )
        report.swap_ms = (time.perf_counter() - started) * 1000
        self._validate_fks(conn, fks)
        if unpartition:
            report.notes.append(
                f"rolled back: {schema}.{name} is the partitioned table again, managed by "
                f"partman with its policy; the ordinary one is {schema}.{twin_name}, kept up "
                "to date: unpartition again to swap, or --cancel to drop it"
            )
            return
        report.notes.append(
            f"rolled back: {schema}.{name} is the original table again; the partitioned one is "
            f"{schema}.{twin_name}, kept up to date: convert again to swap, or drop it"
        )

    # -- the lock budget ---------------------------------------------------------------------

    def _locked(
        self,
        conn: psycopg.Connection[Any],
        tables: Sequence[tuple[str, str]],
        work: Callable[[], Any],
        mode: str = "ACCESS EXCLUSIVE",
        notes: list[str] | None = None,
    ) -> int:
        """`work` in one transaction holding `mode` (ACCESS EXCLUSIVE, or SHARE ROW EXCLUSIVE
        for a trigger: reads go on) on `tables`, taken under
        lock_timeout after a look for holders that would make the request queue (then it waits
        and retries instead, never queueing in front of the application); returns attempts."""
        attempts = 0
        while True:
            attempts += 1
            holders = self._blockers(conn, tables, notes)
            for _ in range(QUICK_LOOKS):  # a writer between two statements: gone in a moment
                budget = self.config.lock_timeout.total_seconds()
                if not holders or not all(h.between_statements(budget) for h in holders):
                    break
                _sleep(QUICK_LOOK_PAUSE)
                holders = self._blockers(conn, tables, notes)
            blocker = holders[0].describe() if holders else None
            if blocker is None:
                try:
                    with conn.transaction():
                        conn.execute(
                            sql.SQL(
                                "SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}"
                            ).format(
                                ddl.ms(self.config.lock_timeout),
                                ddl.ms(self.config.statement_timeout),
                            )
                        )
                        conn.execute(
                            sql.SQL("LOCK TABLE {} IN {} MODE").format(
                                sql.SQL(", ").join(sql.Identifier(s, n) for s, n in tables),
                                sql.SQL(_LOCK_MODES[mode]),
                            )
                        )
                        work()
                    return attempts
                except ddl.RETRYABLE as error:
                    blocker = first_line(error)
            if attempts > self.config.max_retries:
                raise LockUnavailableError(
                    f"could not lock {', '.join(s + '.' + n for s, n in tables)} within the "
                    f"lock budget ({self.config.lock_timeout}) after {attempts} attempts: "
                    f"{blocker}; nothing was changed, run it again later"
                )
            _sleep(self._backoff.delay(attempts))

    def _blockers(
        self,
        conn: psycopg.Connection[Any],
        tables: Sequence[tuple[str, str]],
        notes: list[str] | None = None,
    ) -> list[Holder]:
        """Who would make the LOCK queue (none: ask). An autovacuum in the way is cancelled
        (`model.holders`); one that may not be is left in."""
        holders: list[Holder] = []
        for schema, name in tables:
            cur = conn.execute(
                ddl.tree_lock_blockers_query(schema, name, budget=self.config.lock_timeout)
            )
            holders += [Holder.of(row) for row in cur.fetchall()]
        others = [h for h in holders if not h.autovacuum]
        if others:
            return others
        return cancel_autovacuum(conn, holders, self.logger, notes)


# -- names and SQL pieces --------------------------------------------------------------------


class _Names:
    """The SQL names of one replay or copy: source, target, log, key and copied columns."""

    def __init__(
        self,
        meta: str,
        schema: str,
        source: str,
        target: str,
        record: dict[str, Any],
        table: SourceTable,
    ) -> None:
        self.src = sql.Identifier(schema, source)
        self.twin = sql.Identifier(schema, target)
        self.log = sql.Identifier(meta, model.log_name(record["id"]))
        self.key_columns: list[str] = list(record["key_columns"])
        self.key_types: list[str] = list(record["key_types"])
        self.insertable = table.insertable

    def keys(self, alias: str | None = None) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.Identifier(alias, k) if alias else sql.Identifier(k) for k in self.key_columns
        )

    def cols(self, alias: str | None = None) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in self.insertable
        )

    def key_texts(self) -> sql.Composable:
        """The key as text, under names of its own: `ORDER BY id` must sort by the column, not
        by an output column `id::text` (which would sort the whole table as text)."""
        return sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(sql.Identifier(k), sql.Identifier(f"_partman_k{i}"))
            for i, k in enumerate(self.key_columns)
        )

    def key_arrays(self, rows: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """Keys read as text rows, as one parameter a column (`k0`, `k1`, ...) for `match`."""
        return {f"k{i}": [r[i] for r in rows] for i in range(len(self.key_columns))}

    def match(self, alias: str) -> sql.Composable:
        """The rows whose key is one of `key_arrays`: `= ANY(array)` for one column, `IN
        (unnest(...))` for more; arrays, so that the planner knows how few they are and
        probes the primary key's index instead of scanning every partition."""
        arrays = [
            sql.SQL("%({})s::text[]::{}[]").format(sql.SQL(f"k{i}"), sql.SQL(t))
            for i, t in enumerate(self.key_types)
        ]
        if len(arrays) == 1:
            return sql.SQL("{} = ANY({})").format(self.keys(alias), arrays[0])
        return sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
            self.keys(alias), sql.SQL(", ").join(arrays)
        )

    def _values(self, values: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t))
            for v, t in zip(values, self.key_types, strict=True)
        )

    def _compare(self, op: str, cursor: Sequence[str], alias: str | None) -> sql.Composable:
        """`key op value`, or `(k1, k2) op (v1, v2)`: both forms a btree index serves (a
        one-column ROW(...) comparison is not, and would sort the table for every batch)."""
        template = "{} " + op + " {}" if len(self.key_columns) == 1 else "({}) " + op + " ({})"
        return sql.SQL(template).format(self.keys(alias), self._values(cursor))

    def after(self, cursor: Sequence[str] | None, alias: str | None = None) -> sql.Composable:
        if cursor is None:
            return sql.SQL("TRUE")
        return self._compare(">", cursor, alias)

    def at_most(self, cursor: Sequence[str], alias: str | None = None) -> sql.Composable:
        return self._compare("<=", cursor, alias)


def _named(table: Table) -> str:
    if table.name is None:
        raise ConfigError("convert needs Table.name, the table to convert (e.g. name='orders')")
    return table.name


def _key_columns(table: Table) -> tuple[str, ...]:
    if table.tenant_id_column is not None:
        return (table.tenant_id_column, table.partition_by)
    return (table.partition_by,)


def _key_columns_settings(settings: dict[str, Any]) -> tuple[str, ...]:
    """The partition key the twin of a conversion's record has (none: an unpartition's)."""
    if "partition_by" not in settings:
        return ()
    tenant = settings.get("tenant_id_column")
    by = str(settings["partition_by"])
    return (str(tenant), by) if tenant else (by,)


def _shape(table: Table) -> str:
    if table.tenant_id_column is None:
        return f"RANGE ({table.partition_by})"
    if table.list_tenants:
        return f"LIST ({table.tenant_id_column})"
    return f"RANGE ({table.tenant_id_column}, {table.partition_by})"


def _create_twin(
    schema: str, source: str, twin: str, partition_by: sql.Composable | None
) -> sql.Composed:
    """The twin's CREATE TABLE: what step 1 runs, and what its plan shows; partitioned by
    `partition_by` (convert), or an ordinary table (None: unpartition)."""
    return sql.SQL(
        "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING "
        "GENERATED INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING "
        "STATISTICS INCLUDING COMMENTS){}"
    ).format(
        sql.Identifier(schema, twin),
        sql.Identifier(schema, source),
        sql.SQL("") if partition_by is None else sql.SQL(" PARTITION BY {}").format(partition_by),
    )


def _partition_by(table: Table) -> sql.Composable:
    if table.tenant_id_column is None:
        return sql.SQL("RANGE ({})").format(sql.Identifier(table.partition_by))
    if table.list_tenants:
        return sql.SQL("LIST ({})").format(sql.Identifier(table.tenant_id_column))
    return sql.SQL("RANGE ({}, {})").format(
        sql.Identifier(table.tenant_id_column), sql.Identifier(table.partition_by)
    )


def _index_sql(t: model.TwinIndex, twin: sql.Identifier) -> sql.Composed:
    index = t.source
    if t.columns is None:  # reused as it is: "CREATE INDEX name ON tbl USING btree (...) ..."
        tail = index.definition.split(" USING ", 1)[1]
        return sql.SQL("CREATE INDEX ON {} USING {}").format(twin, sql.SQL(tail))
    cols = sql.SQL(", ").join(map(sql.Identifier, t.columns))
    if index.primary:
        return sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(twin, cols)
    if index.constraint == "u" and not index.predicate and not index.include:
        return sql.SQL("ALTER TABLE {} ADD UNIQUE ({})").format(twin, cols)
    include = (
        sql.SQL(" INCLUDE ({})").format(sql.SQL(", ").join(map(sql.Identifier, index.include)))
        if index.include
        else sql.SQL("")
    )
    where = (
        sql.SQL(" WHERE {}").format(sql.SQL(index.predicate)) if index.predicate else sql.SQL("")
    )
    return sql.SQL("CREATE UNIQUE INDEX ON {} ({}){}{}").format(twin, cols, include, where)


def _fk_tail(definition: str) -> str:
    """What follows `REFERENCES t(cols)` in a foreign key's definition: MATCH, ON UPDATE/DELETE,
    DEFERRABLE (catalog text from pg_get_constraintdef)."""
    after = definition.split(")", 2)
    return after[2].strip() if len(after) == 3 else ""


def _instant_of(value: object, table: Table) -> dt.datetime | None:
    """The instant a time key's value stands for: a timestamp or date, an epoch integer, or a
    UUIDv7's milliseconds; None when there is none (no rows, or a uuid of another version)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, int | Decimal) and table.epoch is not None:
        seconds = float(value) / table.epoch_unit.per_second
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, uuid.UUID) and value.version == 7:
        return dt.datetime.fromtimestamp(int(value.hex[:12], 16) / 1000, dt.UTC)
    return None


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


# -- catalog reads ---------------------------------------------------------------------------


class _Found:
    def __init__(self, kind: str, table: SourceTable) -> None:
        self.kind = kind
        self.table = table


def _exists(conn: psycopg.Connection[Any], schema: str, name: str) -> bool:
    cur = conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    )
    return cur.fetchone() is not None


def read_source(
    conn: psycopg.Connection[Any], schema: str, name: str, *, display: str
) -> _Found:
    cur = conn.execute(
        "SELECT c.oid, c.relkind::text, c.reltuples::bigint FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    )
    row = cur.fetchone()
    if row is None:
        raise TableNotFoundError(
            f"table {display} does not exist (looked for {schema}.{name}); check the schema "
            "and the name (case is kept)"
        )
    oid, kind, estimate = int(row[0]), str(row[1]), int(row[2])
    if estimate <= 0 and kind == "r":  # never analyzed: count (once, for the progress bar)
        cur = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
        )
        counted = cur.fetchone()
        estimate = int(counted[0]) if counted else 0
    cur = conn.execute(
        "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull, "
        "attidentity::text, attgenerated::text, attstattarget::int, "
        "coalesce(attoptions, '{}')::text[] FROM pg_attribute WHERE attrelid = %s AND "
        "attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (oid,),
    )
    columns = tuple(
        Column(
            n,
            t,
            bool(nn),
            i or "",
            g or "",
            None if st is None or st < 0 else int(st),  # -1 (15) or NULL (17+): the default
            tuple(opts),
        )
        for n, t, nn, i, g, st, opts in cur.fetchall()
    )
    cur = conn.execute(
        "SELECT coalesce(c.reloptions, '{}')::text[] || ARRAY(SELECT 'toast.' || o FROM "
        "unnest(t.reloptions) o) FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
        "WHERE c.oid = %s",
        (oid,),
    )
    got = cur.fetchone()
    reloptions = tuple(got[0]) if got else ()
    cur = conn.execute(
        """
SELECT ic.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
       coalesce(con.contype::text, ''), pg_get_expr(i.indpred, i.indrelid),
       ARRAY(SELECT CASE WHEN k.n = 0 THEN NULL ELSE a.attname::text END
               FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(n, o)
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
              ORDER BY k.o),
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey[i.indnkeyatts:]) WITH ORDINALITY AS k(n, o)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
              ORDER BY k.o)
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
  LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
 WHERE i.indrelid = %s AND i.indisvalid
 ORDER BY i.indisprimary DESC, ic.relname
""",
        (oid,),
    )
    indexes = tuple(
        Index(
            n,
            d,
            tuple(cols),
            unique=bool(u),
            primary=bool(p),
            constraint=c or None,
            predicate=pred,
            include=tuple(inc),
        )
        for n, d, u, p, c, pred, cols, inc in cur.fetchall()
    )
    primary = next((i.columns for i in indexes if i.primary), ())
    cur = conn.execute(
        """
SELECT con.conname::text, n.nspname::text, c.relname::text,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
       pg_get_constraintdef(con.oid)
  FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE con.contype = 'f' AND con.confrelid = %s AND con.conrelid <> %s AND con.conparentid = 0
 ORDER BY 2, 3, 1
""",
        (oid, oid),
    )
    fks = tuple(
        ForeignKey(cn, s, t, tuple(cols), tuple(refs), d)
        for cn, s, t, cols, refs, d in cur.fetchall()
    )
    table = SourceTable(
        schema,
        name,
        columns,
        tuple(c for c in primary if c is not None),
        indexes,
        fks,
        estimate,
        reloptions,
    )
    return _Found(kind, table)


def _refuse_bound(
    conn: psycopg.Connection[Any],
    schema: str,
    name: str,
    record: dict[str, Any] | None,
    direction: Direction,
) -> None:
    """Refuses a table that views read (before the swap), or whose twin's or old table's name
    is taken (before the start)."""
    if direction is Direction.UNPARTITION:  # (its views are not carried yet)
        names = _dependent_views(conn, schema, name)
        if names and (record is None or record["state"] != State.SWAP.value):
            raise ConversionError(
                f"{schema}.{name} is read by view(s) {', '.join(names)}: PostgreSQL binds a view "
                "to the table itself, not to its name, so after the swap they would read the old "
                f"table. Drop them before {direction.command} and create them again after the "
                "swap; nothing was changed"
            )
    views = _views(conn, schema, name)
    if record is None or record["state"] != State.SWAP.value:
        stuck = [v.qualified for v in views if v.materialized]
        if stuck:
            raise ConversionError(
                f"{schema}.{name} is read by materialized view(s) {', '.join(stuck)}: their "
                "rows are a copy that a swap cannot re-point (plain views are re-created on the "
                f"new table by the swap). Drop them before {direction.command} and create them "
                "again after the swap; nothing was changed"
            )
        foreign = [v.qualified for v in views if not v.owned]
        if foreign:
            raise ConversionError(
                f"{schema}.{name} is read by view(s) {', '.join(foreign)}, owned by a role "
                f"that {direction.command}'s role is not a member of: the swap re-creates "
                "them on the new table (CREATE OR REPLACE VIEW), which takes their owner. "
                "Run it as that owner or a superuser; nothing was changed"
            )
    if record is None:
        for other in (model.twin_name(name), model.old_name(name)):
            if _exists(conn, schema, other):
                raise ConversionError(
                    f"{schema}.{other} exists already, and {direction.command} needs the name "
                    "for its twin or for the old table; rename or drop it first"
                )


def _policy_text(row: dict[str, Any]) -> str:
    """A `managed_tables` row (or the one an unpartition saved) in a few words."""
    retention = row.get("retention") or "forever"
    return (
        f"interval {row['partition_interval']}, retention {retention}, "
        f"premake {row['partition_count']}"
    )


def _refuse_unmovable(conn: psycopg.Connection[Any], source: SourceTable) -> None:
    """Refuses a foreign key the swap could not move within the lock budget. PostgreSQL has
    no way to point a foreign key at another table in place: the swap drops it and adds it
    again NOT VALID (no scan), then validates it outside the lock. Before PostgreSQL 18 a
    partitioned referencing table cannot take a NOT VALID foreign key, so the swap would have
    to check every row of it while holding its lock."""
    if conn.info.server_version >= 180000 or not source.referenced_by:
        return
    cur = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.relkind = 'p' AND (n.nspname, c.relname) IN (SELECT * FROM "
        "unnest(%s::text[], %s::text[]))",
        ([k.schema for k in source.referenced_by], [k.table for k in source.referenced_by]),
    )
    parted = {str(r) for (r,) in cur.fetchall()}
    keys = [k for k in source.referenced_by if k.qualified in parted or k.table in parted]
    if keys:
        raise ConversionError(
            f"foreign key {keys[0].name} of {keys[0].qualified} references "
            f"{source.qualified}, and {keys[0].qualified} is partitioned: before PostgreSQL 18 "
            "a partitioned table cannot take a foreign key NOT VALID, so the swap would check "
            "all its rows while holding the lock. Drop the foreign key (add it back after the "
            "swap), or run this on PostgreSQL 18; nothing was changed"
        )


def _tree(
    conn: psycopg.Connection[Any], schema: str, name: str
) -> tuple[list[unmodel.Leaf], list[str]]:
    """A partitioned table's leaves (at any depth, the default partition's marked) and its
    partition key's columns (an expression shown as such)."""
    qualified = sql.Identifier(schema, name).as_string(conn)
    cur = conn.execute(
        "SELECT c.relname::text, c.relkind::text, coalesce(pg_get_expr(c.relpartbound, c.oid) "
        "= 'DEFAULT', false), t.level, c.reltuples::bigint FROM pg_partition_tree(%s::regclass) "
        "t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND t.level > 0 ORDER BY 1",
        (qualified,),
    )
    leaves = [
        unmodel.Leaf(n, k, bool(d), int(lv), int(r)) for n, k, d, lv, r in cur.fetchall()
    ]
    cur = conn.execute(
        "SELECT ARRAY(SELECT coalesce(a.attname::text, 'an expression') FROM "
        "unnest(p.partattrs::int2[]) WITH ORDINALITY k(n, o) LEFT JOIN pg_attribute a ON "
        "a.attrelid = p.partrelid AND a.attnum = k.n ORDER BY k.o) FROM pg_partitioned_table p "
        "WHERE p.partrelid = %s::regclass",
        (qualified,),
    )
    row = cur.fetchone()
    return leaves, [str(c) for c in row[0]] if row else []


@dataclasses.dataclass(frozen=True)
class _View:
    """A view (or materialized view) whose query reads the table."""

    schema: str
    name: str
    materialized: bool
    definition: str
    """`pg_get_viewdef`: the table written by its name, as the session's search_path sees it."""
    options: tuple[str, ...]
    """`reloptions`: check_option, security_barrier, security_invoker."""
    owned: bool
    """The current role may replace it (a member of its owner's role, or a superuser)."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _views(conn: psycopg.Connection[Any], schema: str, name: str) -> list[_View]:
    """The views that read the table directly (a view over one of them follows it: its
    dependency is on the view, whose OID the swap keeps)."""
    cur = conn.execute(
        "SELECT DISTINCT n.nspname::text, v.relname::text, v.relkind = 'm', "
        "pg_get_viewdef(v.oid), coalesce(v.reloptions, '{}')::text[], "
        "pg_has_role(v.relowner, 'USAGE') FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "JOIN pg_namespace n ON n.oid = v.relnamespace "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %s::regclass "
        "AND v.oid <> d.refobjid ORDER BY 1, 2",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    return [
        _View(s, n, bool(m), str(d), tuple(o), bool(owned))
        for s, n, m, d, o, owned in cur.fetchall()
    ]


def _repoint_views(conn: psycopg.Connection[Any], views: Sequence[_View]) -> None:
    """Inside the swap, after the renames: each view's query, read while the table still had
    its name, run again, so that the name now means the table that took it. PostgreSQL binds
    a view to the table's OID, not to its name; CREATE OR REPLACE keeps the view's OID, owner,
    grants and the views and functions that depend on it (the columns are the same)."""
    for view in views:
        options = (
            sql.SQL(" WITH ({})").format(sql.SQL(", ").join(_attoption(o) for o in view.options))
            if view.options
            else sql.SQL("")
        )
        conn.execute(
            sql.SQL("CREATE OR REPLACE VIEW {}{} AS {}").format(
                sql.Identifier(view.schema, view.name),
                options,
                sql.SQL(view.definition.strip().rstrip(";")),  # catalog text
            )
        )


def _dependent_views(conn: psycopg.Connection[Any], schema: str, name: str) -> list[str]:
    """Views and materialized views that read the table (through their rewrite rules)."""
    cur = conn.execute(
        "SELECT DISTINCT v.oid::regclass::text FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %s::regclass "
        "AND v.oid <> d.refobjid ORDER BY 1",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    return [str(v) for (v,) in cur.fetchall()]


def _user_triggers(conn: psycopg.Connection[Any], schema: str, name: str) -> list[str]:
    return [t.name for t in _triggers(conn, schema, name)]


@dataclasses.dataclass(frozen=True)
class _Trigger:
    """A trigger of the application's (not an internal one, not convert's own)."""

    name: str
    definition: str
    """`pg_get_triggerdef`, with the table's name written as `on`."""
    on: str
    """The table's name as `pg_get_triggerdef` writes it (schema-qualified, quoted if needed)."""
    enabled: str
    """`tgenabled`: O (enabled), D (disabled), R (replica), A (always)."""
    row: bool
    before: bool
    transition: bool
    """It declares transition tables (REFERENCING OLD/NEW TABLE)."""

    @property
    def carried(self) -> bool:
        """PostgreSQL refuses a row trigger with transition tables on a partitioned table."""
        return not (self.row and self.transition)

    def on_table(self, target: str) -> sql.Composed:
        """Its CREATE TRIGGER for another table (`target`, written as SQL)."""
        mark = f" ON {self.on} "
        head, found, tail = self.definition.partition(mark)
        if not found:
            raise ConversionError(
                f"cannot read trigger {self.name}'s definition ({self.definition!r}); drop it "
                "and create it again after the swap; nothing was changed"
            )
        return sql.SQL("{} ON {} {}").format(sql.SQL(head), sql.SQL(target), sql.SQL(tail))


def _triggers(conn: psycopg.Connection[Any], schema: str, name: str) -> list[_Trigger]:
    cur = conn.execute(
        "SELECT t.tgname::text, pg_get_triggerdef(t.oid), quote_ident(n.nspname) || '.' || "
        "quote_ident(c.relname), t.tgenabled::text, (t.tgtype & 1) <> 0, (t.tgtype & 2) <> 0, "
        "t.tgoldtable IS NOT NULL OR t.tgnewtable IS NOT NULL FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE t.tgrelid = %s::regclass AND NOT t.tgisinternal AND t.tgname <> ALL(%s) "
        "ORDER BY 1",
        (sql.Identifier(schema, name).as_string(conn), [TRIGGER_NAME, TRUNCATE_TRIGGER_NAME]),
    )
    return [_Trigger(*row) for row in cur.fetchall()]


_ENABLE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def _move_triggers(
    conn: psycopg.Connection[Any], schema: str, going: str, coming: str
) -> None:
    """Inside the swap (or the rollback): the application's triggers fire on the table that
    takes the name and not on the one that leaves it. Each trigger of `going` is made on
    `coming` if it is missing there (one created during the conversion), gets its state
    there (enabled, disabled, replica, always), and is disabled on `going`: the replay into
    the table kept for a rollback must not fire an audit trigger a second time."""
    have = {t.name for t in _triggers(conn, schema, coming)}
    target = sql.Identifier(schema, coming)
    for trigger in _triggers(conn, schema, going):
        if not trigger.carried:
            continue
        if trigger.name not in have:
            conn.execute(trigger.on_table(target.as_string(conn)))
        conn.execute(
            sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                target, sql.SQL(_ENABLE[trigger.enabled]), sql.Identifier(trigger.name)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                sql.Identifier(schema, going), sql.Identifier(trigger.name)
            )
        )


@dataclasses.dataclass
class _Carried:
    """What the twin gets beyond LIKE, indexes, foreign keys, grants, owner and replica
    identity; and what it cannot get, by name, for a notice before anything changes."""

    statements: list[sql.Composed] = dataclasses.field(default_factory=list)
    carried: list[str] = dataclasses.field(default_factory=list)
    notices: list[str] = dataclasses.field(default_factory=list)


def _carry(
    conn: psycopg.Connection[Any], source: SourceTable, twin: sql.Identifier
) -> _Carried:
    """The source's triggers (made disabled: the copy and the replay must not fire them; the
    swap gives them their state), row-level security and its policies, column privileges,
    the table's comment and per-column options. Storage and compression come with LIKE,
    statistics targets after each pass (`_statistics`), reloptions as the partitions'
    storage parameters (`model.carried_parameters`)."""
    out = _Carried()
    qualified = sql.Identifier(source.schema, source.name).as_string(conn)
    for trigger in _triggers(conn, source.schema, source.name):
        if not trigger.carried:
            out.notices.append(
                f"trigger {trigger.name} of {source.qualified} is not carried: it is a row "
                "trigger with transition tables (REFERENCING OLD/NEW TABLE), which PostgreSQL "
                "refuses on a partitioned table; make it a statement trigger, or create it on "
                "each partition, after the swap"
            )
            continue
        out.statements.append(trigger.on_table(twin.as_string(conn)))
        out.statements.append(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(twin, sql.Identifier(trigger.name))
        )
        out.carried.append(f"trigger {trigger.name}")
        if trigger.before and trigger.row:
            out.notices.append(
                f"trigger {trigger.name} is BEFORE ... FOR EACH ROW: on the partitioned table "
                "PostgreSQL refuses, when it runs, a change it makes to the partition key that "
                "would move the row to another partition"
            )
    cur = conn.execute(
        "SELECT relrowsecurity, relforcerowsecurity, obj_description(oid, 'pg_class') "
        "FROM pg_class WHERE oid = %s::regclass",
        (qualified,),
    )
    got = cur.fetchone()
    assert got is not None
    rls, force, comment = got
    if comment is not None:
        out.statements.append(
            sql.SQL("COMMENT ON TABLE {} IS {}").format(twin, sql.Literal(comment))
        )
        out.carried.append("table comment")
    if rls:
        out.statements.append(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(twin))
        out.carried.append("row-level security" + (" (forced)" if force else ""))
    if force:
        out.statements.append(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(twin))
    cur = conn.execute(
        "SELECT polname::text, polpermissive, polcmd::text, ARRAY(SELECT CASE WHEN r = 0 THEN "
        "'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END FROM unnest(polroles) r), "
        "pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy "
        "WHERE polrelid = %s::regclass ORDER BY 1",
        (qualified,),
    )
    commands = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
    for pname, permissive, cmd, roles, qual, check in cur.fetchall():
        out.statements.append(
            sql.SQL("CREATE POLICY {} ON {} AS {} FOR {} TO {}{}{}").format(
                sql.Identifier(pname),
                twin,
                sql.SQL("PERMISSIVE" if permissive else "RESTRICTIVE"),
                sql.SQL(commands[cmd]),
                sql.SQL(", ").join(sql.SQL(r) for r in roles),  # quoted by quote_ident
                sql.SQL(" USING ({})").format(sql.SQL(qual)) if qual else sql.SQL(""),
                sql.SQL(" WITH CHECK ({})").format(sql.SQL(check)) if check else sql.SQL(""),
            )
        )
        out.carried.append(f"policy {pname}")
    cur = conn.execute(
        "SELECT a.attname::text, x.privilege_type, CASE WHEN x.grantee = 0 THEN NULL ELSE "
        "pg_get_userbyid(x.grantee)::text END, x.is_grantable FROM pg_attribute a "
        "CROSS JOIN LATERAL aclexplode(a.attacl) x WHERE a.attrelid = %s::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum, 2, 3",
        (qualified,),
    )
    for column, privilege, grantee, grantable in cur.fetchall():
        out.statements.append(
            sql.SQL("GRANT {} ({}) ON {} TO {}{}").format(
                sql.SQL(privilege),  # a privilege name from aclexplode
                sql.Identifier(column),
                twin,
                sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
            )
        )
        out.carried.append(f"{privilege} ({column}) to {grantee or 'PUBLIC'}")
    for col in source.columns:
        if col.options:
            out.statements.append(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET ({})").format(
                    twin,
                    sql.Identifier(col.name),
                    sql.SQL(", ").join(_attoption(o) for o in col.options),
                )
            )
            out.carried.append(f"options of column {col.name}")
        if col.statistics is not None:
            out.carried.append(f"statistics target of column {col.name}")
    _, dropped = model.carried_parameters(source, {})
    if source.reloptions:
        out.carried.append(
            "storage parameters (to each partition): "
            + ", ".join(o for o in source.reloptions if o not in dropped)
        )
    for option in dropped:
        out.notices.append(
            f"storage parameter {option} of {source.qualified} is not carried: partman gives "
            "partitions only a heap table's parameters (partman.model.storage.PARAMETERS)"
        )
    cur = conn.execute(
        "SELECT rulename::text FROM pg_rewrite WHERE ev_class = %s::regclass AND "
        "rulename <> '_RETURN' ORDER BY 1",
        (qualified,),
    )
    for (rule,) in cur.fetchall():
        out.notices.append(
            f"rule {rule} of {source.qualified} is not carried: create it on the table again "
            "after the swap"
        )
    cur = conn.execute(
        "SELECT p.pubname::text FROM pg_publication_rel r JOIN pg_publication p "
        "ON p.oid = r.prpubid WHERE r.prrelid = %s::regclass ORDER BY 1",
        (qualified,),
    )
    for (pub,) in cur.fetchall():
        out.notices.append(
            f"publication {pub} publishes {source.qualified} but will not publish the new "
            f"table: after the swap, ALTER PUBLICATION {sql_name(pub)} "
            f"ADD TABLE {source.quoted} "
            "(with publish_via_partition_root = true) and resynchronize the subscriber"
        )
    return out


def _attoption(option: str) -> sql.Composable:
    """A column option ("n_distinct=-0.5") as `n_distinct = '-0.5'` (the name quoted)."""
    name, _, value = option.partition("=")
    return sql.SQL("{} = {}").format(sql.Identifier(name), sql.Literal(value))


def _statistics(source: SourceTable, twin: sql.Identifier) -> list[sql.Composed]:
    """Per-column statistics targets, set on the twin and (PostgreSQL recurses) on every
    partition it has: run after each pass, since a partition made later gets the default."""
    return [
        sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {}").format(
            twin, sql.Identifier(c.name), sql.Literal(c.statistics)
        )
        for c in source.columns
        if c.statistics is not None
    ]


def _key_range(
    conn: psycopg.Connection[Any], schema: str, name: str, column: str
) -> tuple[Any, Any]:
    """min and max of a column (an index makes both cheap)."""
    col = sql.Identifier(column)
    t = sql.Identifier(schema, name)
    cur = conn.execute(
        sql.SQL(
            "SELECT (SELECT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1), "
            "(SELECT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY {c} DESC LIMIT 1)"
        ).format(c=col, t=t)
    )
    row = cur.fetchone()
    assert row is not None
    return row[0], row[1]


def _distinct(
    conn: psycopg.Connection[Any], schema: str, name: str, column: str
) -> list[Any]:
    """The distinct values of a column, by a loose index scan (one probe per value)."""
    col = sql.Identifier(column)
    t = sql.Identifier(schema, name)
    cur = conn.execute(
        sql.SQL(
            "WITH RECURSIVE v AS ((SELECT {c} AS x FROM {t} WHERE {c} IS NOT NULL ORDER BY {c} "
            "LIMIT 1) UNION ALL SELECT (SELECT {c} FROM {t} WHERE {c} > v.x ORDER BY {c} LIMIT 1) "
            "FROM v WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL"
        ).format(c=col, t=t)
    )
    return [r[0] for r in cur.fetchall()]


def _outgoing_fks(
    conn: psycopg.Connection[Any], schema: str, name: str, twin: sql.Identifier
) -> list[sql.Composed]:
    cur = conn.execute(
        "SELECT con.conname::text, pg_get_constraintdef(con.oid) FROM pg_constraint con "
        "WHERE con.contype = 'f' AND con.conrelid = %s::regclass ORDER BY 1",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    return [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            twin, sql.Identifier(cname), sql.SQL(definition)
        )
        for cname, definition in cur.fetchall()
    ]


def _grants(
    conn: psycopg.Connection[Any], schema: str, name: str, twin: sql.Identifier
) -> list[sql.Composed]:
    cur = conn.execute(
        """
SELECT pg_get_userbyid(c.relowner)::text, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END, a.is_grantable
  FROM pg_class c LEFT JOIN LATERAL aclexplode(c.relacl) a ON true
 WHERE c.oid = %s::regclass
""",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    rows = cur.fetchall()
    out: list[sql.Composed] = []
    owner = rows[0][0]
    out.append(sql.SQL("ALTER TABLE {} OWNER TO {}").format(twin, sql.Identifier(owner)))
    for _, privilege, grantee, grantable in rows:
        if privilege is None or grantee == owner:
            continue
        out.append(
            sql.SQL("GRANT {} ON {} TO {}{}").format(
                sql.SQL(privilege),
                twin,
                sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
            )
        )
    return out


def _replica_identity(
    conn: psycopg.Connection[Any], schema: str, name: str, twin: sql.Identifier
) -> list[sql.Composed]:
    cur = conn.execute(
        "SELECT relreplident::text FROM pg_class WHERE oid = %s::regclass",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    row = cur.fetchone()
    kind = row[0] if row else "d"
    if kind == "f":
        return [sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(twin)]
    if kind == "n":
        return [sql.SQL("ALTER TABLE {} REPLICA IDENTITY NOTHING").format(twin)]
    return []  # default (the primary key), or an index: the twin's primary key serves


def _identity_sequences(
    conn: psycopg.Connection[Any], schema: str, name: str
) -> list[tuple[str, str]]:
    cur = conn.execute(
        "SELECT a.attname::text, pg_get_serial_sequence(%s, a.attname) FROM pg_attribute a "
        "WHERE a.attrelid = %s::regclass AND a.attidentity <> '' AND NOT a.attisdropped",
        (sql.Identifier(schema, name).as_string(conn),) * 2,
    )
    return [(str(c), str(s)) for c, s in cur.fetchall() if s]


def _owned_sequences(
    conn: psycopg.Connection[Any], schema: str, name: str
) -> list[tuple[str, str]]:
    """Sequences OWNED BY a column of the table (serial), not identity ones."""
    cur = conn.execute(
        "SELECT a.attname::text, d.objid::regclass::text FROM pg_depend d "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "WHERE d.refobjid = %s::regclass AND d.classid = 'pg_class'::regclass "
        "AND d.deptype = 'a' AND a.attidentity = ''",
        (sql.Identifier(schema, name).as_string(conn),),
    )
    return [(str(c), str(s)) for c, s in cur.fetchall()]
