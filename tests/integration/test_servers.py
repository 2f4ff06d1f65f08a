"""The real-PostgreSQL fixtures do what tests/conftest.py promises."""

from __future__ import annotations

from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import conninfo, sql

from pgserver import TEST_SETTINGS, Server, expected_major

Conn = psycopg.Connection[tuple[Any, ...]]

# databases handed out so far, per server (admin DSN -> names), to check they get dropped
_seen: dict[str, list[str]] = {}


def _scalar(conn: Conn, query: LiteralString | sql.Composed) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_connects(conn: Conn) -> None:
    assert _scalar(conn, "SELECT 1") == 1
    assert conn.autocommit
    assert _scalar(conn, "SELECT current_setting('is_superuser')") == "on"


def test_server_version_matches(
    pg_server: Server, conn: Conn, request: pytest.FixtureRequest
) -> None:
    reported = int(_scalar(conn, "SHOW server_version_num")) // 10000
    assert pg_server.version == reported
    expected = expected_major(request.node.callspec.params["pg_server"])
    if expected is not None:
        assert reported == expected


def test_fast_settings(pg_server: Server, conn: Conn) -> None:
    if pg_server.label == "external":
        pytest.xfail("an external server (PARTMAN_TEST_DSN) is used with its own settings")
    for name, value in TEST_SETTINGS.items():
        assert _scalar(conn, sql.SQL("SHOW {}").format(sql.Identifier(name.lower()))) == value, name
    assert _scalar(conn, "SHOW fsync") == "off"


@pytest.mark.parametrize("round_", [1, 2, 3])
def test_each_test_gets_a_fresh_empty_database(pg_server: Server, conn: Conn, round_: int) -> None:
    """Runs three times; each run sees an empty database although each run leaves a table."""
    dbname = _scalar(conn, "SELECT current_database()")
    assert dbname.startswith("t_")
    assert dbname not in ("postgres", "template0", "template1")
    user_tables = _scalar(
        conn,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
    )
    assert user_tables == 0
    conn.execute("CREATE TABLE leftover (id int PRIMARY KEY)")
    conn.execute("INSERT INTO leftover VALUES (1)")

    # every database handed out to an earlier test on this server is gone
    earlier = _seen.setdefault(pg_server.dsn, [])
    assert dbname not in earlier
    with psycopg.connect(pg_server.dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", [earlier]
        ).fetchone()
    assert row == (0,)
    earlier.append(dbname)


def test_two_connections_share_the_database(dsn: str, conn: Conn) -> None:
    conn.execute("CREATE TABLE shared (id int PRIMARY KEY, note text)")
    with psycopg.connect(dsn) as other:  # not autocommit: an explicit transaction
        other.execute("INSERT INTO shared VALUES (1, 'from other')")
        assert _scalar(conn, "SELECT count(*) FROM shared") == 0  # not committed yet
        other.commit()
        assert _scalar(conn, "SELECT note FROM shared WHERE id = 1") == "from other"
        conn.execute("INSERT INTO shared VALUES (2, 'from conn')")
        row = other.execute("SELECT note FROM shared WHERE id = 2").fetchone()
        assert row == ("from conn",)


def test_dsn_points_at_the_same_database_as_conn(dsn: str, conn: Conn) -> None:
    assert conninfo.conninfo_to_dict(dsn)["dbname"] == _scalar(conn, "SELECT current_database()")


def test_many_connections_allowed(dsn: str) -> None:
    """max_connections=200 leaves room for a pool plus concurrent lock-budget tests."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(50)]
    try:
        assert all(_scalar(c, "SELECT 1") == 1 for c in conns)
    finally:
        for c in conns:
            c.close()
