"""The `partman` command line, end to end: the real entry point (`python -m partman`) as a
subprocess, against this test's fresh database, as cron and Kubernetes jobs run it.

Each test writes a partman.toml for the seed's tables (convoy.events, event_deliveries,
delivery_attempts, tenants from convoy.projects), runs commands, and then looks at the catalog
and the metadata rather than only at what was printed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seed import SEED_TABLES, catalog_fingerprint, create_seed_schema, days_covered

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
TIMEOUT = 120
DAY = dt.timedelta(days=1)
PROJECTS = ("project-acme", "project-globex")
AHEAD = 3  # partition_count in the config below

CONFIG = """\
[partman]
lock_timeout = "250ms"
statement_timeout = "30s"

[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 3
tenants_query = "SELECT uid FROM convoy.projects"

[[table.tenant]]
id = "o'reilly"
retention_period = "7 days"

[[table]]
name = "event_deliveries"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 3
tenants_query = "SELECT uid FROM convoy.projects"

[[table]]
name = "delivery_attempts"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "30 days"
partition_count = 3
tenants = ["project-acme"]
"""


def run(
    cwd: Path,
    *args: str,
    dsn: str | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m partman ARGS` in `cwd`, with no terminal and PARTMAN_DSN set to `dsn`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_") or k == "PATH"}
    environ.update({"COLUMNS": "200", "NO_COLOR": "1"})
    if dsn is not None:
        environ["PARTMAN_DSN"] = dsn
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == code, (
        f"exit {proc.returncode}, expected {code}\n--- stdout\n{proc.stdout}\n--- stderr\n"
        f"{proc.stderr[-4000:]}"
    )
    return proc


def as_json(proc: subprocess.CompletedProcess[str], code: int = 0) -> Any:
    return json.loads(ok(proc, code).stdout)


def seed(conn: Conn, projects: tuple[str, ...] = PROJECTS) -> None:
    create_seed_schema(conn)
    conn.execute("CREATE TABLE convoy.projects (uid varchar PRIMARY KEY)")
    for p in projects:
        conn.execute("INSERT INTO convoy.projects VALUES (%s)", (p,))


def write(tmp_path: Path, text: str = CONFIG, name: str = "partman.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def today() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def expected_days(first: dt.datetime, last: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Today and AHEAD days ahead, as of the start and the end of a run (midnight may pass)."""
    days = {first + i * DAY for i in range(AHEAD + 1)} | {last + i * DAY for i in range(AHEAD + 1)}
    return [(d, d + DAY) for d in sorted(days)]


def has_schema(conn: Conn, name: str) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return bool(row and row[0])


# -- the walkthrough of docs/cli.md --------------------------------------------------------------


def test_check_plan_apply_partitions_as_a_new_user_does(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    before = catalog_fingerprint(conn)

    check = ok(run(tmp_path, "check", dsn=dsn))
    assert "no problems" in check.stdout
    plan = ok(run(tmp_path, "plan", dsn=dsn))
    assert "+ register table" in plan.stdout
    assert "+ create convoy.events_project_acme" in plan.stdout
    assert "tenant o'reilly" in plan.stdout
    # 3 tenants of events, 2 of event_deliveries, 1 of delivery_attempts; today + 3 ahead each
    assert "Plan: 24 partition(s) to create, 0 to retire, 3 table(s) to register" in plan.stdout
    assert catalog_fingerprint(conn) == before, "plan changed the database"
    assert not has_schema(conn, "partman_meta")

    first = today()
    applied = ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert "Applied: created 24, retired 0" in applied.stdout
    days = expected_days(first, today())
    for table in SEED_TABLES:
        tenants = ["project-acme"] if table == "delivery_attempts" else [*PROJECTS]
        if table == "events":
            tenants.append("o'reilly")
        for tenant in tenants:
            assert days_covered(conn, "convoy", table, tenant) == days, (table, tenant)

    partitions = ok(run(tmp_path, "partitions", dsn=dsn))
    assert "convoy.events" in partitions.stdout
    assert "tenant o'reilly: 4 partition(s), covered until" in partitions.stdout
    assert "created" in partitions.stdout
    assert "No changes" in ok(run(tmp_path, "plan", dsn=dsn)).stdout
    again = ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert "created 0" in again.stdout


def test_logs_are_json_lines_on_stderr_when_not_a_terminal(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    proc = ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    events = {r["event"] for r in records}
    assert {"table_registered", "partition_create", "pass_finished"} <= events
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    quiet = ok(run(tmp_path, "apply", "--yes", "--log-level", "warning", dsn=dsn))
    assert quiet.stderr == ""


def test_maintain_is_apply_and_json_reports_the_pass(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    write(tmp_path)
    report = as_json(run(tmp_path, "maintain", "--yes", "--json", dsn=dsn))
    assert report["partitions_created"] == 24
    assert report["operations_failed"] == 0
    assert {c["kind"] for c in report["changes"]} == {"create_metadata", "add_table", "add_tenant"}
    assert all(r["outcome"] == "ok" for r in report["results"])


# -- bad config: file:line: key, exit 2, the database untouched ----------------------------------

BAD_CASES = {
    "unknown key": (
        'partition_interval = "1 day"',
        'partition_intervall = "1 day"',
        "table[0].partition_intervall: unknown key (did you mean partition_interval?)",
    ),
    "wrong type": (
        "partition_count = 3",
        'partition_count = "3"',
        "table[0].partition_count: expected an integer, got a string ('3')",
    ),
    "bad interval": (
        'partition_interval = "1 day"',
        'partition_interval = "1 fortnight"',
        "table[0].partition_interval: invalid partition interval '1 fortnight'",
    ),
    "unknown table": (
        'name = "events"',
        'name = "evnts"',
        "table[0].name: table convoy.evnts does not exist",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_config_points_at_file_line_and_key_and_nothing_runs(
    case: str, dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    good, bad, message = BAD_CASES[case]
    text = CONFIG.replace(good, bad, 1)
    assert text != CONFIG
    write(tmp_path, text)
    line = text.splitlines().index(bad) + 1
    before = catalog_fingerprint(conn)
    for command in (["apply", "--yes"], ["plan"], ["import"]):
        proc = ok(run(tmp_path, *command, dsn=dsn), 2)
        assert f"partman.toml:{line}: {message}" in proc.stderr, proc.stderr
        assert "nothing was run" in proc.stderr
        assert proc.stdout == ""
    assert catalog_fingerprint(conn) == before


def test_check_lists_every_problem_at_once(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    conn.execute(
        "CREATE TABLE convoy.short (id int, project_id varchar(5) NOT NULL, created_at "
        "timestamptz NOT NULL) PARTITION BY RANGE (project_id, created_at)"
    )
    text = """\
[partman]
sample_rate = "1 fortnight"

[[table]]
name = "evnts"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"

[[table]]
name = "events"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
retention_periode = "30 days"

[[table]]
name = "event_deliveries"
schema = "convoy"
tenant_id_column = "projectid"
partition_by = "created_at"

[[table]]
name = "delivery_attempts"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
tenants_query = "SELECT uid FROM convoy.project"

[[table]]
name = "short"
schema = "convoy"
tenant_id_column = "project_id"
partition_by = "created_at"
tenants = ["ok", "much-too-long"]
"""
    write(tmp_path, text)
    before = catalog_fingerprint(conn)
    proc = ok(run(tmp_path, "check", dsn=dsn), 1)
    lines = text.splitlines()

    def at(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if fragment in line)

    expected = [
        f"partman.toml:{at('sample_rate')}: partman.sample_rate: '1 fortnight'",
        f"partman.toml:{at('evnts')}: table[0].name: table convoy.evnts does not exist",
        f"partman.toml:{at('retention_periode')}: table[1].retention_periode: unknown key "
        "(did you mean retention_period?)",
        f"partman.toml:{at('projectid')}: table[2].tenant_id_column: convoy.event_deliveries "
        "has no column 'projectid'",
        f"partman.toml:{at('convoy.project')}: table[3].tenants_query: the query failed",
        f"partman.toml:{at('much-too-long')}: table[4].tenants[1]: tenant id 'much-too-long'",
    ]
    for fragment in expected:
        assert fragment in proc.stdout, f"{fragment!r} not in\n{proc.stdout}"
    assert "6 problem(s)." in proc.stdout
    report = as_json(run(tmp_path, "check", "--json", dsn=dsn), 1)
    assert report["ok"] is False
    assert len(report["problems"]) == 6
    assert {p["key"] for p in report["problems"]} == {
        "partman.sample_rate",
        "table[0].name",
        "table[1].retention_periode",
        "table[2].tenant_id_column",
        "table[3].tenants_query",
        "table[4].tenants[1]",
    }
    assert catalog_fingerprint(conn) == before


def test_check_passes_on_a_good_config_with_the_dsn_from_the_environment(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path, '[database]\ndsn = "${MY_DATABASE_URL}"\n\n' + CONFIG, name="prod.toml")
    env = {"MY_DATABASE_URL": dsn, "PARTMAN_CONFIG": str(tmp_path / "prod.toml")}
    report = as_json(run(tmp_path, "check", "--json", env=env))
    assert report == {
        "ok": True,
        "file": str(tmp_path / "prod.toml"),
        "problems": [],
        "warnings": [],
        "tables": [
            {
                "table": f"convoy.{name}",
                "registered": False,
                "tenants_declared": {"events": 1, "event_deliveries": 0}.get(name, 1),
                "tenants_from_query": 0 if name == "delivery_attempts" else 2,
                "tenants_registered": 0,
            }
            for name in SEED_TABLES
        ],
    }
    missing = ok(run(tmp_path, "check", env={"PARTMAN_CONFIG": env["PARTMAN_CONFIG"]}), 1)
    assert "prod.toml:2: database.dsn: environment variable MY_DATABASE_URL is not set" in (
        missing.stdout
    )


def test_no_config_file_is_a_usage_error(dsn: str, tmp_path: Path) -> None:
    proc = ok(run(tmp_path, "plan", dsn=dsn), 2)
    assert "no config file" in proc.stderr
    proc = ok(run(tmp_path, "plan", "--config", "nope.toml", dsn=dsn), 2)
    assert "nope.toml: no such config file" in proc.stderr


# -- apply and confirmation -------------------------------------------------------------------


def test_apply_without_yes_and_without_a_terminal_refuses(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    before = catalog_fingerprint(conn)
    proc = ok(run(tmp_path, "apply", dsn=dsn), 2)
    assert "stdin is not a terminal" in proc.stderr
    assert "partman apply --yes" in proc.stderr
    proc = ok(run(tmp_path, "apply", dsn=dsn, stdin="y\n"), 2)  # a pipe is not a person
    assert catalog_fingerprint(conn) == before


def test_tenants_query_picks_up_a_tenant_signed_up_between_two_applies(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert days_covered(conn, "convoy", "events", "project-initech") == []
    conn.execute("INSERT INTO convoy.projects VALUES ('project-initech')")

    plan = as_json(run(tmp_path, "plan", "--json", dsn=dsn))
    assert {(c["kind"], c["table"], c["tenant"]) for c in plan["changes"]} == {
        ("add_tenant", "convoy.events", "project-initech"),
        ("add_tenant", "convoy.event_deliveries", "project-initech"),
    }
    assert plan["summary"]["partitions_to_create"] == 2 * (AHEAD + 1)

    first = today()
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    days = expected_days(first, today())
    assert days_covered(conn, "convoy", "events", "project-initech") == days
    assert days_covered(conn, "convoy", "event_deliveries", "project-initech") == days
    assert days_covered(conn, "convoy", "delivery_attempts", "project-initech") == []
    listed = as_json(run(tmp_path, "tenants", "list", "--json", dsn=dsn))
    assert ("convoy.events", "project-initech") in {
        (t["table"], t["tenant"]) for t in listed["tenants"]
    }


# -- read commands: JSON ------------------------------------------------------------------------


def test_read_commands_print_parseable_json(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    write(tmp_path)
    plan = as_json(run(tmp_path, "plan", "--json", dsn=dsn))
    assert set(plan) == {"now", "changes", "operations", "notices", "summary", "indexes"}
    assert plan["summary"]["partitions_to_create"] == 24
    first = plan["operations"][0]
    assert {"kind", "table", "tenant", "partition", "from", "to", "reason", "sql"} <= set(first)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))

    parts = as_json(run(tmp_path, "partitions", "--json", dsn=dsn))
    assert len(parts["partitions"]) == 24
    assert all(p["owner"] == "created" and p["size_bytes"] > 0 for p in parts["partitions"])
    assert len(parts["coverage"]) == 6
    assert all(c["runway_seconds"] > AHEAD * 86400 for c in parts["coverage"])
    assert set(parts["table_sizes"]) == {f"convoy.{t}" for t in SEED_TABLES}
    only = as_json(
        run(
            tmp_path,
            "partitions",
            "--json",
            "--table",
            "convoy.events",
            "--tenant",
            "o'reilly",
            dsn=dsn,
        )
    )
    assert {(p["table"], p["tenant"]) for p in only["partitions"]} == {
        ("convoy.events", "o'reilly")
    }

    tenants = as_json(run(tmp_path, "tenants", "list", "--json", dsn=dsn))
    oreilly = next(t for t in tenants["tenants"] if t["tenant"] == "o'reilly")
    assert oreilly["retention_period"] == "1 week"
    assert oreilly["own"]["retention_period"] == "1 week"
    assert oreilly["partition_count"] == AHEAD and oreilly["in_config"] is True
    assert tenants["not_registered"] == []

    status = as_json(run(tmp_path, "status", "--json", dsn=dsn))
    assert status["ok"] is True and status["findings"] == []
    assert status["runs"][0]["outcome"] == "ok"
    assert status["runs"][0]["summary"]["partitions_created"] == 24

    check = as_json(run(tmp_path, "check", "--json", dsn=dsn))
    assert check["ok"] is True
    assert all(t["registered"] for t in check["tables"])

    imported = as_json(run(tmp_path, "import", "--json", dsn=dsn))
    assert imported["summary"] == {
        "imported": 0,
        "already_owned": 24,
        "misaligned": 0,
        "foreign": 0,
    }


# -- status -----------------------------------------------------------------------------------


def test_status_exit_codes(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    write(tmp_path)
    never = ok(run(tmp_path, "status", dsn=dsn), 1)
    assert "partman is not set up in this database" in never.stderr

    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert "All well." in ok(run(tmp_path, "status", dsn=dsn)).stdout

    # a partition covering today vanishes: that tenant has no runway left
    name = conn.execute(
        "SELECT partition_name FROM partman_meta.partitions WHERE parent_name = 'events' "
        "AND tenant_id = 'project-globex' ORDER BY lower_bound LIMIT 1"
    ).fetchone()
    assert name is not None
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("convoy", name[0])))
    short = ok(run(tmp_path, "status", dsn=dsn), 1)
    assert "convoy.events tenant project-globex: no partition covers now" in short.stderr
    report = as_json(run(tmp_path, "status", "--json", dsn=dsn), 1)
    assert [(r["table"], r["tenant"]) for r in report["short_runway"]] == [
        ("convoy.events", "project-globex")
    ]

    ok(run(tmp_path, "apply", "--yes", dsn=dsn))  # puts it back
    ok(run(tmp_path, "status", dsn=dsn))

    conn.execute(
        "INSERT INTO partman_meta.runs (id, manager, started_at, finished_at, outcome, summary) "
        "VALUES (gen_random_uuid(), 'elsewhere', now() + interval '1 second', "
        "now() + interval '2 seconds', 'failed', '{\"operations_failed\": 2}')"
    )
    failed = ok(run(tmp_path, "status", dsn=dsn), 1)
    assert "failed: 2 operation(s) failed" in failed.stderr


# -- import ---------------------------------------------------------------------------------


def test_import_adopts_existing_partitions_by_their_bounds(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    day = today()
    for name, lower, upper in (
        ("legacy_day", day, day + DAY),
        ("legacy_half", day + DAY, day + 1.5 * DAY),  # not one period: never adopted
    ):
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} PARTITION OF convoy.events "
                "FOR VALUES FROM ('project-acme', {}) TO ('project-acme', {})"
            ).format(sql.Identifier("convoy", name), sql.Literal(lower), sql.Literal(upper))
        )
    write(tmp_path)
    report = as_json(run(tmp_path, "import", "--json", "--table", "convoy.events", dsn=dsn))
    assert [t["table"] for t in report["tables"]] == ["convoy.events"]
    assert [f["partition"] for f in report["tables"][0]["imported"]] == ["convoy.legacy_day"]
    assert [f["partition"] for f in report["tables"][0]["misaligned"]] == ["convoy.legacy_half"]
    text = ok(run(tmp_path, "import", "--table", "convoy.events", dsn=dsn)).stdout
    assert "already owned 1" in text and "misaligned 1 (left alone)" in text

    parts = as_json(run(tmp_path, "partitions", "--json", dsn=dsn))
    owners = {p["partition"]: p["owner"] for p in parts["partitions"]}
    assert owners == {"convoy.legacy_day": "adopted", "convoy.legacy_half": "foreign"}
    unknown = ok(run(tmp_path, "import", "--table", "convoy.nope", dsn=dsn), 2)
    assert "convoy.nope is not a table of partman.toml" in unknown.stderr


# -- tenants ------------------------------------------------------------------------------------


def test_tenants_add_set_remove(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    write(tmp_path)
    ok(run(tmp_path, "init", dsn=dsn))
    assert has_schema(conn, "partman_meta")
    added = ok(
        run(
            tmp_path,
            "tenants",
            "add",
            "convoy.delivery_attempts",
            "t-1",
            "t-2",
            "--partition-count",
            "1",
            dsn=dsn,
        )
    )
    assert "+ tenant t-1 of convoy.delivery_attempts" in added.stdout

    def policy(tenant: str) -> dict[str, Any]:
        listed = as_json(run(tmp_path, "tenants", "list", "--json", dsn=dsn))
        return next(t for t in listed["tenants"] if t["tenant"] == tenant)

    assert policy("t-1")["own"] == {
        "retention_period": None,
        "partition_count": 1,
        "retention_action": None,
    }
    ok(
        run(
            tmp_path,
            "tenants",
            "set",
            "convoy.delivery_attempts",
            "t-1",
            "--retention-period",
            "forever",
            "--partition-count",
            "inherit",
            dsn=dsn,
        )
    )
    assert policy("t-1")["own"] == {
        "retention_period": "forever",
        "partition_count": None,
        "retention_action": None,
    }
    assert policy("t-1")["partition_count"] == AHEAD

    unknown = ok(
        run(
            tmp_path, "tenants", "set", "convoy.events", "nobody", "--partition-count", "2", dsn=dsn
        ),
        2,
    )
    assert "is not registered" in unknown.stderr
    nothing = ok(run(tmp_path, "tenants", "set", "convoy.events", "x", dsn=dsn), 2)
    assert "nothing to set" in nothing.stderr

    removed = ok(run(tmp_path, "tenants", "remove", "convoy.delivery_attempts", "t-2", dsn=dsn))
    assert "- tenant t-2" in removed.stdout
    ok(run(tmp_path, "tenants", "remove", "convoy.delivery_attempts", "t-2", dsn=dsn), 1)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert len(days_covered(conn, "convoy", "delivery_attempts", "t-1")) == AHEAD + 1
    assert days_covered(conn, "convoy", "delivery_attempts", "t-2") == []
    note = ok(run(tmp_path, "tenants", "remove", "convoy.delivery_attempts", "--all", dsn=dsn))
    assert "no longer managed" in note.stdout
    assert "the next apply registers it again" in note.stderr


def test_help_teaches_each_command(tmp_path: Path) -> None:
    for command in (
        ["init"],
        ["check"],
        ["plan"],
        ["apply"],
        ["maintain"],
        ["import"],
        ["partitions"],
        ["status"],
        ["tenants", "list"],
        ["tenants", "add"],
        ["tenants", "set"],
        ["tenants", "remove"],
    ):
        proc = ok(run(tmp_path, *command, "--help"))
        assert "Usage: python -m partman" in proc.stdout
        assert "Example" in proc.stdout or command == ["maintain"], command
    ok(run(tmp_path, "plan", "--no-such-option"), 2)


def test_demo_still_runs(dsn: str, tmp_path: Path) -> None:
    proc = ok(run(tmp_path, "demo", "--dsn", dsn))
    assert "Demo finished" in proc.stdout


DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_the_walkthrough_in_docs_cli_md_is_true(dsn: str, conn: Conn, tmp_path: Path) -> None:
    """The doc's SQL and config, verbatim: check finds the two planted mistakes at the lines
    the doc shows; once fixed, check, plan, apply and partitions do what the doc says."""
    doc = DOC.read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc, re.S)
    conn.execute(next(text for kind, text in blocks if kind == "sql"))
    config = write(tmp_path, next(text for kind, text in blocks if kind == "toml"))
    env = {"DATABASE_URL": dsn}

    check = ok(run(tmp_path, "check", env=env), 1)
    shown = [line for line in check.stdout.splitlines() if line.startswith("partman.toml:")]
    assert shown and all(line in doc for line in shown), check.stdout
    assert len(shown) == 2

    config.write_text(
        config.read_text()
        .replace("delivery_attemps", "delivery_attempts")
        .replace("partition_intervall", "partition_interval")
    )
    assert "partman.toml: no problems." in ok(run(tmp_path, "check", env=env)).stdout
    summary = ok(run(tmp_path, "plan", env=env)).stdout.splitlines()[-1]
    assert summary.startswith("Plan: ") and summary in doc
    applied = ok(run(tmp_path, "apply", "--yes", env=env)).stdout
    assert "Applied: created 23, retired 0 (dropped 0), failed 0, skipped 0" in applied
    assert "Applied: created 23, retired 0 (dropped 0), failed 0, skipped 0" in doc
    partitions = ok(run(tmp_path, "partitions", "--table", "convoy.events", env=env)).stdout
    assert "tenant project-globex: 3 partition(s), covered until" in partitions
    assert "All well." in ok(run(tmp_path, "status", env=env)).stdout


def test_run_serves_the_api_syncs_the_file_each_pass_and_stops_on_sigterm(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    import signal
    import socket
    import time
    import urllib.request

    seed(conn)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = CONFIG.replace(
        "[partman]\n",
        '[service]\ntoken = "${PARTMAN_TEST_TOKEN}"\n\n[partman]\nsample_rate = "1s"\n',
    )
    write(tmp_path, config)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"PARTMAN_DSN": dsn, "PARTMAN_TEST_TOKEN": "s3cret", "NO_COLOR": "1"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "partman", "run", "--port", str(port)],
        cwd=tmp_path,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            try:
                covered = days_covered(conn, "convoy", "events", "project-acme")
                if len(covered) == AHEAD + 1 and get("/readyz"):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert {t["table"] for t in get("/api/tables")} == {
            f"convoy.{name}" for name in SEED_TABLES
        }
        conn.execute("INSERT INTO convoy.projects VALUES ('project-initech')")
        while len(days_covered(conn, "convoy", "events", "project-initech")) < AHEAD + 1:
            assert time.monotonic() < deadline, "tenants_query not picked up by the service"
            time.sleep(0.2)
        request = urllib.request.Request(base + "/api/apply", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
            assert b"partman_runway_seconds" in response.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    # every line on stderr is one JSON object, uvicorn's too, each with one message
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(r["logger"].startswith("uvicorn") for r in records), err[-3000:]
    assert all("message_" not in r and "color_message" not in r for r in records)


# -- issue 13: a first hour without surprises -------------------------------------------------


def test_an_unset_token_variable_stops_only_partman_run(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    """`[service] token = "${PARTMAN_TOKEN}"`, as documented, on a cron host without it."""
    seed(conn)
    text = '[service]\ntoken = "${PARTMAN_TOKEN}"\n\n' + CONFIG
    write(tmp_path, text)
    ok(run(tmp_path, "plan", dsn=dsn))
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    ok(run(tmp_path, "status", dsn=dsn))
    check = ok(run(tmp_path, "check", dsn=dsn))
    message = (
        "partman.toml:2: service.token: environment variable PARTMAN_TOKEN is not set (set it, "
        "or write ${PARTMAN_TOKEN:-fallback} for a fallback)"
    )
    assert f"warning: {message}" in check.stdout
    assert "partman.toml: no problems, 1 warning(s)." in check.stdout
    served = ok(run(tmp_path, "run", "--port", "0", dsn=dsn), 2)
    assert message in served.stderr
    assert "1 problem(s) in partman.toml; nothing was run" in served.stderr


def test_check_warns_of_a_retention_shorter_than_the_interval_and_counts_tenants_once(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    text = CONFIG.replace(
        'retention_period = "30 days"\npartition_count = 3\ntenants = ["project-acme"]',
        'retention_period = "12 hours"\npartition_count = 3\ntenants = ["project-acme"]',
    ).replace(
        'tenants_query = "SELECT uid FROM convoy.projects"\n\n[[table.tenant]]',
        'tenants_query = "SELECT uid FROM convoy.projects"\ntenants = ["project-acme"]\n\n'
        "[[table.tenant]]",
    )
    assert text.count("12 hours") == 1 and text.count('tenants = ["project-acme"]') == 2
    write(tmp_path, text)
    check = ok(run(tmp_path, "check", dsn=dsn))
    line = text.splitlines().index('retention_period = "12 hours"') + 1
    assert (
        f"warning: partman.toml:{line}: table[2].retention_period: convoy.delivery_attempts: "
        "retention_period 12 hours is shorter than partition_interval 1 day: retention drops "
        "whole partitions, so every partition expires 12 hours after it is complete"
    ) in check.stdout
    assert "partman.toml: no problems, 1 warning(s)." in check.stdout
    # project-acme is declared and returned by tenants_query; o'reilly is declared: 3 tenants
    assert "ok  convoy.events (not registered yet; 3 tenant(s) from the file)" in check.stdout
    report = as_json(run(tmp_path, "check", "--json", dsn=dsn))
    assert report["ok"] is True
    assert [w["key"] for w in report["warnings"]] == ["table[2].retention_period"]


def test_cli_errors_say_what_to_do_from_the_cli_and_suggest_the_qualified_name(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    added = ok(run(tmp_path, "tenants", "add", "events", "t-1", dsn=dsn), 2)
    assert "events is not managed by partman: declare it as a [[table]] in partman.toml" in (
        added.stderr
    )
    assert "did you mean convoy.events?" in added.stderr
    assert "add_managed_table" not in added.stderr
    unknown = ok(run(tmp_path, "tenants", "add", "convoy.nope", "t-1", dsn=dsn), 2)
    assert "convoy.nope is not managed by partman" in unknown.stderr
    assert "()" not in unknown.stderr
    assert "did you mean convoy.event_deliveries?" in (
        ok(
            run(
                tmp_path,
                "tenants",
                "set",
                "convoy.event_delivery",
                "x",
                "--partition-count",
                "2",
                dsn=dsn,
            ),
            2,
        ).stderr
    )
    listed = ok(run(tmp_path, "partitions", "--table", "events", dsn=dsn), 2)
    assert "did you mean convoy.events?" in listed.stderr
    removed = ok(run(tmp_path, "tenants", "remove", "events", "project-acme", dsn=dsn), 1)
    assert "(events is not managed; did you mean convoy.events?)" in removed.stderr
    imported = ok(run(tmp_path, "import", "--table", "events", dsn=dsn), 2)
    assert "did you mean convoy.events?" in imported.stderr


def test_tenants_set_shows_what_changed_and_remove_logs_a_tenant_event(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    seed(conn)
    write(tmp_path)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    changed = ok(
        run(
            tmp_path,
            "tenants",
            "set",
            "convoy.events",
            "project-acme",
            "--partition-count",
            "5",
            dsn=dsn,
        )
    )
    assert changed.stdout.strip() == (
        "~ tenant project-acme of convoy.events: partition_count 3 -> 5"
    )
    removed = ok(run(tmp_path, "tenants", "remove", "convoy.events", "project-acme", dsn=dsn))
    events = [json.loads(line)["event"] for line in removed.stderr.splitlines() if line[:1] == "{"]
    assert "tenant_removed" in events and "table_removed" not in events


def test_status_shows_times_to_the_second(dsn: str, conn: Conn, tmp_path: Path) -> None:
    seed(conn)
    write(tmp_path)
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    status = ok(run(tmp_path, "status", dsn=dsn)).stdout
    run_line = status.splitlines()[1]
    assert re.match(r"  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00  ok ", run_line), run_line


def test_version_is_a_flag_in_the_help(tmp_path: Path) -> None:
    shown = ok(run(tmp_path, "--help")).stdout
    line = next(line for line in shown.splitlines() if "--version" in line)
    assert "<bool>" not in line and "Print the version" in line
    plan = ok(run(tmp_path, "plan", "--help")).stdout
    assert all("<bool>" not in line for line in plan.splitlines() if "--json" in line)
    assert ok(run(tmp_path, "--version")).stdout.startswith("partman ")
    for args in ([], ["plan"], ["tenants"], ["tenants", "add"]):  # --help is a flag too
        shown = ok(run(tmp_path, *args, "--help")).stdout
        assert "<bool>" not in next(line for line in shown.splitlines() if "--help" in line)


def test_demo_serve_runs_its_first_pass_within_seconds_and_says_when_the_next_comes(
    dsn: str, tmp_path: Path
) -> None:
    import queue
    import signal
    import threading
    import time

    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    errors = (tmp_path / "stderr").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "partman", "demo", "--serve", "--dsn", dsn, "--port", "0"],
        cwd=tmp_path,
        env={**environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []]).start()
    try:
        shown: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("pass finished:") for line in shown):
            try:
                shown.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                log = (tmp_path / "stderr").read_text()[-3000:]
                raise AssertionError(f"no pass within 60 s; printed: {shown}\n{log}") from None
        banner = "".join(shown)
        assert re.search(r"first maintenance pass in \d+ s \(at \d\d:\d\d:\d\d UTC\)", banner)
        assert re.search(
            r"pass finished: \d+ partition\(s\) created, 4 retired; next pass in 2 min "
            r"\(at \d\d:\d\d:\d\d UTC\)",
            shown[-1],
        ), shown[-1]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        errors.close()
