"""The catalog reads and look-aheads of an index build (`engine/indexes*.py`), composed with
`psycopg.sql` and parsed here; what to build is decided in `decide/indexes.py`.

The reads take no lock on any table: they read pg_class, pg_inherits, pg_index,
pg_partitioned_table and pg_attribute, and spell each index's definition from them (never
`pg_get_indexdef` or `pg_get_expr(..., relid)`, which open the table: a partition locked
ACCESS EXCLUSIVE by someone else would make the read wait).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from psycopg import sql

from ..model.indexes import IndexEntry, IndexStep, IndexTree, StepKind, TableNode

DEFINITION = sql.SQL(
    """am.amname::text || ' (' || (
    SELECT string_agg(
        CASE WHEN x.indkey[i] = 0 THEN '(expression)' ELSE quote_ident(a.attname) END
        || CASE WHEN x.indkey[i] <> 0 AND x.indcollation[i] <> 0
                 AND x.indcollation[i] <> a.attcollation
                THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
        || CASE WHEN NOT oc.opcdefault THEN ' ' || quote_ident(oc.opcname) ELSE '' END
        || CASE WHEN x.indoption[i] & 1 = 1 THEN ' DESC' ELSE '' END
        || CASE x.indoption[i] & 3 WHEN 2 THEN ' NULLS FIRST' WHEN 1 THEN ' NULLS LAST' ELSE '' END,
        ', ' ORDER BY i)
      FROM generate_series(0, x.indnkeyatts - 1) AS i
      LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[i]
      LEFT JOIN pg_collation co ON co.oid = x.indcollation[i]
      LEFT JOIN pg_opclass oc ON oc.oid = x.indclass[i]) || ')'
   || CASE WHEN x.indnatts > x.indnkeyatts THEN ' INCLUDE (' || (
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY i)
          FROM generate_series(x.indnkeyatts, x.indnatts - 1) AS i
          JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[i]) || ')'
      ELSE '' END
   || CASE WHEN coalesce((to_jsonb(x) ->> 'indnullsnotdistinct')::bool, false)
           THEN ' NULLS NOT DISTINCT' ELSE '' END
   || CASE WHEN x.indpred IS NOT NULL
           THEN ' WHERE (predicate ' || left(md5(x.indpred::text), 8) || ')' ELSE '' END"""
)
"""An index's definition as `pg_get_indexdef` prints it after USING ("btree (tenant_id,
created_at)"), from the catalog alone: `pg_get_indexdef` opens the table (an ACCESS SHARE
lock, which a partition's ACCESS EXCLUSIVE holder would make it wait for). Expressions and
predicates are not printed (that needs the table too): "(expression)", "WHERE (predicate
<hash>)"; partman builds neither, so these only tell such indexes apart."""

_TREE = """
WITH RECURSIVE tree (oid, parent) AS (
    SELECT c.oid, NULL::oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = {schema} AND c.relname = {name} AND c.relkind = 'p'
    UNION ALL
    SELECT i.inhrelid, i.inhparent FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
)"""


