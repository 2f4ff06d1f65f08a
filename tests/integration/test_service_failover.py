"""Replicas on one database: one leader runs the passes, another takes over within an interval;
the scheduler survives a database that goes away, and stops gracefully on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

import partman
from partman.service import Service, ServiceOptions

from seed import create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
INTERVAL = 0.5
TOKEN = "failover-token"


@pytest.fixture
def replica(dsn: str) -> Iterator[Callable[..., Service]]:
    """Services on this test's database, each its own replica (own pool, own leadership
    connection, own application_name so its runs can be told apart); closed afterwards."""
    made: list[Service] = []

    def make(name: str, **changes: Any) -> Service:
        fields: dict[str, Any] = {
            "port": 0,  # a free port: tests run side by side (pytest -n)
            "token": TOKEN,
            "instance": name,
            "backoff_initial": dt.timedelta(milliseconds=100),
            "backoff_max": dt.timedelta(milliseconds=800),
            "db_timeout": dt.timedelta(seconds=2),
            "log_level": "warning",
        }
        fields.update(changes)
        service = Service(
            dsn,
            config=partman.Config(
                sample_rate=dt.timedelta(seconds=INTERVAL), application_name=f"partman-{name}"
            ),
            options=ServiceOptions(**fields),
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def _register(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    with partman.Manager(dsn) as manager:
        manager.add_managed_table(seed_table("events", "project-1"))


def _wait(what: str, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _runs(conn: Conn, since: dt.datetime | None = None) -> list[tuple[str, str | None]]:
    rows = conn.execute(
        "SELECT manager, outcome FROM partman_meta.runs WHERE started_at >= %s ORDER BY started_at",
        (since or dt.datetime.min.replace(tzinfo=dt.UTC),),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _server_now(conn: Conn) -> dt.datetime:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    value: dt.datetime = row[0]
    return value


def test_one_leader_runs_passes_and_another_takes_over_when_its_connection_dies(
    dsn: str, conn: Conn, replica: Any
) -> None:
    _register(dsn, conn)
    a = replica("a").start()
    _wait("a to lead", lambda: a.scheduler.is_leader)
    b = replica("b")
    follower = b.start_server()  # serving starts its scheduler too
    _wait("b to try the lock", lambda: b.scheduler.status()["last_attempt_at"])
    time.sleep(4 * INTERVAL)
    assert a.scheduler.is_leader and not b.scheduler.is_leader
    assert {m for m, _ in _runs(conn)} == {"partman-a"}
    assert len(_runs(conn)) >= 3  # a pass every interval
    assert (a.status()["role"], b.status()["role"]) == ("leader", "follower")

    # a follower serves the API, reads and metadata-only changes; the leader does the work
    client = httpx.Client(base_url=follower.url, timeout=30)
    assert client.get("/api/status").json()["leader"] is False
    added = client.post(
        "/api/tables/convoy.events/tenants",
        json={"tenant_id": "project-2"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert added.status_code == 201, added.text

    def project_2_partitions() -> int:
        found = client.get("/api/partitions", params={"tenant": "project-2"}).json()
        return int(found["coverage"][0]["partitions"])

    _wait("the leader to make project-2's partitions", lambda: project_2_partitions() == 11)
    # the change woke b too: it tried the lock once more, then went back to its interval
    attempts = b.scheduler.status()["attempts"]
    time.sleep(4 * INTERVAL)
    assert b.scheduler.status()["attempts"] - attempts <= 5
    metrics = client.get("/metrics").text
    assert "partman_leader 0.0" in metrics
    assert 'partman_passes_total{outcome="ok"} 0.0' in metrics

    # the leader's connection dies (as when its host drops off the network)
    pid = a.scheduler.leader_pid
    assert pid is not None
    killed_at = _server_now(conn)
    started = time.monotonic()
    conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _wait("b to lead", lambda: b.scheduler.is_leader, timeout=10)
    took_over = time.monotonic() - started
    _wait("b's first pass", lambda: ("partman-b", "ok") in _runs(conn, killed_at), timeout=10)
    passed = time.monotonic() - started
    assert took_over <= INTERVAL + 0.5, took_over  # within one interval (+ scheduling slack)
    assert passed <= INTERVAL + 2.0, passed
    assert not a.scheduler.is_leader
    time.sleep(4 * INTERVAL)  # a stood back, then found the lock taken: it follows now
    assert not a.scheduler.is_leader and b.scheduler.is_leader
    assert a.status()["scheduler"]["last_error"]["kind"] == "leadership"
    recent = _runs(conn, _server_now(conn) - dt.timedelta(seconds=1.5 * INTERVAL))
    assert recent and {m for m, _ in recent} == {"partman-b"}
    metrics = client.get("/metrics").text
    assert "partman_leader 1.0" in metrics
    assert 'partman_passes_total{outcome="ok"} 0.0' not in metrics
    assert client.get("/api/status").json()["role"] == "leader"
    client.close()
    follower.stop()


def test_another_replica_takes_over_when_the_leader_stops(
    dsn: str, conn: Conn, replica: Any
) -> None:
    _register(dsn, conn)
    a = replica("a").start()
    _wait("a to lead", lambda: a.scheduler.is_leader)
    b = replica("b").start()
    c = replica("c").start()
    time.sleep(2 * INTERVAL)
    a.stop()  # graceful: finishes its pass, closes its leadership connection
    started = time.monotonic()
    assert a.status()["role"] == "stopped"
    new = _wait("a new leader", lambda: [s for s in (b, c) if s.scheduler.is_leader])
    assert time.monotonic() - started <= INTERVAL + 0.5
    time.sleep(3 * INTERVAL)
    assert [s.options.instance for s in (b, c) if s.scheduler.is_leader] == [
        new[0].options.instance
    ]
    leaders = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s",
        (0x6C656164,),
    ).fetchone()
    assert leaders is not None and leaders[0] == 1


def test_scheduler_survives_the_database_going_away_and_coming_back(
    dsn: str, conn: Conn, replica: Any
) -> None:
    _register(dsn, conn)
    service = replica("solo").start()
    _wait("a first pass", lambda: service.status()["last_pass"])
    dbname = conn.info.dbname
    with psycopg.connect(conninfo_for(dsn, "postgres"), autocommit=True) as admin:
        ident = sql.Identifier(dbname)
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        _wait(
            "the scheduler to report failures",
            lambda: service.scheduler.status()["consecutive_failures"] >= 3,
        )
        status = service.status()
        assert status["scheduler"]["last_error"]["kind"] == "database"
        assert status["scheduler"]["state"] == "backing off"
        assert not status["leader"]
        ready, detail = service.readiness()
        assert not ready and "not currently accepting connections" in detail["database"]
        assert service.metrics.pass_errors._value.get() >= 1
        assert service.metrics.consecutive_failures._value.get() >= 3
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))
    back = _server_now_at(dsn)
    _wait("the scheduler to lead again", lambda: service.scheduler.is_leader)
    _wait("a pass after the outage", lambda: _runs_at(dsn, back), timeout=10)
    _wait("recovery", lambda: service.scheduler.status()["consecutive_failures"] == 0)
    assert service.readiness()[0]
    assert service.metrics.consecutive_failures._value.get() == 0


def conninfo_for(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


def _server_now_at(dsn: str) -> dt.datetime:
    with psycopg.connect(dsn) as c:
        return _server_now(c)


def _runs_at(dsn: str, since: dt.datetime) -> list[tuple[str, str | None]]:
    with psycopg.connect(dsn) as c:
        return _runs(c, since)


SIGTERM_SERVER = textwrap.dedent(
    """
    import datetime as dt, logging, pathlib, sys, time
    import partman
    from partman.service import ServiceOptions, serve

    dsn, marker = sys.argv[1], pathlib.Path(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")

    def slow(step, op):  # every DDL round trip takes a while: SIGTERM lands mid-pass
        marker.touch()
        time.sleep(0.3)

    def ready(service, url):
        print("READY", url, flush=True)

    serve(
        dsn,
        config=partman.Config(sample_rate=dt.timedelta(minutes=5), batch_size=4),
        options=ServiceOptions(port=0, instance="sigterm", log_level="warning"),
        on_step=slow,
        on_ready=ready,
    )
    print("RETURNED", flush=True)
    """
)


def test_sigterm_lets_the_pass_under_way_finish(dsn: str, conn: Conn, tmp_path: Path) -> None:
    _register(dsn, conn)
    marker = tmp_path / "stepping"
    proc = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SERVER, dsn, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait("the first pass to start its DDL", marker.exists, timeout=30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "READY http://127.0.0.1:" in out and "RETURNED" in out, out
    assert "stopped on SIGTERM" in err, err[-3000:]
    assert "gave up leadership" in err, err[-3000:]
    runs = conn.execute(
        "SELECT outcome, (summary->>'partitions_created')::int FROM partman_meta.runs"
    ).fetchall()
    assert runs == [("ok", 11)]  # the pass under way ran to its end
    rows = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'partman%%'"
    ).fetchone()
    assert rows is not None and rows[0] == 0
