"""partman.toml's [[databases]]: a fleet of databases in one file, each with its DSN (or the
environment variable holding it) and its tables; a file without them is one database, as
before."""

from __future__ import annotations

import pytest

from partman import ConfigError
from partman.settings import DEFAULT_DATABASE, parse

FLEET = """\
[partman]
lock_timeout = "250ms"

[[table]]
name = "events"
partition_by = "created_at"

[[databases]]
name = "orders"
dsn = "${ORDERS_URL}"

[[databases.table]]
name = "orders"
schema = "shop"
tenant_id_column = "tenant_id"
partition_by = "placed_at"
tenants = ["acme"]

[[databases.table.tenant]]
id = "globex"
retention_period = "7 days"

[[databases]]
name = "billing-eu"
dsn_env = "BILLING_DSN"
"""
ENV = {"ORDERS_URL": "dbname=orders", "BILLING_DSN": "dbname=billing"}


def messages(text: str, environ: dict[str, str] | None = None, dsn: str | None = None) -> list[str]:
    return [
        str(p) for p in parse(text, environ=ENV if environ is None else environ, dsn=dsn).problems
    ]


def test_each_database_has_its_dsn_and_the_shared_tables_then_its_own() -> None:
    found = parse(FLEET, environ=ENV).raise_for_problems()
    assert [d.name for d in found.databases] == ["orders", "billing-eu"]
    orders, billing = found.databases
    assert orders.dsn == "dbname=orders"
    assert billing.dsn == "dbname=billing"
    assert [t.qualified_name for t in orders.tables] == ["public.events", "shop.orders"]
    assert [t.qualified_name for t in billing.tables] == ["public.events"]
    shop = orders.tables[1]
    assert {str(t.tenant_id): t.own_policy for t in shop.tenants} == {"acme": False, "globex": True}
    assert found.dsn is None
    assert found.fleet() == found.databases


def test_for_database_is_the_file_as_if_it_declared_only_that_database() -> None:
    found = parse(FLEET, environ=ENV).raise_for_problems()
    one = found.for_database("orders")
    assert one.databases == ()
    assert one.dsn == "dbname=orders"
    assert one.database_name == "orders"
    assert [t.qualified_name for t in one.tables] == ["public.events", "shop.orders"]
    assert one.config == found.config
    with pytest.raises(ConfigError, match=r"has no database 'order' .*did you mean orders\?"):
        found.for_database("order")


def test_a_file_without_databases_is_one_database_named_default() -> None:
    found = parse(
        '[database]\ndsn = "dbname=app"\n\n[[table]]\nname = "events"\npartition_by = "at"\n'
    ).raise_for_problems()
    assert found.databases == ()
    (only,) = found.fleet()
    assert (only.name, only.dsn) == (DEFAULT_DATABASE, "dbname=app")
    assert [t.qualified_name for t in only.tables] == ["public.events"]
    assert found.for_database(DEFAULT_DATABASE).dsn == "dbname=app"


def test_duplicate_names_are_refused_at_the_second() -> None:
    text = FLEET + '\n[[databases]]\nname = "orders"\ndsn = "dbname=other"\n'
    assert messages(text) == [
        "partman.toml:28: databases[2].name: database 'orders' is already declared at "
        "databases[0]; give each database its own name"
    ]


@pytest.mark.parametrize("name", ["Orders", "orders eu", "", "-orders", "a/b", "x" * 64])
def test_a_name_that_is_not_a_safe_label_is_refused(name: str) -> None:
    text = f'[[databases]]\nname = "{name}"\ndsn = "dbname=x"\n'
    (problem,) = messages(text)
    assert problem.startswith(f"partman.toml:2: databases[0].name: {name!r} is not a database name")
    assert "a-z, 0-9, _ and -" in problem


def test_a_database_without_a_dsn_or_name_says_what_to_write() -> None:
    assert messages('[[databases]]\nname = "orders"\n') == [
        'partman.toml:1: databases[0]: missing key dsn: write dsn = "postgresql://..." or '
        'dsn_env = "ORDERS_DSN" (an environment variable holding it)'
    ]
    assert messages('[[databases]]\ndsn = "dbname=x"\n') == [
        "partman.toml:1: databases[0]: missing key name (the database's name, e.g. "
        'name = "orders")'
    ]


def test_dsn_env_names_a_variable_that_must_be_set_and_not_beside_dsn() -> None:
    assert messages(FLEET, environ={"ORDERS_URL": "dbname=orders"}) == [
        "partman.toml:25: databases[1].dsn_env: environment variable BILLING_DSN is not set "
        "(or empty); set it to the database's connection string"
    ]
    both = '[[databases]]\nname = "a"\ndsn = "dbname=a"\ndsn_env = "A"\n'
    assert messages(both) == [
        "partman.toml:4: databases[0].dsn_env: give either dsn or dsn_env, not both"
    ]
    empty = '[[databases]]\nname = "a"\ndsn = ""\n'
    assert messages(empty) == [
        "partman.toml:3: databases[0].dsn: is empty; give the database's connection string"
    ]


def test_a_table_declared_for_every_database_and_again_for_one_is_refused() -> None:
    text = FLEET.replace('name = "orders"\nschema = "shop"', 'name = "events"\nschema = "public"')
    (problem,) = messages(text)
    assert problem.startswith(
        "partman.toml:13: databases[0].table[0].name: public.events is already"
    )
    assert problem.endswith("declared for every database at table[0]; declare it in one place")


def test_database_section_and_a_dsn_from_outside_do_not_mix_with_databases() -> None:
    with_section = '[database]\ndsn = "dbname=x"\n\n' + FLEET
    assert messages(with_section) == [
        "partman.toml:1: database: a file with [[databases]] gives each database its dsn in its "
        "own entry; remove [database]"
    ]
    (problem,) = messages(FLEET, dsn="dbname=x")
    assert "--dsn (or PARTMAN_DSN) cannot say which of the [[databases]] it is" in problem
    assert "--database NAME" in problem


def test_unknown_keys_and_wrong_shapes_in_databases_are_named() -> None:
    assert messages('[[databases]]\nname = "a"\ndsn = "dbname=a"\nurl = "x"\n') == [
        "partman.toml:4: databases[0].url: unknown key (known keys: name, dsn, dsn_env, table)"
    ]
    assert messages('[databases]\nname = "a"\n') == [
        "partman.toml:1: databases: each database is an array element: write [[databases]]"
    ]
    assert messages(
        '[[databases]]\nname = "a"\ndsn = "dbname=a"\n[databases.table]\nname = "t"\n'
    ) == [
        "partman.toml:4: databases[0].table: each table is an array element: write "
        "[[databases.table]], not [databases.table]"
    ]
