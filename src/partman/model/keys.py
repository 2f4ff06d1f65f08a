"""What a partition key's values mean, so that every shape is planned on one line.

partman plans on an ordered line of positions: instants (aware UTC datetimes) for every key
that stands for time, plain integers for id keys. A codec turns the column's own values into
positions and back, exactly at period bounds:

- timestamptz, timestamp and date columns are time itself (`planner.TimeDomain` says how);
- epoch integers (seconds, milliseconds, microseconds, nanoseconds since 1970) are instants;
- UUIDv7 values carry their creation time in their first 48 bits (Unix milliseconds), so the
  UUID whose first 48 bits are a period's start, and whose other 80 bits are zero, is the least
  UUIDv7 of that period: a bound every UUIDv7 of the period is at or after, and every one of
  the period before is below;
- integer ids (`int`, `bigint`, `numeric`) are counted in fixed-width windows (`IdInterval`).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal

from ..errors import ConfigError

UTC = dt.UTC
UNIX_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
KeyValue = dt.datetime | dt.date | int | uuid.UUID | Decimal
"""A value of a range key column, as a bound is written: time, an epoch or id, a UUIDv7."""
_MAX_WIDTH = 10**30  # wider than any integer column partman manages (numeric aside)
_UUID_MS_BITS = 80  # a UUIDv7's low bits after its 48-bit millisecond timestamp


class Epoch(enum.Enum):
    """The unit of an integer column that holds time since 1970-01-01 UTC (pg_partman's
    `p_epoch`)."""

    SECONDS = "seconds"
    MILLISECONDS = "milliseconds"
    MICROSECONDS = "microseconds"
    NANOSECONDS = "nanoseconds"

    @property
    def per_second(self) -> int:
        return _PER_SECOND[self]

    def to_instant(self, value: int) -> dt.datetime:
        """The instant an epoch value stands for (an aware UTC datetime, to the microsecond;
        nanoseconds are cut, so a bound that is not a whole microsecond reads as the one
        before)."""
        micros = value * 10**6 // self.per_second
        return UNIX_EPOCH + dt.timedelta(microseconds=micros)

    def from_instant(self, instant: dt.datetime) -> int:
        """The epoch value of an instant; exact for the whole seconds periods start at."""
        delta = instant.astimezone(UTC) - UNIX_EPOCH
        micros = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
        return micros * self.per_second // 10**6


_PER_SECOND = {
    Epoch.SECONDS: 1,
    Epoch.MILLISECONDS: 10**3,
    Epoch.MICROSECONDS: 10**6,
    Epoch.NANOSECONDS: 10**9,
}

EPOCH_TEXT = 'one of "seconds", "milliseconds", "microseconds", "nanoseconds"'


def parse_epoch(value: object, what: str) -> Epoch:
    if isinstance(value, Epoch):
        return value
    try:
        return Epoch(str(value).lower())
    except ValueError:
        raise ConfigError(f"{what} must be {EPOCH_TEXT} (partman.Epoch), got {value!r}") from None


def uuid_instant(value: uuid.UUID) -> tuple[dt.datetime, bool]:
    """The instant a UUIDv7's timestamp prefix stands for, and whether the UUID is exactly
    that instant's least UUID (a bound partman would have made)."""
    ms, rest = divmod(value.int, 1 << _UUID_MS_BITS)
    return UNIX_EPOCH + dt.timedelta(milliseconds=ms), rest == 0


def uuid_bound(instant: dt.datetime) -> uuid.UUID:
    """The least UUID whose 48-bit timestamp prefix is `instant` (whole milliseconds)."""
    delta = instant.astimezone(UTC) - UNIX_EPOCH
    ms = (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if ms < 0 or ms >= 1 << 48:
        raise ValueError(f"{instant} is outside the range of UUIDv7 timestamps")
    return uuid.UUID(int=ms << _UUID_MS_BITS)


@dataclass(frozen=True)
class IdInterval:
    """Windows of `width` consecutive ids: window k is [k * width, (k + 1) * width), so every
    process computes the same bounds (pg_partman's id interval)."""

    width: int

    def __post_init__(self) -> None:
        width = self.width
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= _MAX_WIDTH:
            raise ConfigError(
                f"an id partition_interval must be a positive whole number of ids (e.g. "
                f"1000000), got {width!r}"
            )

    def index(self, position: int) -> int:
        return position // self.width

    def bounds(self, index: int) -> tuple[int, int]:
        return index * self.width, (index + 1) * self.width

    def __str__(self) -> str:
        return str(self.width)


def id_position(value: object) -> int | None:
    """An id bound as an integer position; None for a fractional numeric (never aligned)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return None


@dataclass(frozen=True)
class IdRetention:
    """Retention of an id table by distance: a window expires once its upper bound is at or
    below the current max id minus `distance` (pg_partman's integer retention)."""

    distance: int

    def __post_init__(self) -> None:
        d = self.distance
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= _MAX_WIDTH:
            raise ConfigError(
                f"an id retention_period must be a positive whole number of ids (e.g. "
                f"10000000: windows wholly below max(id) - 10000000 expire), got {d!r}"
            )

    def cutoff(self, position: int) -> int:
        return position - self.distance

    def __str__(self) -> str:
        return f"{self.distance} ids"


def parse_id_retention(value: object) -> IdRetention | None:
    """An id distance as written: an int, or its digits (as the metadata stores it), with an
    optional " ids"; None when `value` is not one."""
    if isinstance(value, IdRetention):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return IdRetention(value)
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("ids").strip()
        if text.isdigit():
            return IdRetention(int(text))
    return None
