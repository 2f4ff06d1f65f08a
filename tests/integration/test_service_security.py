"""The service's security (issue 17): hostile names shown as text, a strict
Content-Security-Policy, no way in from another origin, tokens with scopes, no open listener
beyond loopback, and secrets that never leave the process.

The browser tests drive Debian's chromium (Playwright) against a real service on a real
PostgreSQL; the attacker's page is served from a second origin on this machine.
"""

from __future__ import annotations

import datetime as dt
import http.server
import importlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright
from psycopg import conninfo, sql

import partman
from partman.errors import ConfigError, PartmanError
from partman.service import ServerThread, Service, ServiceOptions

from seed import NOW, catalog_fingerprint, create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
WRITE = "write-tok-Qv7mZ2"
READ = "read-tok-Lp4xW9"
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
HOSTILE = (
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "</script><script>alert(1)</script>",
)
INJECTED = "img[src=x], svg[onload], script:not([src='/ui/app.js']), iframe, [onerror], [onload]"
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile);
});
"""


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(chromium: Path, playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


class Watched:
    """A page whose dialogs, page errors, CSP violations and console errors are kept."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        context.add_init_script(WATCH)
        self.page = context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None,
        )

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations || []")
        return found + [c for c in self.console if "Content Security Policy" in c]


@pytest.fixture
def watched(browser: Browser) -> Iterator[Callable[[], Watched]]:
    made: list[Watched] = []

    def make() -> Watched:
        w = Watched(browser.new_context(viewport={"width": 1400, "height": 1000}))
        made.append(w)
        return w

    yield make
    for w in made:
        w.context.close()


@pytest.fixture
def running() -> Iterator[Callable[[Service], ServerThread]]:
    started: list[ServerThread] = []

    def start(service: Service) -> ServerThread:
        server = service.start_server()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _options(**changes: Any) -> ServiceOptions:
    fields: dict[str, Any] = {
        "port": 0,
        "token": WRITE,
        "scheduler": False,
        "instance": "sec",
        "log_level": "warning",
        "db_timeout": dt.timedelta(seconds=2),
    }
    fields.update(changes)
    return ServiceOptions(**fields)


def _service(dsn: str, clock: partman.Clock | None = None, **changes: Any) -> Service:
    return Service(
        dsn,
        config=partman.Config(sample_rate=dt.timedelta(minutes=10)),
        options=_options(**changes),
        clock=clock or partman.SimulatedClock(NOW),
    )


def _seeded(dsn: str, conn: Conn, **changes: Any) -> Service:
    create_seed_schema(conn)
    service = _service(dsn, **changes)
    service.manager.add_managed_table(seed_table("events"))
    service.manager.register_tenants("convoy.events", ["project-1"])
    return service


def _state(conn: Conn) -> tuple[Any, ...]:
    """Everything a write could change: the catalog, the tenants, the runs."""
    tenants = conn.execute(
        "SELECT n.tenant_id, n.retention FROM partman_meta.tenants n ORDER BY 1"
    ).fetchall()
    runs = conn.execute("SELECT count(*) FROM partman_meta.runs").fetchone()
    return (catalog_fingerprint(conn), tenants, runs)


# -- 2. headers --------------------------------------------------------------------------------


