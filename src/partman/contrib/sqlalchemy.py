"""Declare a partitioned parent and its partman policy next to the SQLAlchemy model.

    from partman.contrib.sqlalchemy import partitioned

    class Event(Base):
        __tablename__ = "events"
        __table_args__ = (
            PrimaryKeyConstraint("id", "created_at", "project_id"),
            partitioned(by="created_at", tenant="project_id", interval="1 day", premake=10,
                        retention="30 days", schema="convoy"),
        )

`partitioned()` returns the table keywords that make SQLAlchemy (and Alembic's autogenerate)
emit `PARTITION BY RANGE (project_id, created_at)`, and attaches the policy to the Table, where
`declared_tables(metadata)` finds it for a `Manager` and `partman.contrib.alembic` finds it for
migrations (not in `Table.info`: Alembic copies `info` into the migrations it generates).

Why next to the model: the key columns, the primary key (PostgreSQL wants every key column in
it) and the policy are checked where they are written, when the module is imported, with
partman's own parsing, so `interval="1 dya"` is a PartmanError naming the model rather than a
failed deploy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import uuid
import weakref
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, MetaData, UniqueConstraint
from sqlalchemy import Table as SATable
from sqlalchemy.dialects import postgresql

from ..errors import ConfigError, PartmanError
from ..model.config import RetentionAction, Table, Tenant, TenantId, TenantPartitioning
from ..model.intervals import Interval
from ..model.keys import Epoch, IdInterval

__all__ = [
    "DeclaredTable",
    "PartitionPolicy",
    "declare",
    "declared_tables",
    "partitioned",
    "partman_tables",
    "policy_of",
]

_PREPARER = postgresql.dialect().identifier_preparer  # type: ignore[no-untyped-call]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PartitionPolicy:
    """A parent's partition key and partman policy, without the table's name.

    The names follow pg_partman's vocabulary; each maps to a field of `partman.Table`:
    `by` partition_by, `tenant` tenant_id_column, `interval` partition_interval, `premake`
    partition_count, `retention` retention_period. Validated on construction by building
    that Table, so every value is checked by the parser the engine uses.
    """

    by: str
    tenant: str | None = None
    interval: str | dt.timedelta | Interval | int = "1 day"
    """A period of time, or an int: ids per partition (an integer id column)."""
    premake: int = 10
    retention: str | dt.timedelta | Interval | int | None = None
    """A period of time, or an int: a distance in ids (id tables)."""
    retention_action: RetentionAction | str = RetentionAction.DROP
    archive_schema: str | None = None
    export_location: str | None = None
    default_partition: bool = False
    backfill: bool = False
    storage_parameters: Mapping[str, int | float | bool] = dataclasses.field(
        default_factory=dict, hash=False
    )
    """Each new partition's `WITH (...)`, e.g. {"fillfactor": 90} (`Table.storage_parameters`)."""
    epoch: Epoch | str | None = None
    """`by` is an integer holding time since 1970 in this unit ("seconds", "milliseconds",
    "microseconds", "nanoseconds"): `Table.epoch`."""
    retention_column: str | None = None
    """Id tables: the time column whose age retention goes by (`Table.retention_column`)."""
    sub_partition_by: str | None = None
    """Each period is itself PARTITION BY HASH (this column) (`Table.sub_partition_by`)."""
    sub_partition_modulus: int | None = None
    """How many HASH partitions each period has (`Table.sub_partition_modulus`)."""
    tenant_partitioning: TenantPartitioning | str = TenantPartitioning.RANGE
    """"range": PARTITION BY RANGE (tenant, by); "list": PARTITION BY LIST (tenant), each
    tenant's partition RANGE (by) (`Table.tenant_partitioning`)."""
    tenants: tuple[TenantId | Tenant, ...] = ()
    """Tenants registered with the table; plain ids take the table's policy."""
    tenants_query: str | None = None
    """SQL returning one column of tenant ids, run when the table is registered (e.g. by the
    migration): ids not registered yet are added with the table's policy."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenants", tuple(self.tenants))
        for item in self.tenants:
            if not isinstance(item, Tenant):
                Tenant(tenant_id=item)  # the id's type, checked as partman checks it
        if self.tenants and self.tenant is None:
            raise ConfigError("tenants were given but no tenant column (tenant=...)")
        if self.tenants_query is not None and (
            not isinstance(self.tenants_query, str) or not self.tenants_query.strip()
        ):
            raise ConfigError(f"tenants_query must be SQL text, got {self.tenants_query!r}")
        self.table("t")  # everything partman.Table checks without a database

    def table(self, name: str, schema: str = "public") -> Table:
        """This policy as the `partman.Table` of the parent `schema.name`."""
        return Table(
            name=name,
            schema=schema,
            tenant_id_column=self.tenant,
            partition_by=self.by,
            partition_interval=self.interval,
            partition_count=self.premake,
            retention_period=self.retention,
            retention_action=self.retention_action,
            archive_schema=self.archive_schema,
            export_location=self.export_location,
            default_partition=self.default_partition,
            backfill=self.backfill,
            storage_parameters=self.storage_parameters,
            epoch=self.epoch,
            retention_column=self.retention_column,
            sub_partition_by=self.sub_partition_by,
            sub_partition_modulus=self.sub_partition_modulus,
            tenant_partitioning=self.tenant_partitioning,
        )

    @property
    def list_tenants(self) -> bool:
        return self.table("t").list_tenants

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The parent's partition key: (tenant, by), (by), or under LIST tenants (tenant)."""
        if self.tenant is not None and self.list_tenants:
            return (self.tenant,)
        return (self.by,) if self.tenant is None else (self.tenant, self.by)

    @property
    def unique_columns(self) -> tuple[str, ...]:
        """Every column a level of the tree is partitioned by: each primary key and unique
        constraint must hold them all (the tenant, the range column, the HASH column)."""
        found = (self.tenant, self.by, self.sub_partition_by)
        return tuple(c for c in found if c is not None)

    @property
    def partition_by_sql(self) -> str:
        """The `postgresql_partition_by` value: `RANGE (tenant, time)`, or `LIST (tenant)`,
        identifiers quoted (the levels below are partman's to make)."""
        strategy = "LIST" if self.tenant is not None and self.list_tenants else "RANGE"
        return f"{strategy} ({', '.join(_PREPARER.quote(c) for c in self.key_columns)})"

    @property
    def tenant_list(self) -> tuple[Tenant, ...]:
        return tuple(t if isinstance(t, Tenant) else Tenant(tenant_id=t) for t in self.tenants)


