"""Tenants: T tenants on one table, from registration to retention, the service's reads beside.

    .venv/bin/python benchmarks/tenants.py [--tenants 1000,10000] [--shapes range,list]
                                           [--range-max 1000] [--concurrent-max 1000] [--quick]
                                           [--reads-only] [--keep]

One table, convoy.events (the seed's columns, primary key (id, created_at, project_id)), in
two shapes: RANGE (project_id, created_at), every tenant's days side by side under the parent,
and LIST (project_id) with each tenant's partition RANGE (created_at) (`tenant_partitioning =
"list"`). `partition_count = 0` (today's partition only), so each pass below does one thing per
tenant. A fresh database per (shape, T); the steps, in turn:

1. registration: `Manager.register_tenants(table, T ids)` (time, round trips, and the
   tracemalloc peak of a second, identical call: tracemalloc slows what it watches), beside one
   plain `INSERT ... SELECT FROM unnest(%s)` of the same rows into a copy of the tenants table.
2. the first pass (today's partition for every tenant), then a pass with nothing to do (median
   of 5) beside one bare catalog query over the parent's partitions.
3. a pass that creates a day for every tenant (the clock a day on: T creates), beside plain SQL
   making the same partitions first (`CREATE TABLE ... PARTITION OF`, 1,000 per transaction;
   dropped again, so that partman starts from the same catalog), while an application thread
   inserts one row at a time into today's partitions of random tenants: the longest insert.
4. retention of yesterday for every tenant (retention_period lowered: T drops), each contestant
   on a copy of the same database, the inserts running: plain `DROP TABLE a, b, ...` (1,000 a
   statement) and partman with `detach_concurrently = false` (the same shape); up to
   `--concurrent-max` tenants also plain `DETACH ... CONCURRENTLY` each + DROP and partman's
   default (the same shape: never blocks the application, and costs a round trip or more per
   partition).
5. the service (no scheduler) on that database: `/metrics` by default and with
   `metrics_per_tenant`, `/api/tables`, the tenants listing (all, a page, the 50 shortest
   runways), `/api/partitions` (what the UI draws), `/api/plan`: bytes, time (median of 3),
   series; and the web UI in Debian's chromium (the UI tests' browser): from `page.goto` to
   the first tenant row drawn, then a search by id until only that tenant's row is left.
6. `partman apply --yes` in a process of its own, with a partman.toml whose `tenants_query`
   returns the T ids, none of them registered (the metadata's tenants deleted first): the
   cron job's registration at this size, and its pass (partman's clock pinned to the
   benchmark's day: nothing to do); the process's high-water mark (VmHWM).

The RANGE shape runs up to `--range-max` tenants: PostgreSQL's cost of adding a partition grows
with the partitions its parent already has (README: sizes), so a day for 10,000 tenants side by
side under one parent costs PostgreSQL itself tens of minutes, for plain SQL as for partman.
Round trips are counted as in the other benchmarks (benchlib.CountingConnection).

`--reads-only` runs steps 1, 2 and 5 only; `--keep` keeps the database and, on a server that
outlives the run (PARTMAN_BENCH_DSN), starts the next `--keep` run from it (its pass with
nothing to do, then the reads): the reads of two partman versions on one catalog, the older one
with `PYTHONPATH=<its checkout>/src`. Each GET of step 5 is timed first after the shared reads
were let go (it computes the inventory or the plan: "wall") and then as the median of 3 more
(they share it: "shared" in the notes).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import benchlib as b
import httpx
import psycopg
from psycopg import sql

import partman
from partman.service import Service, ServiceOptions

TABLE = "events"
QUALIFIED = f"{b.SCHEMA}.{TABLE}"
PLAIN_BATCH = 1000  # plain SQL: partitions per transaction
TABLE_SQL = {
    "range": b.SEED_TABLE_SQL,
    "list": b.SEED_TABLE_SQL.replace("RANGE (project_id, created_at)", "LIST (project_id)"),
}


class Inserts:
    """The application: one row at a time into today's partition of a random tenant, each insert
    timed (autocommit, a 2 ms pause between them)."""

    def __init__(self, dsn: str, tenants: list[str], day: dt.datetime) -> None:
        self.dsn, self.tenants, self.day = dsn, tenants, day
        self.waits: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            n = 0
            while not self._stop.is_set():
                n += 1
                tenant = rng.choice(self.tenants)
                at = self.day + dt.timedelta(seconds=rng.randrange(86400))
                t0 = time.perf_counter()
                try:
                    conn.execute(
                        "INSERT INTO convoy.events (id, project_id, created_at) "
                        "VALUES (%s, %s, %s)",
                        (f"r{n}", tenant, at),
                    )
                except psycopg.Error:
                    self.errors += 1
                self.waits.append(time.perf_counter() - t0)
                time.sleep(0.002)

    def __enter__(self) -> Inserts:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def longest(self) -> str:
        if not self.waits:
            return "-"
        return f"{b.secs(max(self.waits))} ({len(self.waits):,} inserts)"


def _plain(
    dsn: str, statements: list[sql.Composable], batch: int = PLAIN_BATCH
) -> tuple[float, int]:
    return b.timed(lambda: b.run_batches(dsn, [[s] for s in statements], batch))


def _leaves(conn: psycopg.Connection[Any], day: dt.datetime) -> list[tuple[str, str, str]]:
    """(parent, leaf, tenant) of every leaf partition whose period starts on `day`, at any level
    (partman names its own partitions; the catalog says where they are)."""
    rows = conn.execute(
        """
