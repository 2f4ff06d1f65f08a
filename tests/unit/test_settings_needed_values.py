"""An environment variable that is not set stops only the commands that use its value, and
what is legal but likely a mistake is a warning (issue 13)."""

from __future__ import annotations

import datetime as dt

from partman.decide.validate import short_retention, warnings
from partman.model.intervals import Interval, parse_retention
from partman.settings import parse

SERVICE = """\
[service]
token = "${PARTMAN_TOKEN}"
"""

TABLE = """\
[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "{interval}"
retention_period = "{retention}"

[[table.tenant]]
id = "acme"
retention_period = "{tenant}"
"""

MISSING = (
    "partman.toml:2: service.token: environment variable PARTMAN_TOKEN is not set (set it, or "
    "write ${PARTMAN_TOKEN:-fallback} for a fallback)"
)


def test_an_unset_service_variable_stops_only_the_commands_that_use_the_service() -> None:
    found = parse(SERVICE, environ={})
    assert [str(p) for p in found.problems] == [MISSING]  # the library still says so
    assert [str(p) for p in found.unset] == [MISSING]
    assert found.problems_for() == ()  # plan, apply, status: they never use the token
    assert [str(p) for p in found.problems_for("service")] == [MISSING]  # partman run does
    assert "token" not in found.service


def test_an_unset_database_variable_stops_every_command() -> None:
    found = parse('[database]\ndsn = "${DATABASE_URL}"\n', environ={})
    assert found.unset == ()
    assert [p.key for p in found.problems_for()] == ["database.dsn"]


def test_other_problems_in_the_service_section_stop_every_command() -> None:
    found = parse('[service]\nport = "eighty"\n', environ={})
    assert [p.key for p in found.problems_for()] == ["service.port"]


def test_a_retention_shorter_than_the_interval_is_a_warning_at_its_key() -> None:
    text = TABLE.format(interval="1 month", retention="5 days", tenant="1 day")
    found = parse(text, environ={}).raise_for_problems()
    shown = [str(w) for w in warnings(found)]
    assert len(shown) == 2
    assert shown[0].startswith(
        "partman.toml:7: table[0].retention_period: convoy.events: retention_period 5 days is "
        "shorter than partition_interval 1 month: "
    )
    assert "every partition expires 5 days after it is complete" in shown[0]
    assert shown[1].startswith(
        "partman.toml:11: table[0].tenant[0].retention_period: convoy.events tenant acme: "
        "retention_period 1 day is shorter than partition_interval 1 month"
    )


def test_a_retention_of_at_least_one_interval_or_forever_is_no_warning() -> None:
    text = TABLE.format(interval="1 day", retention="1 day", tenant="forever")
    assert warnings(parse(text, environ={}).raise_for_problems()) == []
    day = Interval.parse("1 day")
    assert short_retention("t", day, None) is None
    assert short_retention("t", day, parse_retention(dt.timedelta(hours=24))) is None
    assert short_retention("t", day, parse_retention(dt.timedelta(hours=23))) is not None
