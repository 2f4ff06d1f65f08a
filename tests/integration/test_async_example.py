"""examples/async_service: a FastAPI service whose only partman part is partman.toml and one
`maintenance(...)` line keeps the seed's tables covered, picks up a project signed up while it
runs, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.one_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "async_service"
TABLES = ("events", "event_deliveries", "delivery_attempts")
PROJECTS = {"project-acme", "project-globex", "o'reilly-媒体"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _covered(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], list[dt.date]]:
    rows = conn.execute(
        "SELECT parent_name, tenant_id, lower_bound FROM partman_meta.partitions "
        "WHERE parent_schema = 'convoy' AND state = 'attached' ORDER BY 1, 2, 3"
    ).fetchall()
    out: dict[tuple[str, str], list[dt.date]] = {}
    for parent, tenant, lower in rows:
        out.setdefault((parent, tenant), []).append(dt.datetime.fromisoformat(lower).date())
    return out


def _wait(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_async_service_keeps_the_seed_tables_covered(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": dsn, "PARTMAN_SAMPLE_RATE": "1s"}
    service = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE),
         "--port", str(port), "--log-level", "info"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if service.poll() is not None:
                raise AssertionError(f"the service exited: {service.communicate()[1][-3000:]}")
            try:
                return httpx.get(f"{base}/partitions", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        _wait(up, "the service to start")
        today = dt.datetime.now(dt.UTC).date()
        ahead = [today + dt.timedelta(days=i) for i in range(11)]  # today + partition_count 10
        covered = _covered(conn)
        assert set(covered) == {(t, p) for t in TABLES for p in PROJECTS}
        assert all(days == ahead for days in covered.values()), covered
        row = conn.execute(
            "SELECT t.retention FROM partman_meta.tenants t JOIN partman_meta.managed_tables m "
            "ON m.id = t.table_id WHERE m.table_name = 'events' AND t.tenant_id = %s",
            ("o'reilly-媒体",),
        ).fetchone()
        assert row == ("1 week",)  # the per-tenant override of the file, normalised

        written = httpx.post(f"{base}/projects/project-acme/events", json={"event_type": "x"})
        assert written.status_code == 200
        assert written.json()["partition"].startswith("convoy.events_project_acme_")

        assert httpx.post(f"{base}/projects/Initech Ltd").status_code == 200
        _wait(
            lambda: all(_covered(conn).get((t, "Initech Ltd")) == ahead for t in TABLES),
            "the project signed up while the service runs to get its partitions",
        )
        coverage = httpx.get(f"{base}/partitions").json()
        assert {c["tenant"] for c in coverage} == PROJECTS | {"Initech Ltd"}
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            _, err = service.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15)
    assert service.returncode in (0, -signal.SIGTERM), err[-3000:]
    assert "Application shutdown complete." in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
