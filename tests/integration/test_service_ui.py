"""The web UI in a real headless Chromium (Debian's, driven by Playwright; no browser download).

The page is read the way a person reads it: partitions per tenant on each table's timeline,
today's marker, what retention retires next, rows waiting in the default partition, the
pending plan; then Apply is clicked (the UI asks for the token) and the run appears.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import partman
from partman.model.text import human_duration
from partman.service import Service, ServiceOptions

from seed import NOW, create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "ui-token"
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


def _scenario(dsn: str, conn: Conn, clock: partman.SimulatedClock) -> Service:
    """convoy.events with three tenants (one keeps 7 days) and a default partition holding
    stray rows; convoy.event_deliveries with one tenant. A pass at NOW, then 10 days pass: the
    plan creates the new days and retires project-short's oldest partitions."""
    create_seed_schema(conn)
    service = Service(
        dsn,
        config=partman.Config(sample_rate=dt.timedelta(minutes=10)),
        options=ServiceOptions(
            port=0, token=TOKEN, scheduler=False, instance="ui", log_level="warning"
        ),
        clock=clock,
    )
    manager = service.manager
    manager.add_managed_table(seed_table("events", default_partition=True))
    manager.register_tenants(
        "convoy.events",
        [
            "project-acme",
            "O'Reilly & <Sons>",
            partman.Tenant(tenant_id="project-short", retention_period="7 days"),
        ],
    )
    manager.add_managed_table(seed_table("event_deliveries", "project-acme"))
    service.run_pass("setup")
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) "
        "SELECT 'stray-' || n, 'nobody-yet', %s FROM generate_series(1, 7) n",
        (NOW - 3 * DAY,),
    )
    clock.advance(10 * DAY)
    return service


def _rects(page: Page, table: str, tenant: str, state: str | None = None) -> int:
    selector = f'svg[data-table="{table}"] g.tenant-row[data-tenant="{tenant}"] rect.part'
    if state is not None:
        selector += f'[data-state="{state}"]'
    return page.locator(selector).count()


