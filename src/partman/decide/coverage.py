"""What exists now, per managed table and tenant: partitions, owners, and runway. Pure.

Runway is how far ahead of now the tenant's partitions reach without a gap: the number an
on-call person wants first ("inserts for tomorrow will find a partition"), and the one the
metrics export. Whether a runway is short is judged here too, once, for every front end
(`RunwayVerdict`).
"""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError
from ..model.columns import TenantValue, tenant_from_text, tenant_text
from ..model.intervals import Interval
from ..model.keys import IdInterval
from ..model.snapshot import Catalog, State, is_owner_comment
from .domains import Domain, Position, domain_of
from .planner import Piece, nested_strategy, subtrees, timelines
from .validate import check_record


@dataclass(frozen=True)
class PartitionRow:
    """One partition of a managed table, as the catalog shows it."""

    table: str
    """The managed table, "schema.name"."""
    tenant: str | None
    """The tenant it belongs to; None for a single-tenant table, the default partition or a
    partition spanning tenants."""
    partition: str
    """The partition, "schema.name"."""
    lower: str
    """Start of its range (ISO 8601, "unbounded", or "" for the default partition)."""
    upper: str
    """End of its range, exclusive."""
    owner: str  # "created" | "adopted" | "foreign"
    """Who made it: "created" or "adopted" by partman (it may retire them), else "foreign"."""
    estimated_rows: int | None
    """The catalog's row estimate; None until the table is analyzed."""
    is_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "tenant": self.tenant,
            "partition": self.partition,
            "from": self.lower,
            "to": self.upper,
            "owner": self.owner,
            "estimated_rows": self.estimated_rows,
            "is_default": self.is_default,
        }


@dataclass(frozen=True)
class Coverage:
    """One managed (table, tenant): how many partitions, and how far ahead they reach."""

    table: str
    """The managed table, "schema.name"."""
    tenant: str | None
    """The tenant; None for a single-tenant table."""
    partitions: int
    """Its partitions."""
    covered_until: str | None  # end of the gap-free run of partitions that contains now
    """End of the gap-free run of partitions that contains now (ISO 8601); None when now has
    no partition."""
    runway_seconds: float  # 0 when now itself has no partition
    """Seconds from now to `covered_until`; 0 when now has no partition (or for ids)."""
    runway_ids: int | None = None
    """An id table's runway: ids from the newest id to `covered_until` (None for time)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "table": self.table,
            "tenant": self.tenant,
            "partitions": self.partitions,
            "covered_until": self.covered_until,
            "runway_seconds": self.runway_seconds,
        }
        if self.runway_ids is not None:
            out["runway_ids"] = self.runway_ids
        return out


@dataclass(frozen=True)
class Inventory:
    """What `Manager.inventory()` returns: what exists now, and how far ahead it reaches."""

    partitions: list[PartitionRow]
    """Every partition of the managed tables, default partitions included."""
    coverage: list[Coverage]
    """One entry per managed table (single-tenant) or per registered tenant."""


class RunwayVerdict(enum.Flag):
    """What is wrong with a (table, tenant)'s runway, held against its policy; `OK` (no flag)
    when nothing is.

    Two yardsticks, because two questions are asked: "will inserts fail soon?" (one period)
    and "have maintenance passes stopped?" (half the premake: a pass every sample_rate keeps a
    tenant near its full premake of partition_count periods). They are flags, not levels of
    one scale: with a partition_count of 1 half the premake is shorter than one period, with 2
    or more it is longer, so neither verdict implies the other. Each front end picks the ones
    it reports: `SHORT_OF_ONE_PERIOD` or `SHORT_OF_HALF_PREMAKE`.
    """

    OK = 0
    UNCOVERED = enum.auto()
    """No partition covers now: inserts fail, or go to a default partition."""
    UNDER_ONE_PERIOD = enum.auto()
    """Less than one period ahead, where the policy asks for partitions ahead (a
    partition_count of 0 asks for the current period only)."""
    UNDER_HALF_PREMAKE = enum.auto()
    """Less than half of partition_count periods ahead."""


SHORT_OF_ONE_PERIOD = RunwayVerdict.UNCOVERED | RunwayVerdict.UNDER_ONE_PERIOD
"""What `partman status` reports (exit 1): inserts fail within the next period unless a pass
runs. Made for monitoring a cron job."""
SHORT_OF_HALF_PREMAKE = RunwayVerdict.UNCOVERED | RunwayVerdict.UNDER_HALF_PREMAKE
"""What Django's partman.W001 and `manage.py partman status` report: passes have stopped,
said long before inserts fail."""


def runway_verdict(
    covered_until: str | None, runway: dt.timedelta, period: dt.timedelta, partition_count: int
) -> RunwayVerdict:
    """Every flag that holds for a runway (`Coverage.runway_seconds`, 0 when uncovered) of a
    table whose period is `period` and whose policy keeps `partition_count` periods ahead."""
    verdict = RunwayVerdict.OK
    if covered_until is None:
        verdict |= RunwayVerdict.UNCOVERED
    if partition_count > 0 and runway < period:
        verdict |= RunwayVerdict.UNDER_ONE_PERIOD
    if runway < partition_count * period / 2:
        verdict |= RunwayVerdict.UNDER_HALF_PREMAKE
    return verdict


@dataclass(frozen=True)
class Runway:
    """One managed (table, tenant)'s coverage held against its policy: the table's period and
    the partition_count that applies to the tenant."""

    coverage: Coverage
    interval: Interval | IdInterval
    """The table's partition_interval."""
    partition_count: int
    """The tenant's own partition_count, else the table's."""

    @property
    def runway(self) -> dt.timedelta:
        """How far ahead; an id table's counts an id as a second (its period is its width in
        seconds too), so that the verdict holds runway against periods alike."""
        if isinstance(self.interval, IdInterval):
            return dt.timedelta(seconds=self.coverage.runway_ids or 0)
        return dt.timedelta(seconds=self.coverage.runway_seconds)

    @property
    def period(self) -> dt.timedelta:
        if isinstance(self.interval, IdInterval):
            return dt.timedelta(seconds=self.interval.width)
        return self.interval.approx

    @property
    def premake(self) -> dt.timedelta:
        """How far ahead a pass leaves it: partition_count periods."""
        return self.partition_count * self.period

    @property
    def verdict(self) -> RunwayVerdict:
        return runway_verdict(
            self.coverage.covered_until, self.runway, self.period, self.partition_count
        )

    def short(self, bar: RunwayVerdict) -> bool:
        """Whether any flag of `bar` (`SHORT_OF_ONE_PERIOD`, `SHORT_OF_HALF_PREMAKE`) holds."""
        return bool(self.verdict & bar)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.coverage.to_dict(),
            "period_seconds": self.period.total_seconds(),
            "partition_count": self.partition_count,
        }


