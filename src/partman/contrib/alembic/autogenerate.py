"""Alembic autogenerate for tables declared with `partitioned()`.

Two jobs, both run after Alembic has compared the tables:

* a declared table that partman does not manage yet (or manages with another policy, or
  without a declared tenant) gets an `op.manage_table(...)`, rendered with the policy written
  out, so the migration stays what it was when it was generated;
* the partitions partman makes (and partman's own metadata tables) are not in anybody's
  models, so Alembic would propose `op.drop_table` for each of them as soon as it looks at
  their schema; those proposals are removed. Partitions are read from the catalog as children
  of the declared and the registered parents, never guessed from their names.

`context.configure(partman_metadata_schema=...)` names partman's metadata schema when it is not
the default `partman_meta`.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import Table as SATable

from partman.model import snapshot

from ...db.reads import read_registered
from ...engine.registration import DEFAULT_METADATA_SCHEMA, read_parents
from ...model.config import FOREVER, RetentionAction, Tenant, table_retention
from ...model.intervals import Retention
from ...model.keys import IdInterval, IdRetention
from ..sqlalchemy import PartitionPolicy, policy_of
from .ops import ManageTableOp, UnmanageTableOp

log = logging.getLogger(__name__)


@comparators.dispatch_for("schema", priority=DispatchPriority.LAST)
def compare_partitioned_tables(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: set[str | None]
) -> PriorityDispatchResult:
    connection = autogen_context.connection
    if connection is None:
        return PriorityDispatchResult.CONTINUE
    dbapi = connection.connection.dbapi_connection
    if not isinstance(dbapi, psycopg.Connection):
        log.warning("partman: autogenerate needs the psycopg (3) driver; partman ops skipped")
        return PriorityDispatchResult.CONTINUE
    meta = autogen_context.opts.get("partman_metadata_schema", DEFAULT_METADATA_SCHEMA)
    default_schema = connection.dialect.default_schema_name or "public"
    state = read_registered(dbapi, meta)
    registered = {(t.schema, t.name): t for t in state.tables}
    declared: list[tuple[SATable, PartitionPolicy, str]] = []
    for sa_table in autogen_context.sorted_tables:
        policy = policy_of(sa_table)
        # every declared table, as Alembic compares every table of the metadata, whichever
        # schemas it scans: the registration is compared with partman's metadata
        if policy is not None and autogen_context.run_object_filters(
            sa_table, sa_table.name, "table", False, None
        ):
            declared.append((sa_table, policy, sa_table.schema or default_schema))
    for sa_table, policy, schema in declared:
        old = registered.get((schema, sa_table.name))
        tenants = state.tenants.get(old.id, ()) if old is not None else ()
        operation = _manage_op(sa_table, policy, meta, old, tenants)
        if operation is not None:
            upgrade_ops.ops.append(operation)
    parents = sorted({(s, t.name) for t, _, s in declared} | set(registered))
    hidden = {
        (p.schema, p.name)
        for parent in read_parents(dbapi, parents).values()
        for p in parent.partitions
    }
    upgrade_ops.ops = [op for op in upgrade_ops.ops if not _about(op, hidden, meta, default_schema)]
    return PriorityDispatchResult.CONTINUE


def _about(
    op: ops.MigrateOperation, hidden: set[tuple[str, str]], meta: str, default_schema: str
) -> bool:
    """Whether `op` drops (a table, or an index of one) what no model declares: a partition of
    a partitioned parent, or a table of partman's metadata."""
    if not isinstance(op, ops.DropTableOp | ops.ModifyTableOps):
        return False
    schema = op.schema or default_schema
    return schema == meta or (schema, op.table_name) in hidden


def _manage_op(
    sa_table: SATable,
    policy: PartitionPolicy,
    meta: str,
    old: snapshot.TableRecord | None,
    tenants: tuple[snapshot.TenantRecord, ...],
) -> ManageTableOp | None:
    """The op that makes the registration what the model declares, or None if it is."""
    if old is None:
        return ManageTableOp(sa_table.name, policy, schema=sa_table.schema, metadata_schema=meta)
    desired = snapshot.TableRecord.from_table(policy.table(old.name, old.schema), old.id)
    registered = {t.tenant_id: t for t in tenants}
    missing_tenants = [
        t
        for t in policy.tenant_list
        if _tenant_fields(registered.get(str(t.tenant_id))) != _tenant_fields(_tenant_record(t))
    ]
    if _fields(old) == _fields(desired) and not missing_tenants:
        return None
    previous = _policy_of_record(old, [registered[k] for k in registered if _declared(k, policy)])
    return ManageTableOp(
        sa_table.name, policy, schema=sa_table.schema, metadata_schema=meta, previous=previous
    )


def _fields(r: snapshot.TableRecord) -> tuple[Any, ...]:
    return (
        r.tenant_column,
        r.time_column,
        str(r.interval),
        snapshot.retention_text(r.retention),
        r.partition_count,
        r.backfill,
        r.default_partition,
        r.retention_action,
        r.archive_schema,
        r.export_location,
        r.storage_parameters,
        r.epoch,
        r.retention_column,
        r.sub_partition_by,
        r.sub_partition_modulus,
        r.tenant_partitioning,
    )


def _tenant_record(t: Tenant) -> snapshot.TenantRecord:
    retention = FOREVER if t.keeps_forever else snapshot.retention_text(t.retention)
    action = None if t.action is None else t.action.value
    return snapshot.TenantRecord(0, str(t.tenant_id), retention, t.partition_count, action)


def _tenant_fields(r: snapshot.TenantRecord | None) -> tuple[Any, ...] | None:
    return None if r is None else (r.retention, r.partition_count, r.retention_action)


