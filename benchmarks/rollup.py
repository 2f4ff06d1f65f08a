"""Roll-ups (issue 16, pg_partman #466): a month of daily partitions merged into one, by
partman and by plain SQL in one transaction, while an application writes today's rows and
reads the table.

    .venv/bin/python benchmarks/rollup.py [--rows 1000000] [--server 18|15] [--quick]

One table, RANGE (created_at) by day, a primary key and a jsonb column; January holds R rows
spread over its 31 days. Two application threads run all along: one INSERTs today's rows one
by one, one runs `SELECT count(*)` over the last hour; each records its longest wait.

* plain SQL: what one writes by hand (pg_partman has no roll-up): in one transaction, `LOCK
  TABLE parent`, DETACH the 31 days, `CREATE TABLE (LIKE ...)`, `INSERT ... SELECT` them all,
  ATTACH it, DROP them;
* partman: the pass in which January is past `rollup_after` (`maintain()`): build detached,
  copy day by day, swap in one transaction under `lock_timeout` (250 ms). "swap transaction"
  is from its step to the end of the pass: the counts under the days' EXCLUSIVE lock (writes
  to January wait, nothing else), then DROP + ATTACH + commit under the parent's ACCESS
  EXCLUSIVE lock, then `ANALYZE ONLY` of the parent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

T0 = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 5, 5, 12, tzinfo=dt.UTC)

TABLE_SQL = """
CREATE TABLE events (created_at timestamptz NOT NULL, n bigint NOT NULL, doc jsonb,
    PRIMARY KEY (created_at, n)) PARTITION BY RANGE (created_at)
"""
FILL_SQL = """
INSERT INTO events SELECT '2026-01-01'::timestamptz + (g %% 2678400) * interval '1 second',
    g, jsonb_build_object('g', g, 'k', 'kind ' || (g %% 7)) FROM generate_series(1, %s) g
"""


def table(rollup: bool) -> partman.Table:
    return partman.Table(
        name="events",
        partition_by="created_at",
        partition_count=45,
        rollup_after="90 days" if rollup else None,
        rollup_interval="1 month" if rollup else None,
    )


def prepare(dsn: str, rows: int) -> None:
    """Daily partitions from January 1 to mid-February, January filled, and today's."""
    clock = partman.SimulatedClock(T0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS events")
        conn.execute("DROP SCHEMA IF EXISTS partman_meta CASCADE")
        conn.execute(TABLE_SQL)
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(table(False))
        assert m.maintain().ok
        clock.set(LATER)
        assert m.maintain().ok
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FILL_SQL, (rows,))
        conn.execute("VACUUM ANALYZE events")


@contextmanager
def application(dsn: str) -> Iterator[dict[str, Any]]:
    """An inserter and a reader of today's rows, each timing its longest wait."""
    stop = threading.Event()
    out: dict[str, Any] = {"insert": 0.0, "select": 0.0, "inserts": 0, "selects": 0}

    def loop(kind: str, work: Callable[[psycopg.Connection[Any], int], None]) -> None:
        with psycopg.connect(dsn, autocommit=True) as app:
            i = 0
            while not stop.is_set():
                i += 1
                t = time.perf_counter()
                work(app, i)
                out[kind] = max(out[kind], time.perf_counter() - t)
                out[kind + "s"] += 1

    def insert(app: psycopg.Connection[Any], i: int) -> None:
        app.execute(
            "INSERT INTO events VALUES (%s, %s, NULL)", (LATER + dt.timedelta(seconds=i), -i)
        )

    def select(app: psycopg.Connection[Any], i: int) -> None:
        app.execute("SELECT count(*) FROM events WHERE created_at >= %s", (LATER,)).fetchone()

    threads = [
        threading.Thread(target=loop, args=("insert", insert)),
        threading.Thread(target=loop, args=("select", select)),
    ]
    for th in threads:
        th.start()
    time.sleep(0.3)
    try:
        yield out
    finally:
        time.sleep(0.2)
        stop.set()
        for th in threads:
            th.join()


def plain(dsn: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        days = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass AND c.relname LIKE 'events_p202601%' "
                "ORDER BY 1"
            )
        ]
        tables = [sql.Identifier(d) for d in days]
        started = time.perf_counter()
        with conn.transaction():
            conn.execute("LOCK TABLE events")
            for t in tables:
                conn.execute(sql.SQL("ALTER TABLE events DETACH PARTITION {}").format(t))
            conn.execute("CREATE TABLE events_2026_01 (LIKE events INCLUDING ALL)")
            each = [sql.SQL("SELECT * FROM {}").format(t) for t in tables]
            union = sql.SQL(" UNION ALL ").join(each)
            conn.execute(sql.SQL("INSERT INTO events_2026_01 {}").format(union))
            conn.execute(
                "ALTER TABLE events ATTACH PARTITION events_2026_01 "
                "FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-02-01 00:00+00')"
            )
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(tables)))
        return time.perf_counter() - started


def with_partman(dsn: str) -> tuple[float, float]:
    """(the whole pass, the swap: from its step to the end of the pass)."""
    marks: dict[str, float] = {}

    def on_step(step: str, op: object) -> None:
        marks.setdefault(step, time.perf_counter())

    clock = partman.SimulatedClock(LATER)
    with partman.Manager(dsn, clock=clock, on_step=on_step) as m:
        m.add_managed_table(table(True))
        started = time.perf_counter()
        report = m.maintain()
        done = time.perf_counter()
        assert report.ok, str(report)
    return done - started, done - marks["rollup_swap"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in January")
    parser.add_argument("--server", default="18", help="18 (embedded) or 15 (Debian)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = min(args.rows, 3_100)
    rows_out = []
    with b.server(args.server) as srv:
        dsn = b.create_database(srv, "bench_rollup")
        prepare(dsn, args.rows)
        with application(dsn) as app:
            seconds = plain(dsn)
        rows_out.append(["plain SQL, one transaction", b.secs(seconds), "the whole of it",
                         f"{app['insert']:.3f} s", f"{app['select']:.3f} s"])  # fmt: skip
        prepare(dsn, args.rows)
        with application(dsn) as app:
            seconds, swap = with_partman(dsn)
        rows_out.append(["partman roll-up", b.secs(seconds), b.secs(swap),
                         f"{app['insert']:.3f} s", f"{app['select']:.3f} s"])  # fmt: skip
        b.drop_database(srv, "bench_rollup")
        notes = [srv.describe()]
    b.print_table(
        f"11. Roll-up of 31 daily partitions ({args.rows:,} rows) into one monthly partition",
        ["how", "total", "swap transaction", "longest app insert", "longest app select"],
        rows_out,
        notes,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
