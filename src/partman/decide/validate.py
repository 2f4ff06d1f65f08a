"""Does a parent in the catalog have the shape a Table describes? Pure: catalog in, error out.

Used twice: by registration (raise before anything is written) and by every pass (a table that
was altered after registration is reported and skipped, and the others go on). Also what is
legal but likely a mistake (`warnings`, which `partman check` shows).
"""

from __future__ import annotations

import datetime as dt

from ..errors import KeyMismatchError, NotPartitionedError, TableNotFoundError
from ..model.columns import ColumnKind, KeyColumn
from ..model.intervals import Interval, Retention
from ..model.keys import IdInterval, IdRetention
from ..model.snapshot import Catalog, ParentInfo, TableRecord
from ..settings import Problem, Settings

_KIND_WORDS = {
    "r": "a plain table",
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
}
_STRATEGY = {"l": "LIST", "h": "HASH", "r": "RANGE"}
SUPPORTED = (
    "partman manages RANGE (time), RANGE (tenant, time), LIST (tenant) -> RANGE (time) and "
    "RANGE (time) -> HASH"
)


def check_parent(
    qualified: str, parent: ParentInfo | None, shape: TableRecord
) -> tuple[KeyColumn | None, KeyColumn]:
    """Return the (tenant, range) key columns, or raise a CatalogError naming the fix.

    `shape` is the table as registered or declared (`TableRecord.from_table`): its columns,
    interval, epoch, levels. The range column is the key's last (RANGE (tenant, time) or RANGE
    (time)), or, under LIST (tenant), the column each tenant's partition is RANGE on."""
    tenant_column, time_column = shape.tenant_column, shape.time_column
    expected = _shape_text(shape)
    if parent is None:
        raise TableNotFoundError(
            f"table {qualified} does not exist; create it first as a table partitioned "
            f"BY {expected}"
        )
    if parent.relkind != "p":
        what = _KIND_WORDS.get(parent.relkind, f"a relation of kind {parent.relkind!r}")
        raise NotPartitionedError(
            f"{qualified} is {what}, not a partitioned table; recreate it with "
            f"PARTITION BY {expected} (or convert it; partman manages partitioned "
            "parents only)"
        )
    wanted_strategy = "l" if shape.list_tenants else "r"
    if parent.strategy != wanted_strategy:
        found = _STRATEGY.get(parent.strategy or "", "?")
        hint = ""
        if parent.strategy == "l" and tenant_column is not None:
            hint = " (set tenant_partitioning = 'list' for PARTITION BY LIST (tenant))"
        elif parent.strategy == "r" and shape.list_tenants:
            hint = " (tenant_partitioning 'list' is for PARTITION BY LIST (tenant); drop it)"
        raise NotPartitionedError(
            f"{qualified} is partitioned by {found}, not {_STRATEGY[wanted_strategy]}; the "
            f"Table says PARTITION BY {expected}{hint} ({SUPPORTED})"
        )
    if parent.key is None:
        raise KeyMismatchError(
            f"{qualified} is partitioned by an expression; partman needs plain columns: "
            f"PARTITION BY {expected}"
        )
    for what, column in (
        ("tenant_id_column", tenant_column),
        ("partition_by", time_column),
        ("sub_partition_by", shape.sub_partition_by),
        ("retention_column", shape.retention_column),
    ):
        if column is not None and column not in parent.columns:
            raise KeyMismatchError(
                f"{qualified} has no column {column!r} (columns: "
                f"{', '.join(parent.columns)}); check Table.{what} (names are case-sensitive)"
            )
    actual = tuple(c.name for c in parent.key)
    if shape.list_tenants:
        wanted: tuple[str, ...] = (str(tenant_column),)
    else:
        wanted = (time_column,) if tenant_column is None else (tenant_column, time_column)
    if actual != wanted:
        hint = (
            "set tenant_id_column to the first key column"
            if len(actual) == 2 and tenant_column is None
            else "the key must be (tenant column, time column), or the time column alone"
        )
        if shape.list_tenants:
            hint = "a LIST parent's key is the tenant column alone"
        raise KeyMismatchError(
            f"{qualified} is partitioned by {_STRATEGY.get(parent.strategy or '', '?')} "
            f"({', '.join(actual)}), but the Table says {expected}; {hint}"
        )
    time_key = parent.columns[time_column]
    _check_range_column(qualified, time_key, shape)
    tenant_key = parent.key[0] if tenant_column is not None else None
    if tenant_key is not None and not tenant_key.kind.is_tenant:
        raise KeyMismatchError(
            f"{qualified}.{tenant_column} is {tenant_key.type_sql}; tenant columns must be "
            "text-like (text, varchar), integer or uuid"
        )
    if shape.retention_column is not None:
        age = parent.columns[shape.retention_column]
        if not age.kind.is_time:
            raise KeyMismatchError(
                f"{qualified}.{age.name} is {age.type_sql}; retention_column must be "
                "timestamptz, timestamp or date"
            )
    return tenant_key, time_key


