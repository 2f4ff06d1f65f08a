"""Crash safety: a pass SIGKILLed at any point is repaired by the next one.

The scenario (set up per server in template databases, then copied for every kill):

* convoy.events, with a DEFAULT partition, and convoy.event_deliveries, without one; two
  tenants each, with different retentions and retention actions (drop, archive into
  convoy_archive, detach and keep).
* Before the first pass the default partition holds ~200 rows spread over ten days, some of
  them more than ``MOVE_BATCH_ROWS`` for one tenant and day (so those partitions are staged:
  created unattached, filled batch by batch, attached at the end).
* A first pass at T0 makes today and two days ahead, then rows are written into those
  partitions. The pass at T1 = T0 + 4 days then creates (moving rows out of the default,
  staged or not), drops and archives with plain DETACH on events (it has a default partition),
  and drops and detaches with DETACH CONCURRENTLY on event_deliveries.

The pass at T1 is run uninterrupted once, in a copy of the template: that is the reference.
Then, in a fresh copy each time, it is run by ``crash_worker.py`` in a process that SIGKILLs
itself just before its N-th step (every N), or its N-th round trip (every N not already just
after a step), or while a DETACH CONCURRENTLY waits on the server; or the pass that repairs
is killed in turn, at each step of what it resumes. One more uninterrupted pass follows, and
everything must be as in the reference: the same relations with the same bounds and
comments, every row once and in the same table, the same ownership records and states, no
pass-in-progress state or pending detach left behind, one 'ok' audit row per operation, and
nothing left to do.

The shapes scenario runs the same kills (`any_scenario`) on the other shapes partman manages,
all in one database so that one pass does each shape's work: an id table (premake from the
newest id, rows staged out of its default partition, retention by distance), epoch
milliseconds, UUIDv7 (detached and kept), RANGE -> HASH (staged, then archived) and LIST ->
RANGE (a tenant's retention, and a new tenant's partition with its periods). Kill points that
leave the database as another one does are killed once; round trips that are the same in
every pass (before its first step, after its last) are killed in convoy only.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import json
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import conninfo, sql

import partman

from pgserver import Server
from seed import NOW, create_seed_schema, seed_table

WORKER = Path(__file__).resolve().with_name("crash_worker.py")
DAY = dt.timedelta(days=1)
T0 = NOW  # 2026-03-10 12:00 UTC
T1 = T0 + 4 * DAY
DAY0 = T0.replace(hour=0)
MOVE_BATCH_ROWS = 20
CONFIG = partman.Config(
    move_batch_rows=MOVE_BATCH_ROWS, retry_backoff=dt.timedelta(milliseconds=10)
)
PARALLEL = 2  # kill points run at once (each in its own database and process)
WORKER_TIMEOUT = 60  # seconds; a pass takes well under one
ARCHIVE = "convoy_archive"
SCHEMAS = ("convoy", ARCHIVE)

# Rows waiting in events' DEFAULT partition before the first pass: (tenant, day, rows), the
# day counted from T0's. Ranges above MOVE_BATCH_ROWS are staged; "zz" is no tenant's, and
# day 3 is never made (premake starts at the current day): those rows stay in the default.
DEFAULT_ROWS = [
    ("p1", 0, 30),
    ("p1", 1, 5),
    ("p1", 3, 8),
    ("p1", 4, 45),
    ("p1", 5, 3),
    ("p2", 0, 4),
    ("p2", 2, 10),
    ("p2", 4, 12),
    ("p2", 5, 40),
    ("p2", 6, 21),
    ("zz", 4, 2),
]
# Rows written after the first pass, into the partitions it made: (table, tenant, day, rows).
OLD_ROWS = [
    ("events", "p1", 0, 5),
    ("events", "p1", 1, 4),
    ("events", "p2", 0, 6),
    ("events", "p2", 1, 3),
    ("event_deliveries", "p1", 0, 7),
    ("event_deliveries", "p1", 1, 4),
    ("event_deliveries", "p1", 2, 2),
    ("event_deliveries", "p2", 0, 5),
    ("event_deliveries", "p2", 1, 2),
    ("event_deliveries", "p2", 2, 3),
]
# Per table: (tenant, retention, action). At T1, "2 days" retires days 0 and 1, "3 days" day 0.
TENANTS = {
    "events": [("p1", "2 days", "drop"), ("p2", "3 days", "archive")],
    "event_deliveries": [("p1", "2 days", "drop"), ("p2", "3 days", "detach")],
}
PASS_STATES = ("staging", "detaching", "detached")  # a pass under way; never left behind

Conn = psycopg.Connection[Any]


# -- the scenario -----------------------------------------------------------------------------


def _insert(conn: Conn, table: str, tenant: str, day: int, rows: int, prefix: str) -> None:
    conn.execute(
        sql.SQL(
            "INSERT INTO {} (id, project_id, created_at, data) "
            "SELECT %(prefix)s || i, %(tenant)s, %(day)s + i * interval '7 minutes', "
            "jsonb_build_object('i', i, 'day', %(n)s) FROM generate_series(1, %(rows)s) i"
        ).format(sql.Identifier("convoy", table)),
        {
            "prefix": f"{prefix}-{tenant}-d{day}-",
            "tenant": tenant,
            "day": DAY0 + day * DAY,
            "n": day,
            "rows": rows,
        },
    )


def set_up_t0(dsn: str) -> None:
    """The seed schema, rows in the default, tenants, the pass at T0, rows in its partitions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_seed_schema(conn)
        conn.execute("CREATE TABLE convoy.events_default PARTITION OF convoy.events DEFAULT")
        for tenant, day, rows in DEFAULT_ROWS:
            _insert(conn, "events", tenant, day, rows, "default")
        with partman.Manager(dsn, config=CONFIG, clock=partman.SimulatedClock(T0)) as m:
            for table, tenants in TENANTS.items():
                m.add_managed_table(
                    seed_table(
                        table,
                        partition_count=2,
                        default_partition=table == "events",
                        archive_schema=ARCHIVE,
                    )
                )
                m.register_tenants(
                    f"convoy.{table}",
                    [
                        partman.Tenant(tenant_id=t, retention_period=r, retention_action=a)
                        for t, r, a in tenants
                    ],
                )
            report = m.maintain()
            assert report.ok, str(report)
            assert len(report.created) == 12, str(report)
        for table, tenant, day, rows in OLD_ROWS:
            _insert(conn, table, tenant, day, rows, "old")


