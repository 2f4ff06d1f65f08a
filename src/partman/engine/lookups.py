"""What the front ends look up in the catalog about a registered table, on a connection they
own: a tenant id as partman stores it, and the rows waiting in default partitions.

Not metadata reads (those are `db/reads.py`): these read the live catalog and check it against
the registration (`validate.check_record`), which the `db` layer may not import.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..decide.validate import check_record
from ..errors import TenantError
from ..model import snapshot
from ..model.columns import canonical_tenant
from .world import default_rows, read_catalog


def canonical(conn: psycopg.Connection[Any], record: snapshot.TableRecord, value: object) -> str:
    """A tenant id as partman stores it for this table (TenantError if the column cannot hold
    it; CatalogError if the table no longer has its registered shape)."""
    if record.tenant_column is None:
        raise TenantError(
            f"{record.qualified_name} has no tenant column; tenants apply to tables partitioned "
            "by RANGE (tenant column, time column)"
        )
    _, tenant_key, _ = check_record(record, read_catalog(conn, [(record.schema, record.name)]))
    assert tenant_key is not None
    return str(canonical_tenant(value, tenant_key, table=record.qualified_name))


def default_partition_rows(
    conn: psycopg.Connection[Any], records: list[snapshot.TableRecord]
) -> dict[str, int]:
    """Exact rows (capped at a million) in each managed table's default partition."""
    if not records:
        return {}
    catalog = read_catalog(conn, [(r.schema, r.name) for r in records])
    defaults = {
        parent.qualified_name: (d.schema, d.name)
        for parent in catalog.values()
        if (d := parent.default_partition) is not None
    }
    return default_rows(conn, defaults)


def default_rows_by_tenant(
    conn: psycopg.Connection[Any],
    record: snapshot.TableRecord,
    limit: int = 20,
    cap: int = 1_000_000,
) -> dict[str, int]:
    """The tenants with the most rows waiting in the table's default partition (at most
    `limit` of them, most first; rows counted up to `cap` in all): whose partitions are late.
    Empty for a single-tenant table or one without a default partition."""
    if record.tenant_column is None:
        return {}
    catalog = read_catalog(conn, [(record.schema, record.name)])
    found = next((p.default_partition for p in catalog.values() if p.default_partition), None)
    if found is None:
        return {}
    query = sql.SQL(
        "SELECT t::text, count(*) FROM (SELECT {} AS t FROM {} LIMIT {}) x "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}"
    ).format(
        sql.Identifier(record.tenant_column),
        sql.Identifier(found.schema, found.name),
        sql.Literal(cap),
        sql.Literal(limit),
    )
    return {str(t): int(n) for t, n in conn.execute(query).fetchall()}