@dataclasses.dataclass(frozen=True)
class DeclaredTable:
    """A table declared with `partitioned()`: what a Manager registers, and where it came from."""

    table: Table
    """The partman Table (tenant_id None: the table-wide policy)."""
    policy: PartitionPolicy
    sa_table: SATable
    model: str | None
    """The declarative class the declaration was written in, when there was one."""

    @property
    def tenants(self) -> tuple[Tenant, ...]:
        return self.policy.tenant_list


def partitioned(
    *,
    by: str,
    tenant: str | None = None,
    interval: str | dt.timedelta | Interval | int = "1 day",
    premake: int = 10,
    retention: str | dt.timedelta | Interval | int | None = None,
    retention_action: RetentionAction | str = RetentionAction.DROP,
    archive_schema: str | None = None,
    export_location: str | None = None,
    default_partition: bool = False,
    backfill: bool = False,
    storage_parameters: Mapping[str, int | float | bool] | None = None,
    epoch: Epoch | str | None = None,
    retention_column: str | None = None,
    sub_partition_by: str | None = None,
    sub_partition_modulus: int | None = None,
    tenant_partitioning: TenantPartitioning | str = TenantPartitioning.RANGE,
    tenants: Iterable[TenantId | Tenant] = (),
    tenants_query: str | None = None,
    **table_kwargs: Any,
) -> dict[str, Any]:
    """Table keywords for a parent partitioned `BY RANGE ([tenant,] by)` (or `BY LIST
    (tenant)` with tenant_partitioning="list") and managed by partman.

    `by` is a time column (DateTime, Date), a UUIDv7 (Uuid), an epoch integer (with
    `epoch="milliseconds"`...) or an integer id (with an int `interval`: ids per partition,
    and an int `retention`: a distance in ids, or a period with `retention_column`).
    `sub_partition_by`/`sub_partition_modulus` make each period PARTITION BY HASH.

    Use it as `__table_args__` (or as the last item of a `__table_args__` tuple), or as
    `Table(..., **partitioned(...))`. Other Table keywords (`schema`, `comment`, ...) may be
    passed along. Raises a PartmanError naming the model when the policy is invalid, and again
    when the table is built if its columns or primary key cannot carry the key.
    """
    model = _declaring_class()
    try:
        policy = PartitionPolicy(
            by=by,
            tenant=tenant,
            interval=interval,
            premake=premake,
            retention=retention,
            retention_action=retention_action,
            archive_schema=archive_schema,
            export_location=export_location,
            default_partition=default_partition,
            backfill=backfill,
            storage_parameters=storage_parameters or {},
            epoch=epoch,
            retention_column=retention_column,
            sub_partition_by=sub_partition_by,
            sub_partition_modulus=sub_partition_modulus,
            tenant_partitioning=tenant_partitioning,
            tenants=tuple(tenants),
            tenants_query=tenants_query,
        )
    except PartmanError as error:
        raise _named(error, model, table_kwargs.get("schema"), None) from None

    def attach(table: SATable, _metadata: object) -> None:
        declare(table, policy, model=model)

    listeners = [*table_kwargs.pop("listeners", []), ("after_parent_attach", attach)]
    return {
        **table_kwargs,
        "postgresql_partition_by": policy.partition_by_sql,
        "listeners": listeners,
    }


