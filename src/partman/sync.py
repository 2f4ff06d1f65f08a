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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from . import planner, store
from .catalog import Catalog
from .columns import KeyColumn, canonical_tenant
from .config import FOREVER, Table, Tenant
from .errors import KeyMismatchError, PartmanError, TableNotFoundError
from .manager import Manager
from .operations import Plan
from .settings import Path_, Problem, Settings, TableSpec
from .validate import check_parent
from .world import read_catalog

QUERY_TENANTS_SHOWN = 3


@dataclass(frozen=True)
class Change:
    """A change to partman's metadata that applying the config file makes."""

    kind: str  # "create_metadata" | "add_table" | "update_table" | "add_tenant" | "update_tenant"
    table: str | None
    tenant: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.table,
            "tenant": self.tenant,
            "detail": self.detail,
        }


@dataclass
class Resolved:
    """One table of the file, checked against the database."""

    spec: TableSpec
    record: store.TableRecord  # as it will be stored
    tenant_key: KeyColumn | None
    declared: dict[str, Tenant] = field(default_factory=dict)  # canonical id -> as the file says
    queried: list[str] = field(default_factory=list)  # canonical ids from tenants_query
    registered: dict[str, store.TenantRecord] = field(default_factory=dict)

    def tenants_to_write(self) -> list[Tenant]:
        """The tenants `sync` registers: declared ones whose record differs, queried ones
        that are missing."""
        out = [
            dataclasses.replace(t, tenant_id=key)
            for key, t in self.declared.items()
            if _differs(self.registered.get(key), t)
        ]
        out += [
            Tenant(tenant_id=key)
            for key in self.queried
            if key not in self.registered and key not in self.declared
        ]
        return out


@dataclass
class Resolution:
    """What the file means for this database, and what is wrong with it."""

    settings: Settings
    now: dt.datetime
    metadata_exists: bool
    state: store.State
    catalog: Catalog
    tables: list[Resolved] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def plan(self) -> Plan:
        """The maintenance pass after a sync: every managed table, as it will be managed."""
        return planner.plan(self.future_state(), self.catalog, self.now, self.settings.config.tz)

    def future_state(self) -> store.State:
        tables = {(t.schema, t.name): t for t in self.state.tables}
        tenants = {k: list(v) for k, v in self.state.tenants.items()}
        for r in self.tables:
            tables[(r.record.schema, r.record.name)] = r.record
            mine = {t.tenant_id: t for t in tenants.get(r.record.id, [])}
            for t in r.tenants_to_write():
                mine[str(t.tenant_id)] = _record(r.record.id, t)
            tenants[r.record.id] = sorted(mine.values(), key=lambda t: t.tenant_id)
        return store.State(
            tables=tuple(tables.values()),
            tenants={k: tuple(v) for k, v in tenants.items()},
            owned=self.state.owned,
        )


def _record(table_id: int, t: Tenant) -> store.TenantRecord:
    """A Tenant as `Manager.register_tenants` stores it."""
    retention = FOREVER if t.keeps_forever else store.retention_text(t.retention)
    action = None if t.action is None else t.action.value
    return store.TenantRecord(table_id, str(t.tenant_id), retention, t.partition_count, action)


def _policy(r: store.TenantRecord | None) -> tuple[str | None, int | None, str | None]:
    return (None, None, None) if r is None else (r.retention, r.partition_count, r.retention_action)


def _differs(old: store.TenantRecord | None, new: Tenant) -> bool:
    return old is None or _policy(old) != _policy(_record(old.table_id, new))


def _describe_tenant(r: store.TenantRecord | None) -> str:
    if r is None:
        return "-"
    retention, count, action = _policy(r)
    parts = [
        f"retention {retention}" if retention else "",
        f"partition_count {count}" if count is not None else "",
        f"retention_action {action}" if action else "",
    ]
    return ", ".join(p for p in parts if p) or "the table's policy"


