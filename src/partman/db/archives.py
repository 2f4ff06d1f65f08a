"""The archive manifest (`<metadata schema>.archives`) and the catalog reads export needs, as
SQL composed with psycopg.sql; sent by `engine/export_async.py`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from ..model.archive import Archive, ColumnPlan, PgColumn

ARCHIVE_COLUMNS = (
    "id",
    "parent_schema",
    "parent_name",
    "partition_schema",
    "partition_name",
    "tenant_id",
    "lower_bound",
    "upper_bound",
    "location",
    "rows",
    "bytes",
    "checksum",
    "columns",
    "state",
    "exported_at",
    "restored_at",
)


def columns_query(schema: str, name: str) -> sql.Composed:
    """A table's columns, in order, as `PgColumn` reads them."""
    return sql.SQL(
        """
SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod), t.typtype::text,
       a.atttypmod, e.typname::text, e.typtype::text, a.attgenerated <> ''
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
 WHERE a.attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = {} AND c.relname = {})
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""
    ).format(sql.Literal(schema), sql.Literal(name))


def pg_column(row: Sequence[Any]) -> PgColumn:
    return PgColumn(
        name=row[0],
        typname=row[1],
        type_sql=row[2],
        typtype=row[3],
        typmod=row[4],
        element=row[5],
        element_typtype=row[6],
        generated=row[7],
    )


def select_rows(table: sql.Identifier, plans: Sequence[ColumnPlan]) -> sql.Composed:
    """The rows to write or check, each column as its plan reads it (json as its text...)."""
    items = [
        sql.SQL("{}::text").format(sql.Identifier(p.name)) if p.as_text else sql.Identifier(p.name)
        for p in plans
    ]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def nan_query(table: sql.Identifier, plans: Sequence[ColumnPlan]) -> sql.Composed:
    """Whether each of these numeric columns holds a NaN: one row, a boolean per column."""
    items = [
        sql.SQL("coalesce(bool_or({} = 'NaN'::numeric), false)").format(sql.Identifier(p.name))
        for p in plans
    ]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def unwritable_checks(plans: Sequence[ColumnPlan]) -> list[tuple[str, str, sql.Composable]]:
    """Values a column's type allows but a Parquet file cannot hold as they are: (column,
    what is wrong, a condition true of a row that holds one). Infinite dates and timestamps
    (psycopg cannot read them, and Arrow has no infinity), arrays of more than one dimension
    or whose first index is not 1 (a list comes back 1-based and flat)."""
    out: list[tuple[str, str, sql.Composable]] = []
    for p in plans:
        col = sql.Identifier(p.name)
        if p.arrow in ("date32", "timestamp", "timestamptz") and not p.as_text:
            out.append((p.name, "holds infinity", sql.SQL("NOT isfinite({})").format(col)))
        elif p.arrow.startswith("list<"):
            out.append(
                (
                    p.name,
                    "holds an array of more than one dimension, or not starting at index 1",
                    sql.SQL("(array_ndims({0}) > 1 OR array_lower({0}, 1) <> 1)").format(col),
                )
            )
    return out


def unwritable_query(
    table: sql.Identifier, checks: Sequence[tuple[str, str, sql.Composable]]
) -> sql.Composed:
    """One row, a boolean per check of `unwritable_checks`: whether some row fails it."""
    items = [sql.SQL("coalesce(bool_or({}), false)").format(cond) for _, _, cond in checks]
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(items), table)


def insert_archive(
    meta: str,
    *,
    parent_schema: str,
    parent_name: str,
    partition_schema: str,
    partition_name: str,
    tenant_id: str | None,
    lower: str,
    upper: str,
    location: str,
    rows: int,
    size: int,
    checksum: str,
    plans: Sequence[ColumnPlan],
) -> sql.Composed:
    values = [
        parent_schema,
        parent_name,
        partition_schema,
        partition_name,
        tenant_id,
        lower,
        upper,
        location,
        rows,
        size,
        checksum,
    ]
    return sql.SQL(
        "INSERT INTO {} (parent_schema, parent_name, partition_schema, partition_name, "
        "tenant_id, lower_bound, upper_bound, location, rows, bytes, checksum, columns) "
        "VALUES ({}, {}::jsonb)"
    ).format(
        sql.Identifier(meta, "archives"),
        sql.SQL(", ").join(sql.Literal(v) for v in values),
        sql.Literal(json.dumps([p.to_dict() for p in plans])),
    )


def list_archives(meta: str, table: str | None = None) -> sql.Composed:
    """Manifest rows, oldest period first; `table` "schema.name" filters by parent."""
    where: sql.Composable = sql.SQL("")
    if table is not None:
        schema, _, name = table.partition(".")
        where = sql.SQL(" WHERE parent_schema = {} AND parent_name = {}").format(
            sql.Literal(schema), sql.Literal(name)
        )
    return sql.SQL("SELECT {} FROM {}{} ORDER BY parent_schema, parent_name, {}, {}, id").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in ARCHIVE_COLUMNS),
        sql.Identifier(meta, "archives"),
        where,
        sql.Identifier("tenant_id"),
        sql.Identifier("lower_bound"),
    )


def parse_archive(row: Sequence[Any]) -> Archive:
    r = dict(zip(ARCHIVE_COLUMNS, row, strict=True))
    return Archive(
        id=r["id"],
        parent_schema=r["parent_schema"],
        parent_name=r["parent_name"],
        partition_schema=r["partition_schema"],
        partition_name=r["partition_name"],
        tenant=r["tenant_id"],
        lower=r["lower_bound"],
        upper=r["upper_bound"],
        location=r["location"],
        rows=r["rows"],
        bytes=r["bytes"],
        checksum=r["checksum"],
        columns=tuple(ColumnPlan.from_dict(c) for c in r["columns"]),
        state=r["state"],
        exported_at=r["exported_at"],
        restored_at=r["restored_at"],
    )


def archive_state(meta: str, archive_id: int, state: str) -> sql.Composed:
    restored = sql.SQL(", restored_at = now()") if state == "restored" else sql.SQL("")
    return sql.SQL("UPDATE {} SET state = {}{} WHERE id = {}").format(
        sql.Identifier(meta, "archives"), sql.Literal(state), restored, sql.Literal(archive_id)
    )
