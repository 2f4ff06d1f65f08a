"""Desired against actual: (metadata state, catalog snapshot, now) -> Plan. No I/O.

Almost every decision partman makes is taken here, where it can be tested without a server:
which periods each tenant needs, which of them the catalog already covers (whatever the
partitions are called), which partitions have expired under which tenant's policy, and which
of those partman may drop because it created or adopted them.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from ..errors import CatalogError
from ..model.bounds import BoundValue, Special
from ..model.columns import ColumnKind, KeyColumn, TenantValue, tenant_from_text, tenant_text
from ..model.intervals import Interval, Retention
from ..model.keys import IdInterval, IdRetention, KeyValue
from ..model.naming import partition_name, short_hash
from ..model.operations import (
    CreateDefaultPartition,
    CreatePartition,
    CreateTenantPartition,
    ForgetPartition,
    HashLevel,
    MoveRows,
    Notice,
    Operation,
    Plan,
    RetirePartition,
    Stage,
)
from ..model.snapshot import (
    Catalog,
    OwnedPartition,
    ParentInfo,
    PartitionInfo,
    State,
    TableRecord,
    Traits,
    is_owner_comment,
)
from .domains import TIME_MAX, TIME_MIN, Domain, Position, domain_of
from .domains import TimeDomain as TimeDomain
from .rollup import is_rollup_staging, rollups
from .validate import check_record

UTC = dt.UTC
_MIN = TIME_MIN
_MAX = TIME_MAX
RETENTION_PROBE = 4
"""Id windows checked per tenant and pass when retention goes by a time column's age: the
oldest closed ones, whose newest row the executor reads before anything is dropped (ids grow
with time, so once one is too young the later ones are too)."""


class Piece(NamedTuple):
    """A partition's share of one tenant's timeline, in aligned space (a named tuple: a pass
    makes one per partition)."""

    lower: Position
    upper: Position
    partition: PartitionInfo
    regular: bool  # one tenant, exact finite bounds: partman may adopt/drop it


@dataclass(frozen=True)
class TenantTimeline:
    tenant: TenantValue | None
    pieces: list[Piece]


def timelines(
    parent: ParentInfo, tenant_key: KeyColumn | None, domain: Domain, nested: str | None = None
) -> tuple[dict[TenantValue | None, list[Piece]], list[PartitionInfo]]:
    """Group a parent's partitions by tenant; the rest (default, spanning, unreadable) apart.
    A partition partitioned by `nested` (the strategy of the table's sub-partitions, 'h') is
    one like the others; one partitioned otherwise is left alone."""
    by_tenant: dict[TenantValue | None, list[Piece]] = {}
    others: list[PartitionInfo] = []
    from_value, exact = domain.from_value, domain.exact
    lowest, highest = domain.lowest, domain.highest
    new = tuple.__new__  # Piece(...) without the keyword-capable __new__: ~3x faster
    for p in parent.partitions:
        bound = p.bound
        if bound is None or bound.is_default:
            others.append(p)
            continue
        irregular = p.detach_pending or (p.sub_strategy is not None and p.sub_strategy != nested)
        if irregular:  # never adopted or dropped, but it still covers its range: creating
            others.append(p)  # into it would fail
        lower, upper, _ = bound
        lo_value, hi_value = lower[-1], upper[-1]
        # An instant already in UTC is its own aligned time, and finite: the common case, kept
        # cheap (a pass looks at every partition).
        if type(lo_value) is dt.datetime and lo_value.tzinfo is UTC:
            lo_time, lo_finite = lo_value, True
        else:
            lo_time = from_value(lo_value, upper=False)
            lo_finite = exact(lo_value)
        if type(hi_value) is dt.datetime and hi_value.tzinfo is UTC:
            hi_time, hi_finite = hi_value, True
        else:
            hi_time = from_value(hi_value, upper=True)
            hi_finite = exact(hi_value)
        finite = lo_finite and hi_finite and not irregular
        if tenant_key is None:
            by_tenant.setdefault(None, []).append(new(Piece, (lo_time, hi_time, p, finite)))
            continue
        t_lo, t_hi = lower[0], upper[0]
        if t_lo is not t_hi or type(t_lo) not in _TENANT_TYPES:  # else: one tenant, surely
            if isinstance(t_lo, Special) or isinstance(t_hi, Special) or t_lo != t_hi:
                # Spans tenants: it covers the end tenants partly; the ones between depend on
                # the column's collation, which only the server knows. Creating into it fails
                # loudly.
                if isinstance(t_lo, _TENANT_TYPES):
                    by_tenant.setdefault(t_lo, []).append(new(Piece, (lo_time, highest, p, False)))
                if isinstance(t_hi, _TENANT_TYPES):
                    by_tenant.setdefault(t_hi, []).append(new(Piece, (lowest, hi_time, p, False)))
                if not irregular:
                    others.append(p)
                continue
            if not isinstance(t_lo, _TENANT_TYPES):
                if not irregular:
                    others.append(p)
                continue
        tenant = cast(TenantValue, t_lo)  # neither a special value nor a date, as seen above
        pieces = by_tenant.get(tenant)
        if pieces is None:
            pieces = by_tenant[tenant] = []
        pieces.append(new(Piece, (lo_time, hi_time, p, finite)))
    for pieces in by_tenant.values():
        pieces.sort(key=_order)
    return by_tenant, others


_TENANT_TYPES = (str, int, uuid.UUID)
_order = operator.itemgetter(0, 1)  # a piece's (lower, upper)


def gaps(
    lower: Position, upper: Position, pieces: Sequence[Piece], start: int = 0
) -> list[tuple[Position, Position]]:
    """The parts of [lower, upper) no piece covers (pieces sorted by lower bound; those before
    `start` are known to end at or before `lower`)."""
    result: list[tuple[Position, Position]] = []
    cursor = lower
    for i in range(start, len(pieces)):
        piece = pieces[i]
        if piece.lower >= upper:
            break  # sorted by lower bound: no later piece reaches into [lower, upper) either
        if piece.upper <= cursor:
            continue
        if piece.lower > cursor:
            result.append((cursor, piece.lower))
        cursor = max(cursor, piece.upper)
        if cursor >= upper:
            break
    if cursor < upper:
        result.append((cursor, upper))
    return result


@dataclass(frozen=True)
class TenantPolicy:
    tenant: TenantValue | None
    retention: Retention | IdRetention | None
    partition_count: int
    action: str = "drop"


def policies(
    table: TableRecord, state: State, tenant_kind: ColumnKind | None
) -> list[TenantPolicy]:
    if table.tenant_column is None:
        return [TenantPolicy(None, table.retention, table.partition_count, table.retention_action)]
    assert tenant_kind is not None
    return [
        TenantPolicy(
            tenant_from_text(t.tenant_id, tenant_kind),
            t.effective_retention(table),
            t.effective_count(table),
            t.effective_action(table),
        )
        for t in state.tenants.get(table.id, ())
    ]


def plan(state: State, catalog: Catalog, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> Plan:
    """The whole pass: every managed table, every tenant, creates then drops."""
    creates: list[Operation] = []
    drops: list[Operation] = []
    notices: list[Notice] = []
    in_use = NamesInUse(catalog, state)  # shared by all the tables of a schema
    for table in state.tables:
        try:
            parent, tenant_key, time_key = check_record(table, catalog)
            names = functools.partial(in_use.of, parent.schema)
            c, d, n = plan_table(
                table, parent, state, tenant_key, time_key, now, zone, names, catalog
            )
        except CatalogError as error:
            notices.append(Notice("error", table.qualified_name, f"skipped: {error}"))
            continue
        except ValueError as error:  # e.g. a stored tenant id the column can no longer hold
            message = (
                f"skipped: its registration no longer fits the table ({error}); re-register "
                "the table's tenants or fix the column"
            )
            notices.append(Notice("error", table.qualified_name, message))
            continue
        creates += c
        drops += d
        notices += n
    return Plan(
        now=now,
        operations=tuple(creates + drops),
        notices=tuple(notices),
        tables=tuple(t.qualified_name for t in state.tables),
    )


class NamesInUse:
    """The partition names in use in each schema, the catalog's and partman's records', worked
    out when first asked: a pass that creates nothing never needs them."""

    def __init__(self, catalog: Catalog, state: State) -> None:
        self._catalog = catalog
        self._state = state
        self._by_schema: dict[str, set[str]] | None = None

    def of(self, schema: str) -> set[str]:
        """The names in use in `schema`: the set itself, for names planned to be added."""
        if self._by_schema is None:
            by_schema: dict[str, set[str]] = {}
            for info in self._catalog.values():
                for p in info.partitions:
                    by_schema.setdefault(p.schema, set()).add(p.name)
            for o in self._state.owned.values():
                if o.exists:
                    by_schema.setdefault(o.schema, set()).add(o.name)
            self._by_schema = by_schema
        return self._by_schema.setdefault(schema, set())


@dataclass(frozen=True)
class TableContext:
    """What every tenant of one table shares during planning."""

    table: TableRecord
    parent: ParentInfo
    domain: Domain
    now: dt.datetime  # the clock, in aligned space (time domains; an id table's is the real now)
    names: Callable[[], set[str]]  # the names in use where this parent's partitions go
    move: MoveRows | None  # the default partition, when there is one
    # Every tenant of the table asks for the same periods: each is computed once per table.
    _periods: dict[tuple[int, int], list[tuple[int, Position, Position]]] = field(
        default_factory=dict
    )
    _indexes: dict[Position, int] = field(default_factory=dict)

    @functools.cached_property
    def taken(self) -> set[str]:
        """Partition names in use under this parent (and those planned so far)."""
        return self.names()

    @functools.cached_property
    def traits(self) -> Traits:
        """What a new partition carries: its parent's traits, and the table's storage
        parameters (PostgreSQL refuses them on the partitioned parent)."""
        return self.parent.traits.with_options(self.table.options)

    like: tuple[str, str] | None = None
    """What new tables copy when it is not `parent` (a LIST tenant's new partition)."""
    keyed_tenant: bool = True
    """The tenant is part of the parent's key (RANGE (tenant, time)); False under a LIST
    tenant's own partition, keyed by time alone."""

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return self.domain.align_tz

    @functools.cached_property
    def hash_level(self) -> HashLevel | None:
        table = self.table
        if table.sub_partition_by is None or table.sub_partition_modulus is None:
            return None
        return HashLevel(table.sub_partition_by, table.sub_partition_modulus)

    @property
    def interval(self) -> Interval | IdInterval:
        return self.table.interval

    def index(self, position: Position) -> int:
        """The number of the period holding `position` (memoized)."""
        found = self._indexes.get(position)
        if found is None:
            found = self._indexes[position] = self.domain.index(position)
        return found

    def periods(self, first: int, last: int) -> list[tuple[int, Position, Position]]:
        """(index, FROM, TO) of periods `first` through `last` (memoized)."""
        found = self._periods.get((first, last))
        if found is None:
            bounds = self.domain.bounds
            found = [(k, *bounds(k)) for k in range(first, last + 1)]
            self._periods[(first, last)] = found
        return found

    def position(self, tenant: TenantValue | None, pieces: list[Piece]) -> Position:
        """Where the tenant is now: the clock for time, the newest id for ids (read from the
        newest partitions into `ParentInfo.positions`; without one, the lowest window partman
        knows, or 0)."""
        if self.domain.by_time:
            return self.now
        found = self.parent.positions.get(tenant if self.keyed_tenant else None)
        if found is not None:
            return found
        regular = [p.lower for p in pieces if p.regular]
        return min(regular) if regular else 0


@dataclass
class SharedMaths:
    """What every tenant of a LIST table shares: each tenant's own partition is a parent of
    its own, planned on its own, but all of them on one axis (the table's interval, time
    column and zone), so its periods and the period of each position are worked out once for
    the table, not once per tenant (a quarter of a pass with nothing to do, at 10,000)."""

    domain: Domain
    periods: dict[tuple[int, int], list[tuple[int, Position, Position]]] = field(
        default_factory=dict
    )
    indexes: dict[Position, int] = field(default_factory=dict)


def plan_table(
    table: TableRecord,
    parent: ParentInfo,
    state: State,
    tenant_key: KeyColumn | None,
    time_key: KeyColumn,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    taken: Callable[[], set[str]] | None = None,
    catalog: Catalog | None = None,
) -> tuple[list[Operation], list[Operation], list[Notice]]:
    if table.list_tenants:
        assert tenant_key is not None
        return plan_list_table(
            table, parent, state, catalog or {}, tenant_key, time_key, now, zone, taken
        )
    tenant_kind = None if tenant_key is None else tenant_key.kind
    return _plan_parent(
        table,
        parent,
        state,
        tenant_key,
        time_key,
        now,
        zone,
        taken,
        policies(table, state, tenant_kind),
    )


def _plan_parent(
    table: TableRecord,
    parent: ParentInfo,
    state: State,
    tenant_key: KeyColumn | None,
    time_key: KeyColumn,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    taken: Callable[[], set[str]] | None,
    wanted: list[TenantPolicy],
    *,
    tenant: TenantPolicy | None = None,
    like: tuple[str, str] | None = None,
    shared: SharedMaths | None = None,
) -> tuple[list[Operation], list[Operation], list[Notice]]:
    """One parent's partitions against the policies of its tenants. `tenant`: the parent is
    that one tenant's own partition (LIST -> RANGE), keyed by time alone; `shared`: the axis
    its table's other tenants use too."""
    domain = domain_of(table, time_key, zone) if shared is None else shared.domain
    default = parent.default_partition
    move = None
    if default is not None:
        move = MoveRows(
            default.schema,
            default.name,
            tuple(c.name for c in parent.columns.values() if not c.generated),
            None if tenant_key is None else tenant_key.name,
            time_key.name,
        )
    owned = state.owned_by_parent.get((parent.schema, parent.name), [])
    if taken is None:

        def taken() -> set[str]:
            return {p.name for p in parent.partitions} | {o.name for o in owned if o.exists}

    aligned_now = domain.now(now) if domain.by_time else now
    ctx = TableContext(
        table,
        parent,
        domain,
        aligned_now,
        taken,
        move,
        _periods={} if shared is None else shared.periods,
        _indexes={} if shared is None else shared.indexes,
        like=like,
        keyed_tenant=tenant is None,
    )
    by_tenant, others = timelines(parent, tenant_key, domain, nested_strategy(table))
    if tenant is not None:  # the tenant's own partition: its timeline is the tenant's
        by_tenant = {tenant.tenant: by_tenant.get(None, [])}
    creates: list[Operation] = []
    drops: list[Operation] = []
    notices: list[Notice] = []
    tenant_kind = None if tenant_key is None else tenant_key.kind
    if tenant is not None:
        tenant_kind = _kind_of(tenant.tenant)
    policy_of = {p.tenant: p for p in wanted}
    if table.default_partition and default is None:
        creates.append(_create_default(ctx))
    creates += resume_staging(ctx, owned, by_tenant, tenant_kind)
    cutoffs: dict[TenantValue | None, Position | None] = {}
    for policy in policy_of.values():
        pieces = by_tenant.get(policy.tenant, [])
        position = ctx.position(policy.tenant, pieces)
        notices += stray_ids(ctx, policy, position)
        cutoff = cutoffs[policy.tenant] = retention_cutoff(ctx, policy, position)
        creates += premake(ctx, policy, pieces, cutoff, position)
        if cutoff is not None:
            d, n = retention(ctx, policy, pieces, cutoff, state, position)
            drops += d
            notices += n
    r, n = rollups(ctx, by_tenant, list(policy_of.values()), cutoffs, owned, state, tenant_kind)
    drops[:0] = r  # before retention: a roll-up never touches what retention retires
    notices += n
    d, n = repairs(ctx, owned, others, policy_of, tenant_kind)
    drops += d
    notices += n
    if table.archive_schema is None and any(op.kind == "archive" for op in drops):
        message = (
            "retention_action 'archive' needs an archive_schema on the table; those "
            "partitions are left alone"
        )
        notices.append(Notice("error", table.qualified_name, message))
        drops = [op for op in drops if op.kind != "archive"]
    if table.export_location is None and any(op.kind == "export" for op in drops):
        message = (
            "retention_action 'export' needs an export_location on the table; those "
            "partitions are left alone"
        )
        notices.append(Notice("error", table.qualified_name, message))
        drops = [op for op in drops if op.kind != "export"]
    return creates, drops, notices


def _kind_of(tenant: TenantValue | None) -> ColumnKind | None:
    """The kind of column a tenant value comes from (to read stored ids back)."""
    if isinstance(tenant, uuid.UUID):
        return ColumnKind.UUID
    if isinstance(tenant, int):
        return ColumnKind.INTEGER
    return None if tenant is None else ColumnKind.TEXT


def plan_list_table(
    table: TableRecord,
    parent: ParentInfo,
    state: State,
    catalog: Catalog,
    tenant_key: KeyColumn,
    time_key: KeyColumn,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    taken: Callable[[], set[str]] | None,
) -> tuple[list[Operation], list[Operation], list[Notice]]:
    """LIST (tenant) -> RANGE (time): each tenant's own partition is a parent of its periods,
    planned like a single-tenant table under that tenant's policy. A tenant without one gets
    it, with its periods, in one operation that attaches it last."""
    tenant_parts = tenant_partitions(parent)
    creates: list[Operation] = []
    drops: list[Operation] = []
    notices: list[Notice] = []
    names = taken or (lambda: {p.name for p in parent.partitions})
    claimed = {  # every value some other partition holds: a new one would overlap it
        value: p
        for p in parent.partitions
        if p.bound is not None and not p.bound.is_default
        for value in p.bound.lower
    }
    shared = SharedMaths(domain_of(table, time_key, zone))
    for policy in policies(table, state, tenant_key.kind):
        assert policy.tenant is not None
        own = tenant_parts.get(policy.tenant)
        if own is None and policy.tenant in claimed:
            other = claimed[policy.tenant]
            shape = (
                "a partition of several tenants"
                if other.bound is not None and len(other.bound.lower) > 1
                else "not PARTITION BY RANGE "
                f"({time_key.name})"
            )
            message = (
                f"tenant {policy.tenant} is in {other.qualified_name}, {shape}, so it cannot "
                "have a partition of its own; left alone (detach it and give the tenant a "
                f"partition FOR VALUES IN ({policy.tenant}) PARTITION BY RANGE "
                f"({time_key.name}), or remove the tenant)"
            )
            notices.append(Notice("error", table.qualified_name, message, str(policy.tenant)))
            continue
        if own is None:
            creates.append(_new_tenant(table, parent, state, time_key, now, zone, names, policy))
            continue
        sub = catalog.get((own.schema, own.name))
        if sub is None or sub.key is None or [c.name for c in sub.key] != [time_key.name]:
            message = (
                f"{own.qualified_name}, the partition of tenant {policy.tenant}, is not "
                f"PARTITION BY RANGE ({time_key.name}); left alone"
            )
            notices.append(Notice("error", table.qualified_name, message, str(policy.tenant)))
            continue
        c, d, n = _plan_parent(
            table,
            sub,
            state,
            None,
            time_key,
            now,
            zone,
            names,
            [policy],
            tenant=policy,
            shared=shared,
        )
        creates += c
        drops += d
        notices += n
    return creates, drops, notices


def tenant_partitions(parent: ParentInfo) -> dict[TenantValue, PartitionInfo]:
    """A LIST parent's partitions of one tenant each, themselves partitioned by RANGE; anything
    else under it (several tenants in one partition, a default, a plain table) is foreign and
    left alone."""
    out: dict[TenantValue, PartitionInfo] = {}
    for p in parent.partitions:
        bound = p.bound
        if bound is None or bound.is_default or len(bound.lower) != 1 or p.sub_strategy != "r":
            continue
        value = bound.lower[0]
        if isinstance(value, _TENANT_TYPES):
            out[value] = p
    return out


def subtrees(
    parent: ParentInfo, catalog: Catalog, time_key: KeyColumn
) -> dict[TenantValue, ParentInfo]:
    """Each tenant's own partition of a LIST parent, as the parent of its periods (those whose
    key is the time column alone)."""
    out: dict[TenantValue, ParentInfo] = {}
    for tenant, p in tenant_partitions(parent).items():
        sub = catalog.get((p.schema, p.name))
        if sub is not None and sub.key is not None and [c.name for c in sub.key] == [
            time_key.name
        ]:
            out[tenant] = sub
    return out


def _new_tenant(
    table: TableRecord,
    parent: ParentInfo,
    state: State,
    time_key: KeyColumn,
    now: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    names: Callable[[], set[str]],
    policy: TenantPolicy,
) -> Operation:
    """A tenant's partition of a LIST parent, with its periods: planned against an empty
    partition of that name, made in one transaction, attached to the parent last."""
    assert policy.tenant is not None
    taken = names()
    name = partition_name(parent.name, policy.tenant, "").rstrip("_")
    if name in taken:
        name = partition_name(parent.name, policy.tenant, short_hash(str(policy.tenant)))
    taken.add(name)
    sub = ParentInfo(
        oid=0,
        schema=parent.schema,
        name=name,
        relkind="p",
        strategy="r",
        key=(time_key,),
        columns=parent.columns,
        partitions=(),
        traits=parent.traits,
    )
    children, _, _ = _plan_parent(
        table,
        sub,
        state,
        None,
        time_key,
        now,
        zone,
        lambda: taken,
        [policy],
        tenant=policy,
        like=(parent.schema, parent.name),
    )
    return CreateTenantPartition(
        parent_schema=parent.schema,
        parent_name=parent.name,
        tenant=policy.tenant,
        partition_schema=parent.schema,
        partition_name=name,
        lower=None,
        upper=None,
        reason=f"new tenant: its partition of the LIST parent, with {len(children)} period(s)",
        time_column=time_key.name,
        children=tuple(c for c in children if isinstance(c, CreatePartition)),
        traits=parent.traits,
    )


def _create_default(ctx: TableContext) -> CreatePartition | Operation:
    name = partition_name(ctx.parent.name, None, "default")
    if name in ctx.taken:
        name = partition_name(ctx.parent.name, None, f"default_{short_hash(ctx.parent.name)}")
    ctx.taken.add(name)
    return CreateDefaultPartition(
        parent_schema=ctx.parent.schema,
        parent_name=ctx.parent.name,
        tenant=None,
        partition_schema=ctx.parent.schema,
        partition_name=name,
        lower=None,
        upper=None,
        reason="default_partition is on and the parent has none",
        traits=ctx.traits,
    )


def resume_staging(
    ctx: TableContext,
    owned: list[OwnedPartition],
    by_tenant: dict[TenantValue | None, list[Piece]],
    tenant_kind: ColumnKind | None,
) -> list[Operation]:
    """A pass stopped while moving default rows into a new table: finish it first, with the
    bounds recorded when it started, before anything else could claim that range."""
    out: list[Operation] = []
    staging = [
        o
        for o in owned
        if o.state == "staging" and o.exists and not o.attached and not is_rollup_staging(o)
    ]
    for o in sorted(staging, key=_key):
        tenant = (
            None
            if o.tenant_id is None or tenant_kind is None
            else tenant_from_text(o.tenant_id, tenant_kind)
        )
        lower = ctx.domain.parse_text(o.lower)
        upper = ctx.domain.parse_text(o.upper)
        op = CreatePartition(
            parent_schema=ctx.parent.schema,
            parent_name=ctx.parent.name,
            tenant=tenant,
            partition_schema=o.schema,
            partition_name=o.name,
            lower=lower,
            upper=upper,
            reason="resume: finish moving rows from the default partition, then attach",
            lower_key=(tenant, lower) if tenant is not None and ctx.keyed_tenant else (lower,),
            upper_key=(tenant, upper) if tenant is not None and ctx.keyed_tenant else (upper,),
            move=ctx.move,
            resume_staging=True,
        )
        out.append(op)
        fake = PartitionInfo(0, o.schema, o.name, "", None, None, None, False, None)
        pieces = by_tenant.setdefault(tenant, [])
        pieces.append(
            Piece(
                ctx.domain.from_value(lower, upper=False),
                ctx.domain.from_value(upper, upper=True),
                fake,
                False,
            )
        )
        pieces.sort(key=_order)
    return out


def repairs(
    ctx: TableContext,
    owned: list[OwnedPartition],
    others: list[PartitionInfo],
    policy_of: dict[TenantValue | None, TenantPolicy],
    tenant_kind: ColumnKind | None,
) -> tuple[list[Operation], list[Notice]]:
    """Finish what an interrupted pass left: pending detaches, detached-but-not-dropped
    partitions, and ownership records of tables that are gone."""
    ops: list[Operation] = []
    notices: list[Notice] = []
    table = ctx.table
    pending = {(p.schema, p.name): p for p in others if p.detach_pending}
    unfinished = [
        o
        for o in owned
        if not o.exists
        or (not o.attached and o.state in _RETIRING)
        or (pending and (o.schema, o.name) in pending)
    ]  # usually none: every other record is a partition in use, nothing to finish
    for o in sorted(unfinished, key=_key):
        tenant = (
            None
            if o.tenant_id is None or tenant_kind is None
            else tenant_from_text(o.tenant_id, tenant_kind)
        )
        policy = policy_of.get(tenant)
        action = o.action or (policy.action if policy else table.retention_action)
        common: dict[str, Any] = {
            "parent_schema": ctx.parent.schema,
            "parent_name": ctx.parent.name,
            "tenant": tenant,
            "partition_schema": o.schema,
            "partition_name": o.name,
            "lower": ctx.domain.parse_text(o.lower) if o.lower else None,
            "upper": ctx.domain.parse_text(o.upper) if o.upper else None,
        }
        if is_rollup_staging(o):
            continue  # decide/rollup.py finishes or drops it
        if not o.exists:
            if o.state != "staging":
                ops.append(ForgetPartition(**common, reason="its table no longer exists"))
            continue
        p = pending.pop((o.schema, o.name), None)
        if p is not None:
            ops.append(
                RetirePartition(
                    **common,
                    reason="an interrupted DETACH CONCURRENTLY: FINALIZE it, then " + action,
                    action=action,
                    archive_schema=table.archive_schema,
                    export_location=table.export_location,
                    oid=p.oid,
                    bound_text=p.bound_text,
                    time_column=_checked_column(table),
                    stage=Stage.PENDING,
                    sub_partitioned=nested_strategy(table) is not None,
                )
            )
        elif o.state in _RETIRING and not o.attached:
            ops.append(
                RetirePartition(
                    **common,
                    reason=f"detached by an interrupted pass; {action} it now",
                    action=action,
                    archive_schema=table.archive_schema,
                    export_location=table.export_location,
                    time_column=_checked_column(table),
                    stage=Stage.DETACHED,
                    sub_partitioned=nested_strategy(table) is not None,
                )
            )
    for p in pending.values():
        notices.append(
            Notice(
                "warning",
                table.qualified_name,
                f"a DETACH CONCURRENTLY is pending on {p.qualified_name}, a partition partman "
                "does not own; finish it with ALTER TABLE ... DETACH PARTITION ... FINALIZE",
                partition=p.qualified_name,
            )
        )
    return ops, notices


_RETIRING = ("detaching", "detached")


def _key(o: OwnedPartition) -> tuple[str, str]:
    return (o.schema, o.name)


def _checked_column(table: TableRecord) -> str:
    """The column whose newest row retention checks: the key, or an id table's time column."""
    return table.retention_column or table.time_column


def retention_cutoff(
    ctx: TableContext, policy: TenantPolicy, position: Position
) -> Position | None:
    """The position partitions must end at or before to expire; None: kept forever.

    Time: now minus the period. Ids by distance: the newest id minus it. Ids by a time
    column's age: the start of the window holding the newest id (only closed windows are
    candidates; their rows decide)."""
    kept = policy.retention
    if kept is None:
        return None
    if isinstance(kept, IdRetention):
        held = _held(ctx, policy) if stray_ids(ctx, policy, position) else None
        return kept.cutoff(int(position if held is None else held))
    if ctx.domain.by_time:
        return kept.cutoff(ctx.now, ctx.tz)
    return ctx.domain.bounds(ctx.index(position))[0]


def stray_ids(ctx: TableContext, policy: TenantPolicy, position: Position) -> list[Notice]:
    """An id table whose default partition holds ids far past its windows' newest (more than
    partition_count + 1 windows): likely one bad row. Windows are made for it (its rows move
    there, none is lost) but retention by distance goes by the windows' newest id instead (ids
    waiting just past the windows count, as they will be in a window after this pass); say
    so, for a person to look at the row."""
    if ctx.domain.by_time:
        return []
    held = _held(ctx, policy)
    if held is None:
        return []
    ahead = ctx.index(position) - ctx.index(held)
    if ahead <= policy.partition_count + 1:
        return []
    message = (
        f"ids waiting in the default partition reach {position}, {ahead} windows past the "
        f"newest id in the partitions ({held}): windows are made for them, but retention by "
        f"distance goes by {held}; look for a stray row"
    )
    return [Notice("warning", ctx.table.qualified_name, message, tenant_text(policy.tenant))]


def _held(ctx: TableContext, policy: TenantPolicy) -> int | None:
    """The newest id in the windows themselves (ParentInfo.newest_in_windows)."""
    return ctx.parent.newest_in_windows.get(policy.tenant if ctx.keyed_tenant else None)


def premake(
    ctx: TableContext,
    policy: TenantPolicy,
    pieces: list[Piece],
    cutoff: Position | None,
    position: Position,
) -> list[Operation]:
    """The current period through `partition_count` ahead (from the retention window's start
    with backfill), less what existing partitions already cover, whatever their bounds. The
    current period holds `position`: now, or an id table's newest id."""
    current = ctx.index(position)
    first = current
    if ctx.table.backfill and cutoff is not None:
        first = min(first, ctx.index(cutoff))
    creates: list[Operation] = []
    count = len(pieces)
    skip = 0  # pieces that end before the period under way, so before every later one
    for index, lo, hi in ctx.periods(first, current + policy.partition_count):
        if cutoff is not None and hi <= cutoff and index != current:
            continue  # backfill never creates what retention would drop at once
        while skip < count and pieces[skip].upper <= lo:
            skip += 1
        if skip < count and pieces[skip].lower <= lo and pieces[skip].upper >= hi:
            continue  # one partition covers the whole period: the steady state, kept cheap
        if index == current:
            reason = "current period"
        elif index < current:
            reason = "backfill"
        else:
            reason = f"premake: {index - current} ahead"
        for gap_lo, gap_hi in gaps(lo, hi, pieces, skip):
            if cutoff is not None and gap_hi <= cutoff:
                continue  # retention would drop it on the next pass
            creates.append(
                _create(ctx, policy.tenant, gap_lo, gap_hi, (gap_lo, gap_hi) == (lo, hi), reason)
            )
    return creates


def retention(
    ctx: TableContext,
    policy: TenantPolicy,
    pieces: list[Piece],
    cutoff: Position,
    state: State,
    position: Position = None,
) -> tuple[list[Operation], list[Notice]]:
    """Partitions wholly before the cutoff: dropped if partman owns them, reported if not."""
    drops: list[Operation] = []
    notices: list[Notice] = []
    domain, table = ctx.domain, ctx.table.qualified_name
    tenant_shown = tenant_text(policy.tenant)
    by_age = not domain.by_time and isinstance(policy.retention, Retention)
    if by_age:  # an id table whose retention goes by a time column's age: check its rows
        assert isinstance(policy.retention, Retention)
        age_cutoff: KeyValue = _age_cutoff(ctx, policy.retention)
        probes = 0
    for piece in pieces:
        if piece.upper > cutoff or piece.upper == domain.highest:
            continue
        p = piece.partition
        owned = state.owned.get((p.schema, p.name))
        if p.detach_pending or (p.is_partitioned and p.sub_strategy != nested_strategy(ctx.table)):
            continue  # repairs() handles pending detaches; other sub-partitioned ones: not ours
        if not piece.regular:
            message = (
                f"{p.qualified_name} is past retention but spans tenants or is unbounded; "
                "left alone"
            )
            notices.append(Notice("info", table, message, tenant_shown, p.qualified_name))
        elif owned is None or not is_owner_comment(p.comment):
            why = (
                "partman did not create or adopt it"
                if owned is None
                else "its comment no longer marks it as partman's (drift)"
            )
            message = (
                f"{p.qualified_name} is past retention ({policy.retention}) but not dropped: "
                f"{why}; adopt it with "
                "import_existing_partitions (`partman import`) or drop it yourself"
            )
            notices.append(Notice("warning", table, message, tenant_shown, p.qualified_name))
        else:
            if by_age:
                if probes == RETENTION_PROBE:
                    continue
                probes += 1
            upper = domain.to_value(piece.upper)
            if by_age:
                reason = (
                    f"retention {policy.retention} by {ctx.table.retention_column}: every id "
                    f"below {domain.show(piece.upper)} is older than the newest window; dropped "
                    f"if its newest {ctx.table.retention_column} is before {_show(age_cutoff)}"
                )
                shown_cutoff = age_cutoff
            else:
                reason = (
                    f"retention {policy.retention}: ends {_show(upper)}, at or before the "
                    f"cutoff {_show(domain.to_value(cutoff))}"
                )
                shown_cutoff = domain.to_value(cutoff)
            drops.append(
                RetirePartition(
                    parent_schema=ctx.parent.schema,
                    parent_name=ctx.parent.name,
                    tenant=policy.tenant,
                    partition_schema=p.schema,
                    partition_name=p.name,
                    lower=domain.to_value(piece.lower),
                    upper=upper,
                    reason=reason,
                    action=policy.action,
                    archive_schema=ctx.table.archive_schema,
                    export_location=ctx.table.export_location,
                    oid=p.oid,
                    bound_text=p.bound_text,
                    estimated_rows=p.estimated_rows,
                    cutoff=shown_cutoff,
                    time_column=_checked_column(ctx.table),
                    concurrently=ctx.move is None,
                    sub_partitioned=p.is_partitioned,
                )
            )
    return drops, notices


def _age_cutoff(ctx: TableContext, kept: Retention) -> KeyValue:
    """now - retention, as a value of an id table's retention_column."""
    column = ctx.parent.columns[str(ctx.table.retention_column)]
    time = Domain(column.kind, ctx.domain.zone)
    return time.to_value(kept.cutoff(time.now(ctx.now), time.align_tz))


def _create(
    ctx: TableContext,
    tenant: TenantValue | None,
    lo: Position,
    hi: Position,
    whole: bool,
    reason: str,
) -> CreatePartition:
    domain = ctx.domain
    lower, upper = domain.to_value(lo), domain.to_value(hi)
    interval = ctx.interval
    sub_day = not whole or (isinstance(interval, Interval) and interval.fixed)
    label = domain.label(lo, sub_day=sub_day)
    if not whole:
        reason += f" (only the gap [{lower}, {upper}) is free)"
    named = tenant if ctx.keyed_tenant else None  # under a tenant's own partition: its name
    name = partition_name(ctx.parent.name, named, label)
    if name in ctx.taken:  # an odd existing partition already uses the name: keep both apart
        name = partition_name(ctx.parent.name, named, f"{label}_{short_hash(str(lo), str(hi))}")
    ctx.taken.add(name)
    lower_key: tuple[BoundValue, ...] = (lower,)
    upper_key: tuple[BoundValue, ...] = (upper,)
    if tenant is not None and ctx.keyed_tenant:
        lower_key, upper_key = (tenant, lower), (tenant, upper)
    return CreatePartition(
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
        move=ctx.move,
        traits=ctx.traits,
        hash_level=ctx.hash_level,
        like=ctx.like,
    )


def _show(value: KeyValue) -> str:
    """A bound for people: to the second, with its offset."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def nested_strategy(table: TableRecord) -> str | None:
    """How the table's periods are themselves partitioned: 'h' with `sub_partition_by`. A
    partition partitioned so is one partman makes and plans with like any other; anything
    else partitioned is left alone."""
    return None if table.sub_partition_by is None else "h"
