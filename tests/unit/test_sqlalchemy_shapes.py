"""`partitioned()` and the Alembic operations speak every shape of partman.Table: integer ids,
epoch columns, retention by a time column, RANGE -> HASH and LIST tenants; checked against the
model's columns when the module is imported, and rendered by autogenerate as written."""

from __future__ import annotations

import types
from typing import Any, cast

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import UUID

import partman
from partman.contrib.alembic.autogenerate import _policy_of_record, render_manage_table
from partman.contrib.alembic.ops import ManageTableOp
from partman.contrib.sqlalchemy import PartitionPolicy, partitioned, partman_tables
from partman.model.keys import IdInterval, IdRetention
from partman.model.snapshot import TableRecord, TenantRecord


def table(*columns: Column[Any], **policy: Any) -> partman.Table:
    sa = Table("t", MetaData(), *columns, **partitioned(**policy))
    (found,) = partman_tables(sa.metadata)
    return found


def test_ids_epochs_uuids_hash_and_list_are_declared_on_the_model() -> None:
    ids = table(
        Column("id", BigInteger, primary_key=True),
        Column("created_at", DateTime(timezone=True)),
        by="id",
        interval=1_000_000,
        retention="30 days",
        retention_column="created_at",
    )
    assert ids.interval == IdInterval(1_000_000) and ids.retention_column == "created_at"
    assert table(Column("id", Integer, primary_key=True), by="id", interval=10, retention=50)
    hits = table(
        Column("device_id", Integer, primary_key=True),
        Column("at", BigInteger, primary_key=True),
        by="at",
        epoch="milliseconds",
        interval="15 minutes",
        sub_partition_by="device_id",
        sub_partition_modulus=8,
    )
    assert hits.epoch_unit.value == "milliseconds" and hits.sub_partition_modulus == 8
    assert table(Column("id", UUID, primary_key=True), by="id").partition_by == "id"
    listed = partitioned(by="at", tenant="tenant", tenant_partitioning="list")
    assert listed["postgresql_partition_by"] == "LIST (tenant)"
    assert (
        partitioned(by="at", sub_partition_by="d", sub_partition_modulus=4)[
            "postgresql_partition_by"
        ]
        == "RANGE (at)"
    )


@pytest.mark.parametrize(
    ("columns", "policy", "words"),
    [
        ([Column("at", DateTime, primary_key=True)], {"interval": 1000}, "needs an Integer"),
        ([Column("at", DateTime, primary_key=True)], {"epoch": "seconds"}, "drop epoch"),
        ([Column("at", BigInteger, primary_key=True)], {}, "interval=1_000_000"),
        (
            [Column("at", BigInteger, primary_key=True), Column("made", String)],
            {"interval": 1000, "retention": "30 days", "retention_column": "made"},
            "retention_column needs a DateTime",
        ),
        (  # PostgreSQL wants the HASH column in the primary key too
            [Column("at", DateTime, primary_key=True), Column("device_id", Integer)],
            {"sub_partition_by": "device_id", "sub_partition_modulus": 4},
            "lacks the partition key column.s. device_id",
        ),
        ([Column("at", DateTime, primary_key=True)], {"epoch": "hours"}, "epoch must be one"),
    ],
)
def test_a_shape_the_columns_cannot_carry_is_refused_when_the_table_is_built(
    columns: list[Column[Any]], policy: dict[str, Any], words: str
) -> None:
    with pytest.raises(partman.PartmanError, match=words):
        table(*columns, by="at", **policy)


AUTOGEN = cast(Any, types.SimpleNamespace(opts={}, imports=set()))


def test_autogenerate_renders_the_shape_keywords_as_written() -> None:
    ids = PartitionPolicy(by="id", interval=1000, retention=5000, premake=2)
    assert render_manage_table(AUTOGEN, ManageTableOp("orders", ids)) == (
        "op.manage_table('orders', by='id', interval=1000, premake=2, retention=5000)"
    )
    hashed = PartitionPolicy(
        by="at",
        tenant="tenant",
        epoch="milliseconds",
        interval="15 minutes",
        sub_partition_by="device_id",
        sub_partition_modulus=8,
        tenant_partitioning="range",
    )
    assert render_manage_table(AUTOGEN, ManageTableOp("hits", hashed)) == (
        "op.manage_table('hits', by='at', tenant='tenant', interval='15 minutes', premake=10, "
        "retention=None, epoch='milliseconds', sub_partition_by='device_id', "
        "sub_partition_modulus=8)"
    )
    listed = PartitionPolicy(by="at", tenant="tenant", tenant_partitioning="list")
    assert "tenant_partitioning='list'" in render_manage_table(AUTOGEN, ManageTableOp("e", listed))
    by_age = PartitionPolicy(
        by="id", interval=1000, retention="30 days", retention_column="created_at"
    )
    assert render_manage_table(AUTOGEN, ManageTableOp("o", by_age)).endswith(
        "interval=1000, premake=10, retention='30 days', retention_column='created_at')"
    )


def test_a_registered_id_table_reads_back_as_the_policy_it_was_declared_with() -> None:
    declared = PartitionPolicy(by="id", tenant="shop", interval=1000, retention=5000, premake=2)
    record = TableRecord.from_table(declared.table("orders"), 1)
    back = _policy_of_record(record, [TenantRecord(1, "a", "2000", None)])
    assert back.table("orders") == declared.table("orders")
    (tenant,) = back.tenant_list
    assert tenant.retention == IdRetention(2000)
