"""The service's JSON API and metrics on a real server: reads, changes, auth, bad input."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import conninfo

import partman
from partman.service import SERIES, ServerThread, Service, ServiceOptions

from seed import (
    NOW,
    SEED_TABLES,
    catalog_fingerprint,
    create_seed_schema,
    days_covered,
    seed_table,
)

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAY = dt.timedelta(days=1)


@pytest.fixture
def make_service(dsn: str) -> Iterator[Callable[..., Service]]:
    """Services on this test's database (no scheduler unless asked), closed afterwards."""
    made: list[Service] = []

    def make(clock: partman.Clock | None = None, dsn: str = dsn, **changes: Any) -> Service:
        fields: dict[str, Any] = {
            "port": 0,
            "token": TOKEN,
            "scheduler": False,
            "instance": f"api-{len(made)}",
            "db_timeout": dt.timedelta(seconds=2),
            "backoff_initial": dt.timedelta(milliseconds=200),
            "backoff_max": dt.timedelta(seconds=1),
            "log_level": "warning",
        }
        fields.update(changes)
        config = partman.Config(sample_rate=dt.timedelta(milliseconds=500))
        service = Service(
            dsn,
            config=config,
            options=ServiceOptions(**fields),
            clock=clock or partman.SimulatedClock(NOW),
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Service], httpx.Client]]:
    """Serve a service over HTTP on 127.0.0.1 (a free port) from a thread; a client for it."""
    running: list[tuple[ServerThread, httpx.Client]] = []

    def start(service: Service) -> httpx.Client:
        server = service.start_server()
        client = httpx.Client(base_url=server.url, timeout=30)
        running.append((server, client))
        return client

    yield start
    for server, client in running:
        client.close()
        server.stop()


def _seed(conn: Conn, service: Service) -> None:
    """convoy.events (tenants project-1, project-2; a default partition) and
    convoy.event_deliveries (project-1), registered; no pass yet."""
    create_seed_schema(conn)
    manager = service.manager
    manager.add_managed_table(seed_table("events", default_partition=True))
    manager.register_tenants(
        "convoy.events",
        ["project-1", partman.Tenant(tenant_id="project-2", retention_period="7 days")],
    )
    manager.add_managed_table(seed_table("event_deliveries", "project-1"))


def _metadata(conn: Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT t.schema_name, t.table_name, t.retention, t.partition_count, n.tenant_id, "
        "n.retention, n.partition_count, n.retention_action FROM partman_meta.managed_tables t "
        "LEFT JOIN partman_meta.tenants n ON n.table_id = t.id ORDER BY 1, 2, 5"
    ).fetchall()


def _snapshot(conn: Conn) -> tuple[Any, ...]:
    return (catalog_fingerprint(conn), _metadata(conn))


