"""Indexes (issue 16): partman's index build against a plain CREATE INDEX on the parent, while an
application inserts.

    .venv/bin/python benchmarks/indexes.py [--partitions 50] [--rows 20000] [--lock-timeout 250]

One table, RANGE (created_at) by day, P partitions of R rows each (tenant_id, created_at,
payload), on PostgreSQL 18 (embedded). Each contestant builds the same index,
`(tenant_id, created_at)`, on the same data (the index is dropped between them), while an
application thread inserts one row at a time through the parent (autocommit, into every
partition in turn) and times each insert:

* plain SQL: `CREATE INDEX ... ON parent (...)`: one statement, SHARE lock on the parent and
  every partition until it commits, so every insert waits for the whole build;
* partman: `Manager.create_index` (`partman index create`): `CREATE INDEX ... ON ONLY` the
  parent, then per partition `CREATE INDEX CONCURRENTLY` + `ALTER INDEX ... ATTACH PARTITION`,
  each step under the lock budget (`--lock-timeout`, default partman's 250 ms).

The table shows each build's wall time, the longest wait and the 99th percentile an insert saw
during it, and how many inserts went in while it ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import threading
import time
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

COLUMNS = ("tenant_id", "created_at")


def make_table(dsn: str, partitions: int, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute(
            "CREATE TABLE app.events (id bigserial, tenant_id int NOT NULL, "
            "created_at timestamptz NOT NULL, payload text) PARTITION BY RANGE (created_at)"
        )
        for d in range(partitions):
            lower = b.START.date() + dt.timedelta(days=d)
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF app.events FOR VALUES FROM ({}) TO ({})"
                ).format(
                    sql.Identifier("app", f"events_p{d:03d}"),
                    sql.Literal(f"{lower}T00:00:00Z"),
                    sql.Literal(f"{lower + dt.timedelta(days=1)}T00:00:00Z"),
                )
            )
        for d in range(partitions):  # one partition a statement: memory stays small
            lower = b.START.date() + dt.timedelta(days=d)
            conn.execute(
                "INSERT INTO app.events (tenant_id, created_at, payload) "
                "SELECT (g * 7919) %% 1000, %s::timestamptz + (g %% 86400) * interval '1 second', "
                "md5(g::text) FROM generate_series(1, %s) g",
                (f"{lower}T00:00:00Z", rows),
            )
        conn.execute("VACUUM ANALYZE app.events")


class InsertLoop:
    """The application: one INSERT at a time through the parent, each timed."""

    def __init__(self, dsn: str, partitions: int) -> None:
        self.dsn = dsn
        self.partitions = partitions
        self.waits: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                n = 0
                while not self._stop.is_set():
                    n += 1
                    day = b.START + dt.timedelta(days=n % self.partitions, seconds=n % 86400)
                    started = time.perf_counter()
                    conn.execute(
                        "INSERT INTO app.events (tenant_id, created_at, payload) "
                        "VALUES (%s, %s, 'app')",
                        (n % 1000, day),
                    )
                    self.waits.append(time.perf_counter() - started)
                    time.sleep(0.002)  # ~a few hundred inserts a second
        except BaseException as error:
            self.errors.append(error)

    def __enter__(self) -> InsertLoop:
        self._thread.start()
        while not self.waits and not self.errors:
            time.sleep(0.005)
        self.waits.clear()  # the connection's first insert is not the build's doing
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.errors:
            raise RuntimeError(f"the insert loop failed: {self.errors[0]}")


def p99(values: list[float]) -> float:
    if len(values) < 2:
        return max(values, default=0.0)
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def drop_index(dsn: str, name: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("app", name)))


def run_plain(dsn: str, partitions: int) -> dict[str, Any]:
    with InsertLoop(dsn, partitions) as app, psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("CREATE INDEX plain_idx ON app.events (tenant_id, created_at)")
        seconds = time.perf_counter() - started
    drop_index(dsn, "plain_idx")
    return {"seconds": seconds, "waits": list(app.waits), "valid": True, "steps": 1}


def run_partman(dsn: str, partitions: int, lock_timeout: dt.timedelta) -> dict[str, Any]:
    import logging

    logger = logging.getLogger("partman.bench")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    config = partman.Config(lock_timeout=lock_timeout)
    with (
        partman.Manager(dsn, config=config, logger=logger) as manager,
        InsertLoop(dsn, partitions) as app,
    ):
        started = time.perf_counter()
        report = manager.create_index("app.events", list(COLUMNS), name="partman_idx")
        seconds = time.perf_counter() - started
    drop_index(dsn, "partman_idx")
    return {
        "seconds": seconds,
        "waits": list(app.waits),
        "valid": report.valid,
        "steps": len(report.results),
        "skipped": report.counts()["skipped"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=50)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per partition")
    parser.add_argument("--lock-timeout", type=int, default=250, help="partman's, in ms")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    partitions, rows = (5, 2_000) if args.quick else (args.partitions, args.rows)
    budget = dt.timedelta(milliseconds=args.lock_timeout)
    out: list[list[Any]] = []
    notes: list[str] = []
    with b.server("18") as srv:
        notes.append(srv.describe())
        dsn = b.create_database(srv, "bench_indexes")
        b.progress(f"{partitions} partitions x {rows:,} rows")
        make_table(dsn, partitions, rows)
        results: dict[str, dict[str, Any]] = {}
        b.progress("plain CREATE INDEX on the parent")
        results["plain"] = run_plain(dsn, partitions)
        b.progress("partman create_index")
        results["partman"] = run_partman(dsn, partitions, budget)
        b.drop_database(srv, "bench_indexes")
    plain = results["plain"]["seconds"]
    for key, who, shape in (
        ("plain", "plain SQL", "CREATE INDEX ON parent (one statement)"),
        ("partman", "partman create_index",
         "ON ONLY, then CONCURRENTLY + ATTACH each"),
    ):  # fmt: skip
        r = results[key]
        out.append(
            [
                who,
                shape,
                r["steps"],
                b.secs(r["seconds"]),
                b.ratio(r["seconds"], plain),
                b.secs(max(r["waits"], default=0.0)),
                b.secs(p99(r["waits"])),
                f"{len(r['waits']):,}",
                "yes" if r["valid"] else "no",
            ]
        )
    longest = max(results["partman"]["waits"], default=0.0)
    notes.append(
        f"{partitions} partitions x {rows:,} rows ({partitions * rows:,} rows), index "
        f"({', '.join(COLUMNS)}); partman's lock_timeout {args.lock_timeout} ms"
    )
    notes.append(
        f"longest insert wait during partman's build: {b.secs(longest)}, within the lock "
        f"budget ({args.lock_timeout} ms): " + b.verdict(longest <= budget.total_seconds())
    )
    b.print_table(
        "8. Indexes: building an index on a partitioned table while the application inserts",
        ["who", "shape", "steps", "wall", "vs plain", "longest insert wait", "p99 insert wait",
         "inserts during", "valid"],
        out,
        notes,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