def test_ui_shows_partitions_per_tenant_and_applies_the_plan(
    dsn: str, conn: Conn, page: Page
) -> None:
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    server = service.start_server()
    try:
        page.goto(server.url + "/")
        expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
        expect(page.locator("#status")).to_contain_text("api-only · ui")

        # one card and one timeline per table, one row per tenant
        expect(page.locator(".table-card")).to_have_count(2)
        events = page.locator('.table-card[data-table="convoy.events"]')
        expect(events.locator("h3")).to_have_text("convoy.events")
        expect(events.locator(".policy")).to_contain_text("3 tenants")
        rows = events.locator("g.tenant-row")
        expect(rows).to_have_count(3)
        tenants = rows.evaluate_all("rows => rows.map(r => r.dataset.tenant)")
        assert tenants == ["O'Reilly & <Sons>", "project-acme", "project-short"]
        # the awkward tenant id is text, never markup
        expect(events.locator("g.tenant-row text").first).to_contain_text("O'Reilly & <Sons>")
        assert page.locator("svg sons").count() == 0

        # 11 partitions each from the first pass: 10 days later, 10 are past and 1 is now
        for tenant in ("project-acme", "O'Reilly & <Sons>"):
            assert _rects(page, "convoy.events", tenant, "past") == 10
            assert _rects(page, "convoy.events", tenant, "current") == 1
            assert _rects(page, "convoy.events", tenant, "planned") == 10
        # project-short keeps 7 days: retention retires its 3 oldest next (highlighted)
        assert _rects(page, "convoy.events", "project-short", "drop") == 3
        assert _rects(page, "convoy.events", "project-short", "past") == 7
        assert _rects(page, "convoy.events", "project-acme", "drop") == 0
        expect(events.locator("line.now")).to_have_count(1)
        # the runway of each tenant is next to its name: half a day left
        expect(rows.first.locator("text").first).to_contain_text("runway 12 h")
        # rows waiting in the default partition
        default_row = events.locator("g.default-row")
        expect(default_row).to_have_attribute("data-default-rows", "7")
        expect(default_row).to_contain_text("DEFAULT · 7 rows")
        deliveries = page.locator('.table-card[data-table="convoy.event_deliveries"]')
        expect(deliveries.locator("g.tenant-row")).to_have_count(1)
        expect(deliveries.locator("g.default-row")).to_have_count(0)

        # the pending plan: creates per table and tenant, and the drops
        expect(page.locator("#plan-count")).to_have_text("(43 operations)")
        plan_rows = page.locator("#plan-table tr.plan-row")
        expect(plan_rows).to_have_count(5)
        drop = page.locator('#plan-table tr.plan-row[data-kind="drop"]')
        expect(drop).to_have_attribute("data-tenant", "project-short")
        expect(drop.locator("td").nth(3)).to_have_text("3")
        runs = page.locator("#runs tbody tr.run")
        expect(runs).to_have_count(1)

        # Apply: no token yet, so the UI asks for it
        asked: list[str] = []

        def answer(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept(TOKEN)

        page.on("dialog", answer)
        page.click("#apply")
        result = page.locator("#apply-result")
        expect(result).to_contain_text("applied: created 40, retired 3", timeout=30_000)
        assert asked == ["Bearer token of this partman service:"]
        run_id = result.get_attribute("data-run-id")
        assert run_id

        # the run appears, newest first; the plan is done; the drops are gone
        expect(runs).to_have_count(2)
        expect(runs.first).to_have_attribute("data-run-id", run_id)
        expect(runs.first.locator("td").nth(2)).to_have_text("ok")
        expect(runs.first.locator("td").nth(3)).to_have_text("40")
        expect(runs.first.locator("td").nth(4)).to_have_text("3")
        expect(page.locator("#plan-empty")).to_be_visible()
        expect(page.locator("#plan-count")).to_have_text("(0 operations)")
        assert _rects(page, "convoy.events", "project-short", "drop") == 0
        assert _rects(page, "convoy.events", "project-short", "past") == 7
        assert _rects(page, "convoy.events", "project-acme", "ahead") == 10
        assert _rects(page, "convoy.events", "project-acme", "planned") == 0
        expect(page.locator("#errors li")).to_have_text(["No errors."])
        stored = conn.execute(
            "SELECT outcome FROM partman_meta.runs WHERE id = %s", (run_id,)
        ).fetchone()
        assert stored == ("ok",)
    finally:
        server.stop()


def test_ui_adds_a_tenant_and_shows_errors(dsn: str, conn: Conn, page: Page) -> None:
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    server = service.start_server()
    try:
        page.goto(server.url + "/")
        expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        form = page.locator('.table-card[data-table="convoy.events"] .add-tenant')

        form.locator('input[aria-label="tenant id"]').fill("project-acme")
        form.locator("button").click()
        expect(form.locator(".result.error")).to_contain_text("already registered")

        form.locator('input[aria-label="tenant id"]').fill("nobody-yet")
        form.locator('input[aria-label="retention"]').fill("30 parsecs")
        form.locator("button").click()
        expect(form.locator(".result.error")).to_contain_text("parsecs")

        form.locator('input[aria-label="retention"]').fill("")
        form.locator('input[aria-label="tenant id"]').fill("nobody-yet")
        form.locator("button").click()
        expect(form.locator(".result")).to_contain_text("added nobody-yet", timeout=30_000)
        row = page.locator('svg[data-table="convoy.events"] g.tenant-row[data-tenant="nobody-yet"]')
        expect(row).to_have_count(1, timeout=30_000)
        expect(row.locator('rect[data-state="planned"]')).to_have_count(11)

        # a wrong token: the change is refused and the page says so
        page.fill("#token", "wrong")
        page.press("#token", "Enter")
        page.click("#apply")
        expect(page.locator("#apply-result")).to_contain_text(
            "apply failed: the bearer token is not this service's token"
        )
        assert conn.execute("SELECT count(*) FROM partman_meta.runs").fetchone() == (1,)
    finally:
        server.stop()


def test_ui_refresh_keeps_the_tenant_id_being_typed(dsn: str, conn: Conn, page: Page) -> None:
    """The page refreshes every few seconds and rebuilds the table cards; someone typing a
    tenant id at that moment keeps the focus, the caret and every keystroke."""
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    server = service.start_server()
    try:
        page.goto(server.url + "/")
        expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
        form = page.locator('.table-card[data-table="convoy.events"] .add-tenant')
        field = form.locator('input[aria-label="tenant id"]')
        field.click()
        page.keyboard.type("proj")
        page.evaluate("refresh()")  # the periodic refresh, landing mid-word
        page.keyboard.type("ect-new")
        expect(field).to_be_focused()
        expect(field).to_have_value("project-new")
    finally:
        server.stop()


def _loaded(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)


def test_api_docs_render_offline_from_the_services_own_origin(dsn: str, browser: Browser) -> None:
    """/docs is Swagger UI with its JS and CSS served by the service (fastapi-offline's copy):
    nothing is fetched from anywhere else, so it renders on a machine without internet."""
    service = Service(dsn, options=ServiceOptions(port=0, scheduler=False, instance="docs"))
    server = service.start_server()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        # anything not from the service fails, as it would offline
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(server.url) or route.request.url.startswith("data:")
                else route.abort()
            ),
        )
        page.goto(server.url + "/docs")
        block = page.locator(".opblock-get", has=page.locator('[data-path="/api/tables"]'))
        expect(block.first).to_be_visible(timeout=20_000)
        expect(block.first.locator(".opblock-summary-method")).to_have_text("GET")
        assert requested, requested
        elsewhere = [u for u in requested if not u.startswith((server.url, "data:"))]
        assert elsewhere == [], elsewhere
    finally:
        context.close()
        server.stop()


