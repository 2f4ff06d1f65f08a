# Generated from src/partman/manager_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""Manager and AsyncManager: the seed's API (go_partman's), on top of planner, executor and store.

Reads go through `world.py` (one round trip per pass), decisions through `planner.py` (pure),
DDL through `executor.py` (lock budget). A pass holds a session advisory lock for its whole
length, so two managers started at once take turns: the second one plans against what the
first one did, and finds nothing left to do.

Written once: this file is `AsyncManager` (asyncio, `psycopg_pool.AsyncConnectionPool`, a
background task); `manager.py` (`Manager`: threads, `ConnectionPool`) is generated from it by
tools/async_to_sync.py. The planner, the SQL and the policies are shared, not copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg_pool import ConnectionPool

from ..db import metadata
from ..db.catalog import parse_traits, traits_query
from ..db.ddl import RETRYABLE, parent_lock_sql
from ..db.fence import Fence
from ..decide import planner
from ..decide import restore as restoring
from ..decide.adoption import ImportReport, classify, differing, list_foreign
from ..decide.coverage import Inventory, inventory
from ..decide.planner import subtrees
from ..decide.validate import check_parent, check_record, many_partitions
from ..errors import (
    ConfigError,
    LockUnavailableError,
    NotRegisteredError,
    PartmanError,
    TenantError,
)
from ..logs import log_event
from ..model import snapshot
from ..model.archive import Archive, ArchiveError
from ..model.backoff import Backoff
from ..model.clock import Clock, RealClock
from ..model.columns import KeyColumn, TenantValue, canonical_tenant, tenant_text
from ..model.config import FOREVER, Config, Table, Tenant, TenantId
from ..model.indexes import IndexReport, IndexRequest, IndexState, parse_columns
from ..model.operations import Plan
from ..model.report import Report
from ..model.snapshot import Catalog, ParentInfo, PartitionInfo, State, Traits
from ..model.storage import options_of
from . import export, store
from .executor import Executor
from .hooks import PreDropHook, StepHook
from .indexes import IndexBuilder, IndexHook
from .keeper import Keeper
from .world import Seen, default_rows, read_catalog, read_world

_PASS_LOCK_CLASS = 0x70617274  # 'part': keeps the pass lock apart from others' advisory locks


