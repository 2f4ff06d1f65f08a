"""decide.coverage's runway verdict: the one place "short of runway" is decided.

`partman status` calls a runway short below one period (SHORT_OF_ONE_PERIOD), Django's
partman.W001 and `manage.py partman status` below half the premake (SHORT_OF_HALF_PREMAKE).
Each must keep reporting exactly what it reported before the two were made one: the
reference formulas below are the ones the two front ends used to carry.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.decide.coverage import (
    SHORT_OF_HALF_PREMAKE,
    SHORT_OF_ONE_PERIOD,
    Coverage,
    Runway,
    RunwayVerdict,
    runway_verdict,
    runways,
)
from partman.model.intervals import Interval

DAY = dt.timedelta(days=1)
INTERVALS = ["1 hour", "6 hours", "1 day", "7 days", "1 month", "3 months", "1 year"]


def coverage(
    runway: dt.timedelta | None, *, table: str = "app.events", tenant: str | None = "acme"
) -> Coverage:
    """`runway` None: no partition covers now (inventory() then says 0 seconds)."""
    return Coverage(
        table=table,
        tenant=tenant,
        partitions=3,
        covered_until=None if runway is None else "2024-06-12T00:00:00+00:00",
        runway_seconds=0.0 if runway is None else runway.total_seconds(),
    )


def status_was_short(c: Coverage, period: dt.timedelta, count: int) -> bool:
    """`partman status` before: db/reads.short_runways."""
    return (count > 0 and c.runway_seconds < period.total_seconds()) or (
        count == 0 and c.covered_until is None
    )


def django_was_short(c: Coverage, period: dt.timedelta, count: int) -> bool:
    """Django before: contrib/django/survey.Runway.short."""
    if c.covered_until is None:
        return True
    return dt.timedelta(seconds=c.runway_seconds) < (count * period) / 2


runway_seconds = st.one_of(
    st.none(),
    st.integers(min_value=0, max_value=400 * 86400).map(lambda s: dt.timedelta(seconds=s)),
)


@settings(max_examples=400, deadline=None)
@given(
    runway=runway_seconds,
    interval=st.sampled_from(INTERVALS),
    count=st.integers(min_value=0, max_value=12),
)
def test_each_bar_reports_what_its_front_end_reported(
    runway: dt.timedelta | None, interval: str, count: int
) -> None:
    c = coverage(runway)
    r = Runway(c, Interval.parse(interval), count)
    assert r.short(SHORT_OF_ONE_PERIOD) == status_was_short(c, r.period, count)
    assert r.short(SHORT_OF_HALF_PREMAKE) == django_was_short(c, r.period, count)


@settings(max_examples=200, deadline=None)
@given(
    runway=runway_seconds,
    interval=st.sampled_from(INTERVALS),
    count=st.integers(min_value=0, max_value=12),
)
def test_the_flags_say_what_holds(runway: dt.timedelta | None, interval: str, count: int) -> None:
    period = Interval.parse(interval).approx
    ahead = runway or dt.timedelta()
    c = coverage(runway)
    verdict = runway_verdict(c.covered_until, ahead, period, count)
    assert (RunwayVerdict.UNCOVERED in verdict) == (runway is None)
    assert (RunwayVerdict.UNDER_ONE_PERIOD in verdict) == (count > 0 and ahead < period)
    assert (RunwayVerdict.UNDER_HALF_PREMAKE in verdict) == (ahead < count * period / 2)
    assert (verdict == RunwayVerdict.OK) == (not verdict)


@pytest.mark.parametrize(
    ("runway", "count", "status_short", "django_short"),
    [
        (None, 0, True, True),  # uncovered: both, whatever the policy
        (None, 5, True, True),
        (dt.timedelta(), 0, False, False),  # count 0 asks for the current period only
        (DAY * 0.75, 1, True, False),  # half of one period is less than one period
        (DAY * 0.25, 1, True, True),
        (DAY * 1.5, 4, False, True),  # past one period, short of half of four
        (DAY * 2, 4, False, False),  # exactly half: not short
        (DAY, 1, False, False),  # exactly one period: not short
        (DAY * 10, 10, False, False),
    ],
)
def test_the_two_bars_on_a_daily_table(
    runway: dt.timedelta | None, count: int, status_short: bool, django_short: bool
) -> None:
    r = Runway(coverage(runway), Interval.parse("1 day"), count)
    assert r.short(SHORT_OF_ONE_PERIOD) is status_short
    assert r.short(SHORT_OF_HALF_PREMAKE) is django_short


def test_neither_bar_implies_the_other() -> None:
    """Why the verdict is flags and not levels of one scale."""
    one = Runway(coverage(DAY * 0.75), Interval.parse("1 day"), 1).verdict
    four = Runway(coverage(DAY * 1.5), Interval.parse("1 day"), 4).verdict
    assert one == RunwayVerdict.UNDER_ONE_PERIOD
    assert four == RunwayVerdict.UNDER_HALF_PREMAKE
    uncovered = Runway(coverage(None), Interval.parse("1 day"), 3).verdict
    assert uncovered == (
        RunwayVerdict.UNCOVERED | RunwayVerdict.UNDER_ONE_PERIOD | RunwayVerdict.UNDER_HALF_PREMAKE
    )


def test_runways_take_the_tenants_own_count_else_the_tables() -> None:
    found = [
        coverage(DAY, tenant="acme"),
        coverage(DAY, tenant="globex"),
        coverage(DAY, table="app.logs", tenant=None),
        coverage(DAY, table="app.gone", tenant=None),
    ]
    held = runways(
        found,
        {"app.events": (Interval.parse("1 day"), 4), "app.logs": (Interval.parse("1 hour"), 2)},
        {("app.events", "globex"): 9},
    )
    assert [(r.coverage.table, r.coverage.tenant, r.partition_count) for r in held] == [
        ("app.events", "acme", 4),
        ("app.events", "globex", 9),
        ("app.logs", None, 2),
    ]
    assert held[2].period == dt.timedelta(hours=1)
    assert held[1].premake == 9 * DAY


def test_a_runway_as_json() -> None:
    r = Runway(coverage(DAY), Interval.parse("1 day"), 4)
    assert r.to_dict() == {
        **r.coverage.to_dict(),
        "period_seconds": 86400.0,
        "partition_count": 4,
    }
    assert list(r.to_dict())[-2:] == ["period_seconds", "partition_count"]