def test_ui_writes_runway_as_the_cli_does(dsn: str, conn: Conn, page: Page) -> None:
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    clock.set(NOW + 8 * DAY + dt.timedelta(hours=9, minutes=20, seconds=30))
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        found = {
            c.tenant: c for c in service.manager.inventory().coverage if c.table == "convoy.events"
        }
        texts = {human_duration(c.runway_seconds) for c in found.values()}
        assert texts == {"2 d 2 h"}, texts  # the CLI's words, not "2d 2h"
        for tenant, c in found.items():
            rows = 'svg[data-table="convoy.events"] g.tenant-row'
            row = page.locator(f'{rows}[data-tenant="{tenant}"]')
            expect(row.locator("text").first).to_contain_text(
                f"runway {human_duration(c.runway_seconds)}"
            )
        events = page.locator('.table-card[data-table="convoy.events"]')
        expect(events.locator(".policy")).to_contain_text("shortest runway 2 d 2 h")
    finally:
        server.stop()


def test_ui_says_why_it_is_starting_and_when_the_first_pass_comes(
    dsn: str, conn: Conn, page: Page
) -> None:
    create_seed_schema(conn)
    options = ServiceOptions(
        port=0, instance="ui", log_level="warning", first_pass_delay=dt.timedelta(minutes=2)
    )
    service = Service(dsn, options=options)
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        expect(page.locator("#status")).to_contain_text("starting")
        status = page.locator("#last-pass")
        expect(status).to_contain_text("starting: the first scheduled pass runs at ")
        expect(status).to_contain_text("first_pass_delay")
        expect(status).to_contain_text(re.compile(r"\(in (1 min( [0-9]+ s)?|2 min)\)"))
        next_at = service.status()["scheduler"]["next_pass_at"]
        assert next_at is not None
        expect(status).to_contain_text(next_at[11:19])
    finally:
        server.stop()


def _axis(page: Page, table: str) -> dict[str, Any]:
    result: dict[str, Any] = page.locator(f'svg[data-table="{table}"]').evaluate(
        """svg => ({
            scale: svg.dataset.scale,
            width: svg.width.baseVal.value,
            labels: [...svg.querySelectorAll('.axis text')].map(t => t.textContent),
            xs: [...svg.querySelectorAll('.axis line')].map(l => l.x1.baseVal.value),
            rights: [...svg.querySelectorAll('.axis text')].map(t => {
                const b = t.getBBox(); return b.x + b.width; }),
        })"""
    )
    return result


