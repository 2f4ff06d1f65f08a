"""Bounds written with psycopg literals come back from the real catalog exactly as written.

Each example creates one partition, reads the parent through `world.read_catalog` (the same
query and session settings a maintenance pass uses) and drops the partition again.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from partman.decide.planner import plan
from partman.engine.world import read_catalog
from partman.model.bounds import BoundValue, RangeBound, Special
from partman.model.intervals import Interval
from partman.model.snapshot import State, TableRecord, TenantRecord

Conn = psycopg.Connection[Any]
UTC = dt.UTC
ZONES = [zoneinfo.ZoneInfo(z) for z in ("UTC", "Europe/Berlin", "America/New_York")]

ROUNDTRIP = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

LAYOUTS = {
    "t_text_tstz": "tenant text, at timestamptz",
    "t_text_ts": "tenant text, at timestamp",
    "t_text_date": "tenant text, at date",
    "t_bigint_tstz": "tenant bigint, at timestamptz",
    "t_bigint_date": "tenant bigint, at date",
    "t_uuid_ts": "tenant uuid, at timestamp",
    "t_uuid_tstz": "tenant uuid, at timestamptz",
}


@pytest.fixture
def tables(conn: Conn) -> Conn:
    for name, columns in LAYOUTS.items():
        conn.execute(
            sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE (tenant, at)").format(
                sql.Identifier(name), sql.SQL(columns)
            )
        )
    return conn


def roundtrip(
    conn: Conn, table: str, lower: tuple[BoundValue, ...], upper: tuple[BoundValue, ...]
) -> RangeBound | None:
    """Create a partition FROM lower TO upper, read its bound back, drop it."""

    def values(vs: tuple[BoundValue, ...]) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL(v.value) if isinstance(v, Special) else sql.Literal(v) for v in vs
        )

    conn.execute(
        sql.SQL("CREATE TABLE p_rt PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(table), values(lower), values(upper)
        )
    )
    try:
        catalog = read_catalog(conn, [("public", table)])
        (partition,) = catalog[("public", table)].partitions
        assert partition.name == "p_rt"
        return partition.bound
    finally:
        conn.execute("DROP TABLE p_rt")


# -- strategies ------------------------------------------------------------------------------

tenant_texts = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=100
)
bigints = st.integers(-(2**63), 2**63 - 1)


@st.composite
def aligned_instants(draw: st.DrawFn) -> dt.datetime:
    """Starts of hours, days or months in one of the zones partman aligns in."""
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
    kind = draw(st.sampled_from(["hour", "day", "month"]))
    hour = draw(st.integers(0, 23)) if kind == "hour" else 0
    if kind == "month":
        day = day.replace(day=1)
    wall = dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone)
    return wall.astimezone(UTC)


unaligned_instants = st.datetimes(
    dt.datetime(1, 1, 2), dt.datetime(9999, 12, 1), timezones=st.just(UTC)
)
instants = st.one_of(aligned_instants(), unaligned_instants)
steps = st.one_of(
    st.sampled_from([dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=31)]),
    st.timedeltas(dt.timedelta(microseconds=1), dt.timedelta(days=3650)),
)


def after(start: dt.datetime, step: dt.timedelta) -> dt.datetime:
    limit = dt.datetime(9999, 12, 31, tzinfo=UTC) if start.tzinfo else dt.datetime(9999, 12, 31)
    return min(start + step, limit)


naive_times = instants.map(lambda t: t.replace(tzinfo=None))
dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 1))


# -- tests -----------------------------------------------------------------------------------


@ROUNDTRIP
@given(tenant=tenant_texts, lower=instants, step=steps)
@example(
    tenant="it's a\\b",
    lower=dt.datetime(2023, 12, 31, 23, 0, 0, 500000, UTC),
    step=dt.timedelta(hours=25, minutes=-1, microseconds=500000),
)
@example(
    tenant="a', '2024-01-01') TO ('b",
    lower=dt.datetime(2024, 1, 1, tzinfo=UTC),
    step=dt.timedelta(days=1),
)
@example(
    tenant="MINVALUE", lower=dt.datetime(2024, 3, 31, 1, tzinfo=UTC), step=dt.timedelta(hours=1)
)
@example(tenant="日本 🎉 (x), 'y'", lower=dt.datetime(1, 1, 2, tzinfo=UTC), step=dt.timedelta(1))
def test_text_tenant_and_timestamptz_bounds_read_back_exactly(
    tables: Conn, tenant: str, lower: dt.datetime, step: dt.timedelta
) -> None:
    upper = after(lower, step)
    bound = roundtrip(tables, "t_text_tstz", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))
    assert bound.lower[1].utcoffset() == dt.timedelta(0)  # type: ignore[union-attr]


@ROUNDTRIP
@given(tenant=tenant_texts, lower=naive_times, step=steps)
def test_text_tenant_and_timestamp_bounds_read_back_exactly(
    tables: Conn, tenant: str, lower: dt.datetime, step: dt.timedelta
) -> None:
    upper = after(lower, step)
    bound = roundtrip(tables, "t_text_ts", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@ROUNDTRIP
@given(tenant=tenant_texts, lower=dates, days=st.integers(1, 400))
def test_text_tenant_and_date_bounds_read_back_exactly(
    tables: Conn, tenant: str, lower: dt.date, days: int
) -> None:
    upper = min(lower + dt.timedelta(days=days), dt.date(9999, 12, 31))
    bound = roundtrip(tables, "t_text_date", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@ROUNDTRIP
@given(tenant=bigints, lower=instants, step=steps)
@example(tenant=-5, lower=dt.datetime(2024, 1, 1, tzinfo=UTC), step=dt.timedelta(days=1))
@example(tenant=2**63 - 1, lower=dt.datetime(2024, 1, 1, tzinfo=UTC), step=dt.timedelta(1))
@example(tenant=-(2**63), lower=dt.datetime(2024, 1, 1, tzinfo=UTC), step=dt.timedelta(1))
def test_bigint_tenant_and_timestamptz_bounds_read_back_exactly(
    tables: Conn, tenant: int, lower: dt.datetime, step: dt.timedelta
) -> None:
    upper = after(lower, step)
    bound = roundtrip(tables, "t_bigint_tstz", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@ROUNDTRIP
@given(tenant=bigints, lower=dates, days=st.integers(1, 400))
def test_bigint_tenant_and_date_bounds_read_back_exactly(
    tables: Conn, tenant: int, lower: dt.date, days: int
) -> None:
    upper = min(lower + dt.timedelta(days=days), dt.date(9999, 12, 31))
    bound = roundtrip(tables, "t_bigint_date", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@ROUNDTRIP
@given(tenant=st.uuids(), lower=naive_times, step=steps)
def test_uuid_tenant_and_timestamp_bounds_read_back_exactly(
    tables: Conn, tenant: uuid.UUID, lower: dt.datetime, step: dt.timedelta
) -> None:
    upper = after(lower, step)
    bound = roundtrip(tables, "t_uuid_ts", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@ROUNDTRIP
@given(tenant=st.uuids(), lower=instants, step=steps)
def test_uuid_tenant_and_timestamptz_bounds_read_back_exactly(
    tables: Conn, tenant: uuid.UUID, lower: dt.datetime, step: dt.timedelta
) -> None:
    upper = after(lower, step)
    bound = roundtrip(tables, "t_uuid_tstz", (tenant, lower), (tenant, upper))
    assert bound == RangeBound((tenant, lower), (tenant, upper))


@pytest.mark.parametrize(
    ("table", "lower", "upper", "expected"),
    [
        (
            "t_text_tstz",
            ("a", Special.MINVALUE),
            ("a", "infinity"),
            RangeBound(("a", Special.MINVALUE), ("a", Special.UNREADABLE)),
        ),
        (
            "t_text_tstz",
            ("a", Special.MINVALUE),
            ("b", Special.MAXVALUE),
            RangeBound(("a", Special.MINVALUE), ("b", Special.MAXVALUE)),
        ),
        (
            "t_bigint_date",
            (-5, "-infinity"),
            (-5, dt.date(2024, 1, 1)),
            RangeBound((-5, Special.UNREADABLE), (-5, dt.date(2024, 1, 1))),
        ),
        (
            "t_text_date",
            ("a", "0044-03-15 BC"),
            ("a", dt.date(1000, 1, 1)),
            RangeBound(("a", Special.UNREADABLE), ("a", dt.date(1000, 1, 1))),
        ),
        (
            "t_text_ts",
            ("a", dt.datetime(9999, 12, 31)),
            ("a", "10000-01-01"),
            RangeBound(("a", dt.datetime(9999, 12, 31)), ("a", Special.UNREADABLE)),
        ),
    ],
    ids=["minvalue-infinity", "spanning-tenants", "minus-infinity", "bc-date", "year-10000"],
)
def test_unbounded_and_unrepresentable_ends_read_back_as_special_values(
    tables: Conn,
    table: str,
    lower: tuple[BoundValue, ...],
    upper: tuple[BoundValue, ...],
    expected: RangeBound,
) -> None:
    assert roundtrip(tables, table, lower, upper) == expected


def test_the_default_partition_reads_back_as_the_default_bound(tables: Conn) -> None:
    tables.execute("CREATE TABLE p_default PARTITION OF t_text_tstz DEFAULT")
    (partition,) = read_catalog(tables, [("public", "t_text_tstz")])[
        ("public", "t_text_tstz")
    ].partitions
    assert partition.bound is not None
    assert partition.bound.is_default
    assert partition.is_default


def _plan_for_one_day(conn: Conn, column_type: str) -> Callable[[], int]:
    conn.execute(
        sql.SQL(
            "CREATE TABLE fixed (tenant {}, at timestamp) PARTITION BY RANGE (tenant, at)"
        ).format(sql.SQL(column_type))
    )
    conn.execute(
        "CREATE TABLE fixed_abc PARTITION OF fixed "
        "FOR VALUES FROM ('abc', '2024-01-15') TO ('abc', '2024-01-16')"
    )
    table = TableRecord(
        id=1,
        schema="public",
        name="fixed",
        tenant_column="tenant",
        time_column="at",
        interval=Interval.parse("1 day"),
        retention=None,
        partition_count=0,
        backfill=False,
    )
    state = State(tables=(table,), tenants={1: (TenantRecord(1, "abc", None, None),)}, owned={})

    def operations() -> int:
        catalog = read_catalog(conn, [("public", "fixed")])
        now = dt.datetime(2024, 1, 15, 12, tzinfo=UTC)
        return len(plan(state, catalog, now, zoneinfo.ZoneInfo("UTC")).operations)

    return operations


def test_a_varchar_tenant_partition_covers_its_tenant(conn: Conn) -> None:
    assert _plan_for_one_day(conn, "varchar(5)")() == 0


def test_a_char_n_tenant_partition_covers_its_tenant(conn: Conn) -> None:
    # char(n) bounds print blank-padded ('abc  '); the catalog must read them as 'abc'
    assert _plan_for_one_day(conn, "char(5)")() == 0
    (partition,) = read_catalog(conn, [("public", "fixed")])[("public", "fixed")].partitions
    assert partition.bound == RangeBound(
        ("abc", dt.datetime(2024, 1, 15)), ("abc", dt.datetime(2024, 1, 16))
    )
