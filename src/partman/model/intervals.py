"""Partition intervals and retention periods, aligned on the calendar of one IANA time zone.

A partition set is only safe if its periods tile time: consecutive partitions share a bound,
so that every row has exactly one home and no `CREATE TABLE ... PARTITION OF` ever overlaps
another. Everything here is therefore built from one function, `Interval.start(k)`, which is
strictly increasing in `k`; `index`, `floor`, `bounds` and `is_aligned` are derived from it, so
they can never disagree with it, whatever the zone's DST rules, skipped or repeated days.

Periods are numbered from a fixed epoch (Monday 2000-01-03, or January 2000 for months), never
from "now", so that every manager process, today or next year, computes the same bounds.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..errors import IntervalError

__all__ = ["Interval", "Retention", "Unit", "parse_retention"]

UTC = dt.UTC

_EPOCH_DATE = dt.date(2000, 1, 3)  # a Monday, so weeks start on Monday like date_trunc('week')
_EPOCH_YEAR = 2000
_HOUR = dt.timedelta(hours=1)
_SECOND = dt.timedelta(seconds=1)
_MICROSECOND = dt.timedelta(microseconds=1)
# Wider than any UTC offset tzdb has ever used (Asia/Manila's LMT was -15:56), so the earliest
# instant showing a given wall time always lies inside the search window.
_OFFSET_WINDOW = dt.timedelta(hours=18)
_MAX_DAYS = 36525  # 100 years: anything longer is a typo, not a partitioning scheme
_MAX_MONTHS = 1200

_INTERVAL_EXAMPLES = (
    "'15 minutes', '1 hour', '6 hours', '1 day', 'daily', '1 week', 'monthly', '1 month', "
    "'3 months', 'quarterly', '1 year'"
)
KEEP_FOREVER = "or None to keep partitions forever"
"""How a retention message says to keep partitions forever, in Python."""


def _retention_examples(forever: str = KEEP_FOREVER) -> str:
    return f"'30 days', '90d', '720h', '12 weeks', '3 months', '1 year', {forever}"


class Unit(enum.Enum):
    """The unit a period is counted in; quarters and years are months, so they share month math.
    SECOND is for periods shorter than an hour ("15 minutes", "30 seconds"); a whole number of
    hours is always HOUR or longer."""

    SECOND = "second"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_UNIT_SECONDS = {Unit.SECOND: 1, Unit.HOUR: 3600, Unit.DAY: 86400, Unit.WEEK: 86400 * 7}
_FIXED = (Unit.SECOND, Unit.HOUR)  # elapsed time from one anchor, not calendar days


# --------------------------------------------------------------------------------------------
# Time zone arithmetic. Instants are handled as naive UTC datetimes internally (cheap to compare
# and add); wall times as naive local datetimes.


def _offset(tz: ZoneInfo, utc: dt.datetime) -> dt.timedelta:
    offset = utc.replace(tzinfo=UTC).astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset at an instant
    return offset


def _wall(tz: ZoneInfo, utc: dt.datetime) -> dt.datetime:
    """The local wall time at a (naive UTC) instant."""
    return utc + _offset(tz, utc)


def _transition(tz: ZoneInfo, lo: dt.datetime, hi: dt.datetime) -> dt.datetime:
    """The instant in (lo, hi] at which the offset changes; lo and hi are whole seconds.

    tzdb transitions fall on whole seconds, so bisecting to one second finds them exactly.
    """
    before = _offset(tz, lo)
    while hi - lo > _SECOND:
        mid = lo + dt.timedelta(seconds=int((hi - lo).total_seconds()) // 2)
        if _offset(tz, mid) == before:
            lo = mid
        else:
            hi = mid
    return hi


def _first_at_or_after(tz: ZoneInfo, wall: dt.datetime) -> dt.datetime:
    """The earliest instant (naive UTC) whose local wall time is `wall` or later.

    This is what "the start of a local day" must mean for partitions to tile time: an ordinary
    midnight maps to itself; a midnight that falls in a DST gap (America/Sao_Paulo, Havana) maps
    to the transition, the first instant of that day that exists; a repeated midnight maps to
    its first occurrence. zoneinfo's fold=0 alone gets gaps wrong when the gap does not start
    exactly at the wall time, so the zone's offsets around `wall` are scanned instead.
    """
    lo = (wall - _OFFSET_WINDOW).replace(minute=0, second=0, microsecond=0)
    hi = wall + _OFFSET_WINDOW
    # Segments of constant offset, found by hourly sampling (tzdb never has two transitions
    # within an hour of each other; in 1900..2200 they are at least four days apart).
    segments: list[tuple[dt.datetime, dt.timedelta]] = [(lo, _offset(tz, lo))]
    sample = lo + _HOUR
    previous = lo
    while sample <= hi + _HOUR:
        offset = _offset(tz, sample)
        if offset != segments[-1][1]:
            segments.append((_transition(tz, previous, sample), offset))
        previous = sample
        sample += _HOUR
    for i, (begin, offset) in enumerate(segments):
        candidate = max(begin, wall - offset)
        if i + 1 == len(segments) or candidate < segments[i + 1][0]:
            return candidate
    raise AssertionError("unreachable: the last segment is open-ended")  # pragma: no cover


@functools.lru_cache(maxsize=16384)
def _day_start(tz: ZoneInfo, day: dt.date) -> dt.datetime:
    """First instant (naive UTC) of the local calendar day; cached since every index asks it."""
    return _first_at_or_after(tz, dt.datetime(day.year, day.month, day.day))


def _add_months(wall: dt.datetime, months: int) -> dt.datetime:
    """Calendar month arithmetic; the day is clamped, so Mar 31 - 1 month is Feb 28/29."""
    total = wall.year * 12 + wall.month - 1 + months
    year, month0 = divmod(total, 12)
    month = month0 + 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return wall.replace(year=year, month=month, day=min(wall.day, last_day))


def _naive_utc(instant: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(instant, dt.datetime):
        raise TypeError(f"{what} must be a datetime, got {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"{what} {instant!r} is naive; partition bounds are instants, pass an aware "
            "datetime (e.g. with tzinfo=datetime.timezone.utc)"
        )
    return instant.astimezone(UTC).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------
# Parsing. Text is read into PostgreSQL's own three parts (months, days, seconds), so that each
# accepted spelling has one meaning; Interval and Retention then decide what they accept.

_UNIT_WORDS: dict[str, tuple[int, int, int]] = {}
for _words, _parts in (
    (("s", "sec", "secs", "second", "seconds"), (0, 0, 1)),
    (("min", "mins", "minute", "minutes"), (0, 0, 60)),
    (("h", "hr", "hrs", "hour", "hours"), (0, 0, 3600)),
    (("d", "day", "days"), (0, 1, 0)),
    (("w", "wk", "wks", "week", "weeks"), (0, 7, 0)),
    (("mon", "mons", "month", "months"), (1, 0, 0)),
    (("quarter", "quarters"), (3, 0, 0)),
    (("y", "yr", "yrs", "year", "years"), (12, 0, 0)),
):
    for _word in _words:
        _UNIT_WORDS[_word] = _parts

_ADVERBS: dict[str, tuple[int, int, int]] = {
    "hourly": (0, 0, 3600),
    "daily": (0, 1, 0),
    "weekly": (0, 7, 0),
    "monthly": (1, 0, 0),
    "quarterly": (3, 0, 0),
    "yearly": (12, 0, 0),
    "annually": (12, 0, 0),
}

_COUNT_UNIT = re.compile(r"([+-]?[0-9]+) ?([a-z]+)", re.ASCII)
_ISO = re.compile(
    r"p(?:([0-9]+)y)?(?:([0-9]+)m)?(?:([0-9]+)w)?(?:([0-9]+)d)?"
    r"(?:t(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?)?",
    re.ASCII,
)


class _Bad(Exception):
    """Raised inside parsing; the caller turns it into an IntervalError worded for its setting."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotPositive(_Bad):
    pass