def test_timelines_share_a_scale_per_interval_and_tick_by_it(
    dsn: str, conn: Conn, page: Page
) -> None:
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    # a third daily table reaching one day ahead: its own data spans a few days only
    service.manager.add_managed_table(
        seed_table("delivery_attempts", "project-acme", partition_count=1)
    )
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        axes = [
            _axis(page, f"convoy.{name}")
            for name in ("events", "event_deliveries", "delivery_attempts")
        ]
        # all daily: one scale, the same ticks, on day boundaries labelled by day
        assert len({axis["scale"] for axis in axes}) == 1, axes
        assert len({tuple(axis["xs"]) for axis in axes}) == 1, axes
        for axis in axes:
            assert all(re.fullmatch(r"\d\d-\d\d", label) for label in axis["labels"]), axis
            assert len(axis["labels"]) >= 5
            # no label runs off the right edge (the last one used to be cut to "1")
            assert max(axis["rights"]) <= axis["width"], axis
    finally:
        server.stop()


def test_narrow_view_keeps_the_add_tenant_button_on_screen(
    dsn: str, conn: Conn, browser: Browser
) -> None:
    clock = partman.SimulatedClock(NOW)
    service = _scenario(dsn, conn, clock)
    server = service.start_server()
    context = browser.new_context(viewport={"width": 420, "height": 900})
    try:
        page = context.new_page()
        _loaded(page, server.url + "/")
        for table in ("convoy.events", "convoy.event_deliveries"):
            button = page.locator(f'.table-card[data-table="{table}"] .add-tenant button')
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 420, (table, box)
            search = page.locator(f'.table-card[data-table="{table}"] input.tenant-search')
            found = search.bounding_box()
            assert found is not None and found["x"] + found["width"] <= 420, found
        assert page.evaluate("document.documentElement.scrollWidth") <= 420
    finally:
        context.close()
        server.stop()


def test_single_tenant_rows_have_visible_marks(dsn: str, conn: Conn, page: Page) -> None:
    """A table without tenants draws one "(all rows)" row; its partitions are short next to
    the daily tables' range, and each still gets a mark one can see and hover."""
    conn.execute(
        "CREATE SCHEMA convoy; CREATE TABLE convoy.ticks (id bigint, at timestamptz NOT NULL) "
        "PARTITION BY RANGE (at)"
    )
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, instance="ui", log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    service.manager.add_managed_table(
        partman.Table(
            name="ticks",
            schema="convoy",
            partition_by="at",
            partition_type=partman.PartitionType.RANGE,
            retention_period=dt.timedelta(days=2),
            partition_interval=dt.timedelta(hours=1),
            partition_count=3,
        )
    )
    service.run_pass("setup")
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        row = page.locator('svg[data-table="convoy.ticks"] g.tenant-row[data-tenant=""]')
        expect(row).to_have_count(1)
        expect(row.locator("text").first).to_contain_text("(all rows) · runway 4 h")
        marks = row.locator("rect.part").evaluate_all(
            """rects => rects.map(r => ({w: r.width.baseVal.value,
                fill: getComputedStyle(r).fill, state: r.dataset.state}))"""
        )
        assert len(marks) == 4, marks
        for mark in marks:
            assert mark["w"] >= 3 and mark["fill"] not in ("none", "rgba(0, 0, 0, 0)"), mark
    finally:
        server.stop()


