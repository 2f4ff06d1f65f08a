"""The service's archive metrics: files, rows and bytes of the Parquet archives retention
exported, per table and state, and when the newest was written; read from partman's manifest
when scraped, so every replica says the same."""

# ruff: noqa: F811 (the fixtures are test_service_api's, imported by name)

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from test_service_api import AUTH, make_service, serve  # noqa: F401 (fixtures)

import partman

from seed import NOW

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
