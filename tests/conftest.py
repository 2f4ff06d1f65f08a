"""Real-PostgreSQL fixtures.

* ``pg_server`` (session): a running :class:`pgserver.Server`. Every test that uses it (directly
  or through ``dsn``/``conn``) runs once per server chosen by ``PARTMAN_TEST_DSN`` /
  ``PARTMAN_TEST_PG`` (ids ``pg18``, ``pg15``, ...). Servers start lazily on first use, once per
  session, and stop at session end.
* ``dsn`` (function): DSN of a brand-new empty database on that server, dropped after the test.
* ``conn`` (function): an autocommit psycopg connection to ``dsn``, closed after the test.

Tests using any of these are marked ``integration`` automatically. A server that cannot be
started makes the tests that need it fail (error); nothing is ever skipped.

* ``chromium`` (session): the path of Debian's chromium for the web UI's browser tests,
  installed first when it is missing and the tests run as root (tests/browser.py); otherwise
  those tests fail with the command to run.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from browser import BrowserSetupError, ensure_chromium
from pgserver import Server, ServerStartError, server_specs, spec_id, start_server

DB_FIXTURES = frozenset({"pg_server", "dsn", "conn"})


@dataclass
class _Stats:
    created: int = 0
    create_seconds: float = 0.0
    drop_seconds: float = 0.0


@dataclass
class _State:
    specs: list[str]
    servers: dict[str, Server] = field(default_factory=dict)
    admins: dict[str, psycopg.Connection[tuple[Any, ...]]] = field(default_factory=dict)
    stats: dict[str, _Stats] = field(default_factory=dict)

    def admin(self, server: Server) -> psycopg.Connection[tuple[Any, ...]]:
        """A long-lived autocommit connection to the server's admin database."""
        conn = self.admins.get(server.dsn)
        if conn is None or conn.closed or conn.broken:
            conn = psycopg.connect(server.dsn, autocommit=True)
            self.admins[server.dsn] = conn
        return conn

    def admin_execute(self, server: Server, query: sql.Composed) -> None:
        try:
            self.admin(server).execute(query)
        except psycopg.OperationalError:
            # the admin connection may have been killed by a test; retry once on a new one
            self.admins.pop(server.dsn).close()
            self.admin(server).execute(query)

    def wait_for_disconnects(self, server: Server, dbname: str, timeout: float = 0.15) -> None:
        """Wait (briefly) until the backends of connections the test closed have exited.

        DROP DATABASE finding a backend still exiting sleeps 100 ms before it looks again
        (even WITH (FORCE)); polling pg_stat_activity first costs ~1 ms. A connection the
        test leaked is not waited for long: FORCE terminates it.
        """
        deadline = time.monotonic() + timeout
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
        while time.monotonic() < deadline:
            row = self.admin(server).execute(query, [dbname]).fetchone()
            if row is None or row[0] == 0:
                return
            time.sleep(0.002)

    def close(self) -> None:
        for conn in self.admins.values():
            conn.close()
        self.admins.clear()
        for server in self.servers.values():
            server.stop()


_STATE = pytest.StashKey[_State]()


def pytest_configure(config: pytest.Config) -> None:
    try:
        specs = server_specs()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from e
    config.stash[_STATE] = _State(specs=specs)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_server" in metafunc.fixturenames:
        specs = metafunc.config.stash[_STATE].specs
        # What sits above the engine (HTTP, the scheduler's timing, browsers, subprocesses)
        # behaves the same on every version, and the engine's SQL under it is tested on each
        # server: such tests run once, on the first server, to keep the suite in its budget.
        every = os.environ.get("PARTMAN_TEST_EVERY_SERVER", "") not in ("", "0")
        if metafunc.definition.get_closest_marker("one_server") is not None and not every:
            specs = specs[:1]
        metafunc.parametrize(
            "pg_server", specs, ids=[spec_id(s) for s in specs], indirect=True, scope="session"
        )


LONG_FIRST = (
    "test_service_reliability.py",
    "test_service_security.py",
    "test_fleet_service.py",
    "test_fleet_ui.py",
)
"""Files whose tests mostly wait (a minute-long network cut, replicas handing over): run
first, so that the workers fill the waits with short tests instead of ending on them."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.nodeid.split("::")[0].rsplit("/", 1)[-1] not in LONG_FIRST)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is not None:
        state.close()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.servers:
        return
    for spec, server in state.servers.items():
        st = state.stats.get(server.dsn, _Stats())
        line = f"{spec_id(spec)}: PostgreSQL {server.version}"
        if server.startup_seconds:
            line += f", started in {server.startup_seconds:.2f}s"
        if st.created:
            line += (
                f", {st.created} test databases, avg create"
                f" {1000 * st.create_seconds / st.created:.0f} ms"
                f" + drop {1000 * st.drop_seconds / st.created:.0f} ms"
            )
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Server:
    """The PostgreSQL server under test (parametrized over the chosen servers)."""
    spec = getattr(request, "param", None)
    if not isinstance(spec, str):
        raise ServerStartError(
            "pg_server must be parametrized by tests/conftest.py (pytest_generate_tests); "
            "request it as a normal fixture argument"
        )
    state = request.config.stash[_STATE]
    server = state.servers.get(spec)
    if server is None:
        try:
            server = start_server(spec)
        except ServerStartError as e:
            pytest.fail(f"{spec_id(spec)}: {e}", pytrace=False)
        state.servers[spec] = server
    return server


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium (Playwright drives it; it never downloads a browser of its own)."""
    try:
        return ensure_chromium()
    except BrowserSetupError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def dsn(pg_server: Server, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for this test (created from template0, dropped afterwards)."""
    state = request.config.stash[_STATE]
    name = f"t_{secrets.token_hex(6)}"
    ident = sql.Identifier(name)
    create = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(ident)
    if pg_server.version >= 15:
        # FILE_COPY is a little faster than the default WAL_LOG for a tiny template
        create = sql.SQL("{} STRATEGY file_copy").format(create)
    t0 = time.perf_counter()
    state.admin_execute(pg_server, create)
    t1 = time.perf_counter()
    yield pg_server.dsn_for(name)
    t2 = time.perf_counter()
    state.wait_for_disconnects(pg_server, name)
    state.admin_execute(pg_server, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    st = state.stats.setdefault(pg_server.dsn, _Stats())
    st.created += 1
    st.create_seconds += t1 - t0
    st.drop_seconds += time.perf_counter() - t2


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """An autocommit connection to this test's fresh database."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection
