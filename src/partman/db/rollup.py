"""The SQL of a roll-up's steps beyond its DDL (`model.operations.RollupPartition`): the
staging record and comment, the copy's snapshot, the swap's guard and its change check.

A late row is one the copy may not have seen. Under the swap's lock no writer is left, so each
fine partition's rows are counted, and those whose `xmin` is not older than the copy's
snapshot's `xmin` (the oldest transaction still running when it was taken) counted apart:
such a row was written by a transaction that may have been running then, or by one that
began later. That test is conservative on purpose: a row written in a subtransaction has
an `xmin` the snapshot's list of running transactions does not hold (PostgreSQL's own
`pg_visible_in_snapshot` is wrong for those), but it is always newer than its top-level
transaction, so it counts. Any such row, or a count that differs from the coarse table's rows
of that range (a delete), has the partition copied again inside the swap. `xmin` is a 32-bit
xid: the snapshot's 64-bit one is compared modulo 2**32, as PostgreSQL compares xids (a
frozen row reads as xid 2).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from ..model.columns import tenant_text
from ..model.operations import FinePartition, RollupPartition
from ..model.snapshot import owner_comment
from ..model.text import iso
from . import ddl, metadata

STAGING_COMMENT = "partman roll-up staging"
"""How a coarse table built detached is marked (then the period: the comment's rest)."""

_XID = 2**32


@dataclass(frozen=True)
class CopySnapshot:
    """What the swap needs of the copy's snapshot (`pg_current_snapshot()`): its `xmin`,
    cut to 32 bits."""

    xmin: int
    filenode: int | None = None
    """The fine partition's file when its copy began: a rewrite since (VACUUM FULL, CLUSTER)
    may have moved rows between the blocks of a batched copy, so it is copied again."""

    @classmethod
    def parse(cls, text: str, filenode: int | None = None) -> CopySnapshot:
        xmin = text.split(":")[0]
        return cls(int(xmin) % _XID, filenode)


def staging_comment(op: RollupPartition) -> str:
    return (
        f"{STAGING_COMMENT} for {op.parent_qualified} [{iso(op.lower)}, {iso(op.upper)}): rows "
        "are copied in from its partitions; attached in their place when done"
    )


def is_staging_comment(comment: str | None) -> bool:
    return comment is not None and comment.startswith(STAGING_COMMENT)


def staging_records(meta: str, op: RollupPartition) -> list[sql.Composable]:
    """The coarse table's comment and its "staging" record (action "rollup")."""
    return [
        sql.SQL("COMMENT ON TABLE {} IS {}").format(op.partition, sql.Literal(staging_comment(op))),
        *_record(meta, op, "staging"),
        metadata.partition_state_sql(
            meta, op.partition_schema, op.partition_name, "staging", action="rollup"
        ),
    ]


def swapped_records(meta: str, op: RollupPartition) -> list[sql.Composable]:
    """The coarse partition is partman's, attached; the fine ones are gone."""
    return [
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            op.partition, sql.Literal(owner_comment("created"))
        ),
        *_record(meta, op, "attached"),
        *(metadata.forget_partition_sql(meta, f.schema, f.name) for f in op.fines),
    ]


def _record(meta: str, op: RollupPartition, state: str) -> list[sql.Composable]:
    return [
        metadata.record_partition_sql(
            meta,
            partition_schema=op.partition_schema,
            partition_name=op.partition_name,
            parent_schema=op.parent_schema,
            parent_name=op.parent_name,
            tenant_id=tenant_text(op.tenant),
            lower=iso(op.lower) or "",
            upper=iso(op.upper) or "",
            origin="created",
            state=state,
        )
    ]


SNAPSHOT_QUERY = sql.SQL("SELECT pg_current_snapshot()::text")


def begin_repeatable(lock_timeout: dt.timedelta, statement_timeout: dt.timedelta) -> sql.Composed:
    """A copy's transaction, under the lock budget: one snapshot for the snapshot query and
    the copy itself."""
    return sql.SQL(
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL lock_timeout = {}; "
        "SET LOCAL statement_timeout = {}"
    ).format(ddl.ms(lock_timeout), ddl.ms(statement_timeout))


