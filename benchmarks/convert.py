"""Partition a live table (issue 15): `partman convert` of an N-row table while writers run,
against the plain-SQL floor `INSERT INTO twin SELECT * FROM source` (one statement, no writers).

    .venv/bin/python benchmarks/convert.py [--rows 2000000] [--writers 2] [--quick]

The table: `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`, `placed_at timestamptz`
(indexed), an int, a numeric(12,2) and a text column; rows spread over ~2,000 hours. It is
converted to RANGE (placed_at) by month (`--extend-unique`: the primary key becomes (id,
placed_at)). On PostgreSQL 18 (embedded):

* plain SQL: in a database of its own holding the same rows, the twin made by convert's first
  step (the same partitions and indexes), then `INSERT INTO twin OVERRIDING SYSTEM VALUE SELECT
  * FROM source` timed alone: the floor for moving the rows, with nothing captured or checked;
* partman convert: all five steps, with W writer threads doing INSERT / UPDATE / DELETE on the
  table at a steady rate for the whole time (the swap included); each step timed, the copy's
  rows/s, the writers' operations and the longest one any writer waited.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import threading
import time
from typing import Any

import benchlib as b
import psycopg

import partman
from partman.model.convert import Step

FILL_SQL = """
CREATE TABLE public.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    placed_at timestamptz NOT NULL,
    customer int NOT NULL,
    total numeric(12, 2),
    note text
);
INSERT INTO public.orders (placed_at, customer, total, note)
SELECT now() - (g %% 2000) * interval '1 hour', g %% 9973, (g %% 100000) / 100.0,
       md5(g::text) || repeat('x', g %% 40)
  FROM generate_series(1, %(rows)s) g;
CREATE INDEX ON public.orders (placed_at);
VACUUM ANALYZE public.orders;
"""

TABLE = partman.Table(name="orders", partition_by="placed_at", partition_interval="1 month")
CONFIG = partman.Config(lock_timeout=dt.timedelta(milliseconds=250))


def fill(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in FILL_SQL.split(";"):
            if statement.strip():
                conn.execute(statement, {"rows": rows} if "%(rows)s" in statement else None)


def floor(dsn: str) -> float:
    partman.Converter(dsn, config=CONFIG).convert(TABLE, extend_unique=True, until=Step.TWIN)
    with psycopg.connect(dsn, autocommit=True) as conn:
        seconds, _ = b.timed(
            lambda: conn.execute(
                "INSERT INTO public.orders_partman_new OVERRIDING SYSTEM VALUE "
                "SELECT * FROM public.orders"
            )
        )
    return seconds


class Writers:
    """Threads doing one INSERT, UPDATE or DELETE every `period` seconds each."""

    def __init__(self, dsn: str, threads: int, period: float, top: int) -> None:
        self.dsn, self.period, self.top = dsn, period, top
        self.stop = threading.Event()
        self.ops = 0
        self.errors: list[str] = []
        self.longest = 0.0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def run(self, n: int) -> None:
        rng = random.Random(n)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                kind = rng.choice(["insert", "update", "update", "delete"])
                key = rng.randint(1, self.top)
                started = time.perf_counter()
                try:
                    if kind == "insert":
                        conn.execute(
                            "INSERT INTO public.orders (placed_at, customer, total, note) "
                            "VALUES (now(), %s, 1, 'w')",
                            (n,),
                        )
                    elif kind == "update":
                        conn.execute(
                            "UPDATE public.orders SET total = total + 1 WHERE id = %s", (key,)
                        )
                    else:
                        conn.execute("DELETE FROM public.orders WHERE id = %s", (key,))
                except psycopg.Error as error:
                    with self.lock:
                        self.errors.append(str(error))
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.ops += 1
                    self.longest = max(self.longest, elapsed)
                time.sleep(self.period)


def convert(dsn: str, rows: int, writers: int) -> dict[str, Any]:
    marks: list[tuple[str, float]] = []

    def hook(point: str) -> None:
        if point in {s.value for s in Step}:  # a step starts (inner points have a colon)
            marks.append((point, time.perf_counter()))

    converter = partman.Converter(dsn, config=CONFIG, on_step=hook)
    with Writers(dsn, writers, 0.002, rows) as w:
        time.sleep(0.5)
        started = time.perf_counter()
        report = converter.convert(TABLE, extend_unique=True)
        ended = time.perf_counter()
        time.sleep(0.5)
    steps: dict[str, float] = {}
    for i, (point, at) in enumerate(marks):
        until = marks[i + 1][1] if i + 1 < len(marks) else ended
        steps[point] = until - at
    return {
        "total": ended - started,
        "steps": steps,
        "copied": report.rows_copied,
        "swap_ms": report.swap_ms,
        "ops": w.ops,
        "errors": w.errors,
        "longest": w.longest,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the table")
    parser.add_argument("--writers", type=int, default=2, help="writer threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    notes: list[str] = []
    with b.server("18") as srv:
        notes.append(srv.describe())
        b.progress(f"plain SQL floor: {rows:,} rows")
        dsn = b.create_database(srv, "bench_convert_floor")
        fill(dsn, rows)
        plain = floor(dsn)
        b.drop_database(srv, "bench_convert_floor")
        b.progress(f"partman convert: {rows:,} rows, {args.writers} writers")
        dsn = b.create_database(srv, "bench_convert")
        fill(dsn, rows)
        r = convert(dsn, rows, args.writers)
        b.drop_database(srv, "bench_convert")
    copy = r["steps"].get("copy", 0.0)
    out = [
        ["plain SQL", "INSERT INTO twin SELECT * FROM source (no writers)", b.secs(plain),
         f"{rows / plain:,.0f}", "1.00x", "-", "-"],
        ["partman convert: copy", "keyset batches of 10,000 + replay, writers running",
         b.secs(copy), f"{r['copied'] / copy:,.0f}" if copy else "-", b.ratio(copy, plain),
         f"{r['ops']:,}", f"{r['longest'] * 1000:.0f} ms"],
        ["partman convert: all", "twin, capture, copy, verify, swap", b.secs(r["total"]),
         f"{rows / r['total']:,.0f}", b.ratio(r["total"], plain), "", ""],
    ]  # fmt: skip
    notes.append(
        "steps: "
        + ", ".join(f"{k} {b.secs(v)}" for k, v in r["steps"].items())
        + f"; the swap's locked transaction {r['swap_ms']:.0f} ms"
    )
    notes.append(
        f"{args.writers} writers, one INSERT/UPDATE/DELETE every 2 ms each, for the whole "
        f"conversion; {len(r['errors'])} writer error(s); longest = the slowest single write; "
        f"lock_timeout {CONFIG.lock_timeout.total_seconds() * 1000:.0f} ms"
    )
    b.print_table(
        f"10. Partition a live table: convert {rows:,} rows against INSERT ... SELECT",
        ["who", "what", "wall", "rows/s", "vs plain", "writes", "longest write"],
        out,
        notes,
    )
    return 1 if r["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
