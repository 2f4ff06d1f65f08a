"""Steady state: a maintain() pass with nothing to do, at ~3k, ~30k and ~100k partitions.

    .venv/bin/python benchmarks/steady.py [--schemas 1,10,30] [--tenants 100] [--runs 7]
                                          [--footprint] [--profile]

The database grows in steps of whole schemas, each a copy of the seed's three tables with
`--tenants` tenants and 11 daily partitions per tenant (3,300 partitions per schema at 100
tenants): 1, 10 and 30 schemas give 3,300, 33,000 and 99,000 partitions, 300, 3,000 and 9,000
registered (table, tenant) pairs. Partitions are made with plain SQL and adopted by partman
(import_existing_partitions), so its metadata holds one ownership row per partition, as in
real use. The growth is across parents, not within them, because PostgreSQL's own cost to add a
partition grows with the partitions its parent already has (see create.py): 33,000 partitions
under three parents would take most of an hour to build, with plain SQL as with partman.

At each size: the wall time of maintain() (median of --runs passes after one warm-up pass),
its round trips (every client/server exchange on the Manager's connections, counted in
Connection.wait()), and one bare catalog query over the same partitions for comparison
(pg_inherits + pg_class + pg_namespace + pg_get_expr(relpartbound), every row fetched).
Where the pass's time goes is shown alongside: partman's own catalog query (a row per parent with
its columns, a row per partition with its comment and row estimate and, joined to it, partman's
ownership record), `read_world()` (metadata and catalog in one round trip, parsed), and
`planner.plan()`.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman
from partman.db.catalog import SESSION_SETTINGS, catalog_queries
from partman.db.metadata import OWNED_RECORD, managed_parents, owned_rows
from partman.decide import planner
from partman.engine.world import read_world

TARGET = 3.0


class World:
    """A database that grows schema by schema, every partition made by partman."""

    def __init__(self, srv: b.Server, tenants: int, name: str = "steady") -> None:
        # noon today: `partman apply` (real clock) then finds the same partitions due
        self.srv = srv
        self.name = name
        self.tenants = tenants
        self.dsn = b.create_database(srv, name)
        self.pool = b.counting_pool(self.dsn)
        self.clock = partman.SimulatedClock(b.day_start(dt.datetime.now(dt.UTC)) + 12 * b.HOUR)
        self.manager = b.quiet_manager(self.pool, self.clock, batch_size=256)
        self.schemas: list[str] = []
        self.partitions = 0
        self.setup_seconds = 0.0

    def grow(self, schemas: int) -> None:
        """Add schemas up to `schemas`. Their partitions are made with plain SQL (`CREATE TABLE
        ... PARTITION OF`, two connections at once, one per core) and adopted by partman's
        import_existing_partitions(): a pass then finds them its own, exactly as if it had
        made them, in a fraction of the time partman's own creation takes at this size."""
        new: list[str] = []
        while len(self.schemas) < schemas:
            schema = f"{b.SCHEMA}_{len(self.schemas):02d}"
            b.seed_schema(self.dsn, schema=schema)
            self.schemas.append(schema)
            new.append(schema)
        if not new:
            return
        b.progress(f"set-up: {len(new)} schema(s) of partitions (plain SQL, then adopted)")
        started = time.perf_counter()
        tenants = b.tenant_ids(self.tenants)

        def make(mine: list[str]) -> None:
            for schema in mine:
                parts = b.parts(tenants, self.clock.now(), 11, schema=schema)
                b.run_batches(self.dsn, [b.create_sql(p, "partition_of") for p in parts], 256)

        with ThreadPoolExecutor(max_workers=2) as pool:
            for future in [pool.submit(make, new[i::2]) for i in range(2)]:
                future.result()
        for schema in new:
            found = self.manager.import_existing_partitions(b.template_schema(schema))
            if found.misaligned or found.foreign or found.skipped_tables:
                raise RuntimeError(f"import of {schema} left partitions out: {found}")
        self.setup_seconds += time.perf_counter() - started
        self.partitions = b.count_partitions(self.dsn)
        expected = len(self.schemas) * len(b.TABLES) * self.tenants * 11
        if self.partitions != expected:
            raise RuntimeError(f"{self.partitions} partitions, expected {expected}")

    @property
    def parents(self) -> list[str]:
        return [f"{s}.{t}" for s in self.schemas for t in b.TABLES]

    def close(self) -> None:
        self.manager.close()
        self.pool.close()


