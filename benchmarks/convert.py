"""Partition a live table (issue 15): `partman convert` of an N-row table while writers run,
beside pgslice's shape on the same table with the same writers, and the plain-SQL floor
`INSERT INTO twin SELECT * FROM source` (one statement, no writers); and the reverse,
`partman unpartition` of the same rows held by a partitioned table managed by partman, beside
its floor `INSERT INTO plain SELECT * FROM parted`.

    .venv/bin/python benchmarks/convert.py [--rows 2000000] [--writers 2] [--quick]
        [--only convert|unpartition]

The table: `id bigserial PRIMARY KEY`, `placed_at timestamptz` (indexed), an int, a
numeric(12,2) and a text column; rows spread over ~2,000 hours. It becomes RANGE (placed_at)
by month. (A serial, not an identity column: pgslice's `LIKE` does not carry an identity, and
its swap moves the ownership of a serial's sequence.) On PostgreSQL 18 (embedded), each run in
a database of its own holding the same rows:

* plain SQL: the twin made by convert's first step (the same partitions and indexes), then
  `INSERT INTO twin SELECT * FROM source` timed alone: the floor for moving the rows, with
  nothing captured or checked, no writers;
* partman convert: all five steps (`--extend-unique`: the primary key becomes (id,
  placed_at));
* pgslice's shape: its steps as the SQL it runs (`pgslice_shape`, below), pgslice itself being a
  Ruby gem that is not installed here.

For the last two, W writer threads do INSERT / UPDATE / DELETE at a steady rate for the whole
time, each in one transaction with the same change to a reference table (`orders_ref`, a
plain copy made before the writers start). Afterwards the converted table is compared with the
reference row by row: the rows that differ are changes the conversion lost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman
from partman.model.convert import Step

FILL_SQL = """
CREATE TABLE public.orders (
    id bigserial PRIMARY KEY,
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
REFERENCE_SQL = """
CREATE TABLE public.orders_ref AS SELECT * FROM public.orders;
ALTER TABLE public.orders_ref ADD PRIMARY KEY (id);
"""
COLUMNS = "id, placed_at, customer, total, note"
DIFF_SQL = """
SELECT count(*) FILTER (WHERE o.id IS NULL), count(*) FILTER (WHERE r.id IS NULL),
       count(*) FILTER (WHERE o.id IS NOT NULL AND r.id IS NOT NULL)
  FROM public.orders o FULL JOIN public.orders_ref r ON r.id = o.id
 WHERE o.id IS NULL OR r.id IS NULL
    OR (o.placed_at, o.customer, o.total, o.note) IS DISTINCT FROM
       (r.placed_at, r.customer, r.total, r.note)
"""

TABLE = partman.Table(name="orders", partition_by="placed_at", partition_interval="1 month")
PARTED_SQL = """
CREATE TABLE public.orders (
    id bigserial,
    placed_at timestamptz NOT NULL,
    customer int NOT NULL,
    total numeric(12, 2),
    note text,
    PRIMARY KEY (id, placed_at)
) PARTITION BY RANGE (placed_at);
CREATE INDEX ON public.orders (placed_at)
"""
UNPARTITION_CONFIG = partman.Config(lock_timeout=dt.timedelta(milliseconds=250), max_retries=10)
"""convert's lock budget, with more retries: the writers' UPDATEs and DELETEs by id probe
every partition, so the swap's look for holders finds one in the middle of a transaction more
often than on an ordinary table (at the default 3 it gave up, nothing changed, on a busy
machine)."""
PARTED = partman.Table(
    name="orders",
    partition_by="placed_at",
    partition_interval="1 month",
    retention_period="120 days",  # the oldest row is ~84 days old: backfilled, never dropped
    backfill=True,
)
CONFIG = partman.Config(lock_timeout=dt.timedelta(milliseconds=250))
PGSLICE_BATCH = 10_000  # `pgslice fill --batch-size` default
PGSLICE_LOCK_TIMEOUT = "5s"  # `pgslice swap --lock-timeout` default


def fill(dsn: str, rows: int, reference: bool, parted: bool = False) -> None:
    """The table (`parted`: partitioned by month, managed by partman), its rows, and the
    writers' reference copy."""
    statements = FILL_SQL.split(";")
    if parted:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(PARTED_SQL)
        with partman.Manager(dsn, config=CONFIG) as manager:
            manager.add_managed_table(PARTED)
            manager.maintain()
        statements = statements[1:]  # the table is there: the rows, the index, ANALYZE
        statements = [s for s in statements if "CREATE INDEX" not in s]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements + (REFERENCE_SQL.split(";") if reference else []):
            if statement.strip():
                conn.execute(statement, {"rows": rows} if "%(rows)s" in statement else None)


def floor(dsn: str, unpartition: bool = False) -> float:
    """The rows moved by one INSERT ... SELECT into the twin made by step 1 (the same indexes),
    with nothing captured or checked and no writers."""
    converter = partman.Converter(dsn, config=CONFIG)
    if unpartition:
        converter.unpartition("public", "orders", until=Step.TWIN)
    else:
        converter.convert(TABLE, extend_unique=True, until=Step.TWIN)
    with psycopg.connect(dsn, autocommit=True) as conn:
        seconds, _ = b.timed(
            lambda: conn.execute(
                "INSERT INTO public.orders_partman_new OVERRIDING SYSTEM VALUE "
                "SELECT * FROM public.orders"
            )
        )
    return seconds


class Writers:
    """Threads doing one INSERT, UPDATE or DELETE every `period` seconds each, on the table and
    on the reference in one transaction."""

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
                    with conn.transaction():
                        self.write(conn, kind, key, n)
                except psycopg.Error as error:
                    with self.lock:
                        self.errors.append(str(error))
                elapsed = time.perf_counter() - started
                with self.lock:
                    self.ops += 1
                    self.longest = max(self.longest, elapsed)
                time.sleep(self.period)

    @staticmethod
    def write(conn: psycopg.Connection[Any], kind: str, key: int, n: int) -> None:
        if kind == "insert":
            conn.execute(
                "WITH new AS (INSERT INTO public.orders (placed_at, customer, total, note) "
                "VALUES (now(), %s, 1, 'w') RETURNING *) "
                "INSERT INTO public.orders_ref SELECT * FROM new",
                (n,),
            )
        elif kind == "update":
            for table in ("orders", "orders_ref"):
                conn.execute(
                    sql.SQL("UPDATE {} SET total = total + 1 WHERE id = %s").format(
                        sql.Identifier("public", table)
                    ),
                    (key,),
                )
        else:
            for table in ("orders", "orders_ref"):
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier("public", table)),
                    (key,),
                )


