"""Round trips do not grow with the number of tenants: registering them is a statement per
5,000, and a pass reads the catalog and the metadata once, whatever the count (never a query
per tenant). Counted on the client, as the benchmarks do: every exchange with the server goes
through `Connection.wait()`."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

import partman

from seed import NOW, create_seed_schema, seed_table

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]
MANY = 1000
"""Tenants (each with today's partition) against 20: PostgreSQL makes a partition of a parent
with thousands in some 10 ms, so more would mostly time the set-up."""


class _Counting(psycopg.Connection[Any]):
    trips = 0

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        _Counting.trips += 1
        return super().wait(*args, **kwargs)


def _tenants(n: int) -> list[str]:
    return [f"project-{i:05d}" for i in range(n)]


def _cover_today(conn: Conn, tenants: list[str]) -> None:
    """Today's partition for every tenant, made by plain SQL (500 a transaction)."""
    today = NOW.replace(hour=0)
    for i in range(0, len(tenants), 500):
        statements = [
            sql.SQL(
                "CREATE TABLE {} PARTITION OF convoy.events FOR VALUES FROM ({}, {}) TO ({}, {})"
            ).format(
                sql.Identifier("convoy", f"events_{t}"),
                sql.Literal(t),
                sql.Literal(today),
                sql.Literal(t),
                sql.Literal(today + (NOW - today) * 2),
            )
            for t in tenants[i : i + 500]
        ]
        with conn.transaction():
            conn.execute(sql.SQL(";\n").join(statements))


def _trips(dsn: str, tenants: list[str]) -> tuple[int, int]:
    """(round trips to register `tenants`, round trips of a pass with nothing to do)."""
    pool: ConnectionPool[Any] = ConnectionPool(
        dsn, connection_class=_Counting, min_size=1, kwargs={"autocommit": True}, open=True
    )
    try:
        manager = partman.Manager(pool, clock=partman.SimulatedClock(NOW))
        manager.init()
        table = seed_table("events", partition_count=0, retention_period=None)
        manager.add_managed_table(table)
        _Counting.trips = 0
        manager.register_tenants(table, tenants)
        registering = _Counting.trips
        _Counting.trips = 0
        report = manager.maintain()
        passing = _Counting.trips
        assert report.ok and not report.results, report.results[:3]
        return registering, passing
    finally:
        pool.close()


@pytest.fixture
def covered(conn: Conn) -> None:
    create_seed_schema(conn)
    _cover_today(conn, _tenants(MANY))


def test_registering_1000_tenants_and_a_pass_over_them_take_as_many_round_trips_as_for_20(
    dsn: str, conn: Conn, covered: None
) -> None:
    few = _trips(dsn, _tenants(20))
    conn.execute("DELETE FROM partman_meta.tenants")
    many = _trips(dsn, _tenants(MANY))
    assert many == few, (few, many)
    assert conn.execute("SELECT count(*) FROM partman_meta.tenants").fetchone() == (MANY,)
