"""Roll-ups without a server: the rules of rollup_after/rollup_interval (Python and
partman.toml), and the planning of roll-ups (hypothesis: never overlapping, only partman's
own fine partitions wholly past the cutoff, aligned to the coarse interval)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from builders import CREATED, catalog, owned, parent, partition, record, state
from hypothesis import event, given, settings
from hypothesis import strategies as st

import partman
from partman.decide.planner import plan
from partman.model.intervals import Interval, parse_retention
from partman.model.operations import ForgetPartition, RollupPartition
from partman.model.rollup import alignment_error
from partman.model.snapshot import OwnedPartition, PartitionInfo, TableRecord, TenantRecord

UTC = dt.UTC
ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


# -- the rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fine", "coarse"),
    [
        ("1 day", "1 month"),
        ("1 day", "1 week"),
        ("1 day", "3 months"),
        ("1 hour", "1 day"),
        ("15 minutes", "1 day"),
        ("1 hour", "1 month"),
        ("1 week", "4 weeks"),
        ("1 month", "1 year"),
        ("1 month", "3 months"),
        ("6 hours", "12 hours"),
    ],
)
def test_coarse_periods_made_of_whole_fine_ones_are_accepted(fine: str, coarse: str) -> None:
    assert alignment_error(Interval.parse(fine), Interval.parse(coarse)) is None
    partman.Table(
        name="e", partition_by="t", partition_interval=fine, rollup_after="400 days",
        rollup_interval=coarse,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fine", "coarse", "why"),
    [
        ("1 week", "1 month", "months do not start on 1 week boundaries"),
        ("7 days", "1 month", "months do not start on 1 week boundaries"),
        ("2 days", "1 month", "months do not start on 2 days boundaries"),
        ("1 day", "1 day", "is partition_interval itself"),
        ("1 month", "1 week", "shorter than"),
        ("2 months", "3 months", "not a whole number of 2 months"),
        ("1 week", "10 days", "not a whole number of 1 week"),
        ("1 day", "12 hours", "not longer than"),
        ("45 minutes", "1 day", "DST shift"),
    ],
)
def test_a_coarse_interval_that_does_not_fit_is_refused_naming_the_fix(
    fine: str, coarse: str, why: str
) -> None:
    with pytest.raises(partman.ConfigError, match=why) as raised:
        partman.Table(
            name="e", partition_by="t", partition_interval=fine, rollup_after="400 days",
            rollup_interval=coarse,
        )  # fmt: skip
    assert raised.value.field == "rollup_interval"
    assert "choose a rollup_interval made of whole partitions" in str(raised.value)


def test_rollup_rules_between_fields() -> None:
    base = {"name": "e", "partition_by": "t", "rollup_interval": "1 month"}
    with pytest.raises(partman.ConfigError, match="go together") as raised:
        partman.Table(**base)  # type: ignore[arg-type]
    assert raised.value.field == "rollup_after"
    with pytest.raises(partman.ConfigError, match="not shorter than retention_period"):
        partman.Table(**base, rollup_after="90 days", retention_period="60 days")  # type: ignore[arg-type]
    with pytest.raises(partman.ConfigError, match="roll-ups are for time keys"):
        partman.Table(
            name="e", partition_by="id", partition_interval=1000, rollup_after="9 days",
            rollup_interval="1 month",
        )  # fmt: skip
    with pytest.raises(partman.ConfigError, match="HASH-partitioned"):
        partman.Table(
            **base,
            rollup_after="90 days",
            sub_partition_by="d",
            sub_partition_modulus=4,  # type: ignore[arg-type]
        )
    with pytest.raises(partman.ConfigError, match="rollup_after"):
        partman.Table(**base, rollup_after="soon")  # type: ignore[arg-type]
    table = partman.Table(**base, rollup_after="90 days", retention_period="1 year")  # type: ignore[arg-type]
    stored = TableRecord.from_table(table)
    assert stored.rollup_after == parse_retention("90 days")
    assert stored.rollup_interval == Interval.parse("1 month")


def test_partman_toml_keys_for_rollups() -> None:
    from partman.settings import parse

    base = '[[table]]\nname = "e"\npartition_by = "t"\nretention_period = "1 year"\n'
    good = parse(base + 'rollup_after = "90 days"\nrollup_interval = "1 month"\n', environ={})
    assert good.problems == ()
    assert good.tables[0].table.rollup_interval == "1 month"
    weekly = parse(
        base + 'partition_interval = "1 week"\nrollup_after = "90 days"\n'
        'rollup_interval = "1 month"\n',
        environ={},
    )
    assert [str(p) for p in weekly.problems] == [
        "partman.toml:7: table[0].rollup_interval: Table 'e': rollup_interval 1 month does not "
        "fit partition_interval 1 week: months do not start on 1 week boundaries; choose a "
        "rollup_interval made of whole partitions (e.g. '1 day' -> '1 month', '1 hour' -> "
        "'1 day', '1 week' -> '4 weeks')"
    ]
    wrong = parse(base + 'rollup_after = 5\nrollup_interval = "1 month"\n', environ={})
    assert [p.key for p in wrong.problems] == ["table[0].rollup_after"]
    assert wrong.problems[0].line == 5


# -- planning --------------------------------------------------------------------------------


def rolling(table: TableRecord, after: str = "90 days", coarse: str = "1 month") -> TableRecord:
    return dataclasses.replace(
        table, rollup_after=parse_retention(after), rollup_interval=Interval.parse(coarse)
    )


def days(first: dt.date, count: int) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for i in range(count):
        day = first + dt.timedelta(days=i)
        lo = dt.datetime.combine(day, dt.time(), UTC)
        out.append((lo, lo + dt.timedelta(days=1)))
    return out


def test_a_month_with_a_foreign_partition_is_left_fine_with_a_notice() -> None:
    table = rolling(record(tenant_column=None, partition_count=1))
    parts = [
        partition(f"events_p{lo:%Y%m%d}", lo, hi, comment=CREATED)
        for lo, hi in days(dt.date(2026, 1, 1), 59)
    ]
    foreign = {"events_p20260110"}
    records = [owned(p, table) for p in parts if p.name not in foreign]
    the_plan = plan(
        state([table], owned=records),
        catalog(parent(parts, tenant=None)),
        dt.datetime(2026, 6, 1, tzinfo=UTC),
        ZONE,
    )
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert [(op.lower, op.upper) for op in rolls] == [
        (dt.datetime(2026, 2, 1, tzinfo=UTC), dt.datetime(2026, 3, 1, tzinfo=UTC))
    ]
    assert any(
        "left as it is" in n.message and "events_p20260110" in n.message for n in the_plan.notices
    )


def test_a_staging_table_is_resumed_or_dropped() -> None:
    table = rolling(record(tenant_column=None, partition_count=1))
    parts = [
        partition(f"events_p{lo:%Y%m%d}", lo, hi, comment=CREATED)
        for lo, hi in days(dt.date(2026, 1, 1), 31)
    ]
    staging = OwnedPartition(
        "public", "events_p20260101_20260201", "public", "events", None, "created",
        "staging", "rollup", "2026-01-01 00:00:00+00:00", "2026-02-01 00:00:00+00:00",
        True, False,
    )  # fmt: skip
    records = [owned(p, table) for p in parts] + [staging]
    now = dt.datetime(2026, 6, 1, tzinfo=UTC)
    the_plan = plan(state([table], owned=records), catalog(parent(parts, tenant=None)), now, ZONE)
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert len(rolls) == 1 and rolls[0].resume and not rolls[0].abandon
    assert rolls[0].partition_name == "events_p20260101_20260201"
    # retention now takes all of January: the staging table is dropped, retention retires
    expired = dataclasses.replace(table, retention=parse_retention("100 days"))
    later = dt.datetime(2026, 6, 30, tzinfo=UTC)
    the_plan = plan(
        state([expired], owned=records), catalog(parent(parts, tenant=None)), later, ZONE
    )
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert [(op.partition_name, op.abandon) for op in rolls] == [
        ("events_p20260101_20260201", True)
    ]
    assert len(the_plan.drops) == 31  # RetirePartition operations
    gone = staging._replace(exists=False)
    the_plan = plan(
        state([table], owned=[owned(p, table) for p in parts] + [gone]),
        catalog(parent(parts, tenant=None)),
        later,
        ZONE,
    )
    assert [type(op) for op in the_plan if op.partition_name == gone.name] == [ForgetPartition]


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[TableRecord, list[PartitionInfo], list[OwnedPartition], dt.datetime, ZoneInfo]:
    zone = draw(st.sampled_from([ZONE, BERLIN]))
    coarse = draw(st.sampled_from(["1 month", "1 week", "3 months"]))
    after = draw(st.sampled_from(["30 days", "90 days", "2 months"]))
    retention = draw(st.sampled_from([None, "120 days", "200 days"]))
    table = rolling(
        record(tenant_column=None, partition_count=1, retention=retention), after, coarse
    )
    first = dt.date(2025, 10, 1) + dt.timedelta(days=draw(st.integers(0, 40)))
    count = draw(st.integers(0, 200))
    missing = draw(st.sets(st.integers(0, 199), max_size=20))
    foreign = draw(st.sets(st.integers(0, 199), max_size=5))
    parts: list[PartitionInfo] = []
    records: list[OwnedPartition] = []
    for i in range(count):
        if i in missing:
            continue
        day = first + dt.timedelta(days=i)
        lo = dt.datetime.combine(day, dt.time(), zone).astimezone(UTC)
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(UTC)
        p = partition(f"events_p{day:%Y%m%d}", lo, hi, comment=None if i in foreign else CREATED)
        parts.append(p)
        if i not in foreign:
            records.append(owned(p, table))
    now = dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(hours=draw(st.integers(0, 24 * 240)))
    return table, parts, records, now, zone


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_rollups_never_overlap_cover_only_owned_partitions_past_the_cutoff_and_align(
    world: tuple[TableRecord, list[PartitionInfo], list[OwnedPartition], dt.datetime, ZoneInfo],
) -> None:
    table, parts, records, now, zone = world
    the_plan = plan(state([table], owned=records), catalog(parent(parts, tenant=None)), now, zone)
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert table.rollup_after is not None and table.rollup_interval is not None
    cutoff = table.rollup_after.cutoff(now, zone)
    mine = {(o.schema, o.name) for o in records}
    by_name = {p.name: p for p in parts}
    retired = {op.partition_name for op in the_plan.drops}
    assert not retired & {f.name for op in rolls for f in op.fines}  # never both at once
    spans = sorted((op.lower, op.upper) for op in rolls)
    for (_, hi), (lo, _) in itertools.pairwise(spans):
        assert hi <= lo  # type: ignore[operator]
    coarse = table.rollup_interval
    for op in rolls:
        assert not op.resume and not op.abandon
        assert isinstance(op.lower, dt.datetime) and isinstance(op.upper, dt.datetime)
        assert op.upper <= cutoff
        k = coarse.index(op.lower, zone)
        assert coarse.bounds(k, zone) == (op.lower, op.upper)
        assert op.fines
        for fine in op.fines:
            assert ("public", fine.name) in mine
            p = by_name[fine.name]
            assert p.comment == CREATED
            assert op.lower <= fine.lower and fine.upper <= op.upper  # type: ignore[operator]
        # every partition overlapping the period is one of its fine partitions
        inside = {
            p.name
            for p in parts
            if p.bound is not None
            and p.bound.lower[0] < op.upper  # type: ignore[operator]
            and p.bound.upper[0] > op.lower  # type: ignore[operator]
        }
        assert inside == {f.name for f in op.fines}
    # and every period that qualifies is rolled up (computed here without the planner)
    ret_cutoff = None if table.retention is None else table.retention.cutoff(now, zone)  # type: ignore[union-attr]
    expected = set()
    for p in parts:
        assert p.bound is not None
        k = coarse.index(p.bound.lower[0], zone)  # type: ignore[arg-type]
        lo, hi = coarse.bounds(k, zone)
        if hi > cutoff or (ret_cutoff is not None and hi <= ret_cutoff):
            continue
        inside = [
            q
            for q in parts
            if q.bound.lower[0] < hi and q.bound.upper[0] > lo  # type: ignore[union-attr, operator]
        ]
        if ret_cutoff is not None and any(q.bound.upper[0] <= ret_cutoff for q in inside):  # type: ignore[union-attr, operator]
            continue
        if any(("public", q.name) not in mine for q in inside):
            continue
        if len(inside) == 1 and (inside[0].bound.lower[0], inside[0].bound.upper[0]) == (lo, hi):  # type: ignore[union-attr]
            continue
        expected.add((lo, hi))
    assert {(op.lower, op.upper) for op in rolls} == expected
    event(f"roll-ups planned: {min(len(rolls), 3)}{'+' if len(rolls) > 3 else ''}")


def test_partman_plan_shows_a_roll_up_policy_as_a_change_and_in_the_table_description() -> None:
    from partman.decide import reconcile

    plain = TableRecord.from_table(partman.Table(name="e", partition_by="t"))
    rolled = TableRecord.from_table(
        partman.Table(name="e", partition_by="t", rollup_after="90 days", rollup_interval="1 month")
    )
    assert reconcile._table_diff(plain, rolled) == [
        "rollup_after none -> 90 days",
        "rollup_interval none -> 1 month",
    ]
    assert "rolled up into 1 month partitions after 90 days" in reconcile._describe_table(rolled)


def test_a_period_inside_a_coarser_partition_is_left_quietly() -> None:
    """rollup_interval made finer after quarters were rolled up: nothing to merge, no notice."""
    table = rolling(record(tenant_column=None, partition_count=1), coarse="1 month")
    lo, hi = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2026, 4, 1, tzinfo=UTC)
    quarter = partition("events_p20260101_20260401", lo, hi, comment=CREATED)
    the_plan = plan(
        state([table], owned=[owned(quarter, table)]),
        catalog(parent([quarter], tenant=None)),
        dt.datetime(2026, 9, 1, tzinfo=UTC),
        ZONE,
    )
    assert not [op for op in the_plan if isinstance(op, RollupPartition)]
    assert not [n for n in the_plan.notices if "rollup" in n.message]


@st.composite
def tenant_worlds(
    draw: st.DrawFn,
) -> tuple[TableRecord, list[PartitionInfo], list[OwnedPartition], dt.datetime]:
    """RANGE (tenant, time): two tenants with their own days, some foreign or missing."""
    table = rolling(record(partition_count=1), "60 days", "1 month")
    parts: list[PartitionInfo] = []
    records: list[OwnedPartition] = []
    for tenant in ("acme", "globex"):
        first = dt.date(2025, 11, 1) + dt.timedelta(days=draw(st.integers(0, 30)))
        count = draw(st.integers(0, 120))
        missing = draw(st.sets(st.integers(0, 119), max_size=10))
        foreign = draw(st.sets(st.integers(0, 119), max_size=3))
        for i in range(count):
            if i in missing:
                continue
            day = first + dt.timedelta(days=i)
            lo = dt.datetime.combine(day, dt.time(), UTC)
            comment = None if i in foreign else CREATED
            p = partition(
                f"events_{tenant}_p{day:%Y%m%d}",
                lo,
                lo + dt.timedelta(days=1),
                tenant=tenant,
                comment=comment,
            )
            parts.append(p)
            if i not in foreign:
                records.append(owned(p, table, tenant=tenant))
    now = dt.datetime(2026, 2, 1, tzinfo=UTC) + dt.timedelta(days=draw(st.integers(0, 150)))
    return table, parts, records, now


@settings(max_examples=100, deadline=None)
@given(tenant_worlds())
def test_rollups_of_a_tenant_table_stay_within_one_tenant(
    world: tuple[TableRecord, list[PartitionInfo], list[OwnedPartition], dt.datetime],
) -> None:
    table, parts, records, now = world
    tenants = [TenantRecord(table.id, t, None, None) for t in ("acme", "globex")]
    the_plan = plan(
        state([table], tenants=tenants, owned=records), catalog(parent(parts)), now, ZONE
    )
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert table.rollup_after is not None and table.rollup_interval is not None
    cutoff = table.rollup_after.cutoff(now, ZONE)
    mine = {o.name for o in records}
    tenant_of = {p.name: p.bound.lower[0] for p in parts if p.bound is not None}
    for tenant in ("acme", "globex"):
        own = [op for op in rolls if op.tenant == tenant]
        spans = sorted((op.lower, op.upper) for op in own)
        for (_, hi), (lo, _) in itertools.pairwise(spans):
            assert hi <= lo  # type: ignore[operator]
        for op in own:
            assert op.upper <= cutoff  # type: ignore[operator]
            assert op.lower_key == (tenant, op.lower) and op.upper_key == (tenant, op.upper)
            assert op.partition_name.startswith(f"events_{tenant}_")
            for fine in op.fines:
                assert fine.name in mine and tenant_of[fine.name] == tenant
        days = [
            p for p in parts if tenant_of[p.name] == tenant and p.bound is not None
        ]  # this tenant's
        expected = set()
        for p in days:
            assert p.bound is not None
            k = table.rollup_interval.index(p.bound.lower[1], ZONE)  # type: ignore[arg-type]
            lo, hi = table.rollup_interval.bounds(k, ZONE)
            inside = [q for q in days if q.bound.lower[1] < hi and q.bound.upper[1] > lo]  # type: ignore[union-attr, operator]
            if hi <= cutoff and all(q.name in mine for q in inside):
                expected.add((lo, hi))
        assert {(op.lower, op.upper) for op in own} == expected
    event(f"roll-ups planned: {min(len(rolls), 3)}")


def test_an_unbounded_foreign_partition_early_in_the_timeline_does_not_stop_the_others() -> None:
    """A partition FROM (MINVALUE) TO (2025-01-01) sorts first: it never hides January."""
    from partman.model.bounds import Special

    table = rolling(record(tenant_column=None, partition_count=1))
    days_ = [
        partition(f"events_p{lo:%Y%m%d}", lo, hi, comment=CREATED)
        for lo, hi in days(dt.date(2026, 1, 1), 31)
    ]
    old = partition("old", Special.MINVALUE, dt.datetime(2025, 1, 1, tzinfo=UTC))
    the_plan = plan(
        state([table], owned=[owned(p, table) for p in days_]),
        catalog(parent([old, *days_], tenant=None)),
        dt.datetime(2026, 6, 1, tzinfo=UTC),
        ZONE,
    )
    rolls = [op for op in the_plan if isinstance(op, RollupPartition)]
    assert [len(op.fines) for op in rolls] == [31]
