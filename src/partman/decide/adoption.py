"""Which existing partitions partman can adopt, judged by catalog bounds, never by names. Pure.

go_partman's import fails on the first partition whose name does not end in a date; pg_partman
asks you to rename everything. Here a partition is adopted when its bounds are exactly one
period of the table's interval for one tenant, whatever it is called; anything else is reported
and left alone (never dropped, since partman will not own it).
"""

from __future__ import annotations

import dataclasses
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from ..model.columns import KeyColumn, TenantValue, tenant_text
from ..model.snapshot import (
    Catalog,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    Traits,
    is_owner_comment,
)
from .domains import domain_of
from .planner import nested_strategy, subtrees, timelines


@dataclass(frozen=True)
class Found:
    """One partition met during an import, and what became of it."""

    table: str
    partition: str
    tenant: str | None
    bound: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "partition": self.partition,
            "tenant": self.tenant,
            "bound": self.bound,
            "reason": self.reason,
        }


@dataclass
class ImportReport:
    """go_partman's import, made explicit: what was taken, what was already ours, what was not."""

    imported: list[Found] = field(default_factory=list)
    already_owned: list[Found] = field(default_factory=list)
    misaligned: list[Found] = field(default_factory=list)
    foreign: list[Found] = field(default_factory=list)
    differing: list[Found] = field(default_factory=list)
    """Imported partitions whose owner, grants, replica identity, tablespace, ... differ from
    their parent's: reported, never changed (`differing`)."""
    tables: list[str] = field(default_factory=list)
    tenants: dict[str, list[str]] = field(default_factory=dict)
    skipped_tables: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": [f.to_dict() for f in self.imported],
            "already_owned": [f.to_dict() for f in self.already_owned],
            "misaligned": [f.to_dict() for f in self.misaligned],
            "foreign": [f.to_dict() for f in self.foreign],
            "differing": [f.to_dict() for f in self.differing],
            "tables": self.tables,
            "tenants": self.tenants,
            "skipped_tables": self.skipped_tables,
        }

    def __str__(self) -> str:
        lines = [
            f"imported {len(self.imported)}, already owned {len(self.already_owned)}, "
            f"misaligned {len(self.misaligned)} (left alone), foreign {len(self.foreign)} "
            f"(left alone); tables: {', '.join(self.tables) or 'none'}"
        ]
        lines += [f"  skipped table {t}: {why}" for t, why in self.skipped_tables.items()]
        lines += [f"  misaligned {f.partition} {f.bound}: {f.reason}" for f in self.misaligned]
        lines += [f"  foreign {f.partition} {f.bound}: {f.reason}" for f in self.foreign]
        lines += [f"  differs {f.partition}: {f.reason}" for f in self.differing]
        return "\n".join(lines)


@dataclass(frozen=True)
class Adoption:
    """The decision for one parent; `adopt` lists the partitions to mark as partman's."""

    adopt: list[tuple[PartitionInfo, TenantValue | None]]
    tenants: list[TenantValue]
    found: ImportReport


