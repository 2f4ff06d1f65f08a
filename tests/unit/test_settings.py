"""partman.toml parsing, without a database: values, line numbers, every problem at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import partman
from partman import settings
from partman.settings import Locator, Settings, SettingsError, parse, parse_duration

GOOD = """\
# partman.toml
[database]
dsn = "${DATABASE_URL}"

[partman]
sample_rate = "30s"
lock_timeout = "250ms"
statement_timeout = "1 minute"
pass_lock_wait = "1m30s"
timezone = "Europe/Berlin"
metadata_schema = "pm"
batch_size = 8
max_retries = 5

[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 10
default_partition = true
retention_action = "detach"
tenants = ["project-acme", "project-globex", 42]
tenants_query = \"\"\"
SELECT uid
  FROM convoy.projects
 WHERE active = true
\"\"\"

[[table.tenant]]
id = "project-globex"
retention_period = "7 days"
partition_count = 3
retention_action = "archive"

[[table.tenant]]
id = "o'reilly"
retention_period = "forever"

[[table]]
name = "audit"
partition_by = "at"
partition_interval = "monthly"
retention_period = "forever"
backfill = false
archive_schema = "old"
"""


def good(**env: str) -> Settings:
    return parse(GOOD, environ={"DATABASE_URL": "postgresql://db/app", **env})


def problems(text: str, **env: str) -> list[str]:
    return [str(p) for p in parse(text, environ=env).problems]


def table(body: str, extra: str = "") -> str:
    return (
        '[[table]]\nname = "events"\nschema = "convoy"\ntenant_id_column = "project_id"\n'
        f'partition_by = "created_at"\n{body}\n{extra}'
    )


# -- a good file ------------------------------------------------------------------------------


def test_a_good_file_maps_onto_config_table_and_tenant() -> None:
    s = good().raise_for_problems()
    assert s.dsn == "postgresql://db/app"
    assert s.config == partman.Config(
        sample_rate=dt.timedelta(seconds=30),
        lock_timeout=dt.timedelta(milliseconds=250),
        statement_timeout=dt.timedelta(minutes=1),
        pass_lock_wait=dt.timedelta(seconds=90),
        timezone="Europe/Berlin",
        metadata_schema="pm",
        batch_size=8,
        max_retries=5,
    )
    events, audit = s.tables
    assert events.table == partman.Table(
        name="events",
        schema="convoy",
        tenant_id_column="project_id",
        partition_by="created_at",
        partition_interval="1 day",
        retention_period="30 days",
        partition_count=10,
        default_partition=True,
        retention_action="detach",
    )
    assert events.tenants_query is not None and "FROM convoy.projects" in events.tenants_query
    assert [(t.tenant_id, t.own_policy) for t in events.tenants] == [
        ("project-acme", False),
        ("project-globex", True),  # its [[table.tenant]] entry wins over the plain mention
        (42, False),
        ("o'reilly", True),
    ]
    globex = events.tenant("project-globex")
    assert globex is not None
    assert globex.tenant == partman.Tenant(
        tenant_id="project-globex",
        retention_period="7 days",
        partition_count=3,
        retention_action="archive",
    )
    oreilly = events.tenant("o'reilly")
    assert oreilly is not None and oreilly.tenant.keeps_forever
    assert audit.qualified_name == "public.audit"
    assert audit.table.retention is None
    assert str(audit.table.interval) == "1 month"
    assert audit.tenants == () and audit.tenants_query is None
    assert s.table("convoy.events") is events and s.table("convoy.nope") is None


def test_an_empty_file_is_the_defaults() -> None:
    s = parse("", environ={}).raise_for_problems()
    assert s.config == partman.Config() and s.tables == () and s.dsn is None


def test_a_dsn_given_wins_and_the_files_is_not_even_expanded() -> None:
    s = parse(GOOD, environ={}, dsn="host=elsewhere")
    assert s.problems == () and s.dsn == "host=elsewhere"


def test_environment_variables_expand_in_every_string() -> None:
    text = (
        '[database]\ndsn = "postgresql://${USER_NAME}:${PASSWORD:-secret}@db/app"\n'
        '[partman]\napplication_name = "partman-${ENV:-dev}-$${literal}"\n'
    )
    s = parse(text, environ={"USER_NAME": "app", "ENV": "prod"}).raise_for_problems()
    assert s.dsn == "postgresql://app:secret@db/app"
    assert s.config.application_name == "partman-prod-${literal}"
    assert problems('[database]\ndsn = "${MISSING}"\n') == [
        "partman.toml:2: database.dsn: environment variable MISSING is not set (set it, or "
        "write ${MISSING:-fallback} for a fallback)"
    ]


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", dt.timedelta(milliseconds=250)),
        ("250 ms", dt.timedelta(milliseconds=250)),
        ("1.5s", dt.timedelta(seconds=1.5)),
        ("2 seconds", dt.timedelta(seconds=2)),
        ("1 minute", dt.timedelta(minutes=1)),
        ("1m30s", dt.timedelta(seconds=90)),
        ("1 hour 30 minutes", dt.timedelta(minutes=90)),
        ("2h", dt.timedelta(hours=2)),
        ("1 day", dt.timedelta(days=1)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "ms", "250", "1 fortnight", "1m 30", "soon", "-1s"])
def test_bad_durations(text: str) -> None:
    s = parse(f'[partman]\nlock_timeout = "{text}"\n', environ={})
    assert [p.key for p in s.problems] == ["partman.lock_timeout"]
    assert s.problems[0].line == 2


# -- problems: file, line, key, and every one at once -----------------------------------------


def test_unknown_key_names_file_line_key_and_the_likely_fix() -> None:
    text = table('partition_intervall = "1 day"')
    assert problems(text) == [
        "partman.toml:6: table[0].partition_intervall: unknown key (did you mean "
        "partition_interval?)"
    ]


def test_every_problem_is_reported_at_once_each_at_its_line() -> None:
    text = """\
[databse]
dsn = "x"

[partman]
sample_rate = 5
batch_size = 5000
timezone = "Mars/Base"

[[table]]
name = "events"
partition_by = "created_at"
partition_count = "10"
tenants = ["a", true]

[[table]]
name = "deliveries"
partition_by = "created_at"
tenant_id_column = "project_id"
partition_interval = "1 fortnight"

[[table.tenant]]
id = "x"
retention_period = "7 dayz"

[[table.tenant]]
id = "y"
colour = "red"

[[table]]
partition_by = "t"
retention_action = "archive"
"""
    assert problems(text) == [
        "partman.toml:1: databse: unknown key (did you mean database?)",
        'partman.toml:5: partman.sample_rate: 5 has no unit; write e.g. "250ms", "2s", '
        '"1 minute", "1m30s", "1 hour"',
        "partman.toml:6: partman.batch_size: Config.batch_size must be 1..1000, got 5000",
        "partman.toml:7: partman.timezone: Config.timezone 'Mars/Base' is not an IANA time zone "
        "(e.g. 'UTC', 'Europe/Berlin', 'America/New_York')",
        "partman.toml:12: table[0].partition_count: expected an integer, got a string ('10')",
        "partman.toml:13: table[0].tenants[1]: expected a tenant id (a string or an integer), "
        "got a boolean",
        "partman.toml:19: table[1].partition_interval: invalid partition interval "
        "'1 fortnight': use e.g. '15 minutes', '1 hour', '6 hours', '1 day', 'daily', '1 week', "
        "'monthly', '1 month', '3 months', 'quarterly', '1 year'",
        "partman.toml:23: table[1].tenant[0].retention_period: invalid retention period "
        "'7 dayz': use e.g. '30 days', '90d', '720h', '12 weeks', '3 months', '1 year', or "
        '"forever"',
        "partman.toml:27: table[1].tenant[1].colour: unknown key (known keys: id, "
        "retention_period, partition_count, retention_action)",
        "partman.toml:29: table[2]: missing key name (the partitioned parent table, e.g. "
        'name = "events")',
    ]


def test_settings_error_lists_every_problem_and_load_raises_it(tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.write_text(table('partition_count = -1\nbackfill = "yes"'))
    with pytest.raises(SettingsError) as raised:
        settings.load(path, environ={})
    assert [p.key for p in raised.value.problems] == ["table[0].backfill"]
    assert str(raised.value).startswith(f"{path}:7: table[0].backfill: expected true or false")
    path.write_text(table("partition_count = -1"))
    with pytest.raises(SettingsError) as raised:
        settings.load(path, environ={})
    assert str(raised.value).startswith(f"{path}:6: table[0].partition_count: Table.partition")
    assert isinstance(raised.value, partman.ConfigError)


def test_a_missing_file_and_toml_syntax_errors_have_a_place_too(tmp_path: Path) -> None:
    missing = settings.read(tmp_path / "nope.toml", environ={})
    assert [str(p) for p in missing.problems] == [f"{tmp_path / 'nope.toml'}: no such config file"]
    (syntax,) = problems('[partman]\nlock_timeout = "250ms\n')
    assert syntax.startswith("partman.toml:2: ")  # tomllib's own words follow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[table]\nname = "x"\npartition_by = "t"\n',
            "partman.toml:1: table: each table is an array element: write [[table]], not [table]",
        ),
        (
            "tables = 1\n",
            "partman.toml:1: tables: unknown key (write each table as [[table]])",
        ),
        (
            'dsn = "x"\n',
            'partman.toml:1: dsn: unknown key (put it under [database]: dsn = "...")',
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\ntenant_id = "a"\n',
            'partman.toml:4: table[0].tenant_id: unknown key (list tenants as tenants = ["a", '
            '"b"], or [[table.tenant]] id = "a")',
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\ntenants = ["a"]\n',
            "partman.toml:4: table[0].tenants: public.x has no tenant_id_column, so it has no "
            'tenants; set tenant_id_column (e.g. "project_id") or remove this key',
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\n[[table.tenant]]\npartition_count = 1\n',
            "partman.toml:4: table[0].tenant[0]: missing key id (the tenant's id, e.g. "
            'id = "project-acme")',
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\npartition_type = "hash"\n',
            "partman.toml:4: table[0].partition_type: 'hash': partman manages \"range\" "
            "partitioning only",
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\nretention_action = "shred"\n',
            "partman.toml:4: table[0].retention_action: retention_action must be 'drop', "
            "'detach', 'archive' or 'export' (partman.RetentionAction), got 'shred'",
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "t"\nbackfill = true\n',
            "partman.toml:4: table[0].backfill: Table 'x': backfill creates partitions back to "
            "the start of the retention window, so it needs a retention_period",
        ),
        (
            '[[table]]\nname = "x"\npartition_by = "x"\ntenant_id_column = "x"\n',
            "partman.toml:4: table[0].tenant_id_column: Table.tenant_id_column and "
            "Table.partition_by are both 'x'; the key is (tenant column, time column)",
        ),
        (
            '[[table]]\nname = ""\npartition_by = "t"\n',
            "partman.toml:2: table[0].name: the name must be a non-empty string, got ''",
        ),
    ],
)
def test_one_mistake_one_message(text: str, expected: str) -> None:
    assert problems(text) == [expected]


def test_tables_and_tenants_are_declared_once() -> None:
    twice = table("") + '[[table]]\nname = "events"\nschema = "convoy"\npartition_by = "t"\n'
    assert problems(twice) == [
        "partman.toml:8: table[1].name: convoy.events is already declared at table[0]; "
        "declare each table once"
    ]
    tenant_twice = table(
        'tenants = ["a"]', '[[table.tenant]]\nid = "b"\n[[table.tenant]]\nid = "b"\n'
    )
    assert problems(tenant_twice) == [
        "partman.toml:9: table[0].tenant[1]: tenant 'b' is already declared at "
        "table[0].tenant[0]; declare it once"
    ]
    # a plain mention plus an entry with a policy: the entry's policy wins
    both = table('tenants = ["a"]', '[[table.tenant]]\nid = "a"\npartition_count = 2\n')
    s = parse(both, environ={}).raise_for_problems()
    (only,) = s.tables[0].tenants
    assert only.own_policy and only.tenant.partition_count == 2


def test_an_empty_tenants_query_is_a_mistake() -> None:
    assert problems(table('tenants_query = "  "')) == [
        "partman.toml:6: table[0].tenants_query: is empty; give a SELECT returning one column "
        "of ids"
    ]


# -- the locator ------------------------------------------------------------------------------


def test_locator_finds_keys_of_arrays_of_tables_and_skips_multiline_values() -> None:
    loc = Locator(GOOD)
    lines = GOOD.splitlines()

    def line_of(fragment: str, start: int = 0) -> int:
        return next(i for i, text in enumerate(lines, 1) if i > start and fragment in text)

    assert loc.line(("database", "dsn")) == 3
    assert loc.line(("partman",)) == 5
    assert loc.line(("partman", "batch_size")) == line_of("batch_size")
    assert loc.line(("table", 0)) == line_of("[[table]]")
    assert loc.line(("table", 0, "tenants_query")) == line_of("tenants_query")
    first_tenant = line_of("[[table.tenant]]")
    assert loc.line(("table", 0, "tenant", 0)) == first_tenant
    assert loc.line(("table", 0, "tenant", 1, "retention_period")) == line_of(
        'retention_period = "forever"'
    )
    second_table = line_of("[[table]]", first_tenant)
    assert loc.line(("table", 1)) == second_table
    assert loc.line(("table", 1, "archive_schema")) == line_of("archive_schema")
    # "WHERE active = true" inside the multi-line string is not a key
    assert loc.line(("table", 0, "WHERE active")) == loc.line(("table", 0))
    # an unknown path falls back to the nearest enclosing one
    assert loc.line(("table", 1, "nope", 3)) == second_table
    assert loc.line(("nope",)) is None


def test_locator_reads_quoted_dotted_keys_inline_tables_and_multiline_arrays() -> None:
    text = """\
"quoted key" = 1
a . b = 2
[[table]]
tenant = [{id = "x"}, {id = "y"}]
tenants = [
  "a = b",
  "c",
]
after = 3
[x."y.z"]
k = 4
"""
    loc = Locator(text)
    assert loc.line(("quoted key",)) == 1
    assert loc.line(("a", "b")) == 2
    assert loc.line(("table", 0, "tenant", 1, "id")) == 4
    assert loc.line(("table", 0, "tenants", 0)) == 5
    assert loc.line(("table", 0, "after")) == 9
    assert loc.line(("x", "y.z", "k")) == 11


def test_config_keys_follow_the_config_dataclass() -> None:
    assert set(settings.CONFIG_FIELDS) == {
        f for f in partman.Config.__dataclass_fields__ if not f.startswith("_")
    }


def test_an_entry_with_only_an_unknown_key_is_still_read_so_check_can_check_the_rest() -> None:
    s = parse(table('partition_intervall = "1 day"'), environ={})
    assert [p.key for p in s.problems] == ["table[0].partition_intervall"]
    assert [t.qualified_name for t in s.tables] == ["convoy.events"]
    with pytest.raises(SettingsError):
        s.raise_for_problems()


def test_storage_parameters_are_an_inline_table_checked_at_their_line() -> None:
    good = parse(
        '[[table]]\nname = "events"\npartition_by = "at"\n'
        "storage_parameters = { fillfactor = 90, autovacuum_vacuum_scale_factor = 0.05 }\n"
    )
    assert not good.problems
    assert good.tables[0].table.storage_parameters == {
        "autovacuum_vacuum_scale_factor": 0.05,
        "fillfactor": 90,
    }
    bad = parse(
        '[[table]]\nname = "a"\npartition_by = "at"\nstorage_parameters = { fillfactr = 90 }\n'
        '[[table]]\nname = "b"\npartition_by = "at"\nstorage_parameters = "fillfactor=90"\n'
        '[[table]]\nname = "c"\npartition_by = "at"\n'
        "storage_parameters = { autovacuum_enabled = 1 }\n"
    )
    assert [str(p) for p in bad.problems] == [
        "partman.toml:4: table[0].storage_parameters: 'fillfactr' is not a storage parameter: "
        "did you mean fillfactor?",
        "partman.toml:8: table[1].storage_parameters: expected an inline table like "
        "{ fillfactor = 90 }, got a string ('fillfactor=90')",
        "partman.toml:12: table[2].storage_parameters: autovacuum_enabled must be true or "
        "false, got 1",
    ]
