"""The LIST shape's tenants go many to a transaction: each tenant's work is a subtransaction of
its own, so one tenant whose partition is locked is rolled back alone (and named), a crash in
the middle of a batch leaves every tenant's work wholly done or undone, and the round trips
of a pass grow with the batches, not with the tenants."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

import partman
from partman.db import ddl

Conn = psycopg.Connection[Any]

T0 = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)
WORKER = Path(__file__).with_name("crash_worker.py")


def _table(**overrides: Any) -> partman.Table:
    fields: dict[str, Any] = {
        "name": "jobs",
        "schema": "s",
        "tenant_id": "a",
        "tenant_id_column": "tenant",
        "tenant_partitioning": "list",
        "partition_by": "at",
        "partition_count": 1,
        **overrides,
    }
    return partman.Table(**fields)


def _set_up(dsn: str, conn: Conn, tenants: list[str], **overrides: Any) -> partman.Table:
    """The LIST root, and every tenant's partition with its first days (the pass at T0)."""
    conn.execute("CREATE SCHEMA s")
    conn.execute(
        "CREATE TABLE s.jobs (tenant text NOT NULL, at timestamptz NOT NULL, v int) "
        "PARTITION BY LIST (tenant)"
    )
    table = _table(**overrides)
    with partman.Manager(dsn, clock=partman.SimulatedClock(T0)) as m:
        m.add_managed_table(table)
        m.register_tenants(table, tenants)
        report = m.maintain()
        assert report.ok, str(report)
    return table


def _sub_parent(conn: Conn, tenant: str) -> str:
    row = conn.execute(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 's.jobs'::regclass "
        "AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%%L)', %s::text)",
        (tenant,),
    ).fetchone()
    assert row is not None, tenant
    return str(row[0])


def _days(conn: Conn, tenant: str) -> int:
    """The tenant's periods (partitions of its own partition)."""
    row = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass",
        (f"s.{_sub_parent(conn, tenant)}",),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _hold(dsn: str, statement: sql.Composable, ready: threading.Event, seconds: float) -> None:
    """Another session: a transaction that takes a lock, then stays busy (active, so the
    look for lock holders does not see it until it is older than the lock budget)."""
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute("BEGIN")
        other.execute(statement)
        ready.set()
        other.execute("SELECT pg_sleep(%s)", (seconds,))
        other.execute("ROLLBACK")


def test_a_tenant_whose_partition_is_locked_mid_batch_is_skipped_and_named_and_the_others_commit(
    dsn: str, conn: Conn
) -> None:
    tenants = ["a", "b", "c", "d", "e"]
    _set_up(dsn, conn, tenants)
    before = {t: _days(conn, t) for t in tenants}
    conn.execute(
        "INSERT INTO s.jobs SELECT t, %s, g FROM unnest(%s::text[]) t, generate_series(1, 20) g",
        (T1, tenants),
    )
    locked = _sub_parent(conn, "c")
    ready = threading.Event()
    holder = threading.Thread(
        target=_hold,
        args=(
            dsn,
            sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier("s", locked)),
            ready,
            6,
        ),
    )
    holder.start()
    try:
        assert ready.wait(10)
        config = partman.Config(
            lock_timeout=dt.timedelta(seconds=2), max_retries=0, detach_concurrently=False
        )
        with partman.Manager(dsn, config=config, clock=partman.SimulatedClock(T1)) as m:
            report = m.maintain()
    finally:
        holder.join()
    by_tenant = {str(r.operation.tenant): r for r in report.results}
    assert {t: r.outcome for t, r in by_tenant.items()} == {
        "a": partman.Outcome.OK,
        "b": partman.Outcome.OK,
        "c": partman.Outcome.SKIPPED,
        "d": partman.Outcome.OK,
        "e": partman.Outcome.OK,
    }, report.results
    skipped = by_tenant["c"]
    assert locked in (skipped.error or ""), skipped.error
    assert "ShareLock" in (skipped.error or "") or "lock_timeout" in (skipped.error or "")
    assert {t: _days(conn, t) - before[t] for t in tenants} == {
        "a": 1,
        "b": 1,
        "c": 0,
        "d": 1,
        "e": 1,
    }
    if conn.info.server_version >= 180000:  # one ANALYZE ONLY for the batch's parents
        analyzed = conn.execute(
            "SELECT c.relname::text FROM pg_class c WHERE c.relname = ANY(%s) AND EXISTS "
            "(SELECT FROM pg_statistic s WHERE s.starelid = c.oid) ORDER BY 1",
            ([_sub_parent(conn, t) for t in tenants],),
        ).fetchall()
        assert [r[0] for r in analyzed] == sorted(_sub_parent(conn, t) for t in "abde")
    # the committed tenants' records came with their DDL; the skipped one's did not
    recorded = conn.execute(
        "SELECT tenant_id, count(*) FROM partman_meta.partitions "
        "WHERE parent_name <> 'jobs' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert {t: int(n) for t, n in recorded} == {t: _days(conn, t) for t in tenants}


def test_a_tenant_held_by_an_idle_transaction_is_skipped_naming_it_before_the_batch_starts(
    dsn: str, conn: Conn
) -> None:
    tenants = ["a", "b", "c"]
    _set_up(dsn, conn, tenants)
    locked = _sub_parent(conn, "b")
    with psycopg.connect(dsn, application_name="the-app") as other:
        other.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier("s", locked)))
        pid = other.info.backend_pid
        config = partman.Config(max_retries=0)
        started = time.monotonic()
        with partman.Manager(dsn, config=config, clock=partman.SimulatedClock(T1)) as m:
            report = m.maintain()
        elapsed = time.monotonic() - started
        other.rollback()
    by_tenant = {str(r.operation.tenant): r for r in report.results}
    assert by_tenant["b"].skip_reason == partman.SkipReason.LOCK_HOLDER, by_tenant["b"]
    assert f"pid {pid} (the-app" in (by_tenant["b"].error or "")
    assert by_tenant["a"].outcome == by_tenant["c"].outcome == partman.Outcome.OK
    # the look saw it first: nothing waited for the lock (not a timing check: far from it)
    assert elapsed < 30


