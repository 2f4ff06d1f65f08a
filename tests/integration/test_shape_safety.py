"""Never block, never lose, on the new shapes: integer ids, epoch integers, UUIDv7, RANGE ->
HASH and LIST -> RANGE.

* A foreign expired window (a partition partman neither created nor adopted) is never
  dropped, whatever the shape; the pass says why it is left.
* An id table whose retention goes by a time column keeps a closed window holding a young
  row, even when the row arrives after the plan was made.
* The lock budget: a pass facing a lock held on the parent skips that parent at once and
  names the holder, rather than queue behind it (the application's statements would queue
  behind partman's then), for a table whose periods are HASH-partitioned and an id table
  (whose newest id is read from its partitions before anything is planned).
* Rows waiting in an id table's default partition move into the window made for them, none
  lost, none doubled, even when the pass is stopped while moving them.
* Archiving a period partitioned by HASH archives its leaves (the rows) with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
TODAY = NOW.replace(hour=0)
Conn = psycopg.Connection[Any]
BUDGET = partman.Config(
    lock_timeout=dt.timedelta(milliseconds=100),
    max_retries=1,
    retry_backoff=dt.timedelta(milliseconds=10),
)


@pytest.fixture
def clock() -> partman.SimulatedClock:
    return partman.SimulatedClock(NOW)


def _ms(instant: dt.datetime) -> int:
    return int(instant.timestamp() * 1000)


def _uuid_bound(instant: dt.datetime) -> uuid.UUID:
    return uuid.UUID(int=_ms(instant) << 80)


def _relations(conn: Conn, schema: str = "public") -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
        (schema,),
    ).fetchall()
    return {r[0] for r in rows}


# -- a foreign expired window is never dropped -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ForeignCase:
    """A shape, a foreign partition in it whose range expires, and how time passes."""

    ddl: str
    table: partman.Table
    foreign: str  # DDL of the foreign partition, named legacy
    grow: Callable[[Conn, partman.SimulatedClock, partman.Manager], None]  # ids, or days
    parent_of_legacy: str = "t"
    foreign_first: bool = True  # made before partman's first pass (else just after it)


def _days_pass(conn: Conn, clock: partman.SimulatedClock, m: partman.Manager) -> None:
    clock.advance(5 * DAY)


def _ids_grow(conn: Conn, clock: partman.SimulatedClock, m: partman.Manager) -> None:
    """Ids fill [1000, 4000) window by window, each pass making the next (the last one's is
    the pass under test: the newest id 3999 retires windows up to 2499)."""
    for lo in (1000, 2000, 3000):
        conn.execute(
            "INSERT INTO t SELECT g, now() FROM generate_series(%s::int8, %s::int8) g",
            (lo, lo + 999),
        )
        if lo < 3000:
            assert m.maintain().ok


def _window(lo: object, hi: object) -> str:
    return f"FOR VALUES FROM ({sql.Literal(lo).as_string()}) TO ({sql.Literal(hi).as_string()})"


FOREIGN = {
    "ids": ForeignCase(
        "CREATE TABLE t (id bigint NOT NULL, created_at timestamptz NOT NULL) "
        "PARTITION BY RANGE (id)",
        partman.Table(
            name="t",
            partition_by="id",
            partition_interval=1000,
            partition_count=1,
            retention_period=1500,
        ),
        f"CREATE TABLE legacy PARTITION OF t {_window(0, 1000)}",
        _ids_grow,
    ),
    "epoch_ms": ForeignCase(
        "CREATE TABLE t (at bigint NOT NULL) PARTITION BY RANGE (at)",
        partman.Table(
            name="t",
            partition_by="at",
            epoch="milliseconds",
            partition_count=1,
            retention_period="2 days",
        ),
        f"CREATE TABLE legacy PARTITION OF t {_window(_ms(TODAY - DAY), _ms(TODAY))}",
        _days_pass,
    ),
    "uuid7": ForeignCase(
        "CREATE TABLE t (id uuid NOT NULL) PARTITION BY RANGE (id)",
        partman.Table(name="t", partition_by="id", partition_count=1, retention_period="2 days"),
        "CREATE TABLE legacy PARTITION OF t "
        + _window(str(_uuid_bound(TODAY - DAY)), str(_uuid_bound(TODAY))),
        _days_pass,
    ),
    "hash": ForeignCase(
        "CREATE TABLE t (device_id int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at)",
        partman.Table(
            name="t",
            partition_by="at",
            partition_count=1,
            retention_period="2 days",
            sub_partition_by="device_id",
            sub_partition_modulus=2,
        ),
        # a period partitioned by HASH as partman makes them, but by someone else
        f"CREATE TABLE legacy PARTITION OF t {_window(TODAY - DAY, TODAY)} "
        "PARTITION BY HASH (device_id); "
        "CREATE TABLE legacy_h0 PARTITION OF legacy FOR VALUES WITH (MODULUS 2, REMAINDER 0); "
        "CREATE TABLE legacy_h1 PARTITION OF legacy FOR VALUES WITH (MODULUS 2, REMAINDER 1)",
        _days_pass,
    ),
    "list": ForeignCase(
        "CREATE TABLE t (tenant text NOT NULL, at timestamptz NOT NULL) PARTITION BY LIST (tenant)",
        partman.Table(
            name="t",
            tenant_id="a",
            tenant_id_column="tenant",
            tenant_partitioning="list",
            partition_by="at",
            partition_count=1,
            retention_period="2 days",
        ),
        # under the tenant's own partition, which partman made
        f"CREATE TABLE legacy PARTITION OF t_a {_window(TODAY - DAY, TODAY)}",
        _days_pass,
        parent_of_legacy="t_a",
        foreign_first=False,
    ),
}


@pytest.mark.parametrize("shape", list(FOREIGN))
def test_a_foreign_expired_window_is_never_dropped_and_the_pass_says_why(
    dsn: str, conn: Conn, clock: partman.SimulatedClock, shape: str
) -> None:
    case = FOREIGN[shape]
    conn.execute(case.ddl)  # type: ignore[arg-type]
    if case.foreign_first:
        conn.execute(case.foreign)  # type: ignore[arg-type]
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(case.table)
        assert m.maintain().ok
        if not case.foreign_first:
            conn.execute(case.foreign)  # type: ignore[arg-type]
        case.grow(conn, clock, m)
        report = m.maintain()
    assert report.ok, str(report)
    assert report.retired, "the test needs retention to retire partman's own windows"
    assert "legacy" not in {op.partition_name for op in report.retired}
    assert "legacy" in _relations(conn)
    attached = conn.execute(
        "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = 'legacy'::regclass"
    ).fetchone()
    assert attached == (case.parent_of_legacy,)
    assert report.plan is not None
    said = [n for n in report.plan.notices if n.partition == "public.legacy"]
    assert said and "partman did not create or adopt it" in said[0].message, report.plan


# -- a window holding a young row is kept ------------------------------------------------------


def test_an_id_window_a_young_row_reaches_after_the_plan_is_kept_with_its_rows(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    """Retention by a time column's age: the closed window [0, 1000) is all 40 days old
    when planned, then a row written now lands in it; the pass checks the rows, not the
    plan, and keeps the window."""
    conn.execute(
        "CREATE TABLE t (id bigint NOT NULL, created_at timestamptz NOT NULL) "
        "PARTITION BY RANGE (id)"
    )
    table = partman.Table(
        name="t",
        partition_by="id",
        partition_interval=1000,
        partition_count=1,
        retention_period="30 days",
        retention_column="created_at",
    )
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table)
        assert m.maintain().ok
        old = NOW - 40 * DAY
        conn.execute("INSERT INTO t SELECT g, %s FROM generate_series(0, 1500) g", (old,))
        plan = m.plan()
        assert [op.partition_name for op in plan.drops] == ["t_p0"]
        conn.execute("UPDATE t SET created_at = %s WHERE id = 999", (NOW - DAY,))
        report = m.maintain()
        assert report.dropped == []
        [kept] = [r for r in report.skipped if r.operation.partition_name == "t_p0"]
        assert kept.skip_reason is partman.SkipReason.ROWS_IN_WINDOW
        assert "at or after the retention cutoff" in (kept.error or "")
    assert conn.execute("SELECT count(*) FROM t_p0").fetchone() == (1000,)


# -- the lock budget ---------------------------------------------------------------------------

LOCKED_SHAPES = {
    "hash": (
        "CREATE TABLE t (device_id int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at)",
        partman.Table(
            name="t",
            partition_by="at",
            partition_count=1,
            retention_period="1 day",
            sub_partition_by="device_id",
            sub_partition_modulus=4,
        ),
        "INSERT INTO t SELECT g, %s FROM generate_series(1, 50) g",
    ),
    "ids": (
        "CREATE TABLE t (id bigint NOT NULL, created_at timestamptz NOT NULL) "
        "PARTITION BY RANGE (id)",
        partman.Table(
            name="t",
            partition_by="id",
            partition_interval=1000,
            partition_count=1,
            retention_period=500,
        ),
        "INSERT INTO t SELECT g, %s FROM generate_series(0, 1999) g",
    ),
}


class Pass(threading.Thread):
    """m.maintain() in a thread, so that a pass that queues cannot hang the test."""

    def __init__(self, m: partman.Manager) -> None:
        super().__init__(daemon=True)
        self.m = m
        self.report: partman.Report | None = None
        self.start()

    def run(self) -> None:
        self.report = self.m.maintain()

    def within(self, seconds: float) -> partman.Report | None:
        """Its report, or None while it still waits after `seconds`."""
        self.join(seconds)
        return self.report


@pytest.mark.parametrize("mode", ["SHARE", "ACCESS EXCLUSIVE"])
@pytest.mark.parametrize("shape", list(LOCKED_SHAPES))
def test_a_lock_held_on_the_parent_makes_the_pass_skip_it_at_once_and_name_the_holder(
    dsn: str, conn: Conn, clock: partman.SimulatedClock, shape: str, mode: str
) -> None:
    """An idle transaction holds a lock on the parent (and, as LOCK TABLE does, on every
    partition below it) while a pass has both creates and retention to do there. The pass
    skips the parent within its budget and names the transaction; the pass after it, the
    lock gone, does it all."""
    ddl, table, rows = LOCKED_SHAPES[shape]
    conn.execute(ddl)  # type: ignore[arg-type]
    conn.execute("CREATE TABLE other (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    with partman.Manager(dsn, clock=clock, config=BUDGET) as m:
        m.add_managed_table(table)
        m.add_managed_table(partman.Table(name="other", partition_by="at", partition_count=1))
        assert m.maintain().ok
        conn.execute(rows, (NOW,))  # type: ignore[arg-type]
        clock.advance(3 * DAY)  # (an id table's windows go by its ids, not the clock)
        work = len([op for op in m.plan() if op.parent_name == "t"])
        assert work >= 2  # a create and a retirement at least
        with psycopg.connect(dsn, application_name="billing-job") as app:
            app.execute(sql.SQL("LOCK TABLE t IN {} MODE").format(sql.SQL(mode)))
            pid = app.info.backend_pid
            started = time.monotonic()
            running = Pass(m)
            report = running.within(3)
            waited = time.monotonic() - started
            app.rollback()
        running.join(30)  # a pass that queued goes on once the lock is gone
        assert report is not None, (
            f"the pass queued behind the {mode} lock for more than 3 s instead of skipping"
        )
        assert waited < 1.5, f"the pass took {waited:.1f} s to give up"
        skipped = [r for r in report.skipped if r.operation.parent_name == "t"]
        assert len(skipped) == work, str(report)
        assert skipped[0].skip_reason is partman.SkipReason.LOCK_HOLDER, str(report)
        assert f"pid {pid} (billing-job, idle in transaction" in (skipped[0].error or "")
        assert [op.partition_name for op in report.created] != []  # "other" went on
        assert not report.failed
        after = m.maintain()
        assert after.ok, str(after)
        assert len([r for r in after.results if r.operation.parent_name == "t"]) == work
        assert len(m.plan().operations) == 0


# -- rows in an id table's default partition ---------------------------------------------------


def _id_table_with_rows_waiting(conn: Conn) -> list[tuple[Any, ...]]:
    """[0, 2000) made and filled; 5 rows of [2000, 3000) and 45 of [3000, 4000) wait in the
    default (ids past every window); every row, sorted."""
    conn.execute(
        "CREATE TABLE t (id bigint NOT NULL, created_at timestamptz NOT NULL, note text) "
        "PARTITION BY RANGE (id)"
    )
    conn.execute("CREATE TABLE t_default PARTITION OF t DEFAULT")
    conn.execute("CREATE TABLE t_p0 PARTITION OF t FOR VALUES FROM (0) TO (1000)")
    conn.execute("CREATE TABLE t_p1000 PARTITION OF t FOR VALUES FROM (1000) TO (2000)")
    for lo, hi in [(0, 1999), (2000, 2004), (3000, 3044)]:
        conn.execute(
            "INSERT INTO t SELECT g, %s, 'n' || g FROM generate_series(%s::int8, %s::int8) g",
            (NOW, lo, hi),
        )
    return conn.execute("SELECT * FROM t ORDER BY id").fetchall()


ID_TABLE = partman.Table(
    name="t",
    partition_by="id",
    partition_interval=1000,
    partition_count=1,
    default_partition=True,
)


def test_rows_waiting_in_an_id_tables_default_move_into_their_windows_none_lost(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    before = _id_table_with_rows_waiting(conn)
    config = partman.Config(move_batch_rows=20)  # 45 rows: moved in batches (staged)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(ID_TABLE)
        m.import_existing_partitions(ID_TABLE)
        report = m.maintain()
        assert report.ok, str(report)
        # the newest id is the default's 3044: its window is made, its rows moved in batches
        assert [op.partition_name for op in report.created] == ["t_p3000", "t_p4000"]
        moved = {r.operation.partition_name: r.detail for r in report.results}
        assert "45 row(s) moved in batches" in (moved["t_p3000"] or ""), moved
        # [2000, 3000) is behind the window under way: never made, its rows wait (as a time
        # table's rows of a past period do), counted every pass
        assert report.default_rows == {"public.t": 5}
        assert len(m.plan()) == 0
    assert conn.execute("SELECT * FROM t ORDER BY id").fetchall() == before
    where = dict(
        conn.execute("SELECT tableoid::regclass::text, count(*) FROM t GROUP BY 1").fetchall()
    )
    assert where == {"t_p0": 1000, "t_p1000": 1000, "t_default": 5, "t_p3000": 45}


def test_an_id_window_stopped_while_its_rows_move_is_finished_from_the_same_newest_id(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    """The newest id (4044) waits in the default, with 44 more of its window. A pass stages
    [4000, 5000) and is stopped once every row is moved but before it attaches it: the
    next pass must finish it and plan from the same newest id (4044: [5000, 6000) ahead, and
    the 10 rows of [3000, 4000), behind it, left in the default), not from what is left in
    the default (3509) as if the staging table's rows were not there."""
    conn.execute(
        "CREATE TABLE t (id bigint NOT NULL, created_at timestamptz NOT NULL, note text) "
        "PARTITION BY RANGE (id)"
    )
    conn.execute("CREATE TABLE t_default PARTITION OF t DEFAULT")
    conn.execute("CREATE TABLE t_p2000 PARTITION OF t FOR VALUES FROM (2000) TO (3000)")
    for lo, hi in [(2000, 2999), (3500, 3509), (4000, 4044)]:
        conn.execute(
            "INSERT INTO t SELECT g, %s, 'n' || g FROM generate_series(%s::int8, %s::int8) g",
            (NOW, lo, hi),
        )
    before = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    config = partman.Config(move_batch_rows=20)

    class Stop(Exception):
        pass

    def stop_before_attaching(step: str, op: partman.Operation) -> None:
        if step == "attach_staged":
            raise Stop

    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(ID_TABLE)
        m.import_existing_partitions(ID_TABLE)
        uninterrupted = [op.partition_name for op in m.plan().creates]
        assert uninterrupted == ["t_p4000", "t_p5000"]
    with partman.Manager(dsn, clock=clock, config=config, on_step=stop_before_attaching) as m:
        report = m.maintain()
        assert "t_p4000" in [r.operation.partition_name for r in report.failed]
    staged = conn.execute(
        "SELECT state FROM partman_meta.partitions WHERE partition_name = 't_p4000'"
    )
    assert staged.fetchall() == [("staging",)]
    with partman.Manager(dsn, clock=clock, config=config) as m:
        plan = m.plan()
        assert [op.partition_name for op in plan.creates] == uninterrupted, str(plan)
        assert m.maintain().ok
        assert len(m.plan()) == 0
    assert conn.execute("SELECT * FROM t ORDER BY id").fetchall() == before
    left = conn.execute("SELECT min(id), max(id) FROM t_default").fetchone()
    assert left == (3500, 3509)


