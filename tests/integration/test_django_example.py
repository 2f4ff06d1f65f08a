"""examples/django_project run as a Django team runs it: `manage.py` processes against this
test's fresh database (DATABASE_URL), then a look at the catalog rather than at the output.

The project has no partman code beyond configuration: "partman.contrib.django" in
INSTALLED_APPS, a PARTMAN block for the seed's three tables (tenants from convoy.projects),
and a migration creating the tables. Error cases run the same project with a settings module
that changes one thing (written to tmp_path, chosen with --settings).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seed import SEED_TABLES, catalog_fingerprint, create_seed_schema, days_covered, partitions

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
PROJECT = Path(__file__).resolve().parents[2] / "examples" / "django_project"
PROJECTS = ("project-acme", "project-globex", "o'reilly-media")
PREMAKE = 10  # partition_count in the example's PARTMAN block
DAY = dt.timedelta(days=1)
TIMEOUT = 120  # seconds; each command takes about one


def manage(
    dsn: str, *args: str, settings: str | None = None, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` in the example project, DATABASE_URL pointing at `dsn`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = dsn
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    extra = [] if settings is None else [f"--settings={settings}"]
    return subprocess.run(
        [sys.executable, "manage.py", *args, *extra],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def today() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def premade(day: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    return [(day + i * DAY, day + (i + 1) * DAY) for i in range(PREMAKE + 1)]


def lower_bound(bound: str) -> tuple[str, dt.datetime]:
    """(tenant, lower time) of "FOR VALUES FROM ('t', '2026-03-10 00:00:00+00') TO (...)"."""
    lower = bound.removeprefix("FOR VALUES FROM (").split(") TO (")[0]
    tenant, _, time = lower.rpartition(", ")
    return tenant.strip("'").replace("''", "'"), dt.datetime.fromisoformat(time.strip("'"))


def w001(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "(partman.W001)" in line]


def test_migrate_check_plan_apply_covers_every_project_ten_days_ahead(dsn: str, conn: Conn) -> None:
    ok(manage(dsn, "migrate"))
    conn.execute(
        "INSERT INTO convoy.projects (uid, name) VALUES (%s, 'Acme'), (%s, 'Globex'), "
        "(%s, 'O''Reilly Media')",
        PROJECTS,
    )

    # Before apply: every (table, project) has no partition, and the check says so.
    before = ok(manage(dsn, "check", "--database", "default"))
    warned = w001(before.stderr)
    assert len(warned) == len(SEED_TABLES) * len(PROJECTS), before.stderr
    assert "convoy.events: (partman.W001) tenant 'project-acme': runway 0" in before.stderr
    assert "HINT: run manage.py partman apply or partman run" in before.stderr

    # plan shows what apply will do, and writes nothing (not even partman's metadata).
    fingerprint = catalog_fingerprint(conn)
    plan = ok(manage(dsn, "partman", "plan"))
    assert catalog_fingerprint(conn) == fingerprint
    assert "+ register table: 1 day partitions, 10 ahead, retention 30 days" in plan.stdout
    assert "+ create convoy.events_project_acme" in plan.stdout
    partitions_planned = len(SEED_TABLES) * len(PROJECTS) * (PREMAKE + 1)
    assert f"Plan: {partitions_planned} partition(s) to create, 0 to retire" in plan.stdout

    first = today()
    applied = ok(manage(dsn, "partman", "apply"))
    last = today()
    assert f"Applied: created {partitions_planned}, retired 0" in applied.stdout
    assert "tenant o'reilly-media" in applied.stdout

    # The catalog: each project has today and ten days ahead in each table, nothing else.
    for table in SEED_TABLES:
        for project in PROJECTS:
            covered = days_covered(conn, "convoy", table, project)
            assert covered in (premade(first), premade(last)), (table, project, covered)
    rows = conn.execute(
        "SELECT n.tenant_id, n.retention FROM partman_meta.tenants n "
        "JOIN partman_meta.managed_tables t ON t.id = n.table_id "
        "WHERE t.schema_name = 'convoy' AND t.table_name = 'events' ORDER BY 1"
    ).fetchall()
    own = {tenant: retention for tenant, retention in rows}
    assert set(own) == set(PROJECTS)
    assert own["project-globex"] is not None  # its own 7-day retention, from "tenant"
    assert own["project-acme"] is None and own["o'reilly-media"] is None

    after = ok(manage(dsn, "check", "--database", "default"))
    assert "System check identified no issues" in after.stdout
    assert "partman." not in after.stderr

    shown = ok(manage(dsn, "partman", "status")).stdout
    last_run = next(line for line in shown.splitlines() if line.startswith("Last run: "))
    at = last_run.split()[2]  # to the second, as the command line shows times
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", at), last_run

    status = json.loads(ok(manage(dsn, "partman", "status", "--json")).stdout)
    assert status["ok"] is True
    assert status["last_run"]["outcome"] == "ok"
    assert [t["table"] for t in status["tables"]] == [f"convoy.{t}" for t in SEED_TABLES]
    for t in status["tables"]:
        assert {r["tenant"] for r in t["tenants"]} == set(PROJECTS)
        assert all(r["partitions"] == PREMAKE + 1 and not r["short"] for r in t["tenants"])

    # Runway below half the premake (5 of 10 days) for one tenant of one table: warned alone.
    cut = today() + 5 * DAY
    for name, bound in partitions(conn, "convoy", "events"):
        tenant, lower = lower_bound(bound)
        if tenant == "project-acme" and lower >= cut:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("convoy", name)))
    short = ok(manage(dsn, "check", "--database", "default"))
    (warned,) = w001(short.stderr)
    assert warned.startswith("convoy.events: (partman.W001) tenant 'project-acme': runway 4 d")
    assert warned.endswith("less than half its premake of 10 x 1 day"), warned


def bad_settings(tmp_path: Path, body: str) -> Path:
    """A settings module `bad_settings` in tmp_path: the example's, changed by `body`."""
    (tmp_path / "bad_settings.py").write_text(
        "from convoy_site.settings import *  # noqa: F403\n" + body, encoding="utf-8"
    )
    return tmp_path