# -- the shapes -------------------------------------------------------------------------------
#
# The same story for each key axis and level partman manages besides RANGE (tenant, time), all
# in one database (schema "shapes") so that one pass at T1 does every shape's work: set up at
# T0 (tables, rows waiting in default partitions, one pass, then rows in what it made), the
# pass at T1 creates (moving rows out of default partitions, staged or not) and retires.

SHAPES_SCHEMA = "shapes"
SHAPES_ARCHIVE = "shapes_archive"


def _epoch_ms(day: int) -> int:
    return int((DAY0 + day * DAY).timestamp()) * 1000


def _uuid7(ms: int, rest: int) -> uuid.UUID:
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62) | rest)


@dataclasses.dataclass(frozen=True)
class Shape:
    """One table of the shapes scenario: its DDL, its Table, its rows before and after T0's
    pass, and (LIST) the tenants registered after it, new at T1."""

    ddl: str
    table: partman.Table
    before: Callable[[Conn], None] = lambda conn: None
    after: Callable[[Conn], None] = lambda conn: None
    tenants_after: tuple[str, ...] = ()


def _ids(conn: Conn) -> None:
    for lo, hi in [(1, 2999), (3500, 3509), (4000, 4044)]:
        conn.execute(
            "INSERT INTO shapes.orders SELECT g, %s + g * interval '1 minute', 'n' || g "
            "FROM generate_series(%s::int8, %s::int8) g",
            (DAY0, lo, hi),
        )


def _hits(conn: Conn) -> None:
    for day in range(3):
        conn.execute(
            "INSERT INTO shapes.hits SELECT %s + g * 600000, '/d' || %s || '/' || g "
            "FROM generate_series(0, 9) g",
            (_epoch_ms(day), day),
        )


def _events(conn: Conn) -> None:
    rows = [
        (_uuid7(_epoch_ms(day) + k * 3_600_000 + k, 0x5EED + k), f"d{day}-{k}")
        for day in range(3)
        for k in range(8)
    ]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO shapes.events VALUES (%s, %s)", rows)


def _readings(*days: tuple[int, int]) -> Callable[[Conn], None]:
    def insert(conn: Conn) -> None:
        for day, rows in days:
            conn.execute(
                "INSERT INTO shapes.readings SELECT g, %s + g * interval '13 minutes', g / 4.0 "
                "FROM generate_series(1, %s) g",
                (DAY0 + day * DAY, rows),
            )

    return insert


def _jobs(conn: Conn) -> None:
    conn.execute(
        "INSERT INTO shapes.jobs SELECT 'a', %s + g * interval '1 hour', g "
        "FROM generate_series(0, 71) g",
        (DAY0,),
    )