def _parse_text(text: str) -> tuple[int, int, int]:
    """(months, days, seconds) for one accepted spelling; raises _Bad otherwise."""
    norm = " ".join(text.lower().split())
    if norm in _ADVERBS:
        return _ADVERBS[norm]
    match = _COUNT_UNIT.fullmatch(norm)
    if match:
        count = int(match.group(1))
        unit = match.group(2)
        if unit not in _UNIT_WORDS:
            if unit == "m":
                raise _Bad("'m' could mean minutes or months; write 'min' or 'mon'")
            raise _Bad()
        if count <= 0:
            raise _NotPositive()
        months, days, seconds = _UNIT_WORDS[unit]
        return months * count, days * count, seconds * count
    match = _ISO.fullmatch(norm.replace(" ", ""))
    if match and any(match.groups()) and not norm.endswith("t"):
        y, mo, w, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        parts = (y * 12 + mo, w * 7 + d, h * 3600 + mi * 60 + s)
        if parts == (0, 0, 0):
            raise _NotPositive()
        return parts
    raise _Bad()


def _interval_from_parts(months: int, days: int, seconds: int) -> Interval:
    """Raises _Bad for parts no single calendar unit can express."""
    if months:
        if days or seconds:
            raise _Bad("months cannot be combined with days or hours in one period")
        return Interval(months, Unit.MONTH)
    if seconds:
        return Interval(days * 86400 + seconds, Unit.SECOND)
    return Interval(days, Unit.DAY)


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """The length of one partition, as a count of calendar units.

    Construction normalizes (24 HOUR is 1 DAY, 14 DAY is 2 WEEK), so that equal periods compare
    equal and `str()` always round-trips through `parse`. Quarters and years are kept as 3 and
    12 MONTH.
    """

    count: int
    unit: Unit

    def __post_init__(self) -> None:
        count, unit = self.count, self.unit
        if not isinstance(unit, Unit):
            raise IntervalError(
                f"partition interval unit {unit!r} is not a partman Unit "
                "(Unit.SECOND, Unit.HOUR, Unit.DAY, Unit.WEEK or Unit.MONTH)"
            )
        if isinstance(count, bool) or not isinstance(count, int):
            raise IntervalError(
                f"partition interval count must be a positive integer, got {count!r}"
            )
        if count < 1:
            raise IntervalError(
                f"partition interval must be positive, got {count} {unit.value}(s); use e.g. "
                f"{_INTERVAL_EXAMPLES}"
            )
        if unit is Unit.MONTH:
            if count > _MAX_MONTHS:
                raise IntervalError(
                    f"partition interval of {count} months is longer than 100 years; use e.g. "
                    f"{_INTERVAL_EXAMPLES}"
                )
            return
        seconds = count * _UNIT_SECONDS[unit]
        if seconds > _MAX_DAYS * 86400:
            raise IntervalError(
                f"partition interval of {count} {unit.value}s is longer than 100 years; use "
                f"e.g. {_INTERVAL_EXAMPLES}"
            )
        for bigger in (Unit.WEEK, Unit.DAY, Unit.HOUR, Unit.SECOND):
            if seconds % _UNIT_SECONDS[bigger] == 0:
                count, unit = seconds // _UNIT_SECONDS[bigger], bigger
                break
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "unit", unit)

    @classmethod
    def parse(cls, value: str | dt.timedelta | Interval) -> Interval:
        """Read a user's spelling of a partition interval.

        A timedelta is taken as the absolute length it is, but a whole number of days becomes
        calendar days (a "1 day" partition should start at local midnight, not drift by an
        hour across DST).
        """
        if isinstance(value, Interval):
            return value
        if isinstance(value, dt.timedelta):
            if value <= dt.timedelta(0):
                raise IntervalError(
                    f"partition interval must be positive, got {value}; use e.g. "
                    "timedelta(hours=6), timedelta(days=1) or timedelta(weeks=1)"
                )
            if value % _SECOND:
                raise IntervalError(
                    f"partition interval {value} is not a whole number of seconds; use e.g. "
                    "timedelta(minutes=15), timedelta(hours=6) or timedelta(days=1)"
                )
            if value > dt.timedelta(days=_MAX_DAYS):
                raise IntervalError(
                    f"partition interval {value} is longer than 100 years; use e.g. "
                    "timedelta(hours=6), timedelta(days=1) or timedelta(weeks=1)"
                )
            return cls(value // _SECOND, Unit.SECOND)
        if not isinstance(value, str):
            raise IntervalError(
                f"partition interval must be a string, timedelta or Interval, got {value!r}; "
                f"use e.g. {_INTERVAL_EXAMPLES}"
            )
        try:
            parts = _parse_text(value)
            if parts[0] > _MAX_MONTHS or parts[1] > _MAX_DAYS or parts[2] > _MAX_DAYS * 86400:
                raise _Bad("it is longer than 100 years")
            return _interval_from_parts(*parts)
        except _NotPositive:
            raise IntervalError(
                f"partition interval {value!r} must be positive; use e.g. {_INTERVAL_EXAMPLES}"
            ) from None
        except _Bad as bad:
            why = f" ({bad.reason})" if bad.reason else ""
            raise IntervalError(
                f"invalid partition interval {value!r}{why}: use e.g. {_INTERVAL_EXAMPLES}"
            ) from None
        except IntervalError as error:  # e.g. more than 100 years once summed
            raise IntervalError(f"invalid partition interval {value!r}: {error}") from None

    # -- alignment -----------------------------------------------------------------------

    def _period_date(self, index: int) -> dt.date:
        """The local calendar date period `index` nominally starts on (calendar units only)."""
        if self.unit is Unit.MONTH:
            year, month0 = divmod(index * self.count, 12)
            return dt.date(_EPOCH_YEAR + year, month0 + 1, 1)
        days = self.count * (7 if self.unit is Unit.WEEK else 1)
        return _EPOCH_DATE + dt.timedelta(days=index * days)

    def _date_index(self, day: dt.date) -> int:
        """The period whose nominal date range contains `day` (calendar units only)."""
        if self.unit is Unit.MONTH:
            return ((day.year - _EPOCH_YEAR) * 12 + day.month - 1) // self.count
        days = self.count * (7 if self.unit is Unit.WEEK else 1)
        return (day - _EPOCH_DATE).days // days

    def _hour_anchor(self, tz: ZoneInfo) -> dt.datetime:
        return _day_start(tz, _EPOCH_DATE)

    @property
    def fixed(self) -> bool:
        """Counted in elapsed time (hours, minutes, seconds) rather than calendar days."""
        return self.unit in _FIXED

    def _step(self) -> dt.timedelta:
        return self.count * _UNIT_SECONDS[self.unit] * _SECOND

    def _start(self, index: int, tz: ZoneInfo) -> dt.datetime:
        if self.unit in _FIXED:
            return self._hour_anchor(tz) + index * self._step()
        day = self._period_date(index)
        first = _day_start(tz, day)
        reached = _wall(tz, first).date()
        # A day with no instant at all (Pacific/Apia skipped 2011-12-30) would give an empty
        # period sharing its start with the next one. PostgreSQL rejects empty ranges and
        # index() must stay a function of start(), so each such period gets one microsecond,
        # taken from the end of the period before.
        skipped = 0
        while reached >= self._period_date(index + skipped + 1):
            skipped += 1
        return first - skipped * _MICROSECOND

    def start(self, index: int, tz: ZoneInfo) -> dt.datetime:
        """The first instant of period `index` (an aware UTC datetime)."""
        return self._start(index, tz).replace(tzinfo=UTC)

    def index(self, instant: dt.datetime, tz: ZoneInfo) -> int:
        """The number of the period holding `instant`: the largest k with start(k) <= instant."""
        utc = _naive_utc(instant, "instant")
        if self.unit in _FIXED:
            return (utc - self._hour_anchor(tz)) // self._step()
        k = self._date_index(_wall(tz, utc).date())
        while self._start(k, tz) > utc:
            k -= 1
        while self._start(k + 1, tz) <= utc:
            k += 1
        return k

    def floor(self, instant: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """The start of the period holding `instant`."""
        return self.start(self.index(instant, tz), tz)

    def bounds(self, index: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """FROM and TO of partition `index`; TO is the next partition's FROM, so none overlap."""
        return self.start(index, tz), self.start(index + 1, tz)

    def is_aligned(self, lower: dt.datetime, upper: dt.datetime, tz: ZoneInfo) -> int | None:
        """The period number if [lower, upper) is exactly one period, else None.

        Lets adoption tell partman's own partitions from foreign ones by their bounds alone.
        """
        _naive_utc(upper, "upper")
        k = self.index(lower, tz)
        if self.start(k, tz) == lower and self.start(k + 1, tz) == upper:
            return k
        return None

    # -- text ----------------------------------------------------------------------------

    def __str__(self) -> str:
        count, word = self.count, self.unit.value
        if self.unit is Unit.MONTH and count % 12 == 0:
            count, word = count // 12, "year"
        elif self.unit is Unit.SECOND and count % 60 == 0:
            count, word = count // 60, "minute"
        return f"{count} {word}" if count == 1 else f"{count} {word}s"

    def postgres(self) -> str:
        """An interval literal PostgreSQL reads as this period (for SQL such as date_bin)."""
        return str(self)

    @property
    def approx(self) -> dt.timedelta:
        """Nominal length (a month is 30 days): only for ordering and estimates, never bounds."""
        if self.unit is Unit.MONTH:
            return dt.timedelta(days=30 * self.count)
        return self._step()


# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """How long partitions are kept.

    `period` is an Interval of days, weeks or months (subtracted on the local calendar, so
    "1 month" before Mar 31 is Feb 28/29), or a timedelta, subtracted as absolute time (hours,
    and any timedelta the user gave, mean elapsed time, not wall-clock time).
    """

    period: Interval | dt.timedelta

    def __post_init__(self) -> None:
        period = self.period
        if isinstance(period, Interval):
            if period.unit in _FIXED:
                object.__setattr__(self, "period", period.approx)
            return
        _check_period(period, _retention_examples())

    def cutoff(self, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """`now` minus the period, as an aware UTC datetime; older partitions may be dropped."""
        utc = _naive_utc(now, "now")
        period = self.period
        if isinstance(period, dt.timedelta):
            return (utc - period).replace(tzinfo=UTC)
        wall = _wall(tz, utc)
        if period.unit is Unit.MONTH:
            wall = _add_months(wall, -period.count)
        else:
            wall -= period.approx
        # A wall time in a DST gap or fold resolves to its earliest instant: an earlier cutoff
        # keeps more, never less, than asked.
        return _first_at_or_after(tz, wall).replace(tzinfo=UTC)

    def __str__(self) -> str:
        period = self.period
        if isinstance(period, Interval):
            return str(period)
        for size, word in ((3600, "hour"), (60, "minute"), (1, "second")):
            if period % dt.timedelta(seconds=size) == dt.timedelta(0):
                count = period // dt.timedelta(seconds=size)
                return f"{count} {word}" if count == 1 else f"{count} {word}s"
        count = period // _MICROSECOND
        return f"{count} microseconds"


def _check_period(period: object, examples: str) -> None:
    """A retention period given as elapsed time: positive, at most 100 years."""
    if not isinstance(period, dt.timedelta):
        raise IntervalError(
            f"retention period must be a string, timedelta or Interval, got {period!r}; "
            f"use e.g. {examples}"
        )
    if period <= dt.timedelta(0):
        raise IntervalError(f"retention period must be positive, got {period}; use e.g. {examples}")
    if period > dt.timedelta(days=_MAX_DAYS):
        raise IntervalError(
            f"retention period {period} is longer than 100 years; use e.g. {examples}"
        )


_DAY = dt.timedelta(days=1)


def parse_retention(
    value: str | dt.timedelta | Interval | Retention | None,
    *,
    forever: str = KEEP_FOREVER,
) -> Retention | None:
    """Read a user's retention period; None means keep partitions forever.

    Strings take the interval spellings; days, weeks, months and years count on the calendar,
    hours (and minutes, seconds) count elapsed time, as does any timedelta. `forever` ends the
    examples of a message: how the user, where they wrote the value, keeps partitions forever.
    """
    examples = _retention_examples(forever)
    if value is None:
        return None
    if isinstance(value, Retention):
        return value
    if (
        isinstance(value, dt.timedelta)
        and value > dt.timedelta(0)
        and value % _DAY == dt.timedelta(0)
    ):
        # whole days mean calendar days, as they do for partition intervals: "30 days" keeps
        # 30 local days in a DST zone, not 720 hours
        return Retention(Interval(value // _DAY, Unit.DAY))
    if isinstance(value, Interval | dt.timedelta):
        return Retention(value)
    if not isinstance(value, str):
        raise IntervalError(
            f"retention period must be a string, timedelta, Interval or None, got {value!r}; "
            f"use e.g. {examples}"
        )
    try:
        months, days, seconds = _parse_text(value)
        if months > _MAX_MONTHS or days > _MAX_DAYS or seconds > _MAX_DAYS * 86400:
            raise _Bad("it is longer than 100 years")
        if months and (days or seconds):
            raise _Bad("months cannot be combined with days or hours in one period")
        if seconds:
            period = dt.timedelta(days=days, seconds=seconds)
            _check_period(period, examples)
            return Retention(period)
        if months:
            return Retention(Interval(months, Unit.MONTH))
        return Retention(Interval(days, Unit.DAY))
    except _NotPositive:
        raise IntervalError(
            f"retention period {value!r} must be positive; use None to keep partitions "
            f"forever, or e.g. {examples}"
        ) from None
    except _Bad as bad:
        why = f" ({bad.reason})" if bad.reason else ""
        raise IntervalError(
            f"invalid retention period {value!r}{why}: use e.g. {examples}"
        ) from None
