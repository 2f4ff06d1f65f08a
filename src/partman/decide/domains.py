"""Where the planner works: a line of positions, and how a key column's values map onto it.

Every shape is planned the same way (periods, the pieces of each tenant's timeline, the gaps
between them, what has expired); only the line differs. Time keys (timestamptz, timestamp,
date), epoch integers and UUIDv7 values map to instants, aligned on `Config.timezone`'s
calendar; integer ids are their own positions, counted in fixed-width windows. A domain turns
a column value into a position (`from_value`), a position back into the exact value a bound
must have (`to_value`), and says which period holds a position (`index`, `bounds`).

Positions of one domain are all of one type (aware UTC datetimes, or ints), so they compare
with each other; `Position` is `Any` because the planner handles both kinds alike.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..model.bounds import BoundValue, Special
from ..model.columns import ColumnKind, KeyColumn
from ..model.intervals import Interval
from ..model.keys import Epoch, IdInterval, KeyValue, id_position, uuid_bound, uuid_instant
from ..model.naming import period_label
from ..model.snapshot import TableRecord

UTC = dt.UTC
TIME_MIN = dt.datetime.min.replace(tzinfo=UTC)
TIME_MAX = dt.datetime.max.replace(tzinfo=UTC)

Position = Any
"""An aware UTC datetime (time domains) or an int (id windows)."""


@dataclass(frozen=True)
class Domain:
    """The line a table's partitions are planned on (the base: time keys, timestamptz,
    timestamp and date).

    timestamptz values are instants, aligned in the configured zone. timestamp and date values
    are wall-clock readings: they are aligned as if they were UTC (a calendar without DST, so
    no repeated or missing hour), and "now" is the configured zone's wall clock.
    """

    kind: ColumnKind
    zone: zoneinfo.ZoneInfo
    interval: Interval | IdInterval = field(default_factory=lambda: Interval.parse("1 day"))

    lowest: Position = TIME_MIN
    """Below every position: an unbounded (MINVALUE) lower end."""
    highest: Position = TIME_MAX
    """Above every position: an unbounded (MAXVALUE) upper end."""

    @property
    def by_time(self) -> bool:
        """Positions are instants, and "now" is the clock's."""
        return True

    @property
    def align_tz(self) -> zoneinfo.ZoneInfo:
        return self.zone if self.kind is ColumnKind.TIMESTAMPTZ else zoneinfo.ZoneInfo("UTC")

    @property
    def time_interval(self) -> Interval:
        assert isinstance(self.interval, Interval)
        return self.interval

    def now(self, instant: dt.datetime) -> Position:
        if self.kind is ColumnKind.TIMESTAMPTZ:
            return instant.astimezone(UTC)
        return instant.astimezone(self.zone).replace(tzinfo=UTC)

    def index(self, position: Position) -> int:
        return self.time_interval.index(position, self.align_tz)

    def bounds(self, index: int) -> tuple[Position, Position]:
        return self.time_interval.bounds(index, self.align_tz)

    def is_aligned(self, lower: Position, upper: Position) -> bool:
        return self.time_interval.is_aligned(lower, upper, self.align_tz) is not None

    def to_value(self, position: Position) -> KeyValue:
        if self.kind is ColumnKind.TIMESTAMPTZ:
            return position.astimezone(UTC)  # type: ignore[no-any-return]
        naive = position.astimezone(UTC).replace(tzinfo=None)
        return naive.date() if self.kind is ColumnKind.DATE else naive  # type: ignore[no-any-return]

    def from_value(self, value: BoundValue, *, upper: bool) -> Position:
        """Unbounded or unreadable ends become -inf/+inf: they cover, and never expire."""
        if isinstance(value, Special):
            return self._special(value, upper=upper)
        if isinstance(value, dt.datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, dt.date):
            return dt.datetime.combine(value, dt.time(), UTC)
        raise TypeError(f"not a time value: {value!r}")

    def exact(self, value: BoundValue) -> bool:
        """Is `value` exactly a position of this line (a bound partman could have made)?"""
        return not isinstance(value, Special)

    def _special(self, value: Special, *, upper: bool) -> Position:
        if value is Special.MINVALUE:
            return self.lowest
        if value is Special.MAXVALUE:
            return self.highest
        return self.highest if upper else self.lowest

    def label(self, position: Position, *, sub_day: bool) -> str:
        """The period part of a partition's name (`p20240131`, `p20240131_0615`)."""
        return period_label(position.astimezone(self.align_tz), sub_day=sub_day)

    def show(self, position: Position) -> str:
        """A position for people: "unbounded" for the ends, else the column's value."""
        if position in (self.lowest, self.highest):
            return "unbounded"
        value = self.to_value(position)
        return value.isoformat() if isinstance(value, dt.date) else str(value)

    def parse_text(self, text: str) -> KeyValue:
        """A bound as partman's metadata stores it (`model.text.iso`, or the value's text)."""
        if self.kind is ColumnKind.DATE:
            return dt.date.fromisoformat(text[:10])
        value = dt.datetime.fromisoformat(text)
        if self.kind is ColumnKind.TIMESTAMPTZ:
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value.replace(tzinfo=None)


