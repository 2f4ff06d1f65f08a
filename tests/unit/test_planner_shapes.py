"""planner.plan on the new key axes, by property: pure, no server.

* Integer ids: whatever the window width, the newest id and the partition count, and whatever
  odd partitions already sit under the parent (misaligned, spanning windows, unbounded,
  foreign, detach-pending), the windows planned are aligned (or the free part of one window),
  cover the window holding the newest id through `partition_count` ahead, overlap nothing,
  and retention by distance retires exactly partman's own windows that end at or below the
  newest id minus the distance, and nothing else.
* Epoch integers (every unit) and UUIDv7: bounds round-trip exactly at period starts, the
  periods planned tile time, and an instant lands in the same period as it would in the
  equivalent timestamptz table (the same periods, named alike, planned around the same odd
  partitions).
* Sub-hour intervals tile across DST changes, in zones whose offsets or changes are not
  whole hours too, and the names planned in a repeated hour stay unique.

The oracles here are written from arithmetic and the timestamptz table, not from
`domains.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from partman.decide.domains import Domain, EpochDomain, UuidDomain, domain_of
from partman.decide.planner import plan
from partman.model.bounds import BoundValue, RangeBound, Special
from partman.model.columns import KeyColumn
from partman.model.intervals import Interval, parse_retention
from partman.model.keys import Epoch, IdInterval, IdRetention
from partman.model.operations import CreatePartition, Plan, RetirePartition
from partman.model.snapshot import (
    Catalog,
    OwnedPartition,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    is_owner_comment,
    owner_comment,
)

UTC = dt.UTC
UTC_ZONE = ZoneInfo("UTC")
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
PROPERTY = settings(max_examples=60, deadline=None)
CREATED = owner_comment("created")
NOW = dt.datetime(2026, 3, 10, 12, 7, tzinfo=UTC)
BIGINT = 2**63

ID = KeyColumn("id", "int8", "bigint", -1)
EPOCH_AT = KeyColumn("at", "int8", "bigint", -1)
UUID_AT = KeyColumn("at", "uuid", "uuid", -1)
TSTZ_AT = KeyColumn("at", "timestamptz", "timestamp with time zone", -1)
PAYLOAD = KeyColumn("payload", "jsonb", "jsonb", -1)

ZONES = [
    UTC_ZONE,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),  # DST moves the clock by 30 minutes
    ZoneInfo("America/St_Johns"),  # UTC-3:30, with DST
    ZoneInfo("Asia/Kathmandu"),  # UTC+5:45
]
TIME_INTERVALS = ["15 minutes", "1 hour", "6 hours", "1 day", "1 week", "1 month"]
SUB_HOUR = ["1 minute", "5 minutes", "10 minutes", "15 minutes", "20 minutes", "30 minutes"]


# -- worlds ----------------------------------------------------------------------------------


def parent_of(
    key: KeyColumn,
    partitions: Sequence[PartitionInfo],
    positions: dict[None, int] | None = None,
    name: str = "t",
) -> ParentInfo:
    columns = {c.name: c for c in (key, PAYLOAD)}
    return ParentInfo(
        oid=1,
        schema="public",
        name=name,
        relkind="p",
        strategy="r",
        key=(key,),
        columns=columns,
        partitions=tuple(sorted(partitions, key=lambda p: p.name)),
        positions=dict(positions or {}),
    )


def table_record(
    key: KeyColumn,
    interval: Interval | IdInterval,
    count: int,
    *,
    retention: object = None,
    epoch: Epoch | None = None,
    name: str = "t",
) -> TableRecord:
    return TableRecord(
        id=1,
        schema="public",
        name=name,
        tenant_column=None,
        time_column=key.name,
        interval=interval,
        retention=retention,  # type: ignore[arg-type]
        partition_count=count,
        backfill=False,
        epoch=None if epoch is None else epoch.value,
    )


_oids = itertools.count(100)


def child(
    name: str,
    lower: BoundValue,
    upper: BoundValue,
    *,
    comment: str | None = None,
    detach_pending: bool = False,
    sub_strategy: str | None = None,
) -> PartitionInfo:
    return PartitionInfo(
        oid=next(_oids),
        schema="public",
        name=name,
        bound_text=f"FOR VALUES FROM ({lower}) TO ({upper})",
        bound=RangeBound((lower,), (upper,)),
        comment=comment,
        estimated_rows=None,
        detach_pending=detach_pending,
        sub_strategy=sub_strategy,
    )


def owned_record(p: PartitionInfo, origin: str = "created") -> OwnedPartition:
    return OwnedPartition(p.schema, p.name, "public", "t", None, origin)


def plan_one(
    table: TableRecord,
    parent: ParentInfo,
    owned: Sequence[OwnedPartition] = (),
    now: dt.datetime = NOW,
    zone: ZoneInfo = UTC_ZONE,
) -> Plan:
    state = State(tables=(table,), tenants={}, owned={(o.schema, o.name): o for o in owned})
    catalog: Catalog = {(parent.schema, parent.name): parent}
    result = plan(state, catalog, now, zone)
    errors = [n for n in result.notices if n.level == "error"]
    assert not errors, errors
    return result


def uncovered(
    lower: float, upper: float, ranges: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The parts of [lower, upper) none of `ranges` covers (an oracle of its own)."""
    out, cursor = [], lower
    for lo, hi in sorted(ranges):
        if hi <= cursor:
            continue
        if lo >= upper:
            break
        if lo > cursor:
            out.append((cursor, lo))
        cursor = max(cursor, hi)
    if cursor < upper:
        out.append((cursor, upper))
    return out


