"""Does a parent in the catalog have the shape a Table describes? Pure: catalog in, error out.

Used twice: by registration (raise before anything is written) and by every pass (a table that
was altered after registration is reported and skipped, and the others go on). Also what is
legal but likely a mistake (`warnings`, which `partman check` shows).
"""

from __future__ import annotations

from ..errors import KeyMismatchError, NotPartitionedError, TableNotFoundError
from ..model.columns import ColumnKind, KeyColumn
from ..model.intervals import Interval, Retention, Unit
from ..model.snapshot import Catalog, ParentInfo, TableRecord
from ..settings import Problem, Settings

_KIND_WORDS = {
    "r": "a plain table",
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
}
_STRATEGY = {"l": "LIST", "h": "HASH"}


def check_parent(
    qualified: str,
    parent: ParentInfo | None,
    *,
    tenant_column: str | None,
    time_column: str,
    interval: Interval,
) -> tuple[KeyColumn | None, KeyColumn]:
    """Return the (tenant, time) key columns, or raise a CatalogError naming the fix."""
    if parent is None:
        raise TableNotFoundError(
            f"table {qualified} does not exist; create it first as a table partitioned "
            f"BY RANGE ({_key_text(tenant_column, time_column)})"
        )
    expected = _key_text(tenant_column, time_column)
    if parent.relkind != "p":
        what = _KIND_WORDS.get(parent.relkind, f"a relation of kind {parent.relkind!r}")
        raise NotPartitionedError(
            f"{qualified} is {what}, not a partitioned table; recreate it with "
            f"PARTITION BY RANGE ({expected}) (or convert it; partman manages partitioned "
            "parents only)"
        )
    if parent.strategy != "r":
        raise NotPartitionedError(
            f"{qualified} is partitioned by {_STRATEGY.get(parent.strategy or '', '?')}, "
            f"not RANGE; partman manages PARTITION BY RANGE ({expected})"
        )
    if parent.key is None:
        raise KeyMismatchError(
            f"{qualified} is partitioned by an expression; partman needs plain columns: "
            f"PARTITION BY RANGE ({expected})"
        )
    for column in (tenant_column, time_column):
        if column is not None and column not in parent.columns:
            raise KeyMismatchError(
                f"{qualified} has no column {column!r} (columns: "
                f"{', '.join(parent.columns)}); check Table.tenant_id_column/partition_by "
                "(names are case-sensitive)"
            )
    actual = tuple(c.name for c in parent.key)
    wanted = (time_column,) if tenant_column is None else (tenant_column, time_column)
    if actual != wanted:
        hint = (
            "set tenant_id_column to the first key column"
            if len(actual) == 2 and tenant_column is None
            else "the key must be (tenant column, time column), or the time column alone"
        )
        raise KeyMismatchError(
            f"{qualified} is partitioned by RANGE ({', '.join(actual)}), but the Table says "
            f"RANGE ({', '.join(wanted)}); {hint}"
        )
    time_key = parent.key[-1]
    if not time_key.kind.is_time:
        raise KeyMismatchError(
            f"{qualified}.{time_column} is {time_key.type_sql}; the partition_by column must be "
            "timestamptz, timestamp or date"
        )
    if time_key.kind is ColumnKind.DATE and interval.unit is Unit.HOUR:
        raise KeyMismatchError(
            f"{qualified}.{time_column} is a date, so it cannot be partitioned by {interval}; "
            "use '1 day' or longer"
        )
    tenant_key = parent.key[0] if tenant_column is not None else None
    if tenant_key is not None and not tenant_key.kind.is_tenant:
        raise KeyMismatchError(
            f"{qualified}.{tenant_column} is {tenant_key.type_sql}; tenant columns must be "
            "text-like (text, varchar), integer or uuid"
        )
    return tenant_key, time_key


def _key_text(tenant_column: str | None, time_column: str) -> str:
    return time_column if tenant_column is None else f"{tenant_column}, {time_column}"


def check_record(
    table: TableRecord, catalog: Catalog
) -> tuple[ParentInfo, KeyColumn | None, KeyColumn]:
    """A registered table against the catalog of a pass: its parent and key columns, or the
    CatalogError that says what changed since it was registered."""
    parent = catalog.get((table.schema, table.name))
    tenant_key, time_key = check_parent(
        table.qualified_name,
        parent,
        tenant_column=table.tenant_column,
        time_column=table.time_column,
        interval=table.interval,
    )
    assert parent is not None
    return parent, tenant_key, time_key


def short_retention(
    qualified: str, interval: Interval, retention: Retention | None, tenant: object = None
) -> str | None:
    """Why a retention shorter than one partition surprises (retention drops whole partitions
    once they end), or None when it is not shorter."""
    if retention is None:
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


def warnings(found: Settings) -> list[Problem]:
    """What the file says that is legal but likely not meant, each at its key: a retention
    shorter than the partition interval (the table's, or a tenant's own)."""
    out: list[Problem] = []
    for spec in found.tables:
        table = spec.table
        message = short_retention(table.qualified_name, table.interval, table.retention)
        if message is not None:
            out.append(found.problem((*spec.path, "retention_period"), message))
        for t in spec.tenants:
            if not t.own_policy:
                continue
            message = short_retention(
                table.qualified_name, table.interval, t.tenant.retention, t.tenant_id
            )
            if message is not None:
                out.append(found.problem((*t.path, "retention_period"), message))
    return out
