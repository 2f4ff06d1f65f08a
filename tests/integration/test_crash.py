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
import time
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


def snapshot(conn: Conn) -> dict[str, Any]:
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
            (list(SCHEMAS),),
        ).fetchall()
        rows: list[tuple[Any, ...]] = []
        for schema, name, kind, *_ in relations:
            if kind != "r":
                continue
            rows += conn.execute(
                sql.SQL("SELECT {}, id, project_id, created_at::text, data::text FROM {}").format(
                    sql.Literal(f"{schema}.{name}"), sql.Identifier(schema, name)
                )
            ).fetchall()
        owned = conn.execute(
            "SELECT schema_name, partition_name, parent_schema, parent_name, tenant_id, "
            "lower_bound, upper_bound, origin, state, action FROM partman_meta.partitions "
            "ORDER BY 1, 2"
        ).fetchall()
        schemas = conn.execute(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY 1",
            (list(SCHEMAS),),
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


def run_worker(dsn: str, *args: str) -> WorkerRun:
    proc = subprocess.run(
        [
            sys.executable,
            str(WORKER),
            "--dsn",
            dsn,
            "--now",
            T1.isoformat(),
            "--move-batch-rows",
            str(MOVE_BATCH_ROWS),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT,
        check=False,
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return WorkerRun(proc.returncode, events, proc.stderr)


def repair_pass(dsn: str) -> tuple[partman.Report, partman.Plan]:
    """One more uninterrupted pass at T1, in this process, and the plan after it."""
    with partman.Manager(dsn, config=CONFIG, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        return report, m.plan()


# -- the tests --------------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    dbs: Databases
    templates: list[str]  # DSNs of databases set up at T0 (one per parallel run), copied
    run: WorkerRun  # the uninterrupted pass at T1: its steps and round trips
    reference: dict[str, Any]  # and what it left
    audit: collections.Counter[tuple[str, str]]

    @property
    def template(self) -> str:
        return self.templates[0]


@pytest.fixture(scope="module")
def scenario(pg_server: Server) -> Iterator[Scenario]:
    dbs = Databases(pg_server)
    # Copies of one template share its relations' OIDs; runs at the same time use copies of
    # templates set up apart (see test_a_lock_in_another_database_...).
    templates: list[str] = []
    try:
        for _ in range(PARALLEL):
            templates.append(dbs.create())
            set_up_t0(templates[-1])
        with dbs.copy(templates[0]) as dsn:
            run = run_worker(dsn)
            assert run.returncode == 0, f"{run.last}\n{run.stderr[-3000:]}"
            with psycopg.connect(dsn, autocommit=True) as conn:
                reference, audit = snapshot(conn), audit_ok(conn)
        yield Scenario(dbs, templates, run, reference, audit)
    finally:
        for template in templates:
            dbs.drop(template)
        dbs.close()


def check_repaired(scenario: Scenario, dsn: str) -> list[str]:
    """Run one more uninterrupted pass at T1; every way the result differs from the reference."""
    problems = []
    report, plan = repair_pass(dsn)
    if not report.ok:
        problems.append(f"the next pass is not ok: {report}")
    if len(plan):
        problems.append(f"a further pass would still do something: {plan}")
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = snapshot(conn)
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


def test_a_pass_killed_at_any_step_is_repaired_by_the_next_one(scenario: Scenario) -> None:
    """SIGKILL just before each of the pass's steps, one kill per fresh copy; the next pass
    must end where the uninterrupted one did."""
    steps = scenario.run.steps
    assert len(steps) >= 40
    failures = kill_at_each(scenario, "step", steps)
    assert not failures, f"{len(failures)} of {len(steps)} kill points:\n" + "\n".join(failures)


def test_a_pass_killed_between_any_two_round_trips_is_repaired_by_the_next_one(
    scenario: Scenario,
) -> None:
    """Kills where no step is announced: after the run record is written, between the two
    round trips of one transaction, after a DETACH CONCURRENTLY but before its state is
    recorded, before the run is marked finished, ... A round trip right after a step is the
    same kill point as that step (tested above), so it is left out here."""
    events = scenario.run.events
    points = [
        e
        for i, e in enumerate(events)
        if e["event"] == "roundtrip" and (i == 0 or events[i - 1]["event"] != "step")
    ]
    # batched retention takes each step for several partitions in one round trip (a kill
    # after each one's DETACH ... CONCURRENTLY is the kill before the next one's step)
    assert len(points) >= 15
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


def _first_kills_that_need_repair(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kill points of the first pass that leave work half done for the next one: rows partly
    moved into a staging table, all moved but not attached, and partitions detached but not
    yet dropped, archived or kept."""

    def first(step: str, kind: str, concurrently: bool | None, skip: int = 0) -> dict[str, Any]:
        found = [
            e
            for e in steps
            if (e["step"], e["kind"], e["concurrently"]) == (step, kind, concurrently)
        ]
        return found[skip]

    return [
        first("move_batch", "create", None, skip=1),
        first("attach_staged", "create", None),
        first("finish", "drop", False),
        first("finish", "archive", False),
        first("finish", "drop", True),
        first("finish", "detach", True),
    ]


def test_a_repair_pass_killed_at_any_of_its_repair_steps_is_repaired_by_the_pass_after_it(
    scenario: Scenario,
) -> None:
    """The pass that repairs is a pass too. Kill the first pass where it leaves work half
    done, then kill the second one at each step of the operation it resumes; the third pass
    must still end where the uninterrupted one did."""
    points = _first_kills_that_need_repair(scenario.run.steps)

    def check(template: str, first: dict[str, Any]) -> str | None:
        dbs = scenario.dbs
        with dbs.copy(template) as once_killed:
            killed = run_worker(once_killed, "--kill-at", str(first["n"]))
            assert killed.returncode == -signal.SIGKILL, killed.last
            with dbs.copy(once_killed) as trace_db:  # the second pass, uninterrupted
                second = run_worker(trace_db)
            resumed = [e for e in second.steps if e["partition"] == first["partition"]]
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
