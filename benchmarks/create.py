"""Create: premake from nothing, partman's maintain() against plain SQL, in one run.

    .venv/bin/python benchmarks/create.py [--tenants 100,1000] [--batches 1,32,256,1000]

For each tenant count T: the seed's three tables (convoy.events, event_deliveries,
delivery_attempts: RANGE (project_id, created_at), PK (id, created_at, project_id)), T tenants
registered, partition_count 10, so a pass creates T x 3 x 11 partitions (today and 10 days
ahead). Each contestant gets a fresh database on the same server:

* partman: registration and metadata set-up are not timed; one maintain() is.
* plain SQL through psycopg, two statement shapes, each in several transaction sizes (one
  multi-statement string per transaction, i.e. one round trip):
  - `CREATE TABLE ... PARTITION OF ... FOR VALUES ...` (ACCESS EXCLUSIVE on the parent);
  - `CREATE TABLE ... (LIKE parent INCLUDING ...)` + `ALTER TABLE ... ATTACH PARTITION`
    (SHARE UPDATE EXCLUSIVE on the parent: the shape partman uses).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import benchlib as b

import partman

TARGET = 1.2


def run_partman(srv: b.Server, tenants: int, batch_size: int) -> dict[str, Any]:
    name = f"create_partman_{tenants}_{batch_size}"
    dsn = b.create_database(srv, name)
    b.seed_schema(dsn)
    pool = b.counting_pool(dsn)
    try:
        manager = b.quiet_manager(pool, partman.SimulatedClock(b.START), batch_size=batch_size)
        b.register_tenants(manager, b.tenant_ids(tenants))
        manager.init()
        b.Trips.n = 0
        seconds, report = b.timed(manager.maintain)
        trips = b.Trips.n
        if not report.ok:
            raise RuntimeError(f"partman pass not clean: {report}")
        made = b.count_partitions(dsn)
    finally:
        pool.close()
        b.drop_database(srv, name)
    return {"seconds": seconds, "trips": trips, "made": made, "created": len(report.created)}


def run_plain(srv: b.Server, tenants: int, shape: str, batch: int) -> dict[str, Any]:
    name = f"create_plain_{tenants}_{shape}_{batch}"
    dsn = b.create_database(srv, name)
    b.seed_schema(dsn)
    try:
        statements = [b.create_sql(p, shape) for p in b.parts(b.tenant_ids(tenants), b.START, 11)]
        seconds, trips = b.timed(lambda: b.run_batches(dsn, statements, batch))
        made = b.count_partitions(dsn)
    finally:
        b.drop_database(srv, name)
    return {"seconds": seconds, "trips": trips, "made": made}


SHAPES = {
    "partition_of": "CREATE ... PARTITION OF",
    "like_attach": "CREATE (LIKE) + ATTACH",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="100,300", help="comma separated tenant counts")
    parser.add_argument(
        "--batches", default="1,32,256,1000", help="plain SQL: partitions per transaction"
    )
    parser.add_argument(
        "--partman-batch", default="32", help="partman Config.batch_size values (32 = default)"
    )
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="every batch size at every T (default: the grid at the first T, then only the "
        "fastest batch size of each shape)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    counts = [10, 30] if args.quick else [int(x) for x in args.tenants.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    partman_batches = [int(x) for x in args.partman_batch.split(",")]

    rows: list[list[Any]] = []
    verdicts: list[str] = []
    best: dict[str, list[int]] = {}
    with b.server("18") as srv:
        b.progress(srv.describe())
        for tenants in counts:
            expected = tenants * len(b.TABLES) * 11
            results: dict[str, dict[str, Any]] = {}
            for pb in partman_batches:
                b.progress(f"T={tenants}: partman maintain() (batch_size {pb})")
                results[f"partman:{pb}"] = run_partman(srv, tenants, pb)
            for shape in SHAPES:
                for batch in best.get(shape, batches):
                    b.progress(f"T={tenants}: plain SQL {shape}, {batch} per transaction")
                    results[f"{shape}:{batch}"] = run_plain(srv, tenants, shape, batch)
                if not args.full_grid:  # larger sizes: only the fastest size found here
                    mine = {k: v for k, v in results.items() if k.startswith(shape + ":")}
                    fastest_batch = min(mine, key=lambda k: mine[k]["seconds"])
                    best.setdefault(shape, [int(fastest_batch.split(":")[1])])
            for key, r in results.items():
                if r["made"] != expected:
                    raise RuntimeError(f"{key}: {r['made']} partitions, expected {expected}")
            plain = {k: v for k, v in results.items() if not k.startswith("partman")}
            fastest_key = min(plain, key=lambda k: plain[k]["seconds"])
            fastest = plain[fastest_key]["seconds"]
            same_shape = min(v["seconds"] for k, v in plain.items() if k.startswith("like"))
            for key, r in results.items():
                what, batch = key.split(":")
                if what == "partman":
                    label = "partman maintain()"
                    shape = f"LIKE + ATTACH, batch_size {batch}"
                else:
                    label = "plain SQL" + (" (fastest)" if key == fastest_key else "")
                    shape = f"{SHAPES[what]}, {batch}/txn"
                rows.append(
                    [
                        f"{tenants}",
                        f"{expected:,}",
                        label,
                        shape,
                        b.secs(r["seconds"]),
                        f"{expected / r['seconds']:,.0f}",
                        f"{r['trips']:,}",
                        b.ratio(r["seconds"], fastest),
                    ]
                )
            main_run = results[f"partman:{partman_batches[0]}"]["seconds"]
            verdicts.append(
                f"T={tenants}: partman / fastest plain SQL ({fastest_key}) = "
                f"{main_run / fastest:.2f}x, partman / fastest plain LIKE+ATTACH = "
                f"{main_run / same_shape:.2f}x; target <= {TARGET}x: "
                + b.verdict(main_run / fastest <= TARGET)
            )
    b.print_table(
        "1. Create: premake from nothing (3 tables x T tenants x 11 days)",
        [
            "tenants",
            "partitions",
            "who",
            "shape",
            "wall",
            "partitions/s",
            "round trips",
            "vs fastest plain",
        ],
        rows,
        verdicts,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