class Manager:
    """Keeps partitioned tables covered ahead and trimmed behind (the tutorial walks through it).

    `conninfo` is a libpq connection string/URI or a pool (`psycopg_pool.ConnectionPool` for
    `Manager`, `AsyncConnectionPool` for `AsyncManager`), borrowed and never closed by the
    manager. `AsyncManager` has the same methods as coroutines (`start()` excepted: it starts
    a task on the running loop and returns at once); use it as `async with AsyncManager(...)`.
    Its hooks may be plain functions or coroutine functions.
    """

    def __init__(
        self,
        conninfo: str | ConnectionPool[Any],
        *,
        config: Config | None = None,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
        pre_drop_hook: PreDropHook | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        self.config = config or Config()
        self.clock: Clock = clock or RealClock()
        self.logger = logger or logging.getLogger("partman")
        if isinstance(conninfo, str):
            opened = True
            self._pool: ConnectionPool[Any] = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=4,
                kwargs={"autocommit": True, "application_name": self.config.application_name},
                open=opened,
                name="partman",
            )
            self._owns_pool = True
        elif isinstance(conninfo, ConnectionPool):
            self._pool = conninfo
            self._owns_pool = False
        else:
            pool = ConnectionPool.__name__
            raise ConfigError(
                f"{type(self).__name__} needs a connection string or a psycopg_pool.{pool}, "
                f"got {type(conninfo).__name__}"
            )
        self._executor = Executor(
            self.config, self.logger, pre_drop_hook=pre_drop_hook, on_step=on_step
        )
        self._meta_ready = False
        self._meta_lock = threading.Lock()
        self._pass_guard = threading.Lock()
        self._seen: Seen = {}  # id tables' newest ids as last read (see world.read_positions)
        self._keeper = Keeper(
            self.maintain, interval=self.config.sample_rate.total_seconds(), logger=self.logger
        )
        self.last_report: Report | None = None

    # -- connections -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the pool the manager made from a connection string (idempotent). `Manager`
        opens it at once; `AsyncManager` on first use or in `async with`."""
        if self._owns_pool and self._pool.closed:
            self._pool.open()

    def _read_world(self, conn: psycopg.Connection[Any]) -> tuple[State, Catalog]:
        return read_world(
            conn, self.config.metadata_schema, self.config.tz, self.config.lock_timeout, self._seen
        )

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        self.open()
        with self._pool.connection() as conn:
            previous = conn.autocommit
            if not previous:
                conn.rollback()
                conn.set_autocommit(True)
            try:
                yield conn
            finally:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                if not previous:
                    conn.set_autocommit(False)

    def _ensure_metadata(self, conn: psycopg.Connection[Any]) -> None:
        with self._meta_lock:
            if not self._meta_ready:
                store.migrate(conn, self.config.metadata_schema)
                self._meta_ready = True

    def init(self) -> int:
        """Create or upgrade the metadata schema now (it is also done on first use)."""
        with self._connection() as conn:
            version = store.migrate(conn, self.config.metadata_schema)
            self._meta_ready = True
            return version

    # -- registration ------------------------------------------------------------------------

    def add_managed_table(self, table: Table) -> bool:
        """Validate `table` against the catalog and persist it (and its tenant); idempotent.

        Returns whether anything changed. A changed retention or partition count takes effect
        on the next pass; a changed interval or key is refused (existing partitions would no
        longer line up).
        """
        if table.name is None:
            raise ConfigError(
                "add_managed_table needs Table.name; to adopt every partitioned table of a "
                "schema use import_existing_partitions(template)"
            )
        with self._connection() as conn:
            tenant_key, _ = self._check(conn, table)
            tenant = None
            if table.tenant_id is not None:
                assert tenant_key is not None
                tenant = canonical_tenant(table.tenant_id, tenant_key, table=table.qualified_name)
            self._ensure_metadata(conn)  # only once the input is known to be good
            with conn.transaction():
                table_id, changed = self._upsert_table(
                    conn, table, update_policy=tenant is None
                )
                if tenant is not None:
                    retention = (
                        FOREVER
                        if table.retention is None
                        else snapshot.retention_text(table.retention)
                    )
                    record = snapshot.TenantRecord(
                        table_id, str(tenant), retention, table.partition_count, table.action.value
                    )
                    meta = self.config.metadata_schema
                    changed |= store.upsert_tenants(conn, meta, table_id, [record]) > 0
        self._event(
            "table_registered" if changed else "table_unchanged",
            severity=logging.INFO if changed else logging.DEBUG,
            table=table.qualified_name,
            tenant=tenant_text(tenant),
        )
        crowded = many_partitions(
            table.qualified_name, table.interval, table.retention, table.partition_count
        )
        if changed and crowded is not None:
            self._event(
                "many_partitions", severity=logging.WARNING, table=table.qualified_name,
                warning=crowded,
            )  # fmt: skip
        return changed

    def register_tenants(
        self, table: Table | str, tenants: Iterable[TenantId | Tenant]
    ) -> list[str]:
        """Register many tenants of one table at once: all of them, or (on any error) none.

        `table` is a registered table's "schema.name", or a Table (registered first if it is
        not yet). Plain ids inherit the table's policy; a `Tenant` may carry its own.
        """
        wanted = [t if isinstance(t, Tenant) else Tenant(tenant_id=t) for t in tenants]
        with self._connection() as conn:
            if isinstance(table, Table):
                if table.name is None:
                    raise ConfigError("register_tenants needs a Table with a name")
                tenant_key, _ = self._check(conn, table)
                qualified = table.qualified_name
            else:
                record = self._record(conn, table)
                tenant_key = self._tenant_key(conn, record)
                qualified = record.qualified_name
            if tenant_key is None:
                raise ConfigError(
                    f"{qualified} has no tenant column; tenants apply to tables partitioned by "
                    "RANGE (tenant column, time column)"
                )
            canonical: dict[str, snapshot.TenantRecord] = {}
            problems: list[str] = []
            for t in wanted:
                try:
                    value = canonical_tenant(t.tenant_id, tenant_key, table=qualified)
                except PartmanError as error:
                    problems.append(str(error))
                    continue
                retention = FOREVER if t.keeps_forever else snapshot.retention_text(t.retention)
                action = None if t.action is None else t.action.value
                canonical[str(value)] = snapshot.TenantRecord(
                    0, str(value), retention, t.partition_count, action
                )
            if problems:
                raise TenantError(
                    f"no tenant registered: {len(problems)} invalid id(s): " + "; ".join(problems)
                )
            self._ensure_metadata(conn)
            with conn.transaction():
                if isinstance(table, Table):
                    table_id, _ = self._upsert_table(conn, table, update_policy=False)
                else:
                    table_id = (self._record(conn, table)).id
                store.upsert_tenants(
                    conn,
                    self.config.metadata_schema,
                    table_id,
                    [dataclasses.replace(r, table_id=table_id) for r in canonical.values()],
                )
        self._event("tenants_registered", table=qualified, count=len(canonical))
        return list(canonical)

    def remove_managed_table(
        self, table: Table | str, tenant_id: TenantId | None = None
    ) -> bool:
        """Stop managing a table, or one tenant of it. Never drops data by itself.

        Partitions partman made stay in place and stay recorded as partman's, so registering
        the table again resumes where it left off. Returns False if nothing was registered.
        """
        qualified = table.qualified_name if isinstance(table, Table) else table
        if isinstance(table, Table) and tenant_id is None:
            tenant_id = table.tenant_id
        with self._connection() as conn:
            try:
                record = self._record(conn, qualified)
            except NotRegisteredError:
                return False
            s = sql.Identifier(self.config.metadata_schema)
            if tenant_id is None:
                cur = conn.execute(
                    sql.SQL("DELETE FROM {}.managed_tables WHERE id = %s").format(s), (record.id,)
                )
            else:
                tenant_key = self._tenant_key(conn, record)
                value: TenantValue | str = (
                    canonical_tenant(tenant_id, tenant_key, table=qualified)
                    if tenant_key is not None
                    else str(tenant_id)
                )
                cur = conn.execute(
                    sql.SQL("DELETE FROM {}.tenants WHERE table_id = %s AND tenant_id = %s").format(
                        s
                    ),
                    (record.id, str(value)),
                )
            removed = bool(cur.rowcount > 0)
        self._event(
            "table_removed" if tenant_id is None else "tenant_removed",
            table=qualified,
            tenant=tenant_text(tenant_id),
            removed=removed,
        )
        return removed

    def import_existing_partitions(self, template: Table) -> ImportReport:
        """Adopt the partitions that already exist, by their catalog bounds, whatever their names.

        `template.name` None: every partitioned table of `template.schema` whose key matches the
        template (others are listed in `skipped_tables`); `template.tenant_id` None: every
        tenant found. Tables are registered with the template's policy, tenants found with the
        table's policy; partitions that are not exactly one period are reported, never owned.
        """
        report = ImportReport()
        with self._connection() as conn:
            names = (
                [(template.schema, template.name)]
                if template.name is not None
                else self._partitioned_tables(conn, template.schema)
            )
            catalog = read_catalog(conn, names)
            if template.name is not None:  # a named table must be right before anything is made
                self._check(
                    conn,
                    _named(template, template.schema, template.name),
                    catalog.get((template.schema, template.name)),
                )
            self._ensure_metadata(conn)
            state, _ = self._read_world(conn)
            for schema, name in names:
                table = _named(template, schema, name)
                try:
                    tenant_key, time_key = self._check(
                        conn, table, catalog.get((schema, name))
                    )
                    only = (
                        canonical_tenant(template.tenant_id, tenant_key, table=table.qualified_name)
                        if template.tenant_id is not None and tenant_key is not None
                        else None
                    )
                except PartmanError as error:
                    if template.name is not None:
                        raise
                    report.skipped_tables[table.qualified_name] = str(error)
                    continue
                parent = catalog[(schema, name)]
                trees: list[tuple[ParentInfo, KeyColumn | None, TenantValue | None]] = [
                    (parent, tenant_key, None)
                ]
                if table.list_tenants:  # each tenant's own partition holds its periods
                    trees = [
                        (sub, None, whose)
                        for whose, sub in subtrees(parent, catalog, time_key).items()
                        if only is None or whose == only
                    ]
                if table.list_tenants and only is None:
                    report.foreign += list_foreign(parent, catalog, time_key)
                tenants_found: list[str] = []
                for tree, keyed, whose in trees:
                    adoption = classify(
                        tree,
                        state,
                        tenant_key=keyed,
                        time_key=time_key,
                        shape=snapshot.TableRecord.from_table(table),
                        zone=self.config.tz,
                        only_tenant=only if whose is None else None,
                        tenant=whose,
                    )
                    self._adopt(conn, table, tree, adoption.adopt, adoption.tenants)
                    found = adoption.found
                    report.differing += differing(
                        tree,
                        adoption.adopt,
                        self._traits(conn, adoption.adopt),
                        options_of(table.storage_parameters),
                    )
                    report.imported += found.imported
                    report.already_owned += found.already_owned
                    report.misaligned += found.misaligned
                    report.foreign += found.foreign
                    tenants_found += [str(t) for t in adoption.tenants]
                report.tables.append(table.qualified_name)
                if tenant_key is not None:
                    report.tenants[table.qualified_name] = tenants_found
        self._event(
            "partitions_imported",
            imported=len(report.imported),
            already_owned=len(report.already_owned),
            misaligned=len(report.misaligned),
            foreign=len(report.foreign),
            tables=report.tables,
        )
        return report

    # -- passes ------------------------------------------------------------------------------

    def plan(self) -> Plan:
        """What `maintain()` would do now: operations with reasons and SQL; nothing is changed."""
        with self._connection() as conn:
            if not self._meta_ready and not store.exists(conn, self.config.metadata_schema):
                return Plan(now=self.clock.now())  # a dry run creates nothing, not even metadata
            state, catalog = self._read_world(conn)
        return planner.plan(state, catalog, self.clock.now(), self.config.tz)

    def inventory(
        self, table: str | None = None, tenant: TenantId | None = None
    ) -> Inventory:
        """Every partition of the managed tables (owner, bounds, row estimate) and, per table
        and tenant, how far ahead of now the partitions reach. Filter by "schema.name" and
        tenant id."""
        with self._connection() as conn:
            if not self._meta_ready and not store.exists(conn, self.config.metadata_schema):
                return Inventory([], [])
            state, catalog = self._read_world(conn)
        found = inventory(state, catalog, self.clock.now(), self.config.tz)
        shown = None if tenant is None else str(tenant)

        def keep(t: str, n: str | None) -> bool:
            return (table is None or t == table) and (shown is None or n == shown)

        return Inventory(
            [r for r in found.partitions if keep(r.table, r.tenant)],
            [c for c in found.coverage if keep(c.table, c.tenant)],
        )

    def maintain(self, *, fence: Fence | None = None) -> Report:
        """One pass: create what is missing ahead, apply retention. Returns what it did.

        `fence` (the service's scheduled passes): the pass runs only while that leadership
        session holds its lock, checked first and in every transaction; a check that fails
        raises (`partman.db.fence.is_fenced`) and the pass stops where it is."""
        with self._pass_guard, self._connection() as conn:
            self._ensure_metadata(conn)
            run_id = str(uuid.uuid4())
            report = Report(run_id=run_id, started_at=self.clock.now(), plan=None)
            started = time.perf_counter()
            if not self._acquire_pass_lock(conn):
                report.skipped_reason = (
                    "another partman pass on this database held the pass lock for longer than "
                    f"pass_lock_wait ({self.config.pass_lock_wait}); nothing was done"
                )
                report.finished_at = self.clock.now()
                log_event(self.logger, logging.WARNING, "pass_skipped", report.skipped_reason)
                self.last_report = report
                return report
            try:
                if fence is not None:
                    conn.execute(fence.hold())
                state, catalog = self._read_world(conn)
                plan = planner.plan(state, catalog, self.clock.now(), self.config.tz)
                report.plan = plan
                defaults = _defaults(catalog)
                del state, catalog  # a big pass lets them go before the executor runs
                meta = self.config.metadata_schema
                conn.execute(
                    metadata.start_run_sql(
                        meta, run_id, self.config.application_name, report.started_at
                    )
                )
                report.results = self._executor.apply(
                    conn, plan.operations, run_id, fence=fence
                )
                report.default_rows = default_rows(conn, _created_defaults(defaults, report))
                report.finished_at = self.clock.now()
                outcome = "ok" if report.ok else ("failed" if report.failed else "partial")
                conn.execute(metadata.finish_run_sql(meta, run_id, outcome, report.summary()))
            finally:
                self._release_pass_lock(conn, fence)
        for notice in plan.notices:
            level = {"error": logging.ERROR, "warning": logging.WARNING}.get(
                notice.level, logging.INFO
            )
            log_event(self.logger, level, "notice", notice.message, **notice.to_dict())
        for parent, rows in report.default_rows.items():
            if rows:
                log_event(
                    self.logger,
                    logging.WARNING,
                    "default_rows",
                    f"{parent}: {rows} row(s) in the default partition; they move into their "
                    "partitions as those are created",
                    table=parent,
                    rows=rows,
                )
        self._event(
            "pass_finished",
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            **report.summary(),
        )
        self.last_report = report
        return report

    def _acquire_pass_lock(self, conn: psycopg.Connection[Any]) -> bool:
        wait = max(1, int(self.config.pass_lock_wait.total_seconds() * 1000))
        try:
            conn.execute(
                sql.SQL(
                    "BEGIN; SET LOCAL lock_timeout = {}; "
                    "SELECT pg_advisory_lock({}, hashtext({})); COMMIT"
                ).format(
                    sql.Literal(f"{wait}ms"),
                    sql.Literal(_PASS_LOCK_CLASS),
                    sql.Literal(f"partman:pass:{self.config.metadata_schema}"),
                )
            )
        except pgerrors.LockNotAvailable:
            conn.execute("ROLLBACK")
            return False
        return True

    def _release_pass_lock(
        self, conn: psycopg.Connection[Any], fence: Fence | None = None
    ) -> None:
        if conn.closed:  # lost (a new leader ended it): the server released its locks
            return
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        if fence is not None:
            conn.execute(fence.release())
        conn.execute(
            sql.SQL("SELECT pg_advisory_unlock({}, hashtext({}))").format(
                sql.Literal(_PASS_LOCK_CLASS),
                sql.Literal(f"partman:pass:{self.config.metadata_schema}"),
            )
        )

    # -- indexes -----------------------------------------------------------------------------

    def create_index(
        self,
        table: str,
        columns: Sequence[str] | str,
        *,
        unique: bool = False,
        name: str | None = None,
        on_step: IndexHook | None = None,
        build_timeout: dt.timedelta | None = None,
    ) -> IndexReport:
        """Build an index on the partitioned table `table` ("schema.name") without blocking
        writes: `CREATE INDEX ... ON ONLY` the parent, then per partition (one at a time, each
        under the lock budget) `CREATE INDEX CONCURRENTLY` and `ALTER INDEX ... ATTACH
        PARTITION`; the parent's index is valid once every partition's is attached.

        `columns`: names (["tenant_id", "created_at"]) or SQL's list ("(tenant_id,
        created_at)"). Resumable: running it again after a crash finds the parent's index (by
        `name`, else by definition) and the partitions' (attached, valid, or invalid leftovers
        of a killed build, dropped and built again) and goes on. A partition whose lock is not
        granted in time is skipped and named in the report (`missing`); the others go on.
        Bad input (unknown table or column, a unique index without the partition key, a name
        another definition holds) raises a `PartmanError` before any DDL. `on_step(step,
        number, total)` is called before each step; `build_timeout` bounds each concurrent
        build (default: none, a build blocks nobody)."""
        wanted = parse_columns(columns) if isinstance(columns, str) else tuple(columns)
        request = IndexRequest(wanted, unique, name)
        builder = IndexBuilder(self.config, self.logger)
        with self._connection() as conn:
            return builder.create(
                conn, table, request, on_step=on_step, build_timeout=build_timeout
            )

    def index_status(self, table: str) -> list[IndexState]:
        """Each index of the partitioned table `table`, valid or not, with the partitions that
        lack it, hold an invalid one, or hold one not attached yet. Only reads."""
        builder = IndexBuilder(self.config, self.logger)
        with self._connection() as conn:
            return builder.status(conn, table)

    # -- archives (retention_action "export") ------------------------------------------------

    def archives(
        self, table: str | None = None, tenant: TenantId | None = None
    ) -> list[Archive]:
        """The archive manifest: each partition retention exported to Parquet (location,
        bounds, tenant, rows, bytes, checksum, columns, state), oldest period first. Filter by
        "schema.name" and tenant id. Only reads."""
        with self._connection() as conn:
            if not self._meta_ready and not store.exists(conn, self.config.metadata_schema):
                return []
            self._ensure_metadata(conn)
            found = export.list_archives(conn, self.config.metadata_schema, table)
        shown = None if tenant is None else str(tenant)
        return [a for a in found if shown is None or a.tenant == shown]

    def restore(
        self,
        table: str,
        start: str | dt.date,
        end: str | dt.date,
        *,
        tenant: TenantId | None = None,
        on_progress: export.Progress | None = None,
    ) -> list[Archive]:
        """Bring the archived periods of `table` ("schema.name") that meet [start, end) back
        as partitions (whole partitions; of one tenant with `tenant`), each built unattached,
        loaded with COPY, its row count and checksum checked against the manifest, then
        attached under the lock budget and recorded as partman's (so retention applies to it
        again). An overlap with an existing partition raises `ArchiveError` before anything
        is changed. Running it again resumes an interrupted restore. `on_progress(rows done,
        rows in all)` is called as rows load. Returns the archives restored."""
        schema, dot, name = table.partition(".")
        if not dot:
            raise ArchiveError(f"name the table as schema.name, got {table!r}")
        low, high = _period_text(start), _period_text(end)
        with self._connection() as conn:
            self._ensure_metadata(conn)
            found = export.list_archives(conn, self.config.metadata_schema, table)
            parent = (read_catalog(conn, [(schema, name)])).get((schema, name))
            if parent is None or not parent.key:
                raise ArchiveError(f"{table} is not a partitioned table (or its key is not read)")
            shown = None if tenant is None else str(tenant)
            targets = restoring.select(found, parent.key, low, high, self.config.tz, shown)
            if not targets:
                who = "" if shown is None else f" of tenant {shown}"
                raise ArchiveError(
                    f"no archive{who} of {table} to restore between {low} and {high} "
                    "(see `partman archive list`)"
                )
            restoring.check(targets, parent)
            export.check_free(conn, targets)
            total = sum(t.archive.rows for t in targets)
            before = 0
            restored: list[Archive] = []
            for target in targets:

                def progress(rows: int, _: int, offset: int = before) -> None:
                    if on_progress is not None:
                        on_progress(offset + rows, total)

                restored.append(
                    export.restore_one(conn, self.config, parent, target, progress=progress)
                )
                before += target.archive.rows
                self._event(
                    "partition_restored",
                    table=table,
                    partition=target.archive.partition,
                    rows=target.archive.rows,
                    location=target.archive.location,
                )
            return restored

    # -- background maintenance --------------------------------------------------------------

    def start(self) -> Manager:
        """Run `maintain()` now and then every `config.sample_rate` in the background: a
        daemon thread for `Manager`, a task on the running loop for `AsyncManager`. A pass
        that fails is logged (`pass_failed`) and retried at the next interval."""
        self._keeper.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop background maintenance, letting a pass under way finish (for up to `timeout`
        seconds; after that `AsyncManager` cancels it, which rolls its transaction back)."""
        self._keeper.stop(timeout)

    def close(self) -> None:
        """Stop background maintenance and close the pool if the manager made it."""
        self.stop()
        if self._owns_pool:
            self._pool.close()

    def __enter__(self) -> Manager:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _check(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        parent: ParentInfo | None = None,
    ) -> tuple[KeyColumn | None, KeyColumn]:
        """Validate against the catalog and against the table's registration, if any."""
        assert table.name is not None
        if parent is None:
            parent = (read_catalog(conn, [(table.schema, table.name)])).get(
                (table.schema, table.name)
            )
        keys = check_parent(
            table.qualified_name,
            parent,
            snapshot.TableRecord.from_table(table),
        )
        try:
            record = self._record(conn, table.qualified_name, (table.schema, table.name))
        except NotRegisteredError:
            return keys
        mismatches = [
            f"{what} {old!r} (asked for {new!r})"
            for what, old, new in (
                ("tenant_id_column", record.tenant_column, table.tenant_id_column),
                ("partition_by", record.time_column, table.partition_by),
                ("partition_interval", str(record.interval), str(table.interval)),
            )
            if old != new
        ]
        if mismatches:
            raise ConfigError(
                f"{table.qualified_name} is already managed with {', '.join(mismatches)}; "
                "these cannot change under existing partitions. Keep the registered values, or "
                "remove_managed_table() and register it again for new partitions only"
            )
        return keys

    def _record(
        self,
        conn: psycopg.Connection[Any],
        qualified: str,
        names: tuple[str, str] | None = None,
    ) -> snapshot.TableRecord:
        state = self._load_tables(conn)
        for record in state:
            if (names and (record.schema, record.name) == names) or (
                not names and record.qualified_name == qualified
            ):
                return record
        raise NotRegisteredError(
            f"table {qualified} is not managed by partman; register it with add_managed_table()"
        )

    def _load_tables(
        self, conn: psycopg.Connection[Any]
    ) -> tuple[snapshot.TableRecord, ...]:
        if not self._meta_ready and not store.exists(conn, self.config.metadata_schema):
            return ()  # nothing registered yet, and validation must not create anything
        queries = metadata.state_queries(self.config.metadata_schema)
        cur = conn.execute(queries[0])
        rows = cur.fetchall()
        return metadata.parse_state(rows, [], []).tables

    def _tenant_key(
        self, conn: psycopg.Connection[Any], record: snapshot.TableRecord
    ) -> KeyColumn | None:
        if record.tenant_column is None:
            return None
        catalog = read_catalog(conn, [(record.schema, record.name)])
        _, tenant_key, _ = check_record(record, catalog)
        return tenant_key

    def _upsert_table(
        self, conn: psycopg.Connection[Any], table: Table, *, update_policy: bool
    ) -> tuple[int, bool]:
        record = snapshot.TableRecord.from_table(table)
        meta = self.config.metadata_schema
        return store.upsert_table(conn, meta, record, update_policy=update_policy)

    def _partitioned_tables(
        self, conn: psycopg.Connection[Any], schema: str
    ) -> list[tuple[str, str]]:
        cur = conn.execute(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'p' AND NOT c.relispartition ORDER BY 2",
            (schema,),
        )
        rows = cur.fetchall()
        return [(schema_name, table_name) for schema_name, table_name in rows]

    def _adopt(
        self,
        conn: psycopg.Connection[Any],
        table: Table,
        parent: ParentInfo,
        partitions: list[tuple[Any, TenantValue | None]],
        tenants: list[TenantValue],
    ) -> None:
        """Register the table and its tenants and mark the partitions, in one transaction that
        only takes SHARE UPDATE EXCLUSIVE on each partition (for its comment)."""
        meta = self.config.metadata_schema
        for attempt in range(self.config.max_retries + 1):
            try:
                with conn.transaction():
                    conn.execute(
                        sql.SQL("SET LOCAL lock_timeout = {}").format(
                            sql.Literal(f"{int(self.config.lock_timeout.total_seconds() * 1000)}ms")
                        )
                    )
                    conn.execute(parent_lock_sql(parent.qualified_name))
                    table_id, _ = self._upsert_table(conn, table, update_policy=False)
                    self._add_missing_tenants(conn, table_id, tenants)
                    for p, tenant in partitions:
                        bound = p.bound
                        assert bound is not None
                        conn.execute(
                            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                                sql.Identifier(p.schema, p.name),
                                sql.Literal(snapshot.owner_comment("adopted")),
                            )
                        )
                        conn.execute(
                            metadata.record_partition_sql(
                                meta,
                                partition_schema=p.schema,
                                partition_name=p.name,
                                parent_schema=parent.schema,
                                parent_name=parent.name,
                                tenant_id=tenant_text(tenant),
                                lower=_bound_text(bound.lower[-1]),
                                upper=_bound_text(bound.upper[-1]),
                                origin="adopted",
                                previous_comment=p.comment,
                            )
                        )
                return
            except RETRYABLE:
                if attempt == self.config.max_retries:
                    raise LockUnavailableError(
                        f"could not lock the partitions of {parent.qualified_name} within "
                        f"lock_timeout {self.config.lock_timeout} after {attempt + 1} attempts; "
                        "nothing was imported for it. Retry when the application is quieter, or "
                        "raise Config.lock_timeout"
                    ) from None
                retry = Backoff(self.config.retry_backoff.total_seconds())
                time.sleep(retry.delay(attempt + 1))

    def _traits(
        self,
        conn: psycopg.Connection[Any],
        partitions: list[tuple[PartitionInfo, TenantValue | None]],
    ) -> dict[int, Traits]:
        """What the adopted partitions declare (owner, grants, ...), by oid: one read."""
        if not partitions:
            return {}
        cur = conn.execute(traits_query([p.oid for p, _ in partitions]))
        return {row[0]: parse_traits(row[1:]) for row in cur.fetchall()}

    def _add_missing_tenants(
        self, conn: psycopg.Connection[Any], table_id: int, tenants: list[TenantValue]
    ) -> None:
        """Tenants found by an import join with the table's policy; registered ones keep theirs."""
        if not tenants:
            return
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {}.tenants (table_id, tenant_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING"
                ).format(sql.Identifier(self.config.metadata_schema)),
                [(table_id, str(t)) for t in tenants],
            )

    def _event(self, event: str, *, severity: int = logging.INFO, **fields: Any) -> None:
        log_event(self.logger, severity, event, event.replace("_", " "), **fields)


def _period_text(value: str | dt.date) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _bound_text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _named(template: Table, schema: str, name: str) -> Table:
    return dataclasses.replace(template, schema=schema, name=name)


def _defaults(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Default partitions of the managed parents, as they stand before the pass."""
    return {
        parent.qualified_name: (d.schema, d.name)
        for parent in catalog.values()
        if (d := parent.default_partition) is not None
    }


def _created_defaults(
    before: dict[str, tuple[str, str]], report: Report
) -> dict[str, tuple[str, str]]:
    """Default partitions of the managed parents, as they stand after the pass."""
    found = dict(before)
    for r in report.results:
        if r.outcome == "ok" and r.operation.kind == "create_default":
            op = r.operation
            found[op.parent_qualified] = (op.partition_schema, op.partition_name)
    return found
