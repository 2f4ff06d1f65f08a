"""pg_partman: the same single-key daily workload, pg_partman's maintenance against partman's.

    .venv/bin/python benchmarks/vs_pg_partman.py [--parents 300] [--runs 5]

Set-up (only when this benchmark runs): Debian's `postgresql-15-partman` is installed with
apt-get if it is not there yet (never a dependency of partman), and a throwaway Debian
PostgreSQL 15 is started. pg_partman gets its own database (`CREATE EXTENSION pg_partman SCHEMA
partman_ext`), partman another; both hold the same P parents, `RANGE (created_at)`, PK (id,
created_at), and manage them the same way: daily partitions, 10 ahead, 10 days back from the
start. Both run at the server's real time (pg_partman reads CURRENT_TIMESTAMP; partman gets a
RealClock). Phases, each timed for both:

1. registration + initial premake: pg_partman `create_parent(p_premake := 10,
   p_start_partition := today - 10 days)` per parent (it registers and creates at once);
   partman `add_managed_table()` per parent, then one `maintain()` (retention 10 days with
   backfill: the same 21 partitions per parent).
2. steady state: `CALL run_maintenance_proc()` with nothing to do, against `maintain()`.
3. premake: premake raised from 10 to 15 (part_config / partition_count): 5 new partitions
   per parent, made by one maintenance run.
4. retention: retention lowered to 5 days (pg_partman: `retention_keep_table = false`): the
   expired partitions are dropped by one maintenance run.

Each tool runs with its defaults otherwise: pg_partman 4.x also makes a DEFAULT partition and a
template table per parent and detaches with plain DETACH (ACCESS EXCLUSIVE); partman makes no
default partition and detaches CONCURRENTLY, with its checks, metadata and audit rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import subprocess
import sys
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

SCHEMA = "bench"
EXT_SCHEMA = "partman_ext"
PACKAGE = "postgresql-15-partman"


def install_pg_partman() -> str:
    """apt-get install Debian's package if needed; returns its version."""

    def version() -> str | None:
        proc = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0 and proc.stdout.startswith("install ok installed"):
            return proc.stdout.split()[-1]
        return None

    found = version()
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{PACKAGE} is not installed and apt-get is not available")
    b.progress(f"installing {PACKAGE} with apt-get (benchmark set-up only)")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get install {PACKAGE} failed:\n{proc.stdout}\n{proc.stderr}")
    found = version()
    if not found:
        raise RuntimeError(f"{PACKAGE} still not installed")
    return found


def parent_names(n: int) -> list[str]:
    return [f"t_{i:04d}" for i in range(n)]


