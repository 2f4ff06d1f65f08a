# Generated from src/partman/world_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""The read side of a pass: metadata state and catalog snapshot in one round trip.

Both come from one REPEATABLE READ snapshot, so the planner never sees a partition the metadata
does not know about yet (or the reverse) because of a commit in between. Source of truth for
both faces: `world.py` is generated from this file by tools/async_to_sync.py.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.pq import TransactionStatus

from ..db.catalog import (
    SESSION_SETTINGS,
    CatalogReader,
    catalog_queries,
    gc_paused,
    parents_from_values,
    positions_query,
)
from ..db.metadata import (
    OWNED_RECORD,
    OwnedRecords,
    managed_parents,
    owned_rows,
    parse_state,
    state_queries,
)
from ..decide.positions import Probe, probes
from ..model.columns import TenantValue
from ..model.snapshot import Catalog, State


def read_world(
    conn: psycopg.Connection[Any],
    meta_schema: str,
    zone: zoneinfo.ZoneInfo | None = None,
    budget: dt.timedelta | None = None,
    seen: Seen | None = None,
) -> tuple[State, Catalog]:
    """Everything a pass needs to plan: one round trip, constant whatever the tenant count;
    a second one only where id tables are managed (their newest ids, `read_positions`).

    The ownership records come joined to the partitions they are about (see `catalog_queries`).
    """
    state, catalog = _read_snapshot(conn, meta_schema)
    read_positions(conn, state, catalog, zone or zoneinfo.ZoneInfo("UTC"), budget, seen)
    return state, catalog


Seen = dict[tuple[str, str], dict[TenantValue | None, tuple[int, int | None]]]
"""The newest ids a process read last, per parent and tenant (and the newest in the windows
themselves, `ParentInfo.newest_in_windows`): what a pass plans an id table
from when a lock keeps it from reading them now (ids only grow, so an older newest id is a
lower bound: it creates and retires no more than the true one would)."""


def read_positions(
    conn: psycopg.Connection[Any],
    state: State,
    catalog: Catalog,
    zone: zoneinfo.ZoneInfo,
    budget: dt.timedelta | None = None,
    seen: Seen | None = None,
) -> None:
    """Each id table's newest id per tenant, into its `ParentInfo.positions`.

    Reading a partition's max() needs ACCESS SHARE on it, which waits behind an application's
    ACCESS EXCLUSIVE. Under a `budget` (the pass's lock_timeout) the one statement gives up;
    then each parent is read on its own, and a parent still locked keeps the newest ids `seen`
    last (none: the planner starts from its lowest window and plans nothing new there); the
    executor then meets the same lock and names its holder."""
    found = probes(state, catalog, zone)
    if not found:
        return
    rows: list[tuple[int, str | None, str | None]]
    try:
        rows = _positions(conn, found, budget)
    except pgerrors.LockNotAvailable:
        if budget is None:
            raise
        by_parent: dict[tuple[str, str], list[int]] = {}
        for n, probe in enumerate(found):
            by_parent.setdefault(probe.parent, []).append(n)
        rows = []
        for parent, group in by_parent.items():
            try:
                got = _positions(conn, [found[n] for n in group], budget)
            except pgerrors.LockNotAvailable:
                info = catalog[parent]
                for tenant, (newest, in_windows) in (seen or {}).get(parent, {}).items():
                    info.positions[tenant] = newest
                    if in_windows is not None:
                        info.newest_in_windows[tenant] = in_windows
                continue
            rows += [(group[i], text, windows) for i, text, windows in got]
    for i, text, windows in rows:
        probe = found[i]
        if text is not None:
            catalog[probe.parent].positions[probe.tenant] = int(Decimal(text))
        if windows is not None:
            catalog[probe.parent].newest_in_windows[probe.tenant] = int(Decimal(windows))
    if seen is not None:
        for probe in found:
            info = catalog[probe.parent]
            if probe.tenant in info.positions:
                seen.setdefault(probe.parent, {})[probe.tenant] = (
                    info.positions[probe.tenant],
                    info.newest_in_windows.get(probe.tenant),
                )