def test_reads_plan_apply_runs_and_audit(
    dsn: str, conn: Conn, make_service: Any, serve: Any
) -> None:
    service = make_service()
    _seed(conn, service)
    client = serve(service)

    schema = client.get("/openapi.json").json()
    for path in (
        "/api/tables",
        "/api/tables/{table}/tenants",
        "/api/tables/{table}/tenants/{tenant}",
        "/api/tables/{table}/indexes",
        "/api/tables/{table}/restore",
        "/api/archives",
        "/api/partitions",
        "/api/plan",
        "/api/apply",
        "/api/runs",
        "/api/audit",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/tables/{table}/tenants/{tenant}"]) == {
        "get",
        "patch",
        "delete",
    }
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"

    tables = {t["table"]: t for t in client.get("/api/tables").json()}
    assert set(tables) == {"convoy.events", "convoy.event_deliveries"}
    events = tables["convoy.events"]
    assert (events["tenants"], events["partitions"], events["default_partition"]) == (2, 0, True)
    assert events["min_runway_seconds"] == 0.0  # nothing made yet

    plan = client.get("/api/plan").json()
    assert plan["summary"] == {"create_default": 1, "create": 33}
    only = client.get("/api/plan", params={"table": "convoy.event_deliveries"}).json()
    assert only["summary"] == {"create": 11}
    assert {op["table"] for op in only["operations"]} == {"convoy.event_deliveries"}
    assert all(op["sql"] and op["reason"] for op in plan["operations"])
    assert client.get("/api/runs").json() == []

    applied = client.post("/api/apply", headers=AUTH)
    assert applied.status_code == 200, applied.text
    report = applied.json()
    assert report["partitions_created"] == 33 and report["operations_failed"] == 0
    assert report["trigger"] == "api" and report["instance"] == "api-0"
    assert client.get("/api/plan").json()["operations"] == []

    runs = client.get("/api/runs").json()
    assert [r["run_id"] for r in runs] == [report["run_id"]]
    assert runs[0]["outcome"] == "ok" and runs[0]["summary"]["partitions_created"] == 33

    tenants = client.get("/api/tables/convoy.events/tenants").json()
    assert [t["tenant_id"] for t in tenants] == ["project-1", "project-2"]
    p2 = tenants[1]
    assert (p2["retention_period"], p2["effective_retention_period"]) == ("1 week", "1 week")
    assert (p2["partition_count"], p2["effective_partition_count"]) == (None, 10)
    assert p2["coverage"]["partitions"] == 11
    assert p2["coverage"]["runway_seconds"] == (10 * DAY + DAY / 2).total_seconds()
    one = client.get("/api/tables/convoy.events/tenants/project-2").json()
    assert one == p2

    parts = client.get("/api/partitions", params={"table": "convoy.events"}).json()
    assert parts["now"] == NOW.isoformat()
    assert len([p for p in parts["partitions"] if not p["is_default"]]) == 22
    assert [p["partition"] for p in parts["partitions"] if p["is_default"]] == [
        "convoy.events_default"
    ]
    assert parts["default_rows"] == {"convoy.events": 0}
    mine = client.get(
        "/api/partitions", params={"table": "convoy.events", "tenant": "project-1"}
    ).json()
    regular = [p for p in mine["partitions"] if not p["is_default"]]
    assert len(regular) == 11 and {p["tenant"] for p in regular} == {"project-1"}
    assert {p["owner"] for p in regular} == {"created"}
    assert [c["tenant"] for c in mine["coverage"]] == ["project-1"]

    first = client.get("/api/audit", params={"limit": 20}).json()
    assert len(first["entries"]) == 20 and first["next_before"] is not None
    assert all(e["outcome"] == "ok" and e["run_id"] == report["run_id"] for e in first["entries"])
    rest = client.get("/api/audit", params={"limit": 100, "before": first["next_before"]}).json()
    assert rest["next_before"] is None
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids) == 34
    failed = client.get("/api/audit", params={"outcome": "failed"}).json()
    assert failed == {"entries": [], "next_before": None}
    by_table = client.get("/api/audit", params={"table": "convoy.event_deliveries"}).json()
    assert len(by_table["entries"]) == 11


