"""pg-partsmith: the same daily workload, pg-partsmith's maintenance against partman's.

    .venv/bin/python benchmarks/vs_partsmith.py [--parents 100] [--sub-parents 100] [--back 10]
                                                [--runs 5] [--quick]

pg-partsmith (PyPI `pg-partsmith`, the active Python peer) is installed into this venv with pip
when it cannot be imported (benchmark set-up only, never a dependency of partman: first with
--no-deps, so the dev install's pinned packages stay as they are, then with its dependencies if
something is missing). Both run on the same throwaway PostgreSQL 18 (embedded), each in a
database of its own, at the server's real time (pg-partsmith reads now() from the server;
partman gets a RealClock), on the same P parents:

* shape A, `RANGE (created_at)`, PK (id, created_at): daily partitions, the current day and 10
  ahead, and `--back` days behind it (default 10: 21 partitions per parent);
* shape B, `RANGE (created_at)` with each day `PARTITION BY HASH (device_id)` into 4 leaves
  (MODULUS 4), PK (id, created_at, device_id): the same days, 5 relations each.

Phases, each timed for both (pg-partsmith: one `PartitionMaintainer.run_maintenance(config)`
per parent, as a scheduler calls it; partman: one `Manager.maintain()` for all of them):

1. premake: pg-partsmith has no registration (a config is a Python object); its partitions
   behind today are made with `service.ensure_partitions(config, days)` (its backfill call),
   the rest by the first maintenance run (`CreateAhead(11)`: today and 10 ahead). partman:
   `add_managed_table()` per parent (`partition_count=10`, `retention_period="10 days"`,
   `backfill=True`), then one `maintain()`.
2. a pass with nothing to do: median of `--runs`, after one untimed pass each.
3. retention 10 -> 5 days: pg-partsmith `KeepFor(5 days)` with `DropAfter(grace=0)` (its
   default keeps a detached partition for a week), partman `retention_period="5 days"`: five
   partitions (five subtrees in shape B) per parent are detached and dropped by one run. Both
   detach CONCURRENTLY (neither keeps a DEFAULT partition).

Round trips are counted on the client for both (every exchange passes through
`benchlib.CountingConnection.wait()`: partman's pool, and the connections pg-partsmith's
SQLAlchemy engine makes through psycopg 3).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

SCHEMA = "bench"
PACKAGE = "pg-partsmith>=1.10"
AHEAD = 10
KEEP_DAYS = 10
RETAIN_DAYS = 5
MODULUS = 4

FLAT_TABLE_SQL = b.SINGLE_TABLE_SQL
HASH_TABLE_SQL = b.SUB_HASH_TABLE_SQL


# --------------------------------------------------------------------------- set-up


def ensure_partsmith() -> str:
    """Import pg_partsmith, installing it into this interpreter's venv first if needed."""

    def version() -> str | None:
        importlib.invalidate_caches()
        try:
            module = importlib.import_module("pg_partsmith")
        except ImportError:
            return None
        return str(getattr(module, "__version__", "?"))

    found = version()
    if found:
        return found
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    # --no-deps first: pg-partsmith caps python-dateutil below 3 and the dev install may hold a
    # newer one (for mkdocs); what it needs is usually there already
    for extra in (["--no-deps"], []):
        b.progress(f"installing {PACKAGE} into {sys.prefix} {' '.join(extra)} (set-up only)")
        proc = subprocess.run([*pip, *extra, PACKAGE], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install {PACKAGE} failed:\n{proc.stdout}\n{proc.stderr}")
        for name in [m for m in sys.modules if m.startswith("pg_partsmith")]:
            del sys.modules[name]
        found = version()
        if found:
            return found
    raise RuntimeError(f"{PACKAGE} installed but pg_partsmith still does not import")


def parent_names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i:04d}" for i in range(n)]


