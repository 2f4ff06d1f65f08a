"""planner.plan on synthetic metadata and catalogs: pure, no server.

A "world" is a State (tables, tenants, owned partitions) and a Catalog (parents with their
partitions and exact bounds) as a pass would read them. Applying a plan to a world means what
the executor does: creates add partitions (owned, with partman's comment), drops remove them.

Periods are checked against an oracle written here from the calendar alone (local midnights,
Mondays, first days of months, whole UTC hours), not against `intervals.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from partman.decide.planner import Piece, gaps, plan
from partman.model.bounds import BoundValue, RangeBound, Special
from partman.model.columns import ColumnKind, KeyColumn, TenantValue, tenant_text
from partman.model.intervals import Interval, parse_retention
from partman.model.naming import partition_name, period_label
from partman.model.operations import CreatePartition, DropPartition, Plan
from partman.model.snapshot import (
    FOREVER,
    Catalog,
    OwnedPartition,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    TenantRecord,
    is_owner_comment,
    owner_comment,
)

UTC = dt.UTC
UTC_ZONE = ZoneInfo("UTC")
ZONES = [UTC_ZONE, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]
INTERVALS = ["1 hour", "1 day", "1 week", "1 month"]
RETENTIONS: list[str | None] = [None, "1 day", "3 days", "1 month"]
TSTZ, TS, DATE = ColumnKind.TIMESTAMPTZ, ColumnKind.TIMESTAMP, ColumnKind.DATE
TEXT, INT, UUID = ColumnKind.TEXT, ColumnKind.INTEGER, ColumnKind.UUID
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
CREATED = owner_comment("created")

PROPERTY = settings(max_examples=70, deadline=None)

TIME_COLUMNS = {
    TSTZ: KeyColumn("at", "timestamptz", "timestamp with time zone", -1),
    TS: KeyColumn("at", "timestamp", "timestamp without time zone", -1),
    DATE: KeyColumn("at", "date", "date", -1),
}
TENANT_COLUMNS = {
    TEXT: KeyColumn("tenant", "text", "text", -1),
    INT: KeyColumn("tenant", "int8", "bigint", -1),
    UUID: KeyColumn("tenant", "uuid", "uuid", -1),
}


# -- the calendar oracle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """One managed table's shape: its period, its zone, its key column types."""

    interval: str
    zone: ZoneInfo
    time_kind: ColumnKind
    tenant_kind: ColumnKind | None

    @property
    def align_tz(self) -> ZoneInfo:
        """timestamptz periods follow the zone; timestamp/date values are wall clock readings."""
        return self.zone if self.time_kind is TSTZ else UTC_ZONE

    def aligned_now(self, now: dt.datetime) -> dt.datetime:
        if self.time_kind is TSTZ:
            return now.astimezone(UTC)
        return now.astimezone(self.zone).replace(tzinfo=UTC)

    def start(self, now: dt.datetime, k: int) -> dt.datetime:
        """Start (aware UTC, aligned space) of the k-th period after the one holding `now`."""
        here = self.aligned_now(now)
        if self.interval == "1 hour":  # all three zones are whole hours off UTC
            return here.replace(minute=0, second=0, microsecond=0) + k * HOUR
        day = here.astimezone(self.align_tz).date()
        if self.interval == "1 day":
            day += k * DAY
        elif self.interval == "1 week":
            day += (7 * k - day.weekday()) * DAY
        else:
            year, month0 = divmod(day.year * 12 + day.month - 1 + k, 12)
            day = dt.date(year, month0 + 1, 1)
        # midnight is never skipped or repeated in these zones
        return dt.datetime(day.year, day.month, day.day, tzinfo=self.align_tz).astimezone(UTC)

    def value(self, aligned: dt.datetime) -> dt.datetime | dt.date:
        """The column value for an aligned instant."""
        if self.time_kind is TSTZ:
            return aligned
        naive = aligned.astimezone(UTC).replace(tzinfo=None)
        return naive.date() if self.time_kind is DATE else naive


