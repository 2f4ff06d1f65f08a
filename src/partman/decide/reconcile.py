"""What a config sync resolves to: the changes it would make, the tables it resolved, and how
they are worded. Pure: `sync_async.py` (and the `sync.py` generated from it) reads the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ..errors import KeyMismatchError, NotPartitionedError, PartmanError, TableNotFoundError
from ..model import snapshot
from ..model.columns import KeyColumn
from ..model.config import FOREVER, Table, Tenant
from ..model.keys import IdInterval
from ..model.operations import Plan
from ..model.snapshot import Catalog
from ..settings import Path_, Problem, Settings, TableSpec
from . import planner

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
    record: snapshot.TableRecord  # as it will be stored
    tenant_key: KeyColumn | None
    declared: dict[str, Tenant] = field(default_factory=dict)  # canonical id -> as the file says
    queried: list[str] = field(default_factory=list)  # canonical ids from tenants_query
    registered: dict[str, snapshot.TenantRecord] = field(default_factory=dict)

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
    state: snapshot.State
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

    def future_state(self) -> snapshot.State:
        tables = {(t.schema, t.name): t for t in self.state.tables}
        tenants = {k: list(v) for k, v in self.state.tenants.items()}
        for r in self.tables:
            tables[(r.record.schema, r.record.name)] = r.record
            mine = {t.tenant_id: t for t in tenants.get(r.record.id, [])}
            for t in r.tenants_to_write():
                mine[str(t.tenant_id)] = _record(r.record.id, t)
            tenants[r.record.id] = sorted(mine.values(), key=lambda t: t.tenant_id)
        return snapshot.State(
            tables=tuple(tables.values()),
            tenants={k: tuple(v) for k, v in tenants.items()},
            owned=self.state.owned,
        )


def _record(table_id: int, t: Tenant) -> snapshot.TenantRecord:
    """A Tenant as `Manager.register_tenants` stores it."""
    retention = FOREVER if t.keeps_forever else snapshot.retention_text(t.retention)
    action = None if t.action is None else t.action.value
    return snapshot.TenantRecord(table_id, str(t.tenant_id), retention, t.partition_count, action)


def _policy(r: snapshot.TenantRecord | None) -> tuple[str | None, int | None, str | None]:
    return (None, None, None) if r is None else (r.retention, r.partition_count, r.retention_action)


def _differs(old: snapshot.TenantRecord | None, new: Tenant) -> bool:
    return old is None or _policy(old) != _policy(_record(old.table_id, new))


def _describe_tenant(r: snapshot.TenantRecord | None) -> str:
    if r is None:
        return "-"
    retention, count, action = _policy(r)
    parts = [
        f"retention {retention}" if retention else "",
        f"partition_count {count}" if count is not None else "",
        f"retention_action {action}" if action else "",
    ]
    return ", ".join(p for p in parts if p) or "the table's policy"


def _describe_table(r: snapshot.TableRecord) -> str:
    """The table's shape and policy in words; what a plain time table does not have (ids, an
    epoch column, HASH leaves, LIST tenants) is said only when it is there."""
    retention = "forever" if r.retention is None else f"{r.retention}"
    if r.retention_column is not None:
        retention += f" by {r.retention_column}"
    size = f"{r.interval}-id" if r.by_id else f"{r.interval}"
    epoch = f" ({r.time_column} in epoch {r.epoch})" if r.epoch is not None else ""
    text = (
        f"{size} partitions{epoch}, {r.partition_count} ahead, retention {retention}, "
        f"retention_action {r.retention_action}"
    )
    if r.archive_schema:
        text += f" to {r.archive_schema}"
    if r.export_location:
        text += f" to {r.export_location}"
    if r.default_partition:
        text += ", default partition"
    if r.backfill:
        text += ", backfill"
    if r.storage_parameters:
        text += f", partitions WITH ({_parameters(r)})"
    if r.sub_partition_by is not None:
        text += f", each HASH ({r.sub_partition_by}) into {r.sub_partition_modulus}"
    if r.list_tenants:
        text += f", LIST ({r.tenant_column}) -> RANGE ({r.time_column})"
    if r.rollup_interval is not None:
        text += f", rolled up into {r.rollup_interval} partitions after {r.rollup_after}"
    return text


def _parameters(r: snapshot.TableRecord) -> str:
    return ", ".join(r.options) or "none"


_POLICY_FIELDS = (
    "retention",
    "partition_count",
    "backfill",
    "default_partition",
    "retention_action",
    "archive_schema",
    "export_location",
    "storage_parameters",
    "retention_column",
    "sub_partition_by",
    "sub_partition_modulus",
    "rollup_after",
    "rollup_interval",
)
"""What a registered table may change (the key, its interval, epoch and tenant_partitioning
may not: existing partitions would no longer line up)."""


def _table_diff(old: snapshot.TableRecord, new: snapshot.TableRecord) -> list[str]:
    out = []
    for name in _POLICY_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if name == "storage_parameters":
            a, b = _parameters(old), _parameters(new)
        if str(a) != str(b):
            shown = {"None": "forever" if name == "retention" else "none"}
            out.append(f"{name} {shown.get(str(a), a)} -> {shown.get(str(b), b)}")
    return out


def desired_record(table: Table, table_id: int) -> snapshot.TableRecord:
    return snapshot.TableRecord.from_table(table, table_id)


def key_of(spec: TableSpec, error: PartmanError) -> Path_:
    """The key of the file a catalog error is about."""
    message = str(error)
    table = spec.table
    if isinstance(error, KeyMismatchError | NotPartitionedError):
        for name in ("sub_partition_by", "retention_column", "tenant_partitioning", "epoch"):
            if name in message:
                return (*spec.path, name)
        if "integer partition_interval" in message or "number of ids" in message:
            return (*spec.path, "partition_interval")
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


def changes(r: Resolved, old: snapshot.TableRecord | None) -> list[Change]:
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


def toml_value(value: object) -> str:
    """`value` as partman.toml writes it: an integer (ids per window) bare, anything else as
    a quoted string."""
    if isinstance(value, IdInterval):
        value = value.width
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