def _csp(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_response_carries_a_strict_policy_and_the_security_headers(
    dsn: str, conn: Conn, running: Any
) -> None:
    service = _seeded(dsn, conn, read_token=READ)
    service.run_pass("setup")
    server = running(service)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = {
            path: client.get(path)
            for path in (
                "/",
                "/ui/app.js",
                "/ui/style.css",
                "/ui/favicon.svg",
                "/api/status",
                "/api/tables",
                "/api/plan",
                "/api/ui-config",
                "/metrics",
                "/healthz",
                "/readyz",
                "/openapi.json",
                "/api/tables/nope.nope",
                "/no-such-page",
            )
        }
        answers["POST /api/apply (no token)"] = client.post("/api/apply")
        answers["POST /api/apply (read token)"] = client.post(
            "/api/apply", headers={"Authorization": f"Bearer {READ}"}
        )
        answers["POST /api/tenants (bad body)"] = client.post(
            "/api/tables/convoy.events/tenants",
            content=b"{",
            headers={"Authorization": f"Bearer {WRITE}", "Content-Type": "application/json"},
        )
        answers["/docs"] = client.get("/docs")
        answers["/redoc"] = client.get("/redoc")
    assert answers["/"].status_code == 200 and answers["/api/tables/nope.nope"].status_code == 404
    assert answers["POST /api/apply (read token)"].status_code == 403
    for what, answer in answers.items():
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["referrer-policy"] == "no-referrer", what
        assert headers["x-frame-options"] == "DENY", what
        policy = headers["content-security-policy"]
        assert "unsafe-eval" not in policy, what
        directives = _csp(policy)
        assert directives["frame-ancestors"] == ["'none'"], what
        assert directives["object-src"] == ["'none'"], what
        assert directives["base-uri"] == ["'none'"], what
        assert directives["default-src"] == ["'self'"], what
        assert "access-control-allow-origin" not in headers, what
        if what == "/redoc":
            # ReDoc writes <style> blocks at run time: inline styles there, never scripts
            assert directives["script-src"] == ["'self'"], policy
            continue
        assert "unsafe-inline" not in policy, what
        if what == "/docs":  # Swagger UI's start-up script, by its hash and nothing else
            assert directives["script-src"][0] == "'self'"
            assert [s[:8] for s in directives["script-src"][1:]] == ["'sha256-"], policy
            continue
        assert directives["script-src"] == ["'self'"], what
        assert directives["style-src"] == ["'self'"], what
    assert answers["/api/status"].headers["cache-control"] == "no-store"
    index = answers["/"].text
    assert "style=" not in index and "<style" not in index
    assert re.findall(r"<script[^>]*>", index) == ['<script src="/ui/app.js">']
    script = answers["/ui/app.js"].text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_an_unexpected_failure_is_json_with_the_headers_and_without_its_text(
    dsn: str, conn: Conn, running: Any
) -> None:
    create_seed_schema(conn)
    service = Service(
        dsn,
        options=_options(),
        prepare=lambda manager: (_ for _ in ()).throw(RuntimeError(f"boom {PASSWORD}")),
    )
    server = running(service)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        failed = client.post("/api/apply", headers={"Authorization": f"Bearer {WRITE}"})
        assert failed.status_code == 500
        assert failed.json() == {
            "error": "internal_error",
            "message": "the service failed; its log says why",
        }
        assert failed.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in failed.headers["content-security-policy"]
        assert client.get("/healthz").status_code == 200  # the same connection goes on


# -- 4. tokens with scopes -----------------------------------------------------------------------


def test_the_read_token_reads_and_is_refused_every_change(
    dsn: str, conn: Conn, running: Any
) -> None:
    service = _seeded(dsn, conn, read_token=READ, read_requires_token=True)
    service.run_pass("setup")
    server = running(service)
    read = {"Authorization": f"Bearer {READ}"}
    write = {"Authorization": f"Bearer {WRITE}"}
    before = _state(conn)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in (
            "/api/status",
            "/api/tables",
            "/api/plan",
            "/api/partitions",
            "/api/runs",
            "/api/audit",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/redoc",
            "/api/tables/convoy.events/tenants",
        ):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer guess"}).status_code == 403
            assert client.get(path, headers=read).status_code == 200, path
            assert client.get(path, headers=write).status_code == 200, path
        for path in ("/healthz", "/readyz", "/", "/ui/app.js", "/api/ui-config"):
            assert client.get(path).status_code == 200, path
        changes: list[tuple[str, str, Any]] = [
            ("POST", "/api/apply", None),
            ("POST", "/api/tables/convoy.events/tenants", {"tenant_id": "project-9"}),
            ("PATCH", "/api/tables/convoy.events/tenants/project-1", {"retention_period": "1 day"}),
            ("DELETE", "/api/tables/convoy.events/tenants/project-1", None),
            ("POST", "/api/tables/convoy.events/indexes", {"columns": ["id"]}),
            ("POST", "/api/tables/convoy.events/restore", {"partition": "x"}),
        ]
        for method, path, body in changes:
            kwargs: dict[str, Any] = {} if body is None else {"json": body}
            refused = client.request(method, path, headers=read, **kwargs)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json() == {
                "error": "forbidden",
                "message": "the bearer token is the read-only token: changing things needs the "
                "write token",
            }
        assert _state(conn) == before
        assert client.post("/api/apply", headers=write).status_code == 200
        config = client.get("/api/ui-config").json()
        assert config["token"] is None and config["metrics_requires_token"] is True


def test_metrics_alone_can_require_a_token(dsn: str, conn: Conn, running: Any) -> None:
    server = running(_seeded(dsn, conn, read_token=READ, metrics_requires_token=True))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/metrics").status_code == 401
        assert (
            client.get("/metrics", headers={"Authorization": f"Bearer {WRITE}x"}).status_code == 403
        )
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {READ}"})
        assert scraped.status_code == 200 and "partman_runway_seconds" in scraped.text
        assert client.get("/api/tables").status_code == 200  # other reads stay open
        assert client.get("/openapi.json").status_code == 200


def test_a_token_is_compared_with_every_configured_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: each configured token is compared (compare_digest, on digests of equal
    length) whether or not an earlier one matched, so timing tells neither token nor scope."""
    access = importlib.import_module("partman.service.api.access")
    compared: list[tuple[bytes, bytes]] = []
    real = access.secrets.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.secrets, "compare_digest", counting)
    options = _options(read_token=READ)
    for given, scope in ((WRITE, "write"), (READ, "read"), ("nope", None), ("", None)):
        compared.clear()
        assert access.scope_of(options, given) == scope
        assert len(compared) == 2, given
        assert {len(a) for pair in compared for a in pair} == {32}


def test_tokens_are_masked_in_the_options_repr() -> None:
    shown = repr(_options(read_token=READ))
    assert WRITE not in shown and READ not in shown
    assert "read_requires_token=False" in shown


def test_token_settings_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="read_token must differ from token"):
        _options(read_token=WRITE)
    with pytest.raises(ConfigError, match="metrics_requires_token needs a token"):
        _options(token=None, metrics_requires_token=True)
    with pytest.raises(ConfigError, match="read_token must be a non-empty string"):
        _options(read_token=" ")


# -- 5. no open listener beyond loopback ----------------------------------------------------------


def test_service_refuses_to_listen_beyond_loopback_without_a_token(dsn: str, running: Any) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10", "db.example", ""):
        with pytest.raises(ConfigError) as refused:
            Service(dsn, options=_options(token=None, host=host))
        message = str(refused.value)
        assert "listens beyond loopback with no token" in message, message
        assert "token = " in message and "allow_unauthenticated = true" in message
        assert isinstance(refused.value, PartmanError)
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        _options(token=None, host=host)  # loopback: no token needed
    for changes in ({"token": WRITE}, {"read_token": READ, "read_requires_token": True}):
        _options(host="0.0.0.0", **{"token": None, **changes})
    with pytest.raises(ConfigError, match="expose_token_to_ui"):
        _options(host="0.0.0.0", expose_token_to_ui=True)
    # the escape hatch, said explicitly: it serves (read-only)
    open_service = Service(
        dsn, options=_options(token=None, host="0.0.0.0", allow_unauthenticated=True)
    )
    server = running(open_service)
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        assert client.post("/api/apply").status_code == 403


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"NO_COLOR": "1", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_partman_run_refuses_to_listen_beyond_loopback_without_a_token(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    (tmp_path / "partman.toml").write_text('[service]\nhost = "0.0.0.0"\n')
    done = _cli(tmp_path, "run", "--port", "0", env={"PARTMAN_DSN": dsn})
    assert done.returncode == 2, done.stderr
    assert "listens beyond loopback with no token" in done.stderr
    assert "allow_unauthenticated = true" in done.stderr
    # --host overrides the file, and is held to the same rule
    (tmp_path / "partman.toml").write_text("[service]\n")
    done = _cli(tmp_path, "run", "--host", "0.0.0.0", "--port", "0", env={"PARTMAN_DSN": dsn})
    assert done.returncode == 2 and "listens beyond loopback" in done.stderr, done.stderr


# -- 1. stored XSS ---------------------------------------------------------------------------------

SCHEMA = '"><svg onload=alert(1)>'
TABLE = "<img src=x onerror=alert(1)>"
QUALIFIED = f"{SCHEMA}.{TABLE}"
NEW_TENANT = '<iframe src="javascript:alert(1)">'


class Hostile:
    """The pass's prepare: fails the way the test says, with a message of markup."""

    def __init__(self) -> None:
        self.fail_with: type[Exception] | None = PartmanError

    def __call__(self, manager: partman.Manager) -> None:
        if self.fail_with is not None:
            raise self.fail_with(f"config says {HOSTILE[0]} and {HOSTILE[3]}")


def _hostile_service(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> tuple[Service, Hostile]:
    """A schema, a table and tenants named like markup, their partitions, a default partition
    holding rows of an unregistered tenant named like markup, a pass; then 5 days pass, so
    retention wants the oldest partitions, one of which a view (named like markup too) holds:
    that drop fails with PostgreSQL's message naming both."""
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint NOT NULL, tenant text NOT NULL, "
            "created_at timestamptz NOT NULL) PARTITION BY RANGE (tenant, created_at)"
        ).format(sql.Identifier(SCHEMA, TABLE))
    )
    prepare = Hostile()
    service = Service(
        dsn,
        config=partman.Config(sample_rate=dt.timedelta(minutes=10)),
        options=_options(instance=HOSTILE[1]),
        clock=clock,
        prepare=prepare,
    )
    service.manager.add_managed_table(
        partman.Table(
            name=TABLE,
            schema=SCHEMA,
            tenant_id_column="tenant",
            partition_by="created_at",
            partition_type=partman.PartitionType.RANGE,
            retention_period=dt.timedelta(days=3),
            partition_interval=dt.timedelta(days=1),
            partition_count=2,
            default_partition=True,
        )
    )
    service.manager.register_tenants(QUALIFIED, list(HOSTILE))
    service.run_pass("setup")
    conn.execute(
        sql.SQL("INSERT INTO {} VALUES (1, %s, %s)").format(sql.Identifier(SCHEMA, TABLE)),
        ("<b>stray</b><img src=x onerror=alert(2)>", NOW - dt.timedelta(days=30)),
    )
    # a partition partman did not make, named like markup, past retention: left alone, and
    # the plan's notice (and the errors list) names it
    conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}, {}) TO ({}, {})").format(
            sql.Identifier(SCHEMA, HOSTILE[3]),
            sql.Identifier(SCHEMA, TABLE),
            sql.Literal(HOSTILE[2]),
            sql.Literal(NOW - dt.timedelta(days=20)),
            sql.Literal(HOSTILE[2]),
            sql.Literal(NOW - dt.timedelta(days=19)),
        )
    )
    oldest = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass AND c.relname LIKE %s ORDER BY 1 LIMIT 1",
        (sql.Identifier(SCHEMA, TABLE).as_string(conn), "%javascript%p20260310"),
    ).fetchone()
    assert oldest is not None
    conn.execute(
        sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
            sql.Identifier(SCHEMA, "<svg/onload=alert(3)>"), sql.Identifier(SCHEMA, oldest[0])
        )
    )
    clock.advance(dt.timedelta(days=5))
    return service, prepare


