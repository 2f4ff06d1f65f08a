"""settings.from_mapping: partman.toml's sections and keys given as an already-parsed mapping
(Django's PARTMAN block) are read by the same code, with the same results and messages."""

from __future__ import annotations

import datetime as dt
import tomllib

from partman import settings

TOML = """\
[partman]
lock_timeout = "500ms"

[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 10
tenants = ["project-acme"]
tenants_query = "SELECT uid FROM convoy.projects"

[[table.tenant]]
id = "project-globex"
retention_period = "7 days"
"""


def test_a_mapping_reads_as_the_same_toml_text_does() -> None:
    from_text = settings.parse(TOML, environ={})
    from_mapping = settings.from_mapping(tomllib.loads(TOML), file="settings.PARTMAN", environ={})
    assert from_mapping.problems == ()
    assert from_mapping.file == "settings.PARTMAN"
    assert from_mapping.config == from_text.config
    assert from_mapping.config.lock_timeout == dt.timedelta(milliseconds=500)
    assert [t.table for t in from_mapping.tables] == [t.table for t in from_text.tables]
    assert [t.tenants_query for t in from_mapping.tables] == ["SELECT uid FROM convoy.projects"]
    spec = from_mapping.tables[0]
    assert [(str(t.tenant_id), t.own_policy) for t in spec.tenants] == [
        ("project-acme", False),
        ("project-globex", True),
    ]


def test_problems_in_a_mapping_name_the_key_and_the_fix_without_a_line() -> None:
    data = tomllib.loads(TOML.replace("partition_interval", "partition_intervall"))
    data["partman"]["lock_timeout"] = 250
    found = settings.from_mapping(data, file="settings.PARTMAN", environ={})
    shown = sorted(str(p) for p in found.problems)
    assert shown == [
        "settings.PARTMAN: partman.lock_timeout: 250 has no unit; write e.g. "
        + settings.DURATION_EXAMPLES,
        "settings.PARTMAN: table[0].partition_intervall: unknown key (did you mean "
        "partition_interval?)",
    ]
    assert all(p.line is None for p in found.problems)


def test_environment_variables_expand_as_in_the_file() -> None:
    data = {"table": [{"name": "${TABLE}", "partition_by": "created_at"}]}
    found = settings.from_mapping(data, file="settings.PARTMAN", environ={"TABLE": "events"})
    assert found.problems == ()
    assert found.tables[0].qualified_name == "public.events"