SELECT pp.relname::text, c.relname::text, pg_get_expr(c.relpartbound, c.oid),
       pg_get_expr(pp.relpartbound, pp.oid)
  FROM pg_partition_tree(%s::regclass) t
  JOIN pg_class c ON c.oid = t.relid
  JOIN pg_class pp ON pp.oid = t.parentrelid
 WHERE t.isleaf AND split_part(pg_get_expr(c.relpartbound, c.oid), ') TO (', 1) LIKE %s
""",
        (QUALIFIED, f"%{day:%Y-%m-%d}%"),
    ).fetchall()
    out = []
    for parent, leaf, bound, parent_bound in rows:
        text = bound if parent == TABLE else parent_bound  # RANGE (tenant, ..) or IN ('tenant')
        out.append((parent, leaf, text.split("'")[1]))
    return out


def _create_statements(dsn: str, today: dt.datetime, day: dt.datetime) -> list[sql.Composable]:
    """PARTITION OF for `day` beside each of today's leaves, under the same parent."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        leaves = _leaves(conn, today)
    out: list[sql.Composable] = []
    for parent, _, tenant in leaves:
        head = [sql.Literal(tenant)] if parent == TABLE else []
        lo = sql.SQL(", ").join([*head, sql.Literal(day)])
        hi = sql.SQL(", ").join([*head, sql.Literal(day + b.DAY)])
        out.append(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(b.SCHEMA, f"plain_{tenant.replace('-', '_')}_{day:%Y%m%d}"),
                sql.Identifier(b.SCHEMA, parent),
                lo,
                hi,
            )
        )
    return out


def _drop_statements(dsn: str, day: dt.datetime) -> list[sql.Composable]:
    """`DROP TABLE a, b, ...` of every leaf of `day`, PLAIN_BATCH a statement."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [sql.Identifier(b.SCHEMA, leaf) for _, leaf, _ in _leaves(conn, day)]
    return [
        sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(names[i : i + PLAIN_BATCH]))
        for i in range(0, len(names), PLAIN_BATCH)
    ]


def _detach_statements(dsn: str, day: dt.datetime) -> list[sql.Composable]:
    """DETACH ... CONCURRENTLY of every leaf of `day` (outside any transaction block), then one
    DROP TABLE a, b, ... per PLAIN_BATCH: the shape that never blocks the application."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        leaves = _leaves(conn, day)
    out: list[sql.Composable] = [
        sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
            sql.Identifier(b.SCHEMA, parent), sql.Identifier(b.SCHEMA, leaf)
        )
        for parent, leaf, _ in leaves
    ]
    return out