def _no_markup_ran(w: Watched) -> None:
    page = w.page
    assert w.dialogs == [], w.dialogs
    assert w.errors == [], w.errors
    assert w.violations() == [], w.violations()
    injected = page.evaluate(
        "(sel) => [...document.querySelectorAll(sel)].map((n) => n.outerHTML)", INJECTED
    )
    assert injected == [], injected
    hrefs = page.evaluate(
        "() => [...document.querySelectorAll('[href]')].map((n) => n.getAttribute('href'))"
    )
    assert all(not h.lower().startswith("javascript") for h in hrefs), hrefs


def test_names_and_messages_made_of_markup_are_shown_as_text_everywhere(
    dsn: str, conn: Conn, watched: Any, running: Any
) -> None:
    clock = partman.SimulatedClock(NOW)
    service, prepare = _hostile_service(dsn, conn, clock)
    server = running(service)
    w = watched()
    page = w.page
    page.goto(server.url + "/")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
    card = page.locator(".table-card")
    expect(card.locator("h3")).to_have_text(QUALIFIED)
    expect(page.locator("#status")).to_contain_text(HOSTILE[1])
    # the plan: its table and tenants as text, the drops and creates of each tenant
    plan = page.locator("#plan-table")
    expect(plan).to_contain_text(QUALIFIED)
    for name in HOSTILE:
        expect(plan).to_contain_text(name)
    # its notices name the table and the partition partman leaves alone
    foreign = f"{SCHEMA}.{HOSTILE[3]} is past retention"
    expect(page.locator("#plan ul.notices")).to_contain_text(f"warning: {QUALIFIED}: {foreign}")
    expect(page.locator("#errors")).to_contain_text(foreign)
    tips = page.locator('svg g.tenant-row rect.part[data-state="foreign"] title')
    expect(tips).to_contain_text(f"{SCHEMA}.{HOSTILE[3]}")
    # the timeline: each tenant's label and tip, each partition's tip
    tips = page.locator("svg g.tenant-row title").all_text_contents()
    for name in HOSTILE:
        assert any(t.startswith(name + " · runway") for t in tips), (name, tips)
    parts = page.locator("svg g.tenant-row rect.part title").all_text_contents()
    assert any(t.startswith(QUALIFIED + "_javascript_aler_") for t in parts), parts[:5]
    expect(page.locator("svg g.default-row title")).to_contain_text(QUALIFIED + "_default")
    # the summary's links: a tenant named like markup, one that lives in the default only
    expect(card.locator(".default-tenants")).to_contain_text(
        "<b>stray</b><img src=x onerror=alert(2)>"
    )
    # the prepare's error, as text
    errors = page.locator("#errors")
    expect(errors).to_contain_text(f"config: config says {HOSTILE[0]} and {HOSTILE[3]}")
    _no_markup_ran(w)

    # the search box and the tenant links
    search = card.locator("input.tenant-search")
    search.fill("</script>")
    expect(card.locator("g.tenant-row")).to_have_count(1)
    expect(card.locator("g.tenant-row title").first).to_contain_text(HOSTILE[3])
    search.fill("")
    card.locator(".worst-runway button.link").first.click()
    expect(card.locator(".page-info")).to_have_attribute("data-matches", "1")
    _no_markup_ran(w)

    # apply (the token typed in): the drop the view holds fails with PostgreSQL's message
    page.fill("#token", WRITE)
    page.press("#token", "Enter")
    page.click("#apply")
    expect(page.locator("#apply-result")).to_contain_text("failed 1", timeout=30_000)
    expect(errors).to_contain_text(
        f'failed drop {TABLE}_javascript_aler_1bac4e0f_p20260310: cannot drop table ""{SCHEMA}"',
        timeout=20_000,
    )
    expect(page.locator("#runs tbody tr.run")).to_have_count(2)
    _no_markup_ran(w)

    # a tenant added through the form, named like markup
    form = card.locator(".add-tenant")
    form.locator('input[aria-label="tenant id"]').fill(NEW_TENANT)
    form.locator("button").click()
    expect(form.locator(".result")).to_contain_text(f"added {NEW_TENANT}", timeout=20_000)
    # a pass that fails outright: its message in the header
    prepare.fail_with = RuntimeError
    page.click("#apply")
    expect(page.locator("#apply-result")).to_contain_text("apply failed", timeout=30_000)
    expect(page.locator("#last-pass")).to_contain_text(
        f"last pass failed: RuntimeError: config says {HOSTILE[0]}", timeout=20_000
    )
    search.fill("iframe")
    expect(card.locator("g.tenant-row title").first).to_contain_text(NEW_TENANT)
    _no_markup_ran(w)
    page.reload()
    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
    _no_markup_ran(w)
    stored = conn.execute("SELECT tenant_id FROM partman_meta.tenants ORDER BY 1").fetchall()
    assert (NEW_TENANT,) in stored