def read_queries(schema: str, name: str, lock_timeout: dt.timedelta) -> list[sql.Composable]:
    """One round trip, one snapshot (REPEATABLE READ, READ ONLY): the table's kind; the tree
    (oid, schema, name, relkind, parent oid, partition key column names); every index of it
    (oid, name, table oid, unique, valid, ready, definition (`DEFINITION`), parent index oid,
    backs a constraint); the parent's columns (name, quoted); the relation names taken in the
    tree's schemas."""
    tree = sql.SQL(_TREE).format(schema=sql.Literal(schema), name=sql.Literal(name))
    budget = sql.Literal(f"{max(1, int(lock_timeout.total_seconds() * 1000))}ms")
    return [
        sql.SQL("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        sql.SQL("SET LOCAL lock_timeout = {}").format(budget),
        sql.SQL(
            "SELECT c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = {} AND c.relname = {}"
        ).format(sql.Literal(schema), sql.Literal(name)),
        sql.SQL(
            """{tree}
SELECT t.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, t.parent::int8,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k (attnum, ord)
          LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum
                                  AND k.attnum > 0)
  FROM tree t
  JOIN pg_class c ON c.oid = t.oid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = t.oid"""
        ).format(tree=tree),
        sql.SQL(
            """{tree}
SELECT x.indexrelid::int8, ic.relname::text, x.indrelid::int8, x.indisunique, x.indisvalid,
       x.indisready, {definition},
       (SELECT i.inhparent::int8 FROM pg_inherits i WHERE i.inhrelid = x.indexrelid),
       EXISTS (SELECT FROM pg_constraint k
                WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid
                  AND k.contype IN ('p', 'u', 'x'))
  FROM tree t
  JOIN pg_index x ON x.indrelid = t.oid
  JOIN pg_class ic ON ic.oid = x.indexrelid
  LEFT JOIN pg_am am ON am.oid = ic.relam"""
        ).format(tree=tree, definition=DEFINITION),
        sql.SQL(
            "SELECT a.attname::text, quote_ident(a.attname) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = {} AND c.relname = {} AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum"
        ).format(sql.Literal(schema), sql.Literal(name)),
        sql.SQL(
            """{tree}
SELECT n.nspname::text, c.relname::text FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relnamespace IN (SELECT DISTINCT k.relnamespace FROM tree t
                            JOIN pg_class k ON k.oid = t.oid)"""
        ).format(tree=tree),
        sql.SQL("COMMIT"),
    ]


def parse_tree(rows: Sequence[Sequence[Any]]) -> tuple[str | None, IndexTree | None]:
    """The read's row sets (kind, tree, indexes, columns, names) -> (relkind, tree); the tree
    is None unless the table is partitioned."""
    kinds, tree_rows, index_rows, column_rows, taken_rows = rows
    relkind = str(kinds[0][0]) if kinds else None
    if relkind != "p" or not tree_rows:
        return relkind, None
    nodes = {
        int(oid): TableNode(
            oid=int(oid),
            schema=schema,
            name=name,
            partitioned=kind == "p",
            parent_oid=None if parent is None else int(parent),
            key_columns=tuple(keys or ()),
            foreign=kind == "f",
        )
        for oid, schema, name, kind, parent, keys in tree_rows
    }
    root = next(n for n in nodes.values() if n.parent_oid is None)
    children: dict[int, list[TableNode]] = {}
    for n in nodes.values():
        if n.parent_oid is not None:
            children.setdefault(n.parent_oid, []).append(n)
    ordered: list[TableNode] = []
    stack = [root]
    while stack:  # depth first, partitions in name order: the order the build goes in
        node = stack.pop()
        ordered.append(node)
        stack += sorted(children.get(node.oid, []), key=lambda t: t.name, reverse=True)
    indexes = tuple(
        IndexEntry(
            oid=int(oid),
            name=name,
            table_oid=int(table),
            unique=bool(unique),
            valid=bool(valid),
            ready=bool(ready),
            definition=definition or "",
            parent_index=None if parent is None else int(parent),
            constraint=bool(constraint),
        )
        for oid, name, table, unique, valid, ready, definition, parent, constraint in index_rows
    )
    return relkind, IndexTree(
        root=root,
        tables=tuple(ordered),
        indexes=indexes,
        columns={name: quoted for name, quoted in column_rows},
        taken=frozenset((s, n) for s, n in taken_rows),
    )


# -- the look-ahead: who would make a step wait ---------------------------------------------

_ALL_MODES = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
_SHARE_CONFLICTS = [
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]
"""Modes that conflict with SHARE (CREATE INDEX ... ON ONLY), and whose holders
`CREATE INDEX CONCURRENTLY` waits for (writers), plus its own SHARE UPDATE EXCLUSIVE's."""
_BUILD_CONFLICTS = [*_SHARE_CONFLICTS, "ShareLock"]


def blockers_query(step: IndexStep, budget: dt.timedelta) -> sql.Composed:
    """Who would make `step` wait: holders of a lock it conflicts with (on its table, or on the
    index it attaches) whose transaction is older than the budget or idle in transaction; for
    a concurrent build, also any transaction of this database holding a snapshot older than the
    budget (the build waits for those before it can finish). Rows: pid, mode, relation,
    application_name, state, transaction age in seconds, the start of its query."""
    table = (step.table.schema, step.table.name)
    if step.kind == StepKind.CREATE_PARENT:
        rels, modes = [table], _SHARE_CONFLICTS
    elif step.kind == StepKind.BUILD:
        rels, modes = [table], _BUILD_CONFLICTS
    elif step.kind == StepKind.DROP_INVALID:
        rels, modes = [table], _ALL_MODES
    else:  # ATTACH: ACCESS EXCLUSIVE on the partition's index, ACCESS SHARE on the tables
        rels, modes = [(step.table.schema, step.index)], _ALL_MODES
    pairs = sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(s), sql.Literal(n)) for s, n in rels
    )
    ms = sql.Literal(f"{max(1, int(budget.total_seconds() * 1000))}ms")
    query = sql.SQL(
        """
SELECT l.pid, l.mode, c.relname::text, coalesce(a.application_name, ''), coalesce(a.state, ''),
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8, left(a.query, 120)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_locks l ON l.locktype = 'relation' AND l.relation = c.oid AND l.granted
                 AND l.mode = ANY ({modes}) AND l.pid <> pg_backend_pid()
                 AND l.database = (SELECT oid FROM pg_database
                                    WHERE datname = current_database())
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE (n.nspname::text, c.relname::text) IN ({pairs})
   AND (a.state LIKE 'idle in transaction%' OR clock_timestamp() - a.xact_start > {ms}::interval)"""
    ).format(modes=sql.Literal(modes), pairs=pairs, ms=ms)
    if step.kind == StepKind.BUILD:
        query += sql.SQL(
            """
UNION ALL
SELECT a.pid, 'a snapshot', '(its database)', coalesce(a.application_name, ''),
       coalesce(a.state, ''), extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       left(a.query, 120)
  FROM pg_stat_activity a
 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
   AND a.backend_type = 'client backend' AND a.backend_xmin IS NOT NULL
   AND clock_timestamp() - a.xact_start > {ms}::interval"""
        ).format(ms=ms)
    return sql.SQL("SELECT * FROM ({}) AS b ORDER BY 6 DESC LIMIT 5").format(query)