def test_a_misspelled_key_stops_every_command_with_its_fix_and_writes_nothing(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    create_seed_schema(conn)
    path = bad_settings(
        tmp_path,
        'PARTMAN = {**PARTMAN, "table": [dict(PARTMAN["table"][0])]}\n'
        'PARTMAN["table"][0]["partition_intervall"] = '
        'PARTMAN["table"][0].pop("partition_interval")\n',
    )
    fingerprint = catalog_fingerprint(conn)
    message = (
        'PARTMAN["table"][0]["partition_intervall"]: (partman.E001) unknown key '
        "(did you mean partition_interval?)"
    )

    checked = manage(dsn, "partman", "apply", settings="bad_settings", pythonpath=path)
    assert checked.returncode == 1, checked.stdout
    assert "SystemCheckError" in checked.stderr and message in checked.stderr
    assert "Traceback" not in checked.stderr

    skipped = manage(
        dsn, "partman", "apply", "--skip-checks", settings="bad_settings", pythonpath=path
    )
    assert skipped.returncode == 2, skipped.stdout
    assert skipped.stderr.startswith("CommandError: settings.PARTMAN is not valid:")
    assert 'PARTMAN["table"][0]["partition_intervall"]: unknown key' in skipped.stderr

    assert catalog_fingerprint(conn) == fingerprint  # not even partman_meta


def test_a_database_that_is_not_postgresql_is_named_with_the_fix(tmp_path: Path) -> None:
    path = bad_settings(
        tmp_path,
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(tmp_path / 'app.sqlite3')!r}}}}}\n",
    )
    expected = (
        "DATABASES['default'] uses ENGINE 'django.db.backends.sqlite3'; partman manages "
        'PostgreSQL partitions only: point PARTMAN["DATABASE"] at an alias whose ENGINE is '
        "django.db.backends.postgresql"
    )
    checked = manage("", "check", settings="bad_settings", pythonpath=path)
    assert checked.returncode == 1
    assert f'PARTMAN["DATABASE"]: (partman.E002) {expected}' in checked.stderr
    assert "SILENCED_SYSTEM_CHECKS" in checked.stderr

    skipped = manage(
        "", "partman", "plan", "--skip-checks", settings="bad_settings", pythonpath=path
    )
    assert skipped.returncode == 2
    assert skipped.stderr.strip() == f"CommandError: {expected}"
    assert not (tmp_path / "app.sqlite3").exists()


def test_an_unreachable_database_is_a_warning_for_checks_and_an_error_for_commands() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dsn = f"host=127.0.0.1 port={port} dbname=convoy user=postgres connect_timeout=5"

    checked = ok(manage(dsn, "check", "--database", "default"))
    assert (
        f"DATABASES['default']: (partman.W003) partman could not look at the database: "
        f"cannot connect to DATABASES['default'] (127.0.0.1:{port}/convoy)" in checked.stderr
    )

    status = manage(dsn, "partman", "status", "--skip-checks")
    assert status.returncode == 2
    assert status.stderr.startswith(
        f"CommandError: cannot connect to DATABASES['default'] (127.0.0.1:{port}/convoy): "
    )
    assert "Traceback" not in status.stderr


def test_an_id_table_in_the_block_is_checked_applied_and_surveyed_in_ids(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute("CREATE TABLE public.orders (id bigint NOT NULL) PARTITION BY RANGE (id)")
    path = bad_settings(
        tmp_path,
        'PARTMAN = {"DATABASE": "default", "table": [{"name": "orders", "partition_by": "id", '
        '"partition_interval": 1000, "partition_count": 2, "retention_period": 5000}]}\n',
    )
    before = ok(
        manage(dsn, "check", "--database", "default", settings="bad_settings", pythonpath=path)
    )
    (warned,) = w001(before.stderr)
    assert warned.startswith(
        "public.orders: (partman.W001) the table: runway 0, no partition covers the newest id "
        "(its premake of 2 x 1000 ids)"
    ), warned
    plan = ok(manage(dsn, "partman", "apply", settings="bad_settings", pythonpath=path))
    assert "1000-id partitions, 2 ahead, retention 5000 ids" in plan.stdout
    conn.execute("INSERT INTO orders SELECT generate_series(1, 2500)")
    planned = ok(manage(dsn, "partman", "plan", settings="bad_settings", pythonpath=path))
    assert "+ create public.orders_p3000" in planned.stdout  # ahead of the newest id, 2500
    conn.execute("DELETE FROM orders WHERE id > 1500")
    shown = manage(dsn, "partman", "status", "--json", settings="bad_settings", pythonpath=path)
    (table,) = json.loads(shown.stdout)["tables"]
    assert table["partition_interval"] == "1000"
    (runway,) = table["tenants"]
    assert (runway["runway_ids"], runway["premake_ids"], runway["short"]) == (1500, 2000, False)
