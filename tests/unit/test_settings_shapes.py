"""partman.toml speaks every shape a Table has: integer ids (a TOML integer interval and
retention), epoch columns, retention by a time column, RANGE -> HASH and LIST tenants; each
mistake lands at its key."""

from __future__ import annotations

import pytest

import partman
from partman.model.keys import Epoch, IdInterval, IdRetention
from partman.settings import parse, retention_text_value


def entry(body: str, extra: str = "") -> str:
    return f'[[table]]\nname = "t"\npartition_by = "at"\n{body}\n{extra}'


def problems(text: str) -> list[str]:
    return [str(p) for p in parse(text, environ={}).problems]


def test_ids_are_toml_integers_and_every_shape_key_is_read() -> None:
    s = parse(
        entry(
            "partition_interval = 1000000\nretention_period = 5000000\n"
            'sub_partition_by = "device_id"\nsub_partition_modulus = 8'
        )
        + entry(
            'partition_interval = 1000\nretention_period = "30 days"\n'
            'retention_column = "created_at"'
        ).replace('name = "t"', 'name = "u"')
        + entry(
            'epoch = "milliseconds"\npartition_interval = "15 minutes"\n'
            'tenant_id_column = "tenant"\ntenant_partitioning = "list"'
        ).replace('name = "t"', 'name = "v"'),
        environ={},
    ).raise_for_problems()
    ids, by_age, epoch = (spec.table for spec in s.tables)
    assert ids == partman.Table(
        name="t",
        partition_by="at",
        partition_interval=1_000_000,
        retention_period=5_000_000,
        sub_partition_by="device_id",
        sub_partition_modulus=8,
    )
    assert ids.interval == IdInterval(1_000_000) and ids.retention == IdRetention(5_000_000)
    assert by_age.retention_column == "created_at" and str(by_age.retention) == "30 days"
    assert epoch.epoch_unit is Epoch.MILLISECONDS and epoch.list_tenants


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            'epoch = "hours"',
            'partman.toml:4: table[0].epoch: epoch must be one of "seconds", "milliseconds", '
            '"microseconds", "nanoseconds" (partman.Epoch), got \'hours\'',
        ),
        (
            "retention_period = 100",
            "partman.toml:4: table[0].retention_period: Table 't': retention_period 100 is a "
            "number of ids, but partition_interval is a period of time; write a period like "
            "'30 days'",
        ),
        (
            'sub_partition_by = "device_id"',
            "partman.toml:4: table[0].sub_partition_by: Table 't': sub_partition_by and "
            "sub_partition_modulus go together (e.g. sub_partition_by='device_id', "
            "sub_partition_modulus=8)",
        ),
        (
            'sub_partition_by = "device_id"\nsub_partition_modulus = "8"',
            "partman.toml:5: table[0].sub_partition_modulus: expected an integer, got a string "
            "('8')",
        ),
        (
            'tenant_partitioning = "list"',
            "partman.toml:4: table[0].tenant_partitioning: Table 't': tenant_partitioning "
            "'list' needs tenant_id_column, the column the parent is PARTITION BY LIST on",
        ),
        (
            'partition_interval = 1000\nretention_period = "30 days"',
            "partman.toml:5: table[0].retention_period: Table 't': retention_period '30 days' "
            "is a period of time but the key is an id; give a number of ids (windows below "
            "max(id) minus it expire), or set retention_column to a time column whose age "
            "decides",
        ),
        (
            "partition_interval = 1.5",
            'partman.toml:4: table[0].partition_interval: expected a string like "1 day", '
            '"15 minutes", "1 week" or "monthly", or an integer (ids per window), got a float '
            "(1.5)",
        ),
        (
            "partition_interval = true",
            'partman.toml:4: table[0].partition_interval: expected a string like "1 day", '
            '"15 minutes", "1 week" or "monthly", or an integer (ids per window), got a '
            "boolean (True)",
        ),
    ],
)
def test_each_shape_mistake_lands_at_its_key(body: str, expected: str) -> None:
    assert problems(entry(body)) == [expected]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5000", 5000),
        ("5000 ids", 5000),
        (" 12 IDS ", 12),
        ("30 days", "30 days"),
        ("forever", "forever"),
    ],
)
def test_a_retention_given_as_text_is_an_id_distance_when_it_is_a_number(
    text: str, value: str | int
) -> None:
    """`partman tenants add/set --retention-period` and the API's JSON strings: an id table's
    distance is written "5000" or "5000 ids" (as partman shows it), and is an int to the model."""
    assert retention_text_value(text) == value
    if isinstance(value, int):
        assert partman.Tenant(tenant_id="a", retention_period=value).retention == IdRetention(value)


@pytest.mark.parametrize("written", ["1000000", "1_000_000", "1,000,000 ids", " 1000000 IDS "])
def test_an_id_count_written_as_text_is_that_many_ids(written: str) -> None:
    """A number in quotes is read as the int it spells, in a Table, a Tenant and the file."""
    table = partman.Table(
        name="t", partition_by="id", partition_interval=written, retention_period=written
    )
    assert (table.partition_interval, table.retention_period) == (1_000_000, 1_000_000)
    assert partman.Tenant(tenant_id="a", retention_period=written).retention_period == 1_000_000
    s = parse(entry(f'partition_interval = "{written}"'), environ={})
    assert not s.problems
    assert s.tables[0].table.partition_interval == 1_000_000


def test_a_zero_id_interval_in_text_names_the_interval() -> None:
    with pytest.raises(partman.PartmanError, match="id partition_interval must be a positive"):
        partman.Table(name="t", partition_by="id", partition_interval="0")