def _declared(tenant_id: str, policy: PartitionPolicy) -> bool:
    return any(str(t.tenant_id) == tenant_id for t in policy.tenant_list)


def _policy_of_record(
    r: snapshot.TableRecord, tenants: list[snapshot.TenantRecord]
) -> PartitionPolicy:
    """The policy a table is registered with, as a declaration (for a downgrade)."""
    return PartitionPolicy(
        by=r.time_column,
        tenant=r.tenant_column,
        interval=r.interval.width if isinstance(r.interval, IdInterval) else str(r.interval),
        premake=r.partition_count,
        retention=_retention_arg(r.retention),
        retention_action=r.retention_action,
        archive_schema=r.archive_schema,
        export_location=r.export_location,
        default_partition=r.default_partition,
        storage_parameters=dict(r.storage_parameters),
        backfill=r.backfill,
        epoch=r.epoch,
        retention_column=r.retention_column,
        sub_partition_by=r.sub_partition_by,
        sub_partition_modulus=r.sub_partition_modulus,
        tenant_partitioning=r.tenant_partitioning,
        tenants=tuple(
            Tenant(
                tenant_id=t.tenant_id,
                retention_period=_stored_retention(t.retention),
                partition_count=t.partition_count,
                retention_action=t.retention_action,
            )
            for t in tenants
        ),
    )


def _retention_arg(retention: Retention | IdRetention | None) -> str | int | None:
    """A retention as a declaration writes it: a period's text, or a distance in ids."""
    if isinstance(retention, IdRetention):
        return retention.distance
    return None if retention is None else str(retention)


def _stored_retention(text: str | None) -> str | int | None:
    """A tenant's retention as the metadata stores it ("forever", a period, an id distance's
    digits), as a declaration writes it."""
    if text is None or text == FOREVER:
        return text
    return _retention_arg(table_retention(text))


# -- rendering -------------------------------------------------------------------------------


@renderers.dispatch_for(ManageTableOp)
def render_manage_table(autogen_context: AutogenContext, op: ManageTableOp) -> str:
    args = [repr(op.table_name), *_schema_args(op.schema, op.metadata_schema)]
    args += _policy_args(autogen_context, op.policy)
    return f"{_prefix(autogen_context)}manage_table({', '.join(args)})"


@renderers.dispatch_for(UnmanageTableOp)
def render_unmanage_table(autogen_context: AutogenContext, op: UnmanageTableOp) -> str:
    args = [repr(op.table_name), *_schema_args(op.schema, op.metadata_schema)]
    return f"{_prefix(autogen_context)}unmanage_table({', '.join(args)})"


def _prefix(autogen_context: AutogenContext) -> str:
    prefix = autogen_context.opts.get("alembic_module_prefix") or "op."
    return str(prefix)


def _schema_args(schema: str | None, meta: str) -> list[str]:
    out = [] if schema is None else [f"schema={schema!r}"]
    if meta != DEFAULT_METADATA_SCHEMA:
        out.append(f"metadata_schema={meta!r}")
    return out


def _policy_args(autogen_context: AutogenContext, p: PartitionPolicy) -> list[str]:
    """Keyword arguments of op.manage_table. The key, interval, premake and retention are
    always written out (a migration must mean the same when partman's defaults change); the
    rest only when set. Periods in partman's spelling, the one its metadata stores."""
    table = p.table("t")
    interval = table.interval
    always: list[tuple[str, object]] = [
        ("by", p.by),
        ("tenant", p.tenant),
        ("interval", interval.width if isinstance(interval, IdInterval) else str(interval)),
        ("premake", p.premake),
        ("retention", _retention_arg(table.retention)),
    ]
    optional: list[tuple[str, object, object]] = [
        ("retention_action", RetentionAction(p.retention_action).value, "drop"),
        ("archive_schema", p.archive_schema, None),
        ("export_location", p.export_location, None),
        ("default_partition", p.default_partition, False),
        ("backfill", p.backfill, False),
        ("storage_parameters", dict(p.storage_parameters), {}),
        ("epoch", None if table.epoch is None else table.epoch_unit.value, None),
        ("retention_column", p.retention_column, None),
        ("sub_partition_by", p.sub_partition_by, None),
        ("sub_partition_modulus", p.sub_partition_modulus, None),
        ("tenant_partitioning", "list" if table.list_tenants else "range", "range"),
        ("tenants", _tenants_arg(autogen_context, p), None),
        ("tenants_query", p.tenants_query, None),
    ]
    shown = [(n, v) for n, v in always if not (n == "tenant" and v is None)]
    shown += [(n, v) for n, v, default in optional if v != default]
    return [f"{name}={_literal(value)}" for name, value in shown]


def _tenants_arg(autogen_context: AutogenContext, p: PartitionPolicy) -> _Code | None:
    if not p.tenants:
        return None
    items = []
    for t in p.tenants:
        if not isinstance(t, Tenant):
            items.append(repr(t if isinstance(t, str | int) else str(t)))
            continue
        autogen_context.imports.add("from partman import Tenant")
        tenant_id = t.tenant_id if isinstance(t.tenant_id, str | int) else str(t.tenant_id)
        fields = [f"tenant_id={tenant_id!r}"]
        if t.retention_period is not None:
            shown = FOREVER if t.keeps_forever else _retention_arg(t.retention)
            fields.append(f"retention_period={shown!r}")
        if t.partition_count is not None:
            fields.append(f"partition_count={t.partition_count!r}")
        if t.action is not None:
            fields.append(f"retention_action={t.action.value!r}")
        items.append(f"Tenant({', '.join(fields)})")
    return _Code(f"[{', '.join(items)}]")


class _Code(str):
    """Python source to render as is."""


def _literal(value: object) -> str:
    return str(value) if isinstance(value, _Code) else repr(value)
