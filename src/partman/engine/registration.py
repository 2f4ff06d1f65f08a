"""Register a table with partman on a connection the caller owns, inside the caller's transaction.

Why this exists next to `Manager.add_managed_table`: a schema migration (Alembic, Django, a
hand-written script) creates the parent table and must leave it managed when it commits, and
not managed at all when it rolls back. The Manager works on connections of its own and commits
on its own, so it cannot take part in the migration's transaction (and a table the migration
has just created is invisible to any other connection until the migration commits). This
module runs the same checks and writes on the caller's connection instead:

* the parent is read with the catalog query and checked by `validate.check_parent`, exactly as
  the Manager and `partman check` do; what is registered already, by `reads.read_registered`;
* partman's metadata is created or upgraded by `store.migrate`, the table is written by
  `store.upsert_table(TableRecord.from_table(...))`, tenants by `store.upsert_tenants`.

It never commits or rolls back the caller's transaction. On a connection in autocommit mode
(nobody's transaction), the registration runs in a transaction of its own, all or nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import scalar_row

from ..db.catalog import SESSION_SETTINGS, catalog_queries, parents_from_values, parse_catalog
from ..db.reads import read_registered
from ..decide.validate import check_parent
from ..errors import ConfigError, PartmanError, TenantError
from ..model import snapshot
from ..model.columns import KeyColumn, canonical_tenant
from ..model.config import FOREVER, Table, Tenant, TenantId
from ..model.snapshot import Catalog
from . import store
from .sync import run_tenants_query

DEFAULT_METADATA_SCHEMA = "partman_meta"
TENANTS_QUERY_TIMEOUT = dt.timedelta(seconds=60)


@dataclasses.dataclass(frozen=True)
class Registration:
    """What `register` wrote: the table's id, whether its row changed, the tenants written."""

    table: str
    table_id: int
    changed: bool
    tenants: tuple[str, ...]


def register(
    conn: psycopg.Connection[Any],
    table: Table,
    tenants: Iterable[TenantId | Tenant] = (),
    *,
    tenants_query: str | None = None,
    metadata_schema: str = DEFAULT_METADATA_SCHEMA,
) -> Registration:
    """Validate `table` against the catalog as this connection sees it, then record it.

    The table's policy is written as given (a changed retention or count applies from the next
    pass); `tenants` are written with their own policy; ids returned by `tenants_query` (SQL
    returning one column, run read-only) are added with the table's policy when they are not
    registered yet, and keep theirs otherwise. Everything is checked before anything is
    written: a bad tenant id writes nothing. Raises a PartmanError naming the fix.
    """
    if table.name is None:
        raise ConfigError("register() needs a Table with a name")
    if table.tenant_id is not None:
        raise ConfigError(
            f"register() takes tenants separately: leave Table.tenant_id None for "
            f"{table.qualified_name} and pass tenants=[{table.tenant_id!r}]"
        )
    qualified = table.qualified_name
    with caller_transaction(conn):
        parent = read_parents(conn, [(table.schema, table.name)]).get((table.schema, table.name))
        tenant_key, _ = check_parent(
            qualified,
            parent,
            snapshot.TableRecord.from_table(table),
        )
        state = read_registered(conn, metadata_schema)
        old = _find(state, table.schema, table.name)
        if old is not None:
            _check_key_unchanged(old, table)
        declared = _declared_tenants(qualified, tenant_key, list(tenants))
        queried = (
            _queried_tenants(conn, qualified, tenant_key, tenants_query)
            if tenants_query is not None
            else []
        )
        registered = {t.tenant_id for t in state.tenants.get(old.id, ())} if old else set()
        with _lock_timeout_kept(conn):
            store.migrate(conn, metadata_schema)
        record = snapshot.TableRecord.from_table(table)
        table_id, changed = store.upsert_table(conn, metadata_schema, record, update_policy=True)
        wanted = dict(declared)
        for key in queried:
            if key not in registered and key not in wanted:
                wanted[key] = snapshot.TenantRecord(0, key, None, None, None)
        records = [dataclasses.replace(r, table_id=table_id) for r in wanted.values()]
        store.upsert_tenants(conn, metadata_schema, table_id, records)
    return Registration(qualified, table_id, changed, tuple(wanted))


def unregister(
    conn: psycopg.Connection[Any],
    schema: str,
    name: str,
    *,
    metadata_schema: str = DEFAULT_METADATA_SCHEMA,
) -> bool:
    """Stop managing a table (and all its tenants); returns False if it was not managed.

    Never drops data: partitions stay where they are and stay recorded as partman's, so
    registering the table again resumes where it left off, retention included.
    """
    with caller_transaction(conn):
        if not store.exists(conn, metadata_schema):
            return False
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE schema_name = %s AND table_name = %s").format(
                sql.Identifier(metadata_schema, "managed_tables")
            ),
            (schema, name),
        )
        return cur.rowcount > 0