def _cli_apply(dsn: str, tenants: int, shape: str, now: dt.datetime) -> tuple[float, int]:
    """`partman apply --yes` of a file whose tenants_query returns the T ids (their registration
    and a pass, partman's clock pinned to `now`); (wall, VmHWM KiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "partman.toml"
        config.write_text(
            "[[table]]\n"  # noqa: S608 (a TOML file, its query made of an int)
            f'name = "{TABLE}"\nschema = "{b.SCHEMA}"\ntenant_id_column = "project_id"\n'
            'partition_by = "created_at"\npartition_interval = "1 day"\npartition_count = 0\n'
            f'tenant_partitioning = "{shape}"\n'
            f"tenants_query = \"SELECT 'project-' || lpad(g::text, 5, '0') "
            f'FROM generate_series(0, {tenants - 1}) g"\n'
        )
        hwm = Path(tmp) / "hwm"
        script = (
            "import atexit, os\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            open(os.environ['PARTMAN_BENCH_HWM'], 'w').write(line.split()[1])\n"
            "atexit.register(hwm)\n"
            "import datetime as dt\nfrom partman.model import clock\n"
            f"clock.RealClock.now = lambda self: dt.datetime.fromisoformat({now.isoformat()!r})\n"
            "import sys\nfrom partman.cli import main\nsys.exit(main())\n"
        )
        env = {**os.environ, "PARTMAN_BENCH_HWM": str(hwm)}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", script, "apply", "--yes", "--config", str(config), "--dsn", dsn],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"partman apply failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        return wall, int(hwm.read_text())


def _registered(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM partman_meta.tenants").fetchone()
        return int(row[0]) if row else 0


def _get(
    client: httpx.Client, path: str, service: Service, runs: int = 3
) -> tuple[float, float, int, str]:
    """The first GET after the shared reads were let go (it computes the inventory, or the plan,
    as every GET did before they were shared), then the median of `runs` more (they share it)."""
    reads = getattr(service, "reads", None)  # None: a partman from before the shared reads
    if reads is not None:
        reads.invalidate()
    times, size, text = [], 0, ""
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - t0)
        response.raise_for_status()
        size, text = len(response.content), response.text
    return times[0], statistics.median(times[1:]), size, text


def _ui(url: str, tenant: str) -> tuple[float, float]:
    """Debian's chromium (the UI tests' browser) on the page: seconds until the first tenant row
    is drawn, then until a search by id leaves only that tenant's row."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            card = page.locator(f'.table-card[data-table="{QUALIFIED}"]')
            t0 = time.perf_counter()
            page.goto(url + "/")
            expect(card.locator("svg g.tenant-row").first).to_be_visible(timeout=600_000)
            drawn = time.perf_counter() - t0
            t0 = time.perf_counter()
            card.locator("input.tenant-search").fill(tenant)
            expect(card.locator("svg g.tenant-row")).to_have_count(1, timeout=600_000)
            searched = time.perf_counter() - t0
        finally:
            browser.close()
    return drawn, searched


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def _copy(srv: b.Server, source: str, name: str) -> str:
    with psycopg.connect(srv.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(source)
            )
        )
    return srv.dsn_for(name)


