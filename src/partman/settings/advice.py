"""What a file may say that is legal but likely not meant, found from the file alone: partition
counts that would explode with a short (sub-hour) interval. Each is a warning at its key, shown
by `partman check` (and Django's checks) beside the problems, without failing anything.

PostgreSQL plans and locks every partition of a parent a query cannot prune, so a tenant with
tens of thousands of partitions makes every such query slow, and partman's passes with it.
"""

from __future__ import annotations

import datetime as dt
import math

from ..model.config import Table
from ..model.intervals import Interval, Retention
from ..model.keys import IdRetention
from .mapping import Settings, TableSpec
from .problems import Problem

PARTITIONS_WARNED = 10_000
"""More partitions than this per tenant (or per table) is warned about."""
_YEAR = dt.timedelta(days=365)


def partitions_kept(interval: Interval, retention: Retention, partition_count: int) -> int:
    """About how many partitions a tenant has once retention runs: the retention window in
    periods, the current one, and partition_count ahead."""
    period = retention.period
    window = period.approx if isinstance(period, Interval) else period
    return math.ceil(window / interval.approx) + 1 + partition_count


def _per_day(interval: Interval) -> str:
    count = dt.timedelta(days=1) / interval.approx
    return f"{count:,.0f}" if count >= 1 else f"{count:.2f}"


def growth_warning(
    table: Table,
    retention: Retention | IdRetention | None,
    partition_count: int,
    tenant: object = None,
) -> tuple[str, str] | None:
    """Why `table` (or its tenant `tenant`, with its own retention and count) would have too
    many partitions, and the key the fix goes at; None when it would not."""
    interval = table.interval
    if not isinstance(interval, Interval) or isinstance(retention, IdRetention):
        return None  # ids grow by the rows, not by the clock
    who = table.qualified_name if tenant is None else f"{table.qualified_name} tenant {tenant}"
    each = "per tenant" if table.tenant_id_column is not None and tenant is None else ""
    if retention is None:
        if _YEAR / interval.approx <= PARTITIONS_WARNED:
            return None
        days = math.ceil(PARTITIONS_WARNED * interval.approx / dt.timedelta(days=1))
        return (
            "partition_interval",
            f"{who}: {interval} partitions with no retention_period make "
            f"{_per_day(interval)} partitions a day{' ' + each if each else ''}, kept forever: "
            f"more than {PARTITIONS_WARNED:,} within {days} days, and every query that cannot "
            "prune them plans and locks them all; set a retention_period, or use a longer "
            "partition_interval",
        )
    kept = partitions_kept(interval, retention, partition_count)
    if kept <= PARTITIONS_WARNED:
        return None
    return (
        "retention_period",
        f"{who}: {interval} partitions kept for {retention} (retention_period), plus "
        f"{partition_count} ahead (partition_count), are about {kept:,} partitions"
        f"{' ' + each if each else ''}, more than {PARTITIONS_WARNED:,}: every query that "
        "cannot prune them plans and locks them all; use a longer partition_interval or a "
        "shorter retention_period",
    )


def partition_growth(found: Settings) -> list[Problem]:
    """A warning for each table (and each tenant with its own policy) whose partitions would
    number more than PARTITIONS_WARNED, at its key."""
    out: list[Problem] = []
    for spec in found.tables:
        out += _table_growth(found, spec)
    return out


def _table_growth(found: Settings, spec: TableSpec) -> list[Problem]:
    table = spec.table
    out: list[Problem] = []
    warned = growth_warning(table, table.retention, table.partition_count)
    if warned is not None:
        key, message = warned
        out.append(found.problem((*spec.path, key), message))
    for t in spec.tenants:
        if not t.own_policy:
            continue
        tenant = t.tenant
        if tenant.retention_period is None and tenant.partition_count is None:
            continue
        retention = None if tenant.keeps_forever else tenant.retention
        if tenant.retention_period is None:
            retention = table.retention
        count = table.partition_count if tenant.partition_count is None else tenant.partition_count
        mine = growth_warning(table, retention, count, t.tenant_id)
        if mine is not None:
            key, message = mine
            where = (*t.path, key) if key != "partition_interval" else (*spec.path, key)
            out.append(found.problem(where, message))
    return out
