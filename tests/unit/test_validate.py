"""decide.validate: a parent that is not the shape its Table describes is refused with an error
that names the table (or column) and says what to do about it.
"""

from __future__ import annotations

import dataclasses

import pytest
from builders import COLUMNS, PAYLOAD, catalog, parent, record

from partman.decide.validate import check_parent, check_record, many_partitions
from partman.errors import (
    CatalogError,
    KeyMismatchError,
    NotPartitionedError,
    TableNotFoundError,
)
from partman.model.columns import KeyColumn
from partman.model.intervals import Interval, parse_retention
from partman.model.snapshot import ParentInfo

DAILY = Interval.parse("1 day")
TENANT, AT = COLUMNS["text"], COLUMNS["timestamptz"]


def check(
    the_parent: ParentInfo | None,
    *,
    tenant_column: str | None = "tenant",
    time_column: str = "at",
    interval: Interval = DAILY,
) -> tuple[KeyColumn | None, KeyColumn]:
    shape = dataclasses.replace(
        record(tenant_column=tenant_column), time_column=time_column, interval=interval
    )
    return check_parent("public.events", the_parent, shape)


def refused(the_parent: ParentInfo | None, error: type[CatalogError], **table: object) -> str:
    """The message of the error `check` raises, which must be of type `error`."""
    with pytest.raises(error) as raised:
        check(the_parent, **table)  # type: ignore[arg-type]
    return str(raised.value)


def test_a_matching_parent_gives_its_tenant_and_time_key_columns() -> None:
    assert check(parent()) == (TENANT, AT)


def test_a_single_tenant_parent_gives_no_tenant_column() -> None:
    assert check(parent(tenant=None), tenant_column=None) == (None, AT)


def test_a_missing_table_says_how_to_create_it() -> None:
    assert refused(None, TableNotFoundError) == (
        "table public.events does not exist; create it first as a table partitioned "
        "BY RANGE (tenant, at)"
    )
    assert refused(None, TableNotFoundError, tenant_column=None).endswith("BY RANGE (at)")


@pytest.mark.parametrize(
    ("relkind", "what"),
    [
        ("r", "a plain table"),
        ("v", "a view"),
        ("m", "a materialized view"),
        ("f", "a foreign table"),
        ("S", "a relation of kind 'S'"),
    ],
)
def test_a_relation_that_is_not_partitioned_is_named_with_the_fix(relkind: str, what: str) -> None:
    message = refused(parent(relkind=relkind, strategy=None), NotPartitionedError)
    assert message.startswith(f"public.events is {what}, not a partitioned table; ")
    assert "recreate it with PARTITION BY RANGE (tenant, at)" in message


@pytest.mark.parametrize(("strategy", "word"), [("l", "LIST"), ("h", "HASH")])
def test_list_or_hash_partitioning_is_refused_naming_range(strategy: str, word: str) -> None:
    message = refused(parent(strategy=strategy), NotPartitionedError)
    assert message.startswith(
        f"public.events is partitioned by {word}, not RANGE; the Table says "
        "PARTITION BY RANGE (tenant, at)"
    )
    assert message.endswith(
        "(partman manages RANGE (time), RANGE (tenant, time), LIST (tenant) -> RANGE (time) "
        "and RANGE (time) -> HASH)"
    )


def test_an_expression_key_asks_for_plain_columns() -> None:
    expression = dataclasses.replace(parent(), key=None)
    assert refused(expression, KeyMismatchError) == (
        "public.events is partitioned by an expression; partman needs plain columns: "
        "PARTITION BY RANGE (tenant, at)"
    )


def test_a_column_the_table_names_but_the_parent_lacks_is_named_with_the_columns_it_has() -> None:
    assert refused(parent(), KeyMismatchError, tenant_column="project_id") == (
        "public.events has no column 'project_id' (columns: tenant, at, payload); check "
        "Table.tenant_id_column (names are case-sensitive)"
    )
    assert "has no column 'At'" in refused(parent(), KeyMismatchError, time_column="At")


def test_a_tenant_key_the_table_does_not_declare_asks_for_tenant_id_column() -> None:
    assert refused(parent(), KeyMismatchError, tenant_column=None) == (
        "public.events is partitioned by RANGE (tenant, at), but the Table says RANGE (at); "
        "set tenant_id_column to the first key column"
    )