def _kept(srv: b.Server, name: str, tenants: int) -> str | None:
    """The database a `--keep` run left with its T tenants and their first pass made."""
    with psycopg.connect(srv.dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            return None
    dsn = srv.dsn_for(name)
    try:
        found = _registered(dsn)
    except psycopg.Error:
        return None
    return dsn if found == tenants else None


def run(
    srv: b.Server,
    tenants: int,
    shape: str,
    concurrent_max: int,
    rows: list[list[Any]],
    *,
    reads_only: bool = False,
    keep: bool = False,
) -> None:
    name = f"tenants_{shape}_{tenants}"
    kept = _kept(srv, name, tenants) if keep else None
    dsn = kept or b.create_database(srv, name)
    if kept is None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(b.SCHEMA)))
            conn.execute(sql.SQL(TABLE_SQL[shape]).format(sql.Identifier(b.SCHEMA, TABLE)))
    ids = b.tenant_ids(tenants)
    clock = partman.SimulatedClock(b.START)
    label = f"{tenants:,} {shape.upper()}"

    def row(what: str, who: str, seconds: float, trips: Any, vs: float | None, extra: str) -> None:
        rows.append(
            [
                label,
                what,
                who,
                b.secs(seconds),
                f"{trips:,}" if isinstance(trips, int) else trips,
                "" if vs is None else b.ratio(seconds, vs),
                extra,
            ]
        )

    def table(**policy: Any) -> partman.Table:
        return dataclasses.replace(b.template(TABLE, count=0, **policy), tenant_partitioning=shape)

    pool = b.counting_pool(dsn)
    try:
        if kept is None:
            _build(
                srv, dsn, name, tenants, concurrent_max, pool, clock, ids, row, table, reads_only
            )
        else:  # a --keep run's catalog: its pass with nothing to do, then the reads
            _noop(dsn, b.quiet_manager(pool, clock, batch_size=256), row)
        _reads(dsn, clock, ids, row)
        if not reads_only:
            _cron(dsn, tenants, shape, clock, row)
    finally:
        pool.close()
        if not keep:
            b.drop_database(srv, name)
        gc.collect()