def _check_range_column(qualified: str, key: KeyColumn, shape: TableRecord) -> None:
    """The partition_by column's type against the axis the Table asks for."""
    where = f"{qualified}.{key.name} is {key.type_sql}"
    kind, interval = key.kind, shape.interval
    if isinstance(interval, IdInterval):
        if not kind.is_id:
            raise KeyMismatchError(
                f"{where}; an integer partition_interval ({interval} ids) needs an integer id "
                "column (int, bigint, numeric); for time write a period like '1 day'"
            )
        return
    if shape.epoch is not None:
        if not kind.is_id:
            raise KeyMismatchError(
                f"{where}; epoch {shape.epoch!r} is for integer columns (bigint) holding time "
                "since 1970; drop epoch for a timestamp column"
            )
        if key.typname in ("int2", "int4") and shape.epoch != "seconds":
            raise KeyMismatchError(
                f"{where}; {shape.epoch} since 1970 overflow it today; use bigint"
            )
        return
    if kind.is_id:
        raise KeyMismatchError(
            f"{where}; for ids give partition_interval as a number of ids (e.g. 1000000), "
            "or set epoch ('seconds', 'milliseconds', ...) if it holds time since 1970"
        )
    if not kind.is_time and kind is not ColumnKind.UUID:
        raise KeyMismatchError(
            f"{where}; the partition_by column must be timestamptz, timestamp, date, a UUIDv7 "
            "(uuid), an epoch integer (with epoch) or an integer id (with an integer "
            "partition_interval)"
        )
    if kind is ColumnKind.DATE and interval.fixed:
        raise KeyMismatchError(
            f"{qualified}.{key.name} is a date, so it cannot be partitioned by {interval}; "
            "use '1 day' or longer"
        )


def _shape_text(shape: TableRecord) -> str:
    """The partitioning the Table describes, as SQL says it."""
    if shape.list_tenants:
        return f"LIST ({shape.tenant_column}) -> RANGE ({shape.time_column})"
    key = (
        shape.time_column
        if shape.tenant_column is None
        else f"{shape.tenant_column}, {shape.time_column}"
    )
    if shape.sub_partition_by is not None:
        return f"RANGE ({key}) -> HASH ({shape.sub_partition_by})"
    return f"RANGE ({key})"


def check_record(
    table: TableRecord, catalog: Catalog
) -> tuple[ParentInfo, KeyColumn | None, KeyColumn]:
    """A registered table against the catalog of a pass: its parent and key columns, or the
    CatalogError that says what changed since it was registered."""
    parent = catalog.get((table.schema, table.name))
    tenant_key, time_key = check_parent(table.qualified_name, parent, table)
    assert parent is not None
    return parent, tenant_key, time_key


def short_retention(
    qualified: str,
    interval: Interval | IdInterval,
    retention: Retention | IdRetention | None,
    tenant: object = None,
) -> str | None:
    """Why a retention shorter than one partition surprises (retention drops whole partitions
    once they end), or None when it is not shorter."""
    if retention is None or isinstance(retention, IdRetention):
        return None
    if isinstance(interval, IdInterval):
        return None
    period = retention.period
    length = period.approx if isinstance(period, Interval) else period
    if length >= interval.approx:
        return None
    who = qualified if tenant is None else f"{qualified} tenant {tenant}"
    return (
        f"{who}: retention_period {retention} is shorter than partition_interval {interval}: "
        f"retention drops whole partitions, so every partition expires {retention} after it is "
        f"complete, and then only the current partition's rows are left (as little as "
        f"{retention} of data); keep at least {interval}, or use a shorter partition_interval"
    )


MANY_PARTITIONS = 5000
"""Partitions per tenant kept at once past which a policy is worth a second look: planning,
locking and maintenance all grow with the partition count."""


def many_partitions(
    qualified: str,
    interval: Interval | IdInterval,
    retention: Retention | IdRetention | None,
    partition_count: int,
) -> str | None:
    """Why a short interval surprises (a partition count that explodes), or None. An
    interval shorter than an hour kept forever grows by more than 24 partitions a day; with a
    retention, the count kept is retention / interval + partition_count."""
    if not isinstance(interval, Interval):
        return None
    if isinstance(retention, Retention):
        period = retention.period
        length = period.approx if isinstance(period, Interval) else period
        kept = length // interval.approx + partition_count + 1
        if kept <= MANY_PARTITIONS:
            return None
        return (
            f"{qualified}: partition_interval {interval} with retention_period {retention} "
            f"keeps about {kept:,} partitions per tenant; PostgreSQL's planning, locking and "
            f"partman's passes slow down with thousands of partitions. Use a longer "
            f"partition_interval (at most {MANY_PARTITIONS:,} partitions is a good bound), or a "
            "shorter retention"
        )
    if interval.approx >= dt.timedelta(hours=1):
        return None
    per_day = dt.timedelta(days=1) // interval.approx
    return (
        f"{qualified}: partition_interval {interval} without a retention_period adds {per_day:,} "
        f"partitions a day per tenant, forever (over {per_day * 365:,} a year); set a "
        "retention_period or use a longer partition_interval"
    )


def warnings(found: Settings) -> list[Problem]:
    """What the file says that is legal but likely not meant, each at its key: a retention
    shorter than the partition interval (the table's, or a tenant's own), and a partition
    count that explodes (a short interval)."""
    out: list[Problem] = []
    for spec in found.tables:
        table = spec.table
        message = short_retention(table.qualified_name, table.interval, table.retention)
        if message is not None:
            out.append(found.problem((*spec.path, "retention_period"), message))
        message = many_partitions(
            table.qualified_name, table.interval, table.retention, table.partition_count
        )
        if message is not None:
            out.append(found.problem((*spec.path, "partition_interval"), message))
        for t in spec.tenants:
            if not t.own_policy:
                continue
            message = short_retention(
                table.qualified_name, table.interval, t.tenant.retention, t.tenant_id
            )
            if message is not None:
                out.append(found.problem((*t.path, "retention_period"), message))
    return out