SHAPES = [
    # Integer ids: windows of 1000, two ahead, retention by distance (1500 ids below the
    # newest), a default partition. T0's pass (no row yet) makes [0, 3000); rows fill it up
    # to id 2999, and ids past it wait in the default: 10 of [3000, 4000) and 45 of
    # [4000, 5000), up to 4044. The newest id counts the default's, so at T1 it is 4044:
    # [4000, 5000) is made (staged: more than MOVE_BATCH_ROWS to move), then [5000, 7000),
    # and [0, 2000) (wholly below 4044 - 1500) dropped; [3000, 4000) is behind the window
    # under way, never made, and its rows stay in the default (as a time table's past).
    Shape(
        "CREATE TABLE shapes.orders (id bigint NOT NULL, created_at timestamptz NOT NULL, "
        "note text, PRIMARY KEY (id)) PARTITION BY RANGE (id)",
        partman.Table(
            name="orders",
            schema=SHAPES_SCHEMA,
            partition_by="id",
            partition_interval=1000,
            partition_count=2,
            retention_period=1500,
            default_partition=True,
        ),
        after=_ids,
    ),
    # Epoch milliseconds (bigint): days, two ahead, two kept, no default partition (retention
    # detaches CONCURRENTLY): T1 makes days 4-6 and drops days 0 and 1.
    Shape(
        "CREATE TABLE shapes.hits (at bigint NOT NULL, path text) PARTITION BY RANGE (at)",
        partman.Table(
            name="hits",
            schema=SHAPES_SCHEMA,
            partition_by="at",
            epoch="milliseconds",
            partition_count=2,
            retention_period="2 days",
        ),
        after=_hits,
    ),
    # UUIDv7: days, two ahead, two kept and detached (kept as tables) CONCURRENTLY.
    Shape(
        "CREATE TABLE shapes.events (id uuid NOT NULL, body text, PRIMARY KEY (id)) "
        "PARTITION BY RANGE (id)",
        partman.Table(
            name="events",
            schema=SHAPES_SCHEMA,
            partition_by="id",
            partition_count=2,
            retention_period="2 days",
            retention_action="detach",
        ),
        after=_events,
    ),
    # RANGE (at) -> HASH (device_id, modulus 4): days, two ahead, two kept and archived into
    # shapes_archive, a default partition. Rows wait in the default for days 0 (moved at
    # T0), 3 (never made: they stay), 4 (45 rows: staged at T1, the staging table itself
    # partitioned by HASH) and 5 (moved as it is made).
    Shape(
        "CREATE TABLE shapes.readings (device_id int NOT NULL, at timestamptz NOT NULL, "
        "v float8, PRIMARY KEY (device_id, at)) PARTITION BY RANGE (at); "
        "CREATE TABLE shapes.readings_default PARTITION OF shapes.readings DEFAULT",
        partman.Table(
            name="readings",
            schema=SHAPES_SCHEMA,
            partition_by="at",
            partition_count=2,
            retention_period="2 days",
            retention_action="archive",
            archive_schema=SHAPES_ARCHIVE,
            sub_partition_by="device_id",
            sub_partition_modulus=4,
            default_partition=True,
        ),
        before=_readings((0, 25), (3, 6), (4, 45), (5, 7)),
        after=_readings((1, 9), (2, 11)),
    ),
    # LIST (tenant) -> RANGE (at): tenant "a" from T0 (days, two ahead, two kept: T1 makes
    # days 4-6 under its partition and drops days 0 and 1), tenant "b" registered after T0's
    # pass: T1 makes its partition with its periods and attaches it last.
    Shape(
        "CREATE TABLE shapes.jobs (tenant text NOT NULL, at timestamptz NOT NULL, v int) "
        "PARTITION BY LIST (tenant)",
        partman.Table(
            name="jobs",
            schema=SHAPES_SCHEMA,
            tenant_id="a",
            tenant_id_column="tenant",
            tenant_partitioning="list",
            partition_by="at",
            partition_count=2,
            retention_period="2 days",
        ),
        after=_jobs,
        tenants_after=("b",),
    ),
]


def set_up_shapes(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SHAPES_SCHEMA)))
        for shape in SHAPES:
            conn.execute(shape.ddl)  # type: ignore[arg-type]
            shape.before(conn)
        with partman.Manager(dsn, config=CONFIG, clock=partman.SimulatedClock(T0)) as m:
            for shape in SHAPES:
                m.add_managed_table(shape.table)
            report = m.maintain()
            assert report.ok, str(report)
            # 3 periods each (LIST: tenant a's partition with its 3), and the ids' default
            assert len(report.created) == 4 * 3 + 1, str(report)
            for shape in SHAPES:
                if shape.tenants_after:
                    m.register_tenants(shape.table, list(shape.tenants_after))
        for shape in SHAPES:
            shape.after(conn)


@dataclasses.dataclass(frozen=True)
class Setup:
    """A scenario: how its databases are set up at T0, and what a snapshot of them reads."""

    name: str
    set_up_t0: Callable[[str], None]
    schemas: tuple[str, ...]
    row: str = "t::text"
    """Each row as snapshot reads it (the relation is `t`)."""
    min_steps: int = 1
    """Steps the pass at T1 takes at least (a check that the scenario still does its job)."""
    min_roundtrips: int = 1
    """Round trips at T1 not right after a step, at least."""
    skeleton: bool = True
    """Also kill between the round trips before the pass's first step and after its last
    (the pass lock, the reads, ANALYZE, the run record): the same in every scenario, so
    killed in one."""
    repair_kills: tuple[str, ...] = ("move_batch", "attach_staged", "finish")
    """The steps whose first kill (per kind, per table with `per_table`) the repair-pass
    test starts from."""
    per_table: bool = False


CONVOY = Setup(
    "convoy",
    set_up_t0,
    SCHEMAS,
    "t.id, t.project_id, t.created_at::text, t.data::text",
    min_steps=40,
    min_roundtrips=15,
)
SHAPES_SETUP = Setup(
    "shapes",
    set_up_shapes,
    (SHAPES_SCHEMA, SHAPES_ARCHIVE),
    min_steps=50,
    min_roundtrips=12,
    skeleton=False,
    # retention's finishing steps are the executor's whatever the shape (killed at every
    # step above, and repaired twice in convoy); staging is where the shape matters: an id
    # table's newest id, a period partitioned by HASH filled before it is attached
    repair_kills=("move_batch", "attach_staged"),
    per_table=True,
)
SETUPS = {s.name: s for s in [CONVOY, SHAPES_SETUP]}