def aligned(value: BoundValue) -> dt.datetime:
    """A finite bound value of the time column in aligned space (aware UTC)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    assert isinstance(value, dt.date), value
    return dt.datetime.combine(value, dt.time(), UTC)


@functools.cache
def dst_days(zone: str, year: int) -> list[dt.date]:
    """The days a zone's UTC offset changes on in a year (Berlin's for UTC itself)."""
    tz = ZoneInfo("Europe/Berlin" if zone == "UTC" else zone)
    days = []
    day = dt.date(year, 1, 2)
    while day.year == year:
        noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        if noon.utcoffset() != (noon - DAY).utcoffset():
            days.append(day)
        day += DAY
    return days


# -- worlds ----------------------------------------------------------------------------------


@dataclass
class World:
    state: State
    catalog: Catalog
    now: dt.datetime
    zone: ZoneInfo
    layouts: dict[int, Layout]  # by table id

    def table(self, table_id: int) -> TableRecord:
        return next(t for t in self.state.tables if t.id == table_id)

    def parent(self, table_id: int) -> ParentInfo:
        t = self.table(table_id)
        return self.catalog[(t.schema, t.name)]

    def plan(self) -> Plan:
        return plan(self.state, self.catalog, self.now, self.zone)


@dataclass(frozen=True)
class Policy:
    tenant: TenantValue | None
    retention: str | None  # effective: None keeps forever
    count: int


def policies(world: World, table_id: int) -> list[Policy]:
    table = world.table(table_id)
    if table.tenant_column is None:
        return [Policy(None, _text(table.retention), table.partition_count)]
    layout = world.layouts[table_id]
    out = []
    for rec in world.state.tenants.get(table_id, ()):
        retention = _text(table.retention) if rec.retention is None else rec.retention
        count = table.partition_count if rec.partition_count is None else rec.partition_count
        tenant = _tenant_value(rec.tenant_id, layout.tenant_kind)
        out.append(Policy(tenant, None if retention == FOREVER else retention, count))
    return out


def _text(retention: object) -> str | None:
    return None if retention is None else str(retention)


def _tenant_value(text: str, kind: ColumnKind | None) -> TenantValue:
    if kind is INT:
        return int(text)
    if kind is UUID:
        return uuid.UUID(text)
    return text


def cutoff(world: World, table_id: int, retention: str | None) -> dt.datetime | None:
    """now - retention in aligned space (through intervals.Retention, sanity-checked here)."""
    if retention is None:
        return None
    layout = world.layouts[table_id]
    here = layout.aligned_now(world.now)
    parsed = parse_retention(retention)
    assert parsed is not None
    result = parsed.cutoff(here, layout.align_tz)
    nominal = {"1 day": DAY, "3 days": 3 * DAY, "1 month": 30 * DAY}[retention]
    # months have 28..31 days; a DST change shifts a calendar cutoff by an hour
    slack = 2 * DAY + 2 * HOUR if retention == "1 month" else 2 * HOUR
    assert abs((here - result) - nominal) <= slack, (retention, here, result)
    return result


def tenant_of(p: PartitionInfo, has_tenant: bool) -> TenantValue | None:
    assert p.bound is not None and not p.bound.is_default
    return p.bound.lower[0] if has_tenant else None  # type: ignore[return-value]


def time_range(p: PartitionInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(lower, upper) in aligned space; None for an unbounded end."""
    assert p.bound is not None
    lo, hi = p.bound.lower[-1], p.bound.upper[-1]
    return (
        None if isinstance(lo, Special) else aligned(lo),
        None if isinstance(hi, Special) else aligned(hi),
    )


def tenant_partitions(
    world: World, table_id: int, tenant: TenantValue | None
) -> list[PartitionInfo]:
    has_tenant = world.table(table_id).tenant_column is not None
    return [
        p
        for p in world.parent(table_id).partitions
        if p.bound is not None and not p.bound.is_default and tenant_of(p, has_tenant) == tenant
    ]


def overlaps(
    a: tuple[dt.datetime, dt.datetime], b: tuple[dt.datetime | None, dt.datetime | None]
) -> bool:
    lo = b[0] or dt.datetime.min.replace(tzinfo=UTC)
    hi = b[1] or dt.datetime.max.replace(tzinfo=UTC)
    return a[0] < hi and lo < a[1]


OWNERSHIP = ["owned", "owned", "owned", "adopted", "drift", "foreign", "foreign-commented"]


def ownership(kind: str) -> tuple[bool, str | None]:
    """(in state.owned, comment) for one way a partition can stand towards partman."""
    return {
        "owned": (True, CREATED),
        "adopted": (True, owner_comment("adopted")),
        "drift": (True, "the DBA's own note"),  # owned, but the comment was replaced
        "foreign": (False, None),
        "foreign-commented": (False, CREATED),  # copied comment, never recorded as owned
    }[kind]


class _Builder:
    """Collects partitions of one parent, with unique names and oids."""

    def __init__(self, table: TableRecord, oid_base: int) -> None:
        self.table = table
        self.partitions: list[PartitionInfo] = []
        self.owned: dict[tuple[str, str], OwnedPartition] = {}
        self.oids = itertools.count(oid_base)
        self.names: set[str] = set()

    def add(
        self,
        name: str,
        tenant: TenantValue | None,
        lower: BoundValue,
        upper: BoundValue,
        owner: str,
        **extra: bool,
    ) -> PartitionInfo:
        base, n = name, 1
        while name in self.names:
            name, n = f"{base[:58]}_{n}", n + 1
        self.names.add(name)
        key_lo = (lower,) if tenant is None else (tenant, lower)
        key_hi = (upper,) if tenant is None else (tenant, upper)
        is_owned, comment = ownership(owner)
        p = PartitionInfo(
            oid=next(self.oids),
            schema=self.table.schema,
            name=name,
            bound_text=f"FOR VALUES FROM {key_lo} TO {key_hi}",
            bound=RangeBound(key_lo, key_hi),
            comment=comment,
            estimated_rows=None,
            detach_pending=extra.get("detach_pending", False),
            sub_strategy="r" if extra.get("is_partitioned") else None,
        )
        self.partitions.append(p)
        if is_owned:
            self.owned[(p.schema, p.name)] = OwnedPartition(
                p.schema,
                p.name,
                self.table.schema,
                self.table.name,
                tenant_text(tenant),
                "created" if owner == "owned" else "adopted",
            )
        return p