def overlapping(ranges: Sequence[tuple[float, float]]) -> list[tuple[Any, Any]]:
    ordered = sorted(ranges)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]


# -- integer ids -------------------------------------------------------------------------------

OWNERSHIP = ["created", "created", "adopted", "drift", "foreign", "foreign-commented"]


@dataclass(frozen=True)
class IdPart:
    """An existing partition near the window holding the newest id: `window` windows from it,
    `offset` and `length` in ids (a whole window when both are None), or from MINVALUE."""

    window: int
    offset: int | None
    length: int | None
    unbounded: bool
    owner: str
    odd: str  # "", "pending" (detach pending), "partitioned" (by RANGE: not partman's level)


id_parts = st.lists(
    st.builds(
        IdPart,
        st.integers(-12, 14),
        st.one_of(st.none(), st.integers(0, 3000)),
        st.one_of(st.none(), st.integers(1, 5000)),
        st.integers(0, 7).map(lambda n: n == 0),
        st.sampled_from(OWNERSHIP),
        st.sampled_from(["", "", "", "", "pending", "partitioned"]),
    ),
    max_size=10,
)
widths = st.one_of(st.integers(1, 12), st.sampled_from([100, 1000, 10**6]), st.integers(1, 10**12))


@dataclass
class IdWorld:
    width: int
    newest: int
    count: int
    distance: int | None
    parent: ParentInfo
    owned: list[OwnedPartition]
    table: TableRecord

    @property
    def current(self) -> int:
        return self.newest // self.width

    @property
    def cutoff(self) -> float:
        return -math.inf if self.distance is None else self.newest - self.distance

    def ranges(self) -> list[tuple[float, float]]:
        """[lower, upper) of every existing partition but the default (MINVALUE: -inf)."""
        out = []
        for p in self.parent.partitions:
            assert p.bound is not None
            lo, hi = p.bound.lower[0], p.bound.upper[0]
            out.append((-math.inf if isinstance(lo, Special) else lo, hi))
        return out  # type: ignore[return-value]