def make_parents(dsn: str, names: list[str], ddl: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        for name in names:
            conn.execute(sql.SQL(ddl).format(sql.Identifier(SCHEMA, name)))


def count(dsn: str) -> tuple[int, int]:
    """(partitions directly under SCHEMA's roots, all partitions below them) in the database:
    in shape A both are the daily partitions; in shape B the second adds the hash leaves."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT p.relispartition), count(*) "
            "FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
            "JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (SCHEMA,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# --------------------------------------------------------------------------- contestants


class Partsmith:
    """pg-partsmith's sync API over a SQLAlchemy Engine (psycopg 3), one config per parent."""

    def __init__(self, dsn: str, names: list[str], sub: bool, keep_days: int) -> None:
        import sqlalchemy as sa
        from pg_partsmith.sync import PartitionToolkit

        self.dsn, self.names, self.sub = dsn, names, sub
        self.engine = sa.create_engine(
            "postgresql+psycopg://", creator=lambda: b.CountingConnection.connect(dsn)
        )
        self.kit = PartitionToolkit.from_engine(self.engine)
        self.configs = [self.config(name, keep_days) for name in names]

    def config(self, name: str, keep_days: int) -> Any:
        import pg_partsmith as ps

        child = ps.HashPartitioning(key=("device_id",), modulus=MODULUS) if self.sub else None
        return ps.TablePartitionConfig(
            schema=SCHEMA,
            table_name=name,
            scheme=ps.RangePartitioning(
                key=("created_at",),
                boundaries=ps.TimeBoundaries(granularity=ps.PartitionGranularity.DAY),
                child=child,
            ),
            lifecycle=ps.LifecyclePolicy(
                creation=ps.CreateAhead(count=AHEAD + 1),  # the cursor's window and 10 after it
                retention=ps.KeepFor(age=dt.timedelta(days=keep_days)),
                drop=ps.DropAfter(grace=dt.timedelta(0)),  # default: a week detached
            ),
        )

    def retain(self, keep_days: int) -> None:
        self.configs = [self.config(name, keep_days) for name in self.names]

    def backfill(self, back: int) -> None:
        if back <= 0:
            return
        now = dt.datetime.now(dt.UTC)
        days = [now - i * b.DAY for i in range(1, back + 1)]
        for cfg in self.configs:
            self.kit.service.ensure_partitions(cfg, days)

    def maintain(self) -> None:
        for cfg in self.configs:
            result = self.kit.maintainer.run_maintenance(cfg)
            if result.error or result.issues:
                raise RuntimeError(f"pg-partsmith {cfg.qualified_name}: {result}")

    def premake(self, back: int) -> None:
        self.backfill(back)
        self.maintain()

    def close(self) -> None:
        self.engine.dispose()


def partman_table(name: str, sub: bool, keep_days: int, backfill: bool) -> partman.Table:
    extra: dict[str, Any] = {"backfill": True} if backfill else {}
    if sub:  # the RANGE -> HASH shape (a "shapes:" commit)
        extra.update(sub_partition_by="device_id", sub_partition_modulus=MODULUS)
    return partman.Table(
        name=name,
        schema=SCHEMA,
        partition_by="created_at",
        partition_interval="1 day",
        partition_count=AHEAD,
        retention_period=f"{keep_days} days",
        **extra,
    )


class Partman:
    def __init__(self, dsn: str, names: list[str], sub: bool, keep_days: int,
                 backfill: bool) -> None:  # fmt: skip
        self.names, self.sub, self.keep, self.backfill = names, sub, keep_days, backfill
        partman_table(names[0], sub, keep_days, backfill)  # fails here if the API is missing
        self.pool = b.counting_pool(dsn)
        self.manager = b.quiet_manager(self.pool, partman.RealClock())
        self.manager.init()

    def register(self) -> None:
        for name in self.names:
            self.manager.add_managed_table(partman_table(name, self.sub, self.keep, self.backfill))

    def retain(self, keep_days: int) -> None:
        self.keep = keep_days
        self.register()

    def maintain(self) -> None:
        report = self.manager.maintain()
        if not report.ok:
            raise RuntimeError(f"partman pass not clean: {report}")

    def premake(self) -> None:
        self.register()
        self.maintain()

    def close(self) -> None:
        self.manager.close()
        self.pool.close()


# --------------------------------------------------------------------------- one shape


def delta(after: tuple[int, int], before: tuple[int, int]) -> str:
    top, leaves = after[0] - before[0], after[1] - before[1]
    return f"{top:+,}" if top == leaves else f"{top:+,} ({leaves:+,})"


def total(after: tuple[int, int]) -> str:
    return f"{after[0]:,}" if after[0] == after[1] else f"{after[0]:,} ({after[1]:,})"


class Shape:
    """One shape's three phases, pg-partsmith then partman, rows and verdicts collected."""

    def __init__(self, srv: b.Server, label: str, sub: bool, names: list[str], back: int,
                 out: Results) -> None:  # fmt: skip
        self.srv, self.label, self.sub, self.names, self.back = srv, label, sub, names, back
        self.out = out
        self.tag = "hash" if sub else "flat"
        ddl = HASH_TABLE_SQL if sub else FLAT_TABLE_SQL
        self.ps_dsn = b.create_database(srv, f"partsmith_{self.tag}")
        self.pm_dsn = b.create_database(srv, f"partman_{self.tag}")
        make_parents(self.ps_dsn, names, ddl)
        make_parents(self.pm_dsn, names, ddl)
        self.keep = back if back else KEEP_DAYS
        self.ps = Partsmith(self.ps_dsn, names, sub, self.keep)
        self.pm: Partman | None = None
        self.pm_error: str | None = None
        try:
            self.pm = Partman(self.pm_dsn, names, sub, self.keep, bool(back))
        except Exception as exc:  # the sub-partitioned API may not be there (yet)
            self.fail("set-up", exc)

    def fail(self, phase: str, exc: Exception) -> None:
        self.pm_error = f"{type(exc).__name__}: {exc}"
        self.out.failures.append(f"{self.label}, {phase}: {self.pm_error}")

    def partman_ok(self) -> bool:
        return self.pm is not None and self.pm_error is None

    def phase(self, phase: str, ps_fn: Callable[[], Any], pm_fn: Callable[[], Any],
              repeat: int = 1) -> None:  # fmt: skip
        """Time ps_fn and pm_fn (the median of `repeat` runs each) and add a row."""

        def run(fn: Callable[[], Any], dsn: str) -> tuple[float, int, str, tuple[int, int]]:
            before = count(dsn)
            b.Trips.n = 0
            t, _ = b.median_of(fn, repeat)
            trips = b.Trips.n // repeat
            after = count(dsn)
            return t, trips, delta(after, before), after

        b.progress(f"{self.label}: {phase}: pg-partsmith")
        t_ps, trips_ps, made_ps, after_ps = run(ps_fn, self.ps_dsn)
        pm_cells = ["-", "-", "-"]
        t_pm: float | None = None
        after_pm = "-"
        if self.partman_ok():
            b.progress(f"{self.label}: {phase}: partman")
            try:
                t_pm, trips_pm, made_pm, after = run(pm_fn, self.pm_dsn)
                pm_cells = [b.secs(t_pm), made_pm, f"{trips_pm:,}"]
                after_pm = total(after)
            except Exception as exc:
                self.fail(phase, exc)
        times = f" (median of {repeat})" if repeat > 1 else ""
        self.out.rows.append(
            [
                f"{self.label} {phase}{times}",
                b.secs(t_ps),
                made_ps,
                f"{trips_ps:,}",
                *pm_cells,
                "-" if t_pm is None else b.ratio(t_ps, t_pm),
                f"{total(after_ps)} / {after_pm}",
            ]
        )
        if t_pm is not None:
            self.out.verdicts.append(
                f"{self.label} {phase}: pg-partsmith / partman = {t_ps / t_pm:.2f}x; target > 1x: "
                + b.verdict(t_pm < t_ps)
            )

    def run(self, runs: int) -> None:
        pm = self.pm
        try:
            self.phase("1. premake", lambda: self.ps.premake(self.back),
                       pm.premake if pm else _nothing)  # fmt: skip
            # one untimed pass each, then passes with nothing to do
            self.ps.maintain()
            if pm is not None and self.partman_ok():
                try:
                    pm.maintain()
                except Exception as exc:
                    self.fail("untimed pass", exc)
            self.phase(
                "2. nothing to do",
                self.ps.maintain,
                pm.maintain if pm else _nothing,
                repeat=runs,
            )
            self.ps.retain(RETAIN_DAYS)
            if pm is not None and self.partman_ok():
                try:
                    pm.retain(RETAIN_DAYS)
                except Exception as exc:
                    self.fail("retention re-registration", exc)
            self.phase(
                f"3. retention {self.keep} -> {RETAIN_DAYS} days",
                self.ps.maintain,
                pm.maintain if pm else _nothing,
            )
        finally:
            self.ps.close()
            if pm is not None:
                pm.close()
            b.drop_database(self.srv, f"partsmith_{self.tag}")
            b.drop_database(self.srv, f"partman_{self.tag}")


def _nothing() -> None:
    return None


class Results:
    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.verdicts: list[str] = []
        self.failures: list[str] = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parents", type=int, default=100, help="shape A: daily parents")
    parser.add_argument(
        "--sub-parents", type=int, default=100, help="shape B (RANGE -> HASH): parents; 0 skips"
    )
    parser.add_argument(
        "--back", type=int, default=KEEP_DAYS,
        help="days made behind today at premake (10: 21 partitions per parent; 0: 11, the "
        "issue's 1,100 for 100 parents, without retention phase drops)",
    )  # fmt: skip
    parser.add_argument("--runs", type=int, default=5, help="passes with nothing to do (median)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    parents = 5 if args.quick else args.parents
    sub_parents = min(3, args.sub_parents) if args.quick else args.sub_parents
    runs = 3 if args.quick else args.runs

    version = ensure_partsmith()
    out = Results()
    started = time.perf_counter()
    with b.server("18") as srv:
        b.progress(srv.describe())
        b.progress(f"pg-partsmith {version}")
        shapes = [("A", False, parent_names("t", parents))]
        if sub_parents:
            shapes.append(("B", True, parent_names("h", sub_parents)))
        for label, sub, names in shapes:
            Shape(srv, label, sub, names, args.back, out).run(runs)
    b.print_table(
        f"6. pg-partsmith {version} vs partman, PostgreSQL {srv.version}: A = {parents} parents "
        f"RANGE (created_at), B = {sub_parents} parents RANGE (created_at) -> HASH (device_id) "
        f"modulus {MODULUS}; daily, {args.back} days back + today + {AHEAD} ahead",
        [
            "shape: phase",
            "pg-partsmith",
            "partitions",
            "round trips",
            "partman",
            "partitions",
            "round trips",
            "partsmith / partman",
            "after (partsmith / partman)",
        ],
        out.rows,
        [
            *out.verdicts,
            *[f"[red]partman failed[/]: {f}" for f in out.failures],
            "partitions: made (+) or dropped (-) by the phase, daily partitions with the hash "
            "leaves below them in brackets; round trips: of one run",
            "retention: both DETACH ... CONCURRENTLY, then DROP (no DEFAULT partition)",
            "pg-partsmith: PartitionToolkit.from_engine(SQLAlchemy Engine over psycopg 3), "
            "maintainer.run_maintenance(config) per parent",
            f"{b.secs(time.perf_counter() - started)} in all",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