def test_tenants_added_changed_and_removed(
    dsn: str, conn: Conn, make_service: Any, serve: Any
) -> None:
    clock = partman.SimulatedClock(NOW)
    service = make_service(clock)
    _seed(conn, service)
    client = serve(service)
    assert client.post("/api/apply", headers=AUTH).status_code == 200

    added = client.post(
        "/api/tables/convoy.events/tenants",
        json={"tenant_id": "O'Brien; DROP TABLE x", "retention_period": "3 days"},
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["tenant_id"] == "O'Brien; DROP TABLE x"
    assert (body["retention_period"], body["coverage"]["partitions"]) == ("3 days", 0)
    plan = client.get("/api/plan").json()
    assert {(op["kind"], op["tenant"]) for op in plan["operations"]} == {
        ("create", "O'Brien; DROP TABLE x")
    }
    assert client.post("/api/apply", headers=AUTH).json()["partitions_created"] == 11
    assert len(days_covered(conn, "convoy", "events", "O'Brien; DROP TABLE x")) == 11

    clock.advance(5 * DAY)
    patched = client.patch(
        "/api/tables/convoy.events/tenants/" + "O'Brien; DROP TABLE x",
        json={"retention_period": "1 day", "partition_count": 2},
        headers=AUTH,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["retention_period"], patched.json()["partition_count"]) == ("1 day", 2)
    plan = client.get("/api/plan", params={"table": "convoy.events"}).json()
    dropped = {op["tenant"] for op in plan["operations"] if op["kind"] == "drop"}
    assert dropped == {"O'Brien; DROP TABLE x", "project-2"} or dropped == {"O'Brien; DROP TABLE x"}
    drops = [op for op in plan["operations"] if op["tenant"] == "O'Brien; DROP TABLE x"]
    assert {op["kind"] for op in drops} == {"drop"} and len(drops) == 4

    # null inherits again; fields left out keep their value
    inherit = client.patch(
        "/api/tables/convoy.events/tenants/O'Brien; DROP TABLE x",
        json={"retention_period": None},
        headers=AUTH,
    ).json()
    assert (inherit["retention_period"], inherit["effective_retention_period"]) == (
        None,
        "30 days",
    )
    assert inherit["partition_count"] == 2

    removed = client.delete("/api/tables/convoy.events/tenants/O'Brien; DROP TABLE x", headers=AUTH)
    assert removed.status_code == 200 and removed.json()["removed"] is True
    tenants = [t["tenant_id"] for t in client.get("/api/tables/convoy.events/tenants").json()]
    assert tenants == ["project-1", "project-2"]
    # its partitions stay (removing a tenant never drops data)
    assert len(days_covered(conn, "convoy", "events", "O'Brien; DROP TABLE x")) == 11
    gone = client.get("/api/tables/convoy.events/tenants/O'Brien; DROP TABLE x")
    assert gone.status_code == 404 and "not registered" in gone.json()["message"]

    # a tenant id with a slash and one that is an integer in JSON
    slash = client.post(
        "/api/tables/convoy.events/tenants", json={"tenant_id": "team/a b"}, headers=AUTH
    )
    assert slash.status_code == 201, slash.text
    assert client.get("/api/tables/convoy.events/tenants/team%2Fa%20b").json()["tenant_id"] == (
        "team/a b"
    )
    number = client.post("/api/tables/convoy.events/tenants", json={"tenant_id": 42}, headers=AUTH)
    assert number.status_code == 201 and number.json()["tenant_id"] == "42"


def test_auth_failures_change_nothing(dsn: str, conn: Conn, make_service: Any, serve: Any) -> None:
    service = make_service()
    _seed(conn, service)
    before = _snapshot(conn)
    client = serve(service)
    add = ("post", "/api/tables/convoy.events/tenants", {"tenant_id": "project-9"})
    patch = ("patch", "/api/tables/convoy.events/tenants/project-1", {"partition_count": 1})
    remove = ("delete", "/api/tables/convoy.events/tenants/project-1", None)
    apply = ("post", "/api/apply", None)
    for method, path, body in (add, patch, remove, apply):
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        missing = client.request(method, path, **kwargs)
        assert missing.status_code == 401, (path, missing.text)
        assert missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"] == "unauthorized"
        assert "Authorization: Bearer" in missing.json()["message"]
        wrong = client.request(method, path, headers={"Authorization": "Bearer nope"}, **kwargs)
        assert wrong.status_code == 403, (path, wrong.text)
        assert wrong.json() == {
            "error": "forbidden",
            "message": "the bearer token is not this service's token",
        }
        basic = client.request(method, path, headers={"Authorization": "Basic eDp5"}, **kwargs)
        assert basic.status_code == 401
    assert _snapshot(conn) == before
    assert client.get("/api/tables").status_code == 200  # reads are open by default

    read_only = serve(make_service(token=None))
    refused = read_only.post("/api/apply", headers=AUTH)
    assert refused.status_code == 403 and "read-only" in refused.json()["message"]
    assert read_only.get("/api/ui-config").json()["mutations_enabled"] is False

    private = serve(make_service(read_requires_token=True))
    for path in ("/api/tables", "/api/plan", "/api/runs", "/api/partitions", "/metrics"):
        assert private.get(path).status_code == 401, path
        assert private.get(path, headers={"Authorization": "Bearer x"}).status_code == 403
        assert private.get(path, headers=AUTH).status_code == 200, path
    for path in ("/healthz", "/readyz", "/", "/ui/app.js", "/api/ui-config"):
        assert private.get(path).status_code == 200, path
    assert private.get("/api/ui-config").json()["token"] is None
    assert _snapshot(conn) == before


def test_bad_input_is_4xx_with_a_clear_message_and_changes_nothing(
    dsn: str, conn: Conn, make_service: Any, serve: Any
) -> None:
    service = make_service()
    _seed(conn, service)
    conn.execute(
        "CREATE TABLE convoy.plain (id int, created_at timestamptz NOT NULL) "
        "PARTITION BY RANGE (created_at)"
    )
    service.manager.add_managed_table(
        partman.Table(name="plain", schema="convoy", partition_by="created_at")
    )
    client = serve(service)
    before = _snapshot(conn)

    def call(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = client.request(method, path, headers=AUTH, **kwargs)
        return response.status_code, response.json()

    tenants = "/api/tables/convoy.events/tenants"
    cases: list[tuple[str, str, Any, int, str, str]] = [
        ("get", "/api/tables/convoy.nope", None, 404, "NotRegisteredError", "not managed"),
        ("get", "/api/tables/convoy.nope/tenants", None, 404, "NotRegisteredError", "nope"),
        ("post", "/api/tables/convoy.nope/tenants", {"tenant_id": "x"}, 404, "", "convoy.nope"),
        ("get", "/api/partitions?table=convoy.nope", None, 404, "NotRegisteredError", "nope"),
        ("post", tenants, {"tenant_id": ""}, 422, "TenantError", "must not be empty"),
        ("post", tenants, {"tenant_id": "a\x00b"}, 422, "TenantError", "NUL character"),
        ("post", tenants, {"tenant_id": "x", "retention_period": "30 parsecs"}, 422, "", "parsecs"),
        ("post", tenants, {"tenant_id": "x", "partition_count": -1}, 422, "", "partition_count"),
        ("post", tenants, {"tenant_id": "x", "partition_count": "ten"}, 422, "", "integer"),
        ("post", tenants, {"tenant_id": "x", "retention_action": "burn"}, 422, "", "drop"),
        ("post", tenants, {"tenant_id": "x", "color": "red"}, 422, "invalid_request", "color"),
        ("post", tenants, {"tenant_id": True}, 422, "invalid_request", "tenant_id"),
        ("post", tenants, {}, 422, "invalid_request", "tenant_id: Field required"),
        ("post", tenants, {"tenant_id": "project-1"}, 409, "conflict", "already registered"),
        ("post", "/api/tables/convoy.plain/tenants", {"tenant_id": "a"}, 422, "", "no tenant"),
        ("patch", tenants + "/project-7", {"partition_count": 1}, 404, "", "not registered"),
        ("patch", tenants + "/project-1", {"retention_period": "soon"}, 422, "", "soon"),
        ("patch", tenants + "/project-1", {"partition_count": 10001}, 422, "", "0..10000"),
        ("delete", tenants + "/project-7", None, 404, "NotRegisteredError", "project-7"),
        ("get", "/api/runs?limit=0", None, 422, "invalid_request", "limit"),
        ("get", "/api/audit?outcome=bad", None, 422, "invalid_request", "outcome"),
    ]
    for method, path, body, status, kind, words in cases:
        got, payload = call(method, path, body)
        assert got == status, (method, path, body, payload)
        assert set(payload) >= {"error", "message"}, payload
        if kind:
            assert payload["error"] == kind, (path, payload)
        assert words in payload["message"], (path, body, payload["message"])
    assert _snapshot(conn) == before

    # partman's own message, word for word
    got, payload = call("post", tenants, {"tenant_id": ""})
    assert payload["message"] == (
        "tenant id '' for convoy.events.project_id (character varying): "
        "a tenant id must not be empty"
    )


def test_adding_a_tenant_shows_its_partitions_after_the_next_pass(
    dsn: str, conn: Conn, make_service: Any, serve: Any
) -> None:
    service = make_service(scheduler=True)
    _seed(conn, service)
    client = serve(service)  # serving starts the scheduler
    deadline = time.monotonic() + 20
    while not client.get("/api/status").json()["leader"]:
        assert time.monotonic() < deadline, client.get("/api/status").json()
        time.sleep(0.05)
    while client.get("/api/plan").json()["operations"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    added = client.post(
        "/api/tables/convoy.events/tenants", json={"tenant_id": "project-new"}, headers=AUTH
    )
    assert added.status_code == 201
    seen: list[dict[str, Any]] = []
    while len(seen) < 11:
        assert time.monotonic() < deadline, seen
        time.sleep(0.05)
        found = client.get(
            "/api/partitions", params={"table": "convoy.events", "tenant": "project-new"}
        ).json()
        seen = [p for p in found["partitions"] if not p["is_default"]]
    assert found["coverage"][0]["runway_seconds"] > 10 * DAY.total_seconds()
    status = client.get("/api/status").json()
    assert status["role"] == "leader" and status["last_pass"]["trigger"] == "schedule"
    assert len(days_covered(conn, "convoy", "events", "project-new")) == 11


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_export_every_series(dsn: str, conn: Conn, make_service: Any, serve: Any) -> None:
    service = make_service(leader_election=False, metrics_per_tenant=True)
    _seed(conn, service)
    client = serve(service)
    assert client.post("/api/apply", headers=AUTH).status_code == 200
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) "
        "SELECT 'stray-' || n, 'nobody', %s FROM generate_series(1, 5) n",
        (NOW,),
    )
    service.manager.register_tenants("convoy.event_deliveries", ["project-2"])
    # an idle transaction holding a lock that partman's creates conflict with: it skips the
    # table this pass (naming the holder) instead of queueing behind it
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE convoy.event_deliveries IN SHARE MODE")
        report = client.post("/api/apply", headers=AUTH).json()
        holder.rollback()
    assert report["operations_skipped"] == 11, report
    assert report["default_rows_by_table"] == {"convoy.events": 5}

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = _families(response.text)
    # prometheus' parser names counters without _total
    names = {n[: -len("_total")] if n.endswith("_total") else n for n in SERIES}
    assert names <= set(families), names - set(families)

    def samples(name: str, suffix: str = "") -> dict[tuple[tuple[str, str], ...], float]:
        return {
            tuple(sorted(s.labels.items())): s.value
            for s in families[name].samples
            if s.name == name + suffix
        }

    runway = samples("partman_runway_seconds")
    assert runway[(("table", "convoy.events"), ("tenant", "project-1"))] == 10.5 * 86400
    assert runway[(("table", "convoy.event_deliveries"), ("tenant", "project-2"))] == 0.0
    assert len(runway) == 4
    assert samples("partman_partitions") == {
        (("table", "convoy.event_deliveries"),): 11.0,
        (("table", "convoy.events"),): 22.0,
    }
    assert samples("partman_default_partition_rows") == {(("table", "convoy.events"),): 5.0}
    assert samples("partman_database_up") == {(): 1.0}
    last_success = samples("partman_last_success_timestamp_seconds")[()]
    assert abs(last_success - time.time()) < 60
    ops = samples("partman_operations", "_total")
    assert ops[(("kind", "create"), ("outcome", "ok"))] == 33.0
    assert ops[(("kind", "create_default"), ("outcome", "ok"))] == 1.0
    assert ops[(("kind", "create"), ("outcome", "skipped"))] == 11.0
    assert samples("partman_lock_timeouts", "_total") == {(): 0.0}
    skips = samples("partman_skipped_operations", "_total")
    assert skips == {(("reason", "lock_holder"), ("table", "convoy.event_deliveries")): 11.0}
    passes = samples("partman_passes", "_total")
    assert passes[(("outcome", "ok"),)] == 1.0 and passes[(("outcome", "partial"),)] == 1.0
    assert samples("partman_pass_duration_seconds", "_count") == {(): 2.0}
    assert samples("partman_pass_errors", "_total") == {(): 0.0}
    assert samples("partman_leader") == {(): 0.0}  # no scheduler running here

    skipped = client.get("/api/audit", params={"outcome": "skipped"}).json()["entries"]
    assert len(skipped) == 11 and all("would queue behind" in e["error"] for e in skipped)


def test_database_unreachable_is_503_and_metrics_still_answer(
    dsn: str, make_service: Any, serve: Any
) -> None:
    nowhere = conninfo.make_conninfo(dsn, dbname="no_such_database_here")
    client = serve(make_service(dsn=nowhere, db_timeout=dt.timedelta(milliseconds=300)))
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "not ready"
    assert "unreachable" in ready.json()["database"]
    assert "no_such_database_here" in ready.json()["database"]
    for path in ("/api/runs", "/api/tables", "/api/plan"):
        down = client.get(path)
        assert down.status_code == 503, (path, down.text)
        assert down.json()["error"] == "database_unavailable"
        assert (
            "no_such_database_here" in down.json()["message"]
            or "within" in (down.json()["message"])
        )
    refused = client.post("/api/apply", headers=AUTH)
    assert refused.status_code == 503
    families = _families(client.get("/metrics").text)
    assert [s.value for s in families["partman_database_up"].samples] == [0.0]
    errors = families["partman_pass_errors"].samples
    assert [s.value for s in errors if s.name.endswith("_total")] == [1.0]


DEMO = """
import sys
from partman.demo.service import run_demo_server
run_demo_server("127.0.0.1", 0, dsn=sys.argv[1], token="demo-token")
"""


def test_demo_server_end_to_end(dsn: str, conn: Conn) -> None:
    """The issue's walk-through: start the demo server, see the seed's partitions per tenant,
    add a tenant through the API, see its partitions after the next pass, scrape /metrics."""
    proc = subprocess.Popen(
        [sys.executable, "-c", DEMO, dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("partman demo: open http://127.0.0.1:"), first
        url = first.split()[3].rstrip("/")
        banner = [proc.stdout.readline() for _ in range(3)]
        assert banner[0] == "token for changes: demo-token\n"
        with httpx.Client(base_url=url, timeout=30) as client:
            assert "<title>partman</title>" in client.get("/").text
            config = client.get("/api/ui-config").json()
            assert config["token"] == "demo-token"
            tables = {t["table"]: t for t in client.get("/api/tables").json()}
            assert set(tables) == {f"convoy.{n}" for n in SEED_TABLES}
            events = tables["convoy.events"]
            assert events["tenants"] == 3 and events["default_rows"] == 42
            coverage = client.get("/api/partitions", params={"table": "convoy.events"}).json()
            assert {c["tenant"] for c in coverage["coverage"]} == {
                "project-acme",
                "Project Globex",
                "o'reilly-媒体",
            }
            assert all(c["runway_seconds"] > 10 * 86400 for c in coverage["coverage"])
            plan = client.get("/api/plan").json()
            assert plan["summary"] == {"drop": 4}  # o'reilly's retention was shortened

            added = client.post(
                "/api/tables/convoy.events/tenants",
                json={"tenant_id": "project-initech"},
                headers={"Authorization": "Bearer demo-token"},
            )
            assert added.status_code == 201, added.text
            deadline = time.monotonic() + 30
            while True:
                found = client.get(
                    "/api/partitions",
                    params={"table": "convoy.events", "tenant": "project-initech"},
                ).json()
                if found["coverage"][0]["partitions"] == 41:  # 30 days kept (backfill) + 11
                    break
                assert time.monotonic() < deadline, found["coverage"]
                time.sleep(0.1)
            assert client.get("/api/tables/convoy.events").json()["default_rows"] == 0
            families = _families(client.get("/metrics").text)
            names = {n[: -len("_total")] if n.endswith("_total") else n for n in SERIES}
            assert names <= set(families)
            # every series has samples (skips only once an operation has been skipped; the
            # runway in ids only for id tables, archives only once one is exported: the demo
            # has neither)
            for name in names - {
                "partman_skipped_operations",
                "partman_runway_ids",
                "partman_runway_min_ids",
                "partman_runway_seconds",  # per tenant only with metrics_per_tenant
            } - {n for n in names if "archive" in n}:
                assert families[name].samples, name
            runs = client.get("/api/runs").json()
            assert [r["outcome"] for r in runs] == ["ok", "ok"]
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_tables_show_their_shape_and_an_id_tables_runway_is_in_ids(
    dsn: str, conn: Conn, make_service: Any, serve: Any
) -> None:
    """/api/tables says each table's shape (ids, epoch, HASH leaves, storage parameters); an
    id table's coverage is in ids, and its tenants take a retention in ids."""
    conn.execute(
        "CREATE TABLE public.orders (shop text NOT NULL, id bigint NOT NULL, "
        "created_at timestamptz NOT NULL) PARTITION BY RANGE (shop, id)"
    )
    conn.execute(
        "CREATE TABLE public.hits (device int NOT NULL, at bigint NOT NULL) PARTITION BY RANGE (at)"
    )
    service = make_service(metrics_per_tenant=True)
    manager = service.manager
    orders = partman.Table(
        name="orders",
        tenant_id_column="shop",
        partition_by="id",
        partition_interval=1000,
        partition_count=2,
        retention_period="30 days",
        retention_column="created_at",
    )
    manager.add_managed_table(orders)
    manager.register_tenants(orders, ["a"])
    hits = partman.Table(
        name="hits",
        partition_by="at",
        epoch="milliseconds",
        sub_partition_by="device",
        sub_partition_modulus=4,
        storage_parameters={"fillfactor": 90},
    )
    manager.add_managed_table(hits)
    service.run_pass("setup")
    conn.execute("INSERT INTO orders SELECT 'a', g, now() FROM generate_series(1, 1500) g")
    client = serve(service)

    tables = {t["table"]: t for t in client.get("/api/tables").json()}
    shape = (
        "partition_interval",
        "by_id",
        "epoch",
        "retention_period",
        "retention_column",
        "sub_partition_by",
        "sub_partition_modulus",
        "tenant_partitioning",
        "storage_parameters",
    )
    assert [tables["public.orders"][k] for k in shape] == [
        "1000",
        True,
        None,
        "30 days",
        "created_at",
        None,
        None,
        "range",
        {},
    ]
    assert [tables["public.hits"][k] for k in shape] == [
        "1 day",
        False,
        "milliseconds",
        "forever",
        None,
        "device",
        4,
        "range",
        {"fillfactor": 90},
    ]
    assert tables["public.orders"]["min_runway_ids"] == 1500
    assert tables["public.orders"]["min_runway_text"] == "1500 ids"

    coverage = client.get("/api/partitions", params={"table": "public.orders"}).json()["coverage"]
    assert [(c["covered_until"], c["runway_ids"], c["runway_text"]) for c in coverage] == [
        ("3000", 1500, "1500 ids")
    ]
    added = client.post(
        "/api/tables/public.orders/tenants",
        json={"tenant_id": "b", "retention_period": 5000},
        headers=AUTH,
    )
    assert added.status_code == 201, added.text
    assert added.json()["retention_period"] == "5000 ids"
    # a change of another field keeps the stored distance in ids
    patched = client.patch(
        "/api/tables/public.orders/tenants/b", json={"partition_count": 1}, headers=AUTH
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["retention_period"], patched.json()["partition_count"]) == (
        "5000 ids",
        1,
    )
    again = client.patch(
        "/api/tables/public.orders/tenants/b", json={"retention_period": "6000 ids"}, headers=AUTH
    )
    assert again.json()["effective_retention_period"] == "6000 ids"

    families = _families(client.get("/metrics").text)
    runway_ids = {
        (s.labels["table"], s.labels["tenant"]): s.value
        for s in families["partman_runway_ids"].samples
    }
    assert runway_ids == {("public.orders", "a"): 1500.0, ("public.orders", "b"): 0.0}
    in_seconds = {s.labels["table"] for s in families["partman_runway_seconds"].samples}
    assert in_seconds == {"public.hits"}  # ids are not seconds: no 0 s runway to alert on