def runways(
    coverage: Iterable[Coverage],
    tables: Mapping[str, tuple[Interval | IdInterval, int]],
    tenant_counts: Mapping[tuple[str, str], int],
) -> list[Runway]:
    """Each coverage with its policy: `tables` maps "schema.name" to its (partition_interval,
    partition_count), `tenant_counts` a (table, tenant) to the tenant's own partition_count
    (absent: it inherits the table's). Coverage of a table not in `tables` is left out."""
    out = []
    for c in coverage:
        policy = tables.get(c.table)
        if policy is None:
            continue
        interval, count = policy
        out.append(Runway(c, interval, tenant_counts.get((c.table, c.tenant or ""), count)))
    return out


def inventory(
    state: State, catalog: Catalog, now: dt.datetime, zone: zoneinfo.ZoneInfo
) -> Inventory:
    rows: list[PartitionRow] = []
    coverage: list[Coverage] = []
    for table in state.tables:
        try:
            parent, tenant_key, time_key = check_record(table, catalog)
        except CatalogError:
            continue
        domain = domain_of(table, time_key, zone)
        nested = nested_strategy(table)
        positions: dict[TenantValue | None, int | None] = {}
        by_tenant: dict[TenantValue | None, list[Piece]] = {}
        if table.list_tenants:  # LIST -> RANGE: each tenant's own partition holds its periods
            for whose, sub in subtrees(parent, catalog, time_key).items():
                by_tenant[whose] = timelines(sub, None, domain, nested)[0].get(None, [])
                positions[whose] = sub.positions.get(None)
        else:
            by_tenant, _ = timelines(parent, tenant_key, domain, nested)
            positions.update(parent.positions)
        for p in parent.partitions:
            if p.is_default:
                rows.append(
                    PartitionRow(
                        table.qualified_name,
                        None,
                        p.qualified_name,
                        "",
                        "",
                        _owner(state, p),
                        p.estimated_rows,
                        is_default=True,
                    )
                )
        seen: set[int] = set()
        for tenant, pieces in by_tenant.items():
            for piece in pieces:
                if piece.partition.oid in seen:
                    continue
                seen.add(piece.partition.oid)
                rows.append(_row(table.qualified_name, tenant_text(tenant), piece, domain, state))
        managed: list[TenantValue | None]
        if tenant_key is None:
            managed = [None]
        else:
            managed = [
                tenant_from_text(t.tenant_id, tenant_key.kind)
                for t in state.tenants.get(table.id, ())
            ]
        for tenant in managed:
            pieces = by_tenant.get(tenant, [])
            here = position(domain, positions.get(tenant), pieces, now)
            until = _covered_until(pieces, here)
            ahead = None if until is None else until - here
            coverage.append(
                Coverage(
                    table=table.qualified_name,
                    tenant=tenant_text(tenant),
                    partitions=len(pieces),
                    covered_until=None if until is None else _show(domain, until),
                    runway_seconds=(
                        ahead.total_seconds() if isinstance(ahead, dt.timedelta) else 0.0
                    ),
                    runway_ids=None if domain.by_time else int(ahead or 0),
                )
            )
    return Inventory(rows, coverage)


def position(domain: Domain, newest: int | None, pieces: list[Piece], now: dt.datetime) -> Position:
    """Where a tenant is: now, or an id table's newest id (else its lowest window, else 0)."""
    if domain.by_time:
        return domain.now(now)
    if newest is not None:
        return newest
    regular = [p.lower for p in pieces if p.regular]
    return min(regular) if regular else 0


def _covered_until(pieces: list[Piece], now: Position) -> Position | None:
    """End of the gap-free run of pieces containing now (pieces sorted by lower bound)."""
    end: Position | None = None
    for piece in pieces:
        if end is None:
            if piece.lower <= now < piece.upper:
                end = piece.upper
        elif piece.lower <= end:
            end = max(end, piece.upper)
        else:
            break
    return end


def _owner(state: State, p: Any) -> str:
    owned = state.owned.get((p.schema, p.name))
    if owned is None or not is_owner_comment(p.comment):
        return "foreign"
    return owned.origin


def _show(domain: Domain, value: Position) -> str:
    return domain.show(value)


def _row(
    table: str, tenant: str | None, piece: Piece, domain: Domain, state: State
) -> PartitionRow:
    p = piece.partition
    return PartitionRow(
        table=table,
        tenant=tenant if piece.regular else None,
        partition=p.qualified_name,
        lower=_show(domain, piece.lower),
        upper=_show(domain, piece.upper),
        owner=_owner(state, p),
        estimated_rows=p.estimated_rows,
    )
