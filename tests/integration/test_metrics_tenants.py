"""Thousands of tenants on one table, as the service shows them: /metrics has series per table
by default (Prometheus pays for every series it keeps), per tenant only when asked, and the
per-table aggregates agree with what SQL says about the catalog and partman's metadata; the
tenants listing comes a page at a time, with the total."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

import partman
from partman.service import Service, ServiceOptions
from partman.service.metrics import RUNWAY_BUCKETS

from seed import NOW, create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
TENANTS = 2000
DAY = dt.timedelta(days=1)


@pytest.fixture
def scrape(dsn: str) -> Iterator[Callable[..., dict[str, Any]]]:
    """Serve a scheduler-less service with the given options; one /metrics scrape, parsed."""
    services: list[Service] = []

    def get(**options: Any) -> dict[str, Any]:
        service = Service(
            dsn,
            options=ServiceOptions(port=0, scheduler=False, log_level="warning", **options),
            clock=partman.SimulatedClock(NOW),
        )
        services.append(service)
        server = service.start_server()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                response = client.get("/metrics")
        finally:
            server.stop()
        assert response.status_code == 200
        return {f.name: f for f in text_string_to_metric_families(response.text)}

    yield get
    for service in services:
        service.close()


def _tenants(n: int) -> list[str]:
    return [f"project-{i:05d}" for i in range(n)]


def _days_ahead(i: int) -> int:
    """Tenant i's partitions: none for three tenants in four, else 1 to 3 days from today."""
    return 0 if i % 4 else 1 + (i // 4) % 3


@pytest.fixture
def crowded(conn: Conn, dsn: str) -> None:
    """convoy.events with TENANTS tenants (a quarter with 1-3 daily partitions from today, the
    rest with none), convoy.event_deliveries with one, convoy.delivery_attempts single-tenant
    in shape (no tenant registered)."""
    create_seed_schema(conn)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as manager:
        manager.register_tenants(seed_table("events"), _tenants(TENANTS))
        manager.register_tenants(seed_table("event_deliveries"), ["project-00000"])
    today = NOW.replace(hour=0)
    statements = [
        sql.SQL(
            "CREATE TABLE {} PARTITION OF convoy.events FOR VALUES FROM ({}, {}) TO ({}, {})"
        ).format(
            sql.Identifier("convoy", f"events_{tenant}_{d}"),
            sql.Literal(tenant),
            sql.Literal(today + d * DAY),
            sql.Literal(tenant),
            sql.Literal(today + (d + 1) * DAY),
        )
        for i, tenant in enumerate(_tenants(TENANTS))
        for d in range(_days_ahead(i))
    ]
    with conn.transaction():
        conn.execute(sql.SQL(";\n").join(statements))


def _samples(families: dict[str, Any], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in families[name].samples}


def _series(families: dict[str, Any]) -> int:
    return sum(len(f.samples) for f in families.values())


def _runway_from_sql(conn: Conn) -> dict[str, float]:
    """Each registered tenant of convoy.events: seconds from NOW to the upper bound of its
    newest partition (the test's partitions are contiguous from today), 0 without one."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows = conn.execute(
            """
SELECT t.tenant_id, max(b.m[2]::timestamptz)
  FROM partman_meta.tenants t
  JOIN partman_meta.managed_tables m ON m.id = t.table_id AND m.table_name = 'events'
  LEFT JOIN (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 $$TO \\('([^']*)', '([^']*)'\\)$$) AS m
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'convoy.events'::regclass) b ON b.m[1] = t.tenant_id
 GROUP BY t.tenant_id
