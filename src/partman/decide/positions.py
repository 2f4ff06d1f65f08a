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
from ..model.columns import TenantValue, tenant_from_text
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
    default: tuple[str, str] | None = None
    """The parent's DEFAULT partition, whose rows count too (ids past every window wait
    there until their window is made)."""
    tenant_column: str | None = None
    """The tenant column of a RANGE (tenant, id) parent: the default's rows are filtered by it."""
    staging: tuple[tuple[str, str], ...] = ()
    """partman's staging tables of this tenant (a window whose rows an interrupted pass was
    moving out of the default): their rows count, or the newest id would drop while they are
    out of both the default and the parent."""


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
            default = tree.default_partition
            home = None if default is None else (default.schema, default.name)
            if home is not None:  # a tenant's ids may all be waiting in the default
                if keyed is None:
                    by_tenant.setdefault(None, [])
                else:
                    for t in state.tenants.get(table.id, ()):
                        by_tenant.setdefault(tenant_from_text(t.tenant_id, keyed.kind), [])
            staged: dict[TenantValue | None, list[tuple[str, str]]] = {}
            for o in state.owned_by_parent.get((tree.schema, tree.name), ()):
                if o.state == "staging" and o.exists and not o.attached:
                    who = (
                        None
                        if keyed is None or o.tenant_id is None
                        else (tenant_from_text(o.tenant_id, keyed.kind))
                    )
                    staged.setdefault(who, []).append((o.schema, o.name))
                    by_tenant.setdefault(who, [])
            for tenant, pieces in by_tenant.items():
                newest = sorted(pieces, key=lambda p: p.upper, reverse=True)[:PROBED]
                names = tuple((p.partition.schema, p.partition.name) for p in newest)
                held = tuple(sorted(staged.get(tenant, ())))
                if names or home is not None or held:
                    out.append(
                        Probe(
                            (tree.schema, tree.name),
                            tenant,
                            key.name,
                            names,
                            home,
                            None if keyed is None else keyed.name,
                            held,
                        )
                    )
    return out
