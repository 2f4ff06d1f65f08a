"""What a pass reads, as values: the catalog's parents and partitions, and partman's own records
(managed tables, tenants and their policies, the partitions partman created or adopted).

The planner, adoption and coverage take these and nothing else from the database; `db/`
reads them (`db.catalog`, `db.metadata`) and the engine sends the reads.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple

from .bounds import RangeBound
from .columns import KeyColumn, TenantValue
from .config import FOREVER, Table, rollup_after, rollup_interval, table_retention
from .intervals import Interval, Retention
from .keys import Epoch, IdInterval, IdRetention
from .storage import Value, canonical, merged, options_of

OWNER_COMMENT = "managed by partman ({origin}); dropped only by its retention policy"
"""The second witness of ownership, on each partition partman created or adopted."""


class PartitionInfo(NamedTuple):
    """A child of a managed parent, as the catalog has it.

    A named tuple, not a dataclass: a pass makes one per partition (tens of thousands), and a
    tuple is built several times faster and is smaller.
    """

    oid: int
    schema: str
    name: str
    bound_text: str
    bound: RangeBound | None  # None: a bound shape partman does not read (left alone)
    comment: str | None
    estimated_rows: int | None  # None: never analyzed
    detach_pending: bool
    sub_strategy: str | None
    """Itself partitioned: its strategy ('h' hash, 'r' range, 'l' list); None for a table.
    partman plans with the HASH-partitioned periods it makes (`Table.sub_partition_by`) and
    the LIST shape's tenant partitions, and leaves any other partitioned partition alone."""

    @property
    def is_partitioned(self) -> bool:
        return self.sub_strategy is not None

    @property
    def is_default(self) -> bool:
        return self.bound is not None and self.bound.is_default

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


class Grant(NamedTuple):
    """One privilege of a table's ACL (`aclexplode`), its owner's own left out."""

    grantee: str | None  # None: PUBLIC
    privilege: str  # SELECT, INSERT, ... as aclexplode names it
    grantable: bool


REPLICA_IDENTITY = {"d": "default", "f": "full", "n": "nothing", "i": "using index"}
"""`pg_class.relreplident`, in words."""


@dataclass(frozen=True)
class Traits:
    """What a table declares that `CREATE TABLE (LIKE ...)` + `ATTACH` does not carry to a new
    partition by itself: partman carries it (`model.operations.create_statements`), and reports
    adopted partitions that differ. Read once per parent and pass, in the parent's catalog row.
    """

    owner: str = ""
    """The owning role's name."""
    owner_is_current: bool = True
    """Owned by the role partman runs as: a new partition is owned by it already."""
    replica_identity: str = "d"
    """`relreplident`: d(efault), f(ull), n(othing), i(ndex)."""
    identity_index: str | None = None
    """The index used as replica identity (when "i")."""
    grants: tuple[Grant, ...] = ()
    """Privileges granted on the table, sorted."""
    tablespace: str | None = None
    """None: the database's default."""
    options: tuple[str, ...] = ()
    """Storage parameters, as `reloptions` prints them ("fillfactor=70"). PostgreSQL refuses
    them on a partitioned table, so a parent's come from its table's `storage_parameters`
    (`with_options`)."""
    access_method: str | None = None
    """A partitioned table has one only when set explicitly (PostgreSQL 17 and later)."""

    def with_options(self, options: tuple[str, ...]) -> Traits:
        """These traits, with `options` (a table's storage parameters) over the parent's."""
        if not options:
            return self
        return dataclasses.replace(self, options=merged(self.options, options))

    def differences(self, other: Traits) -> list[str]:
        """How `other` (an adopted partition's) differs from these (its parent's), in words."""
        out = []
        if other.owner != self.owner:
            out.append(f"owner {other.owner} (the parent's: {self.owner})")
        if other.replica_identity != self.replica_identity:
            mine, theirs = (REPLICA_IDENTITY.get(t.replica_identity, "?") for t in (self, other))
            out.append(f"replica identity {theirs} (the parent's: {mine})")
        if set(other.grants) != set(self.grants):
            out.append(f"grants {_grants(other.grants)} (the parent's: {_grants(self.grants)})")
        if other.tablespace != self.tablespace:
            out.append(
                f"tablespace {other.tablespace or 'default'} "
                f"(the parent's: {self.tablespace or 'default'})"
            )
        if self.options and _meant(other.options) != _meant(self.options):
            out.append(
                f"storage parameters {', '.join(other.options) or 'none'} "
                f"(the table's storage_parameters: {', '.join(self.options)})"
            )
        if self.access_method is not None and other.access_method != self.access_method:
            out.append(f"access method {other.access_method} (the parent's: {self.access_method})")
        return out