def read_parents(conn: psycopg.Connection[Any], names: list[tuple[str, str]]) -> Catalog:
    """The catalog query for named tables, inside whatever transaction is open.

    `world.read_catalog` wraps the query in BEGIN ... COMMIT, which would commit a migration's
    transaction halfway through; here it runs in a savepoint that is rolled back, so the
    session settings it needs (time zone, date style) do not leak into the caller's
    transaction either.
    """
    with conn.transaction(force_rollback=True):
        conn.execute(SESSION_SETTINGS)
        heads, rows = (
            conn.execute(q).fetchall() for q in catalog_queries(parents_from_values(names))
        )
    return parse_catalog(heads, rows)


@contextlib.contextmanager
def caller_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run the block as one savepoint of the caller's transaction (or as a transaction of its
    own in autocommit mode): all of it is written, or none of it, and the caller decides."""
    status = conn.info.transaction_status
    if status == TransactionStatus.INERROR:
        raise PartmanError(
            "the connection's transaction has already failed; roll it back before registering"
        )
    if not conn.autocommit and status == TransactionStatus.IDLE:
        # No transaction yet: open the caller's (psycopg begins one with the first statement),
        # so that the block below is a savepoint of it rather than a transaction psycopg would
        # commit on its own at the end of the block.
        conn.execute("SELECT 1")
    with conn.transaction():
        yield


@contextlib.contextmanager
def _lock_timeout_kept(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """`store.migrate` sets lock_timeout for the rest of the transaction it runs in, which here
    is the caller's; put the caller's value back afterwards."""
    with conn.cursor(row_factory=scalar_row) as cur:
        kept = cur.execute("SELECT current_setting('lock_timeout')").fetchone()
    yield
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (kept,))


def _find(state: snapshot.State, schema: str, name: str) -> snapshot.TableRecord | None:
    return next((t for t in state.tables if (t.schema, t.name) == (schema, name)), None)


def _check_key_unchanged(old: snapshot.TableRecord, table: Table) -> None:
    """The key columns and interval cannot change under existing partitions (as the Manager
    and `partman check` say)."""
    new = snapshot.TableRecord.from_table(table)
    mismatches = [
        f"{what} {was!r} (asked for {asked!r})"
        for what, was, asked in (
            ("tenant column", old.tenant_column, table.tenant_id_column),
            ("partition_by", old.time_column, table.partition_by),
            ("interval", str(old.interval), str(table.interval)),
            ("epoch", old.epoch, new.epoch),
            ("tenant_partitioning", old.tenant_partitioning, new.tenant_partitioning),
        )
        if was != asked
    ]
    if mismatches:
        raise ConfigError(
            f"{table.qualified_name} is already managed with {', '.join(mismatches)}; these "
            "cannot change under existing partitions. Keep the registered values, or unregister "
            "the table first to manage it anew (existing partitions are then left alone)"
        )


def _declared_tenants(
    qualified: str, tenant_key: KeyColumn | None, tenants: list[TenantId | Tenant]
) -> dict[str, snapshot.TenantRecord]:
    """Canonical id -> record, or a TenantError listing every bad id (nothing is written)."""
    if not tenants:
        return {}
    if tenant_key is None:
        raise ConfigError(
            f"{qualified} has no tenant column; tenants apply to tables partitioned by "
            "RANGE (tenant column, time column)"
        )
    out: dict[str, snapshot.TenantRecord] = {}
    problems: list[str] = []
    for item in tenants:
        tenant = item if isinstance(item, Tenant) else Tenant(tenant_id=item)
        try:
            key = str(canonical_tenant(tenant.tenant_id, tenant_key, table=qualified))
        except PartmanError as error:
            problems.append(str(error))
            continue
        retention = FOREVER if tenant.keeps_forever else snapshot.retention_text(tenant.retention)
        action = None if tenant.action is None else tenant.action.value
        out[key] = snapshot.TenantRecord(0, key, retention, tenant.partition_count, action)
    if problems:
        raise TenantError(
            f"nothing registered: {len(problems)} invalid tenant id(s): " + "; ".join(problems)
        )
    return out


def _queried_tenants(
    conn: psycopg.Connection[Any], qualified: str, tenant_key: KeyColumn | None, query: str
) -> list[str]:
    if tenant_key is None:
        raise ConfigError(f"{qualified} has no tenant column, so it cannot take a tenants_query")
    # run_tenants_query makes its transaction READ ONLY with a statement timeout; in a rolled
    # back savepoint, neither outlives the query
    with conn.transaction(force_rollback=True):
        try:
            values = run_tenants_query(conn, query, TENANTS_QUERY_TIMEOUT)
        except ValueError as error:
            raise ConfigError(f"tenants_query of {qualified}: {error}") from None
        except psycopg.Error as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ConfigError(f"tenants_query of {qualified} failed: {first}") from error
    keys: list[str] = []
    problems: list[str] = []
    for value in values:
        try:
            key = str(canonical_tenant(value, tenant_key, table=qualified))
        except PartmanError as error:
            problems.append(str(error))
            continue
        if key not in keys:
            keys.append(key)
    if problems:
        raise TenantError(
            f"tenants_query of {qualified}: {len(problems)} id(s) cannot be tenants: "
            + "; ".join(problems[:3])
        )
    return keys