def differences(dsn: str) -> tuple[int, int, int]:
    """Rows of the reference the table lacks, rows it has that the reference does not, rows
    whose values differ."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(DIFF_SQL).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def with_writers(
    dsn: str, rows: int, writers: int, work: Callable[[Callable[[str], None]], Any]
) -> dict[str, Any]:
    """`work(mark)` timed while the writers run; `mark(step)` starts a step's clock."""
    marks: list[tuple[str, float]] = []
    with Writers(dsn, writers, 0.002, rows) as w:
        time.sleep(0.5)
        started = time.perf_counter()
        extra = work(lambda step: marks.append((step, time.perf_counter())))
        ended = time.perf_counter()
        time.sleep(0.5)
    steps: dict[str, float] = {}
    for i, (point, at) in enumerate(marks):
        until = marks[i + 1][1] if i + 1 < len(marks) else ended
        steps[point] = steps.get(point, 0.0) + until - at
    return {
        "total": ended - started,
        "steps": steps,
        "extra": extra,
        "ops": w.ops,
        "errors": w.errors,
        "longest": w.longest,
        "diff": differences(dsn),
    }


def convert(
    dsn: str, rows: int, writers: int, unpartition: bool = False, config: partman.Config = CONFIG
) -> dict[str, Any]:
    def work(mark: Callable[[str], None]) -> Any:
        def hook(point: str) -> None:
            if point in {s.value for s in Step}:  # a step starts (inner points have a colon)
                mark(point)

        converter = partman.Converter(dsn, config=config, on_step=hook)
        if unpartition:
            return converter.unpartition("public", "orders")
        return converter.convert(TABLE, extend_unique=True)

    r = with_writers(dsn, rows, writers, work)
    r["copied"] = r["extra"].rows_copied
    r["locked_ms"] = r["extra"].swap_ms
    return r