def _build(
    srv: b.Server,
    dsn: str,
    name: str,
    tenants: int,
    concurrent_max: int,
    pool: Any,
    clock: partman.SimulatedClock,
    ids: list[str],
    row: Any,
    table: Any,
    reads_only: bool,
) -> None:
    """Steps 1 to 4 (`reads_only`: 1 and 2, the catalog the service then reads)."""
    today = b.day_start(b.START)
    tomorrow = today + b.DAY
    # 1. registration
    manager = b.quiet_manager(pool, clock, batch_size=256)
    manager.init()
    b.Trips.n = 0
    seconds, _ = b.timed(lambda: manager.register_tenants(table(), ids))
    trips = b.Trips.n
    assert _registered(dsn) == tenants
    tracemalloc.start()
    manager.register_tenants(table(), ids)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE plain_tenants (LIKE partman_meta.tenants INCLUDING ALL)")
        plain, _ = b.timed(
            lambda: conn.execute(
                "INSERT INTO plain_tenants (table_id, tenant_id, retention, partition_count) "
                "SELECT 1, t, 'forever', NULL FROM unnest(%s::text[]) t",
                (ids,),
            )
        )
        conn.execute("DROP TABLE plain_tenants")
    row(
        "registration",
        "partman register_tenants()",
        seconds,
        trips,
        plain,
        f"tracemalloc peak {peak / 2**20:.1f} MiB",
    )
    row("registration", "plain SQL: one INSERT ... unnest(ids)", plain, 1, plain, "")

    # 2. first pass, then nothing to do
    b.Trips.n = 0
    seconds, report = b.timed(manager.maintain)
    trips = b.Trips.n
    assert report.ok and len(report.created) >= tenants, report
    row(
        "first pass",
        "partman maintain()",
        seconds,
        trips,
        None,
        f"{len(report.created):,} created (today's for every tenant)",
    )
    _noop(dsn, manager, row)
    if reads_only:
        return

    # 3. a day for every tenant: plain SQL first (then dropped), partman on the same catalog
    with Inserts(dsn, ids, today) as app:
        plain, trips = _plain(dsn, _create_statements(dsn, today, tomorrow))
    row(
        "a day for every tenant",
        f"plain SQL PARTITION OF, {PLAIN_BATCH}/txn",
        plain,
        trips,
        plain,
        "longest insert " + app.longest(),
    )
    _plain(dsn, _drop_statements(dsn, tomorrow), 1)
    clock.advance(b.DAY)
    with Inserts(dsn, ids, today) as app:
        b.Trips.n = 0
        seconds, report = b.timed(manager.maintain)
        trips = b.Trips.n
    assert report.ok and len(report.created) == tenants, report
    row(
        "a day for every tenant",
        "partman maintain()",
        seconds,
        trips,
        plain,
        f"longest insert {app.longest()}",
    )

    # 4. retention of yesterday for every tenant, each contestant on a copy
    manager.add_managed_table(table(retention="1 hour"))
    pool.close()
    variants: list[tuple[str, Any]] = [
        (
            f"plain SQL DROP TABLE a, b, ... {PLAIN_BATCH}/txn",
            lambda d: _plain(d, _drop_statements(d, today), 1),
        ),
        ("partman, detach_concurrently = false", False),
    ]
    if tenants <= concurrent_max:
        variants += [
            (
                "plain SQL DETACH CONCURRENTLY each + DROP",
                lambda d: (lambda a, c: (a[0] + c[0], a[1] + c[1]))(
                    _plain(d, _detach_statements(d, today), 1),
                    _plain(d, _drop_statements(d, today), 1),
                ),
            ),
            ("partman (default: DETACH CONCURRENTLY + DROP)", True),
        ]
    fastest: float | None = None
    for who, how in variants:
        copy = _copy(srv, name, f"{name}_retention")
        try:
            with Inserts(copy, ids, tomorrow) as app:
                if callable(how):
                    seconds, trips = how(copy)
                else:
                    counted = b.counting_pool(copy)
                    try:
                        m = b.quiet_manager(counted, clock, batch_size=256, detach_concurrently=how)
                        b.Trips.n = 0
                        seconds, report = b.timed(m.maintain)
                        trips = b.Trips.n
                    finally:
                        counted.close()
                    assert report.ok and len(report.dropped) == tenants, report
            fastest = seconds if fastest is None else fastest
            row(
                "retention: a day for every tenant",
                who,
                seconds,
                trips,
                fastest,
                "longest insert " + app.longest(),
            )
        finally:
            b.drop_database(srv, f"{name}_retention")


def _noop(dsn: str, manager: partman.Manager, row: Any) -> None:
    """A pass with nothing to do (median of 5), beside the bare catalog query."""
    times = []
    for _ in range(5):
        b.Trips.n = 0
        t, report = b.timed(manager.maintain)
        times.append(t)
        assert report.ok and not report.results, report
    trips = b.Trips.n
    with psycopg.connect(dsn, autocommit=True) as conn:
        bare, _ = b.median_of(lambda: b.bare_catalog_query(conn, [QUALIFIED]), 5)
    tracemalloc.start()
    manager.maintain()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    row(
        "pass with nothing to do",
        "partman maintain() (median of 5)",
        statistics.median(times),
        trips,
        bare,
        f"tracemalloc peak {peak / 2**20:.1f} MiB",
    )
    row("pass with nothing to do", "bare catalog query (top level)", bare, 1, bare, "")


