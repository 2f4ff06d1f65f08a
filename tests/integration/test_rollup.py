"""Roll-ups against a real server (issue 16, pg_partman #466): daily partitions older than
rollup_after merged into monthly ones, built detached, copied while live, swapped in one short
transaction under the lock budget; late rows, crashes at every step, and retention after."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

import partman
from partman.model.operations import RollupPartition

Conn = psycopg.Connection[Any]
T0 = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 5, 5, 12, 0, tzinfo=dt.UTC)  # now - 90 days = Feb 4: January is past


def table(**kw: Any) -> partman.Table:
    fields: dict[str, Any] = {
        "name": "events",
        "partition_by": "created_at",
        "partition_interval": "1 day",
        "partition_count": 45,
        "rollup_after": "90 days",
        "rollup_interval": "1 month",
    }
    return partman.Table(**{**fields, **kw})


def create_events(conn: Conn, *, tenants: bool = False) -> None:
    if tenants:
        conn.execute(
            "CREATE TABLE events (tenant text NOT NULL, created_at timestamptz NOT NULL, "
            "n int NOT NULL, payload jsonb, PRIMARY KEY (tenant, created_at, n)) "
            "PARTITION BY RANGE (tenant, created_at)"
        )
    else:
        conn.execute(
            "CREATE TABLE events (created_at timestamptz NOT NULL, n int NOT NULL, "
            "payload jsonb, PRIMARY KEY (created_at, n)) PARTITION BY RANGE (created_at)"
        )


def fill(conn: Conn) -> int:
    """Hourly rows from Jan 1 to Feb 14: returns how many."""
    cur = conn.execute(
        "INSERT INTO events (created_at, n, payload) SELECT t, 1, jsonb_build_object('t', t) "
        "FROM generate_series('2026-01-01'::timestamptz, '2026-02-14 23:00', '1 hour') AS t"
    )
    return cur.rowcount


def partitions(conn: Conn, parent: str = "public.events") -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass "
        "ORDER BY pg_get_expr(c.relpartbound, c.oid)",
        (parent,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def content(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM events ORDER BY 1, 2, 3").fetchall()


@pytest.fixture
def clock() -> partman.SimulatedClock:
    return partman.SimulatedClock(T0)


def start(conn: Conn, dsn: str, clock: partman.SimulatedClock, **kw: Any) -> partman.Manager:
    create_events(conn)
    m = partman.Manager(dsn, clock=clock, **kw)
    m.add_managed_table(table())
    report = m.maintain()
    assert report.ok, str(report)
    return m


def test_daily_partitions_older_than_rollup_after_become_one_monthly_partition(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    with start(conn, dsn, clock) as m:
        rows = fill(conn)
        before = content(conn)
        clock.set(LATER)
        plan = m.plan()
        rolls = [op for op in plan if isinstance(op, RollupPartition)]
        assert [(op.lower, op.upper, len(op.fines)) for op in rolls] == [
            (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 2, 1, tzinfo=dt.UTC), 31)
        ]
        assert "~ rollup public.events_p20260101_20260201" in str(plan)
        assert "roll-up after 90 days" in rolls[0].reason
        report = m.maintain()
        assert report.ok, str(report)
        found = partitions(conn)
        assert found[0] == (
            "events_p20260101_20260201",
            "FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2026-02-01 00:00:00+00')",
        )
        assert found[1][0] == "events_p20260201"  # February is not all past rollup_after
        assert content(conn) == before and len(before) == rows
        # the coarse partition is partman's, attached; the fine ones are forgotten
        owned = conn.execute(
            "SELECT partition_name, state, origin FROM partman_meta.partitions "
            "WHERE partition_name LIKE 'events_p202601%' ORDER BY 1"
        ).fetchall()
        assert owned == [("events_p20260101_20260201", "attached", "created")]
        comment = conn.execute(
            "SELECT obj_description('events_p20260101_20260201'::regclass, 'pg_class')"
        ).fetchone()
        assert comment is not None and comment[0].startswith("managed by partman")
        checks = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'partman_rollup_bound'"
        ).fetchone()
        assert checks == (0,)
        assert [op for op in m.plan() if isinstance(op, RollupPartition)] == []  # settled
        audit = conn.execute(
            "SELECT outcome, reason FROM partman_meta.audit_log WHERE operation = 'rollup'"
        ).fetchall()
        assert audit[0][0] == "ok" and "744 row(s) of 31 partition(s)" in audit[0][1]


def test_premake_leaves_a_rolled_up_month_alone_and_retention_drops_it_only_whole(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    with start(conn, dsn, clock) as m:
        fill(conn)
        clock.set(LATER)
        assert m.maintain().ok
        assert m.add_managed_table(table(retention_period="150 days", backfill=True))
        # now - 150 days = Dec 6: nothing of January has expired; backfill finds it covered
        plan = m.plan()
        assert not [
            op
            for op in plan.creates
            if op.lower is not None
            and op.upper is not None
            and dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            <= op.lower  # type: ignore[operator]
            < dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
        ]
        assert m.maintain().ok
        clock.set(dt.datetime(2026, 6, 25, tzinfo=dt.UTC))  # cutoff Jan 26: January not whole
        plan = m.plan()
        assert "events_p20260101_20260201" not in [op.partition_name for op in plan.drops]
        assert m.maintain().ok
        clock.set(dt.datetime(2026, 7, 1, 1, tzinfo=dt.UTC))  # cutoff Feb 1, 01:00: all of it
        plan = m.plan()
        assert "events_p20260101_20260201" in [op.partition_name for op in plan.drops]
        assert m.maintain().ok
        assert conn.execute(
            "SELECT count(*) FROM events WHERE created_at < '2026-02-01'"
        ).fetchone() == (0,)


def test_a_tenant_table_is_rolled_up_per_tenant(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    create_events(conn, tenants=True)
    with partman.Manager(dsn, clock=clock) as m:
        for tenant in ("acme", "globex"):
            m.add_managed_table(table(tenant_id_column="tenant", tenant_id=tenant))
        assert m.maintain().ok
        for tenant in ("acme", "globex"):
            conn.execute(
                "INSERT INTO events (tenant, created_at, n) SELECT %s, t, 2 FROM generate_series("
                "'2026-01-01'::timestamptz, '2026-02-10', '3 hours') AS t",
                (tenant,),
            )
        before = content(conn)
        clock.set(LATER)
        rolls = [op for op in m.plan() if isinstance(op, RollupPartition)]
        assert sorted(str(op.tenant) for op in rolls) == ["acme", "globex"]
        assert m.maintain().ok
        assert content(conn) == before
        names = [name for name, _ in partitions(conn)]
        assert "events_acme_p20260101_20260201" in names
        assert "events_globex_p20260101_20260201" in names
        fine = ("events_acme_p202601", "events_globex_p202601")
        assert not [n for n in names if n.startswith(fine) and not n.endswith("_20260201")]
        bound = dict(partitions(conn))["events_acme_p20260101_20260201"]
        assert bound == (
            "FOR VALUES FROM ('acme', '2026-01-01 00:00:00+00') "
            "TO ('acme', '2026-02-01 00:00:00+00')"
        )


def test_rows_written_between_the_copy_and_the_swap_are_not_lost(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    """A late insert, an update and a delete in old days, after their copy: the swap sees them
    (by xmin, or by the count) and copies those days again under its lock."""
    late = []

    def on_step(step: str, op: object) -> None:
        if step == "rollup_swap":
            with psycopg.connect(dsn, autocommit=True) as other:
                other.execute(
                    "INSERT INTO events VALUES ('2026-01-05 10:30+00', 7, '{\"late\": true}')"
                )
                other.execute("UPDATE events SET payload = '{\"u\": 1}' WHERE created_at = "
                              "'2026-01-20 05:00+00'")  # fmt: skip
                other.execute("DELETE FROM events WHERE created_at = '2026-01-31 23:00+00'")
            late.append(step)

    create_events(conn)
    with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
        m.add_managed_table(table())
        assert m.maintain().ok
        rows = fill(conn)
        clock.set(LATER)
        report = m.maintain()
        assert report.ok, str(report)
        assert late == ["rollup_swap"]
        after = content(conn)
        assert len(after) == rows  # one in, one out
        assert ("2026-01-05 10:30+00" in str(after)) or any(
            r[1] == 7 and r[2] == {"late": True} for r in after
        )
        assert [r[2] for r in after if r[0] == dt.datetime(2026, 1, 20, 5, tzinfo=dt.UTC)] == [
            {"u": 1}
        ]
        assert not [r for r in after if r[0] == dt.datetime(2026, 1, 31, 23, tzinfo=dt.UTC)]
        in_coarse = conn.execute(
            "SELECT count(*) FROM ONLY events_p20260101_20260201 WHERE n = 7"
        ).fetchone()
        assert in_coarse == (1,)
        audit = conn.execute(
            "SELECT reason FROM partman_meta.audit_log WHERE operation = 'rollup'"
        ).fetchone()
        assert audit is not None and "3 partition(s) copied again under the lock" in audit[0]


STEPS = [
    "rollup_create",
    "rollup_copy",
    "rollup_copy@15",
    "rollup_copy@31",
    "rollup_swap",
    "rollup_recopy",
]
LATE = (dt.datetime(2026, 1, 5, 10, 30, tzinfo=dt.UTC), 7, None)


@pytest.mark.parametrize("kill", STEPS)
def test_a_pass_stopped_at_any_roll_up_step_converges_on_the_next(
    conn: Conn, dsn: str, clock: partman.SimulatedClock, kill: str
) -> None:
    """An exception from the step hook (a crash there): nothing half-done is visible, and the
    next pass resumes the roll-up, with every row present exactly once (a row written late,
    after its day's copy, too: `rollup_recopy` stops inside the swap's transaction)."""
    name, _, nth = kill.partition("@")
    seen = {"n": 0}
    armed = {"on": True}
    sent: list[str] = []

    def on_step(step: str, op: object) -> None:
        if armed["on"] and step == "rollup_swap" and not sent:
            sent.append(step)
            with psycopg.connect(dsn, autocommit=True) as other:  # a late row, after its copy
                other.execute("INSERT INTO events VALUES (%s, %s, %s)", LATE)
        if armed["on"] and step == name:
            seen["n"] += 1
            if seen["n"] == int(nth or 1):
                raise RuntimeError(f"killed at {kill}")

    create_events(conn)
    with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
        m.add_managed_table(table())
        assert m.maintain().ok
        fill(conn)
        before = content(conn)
        if name not in ("rollup_create", "rollup_copy"):  # the kill comes after the late row
            before = sorted([*before, LATE], key=lambda r: (r[0], r[1]))
        clock.set(LATER)
        report = m.maintain()
        assert not report.ok
        assert content(conn) == before  # the parent shows every row once, whatever was left
        armed["on"] = False
        plan = m.plan()
        rolls = [op for op in plan if isinstance(op, RollupPartition)]
        assert len(rolls) == 1
        assert rolls[0].resume == (kill != "rollup_create")
        report = m.maintain()
        assert report.ok, str(report)
        assert content(conn) == before
        assert partitions(conn)[0][0] == "events_p20260101_20260201"
        states = conn.execute(
            "SELECT state, count(*) FROM partman_meta.partitions GROUP BY 1"
        ).fetchall()
        assert dict(states).get("staging") is None
        assert [op for op in m.plan() if isinstance(op, RollupPartition)] == []


def test_a_crash_left_copy_is_dropped_when_retention_takes_the_period(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    def on_step(step: str, op: object) -> None:
        if step == "rollup_swap":
            raise RuntimeError("killed before the swap")

    create_events(conn)
    with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
        m.add_managed_table(table(retention_period="150 days"))
        assert m.maintain().ok
        fill(conn)
        clock.set(LATER)
        assert not m.maintain().ok

    def stop_abandon(step: str, op: object) -> None:
        if step == "rollup_abandon":
            raise RuntimeError("killed before the drop")

    clock.set(dt.datetime(2026, 7, 15, tzinfo=dt.UTC))  # all of January expired
    with partman.Manager(dsn, clock=clock, on_step=stop_abandon) as m:
        plan = m.plan()
        abandon = [op for op in plan if isinstance(op, RollupPartition)]
        assert [op.partition_name for op in abandon if op.abandon] == [
            "events_p20260101_20260201"
        ]  # (February, all past rollup_after too, is rolled up meanwhile)
        assert not m.maintain().ok  # stopped before the copy is dropped: the next pass does
    with partman.Manager(dsn, clock=clock) as m:
        assert m.maintain().ok
        assert conn.execute("SELECT to_regclass('events_p20260101_20260201')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*) FROM events WHERE created_at < '2026-02-01'"
        ).fetchone() == (0,)


def test_a_lock_holder_makes_the_roll_up_wait_for_the_next_pass(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    create_events(conn)
    with partman.Manager(
        dsn, clock=clock, config=partman.Config(lock_timeout=dt.timedelta(milliseconds=100))
    ) as m:
        m.add_managed_table(table())
        assert m.maintain().ok
        fill(conn)
        clock.set(LATER)
        with psycopg.connect(dsn) as holder:  # a transaction that read the parent, left open
            holder.execute("SELECT count(*) FROM events")
            time.sleep(0.25)
            report = m.maintain()
            skipped = [r for r in report.results if isinstance(r.operation, RollupPartition)]
            assert [r.outcome.value for r in skipped] == ["skipped"]
            assert "would queue behind" in str(skipped[0].error)
            holder.rollback()
        assert m.maintain().ok
        assert partitions(conn)[0][0] == "events_p20260101_20260201"


def test_an_application_insert_loop_never_waits_longer_than_the_lock_budget(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    """Writers of today's rows go on during the whole roll-up of a month of 300,000 rows: the
    longest insert stays within the lock budget (plus a margin for a busy 2-core machine)."""
    budget = dt.timedelta(milliseconds=200)
    create_events(conn)
    with partman.Manager(dsn, clock=clock, config=partman.Config(lock_timeout=budget)) as m:
        m.add_managed_table(table(rollup_after=None, rollup_interval=None))
        assert m.maintain().ok
        conn.execute(
            "INSERT INTO events (created_at, n) SELECT '2026-01-01'::timestamptz + "
            "(g % 2678400) * interval '1 second', g FROM generate_series(1, 300000) AS g"
        )
        conn.execute("ANALYZE events")
        clock.set(LATER)
        assert m.maintain().ok  # this period's partitions exist: the application writes "now"
        assert m.add_managed_table(table())  # then the roll-up is asked for
        stop = threading.Event()
        waits: list[float] = []
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                with psycopg.connect(dsn, autocommit=True) as app:
                    i = 0
                    while not stop.is_set():
                        i += 1
                        t = time.perf_counter()
                        app.execute(
                            "INSERT INTO events (created_at, n) VALUES (%s, %s)",
                            (LATER + dt.timedelta(seconds=i % 3600), -i),
                        )
                        waits.append(time.perf_counter() - t)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            time.sleep(0.2)
            started = time.perf_counter()
            report = m.maintain()
            took = time.perf_counter() - started
            time.sleep(0.1)
        finally:
            stop.set()
            thread.join()
        assert not errors
        assert report.ok, str(report)
        assert partitions(conn)[0][0] == "events_p20260101_20260201"
        old = conn.execute("SELECT count(*) FROM events WHERE created_at < '2026-02-01'").fetchone()
        assert old == (300000,)
        longest = max(waits)
        print(f"roll-up of 300,000 rows: {took:.2f}s, {len(waits)} inserts, longest {longest:.3f}s")
        assert longest < budget.total_seconds() + 0.3


_CHILD = """
import datetime as dt, os, signal, sys
import psycopg, partman
dsn, kill, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = 0
def on_step(step, op):
    global seen
    if step == "rollup_swap" and kill == "rollup_recopy":  # a late row, after its copy
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("INSERT INTO events VALUES ('2026-01-05 10:30+00', 7, NULL)")
    if step == kill:
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
clock = partman.SimulatedClock(dt.datetime.fromisoformat(sys.argv[4]))
with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
    m.maintain()