def make_parent(
    table: TableRecord, layout: Layout, partitions: Sequence[PartitionInfo]
) -> ParentInfo:
    time_col = TIME_COLUMNS[layout.time_kind]
    key: tuple[KeyColumn, ...] = (time_col,)
    if layout.tenant_kind is not None:
        key = (TENANT_COLUMNS[layout.tenant_kind], time_col)
    columns = {c.name: c for c in key}
    columns["payload"] = KeyColumn("payload", "jsonb", "jsonb", -1)
    return ParentInfo(
        oid=1000 * table.id,
        schema=table.schema,
        name=table.name,
        relkind="p",
        strategy="r",
        key=key,
        columns=columns,
        partitions=tuple(partitions),
    )


TEXT_TENANTS = ["acme", "Acme", "globex", "a b", "a-b", "日本", "x" * 70, "o'brien, (ltd)"]


def tenant_ids(kind: ColumnKind) -> st.SearchStrategy[TenantValue]:
    if kind is TEXT:
        return st.sampled_from(TEXT_TENANTS)
    if kind is INT:
        return st.integers(-(2**63), 2**63 - 1)
    return st.uuids()


@st.composite
def nows(draw: st.DrawFn, zone: ZoneInfo) -> dt.datetime:
    """Instants in 2000..2100: often within a day or two of a DST change, often exactly on an
    hour or a local midnight (so that cutoffs fall exactly on partition bounds)."""
    how = draw(st.sampled_from(["dst", "dst", "boundary", "anywhen"]))
    if how == "dst":
        year = draw(st.integers(2000, 2099))
        day = draw(st.sampled_from(dst_days(zone.key, year)))
        wall = dt.datetime(day.year, day.month, day.day, tzinfo=zone)
        offset = draw(st.one_of(st.integers(-36, 60).map(lambda h: h * 3600), dst_seconds))
        return (wall + dt.timedelta(seconds=offset)).astimezone(UTC)
    if how == "boundary":
        day = draw(st.dates(dt.date(2000, 1, 10), dt.date(2100, 12, 20)))
        hour = draw(st.sampled_from([0, 0, 1, 2, 3, 12, 23]))
        return dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone).astimezone(UTC)
    return draw(
        st.datetimes(dt.datetime(2000, 1, 10), dt.datetime(2100, 12, 20), timezones=st.just(UTC))
    )


dst_seconds = st.integers(-36 * 3600, 60 * 3600)


@st.composite
def layouts(draw: st.DrawFn, zone: ZoneInfo, intervals: Sequence[str] = INTERVALS) -> Layout:
    time_kind = draw(st.sampled_from([TSTZ, TSTZ, TS, DATE]))
    choices = [i for i in intervals if not (time_kind is DATE and i == "1 hour")] or ["1 day"]
    return Layout(
        interval=draw(st.sampled_from(choices)),
        zone=zone,
        time_kind=time_kind,
        tenant_kind=draw(st.sampled_from([TEXT, TEXT, INT, UUID, None])),
    )


ZERO = dt.timedelta(0)
ODD_OFFSETS = [dt.timedelta(minutes=30), 6 * HOUR, DAY + 6 * HOUR, 3 * DAY + 6 * HOUR]
ODD_LENGTHS = [HOUR, 6 * HOUR, DAY, 2 * DAY, 10 * DAY, 40 * DAY]
DAYS = [DAY, 2 * DAY]
DAYS_LONG = [DAY, 2 * DAY, 10 * DAY, 40 * DAY]


@dataclass(frozen=True)
class OddShape:
    """A partition that is not one period: where it starts, how long, whose, what it is called."""

    period: int  # the period (from now's) it starts in
    offset: int  # index into the offsets that fit the period
    length: int
    unbounded: bool  # FROM MINVALUE instead
    plain_name: bool
    owner: str


odd_shapes = st.lists(
    st.builds(
        OddShape,
        st.integers(-3, 14),
        st.integers(0, 3),
        st.integers(0, 5),
        st.integers(0, 5).map(lambda n: n == 0),
        st.booleans(),
        st.sampled_from(OWNERSHIP),
    ),
    max_size=3,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, int, set[int], dict[int, str]]:
    """Periods -history..ahead were made by earlier passes, less a few holes; a few of them were
    adopted, drifted or are foreign."""
    history = draw(st.integers(0, 30))
    ahead = draw(st.integers(-1, 14))
    holes = draw(st.sets(st.integers(-30, 14), max_size=3))
    owners = draw(st.dictionaries(st.integers(-30, 14), st.sampled_from(OWNERSHIP[3:]), max_size=4))
    return history, ahead, holes, owners