def test_a_key_in_the_wrong_order_says_what_the_key_must_be() -> None:
    backwards = parent(key=(AT, TENANT))
    assert refused(backwards, KeyMismatchError) == (
        "public.events is partitioned by RANGE (at, tenant), but the Table says "
        "RANGE (tenant, at); the key must be (tenant column, time column), or the time column "
        "alone"
    )


def test_a_time_column_of_another_type_names_its_type_and_the_types_allowed() -> None:
    number = KeyColumn("at", "int8", "bigint", -1)
    assert refused(parent(tenant=None, key=(number,)), KeyMismatchError, tenant_column=None) == (
        "public.events.at is bigint; for ids give partition_interval as a number of ids (e.g. "
        "1000000), or set epoch ('seconds', 'milliseconds', ...) if it holds time since 1970"
    )
    words = KeyColumn("at", "text", "text", -1)
    assert refused(parent(tenant=None, key=(words,)), KeyMismatchError, tenant_column=None) == (
        "public.events.at is text; the partition_by column must be timestamptz, timestamp, "
        "date, a UUIDv7 (uuid), an epoch integer (with epoch) or an integer id (with an "
        "integer partition_interval)"
    )


def test_a_date_column_cannot_take_hourly_partitions() -> None:
    hourly = Interval.parse("1 hour")
    message = refused(parent(time="date"), KeyMismatchError, interval=hourly)
    assert message == (
        "public.events.at is a date, so it cannot be partitioned by 1 hour; use '1 day' or longer"
    )
    assert check(parent(time="date"))[1] == COLUMNS["date"]


def test_a_tenant_column_of_another_type_names_the_types_allowed() -> None:
    doc = KeyColumn("tenant", "jsonb", "jsonb", -1)
    assert refused(parent(key=(doc, AT), columns=(doc, AT, PAYLOAD)), KeyMismatchError) == (
        "public.events.tenant is jsonb; tenant columns must be text-like (text, varchar), "
        "integer or uuid"
    )


@pytest.mark.parametrize("tenant", ["text", "int8", "uuid"])
def test_text_integer_and_uuid_tenant_columns_are_accepted(tenant: str) -> None:
    assert check(parent(tenant=tenant))[0] == COLUMNS[tenant]


def test_check_record_gives_the_parent_and_its_key_columns() -> None:
    the_parent = parent()
    assert check_record(record(), catalog(the_parent)) == (the_parent, TENANT, AT)


def test_check_record_says_what_changed_since_registration() -> None:
    assert "table public.events does not exist" in _record_error(catalog(), TableNotFoundError)
    plain = catalog(parent(relkind="r", strategy=None))
    assert "public.events is a plain table" in _record_error(plain, NotPartitionedError)
    single = catalog(parent(tenant=None))
    assert "has no column 'tenant'" in _record_error(single, KeyMismatchError)


def _record_error(the_catalog: dict[tuple[str, str], ParentInfo], error: type[Exception]) -> str:
    with pytest.raises(error) as raised:
        check_record(record(), the_catalog)
    return str(raised.value)


def test_a_minute_interval_kept_a_month_warns_of_the_partitions_it_keeps() -> None:
    message = many_partitions(
        "public.ticks", Interval.parse("1 minute"), parse_retention("30 days"), 10
    )
    assert message is not None
    assert message.startswith(
        "public.ticks: partition_interval 1 minute with retention_period 30 days keeps about "
        "43,211 partitions per tenant"
    )


def test_a_sub_hour_interval_kept_forever_warns_of_its_daily_growth() -> None:
    message = many_partitions("public.ticks", Interval.parse("15 minutes"), None, 10)
    assert message is not None
    assert "adds 96 partitions a day per tenant, forever" in message


@pytest.mark.parametrize(
    ("interval", "retention"),
    [("1 day", "10 years"), ("1 hour", "90 days"), ("15 minutes", "30 days"), ("1 hour", None)],
)
def test_usual_intervals_do_not_warn(interval: str, retention: str | None) -> None:
    found = many_partitions("public.t", Interval.parse(interval), parse_retention(retention), 10)
    assert found is None
