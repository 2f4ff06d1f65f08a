"""Where an id table is: its newest id, per tenant, read from its newest partitions only.

An id table's "now" is its max(id). A full `SELECT max(id) FROM parent` would scan every
partition that has no index on the column; this asks the partitions from the top down
instead, newest window first, and stops at the first that holds a row (`db.catalog
.positions_query` composes one COALESCE per tenant, which PostgreSQL evaluates lazily). Pure:
which partitions to ask is decided here, from the catalog snapshot.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from ..errors import CatalogError
from ..model.columns import TenantValue
from ..model.snapshot import Catalog, State
from .domains import domain_of
from .planner import nested_strategy, subtrees, timelines
from .validate import check_record

PROBED = 50
"""Partitions asked per tenant, newest first; past them the tenant counts as having no row."""


@dataclass(frozen=True)
class Probe:
    """The newest partitions of one id table's tenant, to read its newest id from."""

    parent: tuple[str, str]
    tenant: TenantValue | None
    column: str
    partitions: tuple[tuple[str, str], ...]
    """(schema, name), newest window first."""


def probes(state: State, catalog: Catalog, zone: zoneinfo.ZoneInfo) -> list[Probe]:
    """One probe per tenant of each id table that has partitions; none without id tables."""
    out: list[Probe] = []
    for table in state.tables:
        if not table.by_id:
            continue
        try:
            parent, tenant_key, key = check_record(table, catalog)
        except CatalogError:
            continue  # the pass reports it
        domain = domain_of(table, key, zone)
        nested = nested_strategy(table)
        trees = [(parent, tenant_key)]
        if table.list_tenants:  # each tenant's own partition: its positions are its own
            trees = [(sub, None) for sub in subtrees(parent, catalog, key).values()]
        for tree, keyed in trees:
            by_tenant, _ = timelines(tree, keyed, domain, nested)
            for tenant, pieces in by_tenant.items():
                newest = sorted(pieces, key=lambda p: p.upper, reverse=True)[:PROBED]
                names = tuple((p.partition.schema, p.partition.name) for p in newest)
                if names:
                    out.append(Probe((tree.schema, tree.name), tenant, key.name, names))
    return out