def id_world(
    width: int, newest: int, count: int, distance: int | None, parts: Sequence[IdPart]
) -> IdWorld:
    """The parent with the partitions `parts` describe, less those that would overlap one
    made before (PostgreSQL refuses overlapping partitions)."""
    current = newest // width
    taken: list[tuple[float, float]] = []
    partitions, owned = [], []
    for i, part in enumerate(parts):
        start = (current + part.window) * width
        if part.offset is None or part.length is None:
            lo, hi = start, start + width
        else:
            lo, hi = start + part.offset % width, start + part.offset % width + part.length
        if not -BIGINT <= lo < hi <= BIGINT:
            continue
        lower: BoundValue = Special.MINVALUE if part.unbounded else lo
        span = (-math.inf if part.unbounded else lo, hi)
        if any(span[0] < b and a < span[1] for a, b in taken):
            continue
        taken.append(span)
        in_meta = part.owner in ("created", "adopted", "drift")
        comment = {
            "created": CREATED,
            "adopted": owner_comment("adopted"),
            "drift": "the DBA's note",
            "foreign-commented": CREATED,
        }.get(part.owner)
        p = child(
            f"w{i}",
            lower,
            hi,
            comment=comment,
            detach_pending=part.odd == "pending",
            sub_strategy="r" if part.odd == "partitioned" else None,
        )
        partitions.append(p)
        if in_meta:
            owned.append(owned_record(p, "adopted" if part.owner == "adopted" else "created"))
    retention = None if distance is None else IdRetention(distance)
    table = table_record(ID, IdInterval(width), count, retention=retention)
    parent = parent_of(ID, partitions, {None: newest})
    return IdWorld(width, newest, count, distance, parent, owned, table)


@PROPERTY
@given(
    width=widths,
    newest=st.integers(-(10**15), 10**15),
    count=st.integers(0, 12),
    distance=st.one_of(st.none(), st.integers(1, 10**13)),
    parts=id_parts,
)
@example(width=1000, newest=2999, count=2, distance=1500, parts=[])
@example(width=1, newest=0, count=0, distance=1, parts=[])
@example(
    width=1000,
    newest=4044,
    count=2,
    distance=None,
    parts=[IdPart(1, 250, 500, False, "foreign", "")],  # [5250, 5750) inside a window ahead
)
def test_id_windows_are_aligned_contiguous_cover_the_runway_and_overlap_nothing(
    width: int, newest: int, count: int, distance: int | None, parts: list[IdPart]
) -> None:
    world = id_world(width, newest, count, distance, parts)
    result = plan_one(world.table, world.parent, world.owned)
    creates = [op for op in result.creates if isinstance(op, CreatePartition)]
    existing = world.ranges()
    made: list[tuple[float, float]] = []
    first, last = world.current * width, (world.current + count + 1) * width
    for op in creates:
        lo, hi = op.lower, op.upper
        assert isinstance(lo, int) and isinstance(hi, int), op
        assert lo < hi
        window = lo // width
        assert (hi - 1) // width == window, f"{op.partition_name} spans windows"
        if hi - lo == width:
            assert lo % width == 0, f"{op.partition_name} is a whole window, misaligned"
        else:
            assert op.reason.endswith(f"(only the gap [{lo}, {hi}) is free)"), op.reason
        assert first <= lo and hi <= last, f"{op.partition_name} outside the runway"
        assert op.lower_key == (lo,) and op.upper_key == (hi,)
        made.append((lo, hi))
    assert not overlapping(made + existing), "a planned window overlaps"
    # Everything from the window holding the newest id through `count` ahead is covered,
    # but for gaps that retention would drop at once.
    for gap in uncovered(first, last, made + existing):
        assert gap[1] <= world.cutoff, f"{gap} is left uncovered"
    # Whole windows are named after their first id, and no name is used twice.
    names = [op.partition_name for op in creates]
    assert len(set(names)) == len(names)
    assert not set(names) & {p.name for p in world.parent.partitions}
    for op in creates:
        if op.upper - op.lower == width:  # type: ignore[operator]
            label = f"p{op.lower}" if op.lower >= 0 else f"pm{-op.lower}"  # type: ignore[operator]
            assert op.partition_name == f"t_{label}"