def _meant(options: tuple[str, ...]) -> set[tuple[str, object]]:
    return {canonical(o) for o in options}


PLAIN = Traits()
"""A table that declares nothing a new partition must carry (owned by partman's role)."""


def _grants(grants: tuple[Grant, ...]) -> str:
    if not grants:
        return "none"
    by_grantee: dict[str, list[str]] = {}
    for g in grants:
        privilege = g.privilege + (" WITH GRANT OPTION" if g.grantable else "")
        by_grantee.setdefault(g.grantee or "PUBLIC", []).append(privilege)
    return "; ".join(f"{who}: {', '.join(p)}" for who, p in sorted(by_grantee.items()))


@dataclass(frozen=True)
class ParentInfo:
    """A table the user named, and what the catalog says it is."""

    oid: int
    schema: str
    name: str
    relkind: str  # 'p' partitioned, 'r' plain table, 'v' view, ...
    strategy: str | None  # 'r' range, 'l' list, 'h' hash; None when not partitioned
    key: tuple[KeyColumn, ...] | None  # None when a key part is an expression
    columns: dict[str, KeyColumn]  # every column of the table, by name
    partitions: tuple[PartitionInfo, ...]  # by name
    traits: Traits = PLAIN
    """What a new partition must carry from it (owner, grants, replica identity, ...)."""
    positions: dict[TenantValue | None, int] = dataclasses.field(
        default_factory=dict, compare=False
    )
    """An id table's newest id, per tenant (None: the table has none), read from its newest
    partitions after the catalog (`db.positions`); absent: no row yet."""
    newest_in_windows: dict[TenantValue | None, int] = dataclasses.field(
        default_factory=dict, compare=False
    )
    """The newest id in the table's own windows, not counting its default partition or a
    staging table: what retention by distance goes by, so that one stray id far ahead,
    waiting in the default, cannot expire every window below it."""

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @functools.cached_property
    def default_partition(self) -> PartitionInfo | None:
        return next((p for p in self.partitions if p.is_default), None)


Catalog = dict[tuple[str, str], ParentInfo]
"""Parents by (schema, name); a parent the user named that does not exist is absent."""


def owner_comment(origin: str) -> str:
    return OWNER_COMMENT.format(origin=origin)


def is_owner_comment(comment: str | None) -> bool:
    return comment is not None and comment.startswith("managed by partman (")