def _describe_table(r: store.TableRecord) -> str:
    retention = "forever" if r.retention is None else f"{r.retention}"
    text = (
        f"{r.interval} partitions, {r.partition_count} ahead, retention {retention}, "
        f"retention_action {r.retention_action}"
    )
    if r.archive_schema:
        text += f" to {r.archive_schema}"
    if r.default_partition:
        text += ", default partition"
    if r.backfill:
        text += ", backfill"
    return text


_POLICY_FIELDS = (
    "retention",
    "partition_count",
    "backfill",
    "default_partition",
    "retention_action",
    "archive_schema",
)


def _table_diff(old: store.TableRecord, new: store.TableRecord) -> list[str]:
    out = []
    for name in _POLICY_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if str(a) != str(b):
            shown = {"None": "forever"} if name == "retention" else {}
            out.append(f"{name} {shown.get(str(a), a)} -> {shown.get(str(b), b)}")
    return out


def desired_record(table: Table, table_id: int) -> store.TableRecord:
    return store.TableRecord.from_table(table, table_id)


# -- reading ---------------------------------------------------------------------------------


def read_state(conn: psycopg.Connection[Any], meta: str) -> store.State | None:
    """partman's metadata as it is now (None when there is none yet); SELECTs only."""
    if not store.exists(conn, meta):
        return None
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        rows = [conn.execute(q).fetchall() for q in store.state_queries(meta)]
    return store.parse_state(*rows)


def run_tenants_query(
    conn: psycopg.Connection[Any], query: str, timeout: dt.timedelta
) -> list[object]:
    """The ids a table's `tenants_query` returns, run in a READ ONLY transaction (so it can
    never change anything) under the statement timeout; raises ValueError on a bad shape."""
    with conn.transaction():
        conn.execute(
            sql.SQL("SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}").format(
                sql.Literal(f"{max(1, int(timeout.total_seconds() * 1000))}ms")
            )
        )
        # The user's own SQL from their own config file, run read-only: it is meant as code.
        cur = conn.execute(sql.SQL(query))
        if cur.description is None:
            raise ValueError("it returns no rows; give a SELECT returning one column of ids")
        if len(cur.description) != 1:
            raise ValueError(
                f"it returns {len(cur.description)} columns; it must return exactly one, the "
                "tenant ids (e.g. the uid column of convoy.projects)"
            )
        values = [row[0] for row in cur.fetchall()]
    if any(v is None for v in values):
        raise ValueError("it returns NULL ids; add WHERE <column> IS NOT NULL")
    return values


