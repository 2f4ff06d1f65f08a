"""The fleet's app is framed as the one-database app is: the same security headers, the same
pages and documentation routes, the same errors. Whatever the one-database app learns about
them (its `create_app`), a fleet must not serve without it. No database is needed: the pools
connect lazily, and these requests never ask for a connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from partman.service import Fleet, Member, Service, ServiceOptions

NOWHERE = "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=1"
PATHS = ("/", "/healthz", "/docs", "/ui/app.js", "/openapi.json", "/api/ui-config", "/nowhere")


@pytest.fixture
def apps() -> Iterator[tuple[TestClient, TestClient]]:
    options = ServiceOptions(port=0, token="t0ken-for-the-test")
    one = Service(NOWHERE, options=options)
    fleet = Fleet([Member("a", NOWHERE), Member("b", NOWHERE)], options=options)
    try:
        base = "http://127.0.0.1"  # a loopback name: the service refuses any other Host
        yield TestClient(one.app, base_url=base), TestClient(fleet.app, base_url=base)
    finally:
        fleet.close()
        one.close()


@pytest.mark.parametrize("path", PATHS)
def test_the_fleet_answers_the_frame_routes_as_one_database_does(
    apps: tuple[TestClient, TestClient], path: str
) -> None:
    one, fleet = apps
    single, many = one.get(path), fleet.get(path)
    assert many.status_code == single.status_code, path
    assert single.status_code == (404 if path == "/nowhere" else 200), path
    assert many.headers.get("content-type") == single.headers.get("content-type")
    shared = {
        k
        for k in single.headers
        if k.startswith(("x-", "content-security", "referrer", "cross-origin", "permissions"))
        or k in ("cache-control", "strict-transport-security")
    }
    assert "x-content-type-options" in shared, (path, dict(single.headers))
    for header in shared:
        assert many.headers.get(header) == single.headers.get(header), (path, header)


def test_the_fleet_lists_its_databases_and_refuses_an_unknown_one(
    apps: tuple[TestClient, TestClient],
) -> None:
    _, fleet = apps
    unknown = fleet.get("/api/databases/c")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "no database 'c' (databases: a, b)"
    paths = fleet.get("/openapi.json").json()["paths"]
    for name in ("a", "b"):
        assert f"/api/databases/{name}/tables" in paths
        assert f"/api/databases/{name}/apply" in paths
    assert "/api/tables" not in paths, "several databases: no one-database routes"
