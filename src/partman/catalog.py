"""One query gives every partition of every parent asked about, with exact bounds.

The query is composed, not run, here: a maintenance pass sends it in the same round trip as the
metadata reads (see `world.py`), and validation sends it alone for the tables being registered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .bounds import BoundSyntaxError, BoundValue, RangeBound, parse_range_bound
from .columns import KeyColumn

SESSION_SETTINGS = sql.SQL(
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL standard_conforming_strings = on"
)
"""Fix how the server prints bound literals, so `bounds.py` reads them back exactly."""


@dataclass(frozen=True)
class PartitionInfo:
    """A child of a managed parent, as the catalog has it."""

    oid: int
    schema: str
    name: str
    bound_text: str
    bound: RangeBound | None  # None: a bound shape partman does not read (left alone)
    comment: str | None
    estimated_rows: int | None  # None: never analyzed
    detach_pending: bool
    is_partitioned: bool  # itself partitioned (sub-partitions): never touched

    @property
    def is_default(self) -> bool:
        return self.bound is not None and self.bound.is_default

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ParentInfo:
    """A table the user named, and what the catalog says it is."""

    oid: int
    schema: str
    name: str
    relkind: str  # 'p' partitioned, 'r' plain table, 'v' view, ...
    strategy: str | None  # 'r' range, 'l' list, 'h' hash; None when not partitioned
    key: tuple[KeyColumn, ...] | None  # None when a key part is an expression
    columns: dict[str, KeyColumn]  # every column of the table, by name
    partitions: tuple[PartitionInfo, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def default_partition(self) -> PartitionInfo | None:
        return next((p for p in self.partitions if p.is_default), None)


Catalog = dict[tuple[str, str], ParentInfo]
"""Parents by (schema, name); a parent the user named that does not exist is absent."""


def parents_from_values(names: Iterable[tuple[str, str]]) -> sql.Composable:
    """A row source of (schema, name) for explicitly named tables."""
    rows = [
        sql.SQL("({}::text, {}::text)").format(sql.Literal(s), sql.Literal(t)) for s, t in names
    ]
    if not rows:
        return sql.SQL("SELECT NULL::text AS s, NULL::text AS t WHERE false")
    return sql.SQL("SELECT * FROM (VALUES {}) AS v(s, t)").format(sql.SQL(", ").join(rows))


def catalog_query(parents: sql.Composable) -> sql.Composed:
    """Rows: one per partition of each wanted parent (one with NULL child for a childless one).

    Columns of the parent (name, type) come as arrays on every row; the cost of repeating them
    is small next to another round trip.
    """
    return sql.SQL(
        """
SELECT pc.oid::int8, pn.nspname::text, pc.relname::text, pc.relkind::text,
       pt.partstrat::text,
       (SELECT array_agg(coalesce(a.attname::text, '') ORDER BY k.ord)
          FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
          LEFT JOIN pg_attribute a ON a.attrelid = pc.oid AND a.attnum = k.attnum
                                  AND k.attnum <> 0),
       cols.names, cols.typnames, cols.typesql, cols.typmods, cols.generated,
       cc.oid::int8, cn.nspname::text, cc.relname::text, pg_get_expr(cc.relpartbound, cc.oid),
       d.description, cc.reltuples::float8, i.inhdetachpending, cc.relkind::text
  FROM ({parents}) AS wanted(s, t)
  JOIN pg_namespace pn ON pn.nspname = wanted.s
  JOIN pg_class pc ON pc.relnamespace = pn.oid AND pc.relname = wanted.t
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = pc.oid
  LEFT JOIN LATERAL (
       SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
              array_agg(ty.typname::text ORDER BY a.attnum) AS typnames,
              array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS typesql,
              array_agg(a.atttypmod ORDER BY a.attnum) AS typmods,
              array_agg(a.attgenerated <> '' ORDER BY a.attnum) AS generated
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
        WHERE a.attrelid = pc.oid AND a.attnum > 0 AND NOT a.attisdropped) cols ON true
  LEFT JOIN pg_inherits i ON i.inhparent = pc.oid
  LEFT JOIN pg_class cc ON cc.oid = i.inhrelid
  LEFT JOIN pg_namespace cn ON cn.oid = cc.relnamespace
  LEFT JOIN pg_description d ON d.objoid = cc.oid AND d.classoid = 'pg_class'::regclass
                            AND d.objsubid = 0
 ORDER BY pn.nspname, pc.relname, cc.relname
"""
    ).format(parents=parents)


def parse_catalog(rows: Sequence[Sequence[Any]]) -> Catalog:
    """Turn the query's rows into ParentInfo objects, bounds parsed exactly."""
    parents: dict[tuple[str, str], tuple[list[Any], list[PartitionInfo]]] = {}
    for row in rows:
        key = (row[1], row[2])
        if key not in parents:
            parents[key] = (list(row[:11]), [])
        if row[11] is None:
            continue
        head = parents[key][0]
        parents[key][1].append(_partition(row, _key_columns(head)))
    return {key: _parent(head, children) for key, (head, children) in parents.items()}


def _columns(head: Sequence[Any]) -> dict[str, KeyColumn]:
    names, typnames, typesql, typmods, generated = head[6], head[7], head[8], head[9], head[10]
    if names is None:
        return {}
    return {
        n: KeyColumn(n, tn, ts, tm, g)
        for n, tn, ts, tm, g in zip(names, typnames, typesql, typmods, generated, strict=True)
    }


def _key_columns(head: Sequence[Any]) -> tuple[KeyColumn, ...] | None:
    key_names: list[str] | None = head[5]
    if key_names is None or any(n == "" for n in key_names):
        return None
    columns = _columns(head)
    return tuple(columns[n] for n in key_names)


def _parent(head: Sequence[Any], children: list[PartitionInfo]) -> ParentInfo:
    return ParentInfo(
        oid=head[0],
        schema=head[1],
        name=head[2],
        relkind=head[3],
        strategy=head[4],
        key=_key_columns(head),
        columns=_columns(head),
        partitions=tuple(children),
    )


def _partition(row: Sequence[Any], key: tuple[KeyColumn, ...] | None) -> PartitionInfo:
    bound_text: str = row[14] or ""
    bound: RangeBound | None = None
    if key is not None and row[4] == "r":
        try:
            bound = _unpad(parse_range_bound(bound_text, [c.kind for c in key]), key)
        except BoundSyntaxError:
            bound = None
    reltuples: float | None = row[16]
    return PartitionInfo(
        oid=row[11],
        schema=row[12],
        name=row[13],
        bound_text=bound_text,
        bound=bound,
        comment=row[15],
        estimated_rows=None if reltuples is None or reltuples < 0 else int(reltuples),
        detach_pending=bool(row[17]),
        is_partitioned=row[18] == "p",
    )


def _unpad(bound: RangeBound, key: tuple[KeyColumn, ...]) -> RangeBound:
    """char(n) values print blank-padded; the tenant id they hold has no trailing blanks."""
    if bound.is_default or not any(c.typname == "bpchar" for c in key):
        return bound

    def strip(values: tuple[BoundValue, ...]) -> tuple[BoundValue, ...]:
        return tuple(
            v.rstrip(" ") if isinstance(v, str) and c.typname == "bpchar" else v
            for v, c in zip(values, key, strict=True)
        )

    return RangeBound(strip(bound.lower), strip(bound.upper))
