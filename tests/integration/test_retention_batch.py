"""Retention in batches: several expired partitions of a parent are checked, marked, detached
(each CONCURRENTLY, alone) and dropped with each step taken for the whole batch; whatever
goes wrong in a batch leaves the rest to the one-by-one path, which says what happened."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import psycopg
from psycopg import sql

import partman
from partman.engine.executor import Executor
from partman.model.operations import Operation, RetirePartition

from seed import NOW, create_seed_schema, partitions, seed_table

DAY = dt.timedelta(days=1)
Conn = psycopg.Connection[Any]
RUN = "00000000-0000-0000-0000-000000000000"


def _expired(m: partman.Manager, clock: partman.SimulatedClock, days: int) -> list[RetirePartition]:
    """A partition a day for `days` days, kept; then the tenant's policy becomes 1 day: all
    but the last have expired."""
    m.add_managed_table(seed_table("events", "p1", partition_count=0, retention_period=None))
    for _ in range(days):
        assert m.maintain().ok
        clock.advance(DAY)
    m.register_tenants("convoy.events", [partman.Tenant(tenant_id="p1", retention_period="1 day")])
    return [op for op in m.plan().operations if isinstance(op, RetirePartition)]


def test_a_batch_drops_its_expired_partitions_in_few_round_trips(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    with partman.Manager(dsn, clock=clock) as m:
        ops = _expired(m, clock, 5)
        assert len(ops) == 4 and all(op.concurrently for op in ops)
        statements: list[str] = []
        m._executor.on_step = lambda name, op: statements.append(name)
        report = m.maintain()
    assert report.ok and len(report.dropped) == 4
    # creates first; then each partition through each step: all checked, each detached, all
    # finished (4 partitions: 2 + 4 + 1 round trips instead of 4 x 7)
    assert statements == ["create"] + ["check"] * 4 + ["detach"] * 4 + ["finish"] * 4
    assert len(partitions(conn, "convoy", "events")) == 2  # yesterday's (kept) and today's
    audit = conn.execute(
        "SELECT operation, outcome, count(*) FROM partman_meta.audit_log "
        "WHERE operation = 'drop' GROUP BY 1, 2"
    ).fetchall()
    assert audit == [("drop", "ok", 4)]


def test_a_partition_holding_a_row_inside_the_window_stays_the_others_go(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    with partman.Manager(dsn, clock=clock) as m:
        ops = _expired(m, clock, 4)
        assert len(ops) == 3
        # the middle one's cutoff moved inside its range, and a row after it: bounds that lie
        middle = ops[1]
        assert middle.lower is not None
        late = dt.datetime.fromisoformat(str(middle.lower)) + dt.timedelta(hours=20)
        conn.execute(
            "INSERT INTO convoy.events (id, project_id, created_at) VALUES ('x', 'p1', %s)",
            (late,),
        )
        risky: list[Operation] = [
            ops[0],
            dataclasses.replace(middle, cutoff=late - dt.timedelta(hours=1)),
            ops[2],
        ]
        with psycopg.connect(dsn, autocommit=True) as c:
            results = Executor(m.config, m.logger).apply(c, risky, RUN)
    assert [r.outcome for r in results] == ["skipped", "ok", "ok"]  # skips are reported first
    assert results[0].operation.partition_name == middle.partition_name
    assert "1 row(s) at or after the retention cutoff" in (results[0].error or "")
    names = [name for name, _ in partitions(conn, "convoy", "events")]
    assert middle.partition_name in names and ops[0].partition_name not in names
    assert conn.execute("SELECT id FROM convoy.events").fetchall() == [("x",)]


def test_a_partition_renamed_during_a_batch_is_left_alone_the_others_go(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    with partman.Manager(dsn, clock=clock) as m:
        ops = _expired(m, clock, 4)
        victim = ops[1].partition_name

        def rename(name: str, op: Operation) -> None:
            if name == "check" and op is not None and not m._executor.__dict__.get("done"):
                m._executor.__dict__["done"] = True
                conn.execute(
                    sql.SQL("ALTER TABLE {} RENAME TO kept_by_hand").format(
                        sql.Identifier("convoy", victim)
                    )
                )

        m._executor.on_step = rename
        report = m.maintain()
    skipped = [r for r in report.results if r.outcome == "skipped"]
    assert len(report.dropped) == 2
    assert [r.operation.partition_name for r in skipped] == [victim]
    assert "changed since the plan was made" in (skipped[0].error or "")
    assert conn.execute("SELECT to_regclass('convoy.kept_by_hand') IS NOT NULL").fetchone() == (
        True,
    )


def test_a_detach_cut_short_in_a_batch_is_finalized_and_the_rest_done_next_pass(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    config = partman.Config(lock_timeout=dt.timedelta(milliseconds=200), max_retries=0)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        ops = _expired(m, clock, 5)
        assert len(ops) == 4
        ready, release = threading.Event(), threading.Event()

        def reader() -> None:  # an old snapshot using the parent: DETACH's 2nd step waits
            with psycopg.connect(dsn) as app:
                app.execute("SELECT count(*) FROM convoy.events")
                ready.set()
                release.wait(20)

        thread = threading.Thread(target=reader)
        thread.start()
        assert ready.wait(10)
        report = m.maintain()
        release.set()
        thread.join()
        retire = [r for r in report.results if r.operation.kind == "drop"]
        assert [r.outcome for r in retire] == ["skipped"] * 4, str(report)
        assert "lock not available" in (retire[0].error or "")
        pending = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'convoy.events'::regclass "
            "AND inhdetachpending"
        ).fetchone()
        assert pending == (1,)
        report = m.maintain()
        assert report.ok and len(report.dropped) == 4, str(report)
        assert len(m.plan()) == 0
    assert len(partitions(conn, "convoy", "events")) == 2


def test_with_detach_concurrently_off_a_batch_is_one_short_locked_transaction(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    config = partman.Config(detach_concurrently=False)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        ops = _expired(m, clock, 5)
        assert len(ops) == 4
        steps: list[str] = []
        m._executor.on_step = lambda name, op: steps.append(name)
        report = m.maintain()
    assert report.ok and len(report.dropped) == 4, str(report)
    assert steps == ["create"] + ["check"] * 4 + ["detach", "finish"] * 4
    assert len(partitions(conn, "convoy", "events")) == 2
    assert conn.execute("SELECT count(*) FROM partman_meta.partitions").fetchone() == (2,)


def test_with_detach_concurrently_off_an_open_reader_skips_the_parent_instead_of_queueing(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    config = partman.Config(detach_concurrently=False)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        _expired(m, clock, 4)
        with psycopg.connect(dsn) as app:  # a transaction left open after reading the table
            app.execute("SELECT count(*) FROM convoy.events")
            pid = app.info.backend_pid
            report = m.maintain()
            app.rollback()
        retire = [r for r in report.results if r.operation.kind == "drop"]
        assert [r.outcome for r in retire] == ["skipped"] * 3
        assert f"pid {pid}" in (retire[0].error or "")
        assert len(m.maintain().dropped) == 3  # once the reader is gone