def make_parents(dsn: str, names: list[str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        for name in names:
            conn.execute(sql.SQL(b.SINGLE_TABLE_SQL).format(sql.Identifier(SCHEMA, name)))


def count(dsn: str) -> tuple[int, int]:
    """(daily partitions, other children such as default partitions) under SCHEMA's parents."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'), "
            "count(*) FILTER (WHERE pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT') "
            "FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE n.nspname = %s AND p.relkind = 'p'",
            (SCHEMA,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class PgPartman:
    def __init__(self, dsn: str, names: list[str]) -> None:
        self.dsn, self.names = dsn, names
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(EXT_SCHEMA)))
            conn.execute(
                sql.SQL("CREATE EXTENSION pg_partman SCHEMA {}").format(sql.Identifier(EXT_SCHEMA))
            )
            row = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'"
            ).fetchone()
            self.version = str(row[0]) if row else "?"
            args = conn.execute(
                "SELECT pg_get_function_arguments(p.oid) FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND p.proname = 'create_parent'",
                (EXT_SCHEMA,),
            ).fetchone()
            self.create_parent_args = str(args[0]) if args else ""
        self.major = int(self.version.split(".")[0])

    def register(self, start: dt.datetime) -> None:
        """create_parent per parent, each in its own transaction, as a user would."""
        kind = "native" if self.major < 5 else "range"
        extra = "" if self.major < 5 else ", p_default_table := true"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for name in self.names:
                conn.execute(
                    sql.SQL(
                        "SELECT {}.create_parent(p_parent_table := {}, p_control := 'created_at', "
                        "p_type := {}, p_interval := '1 day', p_premake := 10, "
                        "p_start_partition := {}" + extra + ")"
                    ).format(
                        sql.Identifier(EXT_SCHEMA),
                        sql.Literal(f"{SCHEMA}.{name}"),
                        sql.Literal(kind),
                        sql.Literal(start.strftime("%Y-%m-%d %H:%M:%S")),
                    )
                )

    def configure(self, **settings: Any) -> None:
        """UPDATE part_config for every parent."""
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(v))
            for k, v in settings.items()
        )
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("UPDATE {}.part_config SET {}").format(
                    sql.Identifier(EXT_SCHEMA), assignments
                )
            )

    def maintain(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CALL {}.run_maintenance_proc()").format(sql.Identifier(EXT_SCHEMA))
            )


class Partman:
    def __init__(self, dsn: str, names: list[str], **config: Any) -> None:
        self.dsn, self.names = dsn, names
        self.manager = b.quiet_manager(dsn, partman.RealClock(), **config)
        self.manager.init()

    def table(self, name: str, **policy: Any) -> partman.Table:
        settings: dict[str, Any] = {
            "partition_count": 10,
            "retention_period": "10 days",
            "backfill": True,
        }
        settings.update(policy)
        return partman.Table(
            name=name,
            schema=SCHEMA,
            partition_by="created_at",
            partition_interval="1 day",
            **settings,
        )

    def register(self, **policy: Any) -> None:
        for name in self.names:
            self.manager.add_managed_table(self.table(name, **policy))

    def maintain(self) -> partman.Report:
        report = self.manager.maintain()
        if not report.ok:
            raise RuntimeError(f"partman pass not clean: {report}")
        return report

    def close(self) -> None:
        self.manager.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parents", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5, help="steady-state runs (median)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    parents = 10 if args.quick else args.parents
    names = parent_names(parents)

    package = install_pg_partman()
    rows: list[list[Any]] = []
    verdicts: list[str] = []
    with b.server("15") as srv:
        b.progress(srv.describe())
        pgp_dsn = b.create_database(srv, "with_pg_partman")
        pm_dsn = b.create_database(srv, "with_partman")
        locked_dsn = b.create_database(srv, "with_partman_locked")
        make_parents(pgp_dsn, names)
        make_parents(pm_dsn, names)
        make_parents(locked_dsn, names)
        pgp = PgPartman(pgp_dsn, names)
        pm = Partman(pm_dsn, names)
        # the same partman with Config.detach_concurrently = False: retention takes ACCESS
        # EXCLUSIVE, as pg_partman's does; it follows pm untimed until retention
        locked = Partman(locked_dsn, names, detach_concurrently=False)
        try:
            now = dt.datetime.now(dt.UTC)
            start = b.day_start(now) - 10 * b.DAY

            def phase(label: str, pgp_fn: Any, pm_fn: Any, note: str = "") -> float:
                b.progress(f"{label}: pg_partman")
                before_pgp = count(pgp_dsn)
                t_pgp, _ = b.timed(pgp_fn)
                after_pgp = count(pgp_dsn)
                b.progress(f"{label}: partman")
                before_pm = count(pm_dsn)
                t_pm, _ = b.timed(pm_fn)
                after_pm = count(pm_dsn)
                d_pgp = after_pgp[0] - before_pgp[0]
                d_pm = after_pm[0] - before_pm[0]
                rows.append(
                    [
                        label,
                        b.secs(t_pgp),
                        f"{d_pgp:+,}",
                        b.secs(t_pm),
                        f"{d_pm:+,}",
                        f"{after_pgp[0]:,} / {after_pm[0]:,}",
                        b.ratio(t_pm, t_pgp),
                        note,
                    ]
                )
                verdicts.append(
                    f"{label}: partman / pg_partman = {t_pm / t_pgp:.2f}x; target < 1x: "
                    + b.verdict(t_pm < t_pgp)
                )
                return t_pgp

            b.progress(f"pg_partman {pgp.version} ({package}); create_parent("
                       f"{pgp.create_parent_args[:200]}...)")  # fmt: skip
            reg_seconds: list[float] = []

            def pm_register_and_premake() -> None:
                t, _ = b.timed(pm.register)
                reg_seconds.append(t)
                pm.maintain()

            phase(
                "1. registration + initial premake",
                lambda: pgp.register(start),
                pm_register_and_premake,
            )
            rows[-1][-1] = f"partman: add_managed_table {b.secs(reg_seconds[0])} of it"
            locked.register()
            locked.maintain()
            # pg_partman premakes only for parents that hold rows unless this is on
            pgp.configure(infinite_time_partitions=True)
            # one untimed run each before the steady state: pg_partman's first run tops its
            # parents up (it keeps one more partition ahead than create_parent made)
            warm = count(pgp_dsn)[0], count(pm_dsn)[0]
            pgp.maintain()
            pm.maintain()
            locked.maintain()
            warm = count(pgp_dsn)[0] - warm[0], count(pm_dsn)[0] - warm[1]

            b.progress("2. steady state")
            pgp_runs = [b.timed(pgp.maintain)[0] for _ in range(args.runs)]
            pm_runs = [b.timed(pm.maintain)[0] for _ in range(args.runs)]
            t_pgp, t_pm = statistics.median(pgp_runs), statistics.median(pm_runs)
            total = count(pgp_dsn)[0], count(pm_dsn)[0]
            rows.append(
                [
                    "2. steady state (nothing to do)",
                    b.secs(t_pgp),
                    "+0",
                    b.secs(t_pm),
                    "+0",
                    f"{total[0]:,} / {total[1]:,}",
                    b.ratio(t_pm, t_pgp),
                    f"median of {args.runs}; a first, untimed run made {warm[0]:+} / {warm[1]:+}",
                ]
            )
            verdicts.append(
                f"2. steady state: partman / pg_partman = {t_pm / t_pgp:.2f}x; target < 1x: "
                + b.verdict(t_pm < t_pgp)
            )

            pgp.configure(premake=15)
            pm.register(partition_count=15)
            phase("3. premake 10 -> 15", pgp.maintain, pm.maintain)
            locked.register(partition_count=15)
            locked.maintain()

            pgp.configure(retention="5 days", retention_keep_table=False)
            pm.register(partition_count=15, retention_period="5 days")
            t_pgp = phase(
                "4. retention 10 -> 5 days",
                pgp.maintain,
                pm.maintain,
                "partman: DETACH CONCURRENTLY (never blocks)",
            )
            b.progress("4. retention: partman, detach_concurrently = false")
            locked.register(partition_count=15, retention_period="5 days")
            before = count(locked_dsn)[0]
            t_locked, _ = b.timed(locked.maintain)
            after = count(locked_dsn)[0]
            label = "4b. retention, detach_concurrently = false"
            rows.append(
                [
                    label,
                    b.secs(t_pgp),
                    "(same run)",
                    b.secs(t_locked),
                    f"{after - before:+,}",
                    f"- / {after:,}",
                    b.ratio(t_locked, t_pgp),
                    "both: ACCESS EXCLUSIVE on the parent, briefly",
                ]
            )
            verdicts.append(
                f"{label}: partman / pg_partman = {t_locked / t_pgp:.2f}x; target < 1x: "
                + b.verdict(t_locked < t_pgp)
            )
        finally:
            pm.close()
            locked.close()
    b.print_table(
        f"4. pg_partman {pgp.version} (Debian {package}) vs partman, PostgreSQL {srv.version}, "
        f"{parents} single-key daily parents",
        [
            "phase",
            "pg_partman",
            "partitions",
            "partman",
            "partitions",
            "partitions after (pg_partman / partman)",
            "partman / pg_partman",
            "",
        ],
        rows,
        [
            *verdicts,
            "pg_partman also keeps a DEFAULT partition and a template table per parent "
            "(not counted above); partman keeps neither",
            "pg_partman runs with infinite_time_partitions = true: without it, its maintenance "
            "makes no new partition for a parent that holds no rows (these are empty)",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