"""
        ).fetchall()
    return {
        tenant: 0.0 if upper is None else (upper - NOW).total_seconds() for tenant, upper in rows
    }


def test_metrics_have_series_per_table_by_default_and_aggregates_match_sql(
    conn: Conn, crowded: None, scrape: Callable[..., dict[str, Any]]
) -> None:
    families = scrape()
    runway = _runway_from_sql(conn)
    assert len(runway) == TENANTS
    # no series carries a tenant: the whole scrape is per table, not per tenant
    assert not any("tenant" in s.labels for f in families.values() for s in f.samples)
    assert _series(families) < 150, _series(families)
    assert _samples(families, "partman_runway_seconds") == {}
    assert _samples(families, "partman_tenants") == {
        (("table", "convoy.events"),): TENANTS,
        (("table", "convoy.event_deliveries"),): 1.0,
    }
    partitions = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'convoy.events'::regclass"
    ).fetchone()
    assert partitions is not None and partitions[0] == 167 * 1 + 167 * 2 + 166 * 3
    assert _samples(families, "partman_partitions")[(("table", "convoy.events"),)] == 999
    least = _samples(families, "partman_runway_min_seconds")
    assert least[(("table", "convoy.events"),)] == min(runway.values()) == 0.0
    assert least[(("table", "convoy.event_deliveries"),)] == 0.0
    at_most = _samples(families, "partman_runway_tenants")
    for le in RUNWAY_BUCKETS:
        expected = sum(1 for seconds in runway.values() if seconds <= le)
        assert at_most[(("le", str(le)), ("table", "convoy.events"))] == expected, le
    # the buckets tell the tenants apart: 1,500 with nothing, then 167/167/166 at 0.5/1.5/2.5 days
    assert at_most[(("le", "0"), ("table", "convoy.events"))] == 1500
    assert at_most[(("le", "86400"), ("table", "convoy.events"))] == 1500 + 167
    assert at_most[(("le", "604800"), ("table", "convoy.events"))] == TENANTS


def test_metrics_per_tenant_export_one_runway_series_per_tenant_when_enabled(
    conn: Conn, crowded: None, scrape: Callable[..., dict[str, Any]]
) -> None:
    families = scrape(metrics_per_tenant=True)
    runway = _runway_from_sql(conn)
    per_tenant = {
        dict(labels)["tenant"]: value
        for labels, value in _samples(families, "partman_runway_seconds").items()
        if dict(labels)["table"] == "convoy.events"
    }
    assert per_tenant == runway
    assert _series(families) > TENANTS
    # the aggregates are there too, and the same as without per-tenant series
    assert _samples(families, "partman_tenants")[(("table", "convoy.events"),)] == TENANTS
    assert _samples(families, "partman_runway_tenants")[
        (("le", "0"), ("table", "convoy.events"))
    ] == sum(1 for s in runway.values() if s == 0)


def test_metrics_runway_of_a_table_without_tenants_stays_a_series_of_its_own(
    dsn: str, conn: Conn, scrape: Callable[..., dict[str, Any]]
) -> None:
    conn.execute(
        "CREATE TABLE public.hits (id bigint NOT NULL, created_at timestamptz NOT NULL) "
        "PARTITION BY RANGE (created_at)"
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as manager:
        manager.add_managed_table(
            partman.Table(
                name="hits", partition_by="created_at", partition_interval="1 day",
                partition_count=2,
            )
        )  # fmt: skip
        manager.maintain()
    families = scrape()
    expected = (NOW.replace(hour=0) + 3 * DAY - NOW).total_seconds()
    assert _samples(families, "partman_runway_seconds") == {
        (("table", "public.hits"), ("tenant", "")): expected
    }
    assert _samples(families, "partman_runway_min_seconds") == {
        (("table", "public.hits"),): expected
    }
    assert _samples(families, "partman_tenants") == {(("table", "public.hits"),): 0.0}
    at_most = _samples(families, "partman_runway_tenants")
    assert at_most[(("le", "86400"), ("table", "public.hits"))] == 0
    assert at_most[(("le", "259200"), ("table", "public.hits"))] == 1


def test_tenants_listing_pages_searches_and_orders_by_runway_with_a_total(
    dsn: str, conn: Conn, crowded: None
) -> None:
    runway = _runway_from_sql(conn)
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    server = service.start_server()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            path = "/api/tables/convoy.events/tenants"
            every = client.get(path)  # no limit: all of them, as before
            assert every.headers["X-Total-Count"] == str(TENANTS)
            assert [t["tenant_id"] for t in every.json()] == sorted(runway)
            page = client.get(path, params={"limit": 50, "offset": 1000})
            assert page.headers["X-Total-Count"] == str(TENANTS)
            assert [t["tenant_id"] for t in page.json()] == sorted(runway)[1000:1050]
            found = client.get(path, params={"search": "PROJECT-0199", "limit": 5})
            assert found.headers["X-Total-Count"] == "10"  # project-01990 .. project-01999
            assert [t["tenant_id"] for t in found.json()] == [f"project-0199{i}" for i in range(5)]
            worst = client.get(path, params={"order": "runway", "limit": 3, "offset": 1499})
            assert [t["coverage"]["runway_seconds"] for t in worst.json()] == [
                0.0,
                43200.0,
                43200.0,
            ]
            best = client.get(path, params={"order": "runway", "offset": TENANTS - 1}).json()
            assert best[0]["coverage"]["runway_seconds"] == max(runway.values())
            assert client.get(path, params={"limit": 0}).status_code == 422
    finally:
        server.stop()
        service.close()