def snapshot(conn: Conn, setup: Setup = CONVOY) -> dict[str, Any]:
    """What an uninterrupted pass must leave: relations with bounds and comments, every row
    with the table it is in, and partman's ownership records."""
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        relations = conn.execute(
            """
SELECT n.nspname::text, c.relname::text, c.relkind::text, pn.nspname || '.' || p.relname,
       pg_get_expr(c.relpartbound, c.oid), i.inhdetachpending,
       regexp_replace(obj_description(c.oid, 'pg_class'), ' on \\d{4}-\\d{2}-\\d{2} ',
                      ' on <date> ')
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
  LEFT JOIN pg_class p ON p.oid = i.inhparent
  LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
 WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
 ORDER BY 1, 2
""",
            (list(setup.schemas),),
        ).fetchall()
        rows: list[tuple[Any, ...]] = []
        for schema, name, kind, *_ in relations:
            if kind != "r":
                continue
            rows += conn.execute(
                sql.SQL("SELECT {}, {} FROM {} t").format(
                    sql.Literal(f"{schema}.{name}"),
                    sql.SQL(setup.row),
                    sql.Identifier(schema, name),
                )
            ).fetchall()
        owned = conn.execute(
            "SELECT schema_name, partition_name, parent_schema, parent_name, tenant_id, "
            "lower_bound, upper_bound, origin, state, action FROM partman_meta.partitions "
            "ORDER BY 1, 2"
        ).fetchall()
        schemas = conn.execute(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY 1",
            (list(setup.schemas),),
        ).fetchall()
    return {
        "schemas": [s for (s,) in schemas],
        "relations": relations,
        "rows": sorted(rows),
        "owned": owned,
    }


def audit_ok(conn: Conn) -> collections.Counter[tuple[str, str]]:
    """(operation, partition) of every 'ok' audit row written by passes at T1."""
    rows = conn.execute(
        "SELECT a.operation, a.partition_name FROM partman_meta.audit_log a "
        "JOIN partman_meta.runs r ON r.id = a.run_id "
        "WHERE a.outcome = 'ok' AND r.started_at = %s",
        (T1,),
    ).fetchall()
    return collections.Counter((op, name) for op, name in rows)


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    out = []
    for key in expected:
        want, have = expected[key], got[key]
        if want == have:
            continue
        if isinstance(want, list):
            missing = [x for x in want if x not in have]
            extra = [x for x in have if x not in want]
            out.append(
                f"{key}: missing {missing[:4]}{' ...' if len(missing) > 4 else ''} "
                f"({len(missing)}), unexpected {extra[:4]}{' ...' if len(extra) > 4 else ''} "
                f"({len(extra)})"
            )
        else:
            out.append(f"{key}: expected {want!r}, got {have!r}")
    return out


# -- databases and the worker -----------------------------------------------------------------


def _dbname(dsn: str) -> str:
    return str(conninfo.conninfo_to_dict(dsn)["dbname"])


