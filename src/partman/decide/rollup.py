"""Roll-ups, planned (pure): which coarse periods of a table are ready to be merged.

A coarse period (`Table.rollup_interval`, aligned on `Config.timezone`'s calendar like any
period) is rolled up once all of it ends at or before now minus `Table.rollup_after`, and only
when every partition inside it is partman's own, attached, of one tenant, with exact bounds,
and none reaches outside it: a foreign, spanning or detach-pending partition keeps the period
as it is (said in a notice). A period retention would retire anyway is left to retention. The
coarse partition a previous pass began (its "staging" record, action "rollup") is resumed, or
dropped when its period no longer qualifies: it is never the only home of a row (the swap that
makes it one is a single transaction), so dropping it loses nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ..model.bounds import BoundValue
from ..model.columns import ColumnKind, TenantValue, tenant_from_text, tenant_text
from ..model.naming import partition_name, short_hash
from ..model.operations import (
    FinePartition,
    ForgetPartition,
    MoveRows,
    Notice,
    Operation,
    RollupPartition,
)
from ..model.snapshot import (
    OwnedPartition,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    Traits,
    is_owner_comment,
)
from .domains import Domain, Position


class Piece(Protocol):
    """A partition's share of a tenant's timeline (`planner.Piece`)."""

    @property
    def lower(self) -> Position: ...
    @property
    def upper(self) -> Position: ...
    @property
    def partition(self) -> PartitionInfo: ...
    @property
    def regular(self) -> bool: ...


class TenantPolicy(Protocol):
    """A tenant's policy (`planner.TenantPolicy`): only its tenant matters here."""

    @property
    def tenant(self) -> TenantValue | None: ...


class TableContext(Protocol):
    """What every tenant of one table shares during planning (`planner.TableContext`)."""

    @property
    def table(self) -> TableRecord: ...
    @property
    def parent(self) -> ParentInfo: ...
    @property
    def domain(self) -> Domain: ...
    @property
    def now(self) -> Position: ...
    @property
    def tz(self) -> ZoneInfo: ...
    @property
    def taken(self) -> set[str]: ...
    @property
    def traits(self) -> Traits: ...
    @property
    def move(self) -> MoveRows | None: ...
    @property
    def like(self) -> tuple[str, str] | None: ...
    @property
    def keyed_tenant(self) -> bool: ...


ROLLUP_ACTION = "rollup"
"""The `action` of a coarse partition's "staging" record, while it is built detached."""


def is_rollup_staging(o: OwnedPartition) -> bool:
    return o.state == "staging" and o.action == ROLLUP_ACTION


def coarse_domain(ctx: TableContext) -> Domain | None:
    """The table's line, counted in coarse periods; None when it has no roll-up."""
    table = ctx.table
    if table.rollup_interval is None or table.rollup_after is None or not ctx.domain.by_time:
        return None
    return dataclasses.replace(ctx.domain, interval=table.rollup_interval)


def rollups(
    ctx: TableContext,
    by_tenant: Mapping[TenantValue | None, Sequence[Piece]],
    policies: Sequence[TenantPolicy],
    cutoffs: dict[TenantValue | None, Position | None],
    owned: list[OwnedPartition],
    state: State,
    tenant_kind: ColumnKind | None,
) -> tuple[list[Operation], list[Notice]]:
    """The roll-ups of one parent: one operation per coarse period ready, per tenant; and the
    staging tables of earlier passes, resumed, dropped or forgotten."""
    staged = [o for o in owned if is_rollup_staging(o)]
    coarse = coarse_domain(ctx)
    if coarse is None and not staged:
        return [], []
    ops: list[Operation] = []
    notices: list[Notice] = []
    resumed: set[tuple[str, str]] = set()
    by_start: dict[tuple[str | None, Position], OwnedPartition] = {}
    for o in staged:
        if not o.attached and o.lower:
            lower = ctx.domain.from_value(ctx.domain.parse_text(o.lower), upper=False)
            by_start[(o.tenant_id, lower)] = o
    if coarse is not None:
        table = ctx.table
        assert table.rollup_after is not None
        cutoff = table.rollup_after.cutoff(ctx.now, ctx.tz)
        for policy in policies:
            pieces = by_tenant.get(policy.tenant, [])
            o_ops, o_notices = _tenant_rollups(
                ctx, coarse, policy.tenant, pieces, cutoff, cutoffs.get(policy.tenant), state
            )
            for op in o_ops:
                start = ctx.domain.from_value(op.lower, upper=False)  # type: ignore[arg-type]
                began = by_start.get((tenant_text(op.tenant), start))
                if began is not None and not began.exists:
                    continue  # its record is forgotten first (below); rolled up next pass
                if began is not None:
                    resumed.add((began.schema, began.name))
                    op = dataclasses.replace(
                        op,
                        partition_schema=began.schema,
                        partition_name=began.name,
                        resume=True,
                        reason="resume: " + op.reason,
                    )
                ops.append(op)
            notices += o_notices
    for o in staged:
        if (o.schema, o.name) in resumed:
            continue
        tenant = (
            None
            if o.tenant_id is None or tenant_kind is None
            else tenant_from_text(o.tenant_id, tenant_kind)
        )
        common: dict[str, Any] = {
            "parent_schema": ctx.parent.schema,
            "parent_name": ctx.parent.name,
            "tenant": tenant,
            "partition_schema": o.schema,
            "partition_name": o.name,
            "lower": ctx.domain.parse_text(o.lower) if o.lower else None,
            "upper": ctx.domain.parse_text(o.upper) if o.upper else None,
        }
        if not o.exists:
            ops.append(ForgetPartition(**common, reason="a roll-up's staging table is gone"))
        elif not o.attached:
            ops.append(
                RollupPartition(
                    **common,
                    reason="a roll-up begun by an earlier pass no longer applies to its period "
                    "(retention, or a partition changed): its detached copy is dropped, the "
                    "partitions keep every row",
                    abandon=True,
                )
            )
    return ops, notices