@dataclass(frozen=True)
class EpochDomain(Domain):
    """An integer column holding time since 1970 in `epoch` units: instants, as timestamptz."""

    epoch: Epoch = Epoch.SECONDS

    @property
    def align_tz(self) -> zoneinfo.ZoneInfo:
        return self.zone

    def now(self, instant: dt.datetime) -> Position:
        return instant.astimezone(UTC)

    def to_value(self, position: Position) -> KeyValue:
        return self.epoch.from_instant(position)

    def from_value(self, value: BoundValue, *, upper: bool) -> Position:
        if isinstance(value, Special):
            return self._special(value, upper=upper)
        number = id_position(value)
        if number is None:
            return self.highest if upper else self.lowest
        try:
            return self.epoch.to_instant(number)
        except OverflowError:
            return self.highest if upper else self.lowest

    def exact(self, value: BoundValue) -> bool:
        number = id_position(value)
        if number is None:
            return False
        try:
            return self.epoch.from_instant(self.epoch.to_instant(number)) == number
        except OverflowError:
            return False

    def label(self, position: Position, *, sub_day: bool) -> str:
        return period_label(position.astimezone(self.zone), sub_day=sub_day)

    def parse_text(self, text: str) -> KeyValue:
        return int(text)


@dataclass(frozen=True)
class UuidDomain(Domain):
    """A UUIDv7 column: a bound is the least UUID of its instant (see `model.keys`)."""

    @property
    def align_tz(self) -> zoneinfo.ZoneInfo:
        return self.zone

    def now(self, instant: dt.datetime) -> Position:
        return instant.astimezone(UTC)

    def to_value(self, position: Position) -> KeyValue:
        return uuid_bound(position)

    def from_value(self, value: BoundValue, *, upper: bool) -> Position:
        if isinstance(value, Special) or not isinstance(value, uuid.UUID):
            return self._special(
                value if isinstance(value, Special) else Special.UNREADABLE, upper=upper
            )
        instant, exact = uuid_instant(value)
        if not exact and upper:
            # the range ends inside this millisecond: it covers up to it, not past it
            return instant + dt.timedelta(milliseconds=1)
        return instant

    def exact(self, value: BoundValue) -> bool:
        return isinstance(value, uuid.UUID) and uuid_instant(value)[1]

    def label(self, position: Position, *, sub_day: bool) -> str:
        return period_label(position.astimezone(self.zone), sub_day=sub_day)

    def parse_text(self, text: str) -> KeyValue:
        return uuid.UUID(text)


@dataclass(frozen=True)
class IdDomain(Domain):
    """Integer ids in windows of `interval.width`; "now" is the current max id."""

    lowest: Position = -math.inf
    highest: Position = math.inf

    @property
    def by_time(self) -> bool:
        return False

    @property
    def width(self) -> IdInterval:
        assert isinstance(self.interval, IdInterval)
        return self.interval

    def now(self, instant: dt.datetime) -> Position:
        raise TypeError("an id table's position is its max(id), not a time")

    def index(self, position: Position) -> int:
        return self.width.index(int(position))

    def bounds(self, index: int) -> tuple[Position, Position]:
        return self.width.bounds(index)

    def is_aligned(self, lower: Position, upper: Position) -> bool:
        if not isinstance(lower, int) or not isinstance(upper, int):
            return False
        return self.width.bounds(self.width.index(lower)) == (lower, upper)

    def to_value(self, position: Position) -> KeyValue:
        return int(position)

    def from_value(self, value: BoundValue, *, upper: bool) -> Position:
        if isinstance(value, Special):
            return self._special(value, upper=upper)
        number = id_position(value)
        if number is None:
            if isinstance(value, Decimal):  # a fractional bound: round outwards
                return math.ceil(value) if upper else math.floor(value)
            return self.highest if upper else self.lowest
        return number

    def exact(self, value: BoundValue) -> bool:
        return id_position(value) is not None

    def label(self, position: Position, *, sub_day: bool) -> str:
        number = int(position)
        return f"p{number}" if number >= 0 else f"pm{-number}"

    def show(self, position: Position) -> str:
        if position in (self.lowest, self.highest):
            return "unbounded"
        return str(int(position))

    def parse_text(self, text: str) -> KeyValue:
        return int(text)


def domain_of(table: TableRecord, key: KeyColumn, zone: zoneinfo.ZoneInfo) -> Domain:
    """The line `table`'s range column `key` is planned on."""
    kind = key.kind
    if table.by_id:
        return IdDomain(kind, zone, table.interval)
    if table.epoch is not None:
        return EpochDomain(kind, zone, table.interval, epoch=Epoch(table.epoch))
    if kind is ColumnKind.UUID:
        return UuidDomain(kind, zone, table.interval)
    return Domain(kind, zone, table.interval)


TimeDomain = Domain
"""The name this had when only time keys were planned."""
