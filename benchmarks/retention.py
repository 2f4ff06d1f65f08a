"""Retention: dropping N expired partitions, partman's maintain() against plain SQL DROPs.

    .venv/bin/python benchmarks/retention.py [--expired 300,3000] [--batches 1,32,256]

For each N: N/30 tenants on the seed's three tables, 22 days of partitions each (made by
partman on a simulated clock: 11 days, then 11 days later the next 11), kept forever. That
database is the template; every contestant gets a copy of it (CREATE DATABASE ... TEMPLATE,
STRATEGY FILE_COPY), so each starts from the same catalog. Then the policy becomes "1 day":
the 10 oldest days of every tenant (N partitions) have expired, and nothing else changes.

* partman: one maintain() drops them (retention detaches each with DETACH PARTITION ...
  CONCURRENTLY, checks that it is still its own and holds no row inside the retention window,
  then drops it and records that in its metadata and audit log).
* plain SQL through psycopg, the same N tables:
  - `DROP TABLE a, b, c, ...`: one statement per transaction of k tables;
  - `DROP TABLE a; DROP TABLE b; ...`: k statements per transaction;
  - `ALTER TABLE parent DETACH PARTITION p CONCURRENTLY` then `DROP TABLE p`, one partition
    at a time (two autocommit round trips): the lock-friendly shape partman uses.
  The first two take ACCESS EXCLUSIVE on the parent (they stop the application's reads and
  writes until commit); the third never blocks them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

TARGET = 1.2
KEEP = "1 day"
DAYS_EXPIRED = 10


def build_template(srv: b.Server, tenants: int, name: str) -> tuple[str, dt.datetime]:
    dsn = b.create_database(srv, name)
    b.seed_schema(dsn)
    clock = partman.SimulatedClock(b.START)
    pool = b.counting_pool(dsn)
    try:
        manager = b.quiet_manager(pool, clock, batch_size=256)
        b.register_tenants(manager, b.tenant_ids(tenants))
        for step in range(2):
            if step:
                clock.advance(11 * b.DAY)
            report = manager.maintain()
            if not report.ok:
                raise RuntimeError(f"set-up pass: {report}")
        manager.close()
    finally:
        pool.close()
    return dsn, clock.now()


def clone(srv: b.Server, template: str, name: str) -> str:
    b.drop_database(srv, name)
    with psycopg.connect(srv.dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    return srv.dsn_for(name)


def expired(dsn: str, now: dt.datetime) -> list[tuple[str, str, str, str]]:
    """(schema, name, parent schema, parent name) of the partitions a 1-day policy expires."""
    cutoff = now - dt.timedelta(days=1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT schema_name, partition_name, parent_schema, parent_name "
                "FROM {}.partitions WHERE upper_bound::timestamptz <= %s ORDER BY 1, 2"
            ).format(sql.Identifier(b.META)),
            (cutoff,),
        ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def run_partman(dsn: str, now: dt.datetime, **config: Any) -> dict[str, Any]:
    pool = b.counting_pool(dsn)
    try:
        manager = b.quiet_manager(pool, partman.SimulatedClock(now), **config)
        for name in b.TABLES:
            manager.add_managed_table(b.template(name, retention=KEEP))
        manager.init()
        plan = manager.plan()
        b.Trips.n = 0
        seconds, report = b.timed(manager.maintain)
        trips = b.Trips.n
        manager.close()
    finally:
        pool.close()
    if not report.ok:
        raise RuntimeError(f"partman retention pass not clean: {report}")
    if len(report.created):
        raise RuntimeError(f"the retention pass also created {len(report.created)}")
    return {"seconds": seconds, "trips": trips, "dropped": len(report.dropped), "plan": len(plan)}


def run_plain(dsn: str, victims: list[tuple[str, str, str, str]], shape: str, batch: int
              ) -> dict[str, Any]:  # fmt: skip
    idents = [sql.Identifier(s, n) for s, n, _, _ in victims]
    trips = 0

    def go() -> None:
        nonlocal trips
        with psycopg.connect(dsn, autocommit=True) as conn:
            if shape == "concurrently":
                for (_s, _n, ps, pn), ident in zip(victims, idents, strict=True):
                    conn.execute(
                        sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                            sql.Identifier(ps, pn), ident
                        )
                    )
                    conn.execute(sql.SQL("DROP TABLE {}").format(ident))
                    trips += 2
                return
            for i in range(0, len(idents), batch):
                chunk = idents[i : i + batch]
                if shape == "list":
                    body: list[sql.Composable] = [
                        sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(chunk))
                    ]
                else:
                    body = [sql.SQL("DROP TABLE {}").format(t) for t in chunk]
                if len(body) == 1:
                    conn.execute(body[0])
                else:
                    conn.execute(sql.SQL(";\n").join([sql.SQL("BEGIN"), *body, sql.SQL("COMMIT")]))
                trips += 1

    seconds, _ = b.timed(go)
    return {"seconds": seconds, "trips": trips, "dropped": len(victims)}


SHAPES = {
    "list": "DROP TABLE a, b, ... ({k}/txn)",
    "each": "DROP TABLE a; DROP TABLE b; ... ({k}/txn)",
    "concurrently": "DETACH CONCURRENTLY + DROP, 1 at a time",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--expired", default="300,3000", help="N, multiples of 30")
    parser.add_argument("--batches", default="1,32,256", help="plain SQL: DROPs per transaction")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = [60, 150] if args.quick else [int(x) for x in args.expired.split(",")]
    batches = [int(x) for x in args.batches.split(",")]

    rows: list[list[Any]] = []
    verdicts: list[str] = []
    with b.server("18") as srv:
        b.progress(srv.describe())
        for n in sizes:
            tenants = n // (len(b.TABLES) * DAYS_EXPIRED)
            tpl = f"ret_tpl_{n}"
            b.progress(f"N={n}: template database, {tenants} tenants x 3 tables x 22 days")
            tpl_dsn, now = build_template(srv, tenants, tpl)
            total = b.count_partitions(tpl_dsn)
            victims = expired(tpl_dsn, now)
            if len(victims) != n:
                raise RuntimeError(f"{len(victims)} partitions expire, expected {n}")
            results: dict[str, dict[str, Any]] = {}
            b.progress(f"N={n}: partman maintain()")
            dsn = clone(srv, tpl, "ret_run")
            results["partman"] = run_partman(dsn, now)
            if b.count_partitions(dsn) != total - n:
                raise RuntimeError("partman left the wrong number of partitions")
            b.progress(f"N={n}: partman maintain(), detach_concurrently = false")
            dsn = clone(srv, tpl, "ret_run")
            results["partman_locked"] = run_partman(dsn, now, detach_concurrently=False)
            if b.count_partitions(dsn) != total - n:
                raise RuntimeError("partman (locked) left the wrong number of partitions")
            contestants = [("concurrently", 1)] + [
                (shape, k) for shape in ("list", "each") for k in batches
            ]
            for shape, k in contestants:
                b.progress(f"N={n}: plain SQL {shape}, {k}")
                dsn = clone(srv, tpl, "ret_run")
                results[f"{shape}:{k}"] = run_plain(dsn, victims, shape, k)
                if b.count_partitions(dsn) != total - n:
                    raise RuntimeError(f"{shape}: wrong number of partitions left")
            b.drop_database(srv, "ret_run")
            b.drop_database(srv, tpl)
            plain = {k: v for k, v in results.items() if not k.startswith("partman")}
            fastest_key = min(plain, key=lambda k: plain[k]["seconds"])
            fastest = plain[fastest_key]["seconds"]
            same = plain["concurrently:1"]["seconds"]
            for key, r in results.items():
                if key == "partman":
                    who, shape = "partman maintain()", "DETACH CONCURRENTLY + checks + DROP"
                elif key == "partman_locked":
                    who = "partman, detach_concurrently = false"
                    shape = "checks + DETACH + DROP, batches of 32"
                else:
                    s, k = key.split(":")
                    who = "plain SQL" + (" (fastest)" if key == fastest_key else "")
                    shape = SHAPES[s].format(k=k)
                rows.append(
                    [
                        f"{n:,}",
                        f"{total:,}",
                        who,
                        shape,
                        b.secs(r["seconds"]),
                        f"{r['seconds'] / n * 1000:.1f} ms",
                        f"{r['trips']:,}",
                        b.ratio(r["seconds"], fastest),
                    ]
                )
            p = results["partman"]["seconds"]
            locked = results["partman_locked"]["seconds"]
            verdicts.append(
                f"N={n}: partman / fastest plain SQL ({fastest_key}) = {p / fastest:.2f}x; "
                f"partman / plain DETACH CONCURRENTLY + DROP = {p / same:.2f}x (the same "
                f"locks); target <= {TARGET}x: "
                + b.verdict(p / fastest <= TARGET or p / same <= TARGET)
            )
            verdicts.append(
                f"N={n}: partman with detach_concurrently = false (ACCESS EXCLUSIVE, like the "
                f"plain DROPs) / fastest plain SQL = {locked / fastest:.2f}x; target <= "
                f"{TARGET}x: " + b.verdict(locked / fastest <= TARGET)
            )
    b.print_table(
        "3. Retention: dropping N expired partitions",
        [
            "N",
            "partitions before",
            "who",
            "shape",
            "wall",
            "per partition",
            "round trips",
            "vs fastest plain",
        ],
        rows,
        verdicts,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
