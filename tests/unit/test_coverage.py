"""decide.coverage.inventory: what exists now per managed table and tenant.

Its rows list every partition with its owner as partman's records and comments show it; its
coverage says, per table (single-tenant) or registered tenant, how far the gap-free run of
partitions holding now reaches ahead.
"""

from __future__ import annotations

import datetime as dt

from builders import (
    ADOPTED,
    BERLIN,
    CREATED,
    DAY,
    UTC_ZONE,
    catalog,
    default_partition,
    owned,
    parent,
    partition,
    record,
    state,
    utc,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.decide.coverage import Coverage, PartitionRow, inventory
from partman.model.bounds import Special
from partman.model.snapshot import PartitionInfo, TenantRecord

NOW = utc(2024, 6, 10, 15)
SINGLE = record(tenant_column=None)
MULTI = record()


def days(first: int, last: int, *, tenant: str | int | None = None) -> list[PartitionInfo]:
    """One partition a day, for the days `first`..`last` around NOW's (0)."""
    start = utc(2024, 6, 10)
    prefix = "events_" if tenant is None else f"events_{tenant}_"
    return [
        partition(f"{prefix}{k + 10}", start + k * DAY, start + (k + 1) * DAY, tenant=tenant)
        for k in range(first, last + 1)
    ]


def coverage_of(partitions: list[PartitionInfo]) -> Coverage:
    found = inventory(state([SINGLE]), catalog(parent(partitions, tenant=None)), NOW, UTC_ZONE)
    [only] = found.coverage
    return only


def test_runway_reaches_the_end_of_the_last_partition_of_the_run_holding_now() -> None:
    found = coverage_of(days(-1, 2))
    assert found == Coverage("public.events", None, 4, "2024-06-13T00:00:00+00:00", 57 * 3600.0)


def test_a_gap_ends_the_runway_even_with_partitions_after_it() -> None:
    found = coverage_of(days(-1, 1) + days(3, 5))
    assert found.partitions == 6
    assert found.covered_until == "2024-06-12T00:00:00+00:00"
    assert found.runway_seconds == 33 * 3600.0


def test_no_partition_for_now_means_no_runway_however_many_lie_ahead() -> None:
    found = coverage_of(days(1, 5))
    assert (found.partitions, found.covered_until, found.runway_seconds) == (5, None, 0.0)


def test_a_partition_overlapping_the_run_extends_it() -> None:
    wide = partition("wide", utc(2024, 6, 10, 12), utc(2024, 6, 14))
    assert coverage_of([*days(0, 1), wide]).covered_until == "2024-06-14T00:00:00+00:00"


def test_an_unbounded_partition_holding_now_covers_without_end() -> None:
    forever = partition("forever", utc(2024, 6, 1), Special.MAXVALUE)
    assert coverage_of([forever]).covered_until == "unbounded"


def test_coverage_is_one_entry_per_registered_tenant_even_without_partitions() -> None:
    tenants = [TenantRecord(1, "acme", None, None), TenantRecord(1, "globex", None, None)]
    the_parent = parent(days(0, 2, tenant="acme") + days(0, 0, tenant="stranger"))
    found = inventory(state([MULTI], tenants=tenants), catalog(the_parent), NOW, UTC_ZONE)
    assert [(c.tenant, c.partitions, c.covered_until) for c in found.coverage] == [
        ("acme", 3, "2024-06-13T00:00:00+00:00"),
        ("globex", 0, None),
    ]
    assert found.coverage[1].runway_seconds == 0.0
    # an unregistered tenant's partitions are listed, but it has no coverage entry
    assert {r.tenant for r in found.partitions} == {"acme", "stranger"}


def test_registered_tenant_ids_are_read_as_values_of_the_tenant_column() -> None:
    table = record()
    the_parent = parent(days(0, 1, tenant=42), tenant="int8")
    mine = state([table], tenants=[TenantRecord(1, "42", None, None)])
    [found] = inventory(mine, catalog(the_parent), NOW, UTC_ZONE).coverage
    assert (found.tenant, found.partitions) == ("42", 2)


def test_rows_say_who_made_each_partition() -> None:
    created, adopted, drifted, foreign = days(0, 3, tenant="acme")
    created = created._replace(comment=CREATED)
    adopted = adopted._replace(comment=ADOPTED)
    drifted = drifted._replace(comment="the DBA's note")
    records = [
        owned(created, MULTI, tenant="acme"),
        owned(adopted, MULTI, tenant="acme", origin="adopted"),
        owned(drifted, MULTI, tenant="acme"),
    ]
    the_parent = parent([created, adopted, drifted, foreign._replace(comment=CREATED)])
    found = inventory(state([MULTI], owned=records), catalog(the_parent), NOW, UTC_ZONE)
    assert [(r.partition, r.owner) for r in found.partitions] == [
        ("public.events_acme_10", "created"),
        ("public.events_acme_11", "adopted"),
        ("public.events_acme_12", "foreign"),  # its comment no longer says partman's
        ("public.events_acme_13", "foreign"),  # a copied comment is not a record
    ]


def test_rows_show_ranges_estimates_and_the_default_partition() -> None:
    [today] = days(0, 0, tenant="acme")
    today = today._replace(estimated_rows=1200)
    the_parent = parent([today, default_partition()])
    found = inventory(state([MULTI]), catalog(the_parent), NOW, UTC_ZONE)
    assert found.partitions == [
        PartitionRow("public.events", None, "public.events_default", "", "", "foreign", None, True),
        PartitionRow(
            "public.events",
            "acme",
            "public.events_acme_10",
            "2024-06-10T00:00:00+00:00",
            "2024-06-11T00:00:00+00:00",
            "foreign",
            1200,
        ),
    ]
    assert found.partitions[1].to_dict() == {
        "table": "public.events",
        "tenant": "acme",
        "partition": "public.events_acme_10",
        "from": "2024-06-10T00:00:00+00:00",
        "to": "2024-06-11T00:00:00+00:00",
        "owner": "foreign",
        "estimated_rows": 1200,
        "is_default": False,
    }


def test_a_partition_spanning_tenants_is_listed_once_with_no_tenant() -> None:
    spans = partition("spans", utc(2024, 6, 1), utc(2024, 7, 1), tenant="a", upper_tenant="m")
    found = inventory(state([MULTI]), catalog(parent([spans])), NOW, UTC_ZONE)
    assert [(r.partition, r.tenant) for r in found.partitions] == [("public.spans", None)]


def test_unbounded_ends_are_shown_as_unbounded() -> None:
    old = partition("old", Special.MINVALUE, utc(2024, 1, 1), tenant="acme")
    [row] = inventory(state([MULTI]), catalog(parent([old])), NOW, UTC_ZONE).partitions
    assert (row.lower, row.upper, row.tenant) == ("unbounded", "2024-01-01T00:00:00+00:00", None)


def test_date_and_timestamp_columns_are_shown_and_measured_on_the_zones_wall_clock() -> None:
    # 23:30 in Berlin on June 10 is 21:30 UTC: the wall clock's day is still June 10
    now = utc(2024, 6, 10, 21, 30)
    today = partition("d", dt.date(2024, 6, 10), dt.date(2024, 6, 11))
    [found] = inventory(
        state([SINGLE]), catalog(parent([today], tenant=None, time="date")), now, BERLIN
    ).coverage
    assert (found.covered_until, found.runway_seconds) == ("2024-06-11", 30 * 60.0)
    wall = partition("t", dt.datetime(2024, 6, 10), dt.datetime(2024, 6, 11))
    [found] = inventory(
        state([SINGLE]), catalog(parent([wall], tenant=None, time="timestamp")), now, BERLIN
    ).coverage
    assert found.covered_until == "2024-06-11T00:00:00"


def test_a_table_the_catalog_no_longer_matches_is_left_out_and_the_others_reported() -> None:
    gone = record(table_id=2, name="gone", tenant_column=None)
    plain = record(table_id=3, name="plain", tenant_column=None)
    parents = catalog(
        parent(days(0, 0), tenant=None), parent(name="plain", tenant=None, relkind="r")
    )
    found = inventory(state([SINGLE, gone, plain]), parents, NOW, UTC_ZONE)
    assert [c.table for c in found.coverage] == ["public.events"]
    assert {r.table for r in found.partitions} == {"public.events"}


@settings(max_examples=150, deadline=None)
@given(
    present=st.sets(st.integers(-5, 10)),
    offset=st.integers(0, 24 * 3600 - 1).map(lambda s: dt.timedelta(seconds=s)),
)
def test_runway_is_the_unbroken_run_of_days_from_now(
    present: set[int], offset: dt.timedelta
) -> None:
    start = utc(2024, 6, 10)
    now = start + offset
    partitions = [p for k in sorted(present) for p in days(k, k)]
    found = inventory(
        state([SINGLE]), catalog(parent(partitions, tenant=None)), now, UTC_ZONE
    ).coverage[0]
    assert found.partitions == len(present)
    if 0 not in present:
        assert (found.covered_until, found.runway_seconds) == (None, 0.0)
        return
    end = 1
    while end in present:
        end += 1
    assert found.covered_until == (start + end * DAY).isoformat()
    assert found.runway_seconds == (start + end * DAY - now).total_seconds() > 0