# -- archiving a period partitioned by HASH ----------------------------------------------------


def test_archiving_a_hash_partitioned_period_moves_its_leaves_with_it(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    """retention_action 'archive' moves an expired partition to archive_schema. A period
    partitioned by HASH keeps its rows in its leaves: they must go with it, or the archive
    holds an empty shell while the rows stay among the live tables (and DROP SCHEMA
    archive CASCADE drops them from there)."""
    conn.execute(
        "CREATE TABLE t (device_id int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at)"
    )
    table = partman.Table(
        name="t",
        partition_by="at",
        partition_count=0,
        retention_period="1 day",
        retention_action="archive",
        archive_schema="archive",
        sub_partition_by="device_id",
        sub_partition_modulus=2,
    )
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table)
        assert m.maintain().ok
        conn.execute("INSERT INTO t SELECT g, %s FROM generate_series(1, 10) g", (NOW,))
        clock.advance(3 * DAY)
        report = m.maintain()
        assert report.ok, str(report)
        assert [op.partition_name for op in report.retired] == ["t_p20260310"]
    assert _relations(conn, "archive") == {"t_p20260310", "t_p20260310_h0", "t_p20260310_h1"}
    assert not {"t_p20260310_h0", "t_p20260310_h1"} & _relations(conn)
    assert conn.execute("SELECT count(*) FROM archive.t_p20260310").fetchone() == (10,)


