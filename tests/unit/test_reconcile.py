"""decide.reconcile: what syncing the config file would change, and how each change is worded.

`partman check`/`apply` print these changes before writing anything, so their wording is what a
user reads to decide; the tenants to write and the future state are what `sync` then stores.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Sequence
from typing import Any

from builders import catalog, owned, parent, partition, record, state, utc
from hypothesis import given
from hypothesis import strategies as st

from partman.decide.reconcile import (
    Change,
    Resolution,
    Resolved,
    changes,
    desired_record,
    key_of,
    toml_value,
)
from partman.decide.validate import check_parent
from partman.errors import CatalogError, NotPartitionedError
from partman.model.columns import KeyColumn
from partman.model.config import Config, Table, Tenant
from partman.model.intervals import Interval
from partman.model.keys import IdInterval
from partman.model.snapshot import TableRecord, TenantRecord
from partman.settings import Problem, Settings, TableSpec

PATH = ("table", 0)


def table(**fields: object) -> Table:
    base: dict[str, object] = {
        "name": "events",
        "tenant_id_column": "tenant",
        "partition_by": "at",
        "retention_period": "30 days",
        "partition_count": 10,
    }
    return Table(**{**base, **fields})  # type: ignore[arg-type]


def resolved(
    the_table: Table | None = None,
    *,
    table_id: int = 1,
    declared: dict[str, Tenant] | None = None,
    queried: list[str] | None = None,
    registered: Sequence[TenantRecord] = (),
) -> Resolved:
    the_table = the_table or table()
    return Resolved(
        spec=TableSpec(the_table, (), None, PATH),
        record=desired_record(the_table, table_id),
        tenant_key=None,
        declared=declared or {},
        queried=queried or [],
        registered={r.tenant_id: r for r in registered},
    )


def stored(the_table: Table | None = None, table_id: int = 1) -> TableRecord:
    return desired_record(the_table or table(), table_id)


# -- the table ------------------------------------------------------------------------------


def test_a_new_table_is_added_with_its_policy_in_words() -> None:
    assert changes(resolved(), None) == [
        Change(
            "add_table",
            "public.events",
            None,
            "1 day partitions, 10 ahead, retention 30 days, retention_action drop",
        )
    ]


def test_a_table_with_every_option_says_each_one() -> None:
    full = table(
        retention_period="90 days",
        partition_interval="1 week",
        partition_count=4,
        retention_action="archive",
        archive_schema="old",
        default_partition=True,
        backfill=True,
    )
    [change] = changes(resolved(full), None)
    assert change.detail == (
        "1 week partitions, 4 ahead, retention 90 days, retention_action archive to old, "
        "default partition, backfill"
    )


def test_a_table_without_retention_is_kept_forever() -> None:
    [change] = changes(resolved(table(retention_period=None)), None)
    assert change.detail == "1 day partitions, 10 ahead, retention forever, retention_action drop"


def test_a_table_stored_as_the_file_says_has_no_change() -> None:
    assert changes(resolved(), stored()) == []


def test_a_changed_policy_lists_each_field_from_old_to_new() -> None:
    old = stored(table(retention_period=None, partition_count=3))
    [change] = changes(resolved(), old)
    assert change == Change(
        "update_table",
        "public.events",
        None,
        "retention forever -> 30 days; partition_count 3 -> 10",
    )
    [back] = changes(resolved(table(retention_period=None, partition_count=3)), stored())
    assert back.detail == "retention 30 days -> forever; partition_count 10 -> 3"


def test_switching_on_the_default_partition_is_a_change() -> None:
    [change] = changes(resolved(table(default_partition=True)), stored())
    assert change.detail == "default_partition False -> True"


def test_storage_parameters_are_said_and_a_changed_one_is_a_change() -> None:
    with_ff = table(storage_parameters={"fillfactor": 90, "autovacuum_enabled": False})
    [added] = changes(resolved(with_ff), None)
    assert added.detail.endswith(", partitions WITH (autovacuum_enabled=false, fillfactor=90)")
    assert changes(resolved(with_ff), stored(with_ff)) == []
    [change] = changes(resolved(table(storage_parameters={"fillfactor": 70})), stored(with_ff))
    assert change.detail == (
        "storage_parameters autovacuum_enabled=false, fillfactor=90 -> fillfactor=70"
    )
    [dropped] = changes(resolved(), stored(with_ff))
    assert dropped.detail.endswith("-> none")


def test_each_shape_is_said_and_its_changeable_parts_are_policy_changes() -> None:
    ids = table(
        tenant_id_column=None,
        partition_interval=1_000_000,
        retention_period="30 days",
        retention_column="created_at",
    )
    [added] = changes(resolved(ids), None)
    assert added.detail == (
        "1000000-id partitions, 10 ahead, retention 30 days by created_at, retention_action drop"
    )
    by_distance = table(tenant_id_column=None, partition_interval=1000, retention_period=5000)
    [change] = changes(resolved(by_distance), stored(ids))
    assert change.detail == ("retention 30 days -> 5000 ids; retention_column created_at -> none")
    hashed = table(epoch="milliseconds", sub_partition_by="device_id", sub_partition_modulus=8)
    [added] = changes(resolved(hashed), None)
    assert added.detail == (
        "1 day partitions (at in epoch milliseconds), 10 ahead, retention 30 days, "
        "retention_action drop, each HASH (device_id) into 8"
    )
    wider = table(epoch="milliseconds", sub_partition_by="device_id", sub_partition_modulus=16)
    [change] = changes(resolved(wider), stored(hashed))
    assert change.detail == "sub_partition_modulus 8 -> 16"
    [change] = changes(resolved(table(epoch="milliseconds")), stored(hashed))
    assert change.detail == "sub_partition_by device_id -> none; sub_partition_modulus 8 -> none"
    [added] = changes(resolved(table(tenant_partitioning="list")), None)
    assert added.detail.endswith(", LIST (tenant) -> RANGE (at)")


def test_the_record_stored_is_the_tables_with_the_id_given() -> None:
    record_ = desired_record(table(), 7)
    assert record_ == TableRecord.from_table(table(), 7)
    assert (record_.id, record_.qualified_name, record_.interval) == (
        7,
        "public.events",
        Interval.parse("1 day"),
    )


# -- tenants --------------------------------------------------------------------------------


def test_a_declared_tenant_is_added_with_its_own_policy_in_words() -> None:
    declared = {
        "acme": Tenant(tenant_id="acme", retention_period="3 days", partition_count=3),
        "globex": Tenant(tenant_id="globex"),
        "initech": Tenant(
            tenant_id="initech", retention_period="forever", retention_action="detach"
        ),
    }
    assert changes(resolved(declared=declared), stored()) == [
        Change("add_tenant", "public.events", "acme", "retention 3 days, partition_count 3"),
        Change("add_tenant", "public.events", "globex", "the table's policy"),
        Change(
            "add_tenant", "public.events", "initech", "retention forever, retention_action detach"
        ),
    ]


def test_a_registered_tenant_with_another_policy_is_updated_from_old_to_new() -> None:
    before = TenantRecord(1, "acme", None, None)
    declared = {"acme": Tenant(tenant_id="acme", retention_period="3 days")}
    assert changes(resolved(declared=declared, registered=[before]), stored()) == [
        Change("update_tenant", "public.events", "acme", "the table's policy -> retention 3 days")
    ]


def test_a_registered_tenant_with_the_same_policy_has_no_change() -> None:
    same = TenantRecord(1, "acme", "3 days", 3)
    declared = {"acme": Tenant(tenant_id="acme", retention_period="3 days", partition_count=3)}
    assert changes(resolved(declared=declared, registered=[same]), stored()) == []


def test_a_policy_spelled_another_way_is_the_same_policy() -> None:
    stored_as = TenantRecord(1, "acme", "1 week", None)  # how "7 days" is stored
    declared = {"acme": Tenant(tenant_id="acme", retention_period="7 days")}
    assert changes(resolved(declared=declared, registered=[stored_as]), stored()) == []


def test_tenants_from_the_query_are_added_only_when_missing() -> None:
    r = resolved(
        declared={"acme": Tenant(tenant_id="acme")},
        queried=["acme", "globex", "initech"],
        registered=[TenantRecord(1, "initech", None, None)],
    )
    assert changes(r, stored()) == [
        Change("add_tenant", "public.events", "acme", "the table's policy"),
        Change("add_tenant", "public.events", "globex", "the table's policy (from tenants_query)"),
    ]


def test_tenants_to_write_are_the_changed_declared_ones_and_the_missing_queried_ones() -> None:
    r = resolved(
        declared={"42": Tenant(tenant_id=42, partition_count=2), "7": Tenant(tenant_id=7)},
        queried=["7", "99", "100"],
        registered=[TenantRecord(1, "7", None, None), TenantRecord(1, "100", None, None)],
    )
    assert r.tenants_to_write() == [
        Tenant(tenant_id="42", partition_count=2),
        Tenant(tenant_id="99"),
    ]


# -- the state after a sync -----------------------------------------------------------------


def test_the_future_state_has_the_files_tables_and_tenants_and_keeps_what_is_owned() -> None:
    kept = record(table_id=5, name="logs", tenant_column=None)
    old = stored(table(retention_period=None), table_id=1)
    p = partition("events_acme_1", utc(2024, 1, 1), utc(2024, 1, 2), tenant="acme")
    now_state = state(
        [old, kept],
        tenants=[TenantRecord(1, "globex", "1 day", None)],
        owned=[owned(p, old, tenant="acme")],
    )
    r = resolved(declared={"acme": Tenant(tenant_id="acme", partition_count=1)}, queried=["zeta"])
    resolution = Resolution(
        Settings("partman.toml", Config(), tables=(r.spec,)),
        utc(2024, 1, 10),
        True,
        now_state,
        catalog(parent()),
        tables=[r],
    )
    future = resolution.future_state()
    assert {t.name: t for t in future.tables} == {"events": r.record, "logs": kept}
    assert future.tenants[1] == (
        TenantRecord(1, "acme", None, 1),
        TenantRecord(1, "globex", "1 day", None),
        TenantRecord(1, "zeta", None, None),
    )
    assert future.owned == now_state.owned
    assert resolution.ok
    problem = Problem("partman.toml", 3, "table[0].name", "no such table")
    assert not dataclasses.replace(resolution, problems=[problem]).ok


# -- where a catalog error points in the file -----------------------------------------------


def catalog_error(the_table: Table, *, exists: bool = True, **shape: Any) -> CatalogError:
    """The error check_parent raises for `the_table` against a parent of that shape."""
    try:
        check_parent(
            the_table.qualified_name,
            parent(**shape) if exists else None,
            TableRecord.from_table(the_table),
        )
    except CatalogError as error:
        return error
    raise AssertionError("check_parent accepted the parent")


def test_a_catalog_error_points_at_the_key_of_the_file_to_fix() -> None:
    spec = TableSpec(table(), (), None, PATH)
    assert key_of(spec, catalog_error(table(), exists=False)) == (*PATH, "name")
    assert key_of(spec, catalog_error(table(), relkind="r", strategy=None)) == (*PATH, "name")
    wrong_tenant = table(tenant_id_column="project")
    spec = TableSpec(wrong_tenant, (), None, PATH)
    assert key_of(spec, catalog_error(wrong_tenant)) == (*PATH, "tenant_id_column")
    wrong_time = table(partition_by="created")
    spec = TableSpec(wrong_time, (), None, PATH)
    assert key_of(spec, catalog_error(wrong_time)) == (*PATH, "partition_by")
    hourly = table(partition_interval="1 hour")
    spec = TableSpec(hourly, (), None, PATH)
    assert key_of(spec, catalog_error(hourly, time="date")) == (*PATH, "partition_interval")
    untenanted = table(tenant_id_column=None)
    spec = TableSpec(untenanted, (), None, PATH)
    assert key_of(spec, catalog_error(untenanted)) == (*PATH, "tenant_id_column")
    assert isinstance(catalog_error(table(), strategy="l"), NotPartitionedError)


def test_a_shape_error_points_at_the_shape_key() -> None:
    bigint = KeyColumn("at", "int8", "bigint", -1)
    hashed = table(sub_partition_by="device", sub_partition_modulus=4)
    spec = TableSpec(hashed, (), None, PATH)
    assert key_of(spec, catalog_error(hashed)) == (*PATH, "sub_partition_by")
    epoch = table(tenant_id_column=None, epoch="milliseconds")
    spec = TableSpec(epoch, (), None, PATH)
    assert key_of(spec, catalog_error(epoch, tenant=None)) == (*PATH, "epoch")
    ids = table(tenant_id_column=None, partition_interval=1000, retention_period=None)
    spec = TableSpec(ids, (), None, PATH)
    assert key_of(spec, catalog_error(ids, tenant=None)) == (*PATH, "partition_interval")
    untold = table(tenant_id_column=None, retention_period=None)
    spec = TableSpec(untold, (), None, PATH)
    error = catalog_error(untold, tenant=None, key=[bigint])
    assert key_of(spec, error) == (*PATH, "epoch") and "set epoch" in str(error)
    listed = table(tenant_partitioning="list")
    spec = TableSpec(listed, (), None, PATH)
    assert key_of(spec, catalog_error(listed)) == (*PATH, "tenant_partitioning")


# -- values written back into the file -------------------------------------------------------


def test_a_toml_value_is_a_quoted_string_with_quotes_and_backslashes_escaped() -> None:
    assert toml_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert toml_value(Interval.parse("1 week")) == '"1 week"'
    assert toml_value(IdInterval(1000)) == "1000"  # ids per window: a TOML integer


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_a_toml_value_reads_back_as_the_same_text(text: str) -> None:
    assert tomllib.loads(f"key = {toml_value(text)}")["key"] == text
