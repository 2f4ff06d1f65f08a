"""Small builders for what a pass reads (catalog parents and partitions, partman's records), so
that a unit test of a pure module states only what matters to it.

Every value is a real model type (`ParentInfo`, `PartitionInfo`, `TableRecord`, `State`...): the
pure modules take nothing else from the database.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from partman.model.bounds import DEFAULT_BOUND, BoundValue, RangeBound
from partman.model.columns import KeyColumn, TenantValue, tenant_text
from partman.model.intervals import Interval, parse_retention
from partman.model.snapshot import (
    Catalog,
    OwnedPartition,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    TenantRecord,
    owner_comment,
)

UTC = dt.UTC
UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
CREATED = owner_comment("created")
ADOPTED = owner_comment("adopted")

COLUMNS = {
    "timestamptz": KeyColumn("at", "timestamptz", "timestamp with time zone", -1),
    "timestamp": KeyColumn("at", "timestamp", "timestamp without time zone", -1),
    "date": KeyColumn("at", "date", "date", -1),
    "text": KeyColumn("tenant", "text", "text", -1),
    "int8": KeyColumn("tenant", "int8", "bigint", -1),
    "uuid": KeyColumn("tenant", "uuid", "uuid", -1),
}
"""Key columns by type name: the time column is "at", the tenant column "tenant"."""

PAYLOAD = KeyColumn("payload", "jsonb", "jsonb", -1)

_oids = itertools.count(10_000)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def partition(
    name: str,
    lower: BoundValue,
    upper: BoundValue,
    *,
    tenant: BoundValue | None = None,
    upper_tenant: BoundValue | None = None,
    comment: str | None = None,
    schema: str = "public",
    rows: int | None = None,
    detach_pending: bool = False,
    is_partitioned: bool | str = False,
) -> PartitionInfo:
    """A range partition FROM ([tenant,] lower) TO ([upper_tenant or tenant,] upper)."""
    if tenant is None:
        low: tuple[BoundValue, ...] = (lower,)
        high: tuple[BoundValue, ...] = (upper,)
    else:
        low = (tenant, lower)
        high = (tenant if upper_tenant is None else upper_tenant, upper)
    return PartitionInfo(
        oid=next(_oids),
        schema=schema,
        name=name,
        bound_text=f"FOR VALUES FROM {low} TO {high}",
        bound=RangeBound(low, high),
        comment=comment,
        estimated_rows=rows,
        detach_pending=detach_pending,
        sub_strategy="r" if is_partitioned is True else (is_partitioned or None),
    )


def default_partition(name: str = "events_default", *, comment: str | None = None) -> PartitionInfo:
    return PartitionInfo(
        next(_oids), "public", name, "DEFAULT", DEFAULT_BOUND, comment, None, False, False
    )


def unreadable_partition(name: str, bound_text: str = "FOR VALUES IN ('x')") -> PartitionInfo:
    """A child whose bound partman does not read (`bound` is None)."""
    return PartitionInfo(next(_oids), "public", name, bound_text, None, None, None, False, None)


def parent(
    partitions: Iterable[PartitionInfo] = (),
    *,
    name: str = "events",
    tenant: str | None = "text",
    time: str = "timestamptz",
    schema: str = "public",
    relkind: str = "p",
    strategy: str | None = "r",
    key: Sequence[KeyColumn] | None = None,
    columns: Sequence[KeyColumn] | None = None,
) -> ParentInfo:
    """A parent keyed RANGE ([tenant,] at) by default; `key`/`columns` override the shape."""
    if key is None:
        key = (COLUMNS[time],) if tenant is None else (COLUMNS[tenant], COLUMNS[time])
    if columns is None:
        columns = (*key, PAYLOAD)
    return ParentInfo(
        oid=next(_oids),
        schema=schema,
        name=name,
        relkind=relkind,
        strategy=strategy,
        key=tuple(key),
        columns={c.name: c for c in columns},
        partitions=tuple(sorted(partitions, key=lambda p: p.name)),
    )


def record(
    *,
    table_id: int = 1,
    name: str = "events",
    tenant_column: str | None = "tenant",
    interval: str = "1 day",
    retention: str | None = None,
    partition_count: int = 3,
    schema: str = "public",
) -> TableRecord:
    return TableRecord(
        id=table_id,
        schema=schema,
        name=name,
        tenant_column=tenant_column,
        time_column="at",
        interval=Interval.parse(interval),
        retention=parse_retention(retention),
        partition_count=partition_count,
        backfill=False,
    )


def owned(
    p: PartitionInfo,
    table: TableRecord,
    *,
    tenant: TenantValue | None = None,
    origin: str = "created",
) -> OwnedPartition:
    """partman's record that it created (or adopted) `p`."""
    return OwnedPartition(p.schema, p.name, table.schema, table.name, tenant_text(tenant), origin)


def state(
    tables: Iterable[TableRecord] = (),
    *,
    tenants: Iterable[TenantRecord] = (),
    owned: Iterable[OwnedPartition] = (),
) -> State:
    by_table: dict[int, list[TenantRecord]] = {}
    for t in tenants:
        by_table.setdefault(t.table_id, []).append(t)
    return State(
        tables=tuple(tables),
        tenants={k: tuple(v) for k, v in by_table.items()},
        owned={(o.schema, o.name): o for o in owned},
    )


def catalog(*parents: ParentInfo) -> Catalog:
    return {(p.schema, p.name): p for p in parents}
