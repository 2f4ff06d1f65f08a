"""Roll-ups against a real server (issue 16, pg_partman #466): daily partitions older than
rollup_after merged into monthly ones, built detached, copied while live, swapped in one short
transaction under the lock budget; late rows, crashes at every step, and retention after."""

from __future__ import annotations

import datetime as dt
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