sys.exit(3)  # not killed: the kill point was never reached
"""


@pytest.mark.parametrize(
    "kill",
    [
        "rollup_create",
        "rollup_copy",
        "rollup_copy@2",
        "rollup_copy@31",
        "rollup_swap",
        "rollup_recopy",
    ],
)
def test_a_pass_sigkilled_at_any_roll_up_step_converges_on_the_next(
    conn: Conn, dsn: str, clock: partman.SimulatedClock, kill: str
) -> None:
    """The process dies (SIGKILL: its transactions end with its connections, whatever they
    held open: `rollup_recopy` is inside the swap's transaction) at each step; the next pass
    finishes the roll-up with every row once, the late row too."""
    name, _, nth = kill.partition("@")
    create_events(conn)
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table())
        assert m.maintain().ok
    fill(conn)
    expected = content(conn)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, dsn, name, nth or "1", LATER.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    if name == "rollup_recopy":
        expected = sorted([*expected, (dt.datetime(2026, 1, 5, 10, 30, tzinfo=dt.UTC), 7, None)])
    assert content(conn) == expected  # every row once, in the fine or the coarse partitions
    clock.set(LATER)
    with partman.Manager(dsn, clock=clock) as m:
        report = m.maintain()
        assert report.ok, str(report)
        assert content(conn) == expected
        assert partitions(conn)[0][0] == "events_p20260101_20260201"
        assert [op for op in m.plan() if isinstance(op, RollupPartition)] == []
    staging = conn.execute(
        "SELECT count(*) FROM partman_meta.partitions WHERE state = 'staging'"
    ).fetchone()
    assert staging == (0,)
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'events_p2026%%' AND relkind = 'r' "
        "AND NOT relispartition"
    ).fetchone()
    assert leftovers == (0,)


SHAPES = {
    "date": (
        "CREATE TABLE events (created_at date NOT NULL, n int NOT NULL, "
        "PRIMARY KEY (created_at, n)) PARTITION BY RANGE (created_at)",
        {},
        "INSERT INTO events SELECT d::date, 1 FROM generate_series('2026-01-01'::date, "
        "'2026-02-10', '1 day') AS d",
    ),
    "epoch": (
        "CREATE TABLE events (created_at bigint NOT NULL, n int NOT NULL) "
        "PARTITION BY RANGE (created_at)",
        {"epoch": "milliseconds"},
        "INSERT INTO events SELECT (extract(epoch FROM t) * 1000)::bigint, 1 FROM "
        "generate_series('2026-01-01'::timestamptz, '2026-02-10', '5 hours') AS t",
    ),
    "uuid7": (
        "CREATE TABLE events (created_at uuid NOT NULL, n int NOT NULL) "
        "PARTITION BY RANGE (created_at)",
        {},
        "INSERT INTO events SELECT (lpad(to_hex((extract(epoch FROM t) * 1000)::bigint), 12, "
        "'0') || '7000800000000000' || lpad(to_hex(g), 4, '0'))::uuid, g FROM "
        "generate_series('2026-01-01'::timestamptz, '2026-02-10', '5 hours') WITH ORDINALITY "
        "AS s (t, g)",
    ),
    "list": (
        "CREATE TABLE events (tenant text NOT NULL, created_at timestamptz NOT NULL, "
        "n int NOT NULL) PARTITION BY LIST (tenant)",
        {"tenant_id_column": "tenant", "tenant_id": "acme", "tenant_partitioning": "list"},
        "INSERT INTO events SELECT 'acme', t, 1 FROM generate_series("
        "'2026-01-01'::timestamptz, '2026-02-10', '5 hours') AS t",
    ),
    "replica identity index": (
        "CREATE TABLE events (created_at timestamptz NOT NULL, n int NOT NULL, "
        "UNIQUE (created_at, n)) PARTITION BY RANGE (created_at); "
        "ALTER TABLE events REPLICA IDENTITY USING INDEX events_created_at_n_key",
        {},
        "INSERT INTO events SELECT t, 1 FROM generate_series('2026-01-01'::timestamptz, "
        "'2026-02-10', '5 hours') AS t",
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_time_shape_is_rolled_up(
    conn: Conn, dsn: str, clock: partman.SimulatedClock, shape: str
) -> None:
    ddl, extra, rows = SHAPES[shape]
    conn.execute(ddl)
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table(**extra))
        report = m.maintain()
        assert report.ok, str(report)
        conn.execute(rows)
        before = conn.execute("SELECT * FROM events ORDER BY 1, 2").fetchall()
        clock.set(LATER)
        report = m.maintain()
        assert report.ok, str(report)
        assert conn.execute("SELECT * FROM events ORDER BY 1, 2").fetchall() == before
        coarse = conn.execute(
            "SELECT c.relname, c.relreplident FROM pg_class c "
            "WHERE c.relname LIKE '%p20260101_20260201' AND c.relispartition"
        ).fetchall()
        assert len(coarse) == 1, coarse
        if shape == "replica identity index":
            assert coarse[0][1] == "i"
        assert [op for op in m.plan() if isinstance(op, RollupPartition)] == []


@pytest.mark.parametrize("crash", [False, True])
def test_a_large_partition_is_copied_in_batches_of_blocks_and_changes_meanwhile_are_kept(
    conn: Conn, dsn: str, clock: partman.SimulatedClock, crash: bool
) -> None:
    """~1,300 rows a day, copied 200 at a time: rows inserted, updated and deleted in a day
    while its batches are copied are all as the application left them after the swap; a
    crash between two batches is resumed by the next pass."""
    steps: list[str] = []

    def on_step(step: str, op: object) -> None:
        steps.append(step)
        if step == "rollup_copy_batch" and steps.count(step) == 3:
            with psycopg.connect(dsn, autocommit=True) as other:
                other.execute("INSERT INTO events VALUES ('2026-01-01 23:59+00', -1, NULL)")
                other.execute("UPDATE events SET payload = '{\"u\": 1}' WHERE n = 5")
                other.execute("DELETE FROM events WHERE n = 6")
            if crash:
                raise RuntimeError("killed between two batches")

    create_events(conn)
    config = partman.Config(move_batch_rows=200)
    with partman.Manager(dsn, clock=clock, config=config, on_step=on_step) as m:
        m.add_managed_table(table())
        assert m.maintain().ok
        conn.execute(
            "INSERT INTO events (created_at, n) SELECT '2026-01-01'::timestamptz + "
            "(g % 2678400) * interval '1 second' * 64, g FROM generate_series(1, 40000) AS g"
        )
        conn.execute("ANALYZE events")
        clock.set(LATER)
        report = m.maintain()
        assert report.ok != crash, str(report)
        expected = content(conn)
        if crash:
            report = m.maintain()
            assert report.ok, str(report)
        assert steps.count("rollup_copy_batch") >= 31 * 3
        assert content(conn) == expected
        assert len(expected) == 40000 + 1 - 1
        assert [r[2] for r in expected if r[1] == 5] == [{"u": 1}]
        assert partitions(conn)[0][0] == "events_p20260101_20260201"


def test_a_writer_holding_an_old_day_makes_the_swap_give_up_within_the_budget_then_resume(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    """A transaction that begins writing into January 10 after the look-ahead (just before
    the swap) and stays open holds the day: the swap's lock is not granted within
    lock_timeout, is retried with backoff, and the roll-up is skipped with the reason, its copy
    kept; once the writer commits, the next pass resumes and keeps its row."""
    config = partman.Config(
        lock_timeout=dt.timedelta(milliseconds=100),
        max_retries=2,
        retry_backoff=dt.timedelta(milliseconds=10),
    )
    steps: list[str] = []
    writer = psycopg.connect(dsn)

    def on_step(step: str, op: object) -> None:
        steps.append(step)
        if step == "rollup_swap" and steps.count(step) == 1:
            writer.execute("INSERT INTO events VALUES ('2026-01-10 10:30+00', 9, NULL)")

    create_events(conn)
    try:
        with partman.Manager(dsn, clock=clock, config=config, on_step=on_step) as m:
            m.add_managed_table(table())
            assert m.maintain().ok
            rows = fill(conn)
            clock.set(LATER)
            started = time.perf_counter()
            report = m.maintain()
            took = time.perf_counter() - started
            (result,) = [r for r in report.results if isinstance(r.operation, RollupPartition)]
            assert result.outcome.value == "skipped"
            assert "lock not available" in str(result.error) and result.attempts == 3
            assert steps.count("rollup_copy") == 31  # the retries did not copy again
            assert steps.count("rollup_swap") == 3
            assert took < 10
            writer.commit()
            plan = m.plan()
            assert [op.resume for op in plan if isinstance(op, RollupPartition)] == [True]
            assert m.maintain().ok
    finally:
        writer.close()
    assert len(content(conn)) == rows + 1
    assert conn.execute(
        "SELECT count(*) FROM ONLY events_p20260101_20260201 WHERE n = 9"
    ).fetchone() == (1,)


def test_the_async_manager_rolls_up_too_with_a_coroutine_step_hook(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    steps: list[str] = []

    async def on_step(step: str, op: object) -> None:
        await asyncio.sleep(0)
        steps.append(step)

    async def scenario() -> partman.Report:
        async with partman.AsyncManager(dsn, clock=clock, on_step=on_step) as m:
            await m.add_managed_table(table())
            assert (await m.maintain()).ok
            fill(conn)
            clock.set(LATER)
            return await m.maintain()

    create_events(conn)
    report = asyncio.run(scenario())
    assert report.ok, str(report)
    assert partitions(conn)[0][0] == "events_p20260101_20260201"
    assert steps.count("rollup_copy") == 31 and steps.count("rollup_swap") == 1


def test_a_rolled_up_partition_is_adopted_again_as_one_roll_up_period(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    """partman's records lost (a fresh metadata schema): `partman import` adopts a partition
    that is exactly one rollup_interval period of a table with roll-ups, not only single days."""
    with start(conn, dsn, clock) as m:
        fill(conn)
        clock.set(LATER)
        assert m.maintain().ok
    conn.execute("DROP SCHEMA partman_meta CASCADE")
    conn.execute("COMMENT ON TABLE events_p20260101_20260201 IS NULL")
    with partman.Manager(dsn, clock=clock) as m:
        report = m.import_existing_partitions(table())
        adopted = [f.partition for f in report.imported]
        assert "public.events_p20260101_20260201" in adopted
        assert not [f for f in report.misaligned if "20260201" in f.partition]


def test_partman_plan_and_apply_with_a_config_file_show_and_do_the_roll_ups(
    conn: Conn, dsn: str, clock: partman.SimulatedClock, tmp_path: Path
) -> None:
    """The command line, with the real clock: January and February 2026 are long past 90 days
    (February has only its first half: no default partition, so it is merged with its gap)."""
    with start(conn, dsn, clock):
        fill(conn)
    before = content(conn)
    (tmp_path / "partman.toml").write_text(
        '[[table]]\nname = "events"\npartition_by = "created_at"\npartition_count = 45\n'
        'rollup_after = "90 days"\nrollup_interval = "1 month"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    env.update({"COLUMNS": "250", "NO_COLOR": "1", "PARTMAN_DSN": dsn})

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "partman", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    plan = cli("plan")
    assert "~ rollup public.events_p20260101_20260201" in plan  # merged, not retired
    assert "~ rollup public.events_p20260201_20260301" in plan
    assert "31 partition(s) of [2026-01-01" in plan
    cli("apply", "--yes")
    assert content(conn) == before
    names = [name for name, _ in partitions(conn)]
    assert names[:2] == ["events_p20260101_20260201", "events_p20260201_20260301"]
    assert "rollup" not in cli("plan")


def test_an_update_in_a_subtransaction_running_during_the_copy_is_kept(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    """A transaction open while the days are copied updates an old row inside a SAVEPOINT (its
    row version's xmin is a subtransaction id, which a snapshot's list of running transactions
    does not hold) and commits before the swap: the swap still copies that day again."""
    other = psycopg.connect(dsn)
    steps: list[str] = []

    def on_step(step: str, op: object) -> None:
        steps.append(step)
        if step == "rollup_copy" and steps.count(step) == 1:
            other.execute("SELECT txid_current()")  # a top-level xid, running during the copy
            other.execute("SAVEPOINT s")
            other.execute(
                "UPDATE events SET payload = '{\"sub\": 1}' WHERE created_at = "
                "'2026-01-20 05:00+00'"
            )
            other.execute("RELEASE SAVEPOINT s")
        if step == "rollup_swap":
            other.commit()

    create_events(conn)
    try:
        with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
            m.add_managed_table(table())
            assert m.maintain().ok
            fill(conn)
            clock.set(LATER)
            report = m.maintain()
            assert report.ok, str(report)
    finally:
        other.close()
    row = conn.execute(
        "SELECT payload FROM ONLY events_p20260101_20260201 WHERE created_at = "
        "'2026-01-20 05:00+00'"
    ).fetchall()
    assert row == [({"sub": 1},)]


def test_a_table_with_a_default_partition_is_rolled_up_and_a_gap_keeps_its_month_fine(
    conn: Conn, dsn: str, clock: partman.SimulatedClock
) -> None:
    create_events(conn)
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table(default_partition=True))
        assert m.maintain().ok
        rows = fill(conn)
        conn.execute("INSERT INTO events VALUES ('2025-06-01', 1, NULL)")  # into the default
        conn.execute("DROP TABLE events_p20260210")  # a gap in February (its rows with it)
        gone = 24
        clock.set(dt.datetime(2026, 6, 10, tzinfo=dt.UTC))  # January and February past
        plan = m.plan()
        rolls = [op for op in plan if isinstance(op, RollupPartition)]
        assert [op.partition_name for op in rolls] == ["events_p20260101_20260201"]
        assert any("has a gap" in n.message for n in plan.notices)
        report = m.maintain()
        assert report.ok, str(report)
        assert len(content(conn)) == rows - gone + 1
        names = [name for name, _ in partitions(conn)]
        assert "events_p20260101_20260201" in names and "events_default" in names
        assert "events_p20260201" in names  # February stays daily