def _reads(dsn: str, clock: partman.SimulatedClock, ids: list[str], row: Any) -> None:
    """5. the service's reads: each GET computed (wall) and shared (notes), the web UI."""
    for per_tenant in (False, True):
        options = ServiceOptions(
            port=0, scheduler=False, log_level="warning", metrics_per_tenant=per_tenant
        )
        with Service(dsn, options=options, clock=clock) as service:
            server = service.start_server(timeout=120)
            try:
                with httpx.Client(base_url=server.url, timeout=600) as client:
                    gets = [("/metrics", "metrics_per_tenant = " + str(per_tenant).lower())]
                    tenants_path = f"/api/tables/{QUALIFIED}/tenants"
                    if not per_tenant:
                        gets += [
                            ("/api/tables", ""),
                            (tenants_path, "all"),
                            (tenants_path + "?limit=50&offset=500", "a page of 50"),
                            (tenants_path + "?order=runway&limit=50", "50 shortest runways"),
                            (f"/api/partitions?table={QUALIFIED}", "one table, every tenant"),
                            (
                                f"/api/partitions?table={QUALIFIED}&limit=40&offset=0",
                                "a page of 40 tenants (the UI's)",
                            ),
                            ("/api/plan", ""),
                        ]
                    for path, what in gets:
                        seconds, shared, size, text = _get(client, path, service)
                        extra = f"{size / 1024:,.0f} KiB"
                        if path == "/metrics":
                            extra += f", {_series(text):,} series"
                        extra += f"; shared {b.secs(shared)}"
                        row(f"GET {path.split('?')[0]}", what, seconds, "-", None, extra)
                if not per_tenant:
                    drawn, searched = _ui(server.url, ids[len(ids) // 2 + 1])
                    row(
                        "web UI (chromium)",
                        "first page of tenants drawn",
                        drawn,
                        "-",
                        None,
                        "from page.goto to the first tenant row",
                    )
                    row(
                        "web UI (chromium)",
                        "search finds one tenant",
                        searched,
                        "-",
                        None,
                        "typing an id until only its row is drawn",
                    )
            finally:
                server.stop()


def _cron(dsn: str, tenants: int, shape: str, clock: partman.SimulatedClock, row: Any) -> None:
    """6. the CLI from cron: `partman apply --yes` with tenants_query, every tenant to
    register."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM partman_meta.tenants")
    cli, hwm = _cli_apply(dsn, tenants, shape, clock.now())
    assert _registered(dsn) == tenants
    row(
        "registration from partman.toml",
        "partman apply --yes (tenants_query)",
        cli,
        "-",
        None,
        f"a process: register {tenants:,} + a pass; VmHWM {hwm / 1024:.0f} MiB",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="1000,10000", help="comma separated tenant counts")
    parser.add_argument("--shapes", default="range,list", help="range, list or both")
    parser.add_argument(
        "--range-max", type=int, default=1000, help="the RANGE shape only up to this many tenants"
    )
    parser.add_argument(
        "--concurrent-max",
        type=int,
        default=1000,
        help="DETACH CONCURRENTLY retention only up to this many tenants",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="registration, the first pass and the service's reads only (steps 1, 2 and 5)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep each database, and start from one a --keep run left (with PARTMAN_BENCH_DSN: "
        "a server that outlives the run; the reads of two partman versions on one catalog)",
    )
    args = parser.parse_args(argv)
    counts = [50] if args.quick else [int(x) for x in args.tenants.split(",")]
    shapes = args.shapes.split(",")
    rows: list[list[Any]] = []
    notes: list[str] = []
    with b.server("18") as srv:
        b.progress(srv.describe())
        for tenants in counts:
            for shape in shapes:
                if shape == "range" and tenants > args.range_max:
                    notes.append(
                        f"RANGE at {tenants:,} tenants not run (--range-max "
                        f"{args.range_max:,}): see the module's docstring"
                    )
                    continue
                b.progress(f"T={tenants:,} {shape}")
                t0 = time.perf_counter()
                try:
                    run(
                        srv,
                        tenants,
                        shape,
                        args.concurrent_max,
                        rows,
                        reads_only=args.reads_only,
                        keep=args.keep,
                    )
                except Exception as error:  # the rows so far are printed, the reason under them
                    notes.append(f"T={tenants:,} {shape} stopped: {type(error).__name__}: {error}")
                    b.progress(notes[-1])
                b.progress(f"T={tenants:,} {shape}: {b.secs(time.perf_counter() - t0)}")
    b.print_table(
        "12. Tenants: T tenants on one table, a day each (issue 17)",
        ["tenants", "step", "who", "wall", "round trips", "vs plain", "notes"],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