def _audit_days(conn: Conn) -> dict[str, int]:
    return {
        t: _days(conn, t)
        for (t,) in conn.execute("SELECT tenant_id FROM partman_meta.tenants ORDER BY 1").fetchall()
    }


def test_a_pass_killed_in_the_middle_of_a_batched_transaction_is_repaired_by_the_next_one(
    dsn: str, conn: Conn
) -> None:
    """crash_worker.py runs the pass at T1; tenant c's advisory lock is held, so the batch's
    transaction waits in c's subtransaction after a's and b's are done, and the worker is
    SIGKILLed then. Nothing of the batch stays (the server rolls it back once it sees the
    client gone); the next pass makes every tenant's day, with its records."""
    tenants = ["a", "b", "c", "d"]
    _set_up(dsn, conn, tenants)
    before = {t: _days(conn, t) for t in tenants}
    key = ddl.parent_key(f"s.{_sub_parent(conn, 'c')}")
    # the server notices a dead client while the batch waits for c's lock, not only when it
    # next writes to it (by then the batch would have committed without c)
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET client_connection_check_interval = '100ms'").format(
            sql.Identifier(conn.info.dbname)
        )
    )
    with psycopg.connect(dsn, autocommit=True) as other:
        other.execute(sql.SQL("SELECT pg_advisory_lock({})").format(key))
        worker = subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "--dsn",
                dsn,
                "--now",
                T1.isoformat(),
                "--lock-timeout-ms",
                "20000",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            waiting = None
            deadline = time.monotonic() + 60
            while waiting is None and time.monotonic() < deadline:
                waiting = other.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory' "
                    "AND query LIKE '%DO %'"
                ).fetchone()
                time.sleep(0.05)
            assert waiting is not None, "the batch never waited in c's subtransaction"
            # a's and b's work is done inside the open transaction: their locks say so
            held = other.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory'",
                (waiting[0],),
            ).fetchone()
            assert held is not None and int(held[0]) >= 2
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
        assert worker.stdout is not None
        events = [json.loads(line) for line in worker.stdout.read().splitlines() if line]
        assert not any(e["event"] == "report" for e in events)
        # the server rolls the killed connection's transaction back once it sees it gone
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            gone = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (waiting[0],)
            ).fetchone()
            if gone is not None and int(gone[0]) == 0:
                break
            time.sleep(0.05)
        assert gone is not None and int(gone[0]) == 0, "the killed pass's backend stayed"
        assert {t: _days(conn, t) for t in tenants} == before  # wholly undone
        other.execute(sql.SQL("SELECT pg_advisory_unlock({})").format(key))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        assert report.ok, str(report)
        assert m.maintain().results == []  # converged: nothing left to do
    assert {t: _days(conn, t) - before[t] for t in tenants} == {t: 1 for t in tenants}
    recorded = conn.execute(
        "SELECT tenant_id, count(*) FROM partman_meta.partitions "
        "WHERE parent_name <> 'jobs' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert {t: int(n) for t, n in recorded} == _audit_days(conn)


class _Counting(psycopg.Connection[Any]):
    trips = 0

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        _Counting.trips += 1
        return super().wait(*args, **kwargs)


def test_a_day_for_600_list_tenants_takes_round_trips_per_batch_not_per_tenant(
    dsn: str, conn: Conn
) -> None:
    tenants = [f"t{i:05d}" for i in range(600)]
    _set_up(dsn, conn, tenants)
    pool: ConnectionPool[Any] = ConnectionPool(
        dsn, connection_class=_Counting, min_size=1, kwargs={"autocommit": True}, open=True
    )
    try:
        with partman.Manager(pool, clock=partman.SimulatedClock(T1)) as m:
            m.init()
            _Counting.trips = 0
            report = m.maintain()
            trips = _Counting.trips
    finally:
        pool.close()
    assert report.ok, str(report)
    assert len(report.created) == len(tenants) + 1  # and the table's own tenant, "a"
    # parent by parent it was 3 a tenant (1,803); in batches of up to 60 it is a few a batch
    assert trips < 100, trips
