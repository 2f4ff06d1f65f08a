"""From a config file to partman's metadata: what `check` finds, what `plan` shows, what
`apply` writes first.

`resolve()` only reads (the catalog, partman's metadata, each table's `tenants_query`, all in
READ ONLY transactions): it checks every table of the file against the live database, collects
every problem at once (each placed at the file's line and key), and computes what applying the
file would change, both in partman's metadata (tables and tenants registered, policies changed)
and in the database (the plan of the maintenance pass that follows, from the same planner the
pass uses, run on the metadata as it will be). `sync()` then writes the registrations through
the Manager's public API.

What the file says, it says on every apply: a table's policy, the tenants of its `tenants`
list (with the table's policy) and its `[[table.tenant]]` entries (with their own). Tenants
found by `tenants_query`, or added with `partman tenants add`, are registered when missing and
otherwise keep the policy they have. Nothing is ever unregistered by a sync.

Source of truth for both faces: `sync.py` is generated from this file by tools/async_to_sync.py
(`AsyncManager` here, `Manager` there); the changes it resolves are in `resolution.py`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from ..db import metadata
from ..decide.reconcile import QUERY_TENANTS_SHOWN as QUERY_TENANTS_SHOWN
from ..decide.reconcile import Change as Change
from ..decide.reconcile import Resolution as Resolution
from ..decide.reconcile import Resolved as Resolved
from ..decide.reconcile import changes, key_of, toml_value
from ..decide.reconcile import desired_record as desired_record
from ..decide.validate import check_parent
from ..errors import PartmanError
from ..model import snapshot
from ..model.columns import KeyColumn, canonical_tenant
from ..model.snapshot import Catalog
from ..model.text import first_line
from ..settings import Path_, Problem, Settings, SettingsError, TableSpec
from . import store_async as store
from .manager_async import AsyncManager
from .world_async import read_catalog, read_positions


async def read_state(conn: psycopg.AsyncConnection[Any], meta: str) -> snapshot.State | None:
    """partman's metadata as it is now (None when there is none yet); SELECTs only, in one
    snapshot, parsed by the pass's own parser (`metadata.parse_state`) so that `resolve` plans
    on the records a pass would see. The other metadata reads are `db/reads.py`."""
    if not await store.exists(conn, meta):
        return None
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = [await (await conn.execute(q)).fetchall() for q in metadata.state_queries(meta)]
    return metadata.parse_state(*rows)


async def run_tenants_query(
    conn: psycopg.AsyncConnection[Any], query: str, timeout: dt.timedelta
) -> list[object]:
    """The ids a table's `tenants_query` returns, run in a READ ONLY transaction (so it can
    never change anything) under the statement timeout; raises ValueError on a bad shape."""
    async with conn.transaction():
        await conn.execute(
            sql.SQL("SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}").format(
                sql.Literal(f"{max(1, int(timeout.total_seconds() * 1000))}ms")
            )
        )
        # The user's own SQL from their own config file, run read-only: it is meant as code.
        cur = await conn.execute(sql.SQL(query))
        if cur.description is None:
            raise ValueError("it returns no rows; give a SELECT returning one column of ids")
        if len(cur.description) != 1:
            raise ValueError(
                f"it returns {len(cur.description)} columns; it must return exactly one, the "
                "tenant ids (e.g. the uid column of convoy.projects)"
            )
        values = [row[0] for row in await cur.fetchall()]
    if any(v is None for v in values):
        raise ValueError("it returns NULL ids; add WHERE <column> IS NOT NULL")
    return values


async def resolve(
    conn: psycopg.AsyncConnection[Any],
    settings: Settings,
    now: dt.datetime,
    *,
    problems: list[Problem] | None = None,
) -> Resolution:
    """Check the file against the database and work out what applying it would change.

    Only SELECTs (in READ ONLY transactions). `problems` are ones already known (from reading
    the file); database problems are added to them.
    """
    meta = settings.config.metadata_schema
    found = list(problems or [])
    unreadable = False
    try:
        state = await read_state(conn, meta)
    except psycopg.Error as error:
        unreadable = True
        found.append(
            settings.problem(
                ("partman", "metadata_schema"),
                f"cannot read partman's metadata in schema {meta!r} ({first_line(error)}); "
                "run `partman init` to create or upgrade it",
            )
        )
        state = None
    exists = state is not None
    state = state or snapshot.State(tables=(), tenants={}, owned={})
    names = {(t.table.schema, t.table.name or "") for t in settings.tables}
    names |= {(t.schema, t.name) for t in state.tables}
    catalog = await read_catalog(conn, sorted(names))
    result = Resolution(settings, now, exists, state, catalog, problems=found)
    if not exists and not unreadable:
        result.changes.append(
            Change("create_metadata", None, None, f"create partman's metadata schema {meta}")
        )
    registered = {(t.schema, t.name): t for t in state.tables}
    new_id = 0
    for spec in settings.tables:
        old = registered.get((spec.table.schema, spec.table.name or ""))
        if old is None:
            new_id -= 1
        resolved = await _resolve_table(conn, settings, spec, old, new_id, state, catalog, found)
        if resolved is not None:
            result.tables.append(resolved)
            result.changes += changes(resolved, old)
    if not result.problems:  # id tables are planned from their newest ids
        await read_positions(conn, result.future_state(), catalog, settings.config.tz)
    return result


async def _resolve_table(
    conn: psycopg.AsyncConnection[Any],
    settings: Settings,
    spec: TableSpec,
    old: snapshot.TableRecord | None,
    new_id: int,
    state: snapshot.State,
    catalog: Catalog,
    problems: list[Problem],
) -> Resolved | None:
    table = spec.table
    assert table.name is not None
    here = len(problems)

    def problem(path: Path_, message: str) -> None:
        problems.append(settings.problem(path, message))

    try:
        tenant_key, _ = check_parent(
            table.qualified_name,
            catalog.get((table.schema, table.name)),
            snapshot.TableRecord.from_table(table),
        )
    except PartmanError as error:
        problem(key_of(spec, error), str(error))
        return None
    if old is not None:
        for name, was, asked in (
            ("tenant_id_column", old.tenant_column, table.tenant_id_column),
            ("partition_by", old.time_column, table.partition_by),
            ("partition_interval", str(old.interval), str(table.interval)),
            ("epoch", old.epoch, snapshot.TableRecord.from_table(table).epoch),
            (
                "tenant_partitioning",
                old.tenant_partitioning,
                "list" if table.list_tenants else "range",
            ),
        ):
            if was != asked:
                shown = old.interval if name == "partition_interval" else was
                fix = f"Remove {name}" if was is None else f"Write {name} = {toml_value(shown)}"
                problem(
                    (*spec.path, name),
                    f"{table.qualified_name} is already managed with {name} {was!r}; it cannot "
                    f"change under existing partitions. {fix}, or stop managing it first "
                    f"(`partman tenants remove {table.qualified_name} --all`) to manage it anew",
                )
    table_id = old.id if old is not None else new_id
    resolved = Resolved(spec, desired_record(table, table_id), tenant_key)
    if old is not None:
        resolved.registered = {t.tenant_id: t for t in state.tenants.get(old.id, ())}
    if tenant_key is not None:
        for t in spec.tenants:
            try:
                value = canonical_tenant(t.tenant_id, tenant_key, table=table.qualified_name)
            except PartmanError as error:
                problem(t.path, str(error))
                continue
            resolved.declared[str(value)] = t.tenant
        if spec.tenants_query is not None:
            await _query_tenants(conn, settings, spec, tenant_key, resolved, problem)
    return resolved if len(problems) == here else None


async def _query_tenants(
    conn: psycopg.AsyncConnection[Any],
    settings: Settings,
    spec: TableSpec,
    tenant_key: KeyColumn,
    resolved: Resolved,
    problem: Any,
) -> None:
    assert spec.tenants_query is not None
    path = (*spec.path, "tenants_query")
    try:
        timeout = settings.config.statement_timeout
        values = await run_tenants_query(conn, spec.tenants_query, timeout)
    except ValueError as error:
        problem(path, str(error))
        return
    except psycopg.Error as error:
        problem(path, f"the query failed: {first_line(error)}")
        return
    bad: list[str] = []
    seen = set(resolved.queried)  # not `in` the list: 10,000 ids would be 50 million compares
    for value in values:
        try:
            key = str(canonical_tenant(value, tenant_key, table=spec.qualified_name))
        except PartmanError as error:
            bad.append(str(error))
            continue
        if key not in seen:
            seen.add(key)
            resolved.queried.append(key)
    if bad:
        shown = "; ".join(bad[:QUERY_TENANTS_SHOWN])
        more = f" (and {len(bad) - QUERY_TENANTS_SHOWN} more)" if len(bad) > 3 else ""
        problem(path, f"{len(bad)} id(s) it returns cannot be tenants: {shown}{more}")


async def sync(manager: AsyncManager, resolution: Resolution) -> list[Change]:
    """Register what the file declares (tables, their policies, tenants), through the
    Manager's public API; returns the changes it made."""
    if resolution.problems:
        raise PartmanError("the config has problems; nothing was written")
    if not resolution.metadata_exists:
        await manager.init()
    for r in resolution.tables:
        await manager.add_managed_table(r.spec.table)
        tenants = r.tenants_to_write()
        if tenants:
            await manager.register_tenants(r.spec.table, tenants)
    return resolution.changes


async def apply(manager: AsyncManager, found: Settings) -> list[Change]:
    """Resolve the settings on a connection of their own, then register what they declare: the
    step before every scheduled pass (`partman run`, the ASGI lifespan), so that tenants a
    `tenants_query` finds join. Raises `SettingsError` with every problem found; nothing is
    written then."""
    assert found.dsn is not None
    async with await psycopg.AsyncConnection.connect(
        found.dsn,
        autocommit=True,
        application_name=found.config.application_name,
        connect_timeout=15,
    ) as conn:
        resolution = await resolve(conn, found, manager.clock.now())
    if resolution.problems:
        raise SettingsError(resolution.problems)
    return await sync(manager, resolution)
