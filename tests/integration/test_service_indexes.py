"""The service's index routes: which partitions carry each index of a managed table, and a
build through the API that blocks no writer (the same calls as `partman index list|create`)."""

# ruff: noqa: F811 (the fixtures are test_service_api's, imported by name)

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from test_service_api import AUTH, _seed, make_service, serve  # noqa: F401 (fixtures)

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]


def test_an_index_is_built_through_the_api_and_listed_on_every_partition(
    conn: Conn, make_service: Any, serve: Any
) -> None:
    service = make_service()
    _seed(conn, service)
    client = serve(service)
    assert client.post("/api/apply", headers=AUTH).status_code == 200
    partitions = conn.execute(
        "SELECT count(*) FROM pg_partition_tree('convoy.events') WHERE level > 0"
    ).fetchone()
    assert partitions is not None and partitions[0] > 10

    body = {"columns": ["project_id", "created_at", "id"], "name": "events_lookup"}
    assert client.post("/api/tables/convoy.events/indexes", json=body).status_code == 401
    built = client.post("/api/tables/convoy.events/indexes", json=body, headers=AUTH)
    assert built.status_code == 200, built.text
    report = built.json()
    assert report["valid"] is True and report["missing"] == []
    assert report["counts"]["built"] == partitions[0]

    listed = client.get("/api/tables/convoy.events/indexes").json()
    [index] = [i for i in listed if i["index"].endswith("events_lookup")]
    assert index["valid"] is True
    assert conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'convoy.events_lookup'::regclass"
    ).fetchone() == (True,)
    again = client.post("/api/tables/convoy.events/indexes", json=body, headers=AUTH).json()
    assert again["existed"] is True and again["counts"]["built"] == 0


def test_a_bad_index_is_refused_with_its_reason_and_nothing_built(
    conn: Conn, make_service: Any, serve: Any
) -> None:
    service = make_service()
    _seed(conn, service)
    client = serve(service)
    assert client.post("/api/apply", headers=AUTH).status_code == 200
    before = conn.execute("SELECT count(*) FROM pg_index").fetchone()
    refused = client.post(
        "/api/tables/convoy.events/indexes",
        json={"columns": ["no_such_column"]},
        headers=AUTH,
    )
    assert refused.status_code in (409, 422), refused.text
    assert "no_such_column" in refused.json()["message"]
    unique = client.post(
        "/api/tables/convoy.events/indexes", json={"columns": ["id"], "unique": True}, headers=AUTH
    )
    assert unique.status_code in (409, 422) and "'project_id'" in unique.json()["message"]
    assert conn.execute("SELECT count(*) FROM pg_index").fetchone() == before
    assert client.get("/api/tables/nowhere.nothing/indexes").status_code == 404