def _positions(
    conn: psycopg.Connection[Any], found: list[Probe], budget: dt.timedelta | None
) -> list[tuple[int, str | None, str | None]]:
    timeout: list[sql.Composed] = []
    if budget is not None:
        timeout.append(
            sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(f"{max(1, int(budget.total_seconds() * 1000))}ms")
            )
        )
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        # one round trip, as the snapshot's read: BEGIN, the budget, the probes, COMMIT
        script = [sql.SQL("BEGIN READ ONLY"), *timeout, positions_query(found), sql.SQL("COMMIT")]
        try:
            cur = conn.execute(sql.SQL(";\n").join(script))
            rows = _next_rows(cur)
        except psycopg.Error:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            raise
        return [(int(i), text, windows) for i, text, windows in rows]
    with conn.transaction():  # a caller's connection: its own transaction rules
        for statement in timeout:
            conn.execute(statement)
        cur = conn.execute(positions_query(found))
        return [(int(i), text, windows) for i, text, windows in cur.fetchall()]


def _read_snapshot(
    conn: psycopg.Connection[Any], meta_schema: str
) -> tuple[State, Catalog]:
    tables_query, tenants_query, _ = state_queries(meta_schema)
    statements: list[sql.Composable] = [
        sql.SQL("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        SESSION_SETTINGS,
        tables_query,
        tenants_query,
        *catalog_queries(managed_parents(meta_schema), owned_rows(meta_schema), OWNED_RECORD),
        sql.SQL("COMMIT"),
    ]
    cur = conn.execute(sql.SQL(";\n").join(statements))
    with gc_paused():
        tables = _next_rows(cur)
        tenants = _next_rows(cur)
        owned = OwnedRecords()
        reader = CatalogReader(_next_rows(cur), full=True, records=owned.add)
        _feed(cur, reader)
        return parse_state(tables, tenants, owned), reader.catalog()


def read_catalog(conn: psycopg.Connection[Any], names: list[tuple[str, str]]) -> Catalog:
    """The catalog for tables named explicitly (registration and import)."""
    statements = [
        sql.SQL("BEGIN READ ONLY"),
        SESSION_SETTINGS,
        *catalog_queries(parents_from_values(names)),
        sql.SQL("COMMIT"),
    ]
    cur = conn.execute(sql.SQL(";\n").join(statements))
    with gc_paused():
        reader = CatalogReader(_next_rows(cur))
        _feed(cur, reader)
        return reader.catalog()


CHUNK = 2000
"""Partition rows turned into objects at a time (see `catalog.CatalogReader`)."""


def _feed(cur: psycopg.Cursor[Any], reader: CatalogReader) -> None:
    """The next statement's rows (the partitions'), to the reader a chunk at a time."""
    _skip_to_rows(cur)
    while True:
        rows = cur.fetchmany(CHUNK)
        if not rows:
            return
        reader.feed(rows)


def _skip_to_rows(cur: psycopg.Cursor[Any]) -> None:
    """Move to the next statement's result that has rows (this one, if it has)."""
    while cur.description is None:
        if not cur.nextset():
            raise psycopg.ProgrammingError("a statement that returns rows is missing")


def _next_rows(cur: psycopg.Cursor[Any]) -> list[Any]:
    """All rows of the next statement that returns rows; the cursor moves past it."""
    _skip_to_rows(cur)
    rows = cur.fetchall()
    cur.nextset()
    return rows


def default_rows(
    conn: psycopg.Connection[Any], defaults: dict[str, tuple[str, str]], cap: int = 1_000_000
) -> dict[str, int]:
    """Rows waiting in each default partition (counted up to `cap`), in one round trip."""
    if not defaults:
        return {}
    parts = [
        sql.SQL("SELECT {}::text, (SELECT count(*) FROM (SELECT FROM {} LIMIT {}) x)").format(
            sql.Literal(parent), sql.Identifier(*name), sql.Literal(cap)
        )
        for parent, name in defaults.items()
    ]
    cur = conn.execute(sql.SQL(" UNION ALL ").join(parts))
    rows = cur.fetchall()
    return {r[0]: int(r[1]) for r in rows}
