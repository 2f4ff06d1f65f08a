"""partman.contrib.django.conf: a PARTMAN block is partman.toml's keys, read by the same
reader; what only a Python settings module can get wrong is named in Python's terms."""

from __future__ import annotations

from partman.contrib.django import conf
from partman.model.config import RetentionAction, TenantPartitioning
from partman.model.keys import Epoch, IdInterval

TABLE = {
    "name": "events",
    "schema": "convoy",
    "tenant_id_column": "project_id",
    "partition_by": "created_at",
    "partition_interval": "1 day",
    "partition_count": 10,
}


def shown(block: conf.Block) -> list[str]:
    return [conf.describe(p) for p in block.problems]


def test_a_block_reads_like_the_file_and_tuples_are_lists() -> None:
    block = conf.read(
        {
            "DATABASE": "events_db",
            "partman": {"lock_timeout": "1s"},
            "table": ({**TABLE, "tenants": ("project-acme",)},),
        }
    )
    assert block.ok, shown(block)
    assert block.alias == "events_db"
    assert block.settings.config.lock_timeout.total_seconds() == 1
    (spec,) = block.settings.tables
    assert spec.qualified_name == "convoy.events"
    assert [str(t.tenant_id) for t in spec.tenants] == ["project-acme"]


def test_no_block_manages_nothing_on_the_default_database() -> None:
    block = conf.read({})
    assert block.ok and block.alias == "default" and block.settings.tables == ()


def test_problems_name_the_key_as_the_settings_module_has_it() -> None:
    block = conf.read(
        {
            "DATABSE": "default",
            "database": {"dsn": "postgresql://db/app"},
            "table": [{**TABLE, "partition_count": "ten", "tenant": [{"id": ""}]}],
        }
    )
    assert shown(block) == [
        "PARTMAN[\"DATABSE\"]: unknown key (did you mean 'DATABASE'?)",
        'PARTMAN["database"]: unknown key (the database is the one of DATABASES; name its '
        'alias as "DATABASE": "default")',
        'PARTMAN["table"][0]["partition_count"]: expected an integer, got a string (\'ten\')',
        'PARTMAN["table"][0]["tenant"][0]["id"]: a tenant id must not be empty',
    ]


def test_a_table_given_as_a_dict_says_it_is_a_list() -> None:
    block = conf.read({"table": TABLE})
    assert shown(block) == ['PARTMAN["table"]: expected a list of tables: [{...}, {...}]']


def test_a_block_that_is_not_a_dict() -> None:
    block = conf.read([TABLE])
    assert shown(block) == ["PARTMAN: must be a dict, got list"]


def test_a_block_takes_every_shape_and_enums_as_their_values() -> None:
    block = conf.read(
        {
            "table": [
                {
                    "name": "orders",
                    "partition_by": "id",
                    "partition_interval": 1_000_000,
                    "retention_period": 5_000_000,
                    "retention_action": RetentionAction.DETACH,
                },
                {
                    "name": "hits",
                    "partition_by": "at",
                    "epoch": Epoch.MILLISECONDS,
                    "partition_interval": "15 minutes",
                    "sub_partition_by": "device_id",
                    "sub_partition_modulus": 8,
                },
                {**TABLE, "tenant_partitioning": TenantPartitioning.LIST},
            ]
        }
    )
    assert block.ok, shown(block)
    orders, hits, events = (spec.table for spec in block.settings.tables)
    assert orders.interval == IdInterval(1_000_000) and orders.action is RetentionAction.DETACH
    assert hits.epoch is Epoch.MILLISECONDS and hits.sub_partition_modulus == 8
    assert events.list_tenants


def test_shape_mistakes_are_named_at_their_key_as_python_has_it() -> None:
    block = conf.read(
        {
            "table": [
                {"name": "a", "partition_by": "at", "epoch": "hours"},
                {"name": "b", "partition_by": "at", "sub_partition_by": "device_id"},
                {"name": "c", "partition_by": "at", "retention_period": 100},
            ]
        }
    )
    assert [conf.key_of(p) for p in block.problems] == [
        'PARTMAN["table"][0]["epoch"]',
        'PARTMAN["table"][1]["sub_partition_by"]',
        'PARTMAN["table"][2]["retention_period"]',
    ]
