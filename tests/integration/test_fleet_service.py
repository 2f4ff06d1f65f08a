"""partman run over a fleet: one process, one Service per database, one app. One database
going down (its connections refused, as when its server stops) never stops the others'
passes; its section of the API, its metrics and the readiness body say so."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman
from partman.service import Fleet, Member, ServiceOptions

from pgserver import Server

pytestmark = pytest.mark.one_server

TIMEOUT = 60.0
EVENTS = (
    "CREATE TABLE public.{} (id bigint, created_at timestamptz NOT NULL) "
    "PARTITION BY RANGE (created_at)"
)


@pytest.fixture
def other_dsn(pg_server: Server) -> Iterator[str]:
    """A second fresh database on the same server."""
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def wait(what: str, condition: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = condition()
        except (OSError, psycopg.Error):
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def partitions(dsn: str, parent: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)", (parent,)
        ).fetchone()
    return int(row[0]) if row else 0


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            body = response.read().decode()
            status = response.status
            kind = response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        body, status, kind = error.read().decode(), error.code, "application/json"
    return status, json.loads(body) if "json" in kind else body


def set_connections(pg_server: Server, dsn: str, allowed: bool) -> None:
    """The database accepts connections, or refuses every one and loses those it had: to
    its clients, as down as a stopped server."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(str(name)), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_one_database_going_down_never_stops_the_others_passes(
    pg_server: Server, dsn: str, other_dsn: str
) -> None:
    declared: dict[str, list[str]] = {"orders": ["events"], "billing": ["events"]}

    def prepare(name: str) -> Callable[[partman.Manager], None]:
        def register(manager: partman.Manager) -> None:
            for table in declared[name]:
                manager.add_managed_table(
                    partman.Table(name=table, partition_by="created_at", partition_count=2)
                )

        return register

    for url in (dsn, other_dsn):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL(EVENTS).format(sql.Identifier("events")))
    fleet = Fleet(
        [
            Member("orders", dsn, prepare("orders")),
            Member("billing", other_dsn, prepare("billing")),
        ],
        config=partman.Config(sample_rate=dt.timedelta(seconds=1)),
        options=ServiceOptions(
            port=0, db_timeout=dt.timedelta(seconds=1), backoff_max=dt.timedelta(seconds=2)
        ),
    )
    with fleet.start_server() as served:
        base = served.url
        wait("both databases' partitions", lambda: partitions(dsn, "public.events") == 3)
        wait("billing's partitions", lambda: partitions(other_dsn, "public.events") == 3)
        listed = {d["name"]: d for d in get(base + "/api/databases")[1]}
        assert listed["billing"]["reachable"] is True and listed["billing"]["leader"] is True

        set_connections(pg_server, other_dsn, allowed=False)
        try:
            # orders keeps running passes: a table declared now gets its partitions
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL(EVENTS).format(sql.Identifier("clicks")))
            declared["orders"].append("clicks")
            wait("orders' new table's partitions", lambda: partitions(dsn, "public.clicks") == 3)

            def billing_down() -> dict[str, Any] | None:
                found = {d["name"]: d for d in get(base + "/api/databases")[1]}
                return found if found["billing"]["reachable"] is False else None

            listed = wait("billing listed as unreachable", billing_down)
            assert listed["orders"]["reachable"] is True
            assert "unreachable_reason" in listed["billing"]
            assert listed["billing"]["unreachable_reason"]
            status, ready = get(base + "/readyz")
            assert status == 200, ready
            assert ready["databases_not_ready"] == ["billing"]
            assert ready["databases"]["orders"]["ready"] is True
            assert get(base + "/api/databases/billing")[0] == 503
            assert get(base + "/api/databases/billing/tables")[0] == 503
            code, tables = get(base + "/api/databases/orders/tables")
            assert code == 200
            assert {t["table"] for t in tables} == {"public.events", "public.clicks"}
            metrics = get(base + "/metrics")[1]
            assert 'partman_database_up{database="billing"} 0.0' in metrics
            assert 'partman_database_up{database="orders"} 1.0' in metrics
            assert 'partman_leader{database="orders"} 1.0' in metrics
            assert metrics.count("# TYPE partman_leader gauge") == 1
        finally:
            set_connections(pg_server, other_dsn, allowed=True)

        def billing_back() -> bool:
            found = {d["name"]: d for d in get(base + "/api/databases")[1]}
            last = found["billing"]["last_pass"] or {}
            return bool(found["billing"]["reachable"] and last.get("error") is None)

        wait("billing back, its passes running again", billing_back)