def pgslice_shape(dsn: str, mark: Callable[[str], None]) -> dict[str, Any]:
    """pgslice's steps, as the SQL its README shows and its source runs (ankane/pgslice,
    README "Steps" and "Sample Output"; lib/pgslice/cli/{prep,add_partitions,fill,analyze,
    swap}.rb):

    * `pgslice prep <table> <column> <period>`: "This creates a partitioned table named
      `<table>_intermediate`": `CREATE TABLE ... (LIKE <table> INCLUDING DEFAULTS INCLUDING
      CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS ...) PARTITION BY RANGE (<column>)`, and
      the table's indexes but its primary key on the intermediate table;
    * `pgslice add_partitions <table> --intermediate --past N --future 3`: `CREATE TABLE
      <table>_YYYYMM PARTITION OF ... FOR VALUES FROM ... TO ...` and `ALTER TABLE
      <table>_YYYYMM ADD PRIMARY KEY (id)` for each;
    * `pgslice fill <table>`: "Fill the partitions in batches with data from the original
      table" (`--batch-size` defaults to 10000): from the smallest id to the largest one read
      when the fill starts, `INSERT INTO intermediate (cols) SELECT cols FROM <table> WHERE
      id > $start AND id <= $start + 10000 AND <column> >= $first AND <column> < $end`, in
      autocommit, nothing captured;
    * `pgslice analyze <table>`: `ANALYZE VERBOSE` each partition and the intermediate table;
    * `pgslice swap <table>`: one transaction, `SET LOCAL lock_timeout = '5s'`, the table
      renamed `<table>_retired`, the intermediate table renamed `<table>`, `ALTER SEQUENCE ...
      OWNED BY <table>.id`;
    * `pgslice fill <table> --swapped`: "Fill the rest (rows inserted between the first fill and
      the swap)": the same batches from `<table>_retired`, after the largest id the new table
      holds below the retired table's largest.

    What the fill does not see is an UPDATE or DELETE of a row it has copied already (and, after
    the swap, of a row still only in the retired table): pgslice issue #48. Newer pgslice
    versions have `enable_retired_mirroring`/`synchronize` commands, not modelled here."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        mark("prep")
        low = conn.execute("SELECT min(placed_at) FROM public.orders").fetchone()
        assert low is not None and low[0] is not None
        first = low[0].astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        months: list[dt.datetime] = [first]
        now = dt.datetime.now(dt.UTC)
        while months[-1] <= now.replace(day=1) + dt.timedelta(days=3 * 31):
            nxt = months[-1] + dt.timedelta(days=32)
            months.append(nxt.replace(day=1))
        with conn.transaction():
            conn.execute(
                "CREATE TABLE public.orders_intermediate (LIKE public.orders INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS INCLUDING STATISTICS "
                "INCLUDING GENERATED INCLUDING COMPRESSION) PARTITION BY RANGE (placed_at)"
            )
            conn.execute("CREATE INDEX ON public.orders_intermediate USING btree (placed_at)")
        mark("add_partitions")
        with conn.transaction():
            for start, end in itertools.pairwise(months):
                part = sql.Identifier("public", f"orders_{start:%Y%m}")
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE {} PARTITION OF public.orders_intermediate "
                        "FOR VALUES FROM ({}) TO ({})"
                    ).format(part, sql.Literal(start), sql.Literal(end))
                )
                conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(part))
        mark("fill")
        copied = _fill(conn, "orders", "orders_intermediate", months[0], months[-1], False)
        mark("analyze")
        for start in months[:-1]:
            conn.execute(
                sql.SQL("ANALYZE {}").format(sql.Identifier("public", f"orders_{start:%Y%m}"))
            )
        conn.execute("ANALYZE public.orders_intermediate")
        mark("swap")
        locked = time.perf_counter()
        with conn.transaction():
            conn.execute(
                sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(PGSLICE_LOCK_TIMEOUT))
            )
            conn.execute("ALTER TABLE public.orders RENAME TO orders_retired")
            conn.execute("ALTER TABLE public.orders_intermediate RENAME TO orders")
            conn.execute("ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id")
        locked_ms = (time.perf_counter() - locked) * 1000
        mark("fill --swapped")
        copied += _fill(conn, "orders_retired", "orders", months[0], months[-1], True)
    return {"copied": copied, "locked_ms": locked_ms}


def _fill(
    conn: psycopg.Connection[Any],
    source: str,
    dest: str,
    starting_time: dt.datetime,
    ending_time: dt.datetime,
    swapped: bool,
) -> int:
    """`pgslice fill` (lib/pgslice/cli/fill.rb): batches of ids, each its own statement."""
    src, dst = sql.Identifier("public", source), sql.Identifier("public", dest)
    top = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(src)).fetchone()
    max_source_id = int(top[0]) if top and top[0] is not None else 0
    if swapped:  # the largest id the new table holds below the retired table's largest
        got = conn.execute(
            sql.SQL("SELECT max(id) FROM {} WHERE id <= %s").format(dst), (max_source_id,)
        ).fetchone()
    else:
        got = conn.execute(sql.SQL("SELECT max(id) FROM {}").format(dst)).fetchone()
    start = int(got[0]) if got and got[0] is not None else 0
    if start == 0 and not swapped:
        low = conn.execute(
            sql.SQL("SELECT min(id) FROM {} WHERE placed_at >= %s").format(src), (starting_time,)
        ).fetchone()
        if low and low[0] is not None:
            start = int(low[0]) - 1
    copied = 0
    while start < max_source_id:
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {dst} ({cols}) SELECT {cols} FROM {src} WHERE id > %s AND id <= %s "
                "AND placed_at >= %s AND placed_at < %s"
            ).format(dst=dst, src=src, cols=sql.SQL(COLUMNS)),
            (start, start + PGSLICE_BATCH, starting_time, ending_time),
        )
        copied += max(0, cur.rowcount)
        start += PGSLICE_BATCH
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the table")
    parser.add_argument("--writers", type=int, default=2, help="writer threads")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument("--only", choices=["convert", "unpartition"], help="one table of the two")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    if args.only == "unpartition":
        return unpartition_table(rows, args.writers)
    notes: list[str] = []
    with b.server("18") as srv:
        notes.append(srv.describe())
        b.progress(f"plain SQL floor: {rows:,} rows")
        dsn = b.create_database(srv, "bench_convert_floor")
        fill(dsn, rows, reference=False)
        plain = floor(dsn)
        b.drop_database(srv, "bench_convert_floor")
        b.progress(f"partman convert: {rows:,} rows, {args.writers} writers")
        dsn = b.create_database(srv, "bench_convert")
        fill(dsn, rows, reference=True)
        r = convert(dsn, rows, args.writers)
        b.drop_database(srv, "bench_convert")
        b.progress(f"pgslice's shape: {rows:,} rows, {args.writers} writers")
        dsn = b.create_database(srv, "bench_convert_pgslice")
        fill(dsn, rows, reference=True)
        s = with_writers(dsn, rows, args.writers, lambda mark: pgslice_shape(dsn, mark))
        s["copied"], s["locked_ms"] = s["extra"]["copied"], s["extra"]["locked_ms"]
        b.drop_database(srv, "bench_convert_pgslice")
    copy = r["steps"].get("copy", 0.0)
    moved = s["steps"].get("fill", 0.0) + s["steps"].get("fill --swapped", 0.0)

    def lost(x: dict[str, Any]) -> str:
        missing, extra, changed = x["diff"]
        return f"{missing + extra + changed:,}"

    out = [
        ["plain SQL", "INSERT INTO twin SELECT * FROM source (no writers)", b.secs(plain),
         f"{rows / plain:,.0f}", "1.00x", "-", "-", "-", "-"],
        ["partman convert: copy", "keyset batches of 10,000 + replay", b.secs(copy),
         f"{r['copied'] / copy:,.0f}" if copy else "-", b.ratio(copy, plain), "", "", "", ""],
        ["partman convert: all", "twin, capture, copy, verify, swap", b.secs(r["total"]),
         f"{rows / r['total']:,.0f}", b.ratio(r["total"], plain), f"{r['ops']:,}",
         f"{r['longest'] * 1000:.0f} ms", f"{r['locked_ms']:.0f} ms", lost(r)],
        ["pgslice's shape: fill", "id batches of 10,000, both fills", b.secs(moved),
         f"{s['copied'] / moved:,.0f}" if moved else "-", b.ratio(moved, plain), "", "", "", ""],
        ["pgslice's shape: all", "prep, add_partitions, fill, analyze, swap, fill --swapped",
         b.secs(s["total"]), f"{rows / s['total']:,.0f}", b.ratio(s["total"], plain),
         f"{s['ops']:,}", f"{s['longest'] * 1000:.0f} ms", f"{s['locked_ms']:.0f} ms", lost(s)],
    ]  # fmt: skip
    for who, x in (("partman convert", r), ("pgslice's shape", s)):
        missing, extra, changed = x["diff"]
        notes.append(
            f"{who}: steps "
            + ", ".join(f"{k} {b.secs(v)}" for k, v in x["steps"].items())
            + f"; against the reference: {missing:,} row(s) missing, {extra:,} extra (deleted "
            f"during the conversion but still there), {changed:,} with other values; "
            f"{len(x['errors'])} writer error(s)"
        )
    notes.append(
        f"{args.writers} writers, one INSERT/UPDATE/DELETE every 2 ms each (the same change to "
        "orders_ref in the same transaction), for the whole conversion; longest = the slowest "
        "single write; locked = the swap's transaction; partman's lock_timeout "
        f"{CONFIG.lock_timeout.total_seconds() * 1000:.0f} ms, pgslice's {PGSLICE_LOCK_TIMEOUT}"
    )
    b.print_table(
        f"10. Partition a live table: convert {rows:,} rows, beside pgslice's shape and "
        "INSERT ... SELECT",
        ["who", "what", "wall", "rows/s", "vs plain", "writes", "longest write", "locked",
         "rows differing"],
        out,
        notes,
    )  # fmt: skip
    status = 1 if r["errors"] or any(r["diff"]) else 0
    if args.only is None:
        status = max(status, unpartition_table(rows, args.writers))
    return status


def unpartition_table(rows: int, writers: int) -> int:
    """Table 10b: the same rows in a table partitioned by month and managed by partman, made
    one ordinary table again by `partman unpartition` while the writers run, beside the floor
    `INSERT INTO plain SELECT * FROM parted` into the twin made by its first step."""
    notes: list[str] = []
    with b.server("18") as srv:
        notes.append(srv.describe())
        b.progress(f"unpartition, plain SQL floor: {rows:,} rows")
        dsn = b.create_database(srv, "bench_unpartition_floor")
        fill(dsn, rows, reference=False, parted=True)
        plain = floor(dsn, unpartition=True)
        b.drop_database(srv, "bench_unpartition_floor")
        b.progress(f"partman unpartition: {rows:,} rows, {writers} writers")
        dsn = b.create_database(srv, "bench_unpartition")
        fill(dsn, rows, reference=True, parted=True)
        with psycopg.connect(dsn) as conn:
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.orders'::regclass"
            ).fetchone()
        r = convert(dsn, rows, writers, unpartition=True, config=UNPARTITION_CONFIG)
        b.drop_database(srv, "bench_unpartition")
    copy = r["steps"].get("copy", 0.0)
    missing, extra, changed = r["diff"]
    out = [
        ["plain SQL", "INSERT INTO plain SELECT * FROM parted (no writers)", b.secs(plain),
         f"{rows / plain:,.0f}", "1.00x", "-", "-", "-", "-"],
        ["partman unpartition: copy", "keyset batches of 10,000 + replay", b.secs(copy),
         f"{r['copied'] / copy:,.0f}" if copy else "-", b.ratio(copy, plain), "", "", "", ""],
        ["partman unpartition: all", "twin, capture, copy, verify, swap", b.secs(r["total"]),
         f"{rows / r['total']:,.0f}", b.ratio(r["total"], plain), f"{r['ops']:,}",
         f"{r['longest'] * 1000:.0f} ms", f"{r['locked_ms']:.0f} ms",
         f"{missing + extra + changed:,}"],
    ]  # fmt: skip
    notes.append(
        f"{parts[0] if parts else '?'} monthly partitions; steps "
        + ", ".join(f"{k} {b.secs(v)}" for k, v in r["steps"].items())
        + f"; against the reference: {missing:,} missing, {extra:,} extra, {changed:,} with "
        f"other values; {len(r['errors'])} writer error(s)"
    )
    notes.append(
        f"{writers} writers, one INSERT/UPDATE/DELETE every 2 ms each for the whole run; "
        f"lock_timeout {CONFIG.lock_timeout.total_seconds() * 1000:.0f} ms, the swap took "
        f"{r['extra'].swap_attempts} attempt(s) (max_retries {UNPARTITION_CONFIG.max_retries}); "
        "locked = the swap's lock call, the backoff between its attempts included"
    )
    b.print_table(
        f"10b. Undo partitioning of a live table: unpartition {rows:,} rows, beside "
        "INSERT ... SELECT",
        ["who", "what", "wall", "rows/s", "vs plain", "writes", "longest write", "locked",
         "rows differing"],
        out,
        notes,
    )  # fmt: skip
    return 1 if r["errors"] or any(r["diff"]) else 0


if __name__ == "__main__":
    sys.exit(main())
