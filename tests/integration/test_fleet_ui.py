"""The web UI over a fleet, in a real headless Chromium: a tab per database saying whether it
is reachable and led here, the chosen database's tables, and a database that is down saying
why instead of an empty page."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

import partman
from partman.service import Fleet, Member, ServiceOptions

pytestmark = pytest.mark.one_server

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


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


def test_ui_has_a_tab_per_database_and_a_database_down_says_why(dsn: str, page: Page) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE public.events (id bigint, created_at timestamptz NOT NULL) "
            "PARTITION BY RANGE (created_at)"
        )

    def register(manager: partman.Manager) -> None:
        manager.add_managed_table(
            partman.Table(name="events", partition_by="created_at", partition_count=2)
        )

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = f"host=127.0.0.1 port={closed} dbname=archive user=postgres connect_timeout=1"
    fleet = Fleet(
        [Member("orders", dsn, register), Member("archive", down, register)],
        config=partman.Config(sample_rate=dt.timedelta(seconds=1)),
        options=ServiceOptions(port=0, db_timeout=dt.timedelta(seconds=1), log_level="warning"),
    )
    with fleet.start_server() as served:
        page.goto(served.url + "/")
        tabs = page.locator("#databases .db-tab")
        expect(tabs).to_have_count(2)
        orders, archive = tabs.nth(0), tabs.nth(1)
        expect(orders).to_contain_text("orders")
        expect(orders).to_have_attribute("aria-pressed", "true")
        expect(orders).to_have_attribute("data-state", "leader")
        expect(archive).to_have_attribute("data-state", "down")
        expect(page.locator("#tables")).to_contain_text("public.events", timeout=15_000)

        archive.click()
        expect(archive).to_have_attribute("aria-pressed", "true")
        banner = page.locator("#banner")
        expect(banner).to_be_visible(timeout=15_000)
        expect(banner).to_contain_text("database archive is unreachable")
        expect(banner).to_contain_text("Connection refused")
        assert page.url.endswith("#db=archive")

        page.reload()  # the chosen database is kept in the address
        expect(page.locator("#databases .db-tab").nth(1)).to_have_attribute("aria-pressed", "true")
        page.locator("#databases .db-tab").nth(0).click()
        expect(page.locator("#banner")).to_be_hidden(timeout=15_000)
        expect(page.locator("#tables")).to_contain_text("public.events")