@PROPERTY
@given(
    width=widths,
    newest=st.integers(-(10**15), 10**15),
    count=st.integers(0, 4),
    distance=st.one_of(st.none(), st.integers(1, 10**13), st.integers(1, 30)),
    parts=id_parts,
)
@example(
    width=1000,
    newest=4044,
    count=2,
    distance=1500,
    parts=[IdPart(-3, None, None, False, "created", "")],
)
@example(
    width=1000,
    newest=3999,
    count=2,
    distance=2000,
    parts=[IdPart(-2, None, None, False, "created", "")],
)
def test_id_retention_by_distance_retires_only_owned_windows_wholly_below_the_cutoff(
    width: int, newest: int, count: int, distance: int | None, parts: list[IdPart]
) -> None:
    world = id_world(width, newest, count, distance, parts)
    result = plan_one(world.table, world.parent, world.owned)
    owned = {(o.schema, o.name) for o in world.owned}
    retired = {op.partition_name: op for op in result.drops if isinstance(op, RetirePartition)}
    warned = {n.partition for n in result.notices}
    for p in world.parent.partitions:
        assert p.bound is not None
        lo, hi = p.bound.lower[0], p.bound.upper[0]
        expired = distance is not None and hi <= newest - distance  # type: ignore[operator]
        mine = (p.schema, p.name) in owned and is_owner_comment(p.comment)
        regular = not isinstance(lo, Special) and not p.detach_pending and not p.sub_strategy
        if p.name in retired and p.detach_pending:
            # partman's own, left detach-pending by an interrupted pass: it finishes it
            assert (p.schema, p.name) in owned and retired[p.name].stage == "pending"
        elif p.name in retired:
            op = retired[p.name]
            assert expired and mine and regular, (p, op.reason)
            assert op.upper == hi and op.lower == lo and op.action == "drop"
            assert op.oid == p.oid and op.bound_text == p.bound_text
            assert op.concurrently  # no default partition
        elif expired and mine and regular:
            raise AssertionError(f"{p.name} [{lo}, {hi}) expired but kept")
        elif expired and not p.detach_pending and not p.sub_strategy:
            # never dropped, but said: foreign, drifted or unbounded windows past retention
            assert p.qualified_name in warned, (p, result.notices)
    if distance is None:
        assert all(op.stage == "pending" for op in retired.values())


def test_an_id_table_without_rows_starts_at_its_lowest_window_or_at_zero() -> None:
    table = table_record(ID, IdInterval(500), 1)
    empty = plan_one(table, parent_of(ID, []))
    assert [(op.lower, op.upper) for op in empty.creates] == [(0, 500), (500, 1000)]
    legacy = child("legacy", -1500, -1000)
    started = plan_one(table, parent_of(ID, [legacy]))
    assert [(op.lower, op.upper) for op in started.creates] == [(-1000, -500)]
    assert [op.partition_name for op in started.creates] == ["t_pm1000"]


# -- epoch integers and UUIDv7 ----------------------------------------------------------------

TIME_UNITS: list[Epoch | None] = [*Epoch, None]  # None: UUIDv7
unit_names = st.sampled_from(TIME_UNITS)


def time_domain(unit: Epoch | None, interval: str, zone: ZoneInfo) -> Domain:
    key = UUID_AT if unit is None else EPOCH_AT
    table = table_record(key, Interval.parse(interval), 0, epoch=unit)
    domain = domain_of(table, key, zone)
    assert isinstance(domain, UuidDomain if unit is None else EpochDomain)
    return domain


def tstz_domain(interval: str, zone: ZoneInfo) -> Domain:
    table = table_record(TSTZ_AT, Interval.parse(interval), 0)
    return domain_of(table, TSTZ_AT, zone)


