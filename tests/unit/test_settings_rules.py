"""One config model, validated once: each field's rule lives on the dataclass; the file's keys
follow the dataclasses' fields; a model error names its field, and the reader puts it there."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

import partman
from partman import settings
from partman.model.config import MAX_PARTITION_COUNT
from partman.model.rules import Source, check_field
from partman.model.service_options import ServiceOptions


def _init_fields(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind) if f.init}


def test_each_sections_keys_are_its_dataclasss_fields() -> None:
    assert set(settings.SERVICE_FIELDS) == _init_fields(ServiceOptions)
    assert set(settings.TABLE_FIELDS) == _init_fields(partman.Table) - {"tenant_id"} | {
        "tenants_query"
    }
    assert set(settings.TENANT_FIELDS) == _init_fields(partman.Tenant) - {"tenant_id"} | {"id"}


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: partman.Config(batch_size=0), "batch_size"),
        (lambda: partman.Config(lock_timeout=dt.timedelta(0)), "lock_timeout"),
        (lambda: partman.Table(name="", partition_by="t"), "name"),
        (
            lambda: partman.Table(name="e", partition_by="t", partition_interval="1 x"),
            "partition_interval",
        ),
        (lambda: partman.Table(name="e", partition_by="t", backfill=True), "backfill"),
        (
            lambda: partman.Table(name="e", partition_by="t", retention_action="archive"),
            "retention_action",
        ),
        (lambda: partman.Tenant(tenant_id="a", partition_count=-1), "partition_count"),
        (lambda: partman.Tenant(tenant_id=True), "tenant_id"),
        (lambda: ServiceOptions(port=70000), "port"),
    ],
)
def test_a_model_error_names_its_field(make: object, field: str) -> None:
    with pytest.raises(partman.ConfigError) as raised:
        make()  # type: ignore[operator]
    assert raised.value.field == field


def test_python_and_a_file_share_the_rule_and_only_name_the_value_differently() -> None:
    with pytest.raises(partman.ConfigError, match=r"^Table\.retention_action must be") as python:
        check_field(partman.Table, "retention_action", "shred")
    with pytest.raises(partman.ConfigError, match=r"^retention_action must be") as file:
        check_field(partman.Table, "retention_action", "shred", Source.FILE)
    assert str(python.value).removeprefix("Table.") == str(file.value)
    assert check_field(partman.Table, "retention_period", "Forever", Source.FILE) is None
    assert partman.Table(name="e", partition_by="t", retention_period="forever").retention is None


def test_every_bad_value_of_a_table_is_named_at_once() -> None:
    text = (
        '[[table]]\nname = "e"\npartition_by = "t"\npartition_interval = "1 fortnight"\n'
        f'retention_period = "soon"\npartition_count = {MAX_PARTITION_COUNT + 1}\n'
    )
    found = settings.parse(text, environ={})
    assert [(p.line, p.key) for p in found.problems] == [
        (4, "table[0].partition_interval"),
        (5, "table[0].retention_period"),
        (6, "table[0].partition_count"),
    ]
