"""`op.manage_table`, `op.unmanage_table`, `op.create_partitioned_table`: registration with
partman as a step of an Alembic migration.

Why in the migration: the migration that creates (or changes) a partitioned parent is the one
that knows it must be managed, and it runs in one transaction. The registration runs on that
transaction's connection (`op.get_bind()`) through `partman.engine.registration`, so it commits with
the migration, or rolls back with it when a later step fails: never a registered table that
does not exist, never a table that exists but nobody keeps partitioned.

`op.convert_table` (and its reverse `op.rollback_convert_table`) is the exception: a conversion
of a live table commits step by step on connections of its own, so it runs only inside
`op.get_context().autocommit_block()` and refuses the migration's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from alembic.operations import MigrateOperation, Operations
from psycopg.conninfo import make_conninfo
from sqlalchemy import Table as SATable
from sqlalchemy.schema import SchemaItem

from ...engine.convert import Converter
from ...engine.registration import DEFAULT_METADATA_SCHEMA, register, unregister
from ...errors import PartmanError
from ...model.config import Config, RetentionAction, Tenant, TenantId, TenantPartitioning
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


# -- op.convert_table: partition a live table in a migration (issue 15) -----------------------


@Operations.register_operation("convert_table")
class ConvertTableOp(MigrateOperation):
    """Turn an ordinary table into a partitioned one managed by partman (`partman convert`)."""

    def __init__(
        self,
        table_name: str,
        policy: PartitionPolicy,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        extend_unique: bool = False,
        batch_rows: int = 10_000,
        throttle: float = 0.0,
        config: Config | None = None,
        finish: bool = False,
    ) -> None:
        self.table_name = table_name
        self.policy = policy
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.extend_unique = extend_unique
        self.batch_rows = batch_rows
        self.throttle = throttle
        self.config = config
        self.finish = finish

    @classmethod
    def convert_table(
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
        default_partition: bool = False,
        storage_parameters: Mapping[str, int | float | bool] | None = None,
        epoch: Epoch | str | None = None,
        tenant_partitioning: TenantPartitioning | str = "range",
        extend_unique: bool = False,
        batch_rows: int = 10_000,
        throttle: float = 0.0,
        config: Config | None = None,
        finish: bool = False,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """`partman convert` of the ordinary table `schema.table_name`, with the application
        running: twin, capture, copy, verify and swap, each step committed on connections of
        its own (never the migration's transaction: a copy of millions of rows in one
        transaction is what convert exists to avoid). So it must be called inside
        `with op.get_context().autocommit_block():`, and is refused otherwise before anything
        changes. Run again (a failed or killed upgrade run again), it resumes where it stopped.
        The old table is kept as `<name>_old` for the downgrade (`op.rollback_convert_table`)
        unless `finish=True` drops it. The policy keywords are `op.manage_table`'s;
        `extend_unique`, `batch_rows`, `throttle` are `partman convert`'s; `config` gives the
        lock budget (`lock_timeout`, `max_retries`; its metadata_schema is replaced by
        `metadata_schema`)."""
        policy = _policy(
            table_name,
            schema,
            by=by,
            tenant=tenant,
            interval=interval,
            premake=premake,
            retention=retention,
            retention_action=retention_action,
            default_partition=default_partition,
            storage_parameters=storage_parameters or {},
            epoch=epoch,
            tenant_partitioning=tenant_partitioning,
        )
        operations.invoke(
            cls(
                table_name,
                policy,
                schema=schema,
                metadata_schema=metadata_schema,
                extend_unique=extend_unique,
                batch_rows=batch_rows,
                throttle=throttle,
                config=config,
                finish=finish,
            )
        )

    def reverse(self) -> MigrateOperation:
        if self.finish:
            raise NotImplementedError(
                f"convert_table({self.table_name!r}, finish=True) dropped the old table; the "
                "downgrade cannot swap back to it"
            )
        return RollbackConvertTableOp(
            self.table_name, schema=self.schema, metadata_schema=self.metadata_schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("convert_table", self.schema, self.table_name, self.policy)


@Operations.register_operation("rollback_convert_table")
class RollbackConvertTableOp(MigrateOperation):
    """Undo `op.convert_table` while the old table is there: swap back, then drop the twin,
    the triggers and the change log (`partman convert --rollback`, then `--cancel`)."""

    name = "rollback_convert_table"

    def __init__(
        self,
        table_name: str,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        config: Config | None = None,
    ) -> None:
        self.table_name = table_name
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.config = config

    @classmethod
    def rollback_convert_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        config: Config | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """The downgrade of `op.convert_table`: `schema.table_name` is the ordinary table it
        was again, with every row written since the swap; the partitioned one, its partitions,
        partman's registration of it, the triggers and the change log are dropped. A
        conversion stopped before its swap is cancelled the same way. Refused (nothing
        changed) once the conversion was finished: the old table is gone. Like
        `op.convert_table`, it runs inside `op.get_context().autocommit_block()`."""
        operations.invoke(
            cls(table_name, schema=schema, metadata_schema=metadata_schema, config=config)
        )

    def reverse(self) -> MigrateOperation:
        raise NotImplementedError(
            f"rollback_convert_table({self.table_name!r}) does not know the policy to convert "
            "the table with again; write the op.convert_table(...) by hand"
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("rollback_convert_table", self.schema, self.table_name)


@Operations.implementation_for(ConvertTableOp)
def _convert_table(operations: Operations, operation: ConvertTableOp) -> None:
    schema = operation.schema or _default_schema(operations)
    converter = _converter(
        operations,
        "convert_table",
        operation.config,
        operation.metadata_schema,
        batch_rows=operation.batch_rows,
        throttle=operation.throttle,
    )
    table = operation.policy.table(operation.table_name, schema)
    converter.convert(table, extend_unique=operation.extend_unique)
    if operation.finish:
        converter.finish(schema, operation.table_name)


@Operations.implementation_for(RollbackConvertTableOp)
def _rollback_convert_table(operations: Operations, operation: RollbackConvertTableOp) -> None:
    schema = operation.schema or _default_schema(operations)
    converter = _converter(operations, operation.name, operation.config, operation.metadata_schema)
    status = converter.status(schema, operation.table_name)
    if status is None or status["state"] == "finished":
        raise PartmanError(
            f"op.{operation.name}: {schema}.{operation.table_name} has no conversion to "
            "roll back (never converted, or finished: the old table was dropped); nothing "
            "was changed"
        )
    if status["state"] == "swap":
        converter.rollback(schema, operation.table_name)
    converter.cancel(schema, operation.table_name)


def _converter(
    operations: Operations,
    what: str,
    config: Config | None,
    metadata_schema: str,
    **options: Any,
) -> Converter:
    """A Converter on connections of its own to the migration's database. Refused inside the
    migration's transaction: the conversion commits step by step, so it would commit what
    the migration did before it halfway (or wait behind the locks the migration holds)."""
    dbapi = _psycopg_connection(operations, what)
    if not dbapi.autocommit:
        raise PartmanError(
            f"op.{what} commits its steps on connections of its own and cannot run inside the "
            "migration's transaction: call it in `with op.get_context().autocommit_block():` "
            "(nothing was changed)"
        )
    info = dbapi.info
    conninfo = info.dsn
    if info.password:
        conninfo = make_conninfo(conninfo, password=info.password)
    settings = dataclasses.replace(config or Config(), metadata_schema=metadata_schema)
    return Converter(conninfo, config=settings, **options)


# -- op.unpartition_table: a partitioned table back into one table (issue 15) ------------------


@Operations.register_operation("unpartition_table")
class UnpartitionTableOp(MigrateOperation):
    """Turn a partitioned table back into one ordinary table (`partman unpartition`)."""

    def __init__(
        self,
        table_name: str,
        *,
        schema: str | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
        batch_rows: int = 10_000,
        throttle: float = 0.0,
        config: Config | None = None,
        finish: bool = False,
    ) -> None:
        self.table_name = table_name
        self.schema = schema
        self.metadata_schema = metadata_schema
        self.batch_rows = batch_rows
        self.throttle = throttle
        self.config = config
        self.finish = finish

    @classmethod
    def unpartition_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        batch_rows: int = 10_000,
        throttle: float = 0.0,
        config: Config | None = None,
        finish: bool = False,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """`partman unpartition` of the partitioned table `schema.table_name`, with the
        application running: an ordinary twin, capture, copy, verify and swap, each step
        committed on connections of its own, so (like `op.convert_table`) only inside
        `with op.get_context().autocommit_block():`; refused otherwise before anything changes.
        Run again, it resumes where it stopped. The table is unregistered from partman at the
        swap; the old partitioned table is kept as `<name>_old` for the downgrade
        (`op.rollback_unpartition_table`, which manages it again) unless `finish=True` drops
        it with its partitions."""
        operations.invoke(
            cls(
                table_name,
                schema=schema,
                metadata_schema=metadata_schema,
                batch_rows=batch_rows,
                throttle=throttle,
                config=config,
                finish=finish,
            )
        )

    def reverse(self) -> MigrateOperation:
        if self.finish:
            raise NotImplementedError(
                f"unpartition_table({self.table_name!r}, finish=True) dropped the partitioned "
                "table; the downgrade cannot swap back to it"
            )
        return RollbackUnpartitionTableOp(
            self.table_name, schema=self.schema, metadata_schema=self.metadata_schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("unpartition_table", self.schema, self.table_name)


@Operations.register_operation("rollback_unpartition_table")
class RollbackUnpartitionTableOp(RollbackConvertTableOp):
    """Undo `op.unpartition_table` while the old partitioned table is there: swap back (rows
    written since the swap carried), manage it again with its policy, then drop the ordinary
    twin, the triggers and the change log (`--rollback`, then `--cancel`): the same work as
    `op.rollback_convert_table`, which is direction-blind."""

    name = "rollback_unpartition_table"

    @classmethod
    def rollback_unpartition_table(
        cls,
        operations: Operations,
        table_name: str,
        *,
        schema: str | None = None,
        config: Config | None = None,
        metadata_schema: str = DEFAULT_METADATA_SCHEMA,
    ) -> None:
        """The downgrade of `op.unpartition_table`. Refused (nothing changed) once it was
        finished. Runs inside `op.get_context().autocommit_block()`."""
        operations.invoke(
            cls(table_name, schema=schema, metadata_schema=metadata_schema, config=config)
        )

    def reverse(self) -> MigrateOperation:
        return UnpartitionTableOp(
            self.table_name, schema=self.schema, metadata_schema=self.metadata_schema
        )

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("rollback_unpartition_table", self.schema, self.table_name)


@Operations.implementation_for(UnpartitionTableOp)
def _unpartition_table(operations: Operations, operation: UnpartitionTableOp) -> None:
    schema = operation.schema or _default_schema(operations)
    converter = _converter(
        operations,
        "unpartition_table",
        operation.config,
        operation.metadata_schema,
        batch_rows=operation.batch_rows,
        throttle=operation.throttle,
    )
    converter.unpartition(schema, operation.table_name)
    if operation.finish:
        converter.finish(schema, operation.table_name)


Operations.implementation_for(RollbackUnpartitionTableOp)(_rollback_convert_table)