_DECLARED: weakref.WeakKeyDictionary[SATable, tuple[PartitionPolicy, str | None]] = (
    weakref.WeakKeyDictionary()
)


def declare(table: SATable, policy: PartitionPolicy, *, model: str | None = None) -> None:
    """Attach `policy` to a Table, after checking that its columns and unique keys can carry
    the partition key (`partitioned()` does this when the Table is built)."""
    try:
        policy.table(table.name, table.schema or "public")  # name lengths, archive_schema
        _check_columns(table, policy)
        _check_unique_keys(table, policy)
    except PartmanError as error:
        raise _named(error, model, table.schema, table.name) from None
    _DECLARED[table] = (policy, model)


def policy_of(table: SATable) -> PartitionPolicy | None:
    """The policy declared on a SQLAlchemy Table, or None if it was not declared partitioned."""
    found = _DECLARED.get(table)
    return None if found is None else found[0]


def declared_tables(*metadata: MetaData) -> list[DeclaredTable]:
    """Every table of these MetaData declared with `partitioned()`, in dependency order.

    A table without a schema is taken to be in `public` (partman names tables by schema).
    """
    out = []
    for md in metadata:
        for sa_table in md.sorted_tables:
            policy = policy_of(sa_table)
            if policy is not None:
                out.append(
                    DeclaredTable(
                        table=policy.table(sa_table.name, sa_table.schema or "public"),
                        policy=policy,
                        sa_table=sa_table,
                        model=_DECLARED[sa_table][1],
                    )
                )
    return out


def partman_tables(*metadata: MetaData) -> list[Table]:
    """The partman Tables of every table declared with `partitioned()`: for a Manager,

    for table in partman_tables(Base.metadata):
        manager.add_managed_table(table)
    """
    return [d.table for d in declared_tables(*metadata)]


# -- checks when the Table is built ----------------------------------------------------------


