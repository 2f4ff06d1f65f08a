"""`partman unpartition`, the pure part: a partitioned table back into one ordinary table (the
reverse of `partman convert`, pg_partman's `undo_partition`), by the same steps.

Which direction a conversion record goes, which unique key the keyset copy walks (and, when
there is none, which one to add), what indexes the plain twin gets, and which partitions it
cannot read through the parent. The engine (`engine/convert_async.py`) runs both directions
through one code path; what needs no connection is decided here and unit tested.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import CatalogError, NotPartitionedError
from .convert import SourceTable, TwinIndex, twin_indexes
from .text import sql_name


class Direction(enum.Enum):
    """Which way a conversion goes, as recorded in `conversions.settings` ("direction")."""

    CONVERT = "convert"
    """An ordinary table into a partitioned one (`partman convert`)."""
    UNPARTITION = "unpartition"
    """A partitioned table into an ordinary one (`partman unpartition`)."""

    @property
    def command(self) -> str:
        return f"partman {self.value}"


def direction_of(settings: Mapping[str, object]) -> Direction:
    """A record's direction (records written before unpartition existed are conversions)."""
    return Direction(str(settings.get("direction", Direction.CONVERT.value)))


def keyset_key(source: SourceTable, partition_key: Sequence[str]) -> tuple[str, ...]:
    """The unique key the copy pages by and the change log records: the primary key, else the
    first unique index on plain NOT NULL columns without a predicate. None: refused, naming the
    key to add (on a partitioned table it must include the partition key columns)."""
    if source.primary_key:
        return source.primary_key
    not_null = {c.name for c in source.columns if c.not_null}
    for index in source.indexes:
        columns = tuple(c for c in index.columns if c is not None)
        if (
            index.unique
            and not index.predicate
            and len(columns) == len(index.columns)
            and all(c in not_null for c in columns)
        ):
            return columns
    key = ", ".join(sql_name(c) for c in partition_key)
    raise CatalogError(
        f"{source.qualified} has no primary key and no unique index on NOT NULL columns; "
        "unpartition copies and replays rows by one. Add one that includes the partition key "
        f"({key}), e.g. ALTER TABLE {source.quoted} ADD PRIMARY KEY (id, {key}) (each "
        "partition's index built CONCURRENTLY first, then attached), and run unpartition "
        "again; nothing was changed"
    )


def plain_indexes(source: SourceTable) -> list[TwinIndex]:
    """The plain twin's indexes: each of the partitioned table's, on the same columns (a
    partitioned table's unique keys include the partition key; the plain table keeps exactly
    those, so that foreign keys referencing them can be pointed at it)."""
    return twin_indexes(source, (), extend_unique=False)


@dataclass(frozen=True)
class Leaf:
    """A partition that holds rows (a leaf of the partition tree)."""

    name: str
    kind: str
    """`pg_class.relkind`: 'r' (a table), 'f' (a foreign table)."""
    default: bool = False
    level: int = 1
    """1: a partition of the table; 2 and more: of a sub-partitioned partition."""
    rows: int = 0
    """`pg_class.reltuples`: an estimate (-1 or 0 before the first ANALYZE)."""


def check_leaves(qualified: str, leaves: Sequence[Leaf]) -> None:
    """Refuses a tree whose rows the capture trigger cannot see. Sub-partitions (RANGE then
    HASH, ...) are read through the parent like any partition, and a default partition is
    copied like the others; a foreign table partition is not: its rows live on another server,
    where writes made directly to them are never seen by the capture trigger."""
    foreign = [leaf.name for leaf in leaves if leaf.kind == "f"]
    if foreign:
        raise NotPartitionedError(
            f"{qualified} has foreign table partition(s) {', '.join(foreign[:5])}: their rows "
            "live on another server, where writes are not captured while they are copied. "
            "Detach them first (and copy their rows yourself), then run unpartition again; "
            "nothing was changed"
        )
