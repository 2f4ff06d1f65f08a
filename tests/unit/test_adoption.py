"""decide.adoption.classify: which existing partitions an import takes, judged by their bounds.

A partition is imported when its bounds are exactly one period of the table's interval for one
tenant, whatever it is called; what partman already owns is left as it is; everything else is
reported and left alone. Periods are checked here against the calendar (local midnights, first
days of months, whole hours), not against `intervals.py`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from builders import (
    ADOPTED,
    BERLIN,
    CREATED,
    DAY,
    HOUR,
    NEW_YORK,
    UTC,
    UTC_ZONE,
    default_partition,
    owned,
    parent,
    partition,
    record,
    state,
    unreadable_partition,
    utc,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.decide.adoption import Adoption, Found, classify
from partman.model.bounds import Special
from partman.model.snapshot import ParentInfo, State

EMPTY = state()


def run(
    the_parent: ParentInfo,
    the_state: State = EMPTY,
    *,
    interval: str = "1 day",
    zone: ZoneInfo = UTC_ZONE,
    only_tenant: str | int | None = None,
) -> Adoption:
    key = the_parent.key
    assert key is not None
    return classify(
        the_parent,
        the_state,
        tenant_key=key[0] if len(key) == 2 else None,
        time_key=key[-1],
        shape=record(interval=interval, tenant_column="tenant" if len(key) == 2 else None),
        zone=zone,
        only_tenant=only_tenant,
    )


def names(found: list[Found]) -> list[str]:
    return sorted(f.partition for f in found)


def test_a_partition_of_exactly_one_period_is_imported_whatever_its_name() -> None:
    p = partition("legacy_stuff", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme")
    result = run(parent([p]))
    assert result.adopt == [(p, "acme")]
    assert result.tenants == ["acme"]
    assert result.found.imported == [
        Found("public.events", "public.legacy_stuff", "acme", p.bound_text)
    ]
    assert not (result.found.misaligned or result.found.foreign or result.found.already_owned)


def test_a_partman_like_name_with_bounds_of_two_periods_is_misaligned_and_left_alone() -> None:
    p = partition("events_acme_p20240301", utc(2024, 3, 1), utc(2024, 3, 3), tenant="acme")
    result = run(parent([p]))
    assert result.adopt == []
    [found] = result.found.misaligned
    assert found.partition == "public.events_acme_p20240301"
    assert found.reason == "not exactly one 1 day period; left alone, never dropped"


def test_a_partition_starting_off_the_period_boundary_is_misaligned() -> None:
    p = partition("shifted", utc(2024, 3, 1, 6), utc(2024, 3, 2, 6), tenant="acme")
    assert names(run(parent([p])).found.misaligned) == ["public.shifted"]


def test_a_tenant_with_only_misaligned_partitions_is_still_found() -> None:
    p = partition("shifted", utc(2024, 3, 1, 6), utc(2024, 3, 2, 6), tenant="acme")
    assert run(parent([p])).tenants == ["acme"]


def test_what_partman_owns_and_still_marks_is_already_owned_not_imported_again() -> None:
    table = record()
    p = partition("events_acme_a", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme", comment=CREATED)
    q = partition("events_acme_b", utc(2024, 3, 2), utc(2024, 3, 3), tenant="acme", comment=ADOPTED)
    mine = state([table], owned=[owned(p, table, tenant="acme"), owned(q, table, origin="adopted")])
    result = run(parent([p, q]), mine)
    assert result.adopt == []
    assert names(result.found.already_owned) == ["public.events_acme_a", "public.events_acme_b"]
    assert result.tenants == ["acme"]


def test_an_owned_partition_whose_comment_was_replaced_is_imported_to_restore_the_mark() -> None:
    table = record()
    p = partition("drifted", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme", comment="DBA note")
    result = run(parent([p]), state([table], owned=[owned(p, table, tenant="acme")]))
    assert result.adopt == [(p, "acme")]
    assert result.found.already_owned == []


def test_a_copied_partman_comment_without_a_record_is_not_ownership() -> None:
    p = partition("copied", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme", comment=CREATED)
    result = run(parent([p]))
    assert result.adopt == [(p, "acme")]
    assert result.found.already_owned == []


def test_partitions_partman_never_touches_are_foreign_with_the_reason() -> None:
    pieces = [
        default_partition(),
        partition("sub", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme", is_partitioned=True),
        partition("pending", utc(2024, 3, 2), utc(2024, 3, 3), tenant="acme", detach_pending=True),
        unreadable_partition("odd_shape"),
        partition("spans", utc(2024, 3, 1), utc(2024, 3, 2), tenant="a", upper_tenant="m"),
        partition("forever_ago", Special.MINVALUE, utc(2024, 1, 1), tenant="acme"),
    ]
    result = run(parent(pieces))
    reasons = {f.partition: f.reason for f in result.found.foreign}
    assert reasons == {
        "public.events_default": "the default partition",
        "public.sub": (
            "itself partitioned (sub-partitions are not managed, but for sub_partition_by)"
        ),
        "public.pending": "a DETACH CONCURRENTLY is pending on it",
        "public.odd_shape": "a bound shape partman does not read",
        "public.spans": "spans several tenants or is unbounded",
        "public.forever_ago": "spans several tenants or is unbounded",
    }
    assert all(f.tenant is None for f in result.found.foreign)
    assert result.adopt == []
    assert result.found.imported == result.found.misaligned == []


def test_a_tenant_with_only_foreign_partitions_is_not_a_tenant_found() -> None:
    p = partition("forever_ago", Special.MINVALUE, utc(2024, 1, 1), tenant="acme")
    assert run(parent([p])).tenants == []


def test_only_tenant_limits_the_import_to_that_tenant() -> None:
    a = partition("a", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme")
    g = partition("g", utc(2024, 3, 1), utc(2024, 3, 2), tenant="globex")
    g_odd = partition("g_odd", utc(2024, 3, 1, 3), utc(2024, 3, 2), tenant="globex")
    result = run(parent([a, g, g_odd]), only_tenant="globex")
    assert result.adopt == [(g, "globex")]
    assert result.tenants == ["globex"]
    assert names(result.found.misaligned) == ["public.g_odd"]


def test_integer_tenants_are_reported_as_their_text() -> None:
    p = partition("p", utc(2024, 3, 1), utc(2024, 3, 2), tenant=42)
    result = run(parent([p], tenant="int8"))
    assert result.adopt == [(p, 42)]
    assert result.found.imported[0].tenant == "42"


def test_a_single_tenant_table_imports_with_no_tenant_and_lists_no_tenants() -> None:
    p = partition("p", utc(2024, 3, 1), utc(2024, 3, 2))
    result = run(parent([p], tenant=None))
    assert result.adopt == [(p, None)]
    assert result.tenants == []
    assert result.found.imported[0].tenant is None


def test_a_local_day_across_a_dst_change_is_one_period_in_that_zone() -> None:
    # 2024-03-31 in Berlin is 23 hours long: from 22:00 UTC the day before to 22:00 UTC
    short_day = partition("d", utc(2024, 3, 30, 23), utc(2024, 3, 31, 22), tenant="acme")
    utc_day = partition("u", utc(2024, 4, 1), utc(2024, 4, 2), tenant="acme")
    result = run(parent([short_day, utc_day]), zone=BERLIN)
    assert result.adopt == [(short_day, "acme")]
    assert names(result.found.misaligned) == ["public.u"]


def test_timestamp_columns_are_wall_clock_readings_so_midnight_aligns_in_any_zone() -> None:
    p = partition("p", dt.datetime(2024, 3, 31), dt.datetime(2024, 4, 1), tenant="acme")
    assert run(parent([p], time="timestamp"), zone=BERLIN).adopt == [(p, "acme")]


def test_date_columns_align_on_whole_days_and_months() -> None:
    day = partition("day", dt.date(2024, 2, 28), dt.date(2024, 2, 29), tenant="acme")
    february = partition("feb", dt.date(2024, 2, 1), dt.date(2024, 3, 1), tenant="acme")
    assert run(parent([day, february], time="date")).adopt == [(day, "acme")]
    monthly = run(parent([day, february], time="date"), interval="1 month")
    assert monthly.adopt == [(february, "acme")]
    assert names(monthly.found.misaligned) == ["public.day"]


def test_the_report_says_what_was_taken_and_why_the_rest_was_left_alone() -> None:
    a = partition("a", utc(2024, 3, 1), utc(2024, 3, 2), tenant="acme")
    odd = partition("odd", utc(2024, 3, 2), utc(2024, 3, 4), tenant="acme")
    result = run(parent([a, odd, default_partition()]))
    result.found.tables.append("public.events")
    assert str(result.found).splitlines() == [
        "imported 1, already owned 0, misaligned 1 (left alone), foreign 1 (left alone); "
        "tables: public.events",
        f"  misaligned public.odd {odd.bound_text}: "
        "not exactly one 1 day period; left alone, never dropped",
        "  foreign public.events_default DEFAULT: the default partition",
    ]
    as_dict = result.found.to_dict()
    assert as_dict["imported"] == [
        {
            "table": "public.events",
            "partition": "public.a",
            "tenant": "acme",
            "bound": a.bound_text,
            "reason": "",
        }
    ]
    assert [f["partition"] for f in as_dict["foreign"]] == ["public.events_default"]


# -- properties ------------------------------------------------------------------------------

INTERVALS = ["1 hour", "1 day", "1 month"]
ZONES = [UTC_ZONE, BERLIN, NEW_YORK]
TENANTS = ["acme", "globex"]


def one_period(interval: str, zone: ZoneInfo, lower: dt.datetime, upper: dt.datetime) -> bool:
    """The calendar's answer: is [lower, upper) exactly one period in `zone`?"""
    if interval == "1 hour":  # the zones used are whole hours off UTC
        return lower.minute == lower.second == lower.microsecond == 0 and upper - lower == HOUR
    lo, hi = lower.astimezone(zone), upper.astimezone(zone)
    if lo.time() != dt.time() or hi.time() != dt.time():
        return False
    if interval == "1 day":
        return hi.date() == lo.date() + DAY
    after = dt.date(lo.year + lo.month // 12, lo.month % 12 + 1, 1)
    return lo.day == 1 and hi.date() == after


@st.composite
def partitions_near_periods(
    draw: st.DrawFn, interval: str, zone: ZoneInfo
) -> tuple[str, dt.datetime, dt.datetime]:
    """(tenant, lower, upper): often one period exactly, often almost (shifted, too long)."""
    day = draw(st.dates(dt.date(2020, 1, 1), dt.date(2030, 12, 1)))
    if interval == "1 month":
        day = day.replace(day=1)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    if interval == "1 hour":
        start += draw(st.integers(0, 23)) * HOUR
    start += draw(st.sampled_from([dt.timedelta(0)] * 3 + [dt.timedelta(minutes=30), HOUR]))
    if interval == "1 month":
        nxt = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        natural = dt.datetime(nxt.year, nxt.month, 1, tzinfo=zone).astimezone(UTC) - start
    elif interval == "1 day":
        natural = dt.datetime.combine(day + DAY, dt.time(), zone).astimezone(UTC) - start
    else:
        natural = HOUR
    length = draw(st.sampled_from([natural, natural, natural, 2 * natural, DAY, 23 * HOUR]))
    return draw(st.sampled_from(TENANTS)), start, start + length


@st.composite
def imports(draw: st.DrawFn) -> tuple[str, ZoneInfo, ParentInfo]:
    interval = draw(st.sampled_from(INTERVALS))
    zone = draw(st.sampled_from(ZONES))
    shapes = draw(st.lists(partitions_near_periods(interval, zone), max_size=8))
    pieces = [
        partition(f"p{i}", lower, upper, tenant=tenant)
        for i, (tenant, lower, upper) in enumerate(shapes)
    ]
    if draw(st.booleans()):
        pieces.append(default_partition())
    return interval, zone, parent(pieces)


@settings(max_examples=150, deadline=None)
@given(imports())
def test_imported_iff_the_calendar_says_one_period(case: tuple[str, ZoneInfo, ParentInfo]) -> None:
    interval, zone, the_parent = case
    result = run(the_parent, interval=interval, zone=zone)
    taken = {p.name for p, _ in result.adopt}
    for p in the_parent.partitions:
        if p.is_default:
            continue
        assert p.bound is not None
        lower, upper = p.bound.lower[-1], p.bound.upper[-1]
        assert isinstance(lower, dt.datetime) and isinstance(upper, dt.datetime)
        assert (p.name in taken) == one_period(interval, zone, lower, upper), p
    for p, tenant in result.adopt:
        assert p.bound is not None and p.bound.lower[0] == tenant


@settings(max_examples=100, deadline=None)
@given(imports())
def test_every_partition_is_reported_exactly_once(case: tuple[str, ZoneInfo, ParentInfo]) -> None:
    interval, zone, the_parent = case
    found = run(the_parent, interval=interval, zone=zone).found
    reported = [
        f.partition
        for group in (found.imported, found.already_owned, found.misaligned, found.foreign)
        for f in group
    ]
    assert sorted(reported) == sorted(p.qualified_name for p in the_parent.partitions)