class Databases:
    """Copies of the template database, each dropped after use."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.admin = psycopg.connect(server.dsn, autocommit=True)

    def create(self, template: str | None = None) -> str:
        name = f"crash_{secrets.token_hex(5)}"
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template or "template0")
        )
        if self.server.version >= 15:
            query = sql.SQL("{} STRATEGY file_copy").format(query)
        for attempt in range(50):  # the template's last backend may still be exiting
            try:
                self.admin.execute(query)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.05)
        return self.server.dsn_for(name)

    def drop(self, dsn: str) -> None:
        name = _dbname(dsn)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:  # DROP ... FORCE sleeps 100 ms on an exiting backend
            row = self.admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()
            if row is None or row[0] == 0:
                break
            time.sleep(0.005)
        self.admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    @contextlib.contextmanager
    def copy(self, template_dsn: str) -> Iterator[str]:
        dsn = self.create(_dbname(template_dsn))
        try:
            yield dsn
        finally:
            self.drop(dsn)

    def close(self) -> None:
        self.admin.close()


@dataclasses.dataclass
class WorkerRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    @property
    def steps(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "step"]

    @property
    def roundtrips(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "roundtrip"]

    @property
    def last(self) -> str:
        return json.dumps(self.events[-1]) if self.events else "(no event)"


class Zygote:
    """A `crash_worker.py --serve` process: it has imported partman once, and forks a child
    for each pass (a crash of the child is a crash as real as a process started for it)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        """(returncode, stdout, stderr) of one pass."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            request = {"argv": argv, "stdout": str(out), "stderr": str(err)}
            request["timeout"] = WORKER_TIMEOUT
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
            if not answer:
                raise RuntimeError(f"crash_worker.py --serve exited ({self.proc.poll()})")
            return json.loads(answer)["returncode"], out.read_text(), err.read_text()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


_ZYGOTES: queue.Queue[Zygote] = queue.Queue()
_STARTED: list[Zygote] = []


def run_worker(dsn: str, *args: str) -> WorkerRun:
    """The pass at T1 in a process of its own (forked by a free Zygote; one is started when
    none is free, as many as passes run at once)."""
    try:
        zygote = _ZYGOTES.get_nowait()
    except queue.Empty:
        zygote = Zygote()
        _STARTED.append(zygote)
    try:
        argv = ["--dsn", dsn, "--now", T1.isoformat(), "--move-batch-rows", str(MOVE_BATCH_ROWS)]
        returncode, stdout, stderr = zygote.run([*argv, *args])
    finally:
        _ZYGOTES.put(zygote)
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return WorkerRun(returncode, events, stderr)


def stop_zygotes() -> None:
    while _STARTED:
        _STARTED.pop().close()
    while not _ZYGOTES.empty():
        _ZYGOTES.get_nowait()


def repair_pass(dsn: str) -> tuple[partman.Report, partman.Plan]:
    """One more uninterrupted pass at T1, in this process, and the plan after it."""
    with partman.Manager(dsn, config=CONFIG, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        return report, m.plan()


# -- the tests --------------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    setup: Setup
    dbs: Databases
    templates: list[str]  # DSNs of databases set up at T0 (one per parallel run), copied
    run: WorkerRun  # the uninterrupted pass at T1: its steps and round trips
    reference: dict[str, Any]  # and what it left
    audit: collections.Counter[tuple[str, str]]

    @property
    def template(self) -> str:
        return self.templates[0]


class Scenarios:
    """The scenarios of one server, each set up when first asked for, all dropped at the end."""

    def __init__(self, server: Server) -> None:
        self.dbs = Databases(server)
        self.templates: list[str] = []
        self.made: dict[str, Scenario] = {}

    def get(self, name: str) -> Scenario:
        found = self.made.get(name)
        if found is None:
            found = self.made[name] = self._set_up(SETUPS[name])
        return found

    def _set_up(self, setup: Setup) -> Scenario:
        # Copies of one template share its relations' OIDs; runs at the same time use copies
        # of templates set up apart (see test_a_lock_in_another_database_...).
        templates: list[str] = []
        for _ in range(PARALLEL):
            templates.append(self.dbs.create())
            self.templates.append(templates[-1])
            setup.set_up_t0(templates[-1])
        with self.dbs.copy(templates[0]) as dsn:
            run = run_worker(dsn, "--scenario", setup.name)
            assert run.returncode == 0, f"{run.last}\n{run.stderr[-3000:]}"
            with psycopg.connect(dsn, autocommit=True) as conn:
                reference, audit = snapshot(conn, setup), audit_ok(conn)
        return Scenario(setup, self.dbs, templates, run, reference, audit)

    def close(self) -> None:
        try:
            for template in self.templates:
                self.dbs.drop(template)
        finally:
            self.dbs.close()
            stop_zygotes()


@pytest.fixture(scope="module")
def scenarios(pg_server: Server) -> Iterator[Scenarios]:
    made = Scenarios(pg_server)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def scenario(scenarios: Scenarios) -> Scenario:
    """The convoy scenario (RANGE (tenant, time), two tables, every retention action)."""
    return scenarios.get("convoy")


@pytest.fixture(scope="module", params=list(SETUPS))
def any_scenario(scenarios: Scenarios, request: pytest.FixtureRequest) -> Scenario:
    """Each scenario in turn: convoy, then one per shape."""
    return scenarios.get(request.param)


@pytest.fixture(scope="module")
def shapes(scenarios: Scenarios) -> Scenario:
    """The shapes scenario: ids, epoch milliseconds, UUIDv7, RANGE -> HASH, LIST -> RANGE."""
    return scenarios.get("shapes")


def check_repaired(scenario: Scenario, dsn: str) -> list[str]:
    """Run one more uninterrupted pass at T1; every way the result differs from the reference."""
    problems = []
    report, plan = repair_pass(dsn)
    if not report.ok:
        problems.append(f"the next pass is not ok: {report}")
    if len(plan):
        problems.append(f"a further pass would still do something: {plan}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = snapshot(conn, scenario.setup)
        audit = audit_ok(conn)
    left = [o for o in got["owned"] if o[8] in PASS_STATES]
    if left:
        problems.append(f"pass states left behind: {left}")
    pending = [r for r in got["relations"] if r[5]]
    if pending:
        problems.append(f"detach-pending partitions left behind: {pending}")
    problems += differences(scenario.reference, got)
    if audit != scenario.audit:
        problems.append(
            f"'ok' audit rows at T1: missing {dict(scenario.audit - audit)}, "
            f"extra {dict(audit - scenario.audit)}"
        )
    return problems


def crash_and_repair(
    scenario: Scenario, *worker_args: str, template: str | None = None
) -> tuple[WorkerRun, list[str]]:
    """The pass at T1 in a worker that kills itself, then one uninterrupted pass."""
    with scenario.dbs.copy(template or scenario.template) as dsn:
        killed = run_worker(dsn, *worker_args)
        if killed.returncode != -signal.SIGKILL:
            return killed, [
                f"the worker was not killed: exit {killed.returncode}, last event {killed.last}"
                f"\n{killed.stderr[-2000:]}"
            ]
        return killed, check_repaired(scenario, dsn)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _same_event(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for run ids (each run has its own)."""
    return json.loads(_UUID.sub("<uuid>", json.dumps(a))) == json.loads(
        _UUID.sub("<uuid>", json.dumps(b))
    )