def as_value(unit: Epoch | None, instant: dt.datetime) -> int | uuid.UUID:
    """The column value an instant (whole milliseconds at least) is written as: the oracle."""
    micros = (instant - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)
    if unit is None:
        return uuid.UUID(int=(micros // 1000) << 80)
    return micros * unit.per_second // 10**6


def uuid7(instant: dt.datetime, rest: int) -> uuid.UUID:
    """A UUIDv7 written at `instant`: its millisecond, version 7, the variant, random bits."""
    ms = (instant - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(milliseconds=1)
    rand = rest & ((1 << 74) - 1)
    return uuid.UUID(
        int=(ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & (2**62 - 1))
    )


instants = st.datetimes(dt.datetime(1971, 1, 1), dt.datetime(2099, 12, 31), timezones=st.just(UTC))


@PROPERTY
@given(
    unit=unit_names,
    interval=st.sampled_from(TIME_INTERVALS),
    zone=st.sampled_from(ZONES),
    instant=instants,
)
@example(unit=Epoch.NANOSECONDS, interval="1 day", zone=UTC_ZONE, instant=NOW)
@example(unit=None, interval="1 month", zone=ZONES[1], instant=dt.datetime(1971, 1, 1, tzinfo=UTC))
def test_epoch_and_uuid_bounds_round_trip_exactly_at_period_starts(
    unit: Epoch | None, interval: str, zone: ZoneInfo, instant: dt.datetime
) -> None:
    domain = time_domain(unit, interval, zone)
    reference = tstz_domain(interval, zone)
    k = reference.index(instant)
    assert domain.index(instant) == k
    lower, upper = domain.bounds(k)
    assert (lower, upper) == reference.bounds(k)
    for position, is_upper in ((lower, False), (upper, True)):
        value = domain.to_value(position)
        assert value == as_value(unit, position)
        assert domain.exact(value)
        assert domain.from_value(value, upper=is_upper) == position
        assert domain.to_value(domain.from_value(value, upper=is_upper)) == value
        assert domain.parse_text(str(value)) == value  # as partman's metadata stores it
    assert domain.is_aligned(lower, upper)


@PROPERTY
@given(
    unit=unit_names,
    interval=st.sampled_from(TIME_INTERVALS),
    zone=st.sampled_from(ZONES),
    instant=instants,
    rest=st.integers(0, 2**80 - 1),
)
@example(
    unit=Epoch.SECONDS,
    interval="1 day",
    zone=UTC_ZONE,
    instant=NOW.replace(hour=0, minute=0),
    rest=0,
)
def test_a_row_lands_in_the_period_its_instant_is_in_in_the_timestamptz_table(
    unit: Epoch | None, interval: str, zone: ZoneInfo, instant: dt.datetime, rest: int
) -> None:
    domain = time_domain(unit, interval, zone)
    lower, upper = tstz_domain(interval, zone).bounds(tstz_domain(interval, zone).index(instant))
    assert lower <= instant < upper
    if unit is None:
        row: int | uuid.UUID = uuid7(instant, rest)
    else:
        row = as_value(unit, instant)  # the row's value: the instant, cut to the unit
    low, high = domain.to_value(lower), domain.to_value(upper)
    assert low <= row < high  # type: ignore[operator]


def _odd_time_parts(
    draw: st.DrawFn, domain: Domain, k0: int
) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """Existing partitions around period k0, in instants (whole seconds): whole periods and
    odd ranges, each with its ownership."""
    out: list[tuple[dt.datetime, dt.datetime, str]] = []
    for _ in range(draw(st.integers(0, 6))):
        k = k0 + draw(st.integers(-4, 8))
        lo, hi = domain.bounds(k)
        if draw(st.booleans()):  # odd: starts inside the period, any length
            lo += dt.timedelta(seconds=draw(st.integers(0, int((hi - lo).total_seconds()) - 1)))
            hi = lo + dt.timedelta(seconds=draw(st.integers(1, 3 * 86400)))
        if any(lo < b and a < hi for a, b, _ in out):
            continue
        out.append((lo, hi, draw(st.sampled_from(OWNERSHIP))))
    return out


@PROPERTY
@given(
    unit=unit_names,
    interval=st.sampled_from(TIME_INTERVALS),
    zone=st.sampled_from(ZONES),
    now=st.datetimes(dt.datetime(1980, 1, 1), dt.datetime(2090, 1, 1), timezones=st.just(UTC)),
    count=st.integers(0, 8),
    data=st.data(),
)
def test_epoch_and_uuid_tables_plan_the_periods_a_timestamptz_table_would(
    unit: Epoch | None,
    interval: str,
    zone: ZoneInfo,
    now: dt.datetime,
    count: int,
    data: st.DataObject,
) -> None:
    """The same existing partitions (converted to each column's values), the same clock: the
    same periods planned (the same instants, names and reasons), tiling time."""
    domain = time_domain(unit, interval, zone)
    key = UUID_AT if unit is None else EPOCH_AT
    retention = parse_retention("3 days")
    k0 = domain.index(now)
    parts = _odd_time_parts(data.draw, domain, k0)
    plans = {}
    for kind, col, to_value in (
        ("key", key, functools.partial(as_value, unit)),
        ("tstz", TSTZ_AT, lambda t: t),
    ):
        partitions, owned = [], []
        for i, (lo, hi, owner) in enumerate(parts):
            comment = None if owner == "foreign" else (CREATED if owner != "drift" else "x")
            p = child(f"o{i}", to_value(lo), to_value(hi), comment=comment)
            partitions.append(p)
            if owner in ("created", "adopted", "drift"):
                owned.append(owned_record(p))
        table = table_record(
            col,
            Interval.parse(interval),
            count,
            retention=retention,
            epoch=unit if kind == "key" else None,
        )
        plans[kind] = plan_one(table, parent_of(col, partitions), owned, now, zone)
    mine, theirs = plans["key"], plans["tstz"]

    def shown(result: Plan, convert: bool) -> list[tuple[object, ...]]:
        out = []
        for op in result.operations:
            lo, hi = op.lower, op.upper
            if convert:
                lo = domain.from_value(lo, upper=False)  # type: ignore[arg-type]
                hi = domain.from_value(hi, upper=True)  # type: ignore[arg-type]
            out.append(
                (op.kind, op.partition_name, lo, hi, op.reason.split(" (only")[0].split(":")[0])
            )
        return out

    assert shown(mine, True) == shown(theirs, False)
    assert [n.partition for n in mine.notices] == [n.partition for n in theirs.notices]
    # with no partition in the way, the periods planned tile time from the one holding now
    if not parts:
        bounds = [(op.lower, op.upper) for op in mine.creates]
        assert len(bounds) == count + 1
        assert domain.from_value(bounds[0][0], upper=False) <= now
        assert now < domain.from_value(bounds[0][1], upper=True)
        for (_, hi), (lo, _) in itertools.pairwise(bounds):
            assert hi == lo


# -- sub-hour intervals across DST -----------------------------------------------------------


@functools.cache
def transitions(zone: str, year: int) -> list[dt.datetime]:
    """The instants (UTC) a zone's offset changes at in a year, found hour by hour then by
    the minute."""
    tz = ZoneInfo(zone)
    out = []
    t = dt.datetime(year, 1, 1, tzinfo=UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=UTC)
    while t < end:
        nxt = t + HOUR
        if t.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            m = t
            while m.astimezone(tz).utcoffset() == t.astimezone(tz).utcoffset():
                m += dt.timedelta(minutes=1)
            out.append(m)
        t = nxt
    return out


DST_ZONES = [z for z in ZONES if z.key not in ("UTC", "Asia/Kathmandu")]


@st.composite
def near_a_change(draw: st.DrawFn) -> tuple[ZoneInfo, dt.datetime]:
    zone = draw(st.sampled_from(DST_ZONES))
    year = draw(st.integers(2000, 2037))
    change = draw(st.sampled_from(transitions(zone.key, year)))
    return zone, change + dt.timedelta(minutes=draw(st.integers(-180, 180)))


@PROPERTY
@given(
    interval=st.sampled_from(SUB_HOUR),
    where=near_a_change(),
    count=st.integers(0, 16),
)
@example(
    interval="15 minutes",
    where=(ZoneInfo("Europe/Berlin"), dt.datetime(2026, 10, 25, 0, 50, tzinfo=UTC)),
    count=12,
)
def test_sub_hour_periods_tile_across_a_dst_change_and_keep_their_names_apart(
    interval: str, where: tuple[ZoneInfo, dt.datetime], count: int
) -> None:
    zone, now = where
    period = Interval.parse(interval)
    step = period.approx
    domain = tstz_domain(interval, zone)
    k = domain.index(now)
    previous = None
    for index in range(k - 2, k + count + 2):
        lo, hi = domain.bounds(index)
        assert hi - lo == step, (index, lo, hi)  # elapsed time, whatever the wall clock does
        assert previous is None or previous == lo
        assert (
            domain.index(lo) == index and domain.index(hi - dt.timedelta(microseconds=1)) == index
        )
        assert domain.is_aligned(lo, hi)
        previous = hi
    table = table_record(TSTZ_AT, period, count)
    result = plan_one(table, parent_of(TSTZ_AT, []), now=now, zone=zone)
    bounds = [(op.lower, op.upper) for op in result.creates]
    assert len(bounds) == count + 1
    assert bounds[0][0] <= now < bounds[0][1]  # type: ignore[operator]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    names = [op.partition_name for op in result.creates]
    assert len(set(names)) == len(names), names  # a repeated wall-clock hour names twice
