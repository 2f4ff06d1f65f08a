"""The command line over a fleet: partman.toml's [[databases]], each database in turn, as
cron jobs and Kubernetes CronJobs run it. Two real databases on the test server, and a third
whose DSN points at a port nobody listens on (a database that is down): its section says why,
the others are still applied, the exit code says some failed."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgserver import Server

pytestmark = pytest.mark.one_server

TIMEOUT = 120
TABLES = """\
CREATE TABLE public.events (id bigint, created_at timestamptz NOT NULL)
    PARTITION BY RANGE (created_at);
CREATE SCHEMA shop;
CREATE TABLE shop.orders (tenant_id text NOT NULL, placed_at timestamptz NOT NULL)
    PARTITION BY RANGE (tenant_id, placed_at);
"""
FLEET = """\
[partman]
lock_timeout = "250ms"

[[table]]                    # every database has it
name = "events"
partition_by = "created_at"
partition_interval = "1 day"
partition_count = 2

[[databases]]
name = "orders"
dsn_env = "ORDERS_DSN"

[[databases.table]]
name = "orders"
schema = "shop"
tenant_id_column = "tenant_id"
partition_by = "placed_at"
partition_count = 1
tenants = ["acme", "globex"]

[[databases]]
name = "billing"
dsn = "${BILLING_DSN}"