def test_one_stray_id_far_ahead_in_the_default_expires_no_window_and_is_said(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    """Retention by distance goes by the newest id in the windows, not by an id waiting in
    the default partition: one bad row at 5,000,000,000 gets its windows (it moves there) and
    a warning, and the windows holding [0, 2500] with a 5,000-id retention all stay."""
    conn.execute("CREATE TABLE t (id bigint NOT NULL) PARTITION BY RANGE (id)")
    table = partman.Table(
        name="t",
        partition_by="id",
        partition_interval=1000,
        partition_count=2,
        retention_period=5000,
        default_partition=True,
    )
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table)
        assert m.maintain().ok
        conn.execute("INSERT INTO t SELECT generate_series(0, 2500)")
        assert m.maintain().ok
        conn.execute("INSERT INTO t VALUES (5000000000)")
        plan = m.plan()
        assert list(plan.drops) == []
        [warning] = [n for n in plan.notices if "stray" in n.message]
        assert "reach 5000000000" in warning.message and "(2500)" in warning.message
        report = m.maintain()
        assert report.ok and report.dropped == [], str(report)
        assert "t_p5000000000" in [op.partition_name for op in report.created]
    assert conn.execute("SELECT count(*), max(id) FROM t").fetchone() == (2502, 5000000000)
    assert conn.execute("SELECT count(*) FROM t_default").fetchone() == (0,)