@st.composite
def table_world(
    draw: st.DrawFn,
    table_id: int,
    name: str,
    zone: ZoneInfo,
    now: dt.datetime,
    *,
    odd: bool = True,
    backfill: bool | None = None,
) -> tuple[TableRecord, Layout, list[TenantRecord], _Builder]:
    """One managed table, its tenants, and a history of partitions for each of them."""
    layout = draw(layouts(zone))
    table = TableRecord(
        id=table_id,
        schema="public",
        name=name,
        tenant_column=None if layout.tenant_kind is None else "tenant",
        time_column="at",
        interval=Interval.parse(layout.interval),
        retention=parse_retention(draw(st.sampled_from(RETENTIONS))),
        partition_count=draw(st.integers(0, 12)),
        backfill=draw(st.booleans()) if backfill is None else backfill,
    )
    records: list[TenantRecord] = []
    tenants: list[TenantValue | None] = [None]
    if layout.tenant_kind is not None:
        tenants = draw(
            st.lists(tenant_ids(layout.tenant_kind), min_size=1, max_size=3, unique=True)
        )
        for t in tenants:
            retention = draw(st.sampled_from([None, None, FOREVER, *RETENTIONS[1:]]))
            count = draw(st.one_of(st.none(), st.integers(0, 12)))
            records.append(TenantRecord(table_id, str(t), retention, count))
    builder = _Builder(table, oid_base=1000 * table_id + 1)
    sub_day = layout.interval == "1 hour"
    whole_days = layout.time_kind is DATE
    for tenant in tenants:
        taken: list[tuple[dt.datetime | None, dt.datetime | None]] = []
        for shape in draw(odd_shapes) if odd else []:
            i = min(shape.period, table.partition_count + 2)
            lo, hi = layout.start(now, i), layout.start(now, i + 1)
            offsets = [o for o in (DAYS if whole_days else ODD_OFFSETS) if o < hi - lo] or [ZERO]
            start = lo + offsets[shape.offset % len(offsets)]
            lengths = DAYS_LONG if whole_days else ODD_LENGTHS
            end = start + lengths[shape.length % len(lengths)]
            lower: BoundValue = layout.value(start)
            span: tuple[dt.datetime | None, dt.datetime] = (start, end)
            if shape.unbounded:  # from MINVALUE to the start of the period
                lower, end, span = Special.MINVALUE, lo, (None, lo)
            if any(overlaps((span[0] or lo - 10**4 * DAY, end), s) for s in taken):
                continue
            taken.append(span)
            label = period_label(lo.astimezone(layout.align_tz), sub_day=sub_day)
            # half of them take the name partman would give the period they start in
            odd_name = partition_name(name, tenant, label) if shape.plain_name else "odd"
            builder.add(odd_name, tenant, lower, layout.value(end), shape.owner)
        history, ahead, holes, owners = draw(histories())
        for i in range(-history, ahead + 1):
            lo, hi = layout.start(now, i), layout.start(now, i + 1)
            if i in holes or any(overlaps((lo, hi), s) for s in taken):
                continue
            label = period_label(lo.astimezone(layout.align_tz), sub_day=sub_day)
            builder.add(
                partition_name(name, tenant, label),
                tenant,
                layout.value(lo),
                layout.value(hi),
                owners.get(i, "owned"),  # mostly partman's own
            )
    if draw(st.integers(0, 4)) == 0:
        default = PartitionInfo(
            oid=next(builder.oids),
            schema=table.schema,
            name=f"{name}_default",
            bound_text="DEFAULT",
            bound=RangeBound((), (), is_default=True),
            comment=None,
            estimated_rows=None,
            detach_pending=False,
            sub_strategy=None,
        )
        builder.partitions.append(default)
    return table, layout, records, builder


@st.composite
def worlds(draw: st.DrawFn, *, odd: bool = True, backfill: bool | None = None) -> World:
    zone = draw(st.sampled_from(ZONES))
    now = draw(nows(zone))
    table, layout, records, builder = draw(
        table_world(1, "events", zone, now, odd=odd, backfill=backfill)
    )
    return World(
        state=State(tables=(table,), tenants={1: tuple(records)}, owned=dict(builder.owned)),
        catalog={("public", "events"): make_parent(table, layout, builder.partitions)},
        now=now,
        zone=zone,
        layouts={1: layout},
    )


def apply(world: World, the_plan: Plan) -> World:
    """What executing the plan does to the world: creates owned + commented, drops removed."""
    catalog = dict(world.catalog)
    owned = dict(world.state.owned)
    oids = itertools.count(10**9)
    for op in the_plan.operations:
        key = (op.parent_schema, op.parent_name)
        parent = catalog[key]
        if isinstance(op, CreatePartition):
            p = PartitionInfo(
                oid=next(oids),
                schema=op.partition_schema,
                name=op.partition_name,
                bound_text="",
                bound=RangeBound(op.lower_key, op.upper_key),
                comment=CREATED,
                estimated_rows=0,
                detach_pending=False,
                sub_strategy=None,
            )
            catalog[key] = replace(parent, partitions=(*parent.partitions, p))
            owned[(p.schema, p.name)] = OwnedPartition(
                p.schema,
                p.name,
                op.parent_schema,
                op.parent_name,
                tenant_text(op.tenant),
                "created",
            )
        else:
            assert isinstance(op, DropPartition)
            remaining = tuple(
                p
                for p in parent.partitions
                if (p.schema, p.name) != (op.partition_schema, op.partition_name)
            )
            assert len(remaining) == len(parent.partitions) - 1, f"{op.partition_name} not found"
            catalog[key] = replace(parent, partitions=remaining)
            owned.pop((op.partition_schema, op.partition_name), None)
    state = replace(world.state, owned=owned)
    return replace(world, state=state, catalog=catalog)