def classify(
    parent: ParentInfo,
    state: State,
    *,
    tenant_key: KeyColumn | None,
    time_key: KeyColumn,
    shape: TableRecord,
    zone: zoneinfo.ZoneInfo,
    only_tenant: TenantValue | None,
    tenant: TenantValue | None = None,
) -> Adoption:
    """`tenant`: `parent` is that tenant's own partition of a LIST parent, keyed by time."""
    domain = domain_of(shape, time_key, zone)
    coarse = None
    if shape.rollup_interval is not None and domain.by_time:
        coarse = dataclasses.replace(domain, interval=shape.rollup_interval)
    nested = nested_strategy(shape)
    by_tenant, others = timelines(parent, tenant_key, domain, nested)
    if tenant is not None:
        by_tenant = {tenant: by_tenant.get(None, [])}
    report = ImportReport()
    adopt: list[tuple[PartitionInfo, TenantValue | None]] = []
    tenants: list[TenantValue] = []
    table = parent.qualified_name
    for whose, pieces in by_tenant.items():
        if only_tenant is not None and whose != only_tenant:
            continue
        regular = [piece for piece in pieces if piece.regular]
        if whose is not None and (regular or tenant is not None):
            tenants.append(whose)
        for piece in regular:
            p = piece.partition
            found = Found(table, p.qualified_name, tenant_text(whose), p.bound_text)
            if (p.schema, p.name) in state.owned and is_owner_comment(p.comment):
                report.already_owned.append(found)
            elif not domain.is_aligned(piece.lower, piece.upper) and not (
                coarse is not None and coarse.is_aligned(piece.lower, piece.upper)
            ):  # one period, or one roll-up period of a table that has roll-ups
                report.misaligned.append(
                    Found(
                        found.table,
                        found.partition,
                        found.tenant,
                        found.bound,
                        f"not exactly one {shape.interval} period; left alone, never dropped",
                    )
                )
            else:
                report.imported.append(found)
                adopt.append((p, whose))
    seen = {p.oid for p in others}
    for pieces in by_tenant.values():
        for piece in pieces:
            if not piece.regular and piece.partition.oid not in seen:
                seen.add(piece.partition.oid)
                others.append(piece.partition)
    for p in others:
        report.foreign.append(Found(table, p.qualified_name, None, p.bound_text, _why_foreign(p)))
    return Adoption(adopt, tenants, report)


def differing(
    parent: ParentInfo,
    adopted: list[tuple[PartitionInfo, TenantValue | None]],
    traits: dict[int, Traits],
    options: tuple[str, ...] = (),
) -> list[Found]:
    """Adopted partitions that do not carry what their parent declares (`Traits`), or the
    storage parameters their table gives each new partition (`options`), and how.

    A partition partman creates gets them; one it adopts is someone else's work, so it is
    reported and left as it is."""
    out = []
    expected = parent.traits.with_options(options)
    for p, tenant in adopted:
        mine = traits.get(p.oid)
        found = [] if mine is None else expected.differences(mine)
        if found:
            reason = "; ".join(found) + "; left as it is (partman never changes an adopted one)"
            out.append(
                Found(
                    parent.qualified_name,
                    p.qualified_name,
                    tenant_text(tenant),
                    p.bound_text,
                    reason,
                )
            )
    return out


def _why_foreign(p: PartitionInfo) -> str:
    if p.is_default:
        return "the default partition"
    if p.is_partitioned:
        return "itself partitioned (sub-partitions are not managed, but for sub_partition_by)"
    if p.detach_pending:
        return "a DETACH CONCURRENTLY is pending on it"
    if p.bound is None:
        return "a bound shape partman does not read"
    return "spans several tenants or is unbounded"


def list_foreign(parent: ParentInfo, catalog: Catalog, time_key: KeyColumn) -> list[Found]:
    """The partitions of a LIST parent that are not one tenant's RANGE-by-time partition:
    several tenants in one, a plain table, another key, the default. partman leaves them alone
    (and a tenant listed in one gets no partition of its own): the import says so."""
    own = {(p.schema, p.name) for p in subtrees(parent, catalog, time_key).values()}
    out: list[Found] = []
    for p in parent.partitions:
        if (p.schema, p.name) in own:
            continue
        bound = p.bound
        if bound is not None and bound.is_default:
            reason = "the LIST parent's default partition: rows of no listed tenant"
        elif bound is not None and len(bound.lower) > 1:
            reason = (
                f"holds {len(bound.lower)} tenants: partman manages a partition per tenant, "
                f"PARTITION BY RANGE ({time_key.name})"
            )
        else:
            reason = f"not PARTITION BY RANGE ({time_key.name}): left alone"
        out.append(Found(parent.qualified_name, p.qualified_name, None, p.bound_text, reason))
    return out
