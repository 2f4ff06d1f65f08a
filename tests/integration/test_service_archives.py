"""The service's archive metrics: files, rows and bytes of the Parquet archives retention
exported, per table and state, and when the newest was written; read from partman's manifest
when scraped, so every replica says the same."""

# ruff: noqa: F811 (the fixtures are test_service_api's, imported by name)

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_service_api import AUTH, make_service, serve  # noqa: F401 (fixtures)

import partman

from seed import NOW

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
DAY = dt.timedelta(days=1)


def _samples(client: Any, name: str) -> dict[tuple[str, ...], float]:
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    return {
        tuple(s.labels[k] for k in ("table", "state") if k in s.labels): s.value
        for s in families[name].samples
    }


def test_archives_are_counted_per_table_and_state_once_exported(
    conn: Conn, make_service: Any, serve: Any, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL, note text) "
        "PARTITION BY RANGE (at)"
    )
    clock = partman.SimulatedClock(NOW)
    service = make_service(clock=clock)
    service.manager.add_managed_table(
        partman.Table(
            name="events",
            partition_by="at",
            partition_count=1,
            backfill=True,
            retention_period="2 days",
            retention_action="export",
            export_location=str(tmp_path),
        )
    )
    client = serve(service)
    first = client.post("/api/apply", headers=AUTH).json()
    assert first["operations_failed"] == first["operations_skipped"] == 0, first
    assert _samples(client, "partman_archive_files") == {}  # none exported yet
    conn.execute(
        "INSERT INTO public.events SELECT g, %s - g * interval '1 hour', 'n' FROM "
        "generate_series(0, 40) g",
        (NOW,),
    )
    clock.advance(3 * DAY)
    report = client.post("/api/apply", headers=AUTH).json()
    assert report["operations_failed"] == report["operations_skipped"] == 0, report
    assert report["partitions_retired"] >= 1, report
    files = _samples(client, "partman_archive_files")
    exported = sum(files.values())
    assert exported >= 1 and set(files) == {("public.events", "archived")}
    archives = service.manager.archives("public.events")
    assert exported == len(archives)
    rows = _samples(client, "partman_archive_rows")[("public.events", "archived")]
    assert rows == sum(a.rows for a in archives) > 0
    size = _samples(client, "partman_archive_bytes")[("public.events", "archived")]
    assert size == sum(a.bytes for a in archives) > 0
    [last] = _samples(client, "partman_last_archive_timestamp_seconds").values()
    assert last == max(a.exported_at for a in archives).timestamp()


def test_archives_are_listed_and_restored_through_the_api(
    conn: Conn, make_service: Any, serve: Any, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL) "
        "PARTITION BY RANGE (at)"
    )
    clock = partman.SimulatedClock(NOW)
    service = make_service(clock=clock)
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
    client = serve(service)
    client.post("/api/apply", headers=AUTH)
    conn.execute("INSERT INTO public.events SELECT g, %s FROM generate_series(1, 25) g", (NOW,))
    clock.advance(3 * DAY)
    client.post("/api/apply", headers=AUTH)
    listed = client.get("/api/archives", params={"table": "public.events"}).json()
    assert [(a["partition"], a["rows"], a["state"]) for a in listed] == [
        ("public.events_p20260310", 25, "archived")
    ]
    assert conn.execute("SELECT count(*) FROM public.events").fetchone() == (0,)

    body = {"from": "2026-03-10", "to": "2026-03-11"}
    assert client.post("/api/tables/public.events/restore", json=body).status_code == 401
    restored = client.post("/api/tables/public.events/restore", json=body, headers=AUTH)
    assert restored.status_code == 200, restored.text
    assert [a["partition"] for a in restored.json()["restored"]] == ["public.events_p20260310"]
    assert conn.execute("SELECT count(*) FROM public.events").fetchone() == (25,)
    assert [a["state"] for a in client.get("/api/archives").json()] == ["restored"]
    assert _samples(client, "partman_archive_files") == {("public.events", "restored"): 1.0}
    again = client.post("/api/tables/public.events/restore", json=body, headers=AUTH)
    assert again.status_code == 409 and "no archive" in again.json()["message"], again.text


def test_the_api_shows_a_tables_roll_up_and_export_policy(
    conn: Conn, make_service: Any, serve: Any, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE public.events (id bigint NOT NULL, at timestamptz NOT NULL) "
        "PARTITION BY RANGE (at)"
    )
    service = make_service()
    service.manager.add_managed_table(
        partman.Table(
            name="events",
            partition_by="at",
            retention_period="1 year",
            retention_action="export",
            export_location=str(tmp_path),
            rollup_after="90 days",
            rollup_interval="1 month",
        )
    )
    client = serve(service)
    shown = client.get("/api/tables/public.events").json()
    assert (shown["rollup_after"], shown["rollup_interval"]) == ("90 days", "1 month")
    assert shown["export_location"] == str(tmp_path)
