"""Which archived periods a restore brings back, and whether they still fit the parent (pure).

`partman restore SCHEMA.TABLE --from A --to B` restores every archive of the table (and
tenant) whose period meets [A, B): whole partitions, never part of one. Before anything is
created, each one's bounds are checked against the partitions the parent has now: a restored
partition may not overlap one (the catalog's bounds, read as `model.bounds` reads them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..model.archive import Archive, ArchiveError
from ..model.bounds import BoundValue, Special
from ..model.columns import ColumnKind, KeyColumn
from ..model.keys import uuid_bound
from ..model.snapshot import ParentInfo

RESTORABLE = ("archived", "restoring")
"""Archive states a restore picks up: not restored yet, or interrupted while restoring."""


def key_value(text: str, kind: ColumnKind) -> BoundValue:
    """A bound as partman's metadata writes it (`model.text.iso`), as a value of its column."""
    if kind is ColumnKind.TIMESTAMPTZ:
        value = dt.datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if kind is ColumnKind.TIMESTAMP:
        return dt.datetime.fromisoformat(text).replace(tzinfo=None)
    if kind is ColumnKind.DATE:
        return dt.date.fromisoformat(text[:10])
    if kind is ColumnKind.INTEGER:
        return int(text)
    if kind is ColumnKind.NUMERIC:
        return Decimal(text)
    if kind is ColumnKind.UUID:
        return uuid.UUID(text)
    return text


def period_value(text: str, kind: ColumnKind, zone: dt.tzinfo) -> BoundValue:
    """A --from/--to date or time as a value of the partition key's last column: a date starts
    at midnight in `zone`; an id or epoch key takes a number; a UUIDv7 key takes a time (the
    least UUIDv7 of that instant)."""
    try:
        if kind in (ColumnKind.INTEGER, ColumnKind.NUMERIC):
            return key_value(text, kind)
        if kind is ColumnKind.DATE:
            return dt.date.fromisoformat(text[:10])
        value = dt.datetime.fromisoformat(text)
    except (ValueError, ArithmeticError):
        what = (
            "a number (the key is an id or epoch column)"
            if kind
            in (
                ColumnKind.INTEGER,
                ColumnKind.NUMERIC,
            )
            else "a date or time like 2026-03-01 or 2026-03-01T12:00"
        )
        raise ArchiveError(f"--from/--to {text!r}: expected {what}") from None
    if kind is ColumnKind.UUID:
        return uuid_bound(value if value.tzinfo else value.replace(tzinfo=zone))
    if kind is ColumnKind.TIMESTAMPTZ:
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return value.replace(tzinfo=None)


@dataclass(frozen=True)
class Target:
    """Where an archive goes back: its parent's bound for it, as values of the key columns."""

    archive: Archive
    lower: tuple[BoundValue, ...]
    upper: tuple[BoundValue, ...]
    lower_text: tuple[str, ...]
    """The same bound as text, for `FOR VALUES FROM (...) TO (...)` (cast by PostgreSQL)."""
    upper_text: tuple[str, ...]


def select(
    archives: Sequence[Archive],
    key: Sequence[KeyColumn],
    start: str,
    end: str,
    zone: dt.tzinfo,
    tenant: str | None = None,
) -> list[Target]:
    """The archives a restore of [start, end) brings back, oldest first, with their bounds.

    `key` is the parent's partition key: (time) or (tenant, time). Archives already restored
    are not picked again."""
    if not key:
        raise ArchiveError("the parent's partition key could not be read")
    time_kind = key[-1].kind
    low = period_value(start, time_kind, zone)
    high = period_value(end, time_kind, zone)
    if not _before(low, high):
        raise ArchiveError(f"--from {start} must be before --to {end}")
    out: list[Target] = []
    for a in archives:
        if a.state not in RESTORABLE or (tenant is not None and a.tenant != tenant):
            continue
        lo, hi = key_value(a.lower, time_kind), key_value(a.upper, time_kind)
        if not (_before(lo, high) and _before(low, hi)):
            continue
        lower_text: tuple[str, ...] = (a.lower,)
        upper_text: tuple[str, ...] = (a.upper,)
        lower: tuple[BoundValue, ...] = (lo,)
        upper: tuple[BoundValue, ...] = (hi,)
        if len(key) == 2:
            if a.tenant is None:
                raise ArchiveError(
                    f"archive {a.id} of {a.table} has no tenant, but the parent's key is "
                    f"({key[0].name}, {key[1].name})"
                )
            t = key_value(a.tenant, key[0].kind)
            lower, upper = (t, lo), (t, hi)
            lower_text, upper_text = (a.tenant, a.lower), (a.tenant, a.upper)
        out.append(Target(a, lower, upper, lower_text, upper_text))
    out.sort(key=lambda t: (t.archive.tenant or "", _order(t.lower[-1]), t.archive.id))
    return out


def overlaps(target: Target, parent: ParentInfo) -> list[str]:
    """The parent's partitions whose range meets the target's (names): a restore of it would
    overlap them. A DEFAULT partition is not one (its rows are checked by ATTACH)."""
    found: list[str] = []
    for p in parent.partitions:
        b = p.bound
        if b is None or b.is_default or len(b.lower) != len(target.lower):
            continue
        if _tuple_before(b.lower, target.upper) and _tuple_before(target.lower, b.upper):
            found.append(p.qualified_name)
    return found


def check(targets: Sequence[Target], parent: ParentInfo) -> None:
    """`ArchiveError` listing every target that overlaps an existing partition, or whose
    partition name is in use: nothing is restored then."""
    problems: list[str] = []
    names = {p.name for p in parent.partitions}
    for t in targets:
        a = t.archive
        hit = overlaps(t, parent)
        if hit and not (a.state == "restoring" and hit == [a.partition]):
            problems.append(
                f"[{a.lower}, {a.upper})"
                + ("" if a.tenant is None else f" of tenant {a.tenant}")
                + f" overlaps {', '.join(hit)}"
            )
        elif a.partition_name in names and a.state != "restoring":
            problems.append(f"{a.partition} exists already")
    if problems:
        raise ArchiveError(
            f"cannot restore into {parent.qualified_name}: " + "; ".join(problems) + ". Nothing "
            "was changed; detach or drop the partition in the way (or restore a narrower "
            "--from/--to)"
        )


def _order(value: BoundValue) -> tuple[int, object]:
    if isinstance(value, Special):
        return (-1 if value is Special.MINVALUE else 1, 0)
    return (0, value)


def _before(a: BoundValue, b: BoundValue) -> bool:
    """a < b, MINVALUE and MAXVALUE included."""
    x, y = _order(a), _order(b)
    if x[0] != y[0]:
        return x[0] < y[0]
    if x[0] != 0:
        return False
    return bool(x[1] < y[1])  # type: ignore[operator]


def _tuple_before(a: Sequence[BoundValue], b: Sequence[BoundValue]) -> bool:
    """Row comparison a < b, as PostgreSQL orders multi-column range bounds."""
    for x, y in zip(a, b, strict=True):
        if _before(x, y):
            return True
        if _before(y, x):
            return False
        if isinstance(x, Special):  # MINVALUE/MAXVALUE: later columns do not count
            return False
    return False