def guard_query(op: RollupPartition) -> sql.Composed:
    """Each fine partition as the plan saw it: (still that oid, still a partition of the
    parent, still partman's comment), in order."""
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}::oid)").format(
            sql.Literal(i), sql.Literal(f"{_quoted(f)}"), sql.Literal(f.oid)
        )
        for i, f in enumerate(op.fines)
    )
    return sql.SQL(
        "SELECT to_regclass(f.name)::oid IS NOT DISTINCT FROM f.oid, "
        "EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = f.oid "
        "AND i.inhparent = {}::regclass AND NOT i.inhdetachpending), "
        "obj_description(f.oid, 'pg_class') "
        "FROM (VALUES {}) AS f (i, name, oid) ORDER BY f.i"
    ).format(sql.Literal(_quoted_parent(op)), rows)


def seen_by(snap: CopySnapshot) -> sql.Composed:
    """A row version the snapshot surely saw: its `xmin` frozen (2), or older than the
    snapshot's `xmin` (modulo 2**32): committed (or aborted, then not a row) before it."""
    x = sql.SQL("(xmin::text::bigint)")
    return sql.SQL("({x} < 3 OR ((({x} - {m}) % {w} + {w}) % {w} >= {h}))").format(
        x=x, m=sql.Literal(snap.xmin), w=sql.Literal(_XID), h=sql.Literal(_XID // 2)
    )


def changes_queries(
    op: RollupPartition, fines: Sequence[FinePartition], seen: dict[str, CopySnapshot]
) -> list[sql.Composed]:
    """One query per fine partition (each statement has its own statement_timeout), one row
    each: (its number, its rows, rows its copy may not have seen, the coarse table's rows of
    its range, whether its file is the one its copy read). A partition without a snapshot was
    never copied: all its rows count as unseen."""
    parts = []
    for i, f in enumerate(fines):
        snap = seen.get(f.qualified_name)
        unseen: sql.Composable
        if snap is None:
            unseen = sql.SQL("count(*)")
        else:
            unseen = sql.SQL("count(*) FILTER (WHERE NOT {})").format(seen_by(snap))
        parts.append(
            sql.SQL(
                "SELECT {}, c.total, c.unseen, (SELECT count(*) FROM {} WHERE {}), "
                "pg_relation_filenode({}::regclass)::bigint IS NOT DISTINCT FROM {} "
                "FROM (SELECT count(*) AS total, {} AS unseen FROM ONLY {}) AS c"
            ).format(
                sql.Literal(i),
                op.partition,
                op.range_check(f.lower, f.upper),
                sql.Literal(_quoted(f)),
                sql.Literal(None if snap is None else snap.filenode),
                unseen,
                f.table,
            )
        )
    return parts


def size_query(fine: FinePartition) -> sql.Composed:
    """(blocks, estimated rows, file) of a fine partition, to cut its copy into batches."""
    return sql.SQL(
        "SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint, c.reltuples, "
        "pg_relation_filenode(c.oid)::bigint "
        "FROM pg_class c WHERE c.oid = to_regclass({})"
    ).format(sql.Literal(_quoted(fine)))


def batches(blocks: int, rows: float, batch_rows: int) -> list[tuple[int, int | None] | None]:
    """The block ranges a fine partition is copied in, about `batch_rows` rows each: [None]
    (one statement) when it is small or never analyzed; the last range open-ended, so that
    blocks added since the size was read are copied too."""
    if rows <= batch_rows or blocks <= 1:
        return [None]
    step = max(1, int(blocks * batch_rows / rows))
    starts = list(range(0, blocks, step))
    return [(lo, lo + step if i + 1 < len(starts) else None) for i, lo in enumerate(starts)]


def count_query(op: RollupPartition) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {}").format(op.partition)


def _quoted(f: FinePartition) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (f.schema, f.name))


def _quoted_parent(op: RollupPartition) -> str:
    return ".".join(
        '"' + part.replace('"', '""') + '"' for part in (op.parent_schema, op.parent_name)
    )
