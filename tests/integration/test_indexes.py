"""Indexes on partitioned tables, built without blocking writes (issue 16), against real servers.

`Manager.create_index` builds `CREATE INDEX ... ON ONLY` the parent, then per partition
`CREATE INDEX CONCURRENTLY` + `ALTER INDEX ... ATTACH PARTITION` (a RANGE -> HASH period gets an
ON ONLY index of its own, its leaves built and attached, then is attached), each step under the
lock budget. These tests show: the parent's index ends valid and attached everywhere; an
application's INSERTs in another connection never wait longer than the budget while it builds;
a partition held by an open transaction is skipped and named, and the next run finishes it; a
build killed at any step (an exception, or SIGKILL of its process) and an invalid index left by
an interrupted `CREATE INDEX CONCURRENTLY` are finished by the next run; bad input changes
nothing; partitions a pass creates afterwards carry the index; the CLI prints it and --json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman
from partman.model.indexes import Holding, IndexStep, StepKind

Conn = psycopg.Connection[Any]
NOW = dt.datetime(2026, 3, 10, 12, 7, tzinfo=dt.UTC)
BUDGET = dt.timedelta(milliseconds=200)
CONFIG = partman.Config(lock_timeout=BUDGET, retry_backoff=dt.timedelta(milliseconds=20))
STALL = 3.0
"""Wall seconds no insert may take (a busy 2-core machine's CPU included): lock waits are
held to BUDGET by the inserting session's own lock_timeout."""
TIMEOUT = 120


def make_events(conn: Conn, days: int = 5, rows: int = 200, *, default: bool = True) -> None:
    """app.events: RANGE (created_at), `days` daily partitions from 2026-03-01 (+ a DEFAULT),
    `rows` rows in each."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS app")
    conn.execute(
        "CREATE TABLE app.events (id bigserial, tenant_id int NOT NULL, "
        "created_at timestamptz NOT NULL, payload text) PARTITION BY RANGE (created_at)"
    )
    for d in range(days):
        conn.execute(
            f"CREATE TABLE app.events_p{d} PARTITION OF app.events FOR VALUES FROM "
            f"('2026-03-01'::timestamptz + '{d} days'::interval) "
            f"TO ('2026-03-01'::timestamptz + '{d + 1} days'::interval)"
        )
    if default:
        conn.execute("CREATE TABLE app.events_default PARTITION OF app.events DEFAULT")
    conn.execute(
        "INSERT INTO app.events (tenant_id, created_at, payload) "
        "SELECT g %% 7, '2026-03-01'::timestamptz + (g %% %s) * interval '1 day' "
        "+ (g %% 86400) * interval '1 second', md5(g::text) FROM generate_series(1, %s) g",
        (days, rows * days),
    )


def make_readings(conn: Conn, periods: int = 2, modulus: int = 3) -> None:
    """app.readings: RANGE (at) -> HASH (device_id), `periods` days of `modulus` leaves."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS app")
    conn.execute(
        "CREATE TABLE app.readings (device_id int NOT NULL, at timestamptz NOT NULL, v float8) "
        "PARTITION BY RANGE (at)"
    )
    for d in range(periods):
        conn.execute(
            f"CREATE TABLE app.readings_p{d} PARTITION OF app.readings FOR VALUES FROM "
            f"('2026-03-01'::timestamptz + '{d} days'::interval) "
            f"TO ('2026-03-01'::timestamptz + '{d + 1} days'::interval) "
            "PARTITION BY HASH (device_id)"
        )
        for r in range(modulus):
            conn.execute(
                f"CREATE TABLE app.readings_p{d}_h{r} PARTITION OF app.readings_p{d} "
                f"FOR VALUES WITH (MODULUS {modulus}, REMAINDER {r})"
            )
    conn.execute(
        "INSERT INTO app.readings SELECT g %% 50, '2026-03-01'::timestamptz "
        "+ (g %% %s) * interval '1 day' + g * interval '1 second', g "
        "FROM generate_series(1, 600) g",
        (periods,),
    )


def index_map(conn: Conn, parent_index: str) -> dict[str, tuple[str, bool]]:
    """Every table of the tree under the parent index's table -> (its index attached (at any
    depth) to `parent_index`, valid)."""
    rows = conn.execute(
        """WITH RECURSIVE t (idx) AS (SELECT %s::regclass::oid
             UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN t ON i.inhparent = t.idx)
           SELECT tc.relname::text, ic.relname::text, x.indisvalid FROM t
             JOIN pg_index x ON x.indexrelid = t.idx
             JOIN pg_class ic ON ic.oid = x.indexrelid JOIN pg_class tc ON tc.oid = x.indrelid""",
        (parent_index,),
    ).fetchall()
    return {table: (index, valid) for table, index, valid in rows}