def creates_ending_before_cutoff(world: World, the_plan: Plan) -> list[CreatePartition]:
    """Creates that the same retention would drop on the next pass."""
    out = []
    for table in world.state.tables:
        if (table.schema, table.name) not in world.catalog:
            continue
        for pol in policies(world, table.id):
            c = cutoff(world, table.id, pol.retention)
            for op in the_plan.creates:
                assert isinstance(op, CreatePartition)
                if (
                    op.parent_name == table.name
                    and op.tenant == pol.tenant
                    and c is not None
                    and aligned(op.upper) <= c
                ):
                    out.append(op)
    return out


def period_of(layout: Layout, now: dt.datetime, t: dt.datetime) -> int:
    """k with start(k) <= t < start(k + 1)."""
    k = 0
    if layout.interval == "1 hour":
        k = (t - layout.start(now, 0)) // HOUR
    while layout.start(now, k) > t:
        k -= 1
    while layout.start(now, k + 1) <= t:
        k += 1
    return k


def uncovered(
    lo: dt.datetime, hi: dt.datetime, spans: Iterable[tuple[dt.datetime | None, dt.datetime | None]]
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Parts of [lo, hi) no span covers."""
    holes = [(lo, hi)]
    for s_lo, s_hi in spans:
        a = s_lo or dt.datetime.min.replace(tzinfo=UTC)
        b = s_hi or dt.datetime.max.replace(tzinfo=UTC)
        nxt = []
        for h_lo, h_hi in holes:
            if b <= h_lo or a >= h_hi:
                nxt.append((h_lo, h_hi))
                continue
            if h_lo < a:
                nxt.append((h_lo, a))
            if b < h_hi:
                nxt.append((b, h_hi))
        holes = nxt
    return holes


# -- (a) idempotence -------------------------------------------------------------------------


@PROPERTY
@given(worlds())
def test_planning_again_after_applying_the_plan_does_nothing(world: World) -> None:
    first = world.plan()
    after = apply(world, first)
    second = after.plan()
    known = creates_ending_before_cutoff(after, second)
    assert [op for op in second.operations if op not in known] == [], str(second)
    # and the notices are about what is still there
    names = {p.qualified_name for p in after.parent(1).partitions}
    assert all(n.partition is None or n.partition in names for n in second.notices)


# -- (b) coverage ----------------------------------------------------------------------------


@PROPERTY
@given(worlds())
def test_every_tenant_is_covered_from_the_current_period_through_partition_count_ahead(
    world: World,
) -> None:
    after = apply(world, world.plan())
    layout = after.layouts[1]
    for pol in policies(after, 1):
        lo, hi = layout.start(after.now, 0), layout.start(after.now, pol.count + 1)
        c = cutoff(after, 1, pol.retention)
        if c is not None and c > lo:
            lo = c  # what retention has already dropped is not brought back
        spans = [time_range(p) for p in tenant_partitions(after, 1, pol.tenant)]
        assert uncovered(lo, hi, spans) == [], (pol, lo, hi)


@PROPERTY
@given(worlds())
def test_no_two_partitions_of_one_tenant_overlap_after_applying_the_plan(world: World) -> None:
    after = apply(world, world.plan())
    for pol in policies(after, 1):
        spans = sorted(
            (time_range(p) for p in tenant_partitions(after, 1, pol.tenant)),
            key=lambda s: s[0] or dt.datetime.min.replace(tzinfo=UTC),
        )
        for (_, prev_hi), (lo, _) in itertools.pairwise(spans):
            assert prev_hi is not None and lo is not None and prev_hi <= lo, spans


# -- (c) drops -------------------------------------------------------------------------------


@PROPERTY
@given(worlds())
def test_drops_are_exactly_the_owned_partitions_past_their_tenants_retention(
    world: World,
) -> None:
    the_plan = world.plan()
    has_tenant = world.table(1).tenant_column is not None
    expected: set[str] = set()
    for pol in policies(world, 1):
        c = cutoff(world, 1, pol.retention)
        for p in tenant_partitions(world, 1, pol.tenant):
            lo, hi = time_range(p)
            if c is None or lo is None or hi is None or hi > c:
                continue
            if (p.schema, p.name) in world.state.owned and is_owner_comment(p.comment):
                expected.add(p.name)
    dropped = {op.partition_name for op in the_plan.drops}
    assert dropped == expected
    by_name = {p.name: p for p in world.parent(1).partitions}
    for op in the_plan.drops:
        assert isinstance(op, DropPartition)
        p = by_name[op.partition_name]
        assert op.tenant == tenant_of(p, has_tenant)
        assert (op.lower, op.upper) == (p.bound.lower[-1], p.bound.upper[-1])  # type: ignore[union-attr]
        assert op.oid == p.oid
    kinds = [op.kind for op in the_plan.operations]
    assert kinds == sorted(kinds, key=lambda k: k != "create")  # creates first


@PROPERTY
@given(worlds())
def test_expired_partitions_partman_does_not_own_are_kept_and_reported(world: World) -> None:
    the_plan = world.plan()
    dropped = {op.partition_name for op in the_plan.drops}
    reported = {n.partition for n in the_plan.notices}
    for pol in policies(world, 1):
        c = cutoff(world, 1, pol.retention)
        if c is None:
            continue
        for p in tenant_partitions(world, 1, pol.tenant):
            _, hi = time_range(p)
            if hi is None or hi > c:
                continue
            owned = (p.schema, p.name) in world.state.owned and is_owner_comment(p.comment)
            if not owned or time_range(p)[0] is None:
                assert p.name not in dropped
                assert p.qualified_name in reported
    # a notice about a partition names it in its text (a log line or a plan shows only that)
    assert all(n.partition is None or n.partition in n.message for n in the_plan.notices)


@pytest.mark.parametrize(
    ("owner", "dropped"),
    [
        ("owned", True),
        ("adopted", True),
        ("drift", False),
        ("foreign", False),
        ("foreign-commented", False),
    ],
)
def test_only_partitions_recorded_as_owned_and_still_commented_are_dropped(
    owner: str, dropped: bool
) -> None:
    now = dt.datetime(2024, 3, 20, 12, tzinfo=UTC)
    layout = Layout("1 day", UTC_ZONE, TSTZ, TEXT)
    table = TableRecord(
        1,
        "public",
        "events",
        "tenant",
        "at",
        Interval.parse("1 day"),
        parse_retention("3 days"),
        0,
        False,
    )
    b = _Builder(table, 1)
    old = b.add(
        "events_acme_p20240301", "acme", layout.start(now, -19), layout.start(now, -18), owner
    )
    current = b.add(
        "events_acme_p20240320", "acme", layout.start(now, 0), layout.start(now, 1), owner
    )
    world = World(
        State((table,), {1: (TenantRecord(1, "acme", None, None),)}, dict(b.owned)),
        {("public", "events"): make_parent(table, layout, b.partitions)},
        now,
        UTC_ZONE,
        {1: layout},
    )
    the_plan = world.plan()
    assert [op.partition_name for op in the_plan.drops] == ([old.name] if dropped else [])
    assert current.name not in {op.partition_name for op in the_plan.operations}
    warnings = [n for n in the_plan.notices if n.level == "warning"]
    assert [n.partition for n in warnings] == ([] if dropped else [old.qualified_name])
    assert all(old.qualified_name in n.message for n in warnings)


# -- (d) per-tenant retention ----------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    data=st.data(),
    interval=st.sampled_from(["1 hour", "1 day"]),
    retentions=st.lists(
        st.sampled_from([FOREVER, *RETENTIONS[1:]]), min_size=2, max_size=2, unique=True
    ),
)
def test_tenants_with_different_retention_get_different_drops(
    zone: ZoneInfo, data: st.DataObject, interval: str, retentions: list[str]
) -> None:
    now = data.draw(nows(zone))
    layout = Layout(interval, zone, TSTZ, TEXT)
    table = TableRecord(
        1, "public", "events", "tenant", "at", Interval.parse(interval), None, 2, False
    )
    b = _Builder(table, 1)
    back = 35 * (24 if interval == "1 hour" else 1)  # more than a month of identical history
    for tenant in ("a", "b"):
        for i in range(-back, 3):
            lo, hi = layout.start(now, i), layout.start(now, i + 1)
            b.add(f"{tenant}_{i}", tenant, lo, hi, "owned")
    records = tuple(TenantRecord(1, t, r, None) for t, r in zip("ab", retentions, strict=True))
    world = World(
        State((table,), {1: records}, dict(b.owned)),
        {("public", "events"): make_parent(table, layout, b.partitions)},
        now,
        zone,
        {1: layout},
    )
    the_plan = world.plan()
    drops = {
        t: {(op.lower, op.upper) for op in the_plan.drops if op.tenant == t} for t in ("a", "b")
    }
    assert drops["a"] != drops["b"]
    for t, retention in zip("ab", retentions, strict=True):
        c = cutoff(world, 1, None if retention == FOREVER else retention)
        expected = {
            (layout.start(now, i), layout.start(now, i + 1))
            for i in range(-back, 3)
            if c is not None and layout.start(now, i + 1) <= c
        }
        assert drops[t] == expected
    order = {FOREVER: 99, "1 day": 1, "3 days": 3, "1 month": 30}
    shorter, longer = sorted("ab", key=lambda t: order[retentions["ab".index(t)]])
    assert drops[shorter] > drops[longer]


# -- (e) odd partitions ----------------------------------------------------------------------


@PROPERTY
@given(worlds())
def test_creates_fill_only_gaps_and_never_overlap_existing_partitions(world: World) -> None:
    the_plan = world.plan()
    layout = world.layouts[1]
    for op in the_plan.creates:
        assert isinstance(op, CreatePartition)
        span = (aligned(op.lower), aligned(op.upper))
        assert span[0] < span[1]
        existing = tenant_partitions(world, 1, op.tenant)
        clashes = [p.name for p in existing if overlaps(span, time_range(p))]
        assert clashes == [], (op.partition_name, span, clashes)
        # a create never crosses a period boundary: it is a whole period or a gap inside one
        k = period_of(layout, world.now, span[0])
        assert span[1] <= layout.start(world.now, k + 1), (op.partition_name, span)
        whole = span == (layout.start(world.now, k), layout.start(world.now, k + 1))
        assert whole or "gap" in op.reason
        assert op.lower_key[-1] == op.lower and op.upper_key[-1] == op.upper
        assert op.lower_key[:-1] == op.upper_key[:-1] == (() if op.tenant is None else (op.tenant,))
    spans = sorted((aligned(op.lower), aligned(op.upper), op.tenant) for op in the_plan.creates)
    for a, b in itertools.combinations(spans, 2):
        if a[2] == b[2]:
            assert a[1] <= b[0] or b[1] <= a[0], (a, b)


def test_a_misaligned_partition_from_six_oclock_leaves_only_the_gaps_to_create() -> None:
    zone = ZoneInfo("Europe/Berlin")
    now = dt.datetime(2024, 3, 31, 12, tzinfo=zone)  # the day Berlin springs forward
    layout = Layout("1 day", zone, TSTZ, TEXT)
    table = TableRecord(
        1, "public", "events", "tenant", "at", Interval.parse("1 day"), None, 2, False
    )
    b = _Builder(table, 1)
    six = dt.datetime(2024, 3, 31, 6, tzinfo=zone).astimezone(UTC)
    noon_next = dt.datetime(2024, 4, 1, 12, tzinfo=zone).astimezone(UTC)
    b.add("events_acme_p20240331", "acme", six, noon_next, "foreign")  # takes the plain name
    world = World(
        State((table,), {1: (TenantRecord(1, "acme", None, None),)}, {}),
        {("public", "events"): make_parent(table, layout, b.partitions)},
        now.astimezone(UTC),
        zone,
        {1: layout},
    )
    got = [(op.lower, op.upper) for op in world.plan().creates]
    local = [(lo.astimezone(zone), hi.astimezone(zone)) for lo, hi in got]  # type: ignore[union-attr]
    assert local == [
        (dt.datetime(2024, 3, 31, tzinfo=zone), dt.datetime(2024, 3, 31, 6, tzinfo=zone)),
        (dt.datetime(2024, 4, 1, 12, tzinfo=zone), dt.datetime(2024, 4, 2, tzinfo=zone)),
        (dt.datetime(2024, 4, 2, tzinfo=zone), dt.datetime(2024, 4, 3, tzinfo=zone)),
    ]
    names = [op.partition_name for op in world.plan().creates]
    assert "events_acme_p20240331" not in names
    assert len(set(names)) == 3


# -- names -----------------------------------------------------------------------------------


@PROPERTY
@given(worlds())
def test_created_names_are_unique_new_and_fit_in_63_bytes(world: World) -> None:
    the_plan = world.plan()
    existing = {p.name for p in world.parent(1).partitions}
    names = [op.partition_name for op in the_plan.creates]
    assert len(names) == len(set(names))
    assert not existing & set(names)
    assert all(len(n.encode()) <= 63 for n in names)


# -- (f) broken tables -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(), broken=st.sampled_from(["missing", "plain", "list", "expression", "other-key"])
)
def test_a_missing_or_unpartitioned_table_is_reported_and_the_others_still_planned(
    data: st.DataObject, broken: str
) -> None:
    world = data.draw(worlds())
    alone = world.plan()
    bad = TableRecord(
        2, "public", "broken", "tenant", "at", Interval.parse("1 day"), None, 3, False
    )
    state = replace(world.state, tables=(bad, *world.state.tables))
    catalog = dict(world.catalog)
    good_layout = Layout("1 day", world.zone, TSTZ, TEXT)
    parent = make_parent(bad, good_layout, [])
    if broken == "plain":
        catalog[("public", "broken")] = replace(parent, relkind="r", strategy=None, key=None)
    elif broken == "list":
        catalog[("public", "broken")] = replace(parent, strategy="l")
    elif broken == "expression":
        catalog[("public", "broken")] = replace(parent, key=None)
    elif broken == "other-key":
        catalog[("public", "broken")] = replace(parent, key=(parent.key[1],))  # type: ignore[index]
    both = plan(state, catalog, world.now, world.zone)
    errors = [n for n in both.notices if n.level == "error"]
    assert [n.table for n in errors] == ["public.broken"]
    assert all(op.parent_name != "broken" for op in both.operations)
    assert [op.to_dict() for op in both.operations] == [op.to_dict() for op in alone.operations]
    assert "public.broken" in both.tables


# -- known bugs ------------------------------------------------------------------------------


def _one_tenant_world(
    *partitions: tuple[str, dt.datetime, dt.datetime, dict[str, bool]],
    interval: str = "1 day",
    retention: str | None = None,
    count: int = 0,
    now: dt.datetime = dt.datetime(2024, 1, 17, 12, tzinfo=UTC),  # a Wednesday
) -> World:
    layout = Layout(interval, UTC_ZONE, TSTZ, TEXT)
    table = TableRecord(
        1,
        "public",
        "events",
        "tenant",
        "at",
        Interval.parse(interval),
        parse_retention(retention),
        count,
        False,
    )
    b = _Builder(table, 1)
    for name, lo, hi, extra in partitions:
        b.add(name, "acme", lo, hi, "owned", **extra)
    return World(
        State((table,), {1: (TenantRecord(1, "acme", None, None),)}, dict(b.owned)),
        {("public", "events"): make_parent(table, layout, b.partitions)},
        now,
        UTC_ZONE,
        {1: layout},
    )


@settings(max_examples=40, deadline=None)
@given(worlds())
@example(
    _one_tenant_world(
        # weekly partitions, 1 day retention: an odd partition covers Mon 06:00..Tue 00:00 of
        # the current week, so the gap Mon 00:00..06:00 ends before the cutoff (Tue 12:00)
        ("odd", dt.datetime(2024, 1, 15, 6, tzinfo=UTC), dt.datetime(2024, 1, 16, tzinfo=UTC), {}),
        interval="1 week",
        retention="1 day",
    )
)
def test_no_create_ends_at_or_before_its_tenants_retention_cutoff(world: World) -> None:
    assert creates_ending_before_cutoff(world, world.plan()) == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"detach_pending": True}, id="detach-pending"),
        pytest.param({"is_partitioned": True}, id="sub-partitioned"),
    ],
)
def test_partitions_partman_leaves_alone_still_cover_their_range(extra: dict[str, bool]) -> None:
    day = dt.datetime(2024, 1, 17, tzinfo=UTC)
    world = _one_tenant_world(("busy", day, day + DAY, extra))
    assert list(world.plan().creates) == []


def test_partition_names_are_unique_across_the_tables_of_one_schema() -> None:
    now = dt.datetime(2024, 1, 17, 12, tzinfo=UTC)
    tenanted = TableRecord(
        1, "public", "events", "tenant", "at", Interval.parse("1 day"), None, 0, False
    )
    plain = TableRecord(
        2, "public", "events_acme", None, "at", Interval.parse("1 day"), None, 0, False
    )
    world = World(
        State((tenanted, plain), {1: (TenantRecord(1, "acme", None, None),)}, {}),
        {
            ("public", "events"): make_parent(tenanted, Layout("1 day", UTC_ZONE, TSTZ, TEXT), []),
            ("public", "events_acme"): make_parent(
                plain, Layout("1 day", UTC_ZONE, TSTZ, None), []
            ),
        },
        now,
        UTC_ZONE,
        {1: Layout("1 day", UTC_ZONE, TSTZ, TEXT), 2: Layout("1 day", UTC_ZONE, TSTZ, None)},
    )
    names = [(op.partition_schema, op.partition_name) for op in world.plan().creates]
    assert len(names) == 2
    assert len(set(names)) == 2, names


def test_a_tenant_id_the_column_cannot_hold_is_reported_and_other_tables_still_planned() -> None:
    now = dt.datetime(2024, 1, 17, 12, tzinfo=UTC)
    good = TableRecord(
        1, "public", "events", "tenant", "at", Interval.parse("1 day"), None, 0, False
    )
    recreated = TableRecord(
        2, "public", "orders", "tenant", "at", Interval.parse("1 day"), None, 0, False
    )
    layouts = {1: Layout("1 day", UTC_ZONE, TSTZ, TEXT), 2: Layout("1 day", UTC_ZONE, TSTZ, INT)}
    world = World(
        State(
            (recreated, good),
            {1: (TenantRecord(1, "acme", None, None),), 2: (TenantRecord(2, "acme", None, None),)},
            {},
        ),
        {
            ("public", "events"): make_parent(good, layouts[1], []),
            ("public", "orders"): make_parent(recreated, layouts[2], []),
        },
        now,
        UTC_ZONE,
        layouts,
    )
    try:
        the_plan = world.plan()
    except ValueError as error:
        raise AssertionError(f"plan() raised instead of reporting: {error}") from error
    assert [n.table for n in the_plan.notices if n.level == "error"] == ["public.orders"]
    assert [op.parent_name for op in the_plan.creates] == ["events"]


def _gaps_the_plain_way(
    lower: dt.datetime, upper: dt.datetime, pieces: Sequence[Piece]
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Every piece looked at, for every period: what `gaps` must agree with."""
    result = []
    cursor = lower
    for piece in pieces:
        if piece.upper <= cursor or piece.lower >= upper:
            continue
        if piece.lower > cursor:
            result.append((cursor, piece.lower))
        cursor = max(cursor, piece.upper)
    if cursor < upper:
        result.append((cursor, upper))
    return result


spans = st.tuples(st.integers(-30, 300), st.integers(1, 120))  # (start, length), in hours


@PROPERTY
@given(st.lists(spans, max_size=25), st.integers(1, 48), st.integers(-48, 48))
def test_period_by_period_shortcuts_find_the_gaps_every_piece_would(
    raw: list[tuple[int, int]], period: int, first: int
) -> None:
    """premake skips the pieces that ended before the period under way, and stops looking at
    one that covers the whole period: the gaps are those a look at every piece finds."""
    base = dt.datetime(2026, 1, 1, tzinfo=UTC)
    fake = PartitionInfo(0, "s", "p", "", None, None, None, False, None)
    pieces = sorted(
        (Piece(base + a * HOUR, base + (a + n) * HOUR, fake, True) for a, n in raw),
        key=lambda p: (p.lower, p.upper),
    )
    skip = 0
    for k in range(first, first + 300 // period + 2):
        lo, hi = base + k * period * HOUR, base + (k + 1) * period * HOUR
        while skip < len(pieces) and pieces[skip].upper <= lo:
            skip += 1
        expected = _gaps_the_plain_way(lo, hi, pieces)
        if skip < len(pieces) and pieces[skip].lower <= lo and pieces[skip].upper >= hi:
            assert expected == []
        assert gaps(lo, hi, pieces, skip) == expected