def test_a_fleet_of_one_also_answers_the_one_database_routes(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL(EVENTS).format(sql.Identifier("events")))

    def register(manager: partman.Manager) -> None:
        manager.add_managed_table(partman.Table(name="events", partition_by="created_at"))

    fleet = Fleet(
        [Member("only", dsn, register)],
        config=partman.Config(sample_rate=dt.timedelta(seconds=1)),
        options=ServiceOptions(port=0),
    )
    with fleet.start_server() as served:
        wait("a pass", lambda: partitions(dsn, "public.events") == 11)
        code, tables = get(served.url + "/api/tables")
        assert code == 200 and [t["table"] for t in tables] == ["public.events"]
        assert get(served.url + "/api/status")[1]["role"] == "leader"
        prefixed = get(served.url + "/api/databases/only/tables")[1]
        assert [t["table"] for t in prefixed] == ["public.events"]  # the runway moves on
        assert [d["name"] for d in get(served.url + "/api/databases")[1]] == ["only"]


FLEET = """\
[service]
token = "${{PARTMAN_TEST_TOKEN}}"

[partman]
sample_rate = "1s"

[[table]]
name = "events"
partition_by = "created_at"
partition_count = 2

[[databases]]
name = "orders"
dsn_env = "ORDERS_DSN"

[[databases]]
name = "billing"
dsn_env = "BILLING_DSN"

[[databases]]
name = "archive"
dsn = "host=127.0.0.1 port={port} dbname=archive user=postgres connect_timeout=1"
"""


def test_partman_run_serves_a_fleet_with_one_database_down(
    dsn: str, other_dsn: str, tmp_path: Path
) -> None:
    for url in (dsn, other_dsn):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL(EVENTS).format(sql.Identifier("events")))
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    listen, closed = ports
    (tmp_path / "partman.toml").write_text(FLEET.format(port=closed))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"ORDERS_DSN": dsn, "BILLING_DSN": other_dsn, "PARTMAN_TEST_TOKEN": "s3cret"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "partman", "run", "--port", str(listen)],
        cwd=tmp_path,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{listen}"
    try:

        def served_and_applied() -> bool:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            return (
                partitions(dsn, "public.events") == 3
                and partitions(other_dsn, "public.events") == 3
                and get(base + "/healthz")[0] == 200
            )

        wait("both reachable databases applied", served_and_applied)
        listed = {d["name"]: d for d in get(base + "/api/databases")[1]}
        assert list(listed) == ["orders", "billing", "archive"]
        assert listed["archive"]["reachable"] is False
        assert "Connection refused" in listed["archive"]["unreachable_reason"]
        assert listed["orders"]["last_pass"]["error"] is None
        status, ready = get(base + "/readyz")
        assert status == 200 and ready["databases_not_ready"] == ["archive"]
        assert 'partman_passes_total{database="billing",outcome="ok"}' in get(base + "/metrics")[1]
        code, page = get(base + "/")
        assert code == 200 and 'id="databases"' in page
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    unreachable = [r for r in records if r.get("event") == "database_unreachable_at_start"]
    assert [r["database"] for r in unreachable] == ["archive"]
    # the service's own lines say which database they are about
    passes = [r for r in records if r.get("logger", "").startswith("partman.service.")]
    assert {r.get("database") for r in passes} >= {"orders", "billing"}