def tree_tables(conn: Conn, parent: str) -> list[str]:
    rows = conn.execute(
        """WITH RECURSIVE t (oid) AS (SELECT %s::regclass::oid
             UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN t ON i.inhparent = t.oid)
           SELECT c.relname::text FROM t JOIN pg_class c ON c.oid = t.oid""",
        (parent,),
    ).fetchall()
    return sorted(r[0] for r in rows)


def all_indexes(conn: Conn) -> list[tuple[str, str, bool]]:
    return conn.execute(
        "SELECT c.relname::text, pg_get_indexdef(x.indexrelid), x.indisvalid FROM pg_index x "
        "JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'app' ORDER BY 1"
    ).fetchall()


@pytest.fixture
def manager(dsn: str) -> Any:
    with partman.Manager(dsn, config=CONFIG) as m:
        yield m


# -- the build -------------------------------------------------------------------------------


def test_build_on_a_range_table_ends_with_a_valid_index_attached_everywhere(
    conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn)
    seen: list[tuple[str, int, int]] = []
    report = manager.create_index(
        "app.events",
        "(tenant_id, created_at)",
        on_step=lambda step, n, total: seen.append((step.kind.value, n, total)),
    )
    assert report.valid and report.ok and not report.missing, report.to_dict()
    assert report.index == "app.events_tenant_id_created_at_idx"
    assert report.definition == "btree (tenant_id, created_at)"
    assert report.counts() == {
        "built": 6, "attached": 6, "dropped_invalid": 0, "skipped": 0, "failed": 0
    }  # fmt: skip
    found = index_map(conn, "app.events_tenant_id_created_at_idx")
    assert sorted(found) == tree_tables(conn, "app.events")
    assert all(valid for _, valid in found.values())
    assert found["events_p0"][0] == "events_p0_tenant_id_created_at_idx"
    # steps in order: the parent's index, then each partition built and attached in turn
    assert seen[0] == ("create_parent", 1, 13)
    assert [k for k, _, _ in seen[1:5]] == ["build", "attach", "build", "attach"]
    # the planner uses it
    conn.execute("SET enable_seqscan = off")
    plan = conn.execute(
        "EXPLAIN SELECT * FROM app.events WHERE tenant_id = 3 AND created_at > '2026-03-02'"
    ).fetchall()
    assert "events_p1_tenant_id_created_at_idx" in "\n".join(r[0] for r in plan)
    # a second run has nothing left to do
    again = manager.create_index("app.events", ["tenant_id", "created_at"])
    assert again.existed and again.valid and again.results == []
    [state] = [s for s in manager.index_status("app.events") if s.name == again.index.split(".")[1]]
    assert state.valid and state.attached == state.partitions == 6 and not state.holdings


def test_build_on_a_range_hash_table_attaches_leaves_then_periods(
    conn: Conn, manager: partman.Manager
) -> None:
    make_readings(conn, periods=2, modulus=3)
    report = manager.create_index("app.readings", ["device_id", "at"], unique=True, name="r_key")
    assert report.valid and report.ok, report.to_dict()
    kinds = [r.step.kind for r in report.results]
    assert kinds.count(StepKind.CREATE_PARENT) == 3  # the parent's and each period's
    assert kinds.count(StepKind.BUILD) == 6
    assert kinds.count(StepKind.ATTACH) == 8  # 6 leaves, 2 periods
    # each period's own index is made, its leaves attached, before it is attached
    order = [(r.step.kind, r.step.table.name) for r in report.results]
    p0 = order.index((StepKind.CREATE_PARENT, "readings_p0"))
    p0_attach = order.index((StepKind.ATTACH, "readings_p0"))
    leaves = [i for i, (k, t) in enumerate(order) if t.startswith("readings_p0_h")]
    assert p0 < min(leaves) and max(leaves) < p0_attach
    found = index_map(conn, "app.r_key")
    assert sorted(found) == tree_tables(conn, "app.readings")
    assert all(valid for _, valid in found.values())
    definition = conn.execute("SELECT pg_get_indexdef('app.r_key'::regclass)").fetchone()
    assert definition == (
        "CREATE UNIQUE INDEX r_key ON ONLY app.readings USING btree (device_id, at)",
    )
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO app.readings SELECT device_id, at, 0 FROM app.readings LIMIT 1")


