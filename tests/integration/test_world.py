"""The pass's one-round-trip read against plain, separate reads of the same database.

`read_world` joins the ownership records to the partitions they are about and keeps parsed
bounds from one pass to the next; neither may change what a pass sees. The reference here is
the simplest reading there is: the three metadata SELECTs on their own (as `partman check`
reads them) and the catalog of the same parents read alone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import psycopg
import pytest

import partman
from partman.db.catalog import BOUNDS
from partman.db.metadata import parse_state, state_queries
from partman.decide import planner
from partman.decide.coverage import inventory
from partman.engine.world import read_catalog, read_world
from partman.model.snapshot import Catalog, State

from seed import NOW, create_seed_schema, seed_table

Conn = psycopg.Connection[Any]
META = "partman_meta"
UTC = zoneinfo.ZoneInfo("UTC")


def reference(conn: Conn) -> tuple[State, Catalog]:
    """State and catalog read the plain way: each metadata SELECT alone, then the catalog."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        state = parse_state(*[conn.execute(q).fetchall() for q in state_queries(META)])
    catalog = read_catalog(conn, [(t.schema, t.name) for t in state.tables])
    return state, catalog


@pytest.fixture
def odd_world(conn: Conn) -> Conn:
    """Partitions partman made, and every way a record and the catalog can disagree."""
    create_seed_schema(conn)
    conn.execute(
        "CREATE TABLE convoy.single (id int, at timestamptz NOT NULL) PARTITION BY RANGE (at)"
    )
    with partman.Manager(conn.info.dsn, clock=partman.SimulatedClock(NOW)) as manager:
        manager.add_managed_table(seed_table("events", "p1", partition_count=3))
        manager.register_tenants(seed_table("events"), ["p2", "o'brien"])
        manager.add_managed_table(seed_table("event_deliveries", "p1", partition_count=2))
        manager.add_managed_table(
            partman.Table(
                name="single", schema="convoy", partition_by="at", partition_interval="1 day"
            )
        )
        assert manager.maintain().ok
    conn.execute(
        """
-- a record whose table was dropped by hand, one detached by hand (mid-retention)
DROP TABLE convoy.events_p1_p20260311;
ALTER TABLE convoy.events DETACH PARTITION convoy.events_p2_p20260311;
UPDATE partman_meta.partitions SET state = 'detaching', action = 'drop'
 WHERE partition_name = 'events_p2_p20260311';
-- a staging table (a pass stopped while moving default rows), and a record of nothing
CREATE TABLE convoy.events_staging (LIKE convoy.events);
INSERT INTO partman_meta.partitions (schema_name, partition_name, parent_schema, parent_name,
    tenant_id, lower_bound, upper_bound, origin, state)
VALUES ('convoy', 'events_staging', 'convoy', 'events', 'p3', '2026-03-20 00:00:00+00',
        '2026-03-21 00:00:00+00', 'created', 'staging'),
       ('convoy', 'never_there', 'convoy', 'events', 'p3', '2026-03-01 00:00:00+00',
        '2026-03-02 00:00:00+00', 'created', 'attached');
-- foreign partitions: by hand, spanning tenants, default; a comment replaced (drift)
CREATE TABLE convoy.events_by_hand PARTITION OF convoy.events
    FOR VALUES FROM ('p9', '2026-03-01') TO ('p9', '2026-03-02');
CREATE TABLE convoy.events_span PARTITION OF convoy.events
    FOR VALUES FROM ('x', '2026-01-01') TO ('y', '2026-01-01');
CREATE TABLE convoy.event_deliveries_default PARTITION OF convoy.event_deliveries DEFAULT;
COMMENT ON TABLE convoy.events_p1_p20260312 IS 'the DBA''s note';
-- a record under one parent of a partition now attached to another, in another schema
CREATE SCHEMA elsewhere;
ALTER TABLE convoy.event_deliveries DETACH PARTITION convoy.event_deliveries_p1_p20260311;
ALTER TABLE convoy.event_deliveries_p1_p20260311 SET SCHEMA elsewhere;
ALTER TABLE convoy.events ATTACH PARTITION elsewhere.event_deliveries_p1_p20260311
    FOR VALUES FROM ('p7', '2026-03-11') TO ('p7', '2026-03-12');
"""
    )
    return conn


def test_the_pass_reads_what_separate_reads_see(odd_world: Conn) -> None:
    state, catalog = read_world(odd_world, META)
    ref_state, ref_catalog = reference(odd_world)
    assert state.tables == ref_state.tables
    assert state.tenants == ref_state.tenants
    assert state.owned == ref_state.owned
    assert catalog == ref_catalog
    for parent in catalog.values():
        names = [p.name for p in parent.partitions]
        assert names == sorted(names)
        default = next((p for p in parent.partitions if p.is_default), None)
        assert parent.default_partition == default
    assert catalog[("convoy", "event_deliveries")].default_partition is not None
    owned = state.owned
    assert not owned[("convoy", "events_p1_p20260311")].exists
    assert not owned[("convoy", "events_p2_p20260311")].attached
    assert owned[("convoy", "events_staging")].exists
    assert not owned[("convoy", "never_there")].exists
    assert ("elsewhere", "event_deliveries_p1_p20260311") not in owned  # moved: a new name
    assert owned[("convoy", "events_p1_p20260313")].attached


def test_plans_and_inventories_are_those_of_separate_reads(odd_world: Conn) -> None:
    state, catalog = read_world(odd_world, META)
    ref_state, ref_catalog = reference(odd_world)
    for days in (0, 1, 40):  # 40 days on: retention (30 days) drops what partman owns
        now = NOW + dt.timedelta(days=days)
        mine = planner.plan(state, catalog, now, UTC)
        theirs = planner.plan(ref_state, ref_catalog, now, UTC)
        assert mine == theirs
        assert inventory(state, catalog, now, UTC) == inventory(ref_state, ref_catalog, now, UTC)
    kinds = {op.kind for op in planner.plan(state, catalog, NOW, UTC).operations}
    assert {"create", "forget", "drop"} <= kinds  # the odd cases above are all planned for


def test_parsed_bounds_are_kept_between_passes_and_forgotten_with_their_partitions(
    odd_world: Conn,
) -> None:
    _, first = read_world(odd_world, META)
    _, second = read_world(odd_world, META)
    assert second == first
    for key, parent in first.items():  # the same objects, not parsed again
        for a, b in zip(parent.partitions, second[key].partitions, strict=True):
            assert a.bound is b.bound and a.bound_text is b.bound_text
    parser = BOUNDS.parser(("varchar", "timestamptz"))
    gone = next(
        p for p in first[("convoy", "events")].partitions if p.name == "events_p1_p20260313"
    )
    assert gone.bound_text in parser.entries
    odd_world.execute("DROP TABLE convoy.events_p1_p20260313")
    _, third = read_world(odd_world, META)
    seen = {p.bound_text for parent in third.values() for p in parent.partitions}
    assert gone.bound_text not in parser.entries  # a full read keeps only what it used
    assert seen >= set(parser.entries)
    read_catalog(odd_world, [("convoy", "events")])  # a partial read never forgets
    assert seen >= set(parser.entries) and len(parser.entries) > 0


def test_an_empty_metadata_schema_reads_as_nothing(conn: Conn) -> None:
    with partman.Manager(conn.info.dsn) as manager:
        manager.init()
    state, catalog = read_world(conn, META)
    assert state == State(tables=(), tenants={}, owned={}) and catalog == {}