def test_ui_stays_readable_and_fast_with_5000_tenants(dsn: str, conn: Conn, page: Page) -> None:
    """5,000 tenants on one table (registered in bulk; the plan makes each one partition): the
    card sums the table up (worst runway, rows in default, retirements due), shows one page
    of tenants, and finds one by id; measured from the browser's side."""
    create_seed_schema(conn)
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, instance="ui", log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    manager = service.manager
    manager.add_managed_table(seed_table("events", default_partition=True, partition_count=0))
    manager.register_tenants(
        "convoy.events", [partman.Tenant(tenant_id="early", retention_period="3 days")]
    )
    service.run_pass("setup")  # "early" has partitions; the others wait for the next pass
    manager.register_tenants("convoy.events", [f"tenant-{n:05d}" for n in range(5000)])
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) "
        "SELECT 'stray-' || n, 'tenant-00042', %s FROM generate_series(1, 3) n",
        (NOW + 5 * DAY,),
    )
    service.manager.clock.advance(5 * DAY)  # type: ignore[attr-defined]
    server = service.start_server()
    try:
        card = page.locator('.table-card[data-table="convoy.events"]')
        started = time.perf_counter()
        page.goto(server.url + "/")
        expect(card.locator("svg g.tenant-row").first).to_be_visible(timeout=30_000)
        first_paint = time.perf_counter() - started
        expect(card.locator(".policy")).to_contain_text("5001 tenants")
        # one page of rows, not 5,001
        expect(card.locator("svg g.tenant-row")).to_have_count(40)
        expect(card.locator(".page-info")).to_contain_text("1–40 of 5,001")
        # the summary: worst runway first, who has rows in the default, what retires next
        worst = card.locator(".worst-runway button.link")
        expect(worst).to_have_count(5)
        expect(worst.first).to_contain_text(" · 0 s")
        expect(card.locator(".default-tenants button.link")).to_have_text(["tenant-00042 · 3 rows"])
        expect(card.locator(".retirements")).to_contain_text("early · ")

        search = card.locator("input.tenant-search")
        started = time.perf_counter()
        search.fill("tenant-04321")
        expect(card.locator("svg g.tenant-row")).to_have_count(1)
        expect(card.locator('svg g.tenant-row[data-tenant="tenant-04321"]')).to_have_count(1)
        searched = time.perf_counter() - started
        expect(card.locator(".page-info")).to_contain_text("1 of 1 matching (5,001 in all)")

        # paging through the rest
        search.fill("")
        card.locator("button.next").click()
        expect(card.locator(".page-info")).to_contain_text("41–80 of 5,001")
        # the summary leads to the tenant
        card.locator(".default-tenants button.link").click()
        expect(search).to_have_value("tenant-00042")
        expect(card.locator('svg g.tenant-row[data-tenant="tenant-00042"]')).to_have_count(1)

        print(f"\n5,001 tenants: first paint {first_paint:.2f}s, search {searched * 1000:.0f} ms")
        assert first_paint < 3.0, first_paint
        assert searched < 1.0, searched
    finally:
        server.stop()


def _shape_service(dsn: str, *tables: partman.Table) -> Service:
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, instance="ui", log_level="warning"),
        clock=partman.SimulatedClock(NOW),
    )
    for table in tables:
        service.manager.add_managed_table(table)
    service.run_pass("setup")
    return service