# -- never blocking the application ----------------------------------------------------------


class InsertLoop:
    """An application writing through the parent in its own connection, one autocommit INSERT
    at a time, timing each: the longest is the longest any write waited."""

    def __init__(self, dsn: str, table: str = "app.events") -> None:
        self.dsn = dsn
        self.table = table
        self.waits: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                # the server times the lock waits: an insert queued longer than the budget
                # fails (surfaced by __exit__); wall time also counts a busy machine's CPU
                conn.execute(
                    sql.SQL("SET lock_timeout = {}").format(
                        sql.Literal(f"{int(BUDGET.total_seconds() * 1000)}ms")
                    )
                )
                n = 0
                while not self._stop.is_set():
                    n += 1
                    started = time.perf_counter()
                    conn.execute(
                        "INSERT INTO app.events (tenant_id, created_at, payload) VALUES "
                        "(%s, '2026-03-01'::timestamptz + %s * interval '1 hour', 'app')",
                        (n % 7, n % (24 * 8)),
                    )
                    self.waits.append(time.perf_counter() - started)
        except BaseException as error:  # surfaced by stop()
            self.errors.append(error)

    def __enter__(self) -> InsertLoop:
        self._thread.start()
        while not self.waits and not self.errors:
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self.errors, self.errors

    @property
    def longest(self) -> float:
        return max(self.waits)


def test_an_application_insert_never_waits_longer_than_the_lock_budget_while_it_builds(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=8, rows=15_000)
    with InsertLoop(dsn) as app:
        report = manager.create_index("app.events", "(tenant_id, created_at)")
        during = len(app.waits)
    assert report.valid and report.ok, report.to_dict()
    assert report.duration_ms > 0 and during > 20
    # the steps that lock (ON ONLY, each ATTACH) wait at most the budget, and only if an
    # insert transaction is in the way; the builds (SHARE UPDATE EXCLUSIVE) never block one
    assert app.longest < STALL, f"an insert took {app.longest:.3f}s"
    assert sorted(index_map(conn, "app.events_tenant_id_created_at_idx")) == tree_tables(
        conn, "app.events"
    )


def test_a_partition_held_by_an_open_transaction_is_skipped_named_and_finished_later(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=4, rows=50)
    with psycopg.connect(dsn, application_name="stuck_app") as holder:
        holder.execute(  # straight into one partition: locks it, not the parent
            "INSERT INTO app.events_p2 (tenant_id, created_at) VALUES (1, '2026-03-03 10:00Z')"
        )
        time.sleep(BUDGET.total_seconds())  # older than the budget, idle in transaction
        with InsertLoop(dsn) as app:
            report = manager.create_index("app.events", ["tenant_id"])
        assert not report.valid and report.missing == ["app.events_p2"], report.to_dict()
        [skip] = [r for r in report.results if r.outcome == "skipped" and r.attempts]
        assert skip.step.kind == StepKind.BUILD and skip.step.table.name == "events_p2"
        assert "stuck_app" in (skip.reason or "") and "idle in transaction" in (skip.reason or "")
        assert skip.attempts == CONFIG.max_retries + 1
        [held] = [r for r in report.results if r.attempts == 0]  # its attach waits
        assert held.step.kind == StepKind.ATTACH and held.step.table.name == "events_p2"
        assert app.longest < STALL
        [state] = manager.index_status("app.events")
        assert not state.valid and state.lacking(Holding.MISSING) == ["app.events_p2"]
        holder.rollback()
    again = manager.create_index("app.events", ["tenant_id"])
    assert again.valid and again.existed and again.counts()["built"] == 1, again.to_dict()
    assert all(valid for _, valid in index_map(conn, "app.events_tenant_id_idx").values())


def test_a_writer_idle_in_transaction_on_the_parent_stops_the_build_before_any_ddl(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=2, rows=10)
    before = all_indexes(conn)
    with psycopg.connect(dsn) as holder:
        holder.execute("INSERT INTO app.events (tenant_id, created_at) VALUES (1, '2026-03-01Z')")
        time.sleep(BUDGET.total_seconds())
        report = manager.create_index("app.events", ["tenant_id"])
        holder.rollback()
    assert not report.valid
    first, *rest = report.results
    assert first.step.kind == StepKind.CREATE_PARENT and first.outcome == "skipped"
    assert "RowExclusiveLock on events" in (first.reason or "")
    assert all(r.attempts == 0 for r in rest)
    assert all_indexes(conn) == before
    assert manager.create_index("app.events", ["tenant_id"]).valid


