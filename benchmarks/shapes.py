"""Shapes: partman on the partition shapes beyond RANGE (time), against plain SQL, in one run.

    .venv/bin/python benchmarks/shapes.py [--shapes id,epoch,uuid,quarter,hash,list]
        [--parents 100] [--tenants 100] [--batches 32,256] [--runs 5] [--quick]

For each shape, P parents (`--parents`; the LIST shape: one parent with `--tenants` tenants),
each contestant in a fresh database on the same embedded PostgreSQL 18:

- id: `RANGE (id bigint)`, `partition_by="id", partition_interval=1_000_000`;
- epoch: `RANGE (created_ms bigint)`, `partition_by="created_ms", epoch="milliseconds"`, daily;
- uuid: `RANGE (id uuid)` (UUIDv7 bounds: a day's first millisecond, the rest zeros),
  `partition_by="id"`, daily;
- quarter: `RANGE (created_at)`, `partition_interval="15 minutes"`;
- hash: `RANGE (created_at)`, each day `PARTITION BY HASH (device_id)` into 4 leaves,
  `sub_partition_by="device_id", sub_partition_modulus=4`;
- list: `LIST (tenant_id)`, each tenant's partition `PARTITION BY RANGE (created_at)`, daily,
  `tenant_id_column="tenant_id", tenant_partitioning="list"`, tenants registered with
  `register_tenants`.

Phases (partman on a SimulatedClock starting 2026-01-01 12:00 UTC, `partition_count=10`):

1. create: the current period and 10 ahead for every parent (11 periods; per tenant in the
   LIST shape, whose tenant partitions are made too), one timed `maintain()` (registration
   not timed) against plain SQL building the same partitions, each shape of statement in
   each `--batches` size (partitions, or subtrees, per transaction, one round trip each):
   `CREATE TABLE ... PARTITION OF` (ACCESS EXCLUSIVE on the parent), and
   `CREATE TABLE ... (LIKE ...)` + `ATTACH PARTITION` (SHARE UPDATE EXCLUSIVE: partman's
   shape; a subtree is built detached and attached last).
2. 10 periods later (the clock moves on; the id shape gets a row at id 10,500,000 instead),
   an untimed pass makes 10 more periods, then a pass with nothing to do: `maintain()`
   (median of `--runs`) against one bare catalog query over the same partitioned tables.
3. retention: `retention_period` set to 5 periods (5,000,000 ids behind the max id for the
   id shape): the 5 oldest periods of every parent (tenant) expire; one `maintain()` drops
   them, against plain SQL: `DROP TABLE a, b, ...` (the largest batch per transaction) and
   `DETACH PARTITION ... CONCURRENTLY` + `DROP TABLE` one at a time (partman's locks).

After each phase partman's partition tree (bounds, level by level) is compared with the one
plain SQL built from the shape's definition; a difference is reported under the table, as is
any error partman raises (its exact text), and the other shapes go on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

SCHEMA = "shapes"
AHEAD = 10  # partition_count
LATER = 10  # periods the clock moves on before the steady state
EXPIRE = 5  # periods retention drops
MODULUS = 4
ID_WIDTH = 1_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class Node:
    """A partition as plain SQL makes it, with the subtree below it."""

    name: str
    parent: str
    bound: sql.Composable
    root: str  # the partitioned table at the top (the LIKE source)
    partition_by: str | None = None  # e.g. "HASH (device_id)"
    children: tuple[Node, ...] = ()

    def relations(self) -> int:
        return 1 + sum(c.relations() for c in self.children)


def ident(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def range_bound(lo: Any, hi: Any) -> sql.Composed:
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(sql.Literal(lo), sql.Literal(hi))


def time_base(interval: dt.timedelta) -> dt.datetime:
    """The start of the period holding b.START (intervals divide a day here)."""
    day = b.day_start(b.START)
    return day + ((b.START - day) // interval) * interval


def epoch_ms(instant: dt.datetime) -> int:
    delta = instant - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True)
class Shape:
    key: str
    label: str
    ddl: str  # the parent, {} for its name
    table: dict[str, Any]  # partman.Table's arguments besides name and schema
    interval: dt.timedelta | None  # None: integer ids
    encode: Callable[[Any], Any] = lambda v: v  # a period bound as the column's value
    sub: str | None = None  # "hash" | "list"
    notes: Sequence[str] = field(default_factory=tuple)

    def period(self, i: int) -> tuple[Any, Any]:
        if self.interval is None:
            return i * ID_WIDTH, (i + 1) * ID_WIDTH
        base = time_base(self.interval)
        return self.encode(base + i * self.interval), self.encode(base + (i + 1) * self.interval)

    def retention(self) -> Any:
        return EXPIRE * ID_WIDTH if self.interval is None else EXPIRE * self.interval

    def partman_table(self, name: str, retention: Any = None) -> partman.Table:
        return partman.Table(
            name=name,
            schema=SCHEMA,
            partition_count=AHEAD,
            retention_period=retention,
            **self.table,
        )

    # plain SQL's partitions: one unit per parent (tenant) and period, subtree included
    def units(self, parents: Sequence[str], tenants: Sequence[str], periods: range,
              first: bool) -> list[Node]:  # fmt: skip
        out: list[Node] = []
        for p in parents:
            if self.sub == "list":
                for t in tenants:
                    tp = f"{p}_{t.replace('-', '_')}"
                    days = tuple(self.leaf(tp, p, i) for i in periods)
                    if first:
                        bound = sql.SQL("FOR VALUES IN ({})").format(sql.Literal(t))
                        out.append(Node(tp, p, bound, p, "RANGE (created_at)", days))
                    else:
                        out.extend(days)
            else:
                out.extend(self.leaf(p, p, i) for i in periods)
        return out

    def leaf(self, parent: str, root: str, i: int) -> Node:
        name = f"{parent}_p{i:03d}"
        bound = range_bound(*self.period(i))
        if self.sub != "hash":
            return Node(name, parent, bound, root)
        leaves = tuple(
            Node(
                f"{name}_h{r}",
                name,
                sql.SQL("FOR VALUES WITH (MODULUS {}, REMAINDER {})").format(
                    sql.Literal(MODULUS), sql.Literal(r)
                ),
                root,
            )
            for r in range(MODULUS)
        )
        return Node(name, parent, bound, root, "HASH (device_id)", leaves)


def uuid_bound(instant: dt.datetime) -> uuid.UUID:
    return uuid.UUID(int=epoch_ms(instant) << 80)


DAY_INTERVAL = dt.timedelta(days=1)
SHAPES: dict[str, Shape] = {
    s.key: s
    for s in (
        Shape(
            "id",
            "integer ids, 1,000,000 a partition",
            "CREATE TABLE {} (id bigint NOT NULL, data jsonb, PRIMARY KEY (id)) "
            "PARTITION BY RANGE (id)",
            {"partition_by": "id", "partition_interval": ID_WIDTH},
            None,
        ),
        Shape(
            "epoch",
            "epoch milliseconds, daily",
            "CREATE TABLE {} (id bigint NOT NULL, created_ms bigint NOT NULL, data jsonb, "
            "PRIMARY KEY (id, created_ms)) PARTITION BY RANGE (created_ms)",
            {"partition_by": "created_ms", "epoch": "milliseconds", "partition_interval": "1 day"},
            DAY_INTERVAL,
            epoch_ms,
        ),
        Shape(
            "uuid",
            "UUIDv7, daily",
            "CREATE TABLE {} (id uuid NOT NULL, data jsonb, PRIMARY KEY (id)) "
            "PARTITION BY RANGE (id)",
            {"partition_by": "id", "partition_interval": "1 day"},
            DAY_INTERVAL,
            uuid_bound,
        ),
        Shape(
            "quarter",
            "15 minutes",
            b.SINGLE_TABLE_SQL,
            {"partition_by": "created_at", "partition_interval": "15 minutes"},
            dt.timedelta(minutes=15),
        ),
        Shape(
            "hash",
            f"daily -> HASH (device_id) x {MODULUS}",
            b.SUB_HASH_TABLE_SQL,
            {
                "partition_by": "created_at",
                "partition_interval": "1 day",
                "sub_partition_by": "device_id",
                "sub_partition_modulus": MODULUS,
            },
            DAY_INTERVAL,
            sub="hash",
        ),
        Shape(
            "list",
            "LIST (tenant) -> daily",
            "CREATE TABLE {} (id varchar NOT NULL, tenant_id text NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
            "PRIMARY KEY (id, tenant_id, created_at)) PARTITION BY LIST (tenant_id)",
            {
                "tenant_id_column": "tenant_id",
                "tenant_partitioning": "list",
                "partition_by": "created_at",
                "partition_interval": "1 day",
            },
            DAY_INTERVAL,
            sub="list",
        ),
    )
}


# --------------------------------------------------------------------------- plain SQL


def create_statements(node: Node, shape: str) -> list[sql.Composable]:
    """partition_of: CREATE ... PARTITION OF, subtree after it; like_attach: the table and its
    subtree built detached, then ATTACH (SHARE UPDATE EXCLUSIVE on the parent)."""
    by = sql.SQL("") if node.partition_by is None else sql.SQL(f" PARTITION BY {node.partition_by}")
    below = [s for c in node.children for s in create_statements(c, "partition_of")]
    if shape == "partition_of":
        head = sql.SQL("CREATE TABLE {} PARTITION OF {} {}{}").format(
            ident(node.name), ident(node.parent), node.bound, by
        )
        return [head, *below]
    table = sql.SQL("CREATE TABLE {} (LIKE {} {}){}").format(
        ident(node.name), ident(node.root), b.LIKE, by
    )
    attach = sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
        ident(node.parent), ident(node.name), node.bound
    )
    return [table, *below, attach]


def plain_create(dsn: str, units: Sequence[Node], shape: str, batch: int) -> int:
    """Each unit's statements, `batch` units per transaction; returns round trips."""
    statements = [create_statements(u, shape) for u in units]
    return b.run_batches(dsn, statements, batch)