def resolve(
    conn: psycopg.Connection[Any],
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
        state = read_state(conn, meta)
    except psycopg.Error as error:
        unreadable = True
        found.append(
            settings.problem(
                ("partman", "metadata_schema"),
                f"cannot read partman's metadata in schema {meta!r} ({_first_line(error)}); "
                "run `partman init` to create or upgrade it",
            )
        )
        state = None
    exists = state is not None
    state = state or store.State(tables=(), tenants={}, owned={})
    names = {(t.table.schema, t.table.name or "") for t in settings.tables}
    names |= {(t.schema, t.name) for t in state.tables}
    catalog = read_catalog(conn, sorted(names))
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
        resolved = _resolve_table(conn, settings, spec, old, new_id, state, catalog, found)
        if resolved is not None:
            result.tables.append(resolved)
            result.changes += _changes(resolved, old)
    return result


def _resolve_table(
    conn: psycopg.Connection[Any],
    settings: Settings,
    spec: TableSpec,
    old: store.TableRecord | None,
    new_id: int,
    state: store.State,
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
            tenant_column=table.tenant_id_column,
            time_column=table.partition_by,
            interval=table.interval,
        )
    except PartmanError as error:
        problem(_key_of(spec, error), str(error))
        return None
    if old is not None:
        for name, was, asked in (
            ("tenant_id_column", old.tenant_column, table.tenant_id_column),
            ("partition_by", old.time_column, table.partition_by),
            ("partition_interval", str(old.interval), str(table.interval)),
        ):
            if was != asked:
                problem(
                    (*spec.path, name),
                    f"{table.qualified_name} is already managed with {name} {was!r}; it cannot "
                    f"change under existing partitions. Write {name} = {_toml(was)}, or stop "
                    f"managing it first (`partman tenants remove {table.qualified_name} --all`) "
                    "to manage it anew",
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
            _query_tenants(conn, settings, spec, tenant_key, resolved, problem)
    return resolved if len(problems) == here else None


def _query_tenants(
    conn: psycopg.Connection[Any],
    settings: Settings,
    spec: TableSpec,
    tenant_key: KeyColumn,
    resolved: Resolved,
    problem: Any,
) -> None:
    assert spec.tenants_query is not None
    path = (*spec.path, "tenants_query")
    try:
        values = run_tenants_query(conn, spec.tenants_query, settings.config.statement_timeout)
    except ValueError as error:
        problem(path, str(error))
        return
    except psycopg.Error as error:
        problem(path, f"the query failed: {_first_line(error)}")
        return
    bad: list[str] = []
    for value in values:
        try:
            key = str(canonical_tenant(value, tenant_key, table=spec.qualified_name))
        except PartmanError as error:
            bad.append(str(error))
            continue
        if key not in resolved.queried:
            resolved.queried.append(key)
    if bad:
        shown = "; ".join(bad[:QUERY_TENANTS_SHOWN])
        more = f" (and {len(bad) - QUERY_TENANTS_SHOWN} more)" if len(bad) > 3 else ""
        problem(path, f"{len(bad)} id(s) it returns cannot be tenants: {shown}{more}")


def _key_of(spec: TableSpec, error: PartmanError) -> Path_:
    """The key of the file a catalog error is about."""
    message = str(error)
    table = spec.table
    if isinstance(error, KeyMismatchError):
        for name, value in (
            ("tenant_id_column", table.tenant_id_column),
            ("partition_by", table.partition_by),
        ):
            if value is not None and repr(value) in message:
                return (*spec.path, name)
        if "tenant_id_column" in message:
            return (*spec.path, "tenant_id_column")
        if "cannot be partitioned by" in message:
            return (*spec.path, "partition_interval")
        return (*spec.path, "partition_by")
    if isinstance(error, TableNotFoundError):
        return (*spec.path, "name")
    return (*spec.path, "name")


def _changes(r: Resolved, old: store.TableRecord | None) -> list[Change]:
    name = r.spec.qualified_name
    out: list[Change] = []
    if old is None:
        out.append(Change("add_table", name, None, _describe_table(r.record)))
    else:
        diff = _table_diff(old, r.record)
        if diff:
            out.append(Change("update_table", name, None, "; ".join(diff)))
    for key, t in r.declared.items():
        before = r.registered.get(key)
        if _differs(before, t):
            after = _describe_tenant(_record(0, t))
            if before is None:
                out.append(Change("add_tenant", name, key, after))
            else:
                out.append(
                    Change("update_tenant", name, key, f"{_describe_tenant(before)} -> {after}")
                )
    for key in r.queried:
        if key not in r.registered and key not in r.declared:
            out.append(Change("add_tenant", name, key, "the table's policy (from tenants_query)"))
    return out


# -- writing ---------------------------------------------------------------------------------


def sync(manager: Manager, resolution: Resolution) -> list[Change]:
    """Register what the file declares (tables, their policies, tenants), through the
    Manager's public API; returns the changes it made."""
    if resolution.problems:
        raise PartmanError("the config has problems; nothing was written")
    if not resolution.metadata_exists:
        manager.init()
    for r in resolution.tables:
        manager.add_managed_table(r.spec.table)
        tenants = r.tenants_to_write()
        if tenants:
            manager.register_tenants(r.spec.table, tenants)
    return resolution.changes


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _toml(value: object) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