def index_query(schema: str, name: str) -> sql.Composed:
    """(table oid, valid, ready) of the index `schema.name`, no row if there is none: where an
    interrupted `CREATE INDEX CONCURRENTLY` left it (and whether it is on the table meant)."""
    return sql.SQL(
        "SELECT x.indrelid::int8, x.indisvalid, x.indisready FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = {} AND c.relname = {}"
    ).format(sql.Literal(schema), sql.Literal(name))


def build_key(qualified: str) -> sql.Composed:
    """The advisory lock key of index builds on one parent: two builds never run at once."""
    return sql.SQL("hashtextextended({}, 0)").format(sql.Literal(f"partman:index:{qualified}"))


def session_timeouts(
    lock_timeout: dt.timedelta, statement_timeout: dt.timedelta | None
) -> sql.Composed:
    """The lock budget for the session (CONCURRENTLY cannot run in a transaction block, so
    SET LOCAL cannot reach it); statement_timeout None: no limit (an index build may take
    long, and blocks nobody while it runs)."""
    lock = sql.Literal(f"{max(1, int(lock_timeout.total_seconds() * 1000))}ms")
    statement = (
        sql.Literal("0")
        if statement_timeout is None
        else sql.Literal(f"{max(1, int(statement_timeout.total_seconds() * 1000))}ms")
    )
    return sql.SQL("SET lock_timeout = {}; SET statement_timeout = {}").format(lock, statement)