def measure(world: World, runs: int) -> dict[str, Any]:
    manager = world.manager
    warm = manager.maintain()
    if warm.plan is None or len(warm.plan.operations):
        raise RuntimeError(f"steady state expected, the pass did something: {warm}")
    passes: list[float] = []
    trips: list[int] = []
    for _ in range(runs):
        b.Trips.n = 0
        seconds, report = b.timed(manager.maintain)
        trips.append(b.Trips.n)
        passes.append(seconds)
        if report.plan is None or len(report.plan.operations):
            raise RuntimeError(f"steady state expected, the pass did something: {report}")
    out: dict[str, Any] = {"pass": statistics.median(passes), "trips": trips}
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        rows = b.bare_catalog_query(conn, world.parents)
        if rows != world.partitions:
            raise RuntimeError(f"bare query: {rows} rows, expected {world.partitions}")
        out["bare"], _ = b.median_of(lambda: b.bare_catalog_query(conn, world.parents), runs)
        query = sql.SQL(";\n").join(
            [
                sql.SQL("BEGIN READ ONLY"),
                SESSION_SETTINGS,
                *catalog_queries(managed_parents(b.META), owned_rows(b.META), OWNED_RECORD),
                sql.SQL("COMMIT"),
            ]
        )

        def own_query() -> int:
            cur = conn.execute(query)
            n = 0
            while True:
                if cur.description is not None:
                    n += len(cur.fetchall())
                if not cur.nextset():
                    return n

        out["own"], _ = b.median_of(own_query, runs)
        out["world"], _ = b.median_of(lambda: read_world(conn, b.META), runs)
        state, catalog = read_world(conn, b.META)
        tz = manager.config.tz
        out["plan"], _ = b.median_of(
            lambda: planner.plan(state, catalog, world.clock.now(), tz), runs
        )
    return out


def profile(world: World, top: int = 18) -> str:
    prof = cProfile.Profile()
    prof.enable()
    world.manager.maintain()
    prof.disable()
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", default="1,10,30", help="sizes, in schemas of 3 tables")
    parser.add_argument("--tenants", type=int, default=100, help="tenants per table")
    parser.add_argument("--runs", type=int, default=7, help="passes measured per size")
    parser.add_argument("--footprint", action="store_true", help="also run footprint.py's")
    parser.add_argument("--footprint-at", type=int, default=10, help="... at this many schemas")
    parser.add_argument("--profile", action="store_true", help="cProfile of a pass, largest size")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.schemas.split(",")]
    tenants = args.tenants
    if args.quick:
        sizes, tenants, args.footprint_at = [1, 2], 20, 2

    rows: list[list[Any]] = []
    footprint_rows: list[list[str]] = []
    all_trips: set[int] = set()
    verdicts: list[str] = []
    profile_text = ""
    with b.server("18") as srv:
        b.progress(srv.describe())
        world = World(srv, tenants)
        try:
            for size in sizes:
                world.grow(size)
                b.progress(f"{world.partitions:,} partitions: measuring")
                m = measure(world, args.runs)
                all_trips.update(m["trips"])
                r = m["pass"] / m["bare"]
                rows.append(
                    [
                        f"{world.partitions:,}",
                        f"{len(world.parents)}",
                        f"{len(world.parents) * tenants:,}",
                        b.secs(m["pass"]),
                        "/".join(str(t) for t in sorted(set(m["trips"]))),
                        b.secs(m["bare"]),
                        f"{r:.2f}x",
                        b.secs(m["own"]),
                        b.secs(m["world"]),
                        b.secs(m["plan"]),
                        b.secs(world.setup_seconds),
                    ]
                )
                verdicts.append(
                    f"{world.partitions:,} partitions: pass / bare catalog query = {r:.2f}x; "
                    f"target <= {TARGET:.0f}x: " + b.verdict(r <= TARGET)
                )
                if args.footprint and size == args.footprint_at:
                    import footprint

                    b.progress("footprint: one pass in a fresh process")
                    footprint_rows += footprint.world_rows(world)
            if args.profile:
                profile_text = profile(world)
        finally:
            world.close()
    verdicts.append(
        "round trips per pass: "
        + ", ".join(str(t) for t in sorted(all_trips))
        + " at every size; target constant: "
        + b.verdict(len(all_trips) == 1)
    )
    b.print_table(
        "2. Steady state: a pass with nothing to do",
        [
            "partitions",
            "parents",
            "tenants",
            "maintain()",
            "round trips",
            "bare catalog query",
            "pass / bare",
            "partman's catalog query",
            "read_world()",
            "plan()",
            "set-up (plain SQL + import, cumulative)",
        ],
        rows,
        verdicts,
    )
    if footprint_rows:
        import footprint

        b.print_table(footprint.TITLE, footprint.HEADER, footprint_rows, footprint.NOTES)
    if profile_text:
        b.console.print(f"cProfile of one pass at {world.partitions:,} partitions (tottime):")
        b.console.print(profile_text, highlight=False, markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
