"""A fleet (issue 17): N databases in one partman.toml, applied by one `partman apply` and
served by one `partman run`, beside the alternative of one cron line per database.

    .venv/bin/python benchmarks/fleet.py [--databases 1,4,16] [--tenants 20] [--quick]

Every database holds one table, RANGE (tenant, time) by day with T tenants and 10 days ahead
(11 x T partitions to create on the first apply).

* **apply**: wall time of `partman apply --yes` as a subprocess (what cron runs: start-up
  included), over the fleet in one process, and as N processes one after another with
  `--database NAME` (one cron line per database); first the apply that creates everything, then
  one with nothing to do; and the fleet's once more with one more database whose DSN nobody
  answers (connection refused).
* **serve**: one `partman run` over the N databases (in-process `Fleet`, its first passes
  done): the median of 5 requests of `/metrics` (every database's series, read side by side),
  `/api/databases` and `/readyz`, with every database up and with one more that is down.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import benchlib as b
import psycopg

import partman
from partman.service import Fleet, Member, ServiceOptions

TABLE_SQL = """
CREATE TABLE events (tenant_id text NOT NULL, created_at timestamptz NOT NULL, n bigint)
    PARTITION BY RANGE (tenant_id, created_at)
"""
TABLE_TOML = """
[[table]]
name = "events"
tenant_id_column = "tenant_id"
partition_by = "created_at"
partition_interval = "1 day"
partition_count = 10
tenants = [{tenants}]
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(names: list[str], tenants: int, down: bool) -> str:
    ids = ", ".join(f'"t{i:04d}"' for i in range(tenants))
    text = '[partman]\nlock_timeout = "250ms"\n' + TABLE_TOML.format(tenants=ids)
    for name in names:
        text += f'\n[[databases]]\nname = "{name}"\ndsn_env = "DSN_{name.upper()}"\n'
    if down:
        dsn = f"host=127.0.0.1 port={closed_port()} dbname=down user=postgres connect_timeout=2"
        text += f'\n[[databases]]\nname = "down"\ndsn = "{dsn}"\n'
    return text


def apply(cwd: Path, env: dict[str, str], *args: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "partman", "apply", "--yes", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"partman apply failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def databases(srv: b.Server, prefix: str, n: int) -> dict[str, str]:
    out = {}
    for i in range(n):
        name = f"{prefix}{i:02d}"
        dsn = b.create_database(srv, name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TABLE_SQL)
        out[name] = dsn
    return out


def environ(dsns: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    env.update({f"DSN_{name.upper()}": dsn for name, dsn in dsns.items()})
    env.update({"NO_COLOR": "1", "PARTMAN_LOG_LEVEL": "warning"})
    return env


def measure_apply(srv: b.Server, n: int, tenants: int, work: Path) -> list[str]:
    fleet = databases(srv, f"f{n}_", n)
    alone = databases(srv, f"s{n}_", n)
    (work / "fleet.toml").write_text(config(list(fleet), tenants, down=False))
    (work / "alone.toml").write_text(config(list(alone), tenants, down=False))
    (work / "down.toml").write_text(config(list(fleet), tenants, down=True))
    env = environ({**fleet, **alone})
    one_process = apply(work, env, "--config", "fleet.toml")
    each = sum(apply(work, env, "--config", "alone.toml", "--database", d) for d in alone)
    steady_one = apply(work, env, "--config", "fleet.toml")
    steady_each = sum(apply(work, env, "--config", "alone.toml", "--database", d) for d in alone)
    with_down = apply(work, env, "--config", "down.toml")
    partitions = sum(b.count_partitions(dsn, "public") for dsn in fleet.values())
    for name in [*fleet, *alone]:
        b.drop_database(srv, name)
    return [
        str(n),
        f"{partitions:,}",
        b.secs(one_process),
        b.secs(each),
        b.secs(steady_one),
        b.secs(steady_each),
        b.secs(with_down),
    ]


def median_get(url: str, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                response.read()
        except urllib.error.HTTPError as error:  # a database down: 503 is an answer too
            error.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_serve(srv: b.Server, n: int, tenants: int, down: bool) -> list[str]:
    dsns = databases(srv, f"r{n}_", n)
    table = partman.Table(
        name="events", tenant_id_column="tenant_id", partition_by="created_at", partition_count=10
    )
    ids = [f"t{i:04d}" for i in range(tenants)]

    def register(manager: partman.Manager) -> None:
        manager.add_managed_table(table)
        manager.register_tenants(table, ids)

    members = [Member(name, dsn, register) for name, dsn in dsns.items()]
    if down:
        dsn = f"host=127.0.0.1 port={closed_port()} dbname=down user=postgres connect_timeout=1"
        members.append(Member("down", dsn, register))
    fleet = Fleet(
        members,
        config=partman.Config(sample_rate=dt.timedelta(minutes=10)),
        options=ServiceOptions(port=0, db_timeout=dt.timedelta(seconds=1), log_level="error"),
    )
    try:
        with fleet.start_server() as served:
            deadline = time.monotonic() + 300
            while any(b.count_partitions(dsn, "public") < 11 * tenants for dsn in dsns.values()):
                if time.monotonic() > deadline:
                    raise SystemExit("the fleet's first passes did not finish in 5 minutes")
                time.sleep(0.2)
            row = [
                f"{n}" + (" + 1 down" if down else ""),
                b.secs(median_get(served.url + "/metrics")),
                b.secs(median_get(served.url + "/api/databases")),
                b.secs(median_get(served.url + "/readyz")),
            ]
    finally:
        for name in dsns:
            b.drop_database(srv, name)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="1,4,16", help="fleet sizes, comma separated")
    parser.add_argument("--tenants", type=int, default=20, help="tenants per database")
    parser.add_argument("--server", default="18", help="18 (embedded) or a Debian major")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.databases.split(",")]
    tenants = args.tenants
    if args.quick:
        sizes, tenants = [1, 2], 2
    with b.server(args.server) as srv, tempfile.TemporaryDirectory() as tmp:
        b.progress(srv.describe())
        rows = []
        for n in sizes:
            b.progress(f"apply over {n} database(s)")
            rows.append(measure_apply(srv, n, tenants, Path(tmp)))
        b.print_table(
            f"Fleet: partman apply --yes over N databases ({tenants} tenants each, a subprocess "
            "as cron runs it)",
            [
                "databases",
                "partitions made",
                "first: one process",
                "first: one per database",
                "steady: one process",
                "steady: one per database",
                "steady, +1 down",
            ],
            rows,
            [
                "one process: `partman apply --yes` over every database of the file, each in turn;",
                "one per database: N runs of `partman apply --yes --database NAME`, one after "
                "another (a cron line per database), summed.",
                "+1 down: the fleet with one more database whose DSN is refused (exit 1; the "
                "others applied).",
            ],
        )
        rows = []
        for n in sizes:
            for down in (False, True):
                b.progress(f"serve {n} database(s){' + 1 down' if down else ''}")
                rows.append(measure_serve(srv, n, tenants, down))
        b.print_table(
            "Fleet: one partman run over N databases, median of 5 requests",
            ["databases", "/metrics", "/api/databases", "/readyz"],
            rows,
            [
                "db_timeout = 1 s. Each database's reads run side by side (up to 8 at a time); "
                "a database that is down costs the wait for its pool (db_timeout at most, then "
                "it is reported partman_database_up 0), not the others'.",
            ],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