def plain_drop(dsn: str, victims: Sequence[Node], shape: str, batch: int) -> int:
    trips = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        if shape == "concurrently":
            for v in victims:
                conn.execute(
                    sql.SQL("ALTER TABLE {} DETACH PARTITION {} CONCURRENTLY").format(
                        ident(v.parent), ident(v.name)
                    )
                )
                conn.execute(sql.SQL("DROP TABLE {}").format(ident(v.name)))
                trips += 2
            return trips
        for i in range(0, len(victims), batch):
            names = sql.SQL(", ").join(ident(v.name) for v in victims[i : i + batch])
            conn.execute(sql.SQL("DROP TABLE {}").format(names))
            trips += 1
    return trips


TREE_SQL = """
WITH RECURSIVE t AS (
  SELECT c.oid, ARRAY[p.relname::text, pg_get_expr(c.relpartbound, c.oid)] AS path
    FROM pg_inherits i
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    JOIN pg_class c ON c.oid = i.inhrelid
   WHERE n.nspname = %s AND NOT p.relispartition AND p.relkind = 'p'
  UNION ALL
  SELECT c.oid, t.path || pg_get_expr(c.relpartbound, c.oid)
    FROM t
    JOIN pg_inherits i ON i.inhparent = t.oid
    JOIN pg_class c ON c.oid = i.inhrelid
)
SELECT path FROM t
"""


