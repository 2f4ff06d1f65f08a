"""One inventory and one plan shared by the service's reads.

At 10,000 tenants an inventory costs about two seconds (the catalog read is one query; the
rest is the interval maths per tenant), and the web UI's refresh, a Prometheus scrape and the
tenants listing each asked for their own. They now share one, computed once:

- reused until something changes: a pass finished on this replica (`Passes` says so), a
  change made through this replica's API (`Service.nudge`), or the catalog or partman's
  metadata changed under us (another replica's pass, the application's DDL, an ANALYZE):
  every read first asks the database for a fingerprint of what the inventory is made of (one
  cheap query over pg_inherits/pg_class, the comments on them and partman's metadata tables)
  and recomputes when it differs;
- and for `ttl` seconds at most (of the manager's clock and of the wall clock), because
  runway moves with the clock and an id table's newest ids move with the application's
  inserts, which no fingerprint sees;
- single-flight: a request that arrives while the one computation is under way waits for it
  instead of starting its own (ten concurrent reads cost one inventory, not ten).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import sql

from ..decide.coverage import Inventory
from ..engine import lookups
from ..engine.manager import Manager
from ..engine.world import default_rows
from ..model import snapshot
from ..model.operations import Plan

T = TypeVar("T")

DEFAULT_TTL = 5.0
"""Seconds a shared read is reused at most: runway on screen lags the clock by this much."""


@dataclass
class _Entry(Generic[T]):
    value: T
    generation: int
    stamp: object
    clock_at: dt.datetime
    wall_at: float


@dataclass
class _Flight:
    generation: int
    stamp: object
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class SharedReads:
    """The service's inventory and plan, computed once for every reader (see the module)."""

    def __init__(
        self,
        manager: Manager,
        fingerprint: Callable[[], object],
        *,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        self._manager = manager
        self._fingerprint = fingerprint
        self.ttl = ttl
        self._lock = threading.Lock()
        self._generation = 0
        self._entries: dict[str, _Entry[Any]] = {}
        self._flights: dict[str, _Flight] = {}
        self.computed: dict[str, int] = {"inventory": 0, "plan": 0}
        """How many times each was computed (the rest were shared): what tests and the
        benchmark count."""

    def invalidate(self) -> None:
        """Something changed here (a pass finished, an API write): the next read recomputes."""
        with self._lock:
            self._generation += 1

    def inventory(self) -> Inventory:
        """Every managed table's partitions and coverage, unfiltered (see `only`)."""
        found: Inventory = self._shared("inventory", self._manager.inventory)
        return found

    def plan(self) -> Plan:
        """What the next pass would do now."""
        found: Plan = self._shared("plan", self._manager.plan)
        return found

    def _fresh(self, entry: _Entry[Any], generation: int, stamp: object) -> bool:
        if entry.generation != generation or entry.stamp != stamp:
            return False
        if time.monotonic() - entry.wall_at > self.ttl:
            return False
        moved = abs((self._manager.clock.now() - entry.clock_at).total_seconds())
        return moved <= self.ttl  # a simulated clock moved by hand: runway moved with it

    def _shared(self, key: str, compute: Callable[[], T]) -> T:
        stamp = self._fingerprint()
        with self._lock:
            generation = self._generation
            entry = self._entries.get(key)
            if entry is not None and self._fresh(entry, generation, stamp):
                value: T = entry.value
                return value
            flight = self._flights.get(key)
            mine = flight is None or flight.generation != generation or flight.stamp != stamp
            if mine:
                flight = _Flight(generation, stamp)
                self._flights[key] = flight
        assert flight is not None
        if not mine:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            joined: T = flight.value
            return joined
        clock_at = self._manager.clock.now()
        wall_at = time.monotonic()
        try:
            flight.value = compute()
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                if self._flights.get(key) is flight:
                    del self._flights[key]
                if flight.error is None:
                    self.computed[key] += 1
                    if flight.generation == self._generation:
                        self._entries[key] = _Entry(
                            flight.value, flight.generation, stamp, clock_at, wall_at
                        )
            flight.done.set()
        result: T = flight.value
        return result


def only(
    found: Inventory, table: str | None, tenants: Iterable[str | None] | None = None
) -> Inventory:
    """The part of an inventory about one table (None: every table) and some of its tenants
    (None: all of them; a single-tenant table's one row has tenant None and is kept)."""
    wanted = None if tenants is None else set(tenants)

    def keep(t: str, n: str | None) -> bool:
        return (table is None or t == table) and (wanted is None or n in wanted)

    return Inventory(
        [r for r in found.partitions if keep(r.table, r.tenant)],
        [c for c in found.coverage if keep(c.table, c.tenant)],
    )


def default_partition_rows(
    conn: psycopg.Connection[Any], found: Inventory, records: list[snapshot.TableRecord]
) -> dict[str, int]:
    """`lookups.default_partition_rows`, with the default partitions taken from the shared
    inventory instead of a catalog read of its own (a second at 10,000 LIST tenants)."""
    wanted = {r.qualified_name for r in records}
    defaults: dict[str, tuple[str, str]] = {}
    for p in found.partitions:
        if p.is_default and p.table in wanted:
            if p.partition.count(".") != 1:  # a dot in a name: the catalog says which
                return lookups.default_partition_rows(conn, records)
            schema, name = p.partition.split(".")
            defaults[p.table] = (schema, name)
    return default_rows(conn, defaults)


def fingerprint_query(metadata_schema: str) -> sql.Composed:
    """What the inventory is made of, summed up in one row: every partition in the database
    (count, row versions, row estimates: CREATE, ATTACH, DETACH, DROP and ANALYZE all change
    it), the comments on relations (ownership marks) and partman's registrations. Reads the
    catalog's rows, never a partition's: tens of milliseconds where the inventory takes
    seconds."""
    s = sql.Identifier(metadata_schema)

    def versions(table: str) -> sql.Composed:
        return sql.SQL(
            "(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) FROM {}.{})"
        ).format(s, sql.Identifier(table))

    return sql.SQL(
        "SELECT (SELECT count(*) || ':' || coalesce(sum(c.xmin::text::int8), 0) || ':' "
        "|| coalesce(sum(c.reltuples), 0) FROM pg_catalog.pg_inherits i "
        "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid), "
        "(SELECT count(*) || ':' || coalesce(sum(xmin::text::int8), 0) "
        "FROM pg_catalog.pg_description WHERE classoid = 'pg_catalog.pg_class'::regclass), "
        "{}, {}, {}"
    ).format(versions("managed_tables"), versions("tenants"), versions("partitions"))


def read_fingerprint(conn: psycopg.Connection[Any], metadata_schema: str) -> object:
    """`fingerprint_query`'s row; None when partman's metadata does not exist yet (then the
    inventory is empty and only the TTL and the passes renew it)."""
    try:
        row = conn.execute(fingerprint_query(metadata_schema)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return None if row is None else tuple(row)
