"""The pure parts of archiving to Parquet: the type plan, the checksum, the manifest's paths,
which archives a restore picks and the overlaps it refuses, and the planner's export ops."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from builders import COLUMNS, catalog, owned, parent, partition, record, state, utc
from hypothesis import given
from hypothesis import strategies as st

import partman
from partman.decide import planner
from partman.decide import restore as choose
from partman.model.archive import (
    Archive,
    ArchiveError,
    Checksum,
    ColumnPlan,
    PgColumn,
    file_path,
    numeric_typmod,
    plan_column,
    plan_columns,
    text_of,
)
from partman.model.operations import RetirePartition

UTC = dt.UTC


def col(name: str, typname: str, type_sql: str = "", typmod: int = -1, **kw: object) -> PgColumn:
    return PgColumn(name, typname, type_sql or typname, kw.pop("typtype", "b"), typmod, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "arrow", "as_text"),
    [
        (col("a", "int4"), "int32", False),
        (col("a", "int8"), "int64", False),
        (col("a", "float4"), "float64", False),
        (col("a", "timestamptz"), "timestamptz", False),
        (col("a", "numeric", "numeric(12,2)", (12 << 16 | 2) + 4), "decimal128(12,2)", False),
        (col("a", "numeric"), "string", True),
        (col("a", "numeric", "numeric(50,2)", (50 << 16 | 2) + 4), "string", True),
        (col("a", "jsonb"), "string", True),
        (col("a", "mood", typtype="e"), "string", False),
        (col("a", "_int4", "integer[]", element="int4", element_typtype="b"), "list<int32>", False),
        (col("a", "_text", "text[]", element="text", element_typtype="b"), "list<string>", False),
        (col("a", "uuid"), "uuid", False),
        (col("a", "bytea"), "binary", False),
    ],
)
def test_each_supported_type_has_its_arrow_type(
    column: PgColumn, arrow: str, as_text: bool
) -> None:
    plan = plan_column(column)
    assert (plan.arrow, plan.as_text) == (arrow, as_text)
    assert ColumnPlan.from_dict(plan.to_dict()) == plan


def test_types_that_cannot_round_trip_are_all_named() -> None:
    columns = [
        col("id", "int8"),
        col("took", "interval"),
        col("seen", "inet"),
        col("span", "tstzrange", typtype="r"),
        col("moods", "_mood", "mood[]", element="mood", element_typtype="e"),
    ]
    with pytest.raises(ArchiveError) as error:
        plan_columns(columns, "app.events")
    text = str(error.value)
    for named in ("'took' (interval)", "'seen' (inet)", "'span' (tstzrange)", "'moods' (mood[])"):
        assert named in text
    assert "'id'" not in text and "nothing was detached" in text


def test_numeric_typmod() -> None:
    assert numeric_typmod(-1) == (None, 0)
    assert numeric_typmod((12 << 16 | 2) + 4) == (12, 2)
    assert numeric_typmod((5 << 16 | 0x7FE) + 4) == (None, 0)  # numeric(5, -2): as text


def digest(arrow: str, *rows: tuple[object, ...]) -> str:
    found = Checksum([ColumnPlan(f"c{i}", "t", arrow) for i in range(len(rows[0]))])
    found.add_rows(rows)
    return found.text


def test_the_canonical_text_is_the_instant_and_keeps_the_scale() -> None:
    paris = dt.datetime(2026, 1, 1, 13, tzinfo=ZoneInfo("Europe/Paris"))
    instant = text_of("timestamptz")
    assert instant(paris) == instant(paris.astimezone(UTC)) == "2026-01-01T12:00:00+00:00"
    assert instant(paris) == instant(paris.astimezone(ZoneInfo("UTC")))
    assert text_of("decimal128(5,2)")(Decimal("1.50")) != text_of("decimal128(5,2)")(Decimal("1.5"))
    assert text_of("uuid")(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert text_of("binary")(b"\x00\xff") == "00ff"
    assert text_of("list<int32>")([1, None]) == "{1\x1e\x00}"
    assert text_of("float64")(0.1) == "0.1"
    # NULL, the empty string and separators inside strings never meet
    assert digest("string", (None,)) != digest("string", ("",)) != digest("string", ("\x00",))
    assert digest("string", ("a\x1fb", "")) != digest("string", ("a", "b"))
    assert digest("string", ("a\\x1f", "")) != digest("string", ("a\x1f", ""))
    assert digest("list<string>", (["a\x1eb"],)) != digest("list<string>", (["a", "b"],))
    assert digest("list<int32>", ([1, None],)) != digest("list<int32>", ([1],))


@given(st.lists(st.tuples(st.integers(), st.text(), st.none() | st.booleans()), max_size=30))
def test_the_checksum_ignores_order_and_counts_repeats(rows: list[tuple[object, ...]]) -> None:
    plans = [ColumnPlan("a", "bigint", "int64"), ColumnPlan("b", "text", "string")]
    plans.append(ColumnPlan("c", "boolean", "bool"))
    a, b, c = Checksum(plans), Checksum(plans), Checksum(plans)
    a.add_rows(rows)
    b.add_rows(list(reversed(rows)))
    c.add_rows(rows + rows[:1])
    assert (a.rows, a.text) == (b.rows, b.text)
    if rows:
        assert c.text != a.text and c.rows == a.rows + 1
    columns = Checksum(plans)
    if rows:
        columns.add_columns(list(zip(*rows, strict=True)))
    assert (columns.rows, columns.text) == (a.rows, a.text)


def test_file_paths() -> None:
    assert file_path("s3://b/p/", "app", "events", "events_p20260101") == (
        "s3://b/p/app/events/events_p20260101.parquet"
    )
    assert file_path("/x", "a/b", "e%", "p") == "/x/a%2Fb/e%25/p.parquet"


def archive(
    id: int, lower: str, upper: str, tenant: str | None = None, state: str = "archived"
) -> Archive:
    return Archive(
        id=id,
        parent_schema="public",
        parent_name="events",
        partition_schema="public",
        partition_name=f"events_{tenant or 'x'}_{lower[:10]}",
        tenant=tenant,
        lower=lower,
        upper=upper,
        location=f"/a/{id}.parquet",
        rows=10,
        bytes=100,
        checksum="blake2b128-sum:0",
        columns=(),
        state=state,
        exported_at=dt.datetime(2026, 5, 1, tzinfo=UTC),
    )


DAYS = [
    archive(i, f"2026-03-{d:02d}T00:00:00+00:00", f"2026-03-{d + 1:02d}T00:00:00+00:00", t)
    for i, (d, t) in enumerate(((10, "a"), (11, "a"), (12, "a"), (10, "b")), start=1)
]


def test_restore_picks_the_archives_that_meet_the_period() -> None:
    key = (COLUMNS["text"], COLUMNS["timestamptz"])
    got = choose.select(DAYS, key, "2026-03-11", "2026-03-13", UTC, "a")
    assert [t.archive.id for t in got] == [2, 3]
    assert got[0].lower == ("a", utc(2026, 3, 11)) and got[0].upper_text[0] == "a"
    assert [t.archive.id for t in choose.select(DAYS, key, "2026-03-10", "2026-03-11", UTC)] == [
        1,
        4,
    ]
    # a period inside one day still brings the whole day; a restored one is not picked again
    restored = [dataclasses.replace(DAYS[0], state="restored"), *DAYS[1:]]
    assert choose.select(restored, key, "2026-03-10T06:00", "2026-03-10T07:00", UTC, "a") == []
    with pytest.raises(ArchiveError, match="must be before"):
        choose.select(DAYS, key, "2026-03-12", "2026-03-11", UTC)


def test_restore_refuses_an_overlap_or_a_name_in_use() -> None:
    key = (COLUMNS["text"], COLUMNS["timestamptz"])
    targets = choose.select(DAYS, key, "2026-03-10", "2026-03-12", UTC, "a")
    clear = parent(
        [partition("other", utc(2026, 3, 10), utc(2026, 3, 11), tenant="b")]
    )  # another tenant's day: no overlap
    choose.check(targets, clear)
    blocked = parent([partition("half", utc(2026, 3, 11, 12), utc(2026, 3, 12, 12), tenant="a")])
    with pytest.raises(ArchiveError, match=r"overlaps public\.half.*Nothing was changed"):
        choose.check(targets, blocked)
    named = parent(
        [partition(DAYS[0].partition_name, utc(2026, 4, 1), utc(2026, 4, 2), tenant="z")]
    )
    with pytest.raises(ArchiveError, match="exists already"):
        choose.check(targets, named)


def test_the_planner_exports_and_says_when_the_location_is_missing() -> None:
    old = partition("events_p1", utc(2026, 3, 1), utc(2026, 3, 2), tenant=None)
    old = old._replace(comment=partman.model.snapshot.owner_comment("created"))
    table = dataclasses.replace(
        record(tenant_column=None, retention="2 days"),
        retention_action="export",
        export_location="s3://b/p",
    )
    p = parent([old], tenant=None)
    now = utc(2026, 3, 10)
    plan = planner.plan(state([table], owned=[owned(old, table)]), catalog(p), now, UTC)
    (op,) = [o for o in plan.operations if isinstance(o, RetirePartition)]
    assert (op.kind, op.export_location) == ("export", "s3://b/p")
    assert "DROP TABLE" in op.sql and op.to_dict()["export_location"] == "s3://b/p"
    bare = dataclasses.replace(table, export_location=None)
    plan = planner.plan(state([bare], owned=[owned(old, bare)]), catalog(p), now, UTC)
    assert not [o for o in plan.operations if isinstance(o, RetirePartition)]
    assert any("needs an export_location" in n.message for n in plan.notices)


def test_a_table_that_exports_needs_a_location() -> None:
    with pytest.raises(partman.ConfigError, match="needs export_location"):
        partman.Table(name="e", partition_by="t", retention_action="export")
    t = partman.Table(name="e", partition_by="t", retention_action="EXPORT", export_location="/a")
    assert t.action is partman.RetentionAction.EXPORT
    with pytest.raises(partman.ConfigError, match="export_location"):
        partman.Table(name="e", partition_by="t", export_location="  ")


def test_sqlalchemy_policies_carry_the_export_location() -> None:
    from partman.contrib.sqlalchemy import PartitionPolicy

    policy = PartitionPolicy(
        by="at", retention="30 days", retention_action="export", export_location="s3://b/p"
    )
    table = policy.table("events", "app")
    assert (table.action.value, table.export_location) == ("export", "s3://b/p")
    with pytest.raises(partman.ConfigError, match="needs export_location"):
        PartitionPolicy(by="at", retention="30 days", retention_action="export")


def test_restore_of_an_id_key_takes_numbers() -> None:
    ids = [
        dataclasses.replace(archive(1, "0", "1000"), partition_name="ids_0"),
        dataclasses.replace(archive(2, "1000", "2000"), partition_name="ids_1000"),
    ]
    key = (COLUMNS["int8"],)
    assert [t.archive.id for t in choose.select(ids, key, "500", "1000", UTC)] == [1]
    assert choose.select(ids, key, "0", "5000", UTC)[1].lower == (1000,)
    with pytest.raises(ArchiveError, match="expected a number"):
        choose.select(ids, key, "2026-03-01", "2026-04-01", UTC)


def test_partman_toml_keys_for_export() -> None:
    from partman.settings import parse

    base = '[[table]]\nname = "e"\npartition_by = "t"\nretention_period = "30 days"\n'
    good = parse(base + 'retention_action = "export"\nexport_location = "s3://b/p"\n', environ={})
    assert good.problems == () and good.tables[0].table.export_location == "s3://b/p"
    missing = parse(base + 'retention_action = "export"\n', environ={})
    assert [str(p) for p in missing.problems] == [
        "partman.toml:5: table[0].retention_action: Table 'e': retention_action 'export' needs "
        'export_location, a local directory or a URL like "s3://bucket/prefix" the Parquet '
        "files go to"
    ]
    wrong = parse(base + "export_location = 5\n", environ={})
    assert [str(p) for p in wrong.problems] == [
        "partman.toml:5: table[0].export_location: expected a string, got an integer (5)"
    ]
    tenant = parse(
        base + 'tenant_id_column = "c"\nexport_location = "/srv/a"\n[[table.tenant]]\n'
        'id = "x"\nretention_action = "export"\n',
        environ={},
    )
    assert tenant.problems == ()