[[databases]]
name = "archive"
dsn_env = "ARCHIVE_DSN"
"""


@pytest.fixture
def other_dsn(pg_server: Server) -> Iterator[str]:
    """A second fresh database on the same server (a fleet of two is two databases)."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def down_dsn() -> str:
    """A DSN nobody answers: a TCP port on localhost that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"host=127.0.0.1 port={port} dbname=archive user=postgres connect_timeout=2"


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"COLUMNS": "200", "NO_COLOR": "1", **env})
    return subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def exits(proc: subprocess.CompletedProcess[str], code: int) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == code, (
        f"exit {proc.returncode}, expected {code}\n--- stdout\n{proc.stdout}\n--- stderr\n"
        f"{proc.stderr[-4000:]}"
    )
    return proc


def partitions(dsn: str, parent: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            (parent,),
        ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def fleet(dsn: str, other_dsn: str, tmp_path: Path) -> dict[str, str]:
    """partman.toml with three databases (orders and billing up, archive down), and the
    environment holding their DSNs."""
    for url in (dsn, other_dsn):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(TABLES)
    (tmp_path / "partman.toml").write_text(FLEET)
    return {"ORDERS_DSN": dsn, "BILLING_DSN": other_dsn, "ARCHIVE_DSN": down_dsn()}


def test_apply_runs_every_database_and_one_down_does_not_stop_the_others(
    dsn: str, other_dsn: str, fleet: dict[str, str], tmp_path: Path
) -> None:
    applied = exits(run(tmp_path, fleet, "apply", "--yes"), 1)
    out = applied.stdout
    assert out.index("== database orders ==") < out.index("== database billing ==")
    assert out.index("== database billing ==") < out.index("== database archive ==")
    orders, rest = out.split("== database billing ==")
    billing, archive = rest.split("== database archive ==")
    assert "Applied: created 7," in orders  # events today + 2, orders 2 tenants x (today + 1)
    assert "Applied: created 3," in billing
    assert "database archive not done: cannot connect to the database:" in archive
    assert "2 of 3 database(s) ok; not ok: archive" in archive
    assert "cannot connect to the database" in applied.stderr
    # the JSON log lines say which database each is about
    records = [json.loads(line) for line in applied.stderr.splitlines() if line.startswith("{")]
    done = {r["database"]: r["exit_code"] for r in records if r.get("event") == "database_done"}
    assert done == {"orders": 0, "billing": 0, "archive": 2}
    created = [r for r in records if "events_p" in r.get("message", "")]
    assert created and {r["database"] for r in created} == {"orders", "billing"}
    assert len(partitions(dsn, "public.events")) == 3
    assert len(partitions(dsn, "shop.orders")) == 4
    assert len(partitions(other_dsn, "public.events")) == 3
    assert partitions(other_dsn, "shop.orders") == [], "billing does not declare shop.orders"


def test_apply_json_is_one_document_with_a_section_per_database(
    fleet: dict[str, str], tmp_path: Path
) -> None:
    doc = json.loads(exits(run(tmp_path, fleet, "apply", "--json"), 1).stdout)
    assert doc["ok"] is False and doc["exit_code"] == 1
    by_name = {d["database"]: d for d in doc["databases"]}
    assert list(by_name) == ["orders", "billing", "archive"]
    assert by_name["orders"]["exit_code"] == 0 and by_name["orders"]["error"] is None
    assert by_name["orders"]["result"]["partitions_created"] == 7
    assert by_name["billing"]["result"]["partitions_created"] == 3
    assert by_name["archive"]["exit_code"] == 2
    assert by_name["archive"]["error"].startswith("cannot connect to the database:")
    assert by_name["archive"]["result"] is None


def test_database_option_picks_one_and_an_unknown_name_is_a_usage_error(
    dsn: str, other_dsn: str, fleet: dict[str, str], tmp_path: Path
) -> None:
    one = exits(run(tmp_path, fleet, "apply", "--yes", "--database", "billing"), 0)
    assert "== database" not in one.stdout
    assert "Applied: created 3," in one.stdout
    assert partitions(dsn, "public.events") == []
    assert len(partitions(other_dsn, "public.events")) == 3
    env = {**fleet, "PARTMAN_DATABASE": "orders"}
    exits(run(tmp_path, env, "apply", "--yes"), 0)
    assert len(partitions(dsn, "shop.orders")) == 4
    wrong = exits(run(tmp_path, fleet, "plan", "--database", "billings"), 2)
    assert "partman.toml has no database 'billings' (databases: orders, billing, archive)" in (
        wrong.stderr
    )
    assert "did you mean billing?" in wrong.stderr


def test_plan_check_status_and_partitions_go_over_the_fleet(
    fleet: dict[str, str], tmp_path: Path
) -> None:
    plan = exits(run(tmp_path, fleet, "plan"), 1).stdout
    assert "+ create public.events_p" in plan.split("== database billing ==")[1]
    assert "database archive not done: cannot connect" in plan
    check = exits(run(tmp_path, fleet, "check"), 1).stdout
    assert check.count("ok  public.events (not registered yet") == 2
    assert "ok  shop.orders (not registered yet; 2 tenant(s) from the file)" in check
    exits(run(tmp_path, fleet, "apply", "--yes"), 1)
    status = json.loads(exits(run(tmp_path, fleet, "status", "--json"), 1).stdout)
    by_name = {d["database"]: d for d in status["databases"]}
    assert by_name["orders"]["exit_code"] == 0 and by_name["orders"]["result"]["ok"] is True
    assert by_name["billing"]["exit_code"] == 0
    assert by_name["archive"]["exit_code"] == 2
    listed = exits(run(tmp_path, fleet, "partitions", "--summary", "--database", "orders"), 0)
    assert "tenant globex: 2 partition(s), covered until" in listed.stdout


def test_commands_of_one_database_ask_which_and_dsn_does_not_mix_with_databases(
    dsn: str, fleet: dict[str, str], tmp_path: Path
) -> None:
    asked = exits(run(tmp_path, fleet, "init"), 2)
    assert "declares several databases ([[databases]]: orders, billing, archive)" in asked.stderr
    assert "PARTMAN_DATABASE=NAME" in asked.stderr
    exits(run(tmp_path, {**fleet, "PARTMAN_DATABASE": "orders"}, "init"), 0)
    mixed = exits(run(tmp_path, {**fleet, "PARTMAN_DSN": dsn}, "plan"), 2)
    assert "--dsn (or PARTMAN_DSN) cannot say which of the [[databases]] it is" in mixed.stderr


def test_a_file_without_databases_is_applied_as_before(dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLES)
    text = FLEET.split("[[databases]]")[0]
    (tmp_path / "partman.toml").write_text(text)
    applied = exits(run(tmp_path, {"PARTMAN_DSN": dsn}, "apply", "--yes"), 0)
    assert "== database" not in applied.stdout
    assert "Applied: created 3," in applied.stdout


def test_a_database_the_file_does_not_fit_is_reported_and_the_others_applied(
    dsn: str, other_dsn: str, fleet: dict[str, str], tmp_path: Path
) -> None:
    with psycopg.connect(other_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE public.events")
    applied = exits(run(tmp_path, fleet, "apply", "--yes"), 1)
    billing = applied.stdout.split("== database billing ==")[1].split("== database archive")[0]
    assert (
        "database billing not done: 1 problem(s) with partman.toml against this database; "
        "nothing was run" in billing
    )
    problem = next(line for line in applied.stderr.splitlines() if "does not exist" in line)
    assert problem.startswith("partman.toml:") and "public.events" in problem
    assert len(partitions(dsn, "public.events")) == 3
    assert "1 of 3 database(s) ok; not ok: billing, archive" in applied.stdout