# -- crashes and leftovers -------------------------------------------------------------------


class Stop(Exception):
    pass


def stop_at(k: int) -> Any:
    def hook(step: IndexStep, number: int, total: int) -> None:
        if number == k:
            raise Stop(step.label)

    return hook


def complete(conn: Conn, parent: str, index: str) -> None:
    """The index is valid and attached in every table of the tree, and no other index (no
    leftover, no duplicate) is left in the schema."""
    found = index_map(conn, index)
    assert sorted(found) == tree_tables(conn, parent)
    assert all(valid for _, valid in found.values()), found
    names = {name for name, _, _ in all_indexes(conn)}
    assert names == {i for i, _ in found.values()}, names - {i for i, _ in found.values()}


def test_a_build_stopped_at_any_step_is_finished_by_the_next_run(
    conn: Conn, manager: partman.Manager
) -> None:
    make_readings(conn, periods=2, modulus=2)
    total = len(manager.create_index("app.readings", ["device_id"], name="probe").results)
    conn.execute("DROP INDEX app.probe")
    assert total == 13
    for k in range(1, total + 1):
        conn.execute("DROP SCHEMA app CASCADE")
        make_readings(conn, periods=2, modulus=2)
        with pytest.raises(Stop):
            manager.create_index("app.readings", ["device_id", "at"], on_step=stop_at(k))
        report = manager.create_index("app.readings", ["device_id", "at"])
        assert report.valid and report.ok, (k, report.to_dict())
        assert report.existed == (k > 1)
        assert len(report.results) == total - (k - 1)  # it resumes where it stopped
        complete(conn, "app.readings", "app.readings_device_id_at_idx")


WORKER = textwrap.dedent(
    """
    import os, signal, sys
    import datetime as dt
    import partman

    dsn, k = sys.argv[1], int(sys.argv[2])

    def hook(step, number, total):
        if number == k:
            os.kill(os.getpid(), signal.SIGKILL)

    config = partman.Config(lock_timeout=dt.timedelta(milliseconds=200))
    with partman.Manager(dsn, config=config) as m:
        m.create_index("app.readings", ["device_id", "at"], on_step=hook)
    """
)