def _label(event: dict[str, Any]) -> str:
    if event["event"] == "step":
        return f"{event['step']} for {event['kind']} {event['partition']}"
    return event["sql"][:100]


def test_the_uninterrupted_pass_at_t1_exercises_every_kind_of_step(scenario: Scenario) -> None:
    """The reference itself: what the kills below interrupt, and what they must end with."""
    steps = scenario.run.steps
    kinds = {(e["step"], e["kind"], e["concurrently"]) for e in steps}
    for expected in [
        ("count_default", "create", None),
        ("stage", "create", None),
        ("move_batch", "create", None),
        ("attach_staged", "create", None),
        ("create_moving", "create", None),
        ("create", "create", None),
        ("check", "drop", False),
        ("detach", "drop", False),
        ("detach", "archive", False),
        ("finish", "archive", False),
        ("detach", "drop", True),
        ("detach", "detach", True),
        ("finish", "detach", True),
    ]:
        assert expected in kinds, (expected, sorted(kinds, key=str))
    ref = scenario.reference
    assert ref["schemas"] == ["convoy", ARCHIVE]
    assert not [o for o in ref["owned"] if o[8] in PASS_STATES]
    assert not [r for r in ref["relations"] if r[5]]  # no detach pending
    states = collections.Counter(o[8] for o in ref["owned"])
    assert states == {"attached": 18, "kept": 1, "archived": 1}, states
    in_default = [r for r in ref["rows"] if r[0] == "convoy.events_default"]
    assert sorted({r[1].rsplit("-", 1)[0] for r in in_default}) == [
        "default-p1-d3",
        "default-zz-d4",
    ]
    inserted = sum(n for *_, n in DEFAULT_ROWS) + sum(n for *_, n in OLD_ROWS)
    dropped = (30 + 5) + (5 + 4) + (7 + 4)  # p1 days 0-1: events (default, old), deliveries
    assert len(ref["rows"]) == inserted - dropped
    assert sum(scenario.audit.values()) == len(scenario.audit) == 12 + 6


def test_the_uninterrupted_pass_at_t1_does_each_shapes_work(shapes: Scenario) -> None:
    """The shapes reference: what the kills below interrupt, and what they must end with."""
    did = collections.defaultdict(set)
    for e in shapes.run.steps:
        did[e["table"]].add((e["step"], e["kind"], e["concurrently"]))
    assert {
        ("stage", "create", None),
        ("move_batch", "create", None),
        ("attach_staged", "create", None),
        ("create_moving", "create", None),
        ("detach", "drop", False),
    } <= did["shapes.orders"]
    assert {("create", "create", None), ("finish", "drop", True)} <= did["shapes.hits"]
    assert {("create", "create", None), ("finish", "detach", True)} <= did["shapes.events"]
    assert {("attach_staged", "create", None), ("finish", "archive", False)} <= did[
        "shapes.readings"
    ]
    assert {("create", "create", None), ("finish", "drop", True)} <= did["shapes.jobs_a"]
    assert did["shapes.jobs"] == {("create", "create", None)}  # tenant b, new
    ref = shapes.reference
    assert not [o for o in ref["owned"] if o[8] in PASS_STATES]
    assert not [r for r in ref["relations"] if r[5]]
    where = collections.defaultdict(set)
    for relation, row in ref["rows"]:
        where[relation].add(row)
    ids_waiting = {int(r[1:].split(",")[0]) for r in where["shapes.orders_default"]}
    assert ids_waiting == set(range(3500, 3510))  # behind the window under way: they stay
    assert len(where["shapes.orders_p4000"]) == 45
    assert "shapes.orders_p0" not in where and "shapes.orders_p1000" not in where
    names = {(r[0], r[1]): r for r in ref["relations"]}
    for day in (10, 11):
        assert ("shapes", f"hits_p202603{day}") not in names
        assert ("shapes", f"jobs_a_p202603{day}") not in names
        kept = names[("shapes", f"events_p202603{day}")]
        assert kept[3] is None and "retired by partman" in kept[6]  # detached, kept
        archived = names[("shapes_archive", f"readings_p202603{day}")]
        assert archived[3] is None and "(archive)" in archived[6]
    periods = [r for r in ref["relations"] if r[3] == "shapes.jobs_b"]
    assert len(periods) == 3
    assert sum(shapes.audit.values()) == len(shapes.audit) == 16 + 10


T = TypeVar("T")


def in_parallel(
    scenario: Scenario, items: list[T], check: Callable[[str, T], str | None]
) -> list[str]:
    """check(template, item) for every item, as many at once as there are templates (each
    run at a time on copies of its own template); the failures it describes, in order."""
    free: queue.Queue[str] = queue.Queue()
    for template in scenario.templates:
        free.put(template)

    def one(item: T) -> str | None:
        template = free.get()
        try:
            return check(template, item)
        finally:
            free.put(template)

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(scenario.templates)) as pool:
        return [f for f in pool.map(one, items) if f is not None]


