"""Intervals must tile time in every zone: no gap, no overlap, whatever DST or the date line do."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.errors import IntervalError
from partman.model.intervals import Interval, Retention, Unit, parse_retention

UTC = dt.UTC
H = dt.timedelta(hours=1)
US = dt.timedelta(microseconds=1)

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST
    "Asia/Kolkata",  # +05:30
    "America/Sao_Paulo",  # DST began at midnight: some days start at 01:00
    "Pacific/Apia",  # skipped 2011-12-30 entirely
    "America/Havana",  # DST begins at midnight
]
# (zone, period date): a day the zone skipped, and the day before it, which lost a microsecond
# so that the skipped day still has a non-empty period.
SKIPPED_DAYS = {("Pacific/Apia", dt.date(2011, 12, 29)), ("Pacific/Apia", dt.date(2011, 12, 30))}

zones = st.sampled_from(ZONES).map(ZoneInfo)
all_zones = st.sampled_from(sorted(zoneinfo.available_timezones())).map(ZoneInfo)
instants = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)
intervals = st.one_of(
    st.builds(Interval, st.integers(1, 48), st.just(Unit.HOUR)),
    st.builds(Interval, st.integers(1, 10), st.just(Unit.DAY)),
    st.builds(Interval, st.integers(1, 5), st.just(Unit.WEEK)),
    st.builds(Interval, st.integers(1, 36), st.just(Unit.MONTH)),
)

EXAMPLES = "use e.g. '15 minutes', '1 hour', '6 hours', '1 day', 'daily', '1 week', 'monthly'"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "unit"),
    [
        ("1 hour", 1, Unit.HOUR),
        ("6 hours", 6, Unit.HOUR),
        ("hourly", 1, Unit.HOUR),
        ("  6   Hours ", 6, Unit.HOUR),
        ("1h", 1, Unit.HOUR),
        ("12 hr", 12, Unit.HOUR),
        ("3hrs", 3, Unit.HOUR),
        ("24h", 1, Unit.DAY),
        ("24 hours", 1, Unit.DAY),
        ("48h", 2, Unit.DAY),
        ("36h", 36, Unit.HOUR),
        ("168h", 1, Unit.WEEK),
        ("1 day", 1, Unit.DAY),
        ("DAILY", 1, Unit.DAY),
        ("1d", 1, Unit.DAY),
        ("2 days", 2, Unit.DAY),
        ("14 days", 2, Unit.WEEK),
        ("7d", 1, Unit.WEEK),
        ("weekly", 1, Unit.WEEK),
        ("1 week", 1, Unit.WEEK),
        ("2w", 2, Unit.WEEK),
        ("1 wk", 1, Unit.WEEK),
        ("monthly", 1, Unit.MONTH),
        ("1 month", 1, Unit.MONTH),
        ("1 mon", 1, Unit.MONTH),
        ("2 mons", 2, Unit.MONTH),
        ("3 months", 3, Unit.MONTH),
        ("quarterly", 3, Unit.MONTH),
        ("1 quarter", 3, Unit.MONTH),
        ("2 quarters", 6, Unit.MONTH),
        ("yearly", 12, Unit.MONTH),
        ("Annually", 12, Unit.MONTH),
        ("1 year", 12, Unit.MONTH),
        ("1y", 12, Unit.MONTH),
        ("2 yrs", 24, Unit.MONTH),
        ("12 months", 12, Unit.MONTH),
        ("100 years", 1200, Unit.MONTH),
        ("P1D", 1, Unit.DAY),
        ("PT6H", 6, Unit.HOUR),
        ("pt24h", 1, Unit.DAY),
        ("P1M", 1, Unit.MONTH),
        ("P1Y", 12, Unit.MONTH),
        ("P1Y6M", 18, Unit.MONTH),
        ("P1W", 1, Unit.WEEK),
        ("P1DT12H", 36, Unit.HOUR),
        ("PT60M", 1, Unit.HOUR),
    ],
)
def test_parse_text(text: str, count: int, unit: Unit) -> None:
    assert Interval.parse(text) == Interval(count, unit)
    assert Interval.parse(text).count == count
    assert Interval.parse(text).unit is unit


@pytest.mark.parametrize(
    "text",
    [
        "3 fortnights",
        "",
        "   ",
        "day",
        "1.5 days",
        "1m",
        "P",
        "PT",
        "P1DT",
        "P1M1D",
        "1 day 2 hours",
        "one day",
        "1 days ago",
        "101 years",
        "1201 months",
        "36526 days",
        "99999999999999999999999 hours",
        "١ day",  # a non-ASCII digit
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(IntervalError) as caught:
        Interval.parse(text)
    message = str(caught.value)
    assert repr(text) in message
    assert EXAMPLES in message


@pytest.mark.parametrize("text", ["0 days", "0h", "-1 day", "-3 months", "P0D", "PT0H"])
def test_parse_rejects_non_positive(text: str) -> None:
    with pytest.raises(IntervalError, match="must be positive") as caught:
        Interval.parse(text)
    assert repr(text) in str(caught.value)


def test_parse_message_is_actionable() -> None:
    with pytest.raises(IntervalError) as caught:
        Interval.parse("3 fortnights")
    assert str(caught.value) == (
        "invalid partition interval '3 fortnights': use e.g. '15 minutes', '1 hour', '6 hours', "
        "'1 day', 'daily', '1 week', 'monthly', '1 month', '3 months', 'quarterly', '1 year'"
    )
    with pytest.raises(IntervalError, match="'m' could mean minutes or months"):
        Interval.parse("1m")


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (dt.timedelta(hours=1), Interval(1, Unit.HOUR)),
        (dt.timedelta(hours=6), Interval(6, Unit.HOUR)),
        (dt.timedelta(hours=24), Interval(1, Unit.DAY)),
        (dt.timedelta(days=2), Interval(2, Unit.DAY)),
        (dt.timedelta(days=7), Interval(1, Unit.WEEK)),
        (dt.timedelta(weeks=3), Interval(3, Unit.WEEK)),
        (dt.timedelta(days=1, hours=1), Interval(25, Unit.HOUR)),
    ],
)
def test_parse_timedelta(delta: dt.timedelta, expected: Interval) -> None:
    assert Interval.parse(delta) == expected


def test_parse_timedelta_rejects() -> None:
    with pytest.raises(IntervalError, match=r"^partition interval 0:00:00.500000 is not a whole"):
        Interval.parse(dt.timedelta(milliseconds=500))
    with pytest.raises(IntervalError, match="not a whole number of seconds"):
        Interval.parse(dt.timedelta(hours=1, microseconds=1))
    with pytest.raises(IntervalError, match=r"^partition interval must be positive, got 0:00:00"):
        Interval.parse(dt.timedelta(0))
    with pytest.raises(IntervalError, match=r"must be positive, got -1 day, 0:00:00"):
        Interval.parse(dt.timedelta(days=-1))
    with pytest.raises(IntervalError, match="longer than 100 years"):
        Interval.parse(dt.timedelta(days=40000))


@pytest.mark.parametrize("value", [None, 5, 1.5, b"1 day", ["1 day"]])
def test_parse_rejects_other_types(value: object) -> None:
    with pytest.raises(IntervalError, match=repr(value).replace("[", r"\[")):
        Interval.parse(value)  # type: ignore[arg-type]


def test_parse_interval_is_identity() -> None:
    interval = Interval(3, Unit.MONTH)
    assert Interval.parse(interval) is interval


def test_constructor_normalizes_and_validates() -> None:
    assert Interval(24, Unit.HOUR) == Interval(1, Unit.DAY)
    assert Interval(14, Unit.DAY) == Interval(2, Unit.WEEK)
    assert Interval(336, Unit.HOUR) == Interval(2, Unit.WEEK)
    assert Interval(12, Unit.MONTH).unit is Unit.MONTH
    assert Interval(1200, Unit.MONTH).count == 1200
    for count, unit in [(0, Unit.DAY), (-1, Unit.HOUR), (1201, Unit.MONTH), (5218, Unit.WEEK)]:
        with pytest.raises(IntervalError):
            Interval(count, unit)
    with pytest.raises(IntervalError, match="positive integer, got True"):
        Interval(True, Unit.DAY)
    with pytest.raises(IntervalError, match=r"positive integer, got 1\.0"):
        Interval(1.0, Unit.DAY)  # type: ignore[arg-type]
    with pytest.raises(IntervalError, match="'day' is not a partman Unit"):
        Interval(1, "day")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("interval", "text", "pg", "approx"),
    [
        (Interval(1, Unit.HOUR), "1 hour", "1 hour", H),
        (Interval(6, Unit.HOUR), "6 hours", "6 hours", 6 * H),
        (Interval(1, Unit.DAY), "1 day", "1 day", 24 * H),
        (Interval(2, Unit.DAY), "2 days", "2 days", 48 * H),
        (Interval(1, Unit.WEEK), "1 week", "1 week", dt.timedelta(days=7)),
        (Interval(1, Unit.MONTH), "1 month", "1 month", dt.timedelta(days=30)),
        (Interval(3, Unit.MONTH), "3 months", "3 months", dt.timedelta(days=90)),
        (Interval(12, Unit.MONTH), "1 year", "1 year", dt.timedelta(days=360)),
        (Interval(18, Unit.MONTH), "18 months", "18 months", dt.timedelta(days=540)),
        (Interval(24, Unit.MONTH), "2 years", "2 years", dt.timedelta(days=720)),
    ],
)
def test_str_postgres_approx(interval: Interval, text: str, pg: str, approx: dt.timedelta) -> None:
    assert str(interval) == text
    assert interval.postgres() == pg
    assert interval.approx == approx


@given(intervals)
def test_str_round_trips(interval: Interval) -> None:
    assert Interval.parse(str(interval)) == interval
    assert Interval.parse(interval.postgres()) == interval


def test_approx_orders_units() -> None:
    ordered = [Interval.parse(t) for t in ["1h", "6h", "1d", "1w", "1 month", "quarterly", "1y"]]
    assert sorted(ordered, key=lambda i: i.approx) == ordered


# -- alignment: examples --------------------------------------------------------------------


def test_utc_alignment() -> None:
    tz = ZoneInfo("UTC")
    t = utc(2024, 5, 15, 13, 45, 7)
    assert Interval.parse("1 day").floor(t, tz) == utc(2024, 5, 15)
    assert Interval.parse("1 hour").floor(t, tz) == utc(2024, 5, 15, 13)
    assert Interval.parse("6 hours").floor(t, tz) == utc(2024, 5, 15, 12)
    assert Interval.parse("1 week").floor(t, tz) == utc(2024, 5, 13)  # a Monday
    assert Interval.parse("monthly").floor(t, tz) == utc(2024, 5, 1)
    assert Interval.parse("quarterly").floor(t, tz) == utc(2024, 4, 1)
    assert Interval.parse("1 year").floor(t, tz) == utc(2024, 1, 1)
    assert Interval.parse("2 years").floor(t, tz) == utc(2024, 1, 1)
    assert Interval.parse("2 years").floor(utc(2023, 12, 31), tz) == utc(2022, 1, 1)
    assert Interval.parse("1 day").index(utc(2000, 1, 3), tz) == 0
    assert Interval.parse("1 day").index(utc(2000, 1, 2, 23), tz) == -1
    assert Interval.parse("monthly").start(0, tz) == utc(2000, 1, 1)
    assert Interval.parse("monthly").start(-1, tz) == utc(1999, 12, 1)
    assert Interval.parse("1 week").start(0, tz).tzinfo is UTC


def test_start_is_utc_and_index_accepts_any_tzinfo() -> None:
    tz = ZoneInfo("Europe/Berlin")
    daily = Interval.parse("1 day")
    t = utc(2024, 7, 1, 22, 30)  # 00:30 on July 2 in Berlin
    k = daily.index(t, tz)
    assert daily.start(k, tz) == utc(2024, 7, 1, 22)
    assert daily.start(k, tz).tzinfo is UTC
    for other in [tz, ZoneInfo("Asia/Tokyo"), dt.timezone(dt.timedelta(hours=-3, minutes=-30))]:
        assert daily.index(t.astimezone(other), tz) == k


def test_naive_datetimes_are_programming_errors() -> None:
    tz = ZoneInfo("UTC")
    daily = Interval.parse("daily")
    naive = dt.datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        daily.index(naive, tz)
    with pytest.raises(ValueError, match="naive"):
        daily.floor(naive, tz)
    with pytest.raises(ValueError, match="naive"):
        daily.is_aligned(naive, utc(2024, 1, 2), tz)
    with pytest.raises(ValueError, match="naive"):
        daily.is_aligned(utc(2024, 1, 1), dt.datetime(2024, 1, 2), tz)
    with pytest.raises(ValueError, match="naive"):
        Retention(daily).cutoff(naive, tz)
    assert not isinstance(ValueError("x"), IntervalError)


def test_berlin_days_across_dst() -> None:
    tz = ZoneInfo("Europe/Berlin")
    daily = Interval.parse("1 day")
    spring = daily.index(utc(2024, 3, 31, 12), tz)
    assert daily.bounds(spring, tz) == (utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))
    autumn = daily.index(utc(2024, 10, 27, 12), tz)
    assert daily.bounds(autumn, tz) == (utc(2024, 10, 26, 22), utc(2024, 10, 27, 23))


def test_berlin_hours_are_absolute() -> None:
    tz = ZoneInfo("Europe/Berlin")
    hourly = Interval.parse("1 hour")
    assert hourly.start(0, tz) == utc(2000, 1, 2, 23)  # local midnight, 2000-01-03
    k = hourly.index(utc(2024, 10, 27, 0, 30), tz)  # 02:30 CEST, first of two
    assert hourly.bounds(k, tz) == (utc(2024, 10, 27, 0), utc(2024, 10, 27, 1))
    assert hourly.bounds(k + 1, tz) == (utc(2024, 10, 27, 1), utc(2024, 10, 27, 2))
    six = Interval.parse("6 hours")
    winter = six.floor(utc(2024, 1, 10, 12), tz).astimezone(tz)
    summer = six.floor(utc(2024, 7, 10, 12), tz).astimezone(tz)
    assert winter.hour % 6 == 0
    assert summer.hour % 6 == 1  # shifted by the DST hour: accepted, absolute time wins
    assert winter.minute == summer.minute == 0


def test_kolkata_hours_are_local_whole_hours() -> None:
    tz = ZoneInfo("Asia/Kolkata")
    floor = Interval.parse("1 hour").floor(utc(2024, 1, 1, 10, 10), tz)
    assert floor == utc(2024, 1, 1, 9, 30)
    assert floor.astimezone(tz).minute == 0


def test_midnight_in_dst_gap_starts_at_transition() -> None:
    tz = ZoneInfo("America/Sao_Paulo")
    daily = Interval.parse("1 day")
    k = daily.index(utc(2018, 11, 4, 12), tz)
    start, end = daily.bounds(k, tz)
    assert start == utc(2018, 11, 4, 3)  # 01:00 -02, the first instant of that day
    assert start.astimezone(tz).replace(tzinfo=None) == dt.datetime(2018, 11, 4, 1)
    assert end == utc(2018, 11, 5, 2)
    assert end - start == 23 * H
    assert daily.bounds(k - 1, tz) == (utc(2018, 11, 3, 3), start)
    assert daily.index(start, tz) == k
    assert daily.index(start - US, tz) == k - 1
    month = Interval.parse("1 month")
    assert month.floor(utc(2018, 11, 20), tz) == utc(2018, 11, 1, 3)  # Nov 1, 00:00 -03


def test_skipped_day_gets_a_non_empty_period() -> None:
    tz = ZoneInfo("Pacific/Apia")
    daily = Interval.parse("1 day")
    k = daily.index(utc(2011, 12, 29, 12), tz)  # Dec 29, 02:00 -10
    starts = [daily.start(j, tz) for j in range(k, k + 3)]
    assert starts == [
        utc(2011, 12, 29, 10),  # Dec 29 00:00 -10
        utc(2011, 12, 30, 10) - US,  # Dec 30 never happened: a one-microsecond period
        utc(2011, 12, 30, 10),  # Dec 31 00:00 +14
    ]
    for j, start in enumerate(starts, k):
        assert daily.index(start, tz) == j
        assert daily.is_aligned(*daily.bounds(j, tz), tz) == j
    # Longer periods need no microsecond: Dec 29 + Dec 30 (skipped) is one 2-day period.
    two_days = Interval.parse("2 days")
    assert two_days.bounds(two_days.index(starts[0], tz), tz) == (starts[0], starts[2])


def test_is_aligned() -> None:
    tz = ZoneInfo("America/New_York")
    daily = Interval.parse("1 day")
    lower, upper = daily.bounds(9000, tz)
    assert daily.is_aligned(lower, upper, tz) == 9000
    assert daily.is_aligned(lower.astimezone(tz), upper.astimezone(tz), tz) == 9000
    assert daily.is_aligned(lower, daily.start(9002, tz), tz) is None
    assert daily.is_aligned(lower + H, upper + H, tz) is None
    assert daily.is_aligned(lower, upper - US, tz) is None
    assert daily.is_aligned(upper, lower, tz) is None
    assert Interval.parse("1 week").is_aligned(lower, upper, tz) is None


# -- alignment: properties ------------------------------------------------------------------


@settings(max_examples=300)
@given(intervals, zones, instants)
def test_index_brackets_instant(interval: Interval, tz: ZoneInfo, t: dt.datetime) -> None:
    k = interval.index(t, tz)
    lower, upper = interval.bounds(k, tz)
    assert lower <= t < upper
    assert interval.floor(t, tz) == lower
    assert interval.index(lower, tz) == k
    assert interval.index(upper, tz) == k + 1
    assert interval.index(upper - US, tz) == k


@settings(max_examples=300)
@given(intervals, zones, instants, st.integers(-3, 3))
def test_starts_increase_and_tile(
    interval: Interval, tz: ZoneInfo, t: dt.datetime, offset: int
) -> None:
    k = interval.index(t, tz) + offset
    a, b, c = (interval.start(j, tz) for j in (k, k + 1, k + 2))
    assert a < b < c
    assert interval.bounds(k, tz)[1] == interval.bounds(k + 1, tz)[0]
    for j, start in ((k, a), (k + 1, b), (k + 2, c)):
        assert start.tzinfo is UTC
        assert interval.index(start, tz) == j
    assert interval.is_aligned(a, b, tz) == k
    assert interval.is_aligned(a, c, tz) is None
    assert interval.is_aligned(a + US, b, tz) is None
    assert interval.is_aligned(a, b + US, tz) is None
    assert interval.is_aligned(a, b - US, tz) is None


@settings(max_examples=300)
@given(st.integers(1, 3).map(lambda n: Interval(n, Unit.DAY)), zones, instants)
def test_days_start_at_local_midnight(interval: Interval, tz: ZoneInfo, t: dt.datetime) -> None:
    k = interval.index(t, tz)
    start, end = interval.bounds(k, tz)
    day = (start.astimezone(tz) + US).date()  # the day a skipped-day period stands for
    expected = dt.date(2000, 1, 3) + dt.timedelta(days=k * interval.count)
    if (tz.key, expected) in SKIPPED_DAYS and interval.count == 1:
        return
    midnight = dt.datetime.combine(expected, dt.time())
    wall = start.astimezone(tz).replace(tzinfo=None)
    before = (start - US).astimezone(tz).replace(tzinfo=None)
    # Local midnight, or (midnight in a DST gap) the first instant of that day.
    assert wall == midnight or (before < midnight < wall and wall.date() == expected)
    assert day == expected
    if interval.count == 1:
        assert end - start in {23 * H, 23.5 * H, 24 * H, 24.5 * H, 25 * H}


@settings(max_examples=200)
@given(st.integers(1, 24).map(lambda n: Interval(n, Unit.MONTH)), zones, instants)
def test_months_start_on_the_first(interval: Interval, tz: ZoneInfo, t: dt.datetime) -> None:
    start = interval.floor(t, tz)
    wall = start.astimezone(tz)
    assert wall.day == 1
    assert (wall.year * 12 + wall.month - 1 - 2000 * 12) % interval.count == 0
    assert wall.time() == dt.time() or (start - US).astimezone(tz).day != 1


@settings(max_examples=150)
@given(st.integers(1, 2).map(lambda n: Interval(n, Unit.WEEK)), zones, instants)
def test_weeks_start_on_monday(interval: Interval, tz: ZoneInfo, t: dt.datetime) -> None:
    assert interval.floor(t, tz).astimezone(tz).weekday() == 0


@settings(max_examples=300)
@given(intervals, all_zones, st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1)))
def test_every_zone_tiles(interval: Interval, tz: ZoneInfo, naive: dt.datetime) -> None:
    t = naive.replace(tzinfo=UTC)
    k = interval.index(t, tz)
    lower, upper = interval.bounds(k, tz)
    assert lower <= t < upper
    assert interval.index(lower, tz) == k
    assert interval.start(k - 1, tz) < lower


def test_every_zone_across_its_odd_days() -> None:
    daily = Interval.parse("1 day")
    for key, day in [
        ("Pacific/Kiritimati", dt.date(1994, 12, 31)),  # skipped
        ("Pacific/Kwajalein", dt.date(1993, 8, 21)),  # skipped
        ("Pacific/Kwajalein", dt.date(1969, 9, 30)),  # repeated: a 47-hour day
        ("Pacific/Fakaofo", dt.date(2011, 12, 30)),  # skipped
        ("America/Havana", dt.date(2012, 4, 1)),  # DST at midnight
        ("Asia/Beirut", dt.date(2023, 10, 29)),  # fall back at midnight
    ]:
        tz = ZoneInfo(key)
        k = (day - dt.date(2000, 1, 3)).days
        starts = [daily.start(j, tz) for j in range(k - 3, k + 4)]
        assert starts == sorted(set(starts)), key
        for j, start in enumerate(starts, k - 3):
            assert daily.index(start, tz) == j, key


# -- retention ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period", "shown"),
    [
        ("30 days", Interval(30, Unit.DAY), "30 days"),
        ("90d", Interval(90, Unit.DAY), "90 days"),
        ("14 days", Interval(2, Unit.WEEK), "2 weeks"),
        ("3 months", Interval(3, Unit.MONTH), "3 months"),
        ("1 year", Interval(12, Unit.MONTH), "1 year"),
        ("quarterly", Interval(3, Unit.MONTH), "3 months"),
        ("720h", dt.timedelta(hours=720), "720 hours"),
        ("1 hour", dt.timedelta(hours=1), "1 hour"),
        ("90 minutes", dt.timedelta(minutes=90), "90 minutes"),
        ("PT36H", dt.timedelta(hours=36), "36 hours"),
        ("P1DT12H", dt.timedelta(hours=36), "36 hours"),
    ],
)
def test_parse_retention(text: str, period: Interval | dt.timedelta, shown: str) -> None:
    retention = parse_retention(text)
    assert retention == Retention(period)
    assert str(retention) == shown
    assert parse_retention(shown) == retention


def test_parse_retention_other_forms() -> None:
    assert parse_retention(None) is None
    assert parse_retention(dt.timedelta(minutes=90)) == Retention(dt.timedelta(minutes=90))
    assert str(Retention(dt.timedelta(minutes=90))) == "90 minutes"
    assert str(Retention(dt.timedelta(seconds=5))) == "5 seconds"
    # whole days are calendar days, as for partition intervals (a DST day is 23 or 25 hours)
    assert parse_retention(dt.timedelta(days=30)) == Retention(Interval(30, Unit.DAY))
    assert str(parse_retention(dt.timedelta(days=30))) == "30 days"
    assert str(parse_retention(dt.timedelta(hours=36))) == "36 hours"
    assert parse_retention(Interval(2, Unit.MONTH)) == Retention(Interval(2, Unit.MONTH))
    assert parse_retention(Interval(6, Unit.HOUR)) == Retention(dt.timedelta(hours=6))
    retention = Retention(Interval(1, Unit.DAY))
    assert parse_retention(retention) is retention


@pytest.mark.parametrize(
    "value", ["0 days", "-1 day", dt.timedelta(0), dt.timedelta(seconds=-1), "PT0S"]
)
def test_retention_must_be_positive(value: str | dt.timedelta) -> None:
    with pytest.raises(IntervalError, match="must be positive") as caught:
        parse_retention(value)
    message = str(caught.value)
    assert "use None to keep partitions forever" in message or "or None to keep" in message
    assert (repr(value) if isinstance(value, str) else str(value)) in message


@pytest.mark.parametrize("value", ["forever", "3 fortnights", "1m", "P1M1D", "101 years", 30])
def test_retention_rejects(value: object) -> None:
    with pytest.raises(IntervalError, match="None to keep partitions forever") as caught:
        parse_retention(value)  # type: ignore[arg-type]
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("now", "text", "expected"),
    [
        (dt.datetime(2024, 3, 31, 12), "1 month", dt.datetime(2024, 2, 29, 12)),
        (dt.datetime(2023, 3, 31, 12), "1 month", dt.datetime(2023, 2, 28, 12)),
        (dt.datetime(2024, 5, 31), "3 months", dt.datetime(2024, 2, 29)),
        (dt.datetime(2024, 2, 29, 8), "1 year", dt.datetime(2023, 2, 28, 8)),
        (dt.datetime(2024, 1, 15), "2 months", dt.datetime(2023, 11, 15)),
        (dt.datetime(2024, 4, 15, 12), "30 days", dt.datetime(2024, 3, 16, 12)),  # across DST
        (dt.datetime(2024, 4, 15, 12), "2 weeks", dt.datetime(2024, 4, 1, 12)),
    ],
)
def test_cutoff_on_the_local_calendar(now: dt.datetime, text: str, expected: dt.datetime) -> None:
    tz = ZoneInfo("Europe/Berlin")
    retention = parse_retention(text)
    assert retention is not None
    cutoff = retention.cutoff(now.replace(tzinfo=tz), tz)
    assert cutoff.tzinfo is UTC
    assert cutoff == expected.replace(tzinfo=tz)


def test_cutoff_hours_are_absolute_and_whole_days_are_calendar_days() -> None:
    tz = ZoneInfo("Europe/Berlin")
    now = utc(2024, 4, 15, 10)
    values: list[str | dt.timedelta] = ["720h", dt.timedelta(hours=720, minutes=1)]
    for value in values:
        retention = parse_retention(value)
        assert retention is not None
        assert now - retention.cutoff(now, tz) >= dt.timedelta(days=30)
    for days in ("30 days", dt.timedelta(days=30)):
        calendar = parse_retention(days)
        assert calendar is not None
        assert now - calendar.cutoff(now, tz) == dt.timedelta(days=30) - H  # one DST hour shorter
    assert Retention(dt.timedelta(minutes=90)).cutoff(now, tz) == utc(2024, 4, 15, 8, 30)


def test_cutoff_into_a_dst_gap_or_fold_is_the_earliest_instant() -> None:
    tz = ZoneInfo("Europe/Berlin")
    day = parse_retention("1 day")
    assert day is not None
    # 02:30 on 2024-03-31 does not exist in Berlin; the first instant after it is 03:00 CEST.
    assert day.cutoff(dt.datetime(2024, 4, 1, 2, 30, tzinfo=tz), tz) == utc(2024, 3, 31, 1)
    # 02:30 on 2024-10-27 happens twice; the earlier cutoff keeps more.
    assert day.cutoff(dt.datetime(2024, 10, 28, 2, 30, tzinfo=tz), tz) == utc(2024, 10, 27, 0, 30)


@settings(max_examples=200)
@given(st.integers(1, 36), zones, instants)
def test_month_cutoff_clamps_the_day(months: int, tz: ZoneInfo, now: dt.datetime) -> None:
    cutoff = Retention(Interval(months, Unit.MONTH)).cutoff(now, tz)
    assert cutoff < now
    wall_now = now.astimezone(tz)
    wall = cutoff.astimezone(tz)
    assert (wall_now.year * 12 + wall_now.month) - (wall.year * 12 + wall.month) == months
    assert wall.day == wall_now.day or (wall.day < wall_now.day and (wall + 24 * H).day <= 2)


@pytest.mark.parametrize(
    ("text", "shown", "seconds"),
    [
        ("15 minutes", "15 minutes", 900),
        ("30 seconds", "30 seconds", 30),
        ("90 min", "90 minutes", 5400),
        ("PT30M", "30 minutes", 1800),
        ("PT1M30S", "90 seconds", 90),
        ("3600 seconds", "1 hour", 3600),
    ],
)
def test_sub_hour_intervals_are_periods_of_elapsed_time_that_round_trip(
    text: str, shown: str, seconds: int
) -> None:
    interval = Interval.parse(text)
    assert str(interval) == shown
    assert Interval.parse(str(interval)) == interval
    assert interval.approx == dt.timedelta(seconds=seconds)
    assert Interval.parse(dt.timedelta(seconds=seconds)) == interval


def test_quarter_hour_periods_tile_from_the_local_anchor_across_dst() -> None:
    interval = Interval.parse("15 minutes")
    tz = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2024, 3, 31, 0, 0, tzinfo=dt.UTC)  # DST starts at 01:00 UTC
    k = interval.index(start, tz)
    for i in range(12):
        lower, upper = interval.bounds(k + i, tz)
        assert upper - lower == dt.timedelta(minutes=15)
        assert interval.index(lower, tz) == k + i


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (90, "1 min 30 s"),
        (120, "2 min"),
        (600, "10 min"),
        (659, "10 min"),
        (3700, "1 h 1 min"),
        (90000, "1 d 1 h"),
    ],
)
def test_a_runway_under_ten_minutes_is_said_in_seconds_too(seconds: int, shown: str) -> None:
    from partman.model.text import human_duration

    assert human_duration(seconds) == shown
