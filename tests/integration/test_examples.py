"""examples/convoy.py (the go_partman guide's program) run as users run it: a real process.

The example is documentation that executes; these tests keep it true. Each runs the script with
the interpreter running the tests, against this test's fresh database, and then looks at what
it left in PostgreSQL's catalog rather than at what it printed.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from seed import SEED_TABLES, catalog_fingerprint, days_covered

pytestmark = pytest.mark.one_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "convoy.py"
# The three projects the example starts with, and the one it signs up after its first tick.
PROJECTS = {"project-acme", "project-globex", "o'reilly-media", "project-initech"}
PREMADE = 10  # partition_count in the guide: today plus ten days ahead
DAY = dt.timedelta(days=1)
TIMEOUT = 120  # seconds; a run takes ~1-2 s, so only a hang gets near this

Conn = psycopg.Connection[Any]


def run_example(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--dsn", dsn, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def run_three_ticks(dsn: str) -> subprocess.CompletedProcess[str]:
    return run_example(dsn, "--ticks", "3", "--sample-rate", "0.2")


def today() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def premade_days(first: dt.datetime, last: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The days a run that began on day `first` and ended on day `last` must cover: today and
    PREMADE days ahead of each (the same days unless the run crossed midnight UTC)."""
    days = {first + i * DAY for i in range(PREMADE + 1)} | {
        last + i * DAY for i in range(PREMADE + 1)
    }
    return [(d, d + DAY) for d in sorted(days)]


def projects(conn: Conn) -> set[str]:
    return {row[0] for row in conn.execute("SELECT uid FROM convoy.projects")}


def partition_count(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        "JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = 'convoy' AND p.relkind = 'p'"  # tables, not their indexes' partitions
    ).fetchone()
    return row[0] if row else 0


def test_every_project_including_one_signed_up_mid_run_gets_today_and_ten_days_in_all_tables(
    dsn: str, conn: Conn
) -> None:
    first = today()
    proc = run_three_ticks(dsn)
    expected = premade_days(first, today())

    assert projects(conn) == PROJECTS
    for table in SEED_TABLES:
        for project in PROJECTS:
            assert days_covered(conn, "convoy", table, project) == expected, (table, project)
    assert partition_count(conn) == len(SEED_TABLES) * len(PROJECTS) * len(expected)
    # the late project was found by a tick, not known at start
    assert "project-initech" in proc.stderr and "project_signed_up" in proc.stderr
    # and the summary says what the catalog says
    assert f"{partition_count(conn)} partitions" in proc.stdout


def test_second_run_on_the_same_database_changes_nothing(dsn: str, conn: Conn) -> None:
    run_three_ticks(dsn)
    before = catalog_fingerprint(conn)
    count = partition_count(conn)

    second = run_three_ticks(dsn)

    if catalog_fingerprint(conn) != before:  # tolerated only if midnight UTC passed meanwhile
        assert partition_count(conn) == count + len(SEED_TABLES) * len(PROJECTS), second.stderr
    else:
        assert partition_count(conn) == count
        assert "created 0, retired 0 (dropped 0), failed 0, skipped 0" in second.stderr
    assert projects(conn) == PROJECTS


def test_sigterm_stops_a_run_without_ticks_cleanly(dsn: str, conn: Conn, tmp_path: Path) -> None:
    """Without --ticks the example runs until told to stop, as a service would."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    want = len(SEED_TABLES) * len(PROJECTS) * (PREMADE + 1)
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--dsn", dsn, "--sample-rate", "0.2"],
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        try:
            deadline = time.monotonic() + TIMEOUT
            while partition_count(conn) < want:  # background maintenance did its work
                assert proc.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = err.read_text()
    assert returncode == 0, log
    assert "SIGTERM received" in log
    assert f"{partition_count(conn)} partitions" in out.read_text()