def test_a_build_killed_by_sigkill_at_any_step_is_finished_by_the_next_run(
    dsn: str, conn: Conn, manager: partman.Manager, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    for k in range(1, 14):
        conn.execute("DROP SCHEMA IF EXISTS app CASCADE")
        make_readings(conn, periods=2, modulus=2)
        done = subprocess.run(
            [sys.executable, str(script), dsn, str(k)], env=env, timeout=TIMEOUT, check=False
        )
        assert done.returncode == -signal.SIGKILL, k
        report = manager.create_index("app.readings", ["device_id", "at"])
        assert report.valid and report.ok and len(report.results) == 14 - k, report.to_dict()
        complete(conn, "app.readings", "app.readings_device_id_at_idx")


def _wait_for(conn: Conn, query: str, args: tuple[Any, ...] = (), timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(query, args).fetchone()
        if row is not None and row[0]:
            return row
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for: {query}")


def test_invalid_indexes_left_by_interrupted_concurrent_builds_are_dropped_and_rebuilt(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=4, rows=100)
    with pytest.raises(Stop):  # the parent's index only, as a killed first run leaves it
        manager.create_index("app.events", "(tenant_id, created_at)", on_step=stop_at(2))
    # 1. a build that timed out waiting for a writer: invalid, not even ready
    with psycopg.connect(dsn) as writer:
        writer.execute(
            "INSERT INTO app.events_p1 (tenant_id, created_at) VALUES (1, '2026-03-02Z')"
        )
        with psycopg.connect(dsn, autocommit=True) as other:
            other.execute("SET lock_timeout = '100ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(
                    "CREATE INDEX CONCURRENTLY events_p1_tenant_id_created_at_idx "
                    "ON app.events_p1 (tenant_id, created_at)"
                )
        writer.rollback()
    # 2. a build cancelled while it waited for an older snapshot: ready, still invalid
    with psycopg.connect(dsn) as reader, psycopg.connect(dsn, autocommit=True) as builder:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM app.events_p0")
        pid = builder.info.backend_pid
        failed: list[BaseException] = []

        def build() -> None:
            try:
                builder.execute(
                    "CREATE INDEX CONCURRENTLY leftover ON app.events_p2 (tenant_id, created_at)"
                )
            except psycopg.Error as error:
                failed.append(error)

        thread = threading.Thread(target=build)
        thread.start()
        _wait_for(
            conn,
            "SELECT phase LIKE 'waiting for old snapshots%%' FROM pg_stat_progress_create_index "
            "WHERE pid = %s",
            (pid,),
        )
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        thread.join(20)
        assert failed and isinstance(failed[0], psycopg.errors.QueryCanceled)
        reader.rollback()
    left = dict(
        (name, (valid, ready))
        for name, valid, ready in conn.execute(
            "SELECT c.relname::text, x.indisvalid, x.indisready FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid AND c.relkind = 'i'"
        ).fetchall()
    )
    assert left == {
        "events_p1_tenant_id_created_at_idx": (False, False),
        "leftover": (False, True),
    }
    [state] = manager.index_status("app.events")
    assert state.lacking(Holding.INVALID) == ["app.events_p1", "app.events_p2"]
    assert len(state.lacking(Holding.MISSING)) == 3  # p0, p3, default
    report = manager.create_index("app.events", "(tenant_id, created_at)")
    assert report.valid and report.ok, report.to_dict()
    assert report.counts() == {
        "built": 5, "attached": 5, "dropped_invalid": 2, "skipped": 0, "failed": 0
    }  # fmt: skip
    complete(conn, "app.events", "app.events_tenant_id_created_at_idx")
    assert index_map(conn, "app.events_tenant_id_created_at_idx")["events_p2"][0] == "leftover"


def test_valid_unattached_indexes_of_the_same_definition_are_attached_not_built_again(
    conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=3, rows=10, default=False)
    conn.execute("CREATE INDEX mine ON app.events_p1 (tenant_id, created_at)")
    conn.execute("CREATE INDEX other ON app.events_p0 (created_at, tenant_id)")  # not the same
    report = manager.create_index("app.events", ["tenant_id", "created_at"], name="by_tenant")
    assert report.valid and report.counts()["built"] == 2 and report.counts()["attached"] == 3
    assert index_map(conn, "app.by_tenant")["events_p1"] == ("mine", True)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "columns", "options", "error", "words"),
    [
        ("app.nope", "(a)", {}, partman.TableNotFoundError, "table app.nope does not exist"),
        ("app.plain", "(a)", {}, partman.NotPartitionedError, "is a plain table"),
        ("app.events", "(tenant, created_at)", {}, partman.IndexDefinitionError,
         "has no column 'tenant' \\(did you mean 'tenant_id'\\?\\)"),
        ("app.events", "(tenant_id)", {"unique": True}, partman.IndexDefinitionError,
         "must include the partition key column 'created_at' of app.events"),
        ("app.readings", "(at)", {"unique": True}, partman.IndexDefinitionError,
         "partition key column 'device_id' of app.readings_p0"),
        ("app.events", "(payload)", {"name": "by_tenant"}, partman.IndexDefinitionError,
         "index app.by_tenant already exists on app.events as btree \\(tenant_id\\)"),
        ("app.events", "(payload)", {"name": "plain"}, partman.IndexDefinitionError,
         "app.plain is the name of another relation"),
        ("app.events", "(lower(payload))", {}, partman.IndexDefinitionError,
         "only plain columns"),
        ("app.events", "(tenant_id, tenant_id)", {}, partman.IndexDefinitionError,
         "named twice"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_ddl(
    conn: Conn,
    manager: partman.Manager,
    table: str,
    columns: str,
    options: dict[str, Any],
    error: type[Exception],
    words: str,
) -> None:
    make_events(conn, days=2, rows=10)
    make_readings(conn, periods=1, modulus=2)
    conn.execute("CREATE TABLE app.plain (a int)")
    conn.execute("CREATE INDEX by_tenant ON app.events (tenant_id)")
    before = all_indexes(conn)
    with pytest.raises(error, match=words) as raised:
        manager.create_index(table, columns, **options)
    assert isinstance(raised.value, partman.PartmanError)
    assert all_indexes(conn) == before


# -- partitions made later -------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["range", "range_hash"])
def test_partitions_a_pass_creates_after_the_build_carry_the_index(
    dsn: str, conn: Conn, shape: str
) -> None:
    conn.execute(
        "CREATE TABLE public.metrics (device_id int NOT NULL, at timestamptz NOT NULL, v float8) "
        "PARTITION BY RANGE (at)"
    )
    hashed = {"sub_partition_by": "device_id", "sub_partition_modulus": 2}
    table = partman.Table(
        name="metrics",
        partition_by="at",
        partition_count=2,
        **(hashed if shape == "range_hash" else {}),  # type: ignore[arg-type]
    )
    clock = partman.SimulatedClock(NOW)
    with partman.Manager(dsn, config=CONFIG, clock=clock) as manager:
        manager.add_managed_table(table)
        assert manager.maintain().ok
        before = tree_tables(conn, "public.metrics")
        report = manager.create_index("public.metrics", ["device_id", "at"], unique=True)
        assert report.valid and report.ok
        clock.advance(dt.timedelta(days=3))
        pass_report = manager.maintain()
        assert pass_report.ok and pass_report.created
        after = tree_tables(conn, "public.metrics")
        assert len(after) > len(before)
        found = index_map(conn, "public.metrics_device_id_at_key")
        assert sorted(found) == after  # the new ones too, at every level
        assert all(valid for _, valid in found.values())
        [state] = manager.index_status("public.metrics")
        assert state.valid and state.attached == state.partitions == len(after) - 1


def test_partitions_created_while_it_builds_get_the_index_too(
    conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=3, rows=10, default=False)

    def meanwhile(step: IndexStep, number: int, total: int) -> None:
        if number == 3:  # the parent's index is there, invalid: new partitions copy it
            conn.execute(
                "CREATE TABLE app.events_p10 PARTITION OF app.events "
                "FOR VALUES FROM ('2026-03-11Z') TO ('2026-03-12Z')"
            )
            conn.execute("CREATE TABLE app.events_p11 (LIKE app.events INCLUDING INDEXES)")
            conn.execute(
                "ALTER TABLE app.events ATTACH PARTITION app.events_p11 "
                "FOR VALUES FROM ('2026-03-12Z') TO ('2026-03-13Z')"
            )

    report = manager.create_index("app.events", ["created_at"], on_step=meanwhile)
    assert report.valid and report.ok, report.to_dict()
    complete(conn, "app.events", "app.events_created_at_idx")


# -- asyncio and the command line ------------------------------------------------------------


def test_async_manager_builds_and_lists(dsn: str, conn: Conn) -> None:
    import asyncio

    make_readings(conn, periods=2, modulus=2)
    steps: list[str] = []

    async def hook(step: IndexStep, number: int, total: int) -> None:
        steps.append(step.kind.value)

    async def main() -> tuple[partman.IndexReport, list[partman.IndexState]]:
        async with partman.AsyncManager(dsn, config=CONFIG) as m:
            report = await m.create_index("app.readings", "(at)", on_step=hook)
            return report, await m.index_status("app.readings")

    report, states = asyncio.run(main())
    assert report.valid and len(steps) == 13
    assert [s.name for s in states] == ["readings_at_idx"] and states[0].valid


def cli(cwd: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PARTMAN_DSN": dsn})
    return subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_cli_index_create_and_list_print_and_json(dsn: str, conn: Conn, tmp_path: Path) -> None:
    make_events(conn, days=3, rows=20)
    done = cli(tmp_path, dsn, "index", "create", "app.events", "(tenant_id)", "--unique")
    assert done.returncode == 2 and "must include the partition key column 'created_at'" in (
        done.stderr
    ), done.stderr
    assert all_indexes(conn) == []
    with pytest.raises(Stop), partman.Manager(dsn, config=CONFIG) as m:  # half built
        m.create_index("app.events", "(tenant_id, created_at)", on_step=stop_at(5))
    listed = cli(tmp_path, dsn, "index", "list", "app.events")
    assert listed.returncode == 1, listed.stderr
    text = " ".join(listed.stdout.split())
    assert "app.events (4 partitions)" in text
    assert "events_tenant_id_created_at_idx btree (tenant_id, created_at) no 1/4" in text, text
    # the default partition's is attached, p0's built and not attached yet, p1 and p2 lack it
    assert "no 1/4 app.events_p1, app.events_p2 app.events_p0" in text, text
    data = json.loads(cli(tmp_path, dsn, "index", "list", "app.events", "--json").stdout)
    [index] = data["indexes"]
    assert index == {
        "table": "app.events",
        "index": "events_tenant_id_created_at_idx",
        "definition": "btree (tenant_id, created_at)",
        "unique": False,
        "valid": False,
        "constraint": False,
        "partitions": 4,
        "attached": 1,
        "missing": ["app.events_p1", "app.events_p2"],
        "invalid": [],
        "unattached": ["app.events_p0"],
    }
    made = cli(tmp_path, dsn, "index", "create", "app.events", "tenant_id", "created_at")
    assert made.returncode == 0, made.stderr
    assert (
        "app.events: index app.events_tenant_id_created_at_idx btree (tenant_id, created_at)"
        in (made.stdout)
    )
    assert "built 2, attached 3" in made.stdout and "valid: attached in every partition" in (
        made.stdout
    )
    again = cli(tmp_path, dsn, "index", "create", "app.events", "(tenant_id,created_at)", "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["valid"] and report["existed"]
    assert report["steps"] == [] and report["index"] == "app.events_tenant_id_created_at_idx"
    listed = json.loads(cli(tmp_path, dsn, "index", "list", "app.events", "--json").stdout)
    assert listed["indexes"][0]["valid"] and listed["indexes"][0]["attached"] == 4
    missing = cli(tmp_path, dsn, "index", "list", "app.nope")
    assert missing.returncode == 2 and "table app.nope does not exist" in missing.stderr


# -- reading without locks -------------------------------------------------------------------


def test_definitions_are_spelled_as_pg_get_indexdef_prints_them_without_opening_a_table(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=2, rows=10)
    conn.execute('ALTER TABLE app.events ADD COLUMN "Mixed Case" text')
    definitions = [
        "(tenant_id, created_at)",
        "(tenant_id DESC, created_at)",
        "(tenant_id NULLS FIRST)",
        "(created_at DESC NULLS LAST)",
        '(payload COLLATE "C")',
        "(payload text_pattern_ops)",
        '("Mixed Case", id)',
        "(tenant_id) INCLUDE (payload)",
    ]
    if conn.info.server_version >= 150000:
        definitions.append("(tenant_id, created_at) NULLS NOT DISTINCT")
    for i, d in enumerate(definitions):
        unique = "UNIQUE " if "NULLS NOT DISTINCT" in d else ""
        conn.execute(f"CREATE {unique}INDEX d{i} ON app.events {d}")
    conn.execute("CREATE INDEX e ON app.events (lower(payload))")
    conn.execute("CREATE INDEX w ON app.events (tenant_id) WHERE tenant_id > 3")
    printed = dict(
        conn.execute(
            "SELECT c.relname::text, substring(pg_get_indexdef(c.oid) FROM ' USING (.*)$') "
            "FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE x.indrelid = 'app.events'::regclass"
        ).fetchall()
    )
    with psycopg.connect(dsn) as holder:  # a partition locked: the read does not wait
        holder.execute("LOCK TABLE app.events_p1 IN ACCESS EXCLUSIVE MODE")
        states = {s.name: s for s in manager.index_status("app.events")}
        holder.rollback()
    for i in range(len(definitions)):
        assert states[f"d{i}"].definition == printed[f"d{i}"]
        assert states[f"d{i}"].valid and not states[f"d{i}"].holdings
    assert states["e"].definition == "btree ((expression))"
    assert states["w"].definition.startswith("btree (tenant_id) WHERE (predicate ")
    # what a plain request spells resumes the index the server printed the same way
    report = manager.create_index("app.events", '("Mixed Case", id)')
    assert report.existed and report.index == "app.d6" and report.results == []


def test_a_partition_locked_access_exclusive_is_skipped_and_the_rest_is_built(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=3, rows=10, default=False)
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE app.events_p1 IN ACCESS EXCLUSIVE MODE")
        time.sleep(BUDGET.total_seconds())
        report = manager.create_index("app.events", ["created_at"])
        holder.rollback()
    assert report.missing == ["app.events_p1"] and report.counts()["built"] == 2
    assert "AccessExclusiveLock on events_p1" in (report.results[3].reason or "")
    assert manager.create_index("app.events", ["created_at"]).valid


def test_a_name_taken_meanwhile_by_another_table_is_left_alone_and_the_next_run_picks_another(
    conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=2, rows=10, default=False)
    conn.execute("CREATE TABLE app.plain (tenant_id int)")

    def squat(step: IndexStep, number: int, total: int) -> None:
        if number == 2:  # the build of events_p0's index is next: its name is taken first
            conn.execute(f"CREATE INDEX {step.index} ON app.plain (tenant_id)")

    report = manager.create_index("app.events", ["tenant_id"], on_step=squat)
    failed = [r for r in report.results if r.outcome == "failed"]
    assert [r.step.table.name for r in failed] == ["events_p0"]
    assert "is on another table than app.events_p0; left alone" in (failed[0].reason or "")
    assert conn.execute(
        "SELECT indrelid::regclass::text FROM pg_index "
        "WHERE indexrelid = 'app.events_p0_tenant_id_idx'::regclass"
    ).fetchone() == ("app.plain",)
    again = manager.create_index("app.events", ["tenant_id"])
    assert again.valid, again.to_dict()
    assert index_map(conn, "app.events_tenant_id_idx")["events_p0"][0] == "events_p0_tenant_id_idx1"


def test_duplicates_fail_a_unique_build_in_their_partition_and_leave_nothing_behind(
    conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=3, rows=10, default=False)
    conn.execute("INSERT INTO app.events_p1 (tenant_id, created_at) VALUES (1, '2026-03-02Z')")
    conn.execute("INSERT INTO app.events_p1 (tenant_id, created_at) VALUES (1, '2026-03-02Z')")
    report = manager.create_index("app.events", ["tenant_id", "created_at"], unique=True)
    assert not report.valid and report.missing == ["app.events_p1"]
    [failed] = [r for r in report.results if r.outcome == "failed"]
    assert "app.events_p1 holds rows that are not unique on (tenant_id, created_at)" in (
        failed.reason or ""
    )
    leftovers = conn.execute(
        "SELECT count(*) FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid "
        "WHERE c.relname = 'events_p1'"
    ).fetchone()
    assert leftovers == (0,)
    conn.execute("DELETE FROM app.events_p1 WHERE ctid = (SELECT max(ctid) FROM app.events_p1 "
                 "WHERE tenant_id = 1 AND created_at = '2026-03-02Z')")  # fmt: skip
    assert manager.create_index("app.events", ["tenant_id", "created_at"], unique=True).valid


def test_two_builds_of_one_table_never_run_at_once(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    make_events(conn, days=2, rows=10)
    with psycopg.connect(dsn, autocommit=True) as other:  # another build holds the table's lock
        other.execute("SELECT pg_advisory_lock(hashtextextended('partman:index:app.events', 0))")
        with pytest.raises(partman.LockUnavailableError, match="another index build"):
            manager.create_index("app.events", ["tenant_id"])
        assert all_indexes(conn) == []
        # released now: a closed session's locks go only once its backend has exited
        other.execute("SELECT pg_advisory_unlock(hashtextextended('partman:index:app.events', 0))")
    assert manager.create_index("app.events", ["tenant_id"]).valid


def test_a_concurrent_build_still_running_on_the_server_is_never_dropped_under_it(
    dsn: str, conn: Conn, manager: partman.Manager
) -> None:
    """What a build killed during its CREATE INDEX CONCURRENTLY leaves: the server goes on
    building (it does not notice the client is gone), the index invalid until it is done. The
    next run skips that partition instead of dropping the index under it, and attaches it once
    it is built."""
    make_events(conn, days=3, rows=10, default=False)
    writer = psycopg.connect(dsn)
    orphan = psycopg.connect(dsn, autocommit=True)
    failed: list[BaseException] = []

    def build() -> None:
        try:
            orphan.execute(
                "CREATE INDEX CONCURRENTLY events_p1_tenant_id_idx ON app.events_p1 (tenant_id)"
            )
        except BaseException as error:
            failed.append(error)

    thread = threading.Thread(target=build)
    try:
        writer.execute(
            "INSERT INTO app.events_p1 (tenant_id, created_at) VALUES (1, '2026-03-02Z')"
        )
        thread.start()
        _wait_for(conn, "SELECT count(*) FROM pg_stat_progress_create_index")
        time.sleep(BUDGET.total_seconds())
        report = manager.create_index("app.events", ["tenant_id"])
        in_progress = conn.execute(
            "SELECT indisvalid FROM pg_index "
            "WHERE indexrelid = 'app.events_p1_tenant_id_idx'::regclass"
        ).fetchone()
    finally:
        writer.rollback()  # the orphan's build can finish now
        thread.join(20)
        writer.close()
        orphan.close()
    assert not failed
    assert report.missing == ["app.events_p1"], report.to_dict()
    assert report.counts()["attached"] == 2
    [stopped] = [r for r in report.results if r.outcome == "skipped" and r.attempts]
    assert stopped.step.kind == StepKind.DROP_INVALID
    assert "holds ShareUpdateExclusiveLock on events_p1: 'CREATE INDEX CONCURRENTLY" in (
        stopped.reason or ""
    )
    assert in_progress == (False,)  # not dropped under the build
    again = manager.create_index("app.events", ["tenant_id"])
    assert again.valid and again.counts() == {
        "built": 0, "attached": 1, "dropped_invalid": 0, "skipped": 0, "failed": 0
    }  # fmt: skip
    complete(conn, "app.events", "app.events_tenant_id_idx")