def kill_at_each(scenario: Scenario, mode: str, points: list[dict[str, Any]]) -> list[str]:
    """crash_and_repair at each point (a step or round trip event of the reference run); a
    description of each point that was not repaired."""

    def check(template: str, point: dict[str, Any]) -> str | None:
        n = point["n"]
        killed, problems = crash_and_repair(
            scenario, "--kill-mode", mode, "--kill-at", str(n), template=template
        )
        events = killed.steps if mode == "step" else killed.roundtrips
        if not events or not _same_event(events[-1], point):
            problems.insert(0, f"died after {killed.last}, not there")
        if not problems:
            return None
        return f"killed before {mode} {n} ({_label(point)}):\n  " + "\n  ".join(problems)

    return in_parallel(scenario, points, check)


def step_kill_points(run: WorkerRun) -> list[dict[str, Any]]:
    """The steps of a run worth a kill: those with a round trip since the step before. A kill
    before a step that follows another with nothing sent in between (retention checks and
    finishes several partitions, then sends them in one round trip) leaves the database as
    the kill before that other one does."""
    events = run.events
    return [
        e
        for i, e in enumerate(events)
        if e["event"] == "step" and (i == 0 or events[i - 1]["event"] != "step")
    ]


def _equivalent_kills(run: WorkerRun) -> dict[int, dict[str, Any]]:
    """Each step's number, and the step whose kill leaves the database as a kill before it
    does (itself, or the first of the steps before it with nothing sent in between)."""
    out: dict[int, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for e in run.events:
        if e["event"] != "step":
            current = None
            continue
        current = current or e
        out[e["n"]] = current
    return out


def test_a_pass_killed_at_any_step_is_repaired_by_the_next_one(any_scenario: Scenario) -> None:
    """SIGKILL just before each of the pass's steps, one kill per fresh copy; the next pass
    must end where the uninterrupted one did."""
    scenario = any_scenario
    assert len(scenario.run.steps) >= scenario.setup.min_steps
    points = step_kill_points(scenario.run)
    failures = kill_at_each(scenario, "step", points)
    assert not failures, f"{len(failures)} of {len(points)} kill points:\n" + "\n".join(failures)


def test_a_pass_killed_between_any_two_round_trips_is_repaired_by_the_next_one(
    any_scenario: Scenario,
) -> None:
    """Kills where no step is announced: after the run record is written, between the two
    round trips of one transaction, after a DETACH CONCURRENTLY but before its state is
    recorded, before the run is marked finished, ... A round trip right after a step is the
    same kill point as that step (tested above), so it is left out here."""
    scenario = any_scenario
    events = scenario.run.events
    steps = [i for i, e in enumerate(events) if e["event"] == "step"]
    first, last = (0, len(events)) if scenario.setup.skeleton else (steps[0], steps[-1])
    points = [
        e
        for i, e in enumerate(events)
        if e["event"] == "roundtrip"
        and (i == 0 or events[i - 1]["event"] != "step")
        and first <= i <= last
    ]
    # batched retention takes each step for several partitions in one round trip (a kill
    # after each one's DETACH ... CONCURRENTLY is the kill before the next one's step)
    assert len(points) >= scenario.setup.min_roundtrips
    failures = kill_at_each(scenario, "roundtrip", points)
    assert not failures, f"{len(failures)} of {len(points)} kill points:\n" + "\n".join(failures)


def _wait_for(conn: Conn, query: str, params: tuple[Any, ...], timeout: float = 10) -> Any:
    """Poll until `query` returns a row; that row (or None when time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        row = conn.execute(query, params).fetchone()
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.01)


@pytest.mark.parametrize("afterwards", ["server_finishes_it", "backend_is_terminated"])
def test_a_pass_killed_while_detach_concurrently_waits_is_repaired_by_the_next_one(
    scenario: Scenario, afterwards: str
) -> None:
    """A long-running transaction on the partition makes DETACH ... CONCURRENTLY wait (in its
    second transaction, after the partition was marked detach-pending) and the process is
    killed then. The server goes on alone: either it finishes the detach once the old
    transaction ends, or (its backend terminated too) the partition stays detach-pending;
    the next pass finishes either."""
    detaches = [e for e in scenario.run.steps if e["step"] == "detach"]
    chosen = [(k, e) for k, e in enumerate(detaches, 1) if e["concurrently"]]
    assert len(chosen) >= 2
    failures = []
    for k, step in chosen:
        partition = f"convoy.{step['partition']}"
        table = sql.Identifier("convoy", step["partition"])
        with scenario.dbs.copy(scenario.template) as dsn, psycopg.connect(dsn) as app:
            # DETACH ... CONCURRENTLY marks the partition pending and commits, then waits for
            # an ACCESS EXCLUSIVE lock on it: this transaction's ACCESS SHARE holds it back
            app.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(table))
            killed = run_worker(dsn, "--kill-during-detach", str(k), "--lock-timeout-ms", "30000")
            assert killed.returncode == -signal.SIGKILL, (killed.last, killed.stderr[-2000:])
            assert _same_event(killed.steps[-1], step), killed.last
            with psycopg.connect(dsn, autocommit=True) as watcher:
                waiting = _wait_for(
                    watcher,
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE '%%DETACH PARTITION%%CONCURRENTLY%%' "
                    "AND wait_event_type = 'Lock'",
                    (),
                )
                assert waiting is not None, "the DETACH was not waiting when the process died"
                pending = watcher.execute(
                    "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass",
                    (partition,),
                ).fetchone()
                assert pending == (True,)
                if afterwards == "backend_is_terminated":
                    watcher.execute("SELECT pg_terminate_backend(%s)", waiting)
                gone = "SELECT 1 WHERE NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)"
                if afterwards == "backend_is_terminated":
                    assert _wait_for(watcher, gone, waiting) is not None
                app.rollback()  # the long transaction ends
                assert _wait_for(watcher, gone, waiting) is not None
                left = watcher.execute(
                    "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = %s::regclass",
                    (partition,),
                ).fetchone()
                assert left == ((True,) if afterwards == "backend_is_terminated" else None)
            problems = check_repaired(scenario, dsn)
            if problems:
                failures.append(
                    f"killed during detach {k} ({_label(step)}):\n  " + "\n  ".join(problems)
                )
    assert not failures, "\n".join(failures)


def _first_kills_that_need_repair(
    steps: list[dict[str, Any]], setup: Setup
) -> list[dict[str, Any]]:
    """Kill points of the first pass that leave work half done for the next one: rows partly
    moved into a staging table (the second batch of a staging), all moved but not attached,
    and partitions detached but not yet dropped, archived or kept; the first of each kind
    (of each table's, with `per_table`)."""
    found: dict[tuple[str, str, str, bool | None], list[dict[str, Any]]] = {}
    for e in steps:
        if e["step"] in setup.repair_kills:
            table = e["table"] if setup.per_table else ""
            found.setdefault((e["step"], table, e["kind"], e["concurrently"]), []).append(e)
    return [
        events[1 if step == "move_batch" else 0]
        for (step, *_), events in found.items()
        if len(events) > (step == "move_batch")
    ]


def test_a_repair_pass_killed_at_any_of_its_repair_steps_is_repaired_by_the_pass_after_it(
    any_scenario: Scenario,
) -> None:
    """The pass that repairs is a pass too. Kill the first pass where it leaves work half
    done, then kill the second one at each step of the operation it resumes; the third pass
    must still end where the uninterrupted one did."""
    scenario = any_scenario
    points = _first_kills_that_need_repair(scenario.run.steps, scenario.setup)
    assert len(points) == {"convoy": 6, "shapes": 4}[scenario.setup.name], points

    def check(template: str, first: dict[str, Any]) -> str | None:
        dbs = scenario.dbs
        with dbs.copy(template) as once_killed:
            killed = run_worker(once_killed, "--kill-at", str(first["n"]))
            assert killed.returncode == -signal.SIGKILL, killed.last
            with dbs.copy(once_killed) as trace_db:  # the second pass, uninterrupted
                second = run_worker(trace_db)
            # each step of the operation it resumes, or the kill equivalent to it
            same = _equivalent_kills(second)
            resumed = [same[e["n"]] for e in second.steps if e["partition"] == first["partition"]]
            resumed = list({e["n"]: e for e in resumed}.values())
            assert resumed, f"the second pass does not resume {first['partition']}"
            failures = []
            for step in resumed:
                with dbs.copy(once_killed) as dsn:
                    again = run_worker(dsn, "--kill-at", str(step["n"]))
                    if again.returncode != -signal.SIGKILL:
                        problems = [f"not killed: exit {again.returncode}, {again.last}"]
                    else:
                        problems = check_repaired(scenario, dsn)
                if problems:
                    failures.append(
                        f"killed before step {first['n']} ({_label(first)}), then before step "
                        f"{step['n']} of the next pass ({_label(step)}):\n  "
                        + "\n  ".join(problems)
                    )
        return "\n".join(failures) or None

    failures = in_parallel(scenario, points, check)
    assert not failures, "\n".join(failures)


def test_the_next_pass_closes_the_run_a_killed_pass_left_open(scenario: Scenario) -> None:
    with scenario.dbs.copy(scenario.template) as dsn:
        killed = run_worker(dsn, "--kill-at", "1")
        assert killed.returncode == -signal.SIGKILL
        repair_pass(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            runs = conn.execute(
                "SELECT outcome, finished_at IS NOT NULL FROM partman_meta.runs "
                "WHERE started_at = %s ORDER BY finished_at NULLS FIRST",
                (T1,),
            ).fetchall()
    assert len(runs) == 2  # the killed pass, and the one after it
    assert all(outcome is not None and finished for outcome, finished in runs), runs


def test_a_lock_in_another_database_does_not_make_a_pass_skip_a_table(
    scenario: Scenario,
) -> None:
    """Found by running kill points two at a time: databases copied from one template have
    the same relation OIDs, and pg_locks shows every database's locks."""
    dbs = scenario.dbs
    with (
        dbs.copy(scenario.template) as other,
        dbs.copy(scenario.template) as dsn,
        psycopg.connect(other) as app,  # idle in transaction, in the *other* database
    ):
        app.execute("LOCK TABLE convoy.events_default IN ACCESS EXCLUSIVE MODE")
        report, _ = repair_pass(dsn)
        app.rollback()
    skipped = {r.operation.parent_qualified for r in report.skipped}
    assert report.ok and not skipped, str(report)
