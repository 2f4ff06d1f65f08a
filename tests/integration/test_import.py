"""import_existing_partitions: adoption by catalog bounds, whatever the partitions are called."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

import partman

from seed import NOW, catalog_fingerprint, create_seed_schema, days_covered, partitions, seed_table

DAY = dt.timedelta(days=1)
Conn = psycopg.Connection[Any]


@pytest.fixture
def clock() -> partman.SimulatedClock:
    return partman.SimulatedClock(NOW)


@pytest.fixture
def manager(dsn: str, clock: partman.SimulatedClock) -> Any:
    with partman.Manager(dsn, clock=clock) as m:
        yield m


def _legacy(conn: Conn) -> None:
    """What a team has before partman: odd names, a default, a wide and a spanning partition."""
    create_seed_schema(conn)
    conn.execute(
        """
CREATE TABLE convoy."Weird Name!" PARTITION OF convoy.events
    FOR VALUES FROM ('acme', '2026-03-01') TO ('acme', '2026-03-02');
CREATE TABLE convoy.events_acme_20260302 PARTITION OF convoy.events
    FOR VALUES FROM ('acme', '2026-03-02') TO ('acme', '2026-03-03');
CREATE TABLE convoy.no_date_suffix PARTITION OF convoy.events
    FOR VALUES FROM ('globex', '2026-03-05') TO ('globex', '2026-03-06');
CREATE TABLE convoy.acme_week PARTITION OF convoy.events
    FOR VALUES FROM ('acme', '2026-03-03') TO ('acme', '2026-03-10');
CREATE TABLE convoy.spanning PARTITION OF convoy.events
    FOR VALUES FROM ('m', MINVALUE) TO ('n', MAXVALUE);
CREATE TABLE convoy.events_default PARTITION OF convoy.events DEFAULT;
"""
    )


def test_import_adopts_aligned_partitions_whatever_their_names_and_reports_the_rest(
    conn: Conn, manager: partman.Manager
) -> None:
    _legacy(conn)
    template = seed_table(None)
    report = manager.import_existing_partitions(template)
    assert sorted(f.partition for f in report.imported) == [
        "convoy.Weird Name!",
        "convoy.events_acme_20260302",
        "convoy.no_date_suffix",
    ]
    assert [f.partition for f in report.misaligned] == ["convoy.acme_week"]
    assert sorted(f.partition for f in report.foreign) == [
        "convoy.events_default",
        "convoy.spanning",
    ]
    assert report.tables == [
        "convoy.delivery_attempts",
        "convoy.event_deliveries",
        "convoy.events",
    ]
    assert sorted(report.tenants["convoy.events"]) == ["acme", "globex"]
    assert "imported 3" in str(report)
    again = manager.import_existing_partitions(template)
    assert again.imported == []
    assert len(again.already_owned) == 3


def test_adopted_partitions_are_kept_up_and_retired_by_retention_misaligned_never(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    _legacy(conn)
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) VALUES "
        "('1', 'acme', '2026-03-01 10:00+00'), ('2', 'acme', '2026-03-05 10:00+00'), "
        "('3', 'globex', '2026-03-05 10:00+00')"
    )
    manager.import_existing_partitions(seed_table("events", retention_period="1 hour"))
    report = manager.maintain()
    assert report.ok, str(report)
    dropped = sorted(op.partition_name for op in report.dropped)
    # adopted and expired: dropped; the week-wide misaligned one holds rows and is not ours
    assert dropped == ["Weird Name!", "events_acme_20260302", "no_date_suffix"]
    names = {n for n, _ in partitions(conn, "convoy", "events")}
    assert "acme_week" in names
    assert conn.execute("SELECT id FROM convoy.events ORDER BY id").fetchall() == [("2",)]
    # both found tenants are now covered ahead, gaps around odd partitions filled
    for tenant in ("acme", "globex"):
        covered = days_covered(conn, "convoy", "events", tenant)
        assert covered[-1][1] == NOW.replace(hour=0) + 11 * DAY
    warnings = [n for n in report.plan.notices if n.partition == "convoy.acme_week"]
    assert warnings and "did not create or adopt" in warnings[0].message


def test_import_of_one_tenant_only_adopts_that_tenant(conn: Conn, manager: partman.Manager) -> None:
    _legacy(conn)
    report = manager.import_existing_partitions(seed_table("events", "globex"))
    assert [f.partition for f in report.imported] == ["convoy.no_date_suffix"]
    assert report.tenants == {"convoy.events": ["globex"]}


def test_import_of_a_schema_skips_tables_whose_key_does_not_match(
    conn: Conn, manager: partman.Manager
) -> None:
    _legacy(conn)
    conn.execute("CREATE TABLE convoy.other (at timestamptz) PARTITION BY RANGE (at)")
    report = manager.import_existing_partitions(seed_table(None))  # type: ignore[arg-type]
    assert "convoy.other" in report.skipped_tables
    assert "no column 'project_id'" in report.skipped_tables["convoy.other"]


def test_import_of_a_named_bad_table_raises_and_changes_nothing(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    conn.execute("CREATE TABLE convoy.plain (project_id text, created_at timestamptz)")
    before = catalog_fingerprint(conn)
    with pytest.raises(partman.NotPartitionedError, match=r"convoy\.plain"):
        manager.import_existing_partitions(seed_table("plain"))
    with pytest.raises(partman.TableNotFoundError, match=r"convoy\.nope"):
        manager.import_existing_partitions(seed_table("nope"))
    assert catalog_fingerprint(conn) == before
