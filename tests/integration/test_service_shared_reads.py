"""The service's reads at many tenants: one inventory computed for all of them (concurrent
requests wait for it), renewed as soon as something changes (an API write, a pass, a change
made behind the service's back), and /api/partitions for some tenants only, which is all the
web UI asks for."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, Request, expect, sync_playwright
from psycopg import sql

import partman
from partman.service import Service, ServiceOptions

from seed import NOW, create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
DAY = dt.timedelta(days=1)
TOKEN = "shared-token"
TENANTS = 300


def _tenants(n: int) -> list[str]:
    return [f"project-{i:05d}" for i in range(n)]


def _crowd(conn: Conn, dsn: str, n: int, parted: int = TENANTS) -> None:
    """convoy.events with n tenants: tenant i < parted has i % 3 daily partitions from today
    (made in one statement, as the application would), and a default partition. PostgreSQL
    makes a partition of a parent with thousands in some 10 ms, so a test of thousands of
    tenants gives partitions to the first pages only."""
    create_seed_schema(conn)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as manager:
        manager.register_tenants(
            seed_table("events", partition_count=1, default_partition=True), _tenants(n)
        )
    today = NOW.replace(hour=0)
    statements: list[sql.Composable] = [
        sql.SQL("CREATE TABLE convoy.events_default PARTITION OF convoy.events DEFAULT")
    ]
    statements += [
        sql.SQL(
            "CREATE TABLE {} PARTITION OF convoy.events FOR VALUES FROM ({}, {}) TO ({}, {})"
        ).format(
            sql.Identifier("convoy", f"events_{tenant}_{d}"),
            sql.Literal(tenant),
            sql.Literal(today + d * DAY),
            sql.Literal(tenant),
            sql.Literal(today + (d + 1) * DAY),
        )
        for i, tenant in enumerate(_tenants(min(n, parted)))
        for d in range(i % 3)
    ]
    with conn.transaction():
        conn.execute(sql.SQL(";\n").join(statements))


@pytest.fixture
def crowded(conn: Conn, dsn: str) -> Iterator[Service]:
    _crowd(conn, dsn, TENANTS)
    service = Service(
        dsn,
        options=ServiceOptions(port=0, token=TOKEN, scheduler=False, log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    yield service
    service.close()


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"})


def test_concurrent_reads_share_one_inventory_computation(crowded: Service) -> None:
    server = crowded.start_server()
    paths = [
        "/metrics",
        "/api/tables",
        "/api/partitions",
        "/api/partitions?table=convoy.events&limit=40",
        "/api/tables/convoy.events/tenants?order=runway&limit=5",
        "/api/tables/convoy.events/tenants?limit=40",
        "/api/tables/convoy.events",
        "/api/partitions?table=convoy.events&tenant=project-00002",
    ] * 2
    answers: list[int] = []
    start = threading.Barrier(len(paths))

    def read(path: str) -> None:
        with _client(server.url) as client:
            start.wait()
            answers.append(client.get(path).status_code)

    try:
        with _client(server.url) as client:  # partman's metadata checked once, up front
            assert client.get("/readyz").status_code == 200
        threads = [threading.Thread(target=read, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert answers == [200] * len(paths)
    # sixteen reads that need the inventory, one computation of it
    assert crowded.reads.computed["inventory"] == 1


def test_a_change_through_the_api_a_pass_or_behind_the_service_shows_in_the_next_read(
    crowded: Service, conn: Conn
) -> None:
    server = crowded.start_server()
    try:
        with _client(server.url) as client:
            listing = "/api/tables/convoy.events/tenants"
            assert client.get(listing).headers["X-Total-Count"] == str(TENANTS)
            assert client.get("/api/tables").json()[0]["tenants"] == TENANTS
            assert crowded.reads.computed["inventory"] == 1

            # a tenant added through the API: the next read has it
            added = client.post(listing, json={"tenant_id": "zz-new"})
            assert added.status_code == 201, added.text
            assert client.get(listing).headers["X-Total-Count"] == str(TENANTS + 1)
            found = client.get("/api/partitions", params={"tenant": "zz-new"}).json()
            assert [c["tenant"] for c in found["coverage"]] == ["zz-new"]
            assert found["coverage"][0]["partitions"] == 0

            # a pass made its partitions: the next read shows them
            assert client.post("/api/apply").status_code == 200
            found = client.get("/api/partitions", params={"tenant": "zz-new"}).json()
            assert found["coverage"][0]["partitions"] == 2  # today and one ahead

            # a partition the application made behind the service's back
            conn.execute(
                sql.SQL(
                    "CREATE TABLE convoy.events_zz_later PARTITION OF convoy.events FOR VALUES "
                    "FROM ('zz-new', {}) TO ('zz-new', {})"
                ).format(sql.Literal(NOW + 5 * DAY), sql.Literal(NOW + 6 * DAY))
            )
            found = client.get("/api/partitions", params={"tenant": "zz-new"}).json()
            assert "convoy.events_zz_later" in {p["partition"] for p in found["partitions"]}
            assert found["coverage"][0]["partitions"] == 3

            # nothing changed: the reads share the last one
            before = crowded.reads.computed["inventory"]
            client.get("/api/tables")
            client.get("/metrics")
            assert crowded.reads.computed["inventory"] == before
    finally:
        server.stop()


def test_partitions_filtered_by_tenants_or_a_page_hold_exactly_those_tenants(
    crowded: Service,
) -> None:
    server = crowded.start_server()
    try:
        with _client(server.url) as client:
            everything = client.get("/api/partitions").json()
            default = [p for p in everything["partitions"] if p["is_default"]]
            assert len(default) == 1

            wanted = ["project-00001", "project-00002", "project-00005"]
            some = client.get("/api/partitions", params={"tenant": wanted}).json()
            mine = [p for p in everything["partitions"] if p["tenant"] in wanted]
            assert len(mine) == 1 + 2 + 2
            assert some["partitions"] == mine + default  # default: every tenant's strays
            assert [c["tenant"] for c in some["coverage"]] == wanted
            assert [c for c in everything["coverage"] if c["tenant"] in wanted] == some["coverage"]

            # a page: the same tenants, in the same order, as the tenants listing's page
            pages: list[dict[str, str | int]] = [
                {"limit": 40, "offset": 80},
                {"limit": 7, "search": "PROJECT-0011"},
                {"limit": 10, "order": "runway"},
            ]
            for params in pages:
                listing = client.get("/api/tables/convoy.events/tenants", params=params)
                page = client.get("/api/partitions", params={"table": "convoy.events", **params})
                assert page.status_code == 200, page.text
                assert page.headers["X-Total-Count"] == listing.headers["X-Total-Count"]
                ids = [t["tenant_id"] for t in listing.json()]
                body = page.json()
                assert [c["tenant"] for c in body["coverage"]] == ids, params
                assert {p["tenant"] for p in body["partitions"] if not p["is_default"]} <= set(ids)
                assert [p for p in body["partitions"] if not p["is_default"]] == [
                    p for p in everything["partitions"] if p["tenant"] in ids
                ]
            # a page needs its table
            refused = client.get("/api/partitions", params={"limit": 40})
            assert refused.status_code == 422
            assert "table=" in refused.json()["message"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(chromium), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def test_ui_with_thousands_of_tenants_asks_only_for_the_page_it_shows(
    conn: Conn, dsn: str, browser: Browser
) -> None:
    _crowd(conn, dsn, 3000)
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    server = service.start_server()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/partitions" in r.url else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        card = page.locator('.table-card[data-table="convoy.events"]')
        started = time.perf_counter()
        page.goto(server.url + "/")
        expect(card.locator("svg g.tenant-row").first).to_be_visible(timeout=60_000)
        drawn = time.perf_counter() - started
        expect(card.locator("svg g.tenant-row")).to_have_count(40)
        expect(card.locator(".page-info")).to_contain_text("1–40 of 3,000")
        # project-00002 has two partitions, project-00000 none
        expect(card.locator('g.tenant-row[data-tenant="project-00002"] rect.part')).to_have_count(2)

        with page.expect_request(lambda r: "offset=40" in r.url) as following:
            card.locator("button.next").click()
        expect(card.locator(".page-info")).to_contain_text("41–80 of 3,000")
        expect(card.locator('g.tenant-row[data-tenant="project-00041"]')).to_have_count(1)
        _is_a_page(following.value)

        card.locator("input.tenant-search").fill("project-02999")
        # the search is the server's: on a busy machine its read can outlast expect's 5 s
        expect(card.locator("svg g.tenant-row")).to_have_count(1, timeout=30_000)
        expect(card.locator(".page-info")).to_contain_text(
            "1 of 1 matching (3,000 in all)", timeout=30_000
        )

        assert asked, "the UI drew partitions it never asked for"
        for url in asked:  # never every tenant's partitions: one table's page at a time
            query = parse_qs(urlsplit(url).query)
            assert query["table"] == ["convoy.events"], url
            assert query["limit"] == ["40"], url
        print(f"\n3,000 tenants: first tenant row drawn after {drawn:.2f}s")
    finally:
        context.close()
        server.stop()
        service.close()
    assert not errors, errors


def _is_a_page(request: Request) -> None:
    response = request.response()
    assert response is not None
    body = response.json()
    assert response.headers["x-total-count"] == "3000"
    assert [c["tenant"] for c in body["coverage"]] == [f"project-{i:05d}" for i in range(40, 80)]