def _marks(page: Page, table: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.locator(
        f'svg[data-table="{table}"] g.tenant-row rect.part'
    ).evaluate_all(
        """rects => rects.map(r => ({x: r.x.baseVal.value, w: r.width.baseVal.value,
            state: r.dataset.state, name: r.dataset.partition,
            tip: r.querySelector('title').textContent}))"""
    )
    return found


def test_an_id_table_is_drawn_on_an_axis_of_ids_around_its_newest_id(
    dsn: str, conn: Conn, page: Page
) -> None:
    conn.execute("CREATE TABLE public.orders (id bigint NOT NULL) PARTITION BY RANGE (id)")
    orders = partman.Table(
        name="orders",
        partition_by="id",
        partition_interval=1000,
        partition_count=2,
        retention_period=5000,
    )
    service = _shape_service(dsn, orders)
    conn.execute("INSERT INTO orders SELECT generate_series(1, 1500)")
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        card = page.locator('.table-card[data-table="public.orders"]')
        expect(card.locator(".policy")).to_contain_text("every 1000 ids · keeps 5000 ids")
        expect(card.locator(".policy")).to_contain_text("shortest runway 1500 ids")
        row = card.locator('g.tenant-row[data-tenant=""]')
        expect(row.locator("text").first).to_contain_text("(all rows) · runway 1500 ids")
        marks = _marks(page, "public.orders")
        by_name = {m["name"]: m for m in marks}
        # [0, 1000) is below the newest id, [1000, 2000) holds it, [2000, 3000) is ahead,
        # and the plan makes [3000, 4000)
        assert [by_name[f"public.orders_p{k}"]["state"] for k in (0, 1000, 2000)] == [
            "past",
            "current",
            "ahead",
        ]
        assert [m["state"] for m in marks if m["state"] == "planned"] == ["planned"]
        # placed by value: equal widths, each starting where the one before ends
        xs = [by_name[f"public.orders_p{k}"] for k in (0, 1000, 2000)]
        for before, after in itertools.pairwise(xs):
            assert abs(before["x"] + before["w"] - after["x"]) < 0.5, xs
        assert "0 → 1000" in xs[0]["tip"]
        # the newest id is marked on its row; an id table has no "now" line
        newest = row.locator("line.newest")
        expect(newest).to_have_attribute("data-newest", "1500")
        expect(card.locator("line.now")).to_have_count(0)
        axis = _axis(page, "public.orders")
        assert axis["labels"] and all(re.fullmatch(r"-?\d+", t) for t in axis["labels"]), axis
    finally:
        server.stop()


def test_epoch_and_uuidv7_tables_are_placed_on_the_time_axis(
    dsn: str, conn: Conn, page: Page
) -> None:
    conn.execute("CREATE TABLE public.hits (at bigint NOT NULL) PARTITION BY RANGE (at)")
    conn.execute("CREATE TABLE public.events (id uuid NOT NULL) PARTITION BY RANGE (id)")
    hits = partman.Table(name="hits", partition_by="at", epoch="milliseconds", partition_count=2)
    events = partman.Table(name="events", partition_by="id", partition_count=2)
    service = _shape_service(dsn, hits, events)
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        expect(page.locator('.table-card[data-table="public.hits"] .policy')).to_contain_text(
            "at in epoch milliseconds"
        )
        for table in ("public.hits", "public.events"):
            marks = _marks(page, table)
            assert sorted(m["state"] for m in marks) == ["ahead", "ahead", "current"], marks
            (current,) = [m for m in marks if m["state"] == "current"]
            # the bounds are the column's values; the tip also says the times they stand for
            assert "2026-03-10 00:00:00Z → 2026-03-11 00:00:00Z" in current["tip"], current
            now_x = page.locator(f'svg[data-table="{table}"] line.now').evaluate(
                "l => l.x1.baseVal.value"
            )
            # NOW is noon: the "now" line halves today's partition
            assert abs(now_x - (current["x"] + current["w"] / 2)) < 1, (now_x, current)
        axes = [_axis(page, t) for t in ("public.hits", "public.events")]
        assert axes[0]["xs"] == axes[1]["xs"]  # both daily: one scale
        assert all(re.fullmatch(r"\d\d-\d\d", t) for t in axes[0]["labels"]), axes[0]
    finally:
        server.stop()


def test_a_period_exported_to_parquet_is_drawn_in_its_own_colour_where_it_was(
    dsn: str, conn: Conn, page: Page, tmp_path: Path
) -> None:
    """retention_action "export": the expired days leave PostgreSQL for Parquet files; the
    timeline keeps them in their place, as archived (the legend's colour), with the file in
    the tip, and the API lists them beside the partitions."""
    conn.execute(
        "CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL) "
        "PARTITION BY RANGE (at)"
    )
    clock = partman.SimulatedClock(NOW)
    service = Service(
        dsn,
        options=ServiceOptions(port=0, scheduler=False, instance="ui", log_level="warning"),
        clock=clock,
    )
    service.manager.add_managed_table(
        partman.Table(
            name="events",
            partition_by="at",
            partition_count=1,
            retention_period="2 days",
            retention_action="export",
            export_location=str(tmp_path),
        )
    )
    service.run_pass("setup")
    conn.execute("INSERT INTO public.events SELECT g, %s FROM generate_series(1, 30) g", (NOW,))
    clock.advance(3 * dt.timedelta(days=1))
    report = service.run_pass("export")
    assert not report.failed and len(report.retired) >= 1, str(report)
    server = service.start_server()
    try:
        _loaded(page, server.url + "/")
        marks = _marks(page, "public.events")
        archived = [m for m in marks if m["state"] == "archived"]
        assert [m["name"] for m in archived] == ["public.events_p20260310"], marks
        assert "archived to Parquet" in archived[0]["tip"] and str(tmp_path) in archived[0]["tip"]
        assert "30 rows" in archived[0]["tip"]
        fill = page.locator('rect.part[data-state="archived"]').evaluate(
            "r => getComputedStyle(r).fill"
        )
        swatch = page.locator(".legend .sw.archived").evaluate(
            "s => getComputedStyle(s).backgroundColor"
        )
        assert fill == swatch  # the legend names the colour
        later = [m for m in marks if m["state"] != "archived"]
        assert all(m["x"] > archived[0]["x"] for m in later)  # in its place on the axis
    finally:
        server.stop()