def _tenant_rollups(
    ctx: TableContext,
    coarse: Domain,
    tenant: TenantValue | None,
    pieces: Sequence[Piece],
    cutoff: Position,
    retention_cutoff: Position | None,
    state: State,
) -> tuple[list[RollupPartition], list[Notice]]:
    table = ctx.table
    ops: list[RollupPartition] = []
    notices: list[Notice] = []
    seen: set[int] = set()
    for piece in pieces:
        if piece.upper > cutoff:
            continue  # (a later piece's period may still be refused, with its notice)
        if not piece.regular:
            continue
        k = coarse.index(piece.lower)
        if k in seen:
            continue
        seen.add(k)
        lo, hi = coarse.bounds(k)
        if hi > cutoff:
            continue  # the coarse period is not all past rollup_after yet
        if retention_cutoff is not None and hi <= retention_cutoff:
            continue  # retention retires it whole
        inside = [p for p in pieces if p.lower < hi and p.upper > lo]
        if any(p.lower <= lo and p.upper >= hi for p in inside):
            continue  # rolled up already (or into something coarser: nothing to merge)
        if retention_cutoff is not None and any(p.upper <= retention_cutoff for p in inside):
            continue  # retention retires some of it this pass: the rest is rolled up next pass
        why = _refusal(ctx, inside, lo, hi, state)
        if why is not None:
            notices.append(
                Notice(
                    "info",
                    table.qualified_name,
                    f"[{coarse.show(lo)}, {coarse.show(hi)}) is past rollup_after "
                    f"({table.rollup_after}) but left as it is: {why}",
                    tenant_text(tenant),
                )
            )
            continue
        ops.append(_rollup(ctx, coarse, tenant, inside, lo, hi, cutoff))
    return ops, notices


def _refusal(
    ctx: TableContext, inside: Sequence[Piece], lo: Position, hi: Position, state: State
) -> str | None:
    """Why the partitions of [lo, hi) cannot be merged; None when they can."""
    for piece in inside:
        p = piece.partition
        if not piece.regular or piece.lower < lo or piece.upper > hi:
            return f"{p.qualified_name} spans tenants, is unbounded or reaches outside it"
        if p.is_partitioned:
            return f"{p.qualified_name} is itself partitioned"
        o = state.owned.get((p.schema, p.name))
        if o is None or not is_owner_comment(p.comment) or o.state != "attached":
            return f"{p.qualified_name} is not partman's (adopt it with `partman import`)"
    if ctx.move is not None:  # a default partition: a gap's rows there would block ATTACH
        cursor = lo
        for piece in inside:
            if piece.lower != cursor:
                return "the parent has a default partition and the period has a gap"
            cursor = piece.upper
        if cursor != hi:
            return "the parent has a default partition and the period has a gap"
    return None


def _rollup(
    ctx: TableContext,
    coarse: Domain,
    tenant: TenantValue | None,
    inside: Sequence[Piece],
    lo: Position,
    hi: Position,
    cutoff: Position,
) -> RollupPartition:
    domain, table = ctx.domain, ctx.table
    lower, upper = domain.to_value(lo), domain.to_value(hi)
    sub_day = coarse.time_interval.fixed
    label = f"{domain.label(lo, sub_day=sub_day)}_{domain.label(hi, sub_day=sub_day)[1:]}"
    named = tenant if ctx.keyed_tenant else None
    name = partition_name(ctx.parent.name, named, label)
    if name in ctx.taken:
        name = partition_name(ctx.parent.name, named, f"{label}_{short_hash(str(lo), str(hi))}")
    ctx.taken.add(name)
    keyed = tenant is not None and ctx.keyed_tenant
    lower_key: tuple[BoundValue, ...] = (tenant, lower) if keyed else (lower,)  # type: ignore[assignment]
    upper_key: tuple[BoundValue, ...] = (tenant, upper) if keyed else (upper,)  # type: ignore[assignment]
    fines = tuple(
        FinePartition(
            p.partition.schema,
            p.partition.name,
            domain.to_value(p.lower),
            domain.to_value(p.upper),
            p.partition.oid,
        )
        for p in inside
    )
    reason = (
        f"roll-up after {table.rollup_after}: {len(fines)} partition(s) of "
        f"[{domain.show(lo)}, {domain.show(hi)}) merged into one {table.rollup_interval} "
        f"partition (the period ends at or before {domain.show(cutoff)})"
    )
    return RollupPartition(
        parent_schema=ctx.parent.schema,
        parent_name=ctx.parent.name,
        tenant=tenant,
        partition_schema=ctx.parent.schema,
        partition_name=name,
        lower=lower,
        upper=upper,
        reason=reason,
        lower_key=lower_key,
        upper_key=upper_key,
        fines=fines,
        time_column=table.time_column,
        columns=tuple(c.name for c in ctx.parent.columns.values() if not c.generated),
        tenant_column=table.tenant_column if tenant is not None else None,
        traits=ctx.traits,
        like=ctx.like,
    )