def _check_columns(table: SATable, policy: PartitionPolicy) -> None:
    columns = {c.name: c for c in table.columns}
    for what, name in (
        ("tenant", policy.tenant),
        ("by", policy.by),
        ("sub_partition_by", policy.sub_partition_by),
        ("retention_column", policy.retention_column),
    ):
        if name is not None and name not in columns:
            raise ConfigError(
                f"{what}={name!r} is not a column of the table (columns: "
                f"{', '.join(columns)}); names are case-sensitive"
            )
    interval = policy.table("t").interval
    by = columns[policy.by]
    by_type = _python_type(by)
    if by_type is not None:
        if isinstance(interval, IdInterval):
            if not _is_integer(by_type):
                raise ConfigError(
                    f"column {policy.by!r} is {by.type}; an integer interval ({interval} ids "
                    "per partition) needs an Integer, BigInteger or Numeric id column; for "
                    "time write a period like '1 day'"
                )
        elif policy.epoch is not None:
            if not _is_integer(by_type) or by_type is Decimal:
                raise ConfigError(
                    f"column {policy.by!r} is {by.type}; epoch={policy.epoch!r} is for a "
                    "BigInteger column holding time since 1970; drop epoch for a DateTime"
                )
        elif _is_integer(by_type):
            raise ConfigError(
                f"column {policy.by!r} is {by.type}; for ids give interval as a number of ids "
                "(e.g. interval=1_000_000), or epoch='seconds' (or 'milliseconds', ...) if it "
                "holds time since 1970"
            )
        elif not issubclass(by_type, dt.date | uuid.UUID):
            raise ConfigError(
                f"column {policy.by!r} is {by.type}; partition_by needs a DateTime "
                "(timestamptz or timestamp), Date, Uuid (UUIDv7), an integer with epoch=..., "
                "or an integer id with an integer interval"
            )
    if by_type is dt.date and isinstance(interval, Interval) and interval.fixed:
        raise ConfigError(
            f"column {policy.by!r} is a Date, so it cannot be partitioned by {interval}; use "
            "'1 day' or longer"
        )
    if policy.retention_column is not None:
        age = columns[policy.retention_column]
        age_type = _python_type(age)
        if age_type is not None and not issubclass(age_type, dt.date):
            raise ConfigError(
                f"column {policy.retention_column!r} is {age.type}; retention_column needs a "
                "DateTime or Date column"
            )
    if policy.tenant is not None:
        tenant_type = _python_type(columns[policy.tenant])
        if tenant_type is not None and not issubclass(tenant_type, str | int | uuid.UUID):
            raise ConfigError(
                f"column {policy.tenant!r} is {columns[policy.tenant].type}; tenant columns "
                "must be text-like (String, Text), Integer or Uuid"
            )


def _check_unique_keys(table: SATable, policy: PartitionPolicy) -> None:
    """PostgreSQL refuses a primary key or unique constraint on a partitioned table that does
    not include every key column; say so now rather than at CREATE TABLE."""
    keys: list[tuple[str, str, list[str]]] = []
    if table.primary_key.columns:
        names = [c.name for c in table.primary_key.columns]
        keys.append(("primary key", "PrimaryKeyConstraint({})", names))
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            names = [c.name for c in constraint.columns]
            keys.append(("unique constraint", "UniqueConstraint({})", names))
    for index in table.indexes:
        if isinstance(index, Index) and index.unique:
            names = [c.name for c in index.columns]
            keys.append(("unique index", "Index(..., {}, unique=True)", names))
    for what, fix, names in keys:
        missing = [c for c in policy.unique_columns if c not in names]
        if missing:
            columns = ", ".join(repr(n) for n in [*names, *missing])
            raise ConfigError(
                f"its {what} ({', '.join(names)}) lacks the partition key column(s) "
                f"{', '.join(missing)}; PostgreSQL requires every key column in each primary "
                f"key and unique constraint of a partitioned table, e.g. {fix.format(columns)}"
            )


def _is_integer(kind: type) -> bool:
    return (issubclass(kind, int) and not issubclass(kind, bool)) or issubclass(kind, Decimal)


def _python_type(column: Column[Any]) -> type | None:
    try:
        found = column.type.python_type
    except NotImplementedError:  # a type that does not say: the catalog check will
        return None
    return found if isinstance(found, type) else None


# -- naming the model in errors --------------------------------------------------------------


def _declaring_class() -> str | None:
    """The class whose body calls `partitioned()`, for error messages.

    A class body's namespace holds `__qualname__` while it runs; when `partitioned()` is called
    there (the `__table_args__` line), its caller's frame is that body. Nothing else is read.
    """
    frame = sys._getframe(2)
    qualname = frame.f_locals.get("__qualname__")
    if not isinstance(qualname, str) or "__module__" not in frame.f_locals:
        return None
    return qualname.rpartition("<locals>.")[2]  # a class made in a function: its own name


def _named(
    error: PartmanError, model: str | None, schema: object, name: str | None
) -> PartmanError:
    table = None if name is None else (f"{schema}.{name}" if schema else name)
    if model is not None and table is not None:
        label = f"model {model} (table {table})"
    elif model is not None:
        label = f"model {model}"
    else:
        label = f"table {table}" if table is not None else "a table"
    return type(error)(f"partitioned() on {label}: {error}")
