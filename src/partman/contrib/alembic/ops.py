"""`op.manage_table`, `op.unmanage_table`, `op.create_partitioned_table`: registration with
partman as a step of an Alembic migration.

Why in the migration: the migration that creates (or changes) a partitioned parent is the one
that knows it must be managed, and it runs in one transaction. The registration runs on that
transaction's connection (`op.get_bind()`) through `partman.engine.registration`, so it commits with
the migration, or rolls back with it when a later step fails: never a registered table that
does not exist, never a table that exists but nobody keeps partitioned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from alembic.operations import MigrateOperation, Operations
from sqlalchemy import Table as SATable
from sqlalchemy.schema import SchemaItem

from ...engine.registration import DEFAULT_METADATA_SCHEMA, register, unregister
from ...errors import PartmanError
from ...model.config import RetentionAction, Tenant, TenantId, TenantPartitioning
from ...model.intervals import Interval
from ...model.keys import Epoch
from ..sqlalchemy import PartitionPolicy


@Operations.register_operation("manage_table")
class ManageTableOp(MigrateOperation):
    """Register a partitioned parent with partman (or update its policy and tenants)."""

    def __init__(
        self,
        table_name: str,
        policy: PartitionPolicy,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        previous: PartitionPolicy | None = None,
    ) -> None:
        self.table_name = table_name
        self.policy = policy
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.previous = previous
        """The policy registered before (autogenerate fills it in), for the downgrade."""

    @classmethod
    def manage_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        by: str,
        schema: str | None = None,
        tenant: str | None = None,
        interval: str | dt.timedelta | Interval | int = "1 day",
        premake: int = 10,
        retention: str | dt.timedelta | Interval | int | None = None,
        retention_action: RetentionAction | str = "drop",
        archive_schema: str | None = None,
        export_location: str | None = None,
        default_partition: bool = False,
        backfill: bool = False,
        storage_parameters: Mapping[str, int | float | bool] | None = None,
        epoch: Epoch | str | None = None,
        retention_column: str | None = None,
        sub_partition_by: str | None = None,
        sub_partition_modulus: int | None = None,
        tenant_partitioning: TenantPartitioning | str = "range",
        tenants: Iterable[TenantId | Tenant] = (),
        tenants_query: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """Register the partitioned table `schema.table_name` with partman, in this migration's
        transaction. Checks it against the catalog first (it must be partitioned BY RANGE
        ([tenant,] by), or BY LIST (tenant) with tenant_partitioning="list"); `tenants` are
        registered with it, and so are the ids `tenants_query` returns. The shape keywords are
        `partman.Table`'s: an int `interval` (ids per partition) and `retention` (a distance
        in ids), `epoch`, `retention_column`, `sub_partition_by`/`sub_partition_modulus`,
        `tenant_partitioning`. Idempotent: on a managed table it updates the policy (the key
        columns, the interval, epoch and tenant_partitioning cannot change). Partitions are
        made by the next maintenance pass."""
        policy = _policy(
            table_name,
            schema,
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
        operations.invoke(cls(table_name, policy, schema=schema, metadata_schema=metadata_schema))

    def reverse(self) -> MigrateOperation:
        if self.previous is not None:
            return ManageTableOp(
                self.table_name,
                self.previous,
                schema=self.schema,
                metadata_schema=self.metadata_schema,
                previous=self.policy,
            )
        return UnmanageTableOp(
            self.table_name,
            schema=self.schema,
            metadata_schema=self.metadata_schema,
            policy=self.policy,
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("manage_table", self.schema, self.table_name, self.policy)


@Operations.register_operation("unmanage_table")
class UnmanageTableOp(MigrateOperation):
    """Stop managing a table with partman. Never drops anything."""

    def __init__(
        self,
        table_name: str,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        policy: PartitionPolicy | None = None,
    ) -> None:
        self.table_name = table_name
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.policy = policy
        """The policy it was managed with, when known (to reverse this operation)."""

    @classmethod
    def unmanage_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """Stop managing `schema.table_name` (and all its tenants), in this migration's
        transaction. Partitions and rows stay where they are and stay recorded as partman's,
        so managing the table again resumes where it left off. A table that is not managed is
        left as it is."""
        operations.invoke(cls(table_name, schema=schema, metadata_schema=metadata_schema))

    def reverse(self) -> MigrateOperation:
        if self.policy is None:
            raise NotImplementedError(
                f"unmanage_table({self.table_name!r}) does not know the policy to manage the "
                "table with again; write the op.manage_table(...) by hand"
            )
        return ManageTableOp(
            self.table_name, self.policy, schema=self.schema, metadata_schema=self.metadata_schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("unmanage_table", self.schema, self.table_name)


@Operations.register_operation("create_partitioned_table")
class CreatePartitionedTableOp(MigrateOperation):
    """Create a parent partitioned BY RANGE ([tenant,] by) (BY LIST (tenant) with
    tenant_partitioning="list"), then register it with partman."""

    def __init__(
        self,
        table_name: str,
        columns: tuple[SchemaItem, ...],
        policy: PartitionPolicy,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        table_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.table_name = table_name
        self.columns = columns
        self.policy = policy
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.table_kwargs = table_kwargs or {}

    @classmethod
    def create_partitioned_table(
        cls,
        operations: Operations,
        table_name: str,
        *columns: SchemaItem,
        by: str,
        schema: str | None = None,
        tenant: str | None = None,
        interval: str | dt.timedelta | Interval | int = "1 day",
        premake: int = 10,
        retention: str | dt.timedelta | Interval | int | None = None,
        retention_action: RetentionAction | str = "drop",
        archive_schema: str | None = None,
        export_location: str | None = None,
        default_partition: bool = False,
        backfill: bool = False,
        storage_parameters: Mapping[str, int | float | bool] | None = None,
        epoch: Epoch | str | None = None,
        retention_column: str | None = None,
        sub_partition_by: str | None = None,
        sub_partition_modulus: int | None = None,
        tenant_partitioning: TenantPartitioning | str = "range",
        tenants: Iterable[TenantId | Tenant] = (),
        tenants_query: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        **table_kwargs: Any,
    ) -> SATable:
        """`op.create_table(table_name, *columns, schema=schema, **table_kwargs)` partitioned
        BY RANGE ([tenant,] by), then `op.manage_table(...)` with the same policy: both in
        this migration's transaction. Returns the Table, as `op.create_table` does."""
        policy = _policy(
            table_name,
            schema,
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
        table: SATable = operations.invoke(
            cls(
                table_name,
                columns,
                policy,
                schema=schema,
                metadata_schema=metadata_schema,
                table_kwargs=table_kwargs,
            )
        )
        return table

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("create_partitioned_table", self.schema, self.table_name, self.policy)


@Operations.implementation_for(ManageTableOp)
def _manage_table(operations: Operations, operation: ManageTableOp) -> None:
    schema = operation.schema or _default_schema(operations)
    register(
        _psycopg_connection(operations, "manage_table"),
        operation.policy.table(operation.table_name, schema),
        operation.policy.tenants,
        tenants_query=operation.policy.tenants_query,
        metadata_schema=operation.metadata_schema,
    )


@Operations.implementation_for(UnmanageTableOp)
def _unmanage_table(operations: Operations, operation: UnmanageTableOp) -> None:
    unregister(
        _psycopg_connection(operations, "unmanage_table"),
        operation.schema or _default_schema(operations),
        operation.table_name,
        metadata_schema=operation.metadata_schema,
    )


@Operations.implementation_for(CreatePartitionedTableOp)
def _create_partitioned_table(
    operations: Operations, operation: CreatePartitionedTableOp
) -> SATable:
    _psycopg_connection(operations, "create_partitioned_table")  # fail before any DDL
    table = operations.create_table(
        operation.table_name,
        *operation.columns,
        schema=operation.schema,
        postgresql_partition_by=operation.policy.partition_by_sql,
        **operation.table_kwargs,
    )
    operations.invoke(
        ManageTableOp(
            operation.table_name,
            operation.policy,
            schema=operation.schema,
            metadata_schema=operation.metadata_schema,
        )
    )
    return table


def _policy(table_name: str, schema: str | None, **fields: Any) -> PartitionPolicy:
    try:
        return PartitionPolicy(**fields)
    except PartmanError as error:
        where = f"{schema}.{table_name}" if schema else table_name
        raise type(error)(f"partman policy of {where}: {error}") from None


def _psycopg_connection(operations: Operations, what: str) -> psycopg.Connection[Any]:
    """The psycopg connection under the migration's SQLAlchemy connection: partman's checks
    and writes go through it, so they share the migration's transaction."""
    if operations.migration_context.as_sql:
        raise PartmanError(
            f"op.{what} reads the catalog and partman's metadata, so it needs a database: it "
            "cannot run in offline (--sql) mode"
        )
    dbapi = operations.get_bind().connection.dbapi_connection
    if not isinstance(dbapi, psycopg.Connection):
        raise PartmanError(
            f"op.{what} needs the psycopg (3) driver, but this migration runs on "
            f"{type(dbapi).__module__}.{type(dbapi).__name__}; use a postgresql+psycopg:// URL "
            "(SQLAlchemy 2.1's default for postgresql://)"
        )
    return dbapi


def _default_schema(operations: Operations) -> str:
    """Where an unqualified table lives: the connection's current schema (search_path)."""
    name = operations.get_bind().dialect.default_schema_name
    return name or "public"