# -- 3. CSRF and CORS ----------------------------------------------------------------------------

ATTACK = """<!doctype html>
<html><body>
<form id="tenant" method="POST" enctype="text/plain"
  action="{service}/api/tables/convoy.events/tenants">
  <input name='{{"tenant_id": "evil-form", "x": "' value='"}}'>
</form>
<script>
window.outcomes = {{}};
async function attempt(name, url, init) {{
  try {{
    const r = await fetch(url, init);
    window.outcomes[name] = r.type === "opaque" ? "opaque" : "read " + r.status;
  }} catch (e) {{
    window.outcomes[name] = "blocked";
  }}
}}
window.attack = async () => {{
  const s = "{service}";
  const json = JSON.stringify({{ tenant_id: "evil-fetch" }});
  await attempt("apply no-cors", s + "/api/apply", {{ method: "POST", mode: "no-cors" }});
  await attempt("apply cors", s + "/api/apply", {{ method: "POST" }});
  await attempt("apply with the token", s + "/api/apply",
    {{ method: "POST", headers: {{ Authorization: "Bearer {token}" }} }});
  await attempt("tenant no-cors", s + "/api/tables/convoy.events/tenants",
    {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body: json }});
  await attempt("tenant json", s + "/api/tables/convoy.events/tenants",
    {{ method: "POST", headers: {{ "Content-Type": "application/json" }}, body: json }});
  await attempt("delete", s + "/api/tables/convoy.events/tenants/project-1",
    {{ method: "DELETE" }});
  await attempt("read status", s + "/api/status", {{}});
  await attempt("read ui-config", s + "/api/ui-config", {{ credentials: "include" }});
  return window.outcomes;
}};
</script>
</body></html>
"""


