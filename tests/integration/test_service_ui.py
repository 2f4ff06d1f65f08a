"""The web UI in a real headless Chromium (Debian's, driven by Playwright; no browser download).

The page is read the way a person reads it: partitions per tenant on each table's timeline,
today's marker, what retention retires next, rows waiting in the default partition, the
pending plan; then Apply is clicked (the UI asks for the token) and the run appears.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import partman
from partman.service import Service, ServiceOptions

from seed import NOW, create_seed_schema, seed_table

Conn = psycopg.Connection[Any]
CHROMIUM = "/usr/bin/chromium"
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
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium (.ci/run does)"
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
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
        expect(rows.first.locator("text").first).to_contain_text("runway 12h 0m")
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