def tree(dsn: str) -> set[tuple[str, ...]]:
    """Every partition as (root, its bound, the bound below it, ...): names aside."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {tuple(r[0]) for r in conn.execute(TREE_SQL, (SCHEMA,))}


def partitioned(dsn: str) -> list[str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'p'",
            (SCHEMA,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def differences(got: set[tuple[str, ...]], want: set[tuple[str, ...]]) -> str | None:
    if got == want:
        return None
    missing, extra = sorted(want - got), sorted(got - want)
    text = f"partman has {len(got):,} partitions, plain SQL {len(want):,}"
    if missing:
        text += f"; {len(missing):,} missing, e.g. {' / '.join(missing[0])}"
    if extra:
        text += f"; {len(extra):,} not in plain SQL's, e.g. {' / '.join(extra[0])}"
    return text


# --------------------------------------------------------------------------- one shape


class Warnings(logging.Handler):
    """partman's warnings during a shape's run, by event, with their first text and a count
    (instead of one bare line per table from logging's last-resort handler)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: dict[str, tuple[str, int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event = str(getattr(record, "event", record.getMessage()))
        text = str(getattr(record, "warning", "") or record.getMessage())
        first, n = self.seen.get(event, (text, 0))
        self.seen[event] = (first, n + 1)


def manager_for(pool: Any, clock: partman.Clock, warnings: Warnings) -> partman.Manager:
    logger = logging.getLogger("partman.bench.shapes")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.handlers[:] = [warnings]
    return partman.Manager(pool, clock=clock, logger=logger, config=partman.Config())


@dataclass
class Outcome:
    """What one shape measured: seconds by phase and contestant (None: failed, not run)."""

    created: int = 0  # relations the create phase makes
    total: int = 0  # relations in the steady state
    dropped: int = 0  # relations retention drops
    partman: dict[str, float] = field(default_factory=dict)
    trips: dict[str, int] = field(default_factory=dict)
    plain: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> shape -> s
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Run:
    def __init__(self, srv: b.Server, shape: Shape, parents: int, tenants: int,
                 batches: Sequence[int], runs: int) -> None:  # fmt: skip
        self.srv, self.shape, self.batches, self.runs = srv, shape, batches, runs
        prefix = {"list": "l", "hash": "h"}.get(shape.sub or "", shape.key[0])
        count = 1 if shape.sub == "list" else parents
        self.parents = [f"{prefix}_{i:04d}" for i in range(count)]
        self.tenants = b.tenant_ids(tenants) if shape.sub == "list" else []
        self.out = Outcome()
        self.databases: set[str] = set()
        units = shape.units
        self.first = units(self.parents, self.tenants, range(AHEAD + 1), True)
        self.later = units(self.parents, self.tenants, range(AHEAD + 1, AHEAD + 1 + LATER), False)
        self.victims = units(self.parents, self.tenants, range(EXPIRE), False)
        # plain SQL's trees: the reference partman's are compared with
        self.trees: dict[str, set[tuple[str, ...]]] = {}

    def database(self, who: str) -> str:
        name = f"shapes_{self.shape.key}_{who}"
        self.databases.add(name)
        dsn = b.create_database(self.srv, name)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
            for p in self.parents:
                conn.execute(sql.SQL(self.shape.ddl).format(ident(p)))
        return dsn

    def drop(self, who: str) -> None:
        name = f"shapes_{self.shape.key}_{who}"
        b.drop_database(self.srv, name)
        self.databases.discard(name)

    # --------------------------------------------------------------- plain SQL

    def plain(self) -> None:
        """Every create contestant; the last batch size of each statement shape is grown by
        LATER periods and then drops the victims, DROP list and DETACH CONCURRENTLY."""
        out = self.out
        out.created = sum(u.relations() for u in self.first)
        out.dropped = sum(v.relations() for v in self.victims)
        create: dict[str, float] = {}
        retention: dict[str, float] = {}
        drops = {"partition_of": ("list", self.batches[-1]), "like_attach": ("concurrently", 1)}
        for shape in ("partition_of", "like_attach"):
            for batch in self.batches:
                who = f"plain_{shape}_{batch}"
                b.progress(f"{self.shape.key}: plain SQL create, {shape}, {batch}/txn")
                dsn = self.database(who)
                create[f"{shape}:{batch}"], _ = b.timed(
                    lambda: plain_create(dsn, self.first, shape, batch)  # noqa: B023
                )
                if batch == self.batches[-1]:
                    self.trees.setdefault("create", tree(dsn))
                    plain_create(dsn, self.later, shape, batch)
                    self.trees.setdefault("grown", tree(dsn))
                    if "steady" not in out.plain:  # the catalog partman's pass reads, bare
                        parents = partitioned(dsn)
                        with psycopg.connect(dsn, autocommit=True) as conn:
                            bare, _ = b.median_of(
                                lambda: b.bare_catalog_query(conn, parents),  # noqa: B023
                                self.runs,
                            )
                        out.plain["steady"] = {"bare": bare}
                    how, k = drops[shape]
                    b.progress(f"{self.shape.key}: plain SQL retention, {how}, {k}/txn")
                    retention[f"{how}:{k}"], _ = b.timed(
                        lambda: plain_drop(dsn, self.victims, how, k)  # noqa: B023
                    )
                    self.trees.setdefault("retention", tree(dsn))
                self.drop(who)
        out.plain["create"] = create
        out.plain["retention"] = retention
        out.total = len(self.trees["grown"])

    # --------------------------------------------------------------- partman

    def partman(self) -> None:
        """partman's phases in a database of its own, its trees compared with plain SQL's."""
        out, shape = self.out, self.shape
        dsn = self.database("partman")
        pool = b.counting_pool(dsn)
        clock = partman.SimulatedClock(b.START)
        warnings = Warnings()
        manager = manager_for(pool, clock, warnings)
        phase = "registration"
        try:
            manager.init()
            for p in self.parents:
                table = shape.partman_table(p)
                if self.tenants:
                    manager.register_tenants(table, list(self.tenants))
                else:
                    manager.add_managed_table(table)
            phase = "create"
            b.progress(f"{shape.key}: partman create")
            self.timed_pass(manager, phase)
            self.compare(dsn, "create")
            phase = f"{LATER} periods later"
            if shape.interval is None:  # the max id moves on instead of the clock
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for p in self.parents:
                        conn.execute(
                            sql.SQL("INSERT INTO {} (id) VALUES (%s)").format(ident(p)),
                            (AHEAD * ID_WIDTH + ID_WIDTH // 2,),
                        )
            else:
                clock.advance(LATER * shape.interval)
            self.check(manager.maintain(), phase)
            self.compare(dsn, "grown")
            phase = "steady"
            b.progress(f"{shape.key}: partman, passes with nothing to do")
            b.Trips.n = 0
            t, _ = b.median_of(lambda: self.check(manager.maintain(), "steady"), self.runs)
            out.partman["steady"] = t
            out.trips["steady"] = b.Trips.n // self.runs
            phase = "retention"
            for p in self.parents:
                manager.add_managed_table(shape.partman_table(p, shape.retention()))
            b.progress(f"{shape.key}: partman retention")
            self.timed_pass(manager, phase)
            self.compare(dsn, "retention")
        except Exception as exc:
            out.problems.append(f"partman, {phase}: {type(exc).__name__}: {exc}")
        finally:
            for event, (text, n) in warnings.seen.items():
                out.warnings.append(f"partman logged {event} {n:,} times, e.g. {text}")
            manager.close()
            pool.close()
            self.drop("partman")

    def timed_pass(self, manager: partman.Manager, phase: str) -> None:
        b.Trips.n = 0
        t, report = b.timed(manager.maintain)
        self.out.trips[phase] = b.Trips.n
        self.check(report, phase)
        self.out.partman[phase] = t

    @staticmethod
    def check(report: partman.Report, phase: str) -> None:
        if not report.ok:
            raise RuntimeError(f"pass not clean ({phase}): {report}")

    def compare(self, dsn: str, phase: str) -> None:
        diff = differences(tree(dsn), self.trees[phase])
        if diff:
            self.out.problems.append(f"partman's partitions after {phase}: {diff}")

    def run(self) -> Outcome:
        try:
            self.plain()
            self.partman()
        finally:
            for name in sorted(self.databases):
                b.drop_database(self.srv, name)
        return self.out


# --------------------------------------------------------------------------- the table

PHASES = {
    "create": "1. create",
    "steady": "2. nothing to do",
    "retention": "3. retention",
}
STATEMENTS = {
    "partition_of": "PARTITION OF, {k}/txn",
    "like_attach": "LIKE + ATTACH, {k}/txn",
    "list": "DROP a, b, ..., {k}/txn",
    "concurrently": "DETACH CONCURRENTLY + DROP",
    "bare": "bare catalog query",
}
SAME_LOCKS = {"create": "like_attach", "retention": "concurrently"}


def rows_for(shape: Shape, out: Outcome) -> list[list[Any]]:
    rows: list[list[Any]] = []
    size = {
        "create": out.created,
        "steady": out.total,
        "retention": out.dropped,
    }
    for phase, title in PHASES.items():
        plain = out.plain.get(phase, {})
        pm = out.partman.get(phase)
        fastest = min(plain, key=plain.__getitem__) if plain else None
        same = next((k for k in plain if k.split(":")[0] == SAME_LOCKS.get(phase)), None)
        cells: list[Any] = [
            f"{shape.key} {title}",
            f"{size[phase]:,}",
            "-" if pm is None else b.secs(pm),
            "-" if pm is None else f"{out.trips.get(phase, 0):,}",
        ]
        if fastest is None:
            cells += ["-", "-", "-", "-"]  # nothing measured
        else:
            what, _, k = fastest.partition(":")
            cells += [
                b.secs(plain[fastest]),
                STATEMENTS[what].format(k=k),
                "-" if pm is None else b.ratio(pm, plain[fastest]),
                "-" if pm is None or same is None else b.ratio(pm, plain[same]),
            ]
        rows.append(cells)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma separated, of: "
                        + ", ".join(SHAPES))  # fmt: skip
    parser.add_argument("--parents", type=int, default=100, help="parents of each shape")
    parser.add_argument("--tenants", type=int, default=100, help="tenants of the LIST shape")
    parser.add_argument(
        "--batches", default="32,256", help="plain SQL create: partitions (subtrees) per txn"
    )
    parser.add_argument("--runs", type=int, default=5, help="passes with nothing to do")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.shapes.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}; choose from {', '.join(SHAPES)}")
    parents = 5 if args.quick else args.parents
    tenants = 5 if args.quick else args.tenants
    batches = [32] if args.quick else [int(x) for x in args.batches.split(",")]
    runs = 3 if args.quick else args.runs

    rows: list[list[Any]] = []
    notes: list[str] = []
    started = time.perf_counter()
    with b.server("18") as srv:
        b.progress(srv.describe())
        for key in keys:
            shape = SHAPES[key]
            t0 = time.perf_counter()
            out = Run(srv, shape, parents, tenants, batches, runs).run()
            b.progress(f"{key}: {b.secs(time.perf_counter() - t0)}")
            rows += rows_for(shape, out)
            for problem in out.problems:
                notes.append(f"[red]{key}[/]: {problem}")
            for warning in out.warnings:
                notes.append(f"[yellow]{key}[/]: {warning}")
    b.print_table(
        f"7. Shapes: partman against plain SQL, PostgreSQL {srv.version}; {parents} parents "
        f"a shape (list: 1 parent, {tenants} tenants), {AHEAD + 1} periods made, "
        f"{LATER} more later, {EXPIRE} expired",
        [
            "shape, phase",
            "partitions",
            "partman",
            "round trips",
            "fastest plain SQL",
            "its statements",
            "partman / fastest",
            "partman / same locks",
        ],
        rows,
        [
            *(f"{s.key}: {s.label}" for s in (SHAPES[k] for k in keys)),
            "partitions: relations made, in the steady state, dropped (hash: the leaves "
            "counted too; list: the tenant partitions too)",
            "same locks: plain CREATE (LIKE) + ATTACH for create, DETACH CONCURRENTLY + DROP "
            "for retention, as partman does",
            *notes,
            f"{b.secs(time.perf_counter() - started)} in all",
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