@dataclass(frozen=True)
class TableRecord:
    """A managed table as stored: the table-wide (default) policy."""

    id: int
    schema: str
    name: str
    tenant_column: str | None
    time_column: str
    """The partition_by column (time, epoch, UUIDv7 or id)."""
    interval: Interval | IdInterval
    retention: Retention | IdRetention | None
    partition_count: int
    backfill: bool
    default_partition: bool = False
    retention_action: str = "drop"
    archive_schema: str | None = None
    storage_parameters: tuple[tuple[str, Value], ...] = ()
    """Given to each new partition (`Table.storage_parameters`), by name."""
    epoch: str | None = None
    """`Table.epoch`: the unit of an integer time column."""
    retention_column: str | None = None
    """`Table.retention_column`: the time column an id table's retention checks."""
    sub_partition_by: str | None = None
    """`Table.sub_partition_by`: each period is PARTITION BY HASH (this column)."""
    sub_partition_modulus: int | None = None
    tenant_partitioning: str = "range"
    """"range": RANGE (tenant, time); "list": LIST (tenant), each RANGE (time)."""
    export_location: str | None = None
    """`Table.export_location`: where retention_action "export" writes Parquet files."""
    rollup_after: Retention | None = None
    """`Table.rollup_after`: coarse periods wholly older than now minus this are rolled up."""
    rollup_interval: Interval | None = None
    """`Table.rollup_interval`: the coarse period fine partitions are merged into."""

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def by_id(self) -> bool:
        """Windows of ids rather than periods of time."""
        return isinstance(self.interval, IdInterval)

    @property
    def epoch_unit(self) -> Epoch | None:
        return None if self.epoch is None else Epoch(self.epoch)

    @property
    def list_tenants(self) -> bool:
        return self.tenant_partitioning == "list"

    @property
    def options(self) -> tuple[str, ...]:
        """The storage parameters as `reloptions` prints them ("fillfactor=90")."""
        return options_of(dict(self.storage_parameters))

    @classmethod
    def from_table(cls, table: Table, table_id: int = 0) -> TableRecord:
        """The record a Table (with a name) is stored as."""
        assert table.name is not None
        return cls(
            id=table_id,
            schema=table.schema,
            name=table.name,
            tenant_column=table.tenant_id_column,
            time_column=table.partition_by,
            interval=table.interval,
            retention=table.retention,
            partition_count=table.partition_count,
            backfill=table.backfill,
            default_partition=table.default_partition,
            retention_action=table.action.value,
            archive_schema=table.archive_schema,
            storage_parameters=tuple(sorted(table.storage_parameters.items())),
            epoch=None if table.epoch is None else table.epoch_unit.value,
            retention_column=table.retention_column,
            sub_partition_by=table.sub_partition_by,
            sub_partition_modulus=table.sub_partition_modulus,
            tenant_partitioning="list" if table.list_tenants else "range",
            export_location=table.export_location,
            rollup_after=rollup_after(table),
            rollup_interval=rollup_interval(table),
        )


@dataclass(frozen=True)
class TenantRecord:
    """A tenant of a managed table; None policy fields inherit the table's."""

    table_id: int
    tenant_id: str
    retention: str | None  # None: inherit; 'forever'; or an interval text
    partition_count: int | None

    def effective_retention(self, table: TableRecord) -> Retention | IdRetention | None:
        if self.retention is None:
            return table.retention
        if self.retention == FOREVER:
            return None
        return table_retention(self.retention)

    retention_action: str | None = None  # None: inherit

    def effective_count(self, table: TableRecord) -> int:
        return table.partition_count if self.partition_count is None else self.partition_count

    def effective_action(self, table: TableRecord) -> str:
        return self.retention_action or table.retention_action


class OwnedPartition(NamedTuple):
    """A partition partman created or adopted: the first witness of ownership.

    A named tuple, not a dataclass: a pass reads one per partition (tens of thousands), and a
    tuple is built several times faster and is smaller.
    """

    schema: str
    name: str
    parent_schema: str
    parent_name: str
    tenant_id: str | None
    origin: str
    state: str = "attached"
    action: str | None = None  # what retention does once detached: drop/detach/archive/export
    lower: str = ""
    upper: str = ""
    exists: bool = True  # the table is still there
    attached: bool = True  # ... and still a partition of its parent


@dataclass(frozen=True)
class State:
    tables: tuple[TableRecord, ...]
    tenants: dict[int, tuple[TenantRecord, ...]]
    owned: dict[tuple[str, str], OwnedPartition]

    @functools.cached_property
    def owned_by_parent(self) -> dict[tuple[str, str], list[OwnedPartition]]:
        """The owned partitions of each parent (schema, name), as recorded: grouped once."""
        out: dict[tuple[str, str], list[OwnedPartition]] = {}
        for o in self.owned.values():
            key = (o.parent_schema, o.parent_name)
            mine = out.get(key)
            if mine is None:
                mine = out[key] = []
            mine.append(o)
        return out


def retention_text(retention: Retention | IdRetention | None) -> str | None:
    """How the metadata stores a retention: its text, digits alone for ids."""
    if isinstance(retention, IdRetention):
        return str(retention.distance)
    return None if retention is None else str(retention)