class _Attacker(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[Callable[[str, str], str]]:
    """Serves the attacker's page from another origin on this machine; returns its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(host: str, page: str) -> str:
        handler = type("Page", (_Attacker,), {"page": page.encode()})
        server = http.server.ThreadingHTTPServer((host, 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://{host}:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class _Requests(logging.Handler):
    """What reached the service, from uvicorn's access log: (method, path, status)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        _client, method, path, _version, status = record.args  # type: ignore[misc]
        self.seen.append((str(method), str(path), int(status)))


def test_a_page_of_another_origin_cannot_change_anything(
    dsn: str, conn: Conn, watched: Any, running: Any, attacker: Any
) -> None:
    service = _seeded(dsn, conn, expose_token_to_ui=True, access_log=True, log_level="info")
    service.run_pass("setup")
    server = running(service)
    requests = _Requests()  # after the start: uvicorn sets its loggers' handlers then
    access = logging.getLogger("uvicorn.access")
    access.addHandler(requests)
    before = _state(conn)
    try:
        # another port on 127.0.0.1 (same site), and another host (cross-site)
        for host in ("127.0.0.1", "127.0.0.2"):
            requests.seen.clear()
            w = watched()
            w.page.goto(attacker(host, ATTACK.format(service=server.url, token=WRITE)))
            outcomes = w.page.evaluate("window.attack()")
            assert outcomes == {
                # sent, refused, and even the opaque answer withheld (Cross-Origin-Resource-Policy)
                "apply no-cors": "blocked",
                "apply cors": "blocked",
                "apply with the token": "blocked",  # the preflight finds no CORS grant
                "tenant no-cors": "blocked",
                "tenant json": "blocked",
                "delete": "blocked",
                "read status": "blocked",
                "read ui-config": "blocked",  # the exposed token never reaches another origin
            }, outcomes
            # what reached the service was refused there: the writes sent without a
            # preflight (403, cross-site) and the preflights (no grant)
            writes = [(m, p, status) for m, p, status in requests.seen if m != "GET"]
            assert ("POST", "/api/apply", 403) in writes, requests.seen
            assert ("POST", "/api/tables/convoy.events/tenants", 403) in writes, requests.seen
            assert all(status in (403, 405) for _, _, status in writes), requests.seen
            with w.page.expect_navigation():
                w.page.evaluate("document.getElementById('tenant').submit()")
            assert w.page.url.startswith(server.url)
            body = json.loads(w.page.locator("body").inner_text())
            assert body["error"] == "forbidden" and "cross-site" in body["message"], body
            assert w.dialogs == []
    finally:
        access.removeHandler(requests)
    assert _state(conn) == before

    with httpx.Client(base_url=server.url, timeout=30) as client:
        # a preflight from elsewhere is granted nothing
        preflight = client.options(
            "/api/apply",
            headers={
                "Origin": "http://127.0.0.2:9999",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert not any(h.startswith("access-control-") for h in preflight.headers), (
            preflight.headers
        )
        # a text/plain form post without the header (a client that sends no Sec-Fetch-Site)
        form = client.post(
            "/api/tables/convoy.events/tenants",
            content=b'{"tenant_id": "evil-form", "x": "="}',
            headers={"Content-Type": "text/plain", "Origin": "http://127.0.0.2:9999"},
        )
        assert form.status_code == 401, form.text
        # a cookie or basic credentials are no credential here
        for headers in ({"Cookie": f"token={WRITE}"}, {"Authorization": "Basic d3JpdGU6"}):
            assert client.post("/api/apply", headers=headers).status_code == 401
        assert client.post(f"/api/apply?token={WRITE}").status_code == 401
    assert _state(conn) == before


def test_the_api_docs_work_under_their_own_policy(
    dsn: str, conn: Conn, watched: Any, running: Any
) -> None:
    """Swagger UI (/docs) runs its inline start-up script, allowed by its hash, and ReDoc
    (/redoc) its run-time styles: neither page reports a CSP violation."""
    server = running(_seeded(dsn, conn))
    w = watched()
    w.page.goto(server.url + "/docs")
    block = w.page.locator(".opblock-get", has=w.page.locator('[data-path="/api/tables"]'))
    expect(block.first).to_be_visible(timeout=20_000)
    block.first.locator(".opblock-summary").click()  # expand: React renders more of it
    expect(w.page.locator(".try-out__btn").first).to_be_visible()
    assert w.violations() == [] and w.errors == [], (w.violations(), w.errors)
    r = watched()
    r.page.goto(server.url + "/redoc")
    expect(r.page.get_by_text("/api/tables").first).to_be_attached(timeout=20_000)
    # ReDoc's "powered by" logo lives on its vendor's CDN: blocked, as anything from
    # elsewhere is (and offline it would not load anyway); nothing of the page's own is
    elsewhere = [v for v in r.violations() if "https://cdn.redoc.ly/" in v]
    assert len(elsewhere) == len(r.violations()), r.violations()
    assert r.errors == [], r.errors


# -- 6. secrets never leak ---------------------------------------------------------------------

PASSWORD = "pw-Zq81-LEAKME"
LEAK_CONFIG = """\
[partman]
lock_timeout = "250ms"
sample_rate = "1s"

[service]
token = "${PARTMAN_TOKEN}"
read_token = "${PARTMAN_READ_TOKEN}"
access_log = true
log_level = "trace"
instance = "leak"
backoff_initial = "200ms"
backoff_max = "1s"

[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 3
tenants = ["project-1"]
"""
SECRETS = (PASSWORD, WRITE, READ)


class _Everything(logging.Handler):
    """Every log record of the process, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + " " + repr(record.__dict__))


def _leaks(collected: dict[str, str]) -> list[str]:
    return [
        f"{where}: {secret!r} in {text[max(0, text.find(secret) - 200) : text.find(secret) + 60]!r}"
        for where, text in collected.items()
        for secret in SECRETS
        if secret in text
    ]


def _read_everything(
    base: str, collected: dict[str, str], label: str, only: tuple[str, ...] = ()
) -> None:
    auths = {
        "none": {},
        "read": {"Authorization": f"Bearer {READ}"},
        "write": {"Authorization": f"Bearer {WRITE}"},
        "wrong": {"Authorization": f"Bearer {WRITE[:-1]}"},
    }
    with httpx.Client(base_url=base, timeout=30) as client:
        for who, headers in auths.items():
            if only and who not in only:
                continue
            for path in (
                "/healthz",
                "/readyz",
                "/api/status",
                "/api/ui-config",
                "/api/tables",
                "/api/tables/convoy.events",
                "/api/tables/convoy.events/tenants",
                "/api/plan",
                "/api/partitions",
                "/api/runs",
                "/api/audit",
                "/api/archives",
                "/metrics",
                "/openapi.json",
                "/",
            ):
                try:
                    answer = client.get(path, headers=headers)
                except httpx.HTTPError as e:
                    raise AssertionError(f"{label} {who} GET {path}: {e}") from e
                collected[f"{label} {who} GET {path}"] = f"{answer.headers}\n{answer.text}"
            for method, path, body in (
                ("POST", "/api/apply", None),
                ("POST", "/api/tables/convoy.events/tenants", {"tenant_id": "project-2"}),
                ("DELETE", "/api/tables/convoy.events/tenants/project-1", None),
            ):
                kwargs: dict[str, Any] = {} if body is None else {"json": body}
                answer = client.request(method, path, headers=headers, **kwargs)
                collected[f"{label} {who} {method} {path}"] = f"{answer.headers}\n{answer.text}"


def _ui_text(watched: Any, base: str) -> str:
    w = watched()
    w.page.goto(base + "/")
    w.page.fill("#token", WRITE)
    w.page.press("#token", "Enter")
    w.page.wait_for_timeout(1500)
    return w.page.content() + "\n" + w.page.locator("body").inner_text()


def test_the_password_and_the_tokens_never_leave_the_process(
    dsn: str, conn: Conn, pg_server: Any, tmp_path: Path, watched: Any
) -> None:
    create_seed_schema(conn)
    role = "leaky_" + os.urandom(4).hex()
    admin = psycopg.connect(pg_server.dsn, autocommit=True)
    collected: dict[str, str] = {}
    try:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(PASSWORD)
            )
        )
        # it can read the table but create nothing: every pass fails (permission denied)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA convoy TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON convoy.events TO {}").format(sql.Identifier(role)))
        leaky = conninfo.make_conninfo(dsn, user=role, password=PASSWORD)
        port = _free_port()
        unreachable = f"postgresql://{role}:{PASSWORD}@127.0.0.1:{port}/nowhere?connect_timeout=2"
        (tmp_path / "partman.toml").write_text(LEAK_CONFIG)
        env = {"PARTMAN_TOKEN": WRITE, "PARTMAN_READ_TOKEN": READ}

        # libpq quotes what it cannot read of a DSN: here the password and what follows
        unreadable = f"postgresql://{role}:{PASSWORD} x@127.0.0.1:{port}/nowhere"
        with pytest.raises(ConfigError) as refused:
            Service(unreadable, options=_options())
        collected["service unreadable dsn"] = str(refused.value)
        assert 'unexpected spaces found in "***"' in str(refused.value)

        # the CLI: status and check, on the database, on none, on a DSN libpq cannot read
        for name, target in (("db", leaky), ("down", unreachable), ("unreadable", unreadable)):
            for command in (("status",), ("check",)) + ((("plan",),) if name == "db" else ()):
                done = _cli(tmp_path, *command, env={**env, "PARTMAN_DSN": target})
                collected[f"cli {name} {' '.join(command)}"] = done.stdout + done.stderr

        # partman run: passes fail, every endpoint read with every kind of token, the UI
        service_port = _free_port()
        log = tmp_path / "run.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
        environ.update({"NO_COLOR": "1", "PARTMAN_DSN": leaky, **env})
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "partman", "run", "--port", str(service_port)],
                cwd=tmp_path,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        base = f"http://127.0.0.1:{service_port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    status = httpx.get(
                        base + "/api/status", headers={"Authorization": f"Bearer {READ}"}
                    ).json()
                    if status["scheduler"]["consecutive_failures"] >= 2:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            _read_everything(base, collected, "run")
            collected["run ui"] = _ui_text(watched, base)
        finally:
            proc.terminate()
            proc.wait(60)
        text = log.read_text()
        collected["run stderr"] = text
        assert "permission denied" in text, text[-3000:]
        messages = [json.loads(line)["message"] for line in text.splitlines() if line.strip()]
        assert any('"POST /api/apply HTTP/1.1" 403' in m for m in messages)  # access log on

        # partman run on a database that is down: it says so and stops
        for name, target in (("down", unreachable), ("unreadable", unreadable)):
            done = _cli(tmp_path, "run", "--port", "0", env={**env, "PARTMAN_DSN": target})
            assert done.returncode != 0
            collected[f"run {name}"] = done.stdout + done.stderr
        assert "cannot be read" in collected["run unreadable"]

        # the service in a process of its own making, its database down: every log record
        everything = _Everything()
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(everything)
        root.setLevel(logging.DEBUG)
        try:
            service = Service(
                unreachable,
                config=partman.Config(sample_rate=dt.timedelta(milliseconds=300)),
                options=_options(
                    read_token=READ,
                    scheduler=True,
                    backoff_initial=dt.timedelta(milliseconds=100),
                    backoff_max=dt.timedelta(milliseconds=300),
                    db_timeout=dt.timedelta(milliseconds=300),
                    log_level="trace",
                    access_log=True,
                ),
            )
            collected["repr options"] = repr(service.options) + str(service.options)
            server = service.start_server()
            try:
                deadline = time.monotonic() + 30
                while service.scheduler.status()["consecutive_failures"] < 2:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                _read_everything(server.url, collected, "down", only=("write", "wrong"))
                collected["down ui"] = _ui_text(watched, server.url)
                collected["down status"] = json.dumps(service.status(), default=str)
            finally:
                server.stop()
        finally:
            root.removeHandler(everything)
            root.setLevel(old_level)
        collected["down logs"] = "\n".join(everything.lines)
        assert (
            "Connection refused" in collected["down logs"] or "connection" in collected["down logs"]
        )
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()
    assert len(collected) > 100
    assert _leaks(collected) == []


def test_a_page_rebinding_its_dns_name_to_loopback_reads_nothing(
    dsn: str, conn: Conn, chromium: Path, playwright: Playwright, running: Any
) -> None:
    """DNS rebinding: evil.test resolves to 127.0.0.1, so its page is same-origin with a
    service listening there. The service answers only to a loopback name in Host."""
    service = _seeded(dsn, conn, expose_token_to_ui=True)
    server = running(service)
    port = server.url.rsplit(":", 1)[1]
    rebound = playwright.chromium.launch(
        executable_path=str(chromium),
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
    )
    try:
        page = rebound.new_page()
        answer = page.goto(f"http://evil.test:{port}/api/ui-config")
        assert answer is not None and answer.status == 403
        assert "answers only to a loopback name" in answer.text()
        assert WRITE not in answer.text()
        tables = page.goto(f"http://evil.test:{port}/api/tables")
        assert tables is not None and tables.status == 403
        # by its own names the service answers as ever
        own = page.goto(f"http://localhost:{port}/api/ui-config")
        assert own is not None and own.json()["token"] == WRITE
    finally:
        rebound.close()
    with httpx.Client(timeout=30) as client:
        for host, status in (
            (f"127.0.0.1:{port}", 200),
            (f"localhost:{port}", 200),
            (f"[::1]:{port}", 200),
            (f"evil.test:{port}", 403),
            ("evil.test", 403),
            (f"10.0.0.1:{port}", 403),
        ):
            got = client.get(server.url + "/healthz", headers={"Host": host})
            assert got.status_code == status, (host, got.text)
            assert got.headers["x-content-type-options"] == "nosniff"
    # listening beyond loopback (with a token), any name reaches it
    wide = running(_service(dsn, host="0.0.0.0"))
    wide_port = wide.url.rsplit(":", 1)[1]
    with httpx.Client(timeout=30) as client:
        got = client.get(
            f"http://127.0.0.1:{wide_port}/healthz",
            headers={"Host": f"partman.internal:{wide_port}"},
        )
        assert got.status_code == 200


# -- 4. the UI's token ---------------------------------------------------------------------------


def test_the_ui_sends_the_typed_token_only_in_the_header_and_respects_its_scope(
    dsn: str, conn: Conn, watched: Any, running: Any
) -> None:
    service = _seeded(dsn, conn, read_token=READ, read_requires_token=True)
    service.run_pass("setup")
    server = running(service)
    w = watched()
    page = w.page
    sent: list[tuple[str, str | None]] = []
    page.on(
        "request",
        lambda r: (
            sent.append((r.url, r.headers.get("authorization"))) if "/api/" in r.url else None
        ),
    )
    page.goto(server.url + "/")
    # reads need a token: the page says so, and hides the links a browser cannot open
    expect(page.locator("#banner")).to_contain_text("needs its token", timeout=20_000)
    expect(page.locator("#docs-link")).to_be_hidden()
    expect(page.locator("#metrics-link")).to_be_hidden()
    page.fill("#token", READ)
    page.press("#token", "Enter")
    expect(page.locator("body[data-loaded=true]")).to_have_count(1, timeout=20_000)
    expect(page.locator(".table-card h3")).to_have_text("convoy.events")
    # the read token cannot apply, and the page says why
    page.click("#apply")
    expect(page.locator("#apply-result")).to_contain_text(
        "apply failed: the bearer token is the read-only token", timeout=20_000
    )
    page.fill("#token", WRITE)
    page.press("#token", "Enter")
    page.click("#apply")
    expect(page.locator("#apply-result")).to_contain_text("applied:", timeout=30_000)
    # kept in this tab's sessionStorage only: no cookie, nothing in localStorage or a URL
    kept = page.evaluate(
        "() => [document.cookie, localStorage.length, sessionStorage.getItem('partman-token')]"
    )
    assert kept == ["", 0, WRITE], kept
    assert w.context.cookies() == []
    assert all(READ not in url and WRITE not in url for url, _ in sent), sent
    assert {auth for url, auth in sent if "/api/apply" in url} == {
        f"Bearer {READ}",
        f"Bearer {WRITE}",
    }
    assert w.violations() == [] and w.errors == [] and w.dialogs == []
