"""What a new partition carries from its parent: the SQL, its quoting, and the adopted check."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from psycopg import sql

from partman.db.catalog import parse_traits
from partman.model.operations import (
    CreateDefaultPartition,
    CreatePartition,
    create_statements,
    render,
)
from partman.model.snapshot import Grant, Traits

PARTITION = sql.Identifier("app", "items_p20260310")
PARENT = sql.Identifier("app", "items")
LIKE = (
    'CREATE TABLE "app"."items_p20260310" (LIKE "app"."items" INCLUDING DEFAULTS INCLUDING '
    "CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED INCLUDING INDEXES "
    "INCLUDING STATISTICS)"
)


def _sql(traits: Traits) -> list[str]:
    return [render(s) for s in create_statements(PARTITION, PARENT, traits)]


def test_a_plain_parent_adds_nothing_to_the_create() -> None:
    assert _sql(Traits()) == [LIKE]


def test_everything_a_parent_declares_comes_before_the_attach() -> None:
    traits = Traits(
        owner='o"wner',
        owner_is_current=False,
        replica_identity="f",
        grants=(
            Grant("reader", "SELECT", False),
            Grant("writer", "INSERT", True),
            Grant("writer", "UPDATE", True),
            Grant(None, "REFERENCES", False),
        ),
        tablespace="fast space",
        options=("fillfactor=70", "toast.autovacuum_enabled=off"),
        access_method="heap2",
    )
    assert _sql(traits) == [
        LIKE + ' USING "heap2" WITH ("fillfactor" = \'70\', "toast"."autovacuum_enabled" = '
        "'off') TABLESPACE \"fast space\"",
        'ALTER TABLE "app"."items_p20260310" REPLICA IDENTITY FULL',
        'GRANT SELECT ON TABLE "app"."items_p20260310" TO "reader"',
        'GRANT INSERT, UPDATE ON TABLE "app"."items_p20260310" TO "writer" WITH GRANT OPTION',
        'GRANT REFERENCES ON TABLE "app"."items_p20260310" TO PUBLIC',
        'ALTER TABLE "app"."items_p20260310" OWNER TO "o""wner"',
    ]
    assert _sql(Traits(replica_identity="n"))[1].endswith("REPLICA IDENTITY NOTHING")
    assert len(_sql(Traits(replica_identity="i", identity_index="k"))) == 1  # after ATTACH


def test_a_privilege_that_is_not_a_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="unexpected privilege"):
        _sql(Traits(grants=(Grant("x", "SELECT; DROP TABLE t", False),)))


def test_both_creates_carry_them_and_attach_last() -> None:
    common = {
        "parent_schema": "app",
        "parent_name": "items",
        "tenant": None,
        "partition_schema": "app",
        "partition_name": "items_p20260310",
        "reason": "r",
        "traits": Traits(replica_identity="f"),
    }
    day = dt.date(2026, 3, 10)
    create = CreatePartition(**common, lower=day, upper=day, lower_key=(day,), upper_key=(day,))
    default = CreateDefaultPartition(**common, lower=None, upper=None)
    for op in (create, default):
        texts = [render(s) for s in op.statements()]
        assert texts[1].endswith("REPLICA IDENTITY FULL") and "ATTACH" in texts[-1]


def test_the_catalog_columns_read_back() -> None:
    traits = parse_traits(
        (
            "alice",
            False,
            "f",
            None,
            [["bob", "SELECT", "false"], [None, "INSERT", "true"]],
            None,
            None,
            "heap",
        )
    )
    assert traits == Traits(
        owner="alice",
        owner_is_current=False,
        replica_identity="f",
        grants=(Grant("bob", "SELECT", False), Grant(None, "INSERT", True)),
        access_method="heap",
    )


def test_an_adopted_partition_is_compared_with_what_its_parent_declares() -> None:
    parent = Traits(owner="alice", replica_identity="f", grants=(Grant("bob", "SELECT", False),))
    same = Traits(owner="alice", replica_identity="f", grants=(Grant("bob", "SELECT", False),))
    assert parent.differences(same) == []
    other = Traits(owner="carol", tablespace="slow", options=("fillfactor=50",))
    assert parent.differences(other) == [
        "owner carol (the parent's: alice)",
        "replica identity default (the parent's: full)",
        "grants none (the parent's: bob: SELECT)",
        "tablespace slow (the parent's: default)",
    ]  # storage parameters: a partitioned parent cannot have any, so none are compared


# -- the table's storage parameters (PostgreSQL refuses them on a partitioned parent) -----------


def test_a_tables_storage_parameters_are_checked_by_their_rule() -> None:
    from partman import Table
    from partman.errors import ConfigError

    def table(parameters: object) -> Table:
        return Table(name="items", partition_by="at", storage_parameters=parameters)  # type: ignore[arg-type]

    kept = table({"fillfactor": 90, "autovacuum_vacuum_scale_factor": 0.05})
    assert kept.storage_parameters == {"autovacuum_vacuum_scale_factor": 0.05, "fillfactor": 90}
    assert table({}).storage_parameters == {}
    for bad, words in [
        ({"fillfactr": 90}, "'fillfactr' is not a storage parameter: did you mean fillfactor?"),
        ({"user_catalog_table": True}, "'user_catalog_table' is not a storage parameter"),
        ({"fillfactor": "90"}, "fillfactor must be an integer, got '90'"),
        ({"fillfactor": 5}, "fillfactor must be 10..100"),
        ({"autovacuum_enabled": 1}, "autovacuum_enabled must be true or false, got 1"),
        ({"parallel_workers": 1.5}, "parallel_workers must be an integer"),
        ({"fillfactor) WITH (oids": 1}, "is not a storage parameter"),
        ("fillfactor=90", "expected a mapping of parameter to value"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(words)) as caught:
            table(bad)
        assert str(caught.value).startswith("Table.storage_parameters: ")
        assert caught.value.field == "storage_parameters"


def test_a_tables_storage_parameters_are_rendered_into_each_new_partitions_create() -> None:
    from partman import Table
    from partman.model.snapshot import TableRecord

    record = TableRecord.from_table(
        Table(
            name="items",
            partition_by="at",
            storage_parameters={"fillfactor": 90, "toast.autovacuum_enabled": False},
        )
    )
    assert record.options == ("fillfactor=90", "toast.autovacuum_enabled=false")
    traits = Traits(tablespace="fast", options=("fillfactor=70", "parallel_workers=2"))
    assert _sql(traits.with_options(record.options))[0] == (
        LIKE + ' WITH ("fillfactor" = \'90\', "parallel_workers" = \'2\', "toast"."autovacuum_'
        'enabled" = \'false\') TABLESPACE "fast"'
    )
    assert Traits().with_options(()) == Traits()
    with pytest.raises(ValueError, match="unexpected storage parameter"):
        _sql(Traits(options=("oids=true) TABLESPACE x --=1",)))


def test_an_adopted_partitions_storage_parameters_are_compared_by_meaning() -> None:
    expected = Traits().with_options(("autovacuum_enabled=false", "fillfactor=90"))
    same = Traits(options=("fillfactor=90.0", "autovacuum_enabled=off"))
    assert expected.differences(same) == []
    assert expected.differences(Traits(options=("fillfactor=90",))) == [
        "storage parameters fillfactor=90 (the table's storage_parameters: "
        "autovacuum_enabled=false, fillfactor=90)"
    ]
