"""Several managers at once (threads and processes), and the application's own DDL meanwhile."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import threading
from typing import Any

import psycopg

import partman

from seed import NOW, SEED_TABLES, create_seed_schema, partitions, seed_table

DAY = dt.timedelta(days=1)
Conn = psycopg.Connection[Any]

WORKER = textwrap.dedent(
    """
    import datetime as dt, json, sys
    import partman
    dsn, now, passes = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), int(sys.argv[3])
    out = []
    with partman.Manager(dsn, clock=partman.SimulatedClock(now)) as m:
        for i in range(passes):
            r = m.maintain()
            out.append({"created": len(r.created), "retired": len(r.retired),
                        "failed": [x.error for x in r.failed],
                        "skipped": [x.error for x in r.skipped],
                        "pass_skipped": r.skipped_reason})
    print(json.dumps(out))
    """
)


def _run_workers(dsn: str, now: dt.datetime, processes: int, passes: int) -> list[dict[str, Any]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, dsn, now.isoformat(), str(passes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results: list[dict[str, Any]] = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        results += json.loads(out)
    assert all(not r["failed"] and not r["skipped"] and not r["pass_skipped"] for r in results)
    return results


def test_managers_in_separate_processes_never_fail_or_do_work_twice(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        for name in SEED_TABLES:
            m.register_tenants(
                seed_table(name, retention_period="2 days", partition_count=5),
                [f"t{i}" for i in range(8)],
            )
    first = _run_workers(dsn, NOW, processes=3, passes=2)
    assert sum(r["created"] for r in first) == 3 * 8 * 6  # today + 5 ahead, made once
    later = _run_workers(dsn, NOW + 3 * DAY, processes=3, passes=2)
    assert sum(r["created"] for r in later) == 3 * 8 * 3  # three new days ahead, made once
    assert sum(r["retired"] for r in later) == 3 * 8 * 1  # the day that expired, dropped once
    for name in SEED_TABLES:
        names = [n for n, _ in partitions(conn, "convoy", name)]
        assert len(names) == len(set(names)) == 8 * 8
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW + 3 * DAY)) as m:
        assert len(m.plan()) == 0


def test_application_ddl_during_maintenance_neither_deadlocks_nor_fails(
    dsn: str, conn: Conn
) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    errors: list[str] = []
    stop = threading.Event()

    def application_ddl() -> None:
        """Migrations the team runs while partman works: columns, indexes, comments."""
        i = 0
        with psycopg.connect(dsn, autocommit=True) as app:
            app.execute("SET lock_timeout = '2s'")
            while not stop.is_set() and i < 40:
                i += 1
                try:
                    app.execute(f"ALTER TABLE convoy.events ADD COLUMN IF NOT EXISTS c{i} int")
                    app.execute(f"CREATE INDEX IF NOT EXISTS ev_c{i} ON convoy.events (c{i})")
                    app.execute(f"COMMENT ON TABLE convoy.event_deliveries IS 'v{i}'")
                except psycopg.errors.LockNotAvailable:
                    continue  # the app's own budget: fine, it retries
                except psycopg.Error as error:
                    errors.append(f"app: {error}")

    with partman.Manager(dsn, clock=clock) as m:
        for name in SEED_TABLES:
            m.register_tenants(
                seed_table(name, retention_period="2 days", partition_count=3),
                [f"t{i}" for i in range(10)],
            )
        thread = threading.Thread(target=application_ddl)
        thread.start()
        try:
            for _ in range(6):
                report = m.maintain()
                errors += [f"partman failed: {r.error}" for r in report.failed]
                clock.advance(DAY)
        finally:
            stop.set()
            thread.join()
        report = m.maintain()  # anything skipped under the app's locks is done now
        assert not report.failed, str(report)
        assert len(m.plan()) == 0
    assert errors == []
    # partitions made while columns were being added still match the parent
    mismatched = conn.execute(
        """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'convoy.events'::regclass
   AND (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
          AND NOT a.attisdropped)
    <> (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = 'convoy.events'::regclass
          AND a.attnum > 0 AND NOT a.attisdropped)
"""
    ).fetchall()
    assert mismatched == []
