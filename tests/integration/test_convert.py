"""partman convert (issue 15) against a real server: an ordinary table with writers running is
converted into a partitioned one, and it equals a reference copy the writers kept beside it.

Writers apply each INSERT/UPDATE/DELETE to the table and to a reference table (same shape, no
trigger) in one transaction, at a steady rate, during the whole conversion (the swap included)
and during a rollback; then the two are compared row for row. A converter stopped at any step
(an exception from its step hook, or SIGKILL in a subprocess) is resumed to the same end.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman
from partman import Config, Converter, Table
from partman.model.convert import State, Step

BUDGET = dt.timedelta(milliseconds=300)
LOCK_WAIT_MS = int(BUDGET.total_seconds() * 1000)
"""The longest an application write may wait for a lock partman holds or queues for."""
STALL = 3.0
"""Wall seconds no write may take, lock or not (a busy 2-core machine included)."""
CONFIG = Config(lock_timeout=BUDGET, retry_backoff=dt.timedelta(milliseconds=50), max_retries=10)
NOW = dt.datetime.now(dt.UTC)
_IDS = itertools.count(10_000_000)  # new keys, never twice in one test process


@dataclass(frozen=True)
class Shape:
    name: str
    ddl: str
    """Creates `t` (and what refers to it); the reference `ref` is made from it."""
    fill: str
    table: Table
    key: str
    extend_unique: bool = False


SHAPES = [
    Shape(
        "bigint",
        """
CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(), tenant int NOT NULL DEFAULT 0,
    body text, n int GENERATED ALWAYS AS (length(body)) STORED, CHECK (length(body) < 200));
CREATE INDEX ON t (created_at);
CREATE TABLE child (id int PRIMARY KEY, t_id bigint REFERENCES t (id) ON DELETE CASCADE);
""",
        "INSERT INTO t (created_at, body) SELECT now() - g * interval '1 hour', 'row ' || g "
        "FROM generate_series(1, 3000) g; "
        "INSERT INTO child SELECT g, g FROM generate_series(1, 50) g",
        Table(name="t", partition_by="id", partition_interval=1000, partition_count=2),
        "id",
    ),
    Shape(
        "uuid",
        """
CREATE TABLE t (id uuid PRIMARY KEY, created_at timestamptz NOT NULL, tenant int NOT NULL DEFAULT 0,
    body text, n int GENERATED ALWAYS AS (length(body)) STORED);
""",
        "INSERT INTO t (id, created_at, body) SELECT gen_random_uuid(), now() - g * interval "
        "'1 hour', 'row ' || g FROM generate_series(1, 3000) g",
        Table(name="t", partition_by="created_at", partition_interval="1 week"),
        "id",
        True,
    ),
    Shape(
        "composite",
        """
CREATE TABLE t (tenant int NOT NULL, id bigint NOT NULL, created_at timestamptz NOT NULL,
    body text, n int GENERATED ALWAYS AS (length(body)) STORED, PRIMARY KEY (tenant, id));
""",
        "INSERT INTO t SELECT g % 3, g, now() - g * interval '1 hour', 'row ' || g "
        "FROM generate_series(1, 3000) g",
        Table(
            name="t",
            partition_by="created_at",
            tenant_id_column="tenant",
            partition_interval="1 month",
        ),
        "tenant, id",
        True,
    ),
]


def set_up(dsn: str, shape: Shape) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(shape.ddl)
        conn.execute(shape.fill)
        conn.execute("CREATE TABLE ref (LIKE t INCLUDING ALL)")
        names = conn.execute(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = 't'::regclass "
            "AND attnum > 0 AND attgenerated = '' ORDER BY attnum"
        ).fetchall()
        cols = sql.SQL(", ").join(sql.Identifier(n) for (n,) in names)
        conn.execute(
            sql.SQL("INSERT INTO ref ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM t").format(
                c=cols
            )
        )
        conn.execute("ANALYZE t")


def rows(conn: psycopg.Connection[Any], table: str, key: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        sql.SQL("SELECT * FROM {} ORDER BY {}").format(sql.Identifier(table), sql.SQL(key))
    ).fetchall()


def same(dsn: str, shape: Shape, table: str = "t") -> None:
    with psycopg.connect(dsn) as conn:
        got, want = rows(conn, table, shape.key), rows(conn, "ref", shape.key)
    assert len(got) == len(want)
    assert got == want


@dataclass
class Writers:
    """Threads doing INSERT/UPDATE/DELETE on t and ref in one transaction each, steadily."""

    dsn: str
    shape: Shape
    threads: int = 3
    period: float = 0.004
    stop: threading.Event = field(default_factory=threading.Event)
    ops: int = 0
    errors: list[str] = field(default_factory=list)
    retried: int = 0
    """Writes retried after another writer moved their row to another partition meanwhile."""
    longest: float = 0.0
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> str:
        return f"{self.ops} writes, longest {self.longest * 1000:.0f} ms, {self.retried} retried"

    def start(self) -> Writers:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def finish(self) -> None:
        time.sleep(0.2)
        self.stop.set()
        for worker in self._workers:
            worker.join(30)

    def _run(self, n: int) -> None:
        rng = random.Random(n)
        conn = psycopg.connect(self.dsn, autocommit=True)
        # The server times what the application waits for partman's locks: a write queued
        # longer than the budget fails with LockNotAvailable and lands in `errors`. Wall time
        # (`longest`) also counts a busy machine's CPU and this process's GIL, so it is only
        # checked against a gross stall.
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{LOCK_WAIT_MS}ms")))
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                new = next(_IDS)
                for attempt in range(3):
                    try:
                        with conn.transaction():
                            self._op(conn, rng, new, n)
                    except psycopg.errors.SerializationFailure as error:
                        # Two writers moving the same row across partitions at once: the
                        # second gets this from PostgreSQL on any partitioned table (READ
                        # COMMITTED cannot follow a row into another partition), partman or
                        # not, and an application retries it. Its transaction changed nothing.
                        if "moved to another partition" not in str(error) or attempt == 2:
                            with self._lock:
                                self.errors.append(f"{type(error).__name__}: {error}")
                            break
                        with self._lock:
                            self.retried += 1
                    except psycopg.Error as error:
                        with self._lock:
                            self.errors.append(f"{type(error).__name__}: {error}")
                        break
                    else:
                        break
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.ops += 1
                    self.longest = max(self.longest, elapsed)
                time.sleep(self.period)
        finally:
            conn.close()

    def _op(self, conn: psycopg.Connection[Any], rng: random.Random, new: int, n: int) -> None:
        kind = rng.choice(["insert", "insert", "update", "update", "move", "delete", "rekey"])
        shape = self.shape.name
        hours = rng.randint(1, 3000)
        if shape == "bigint":
            some = rng.randint(1, 3000)
            if kind == "insert":
                (got,) = conn.execute(
                    "INSERT INTO t (created_at, body) VALUES (now(), %s) RETURNING id", (f"w{new}",)
                ).fetchone() or (None,)
                conn.execute(
                    "INSERT INTO ref (id, created_at, body) OVERRIDING SYSTEM VALUE "
                    "SELECT id, created_at, body FROM t WHERE id = %s",
                    (got,),
                )
                return
            where, args = "id = %(k)s", {"k": some}
        elif shape == "uuid":
            if kind == "insert":
                key = uuid.uuid4()
                at = NOW - dt.timedelta(hours=hours)
                for table in ("t", "ref"):
                    conn.execute(
                        sql.SQL("INSERT INTO {} (id, created_at, body) VALUES (%s, %s, %s)").format(
                            sql.Identifier(table)
                        ),
                        (key, at, f"w{new}"),
                    )
                return
            found = conn.execute(
                "SELECT id FROM ref WHERE id >= %s ORDER BY id LIMIT 1",
                (uuid.UUID(int=rng.getrandbits(128)),),
            ).fetchone()
            if found is None:
                return
            where, args = "id = %(k)s", {"k": found[0]}
        else:
            tenant = rng.randint(0, 2)
            if kind == "insert":
                at = NOW - dt.timedelta(hours=hours)
                for table in ("t", "ref"):
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (tenant, id, created_at, body) VALUES (%s, %s, %s, %s)"
                        ).format(sql.Identifier(table)),
                        (tenant, new, at, f"w{new}"),
                    )
                return
            where = "tenant = %(tenant)s AND id = %(k)s"
            args = {"tenant": tenant, "k": rng.randint(1, 3000)}
        templates = {
            "update": "UPDATE {t} SET body = body || 'u' WHERE {w}",
            "move": "UPDATE {t} SET created_at = %(at)s WHERE {w}",  # across partitions
            "delete": "DELETE FROM {t} WHERE {w}",
        }
        rekey = {  # the primary key changes
            "uuid": "UPDATE {t} SET id = md5(id::text || 'x')::uuid WHERE {w}",
            "composite": "UPDATE {t} SET id = id + 1000000000 WHERE {w}",
            "bigint": "UPDATE {t} SET body = 'r' WHERE {w}",
        }
        args["at"] = NOW - dt.timedelta(hours=hours)  # within the partitions made for t
        for table in ("t", "ref"):
            template = templates.get(kind, rekey[shape])
            statement = sql.SQL(template).format(t=sql.Identifier(table), w=sql.SQL(where))
            conn.execute(statement, args)


def converter(dsn: str, **kwargs: Any) -> Converter:
    return Converter(dsn, config=CONFIG, batch_rows=kwargs.pop("batch_rows", 400), **kwargs)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_convert_under_load_rollback_and_finish(dsn: str, shape: Shape) -> None:
    set_up(dsn, shape)
    writers = Writers(dsn, shape).start()
    try:
        time.sleep(0.2)
        conv = converter(dsn, throttle=0.02)
        report = conv.convert(shape.table, extend_unique=shape.extend_unique)
        assert report.state is State.SWAP
        assert report.rows_copied >= 3000
        time.sleep(0.3)  # writers go on, on the partitioned table
        back = conv.rollback("public", "t")
        assert back.state is State.COPY
        time.sleep(0.3)
    finally:
        writers.finish()
    assert writers.errors == []
    assert writers.ops > 100
    print(f"{shape.name}: {writers.summary()}")
    assert writers.longest < STALL  # no write waited on a lock longer than the budget: errors
    with psycopg.connect(dsn) as conn:
        kind = conn.execute("SELECT relkind::text FROM pg_class WHERE relname = 't'").fetchone()
    assert kind == ("r",)  # rolled back: the original table, with every write made meanwhile
    same(dsn, shape)
    # swap again, now quietly, then finish
    writers = Writers(dsn, shape).start()
    try:
        report = converter(dsn).convert(shape.table, extend_unique=shape.extend_unique)
    finally:
        writers.finish()
    assert writers.errors == []
    print(f"{shape.name} again: {writers.summary()}")
    assert writers.longest < STALL
    same(dsn, shape)
    with psycopg.connect(dsn) as conn:
        kind = conn.execute("SELECT relkind::text FROM pg_class WHERE relname = 't'").fetchone()
        assert kind == ("p",)
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 't'::regclass"
        ).fetchone()
        assert parts is not None and parts[0] > 1
    done = converter(dsn).finish("public", "t")
    assert done.state is State.FINISHED
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('t_old')").fetchone() == (None,)
        # the twin's names are the table's now: partitions, indexes, the identity sequence
        left = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 't\\_partman\\_new%'"
        ).fetchall()
        assert left == []
        named = conn.execute(
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 't'::regclass AND c.relname LIKE 't\\_%'"
        ).fetchone()
        assert named is not None and named[0] > 1
        owned = conn.execute(
            "SELECT count(*) FROM partman_meta.partitions WHERE parent_name = 't' "
            "AND partition_name LIKE 't\\_partman%'"
        ).fetchone()
        assert owned == (0,)
        # new ids continue after the old ones; the writers' rows are still equal
        if shape.name == "bigint":
            conn.execute("INSERT INTO t (body) VALUES ('after')")
            newest = conn.execute("SELECT max(id) FROM t").fetchone()
            oldest_max = conn.execute("SELECT max(id) FROM ref").fetchone()
            assert newest and oldest_max and newest[0] > oldest_max[0]
            fk = conn.execute(
                "SELECT confrelid::regclass::text, convalidated FROM pg_constraint "
                "WHERE conname = 'child_t_id_fkey' AND conrelid = 'child'::regclass"
            ).fetchone()
            assert fk == ("t", True)
    # the partman registration follows the name and a pass keeps it
    with partman.Manager(dsn, config=CONFIG) as manager:
        report2 = manager.maintain()
        assert not report2.failed


POINTS = ["twin", "twin:created", "twin:registered", "capture", "capture:created", "copy",
          "copy:batch", "replay", "verify", "verify:recorded", "swap", "swap:locked"]  # fmt: skip


class Crash(Exception):
    pass


def crash_at(point: str, nth: int = 1) -> Callable[[str], None]:
    seen = {"n": 0}

    def hook(at: str) -> None:
        if at == point:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Crash(point)

    return hook


def write_some(dsn: str, shape: Shape, seed: int) -> None:
    writers = Writers(dsn, shape, threads=1, period=0.0)
    rng = random.Random(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(30):
            with conn.transaction():
                writers._op(conn, rng, 5_000_000 + seed * 100 + i, 0)


@pytest.mark.parametrize("point", POINTS)
def test_crash_at_every_step_resumes(dsn: str, point: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    if point == "replay":  # changes in the log for the replay to take
        converter(dsn).convert(shape.table, until=Step.CAPTURE)
        write_some(dsn, shape, 0)
    with pytest.raises(Crash):
        converter(dsn, on_step=crash_at(point, 2 if point == "copy:batch" else 1)).convert(
            shape.table
        )
    write_some(dsn, shape, 1)
    report = converter(dsn).convert(shape.table)
    assert report.state is State.SWAP
    write_some(dsn, shape, 2)
    same(dsn, shape)


KILL_SCRIPT = """
import os, signal, sys
import partman, datetime as dt
dsn, point = sys.argv[1], sys.argv[2]
seen = []
def hook(at):
    seen.append(at)
    if at == point and (seen.count(at) == 2 or point != "copy:batch"):
        os.kill(os.getpid(), signal.SIGKILL)
config = partman.Config(lock_timeout=dt.timedelta(milliseconds=300))
table = partman.Table(name="t", partition_by="id", partition_interval=1000, partition_count=2)
partman.Converter(dsn, config=config, batch_rows=400, on_step=hook).convert(table)
"""


KILL_POINTS = ["twin:created", "twin:registered", "capture:created", "copy:batch", "replay",
               "verify:recorded", "swap:locked"]  # fmt: skip


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_every_step_resumes(dsn: str, point: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    if point == "replay":  # changes in the log for the replay to take
        converter(dsn).convert(shape.table, until=Step.CAPTURE)
        write_some(dsn, shape, 0)
    writers = Writers(dsn, shape, threads=2).start()  # writing through the kill and resume
    try:
        proc = subprocess.run(
            [sys.executable, "-c", KILL_SCRIPT, dsn, point],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        time.sleep(0.1)
        report = converter(dsn).convert(shape.table)
    finally:
        writers.finish()
    assert writers.errors == []
    assert writers.longest < STALL
    assert report.state is State.SWAP
    same(dsn, shape)
    assert os.getpid()  # the test process itself was never the one killed


def test_refusals_before_any_ddl(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nopk (id bigint, created_at timestamptz)")
        conn.execute("CREATE TABLE u (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)")
        conn.execute("CREATE TABLE kids (id int PRIMARY KEY, u_id bigint REFERENCES u (id))")
        conn.execute("CREATE TABLE p (id bigint, created_at timestamptz) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE txt (id bigint PRIMARY KEY, created_at text)")
    conv = converter(dsn)
    by_time = {"partition_by": "created_at", "partition_interval": "1 day"}
    with pytest.raises(partman.TableNotFoundError, match="missing"):
        conv.convert(Table(name="missing", **by_time))
    with pytest.raises(partman.CatalogError, match="no primary key"):
        conv.convert(Table(name="nopk", **by_time))
    with pytest.raises(partman.NotPartitionedError, match="partitioned already"):
        conv.convert(Table(name="p", partition_by="id", partition_interval=10))
    with pytest.raises(partman.KeyMismatchError, match="is text"):
        conv.convert(Table(name="txt", **by_time))
    with pytest.raises(partman.KeyMismatchError, match="integer partition_interval"):
        conv.convert(Table(name="u", partition_by="created_at", partition_interval=1000))
    with pytest.raises(partman.KeyMismatchError, match="partition by a timestamptz"):
        conv.convert(Table(name="u", partition_by="id", partition_interval="1 day"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE v4 (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int)")
        conn.execute("INSERT INTO v4 (n) VALUES (1)")
    with pytest.raises(partman.KeyMismatchError, match="needs UUIDv7"):
        conv.convert(Table(name="v4", partition_by="id", partition_interval="1 day"))
    with pytest.raises(partman.KeyMismatchError, match="no column"):
        conv.convert(Table(name="u", partition_by="nope", partition_interval="1 day"))
    with pytest.raises(partman.IndexDefinitionError, match="extend_unique"):
        conv.convert(Table(name="u", **by_time))
    with pytest.raises(partman.NotPartitionedError, match="kids_u_id_fkey"):
        conv.convert(Table(name="u", **by_time), extend_unique=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE kids")
        conn.execute("CREATE MATERIALIZED VIEW recent AS SELECT * FROM u")  # a plain one moves
    with pytest.raises(partman.ConversionError, match=r"materialized view\(s\) public.recent"):
        conv.convert(Table(name="u", **by_time), extend_unique=True)
    with psycopg.connect(dsn) as conn:
        made = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relname LIKE '%partman_new%'"
        ).fetchone()
        assert made == (0,)


def test_plan_then_resume_shows_done_steps(dsn: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    conv = converter(dsn)
    plan = conv.plan(shape.table)
    assert [s.step.value for s in plan.steps] == ["twin", "capture", "copy", "verify", "swap"]
    assert not any(s.done for s in plan.steps)
    assert any("child_t_id_fkey" in line for line in plan.steps[-1].lines)
    seen: list[tuple[int, int]] = []
    copying = converter(
        dsn, on_progress=lambda p: seen.append((p.rows_copied, p.rows_total)), batch_rows=700
    )
    copying.convert(shape.table, until=Step.COPY)
    assert [n for n, _ in seen] == [700, 1400, 2100, 2800, 3000]  # one report a batch
    verified: list[int] = []
    converter(dsn, on_progress=lambda p: verified.append(p.rows_copied)).convert(
        shape.table, until=Step.VERIFY
    )
    assert verified == [3000]  # verify reports too (a batch of 50,000 rows)
    assert all(total >= n for n, total in seen) and seen[0][1] == 3000  # the estimate
    plan = conv.plan(shape.table)
    assert [s.done for s in plan.steps] == [True, True, True, True, False]
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT relkind::text FROM pg_class WHERE relname = 't'"
        ).fetchone() == ("r",)


def cli(dsn: str, *args: str, command: str = "convert") -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"COLUMNS": "200", "NO_COLOR": "1", "PARTMAN_DSN": dsn})
    return subprocess.run(
        [sys.executable, "-m", "partman", command, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd="/",
        timeout=120,
        check=False,
    )


def test_cli_plan_steps_rollback_finish(dsn: str) -> None:
    shape = SHAPES[1]  # uuid key, by time: needs --extend-unique
    set_up(dsn, shape)
    by = ["public.t", "--by", "created_at", "--interval", "1 week", "--batch-rows", "500"]
    refused = cli(dsn, *by, "--plan")
    assert refused.returncode == 2
    assert "--extend-unique" in refused.stderr
    plan = cli(dsn, *by, "--extend-unique", "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "1. twin  to do" in plan.stdout and "5. swap  to do" in plan.stdout
    first = cli(dsn, *by, "--extend-unique", "--until", "copy", "--throttle", "0.01")
    assert first.returncode == 0, first.stderr
    assert "ran twin, capture, copy; now at copy" in first.stdout
    assert "rows copied: 3000" in first.stdout
    plan = cli(dsn, *by, "--extend-unique", "--plan")
    assert "3. copy  done" in plan.stdout and "4. verify  to do" in plan.stdout
    write_some(dsn, shape, 7)
    rest = cli(dsn, *by, "--extend-unique", "--json")
    assert rest.returncode == 0, rest.stderr
    body = json.loads(rest.stdout)
    assert body["state"] == "swap" and body["steps_run"] == ["verify", "swap"]
    assert body["verified_rows"] > 3000
    assert sum(body["partitions"].values()) == body["verified_rows"]  # counted per partition
    same(dsn, shape)
    back = cli(dsn, "public.t", "--rollback")
    assert back.returncode == 0 and "rolled back" in back.stdout
    unconfirmed = cli(dsn, "public.t", "--finish")
    assert unconfirmed.returncode == 2  # there is nothing swapped to finish, and no --yes
    again = cli(dsn, *by, "--extend-unique")
    assert again.returncode == 0 and "now at swap" in again.stdout
    done = cli(dsn, "public.t", "--finish", "--yes")
    assert done.returncode == 0 and "dropped public.t_old" in done.stdout
    same(dsn, shape)


def test_swap_never_queues_behind_a_long_transaction(dsn: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    quick = Config(
        lock_timeout=dt.timedelta(milliseconds=100),
        retry_backoff=dt.timedelta(milliseconds=20),
        max_retries=2,
    )
    Converter(dsn, config=quick).convert(shape.table, until=Step.VERIFY)
    holder = psycopg.connect(dsn)
    try:
        holder.execute("SELECT count(*) FROM t")  # ACCESS SHARE, held: the transaction stays open
        time.sleep(0.15)  # older than the lock budget
        reader = psycopg.connect(dsn, autocommit=True)
        started = time.perf_counter()
        with pytest.raises(partman.LockUnavailableError, match="holds AccessShareLock on t"):
            Converter(dsn, config=quick).convert(shape.table)
        # it looked before it asked: the application's reads never queued behind it
        reader.execute("SELECT count(*) FROM t")
        assert time.perf_counter() - started < 5
        reader.close()
    finally:
        holder.close()
    with psycopg.connect(dsn) as conn:
        assert conn.execute(
            "SELECT relkind::text FROM pg_class WHERE relname = 't'"
        ).fetchone() == ("r",)
    report = Converter(dsn, config=quick).convert(shape.table)
    assert report.state is State.SWAP
    same(dsn, shape)


def test_new_tenants_during_the_conversion_get_partitions(dsn: str) -> None:
    shape = SHAPES[2]  # RANGE (tenant, created_at)
    set_up(dsn, shape)
    conv = converter(dsn)

    def new_tenant(tenant: int) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for table in ("t", "ref"):
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (tenant, id, created_at, body) VALUES (%s, 1, %s, 'n')"
                    ).format(sql.Identifier(table)),
                    (tenant, NOW),
                )

    conv.convert(shape.table, extend_unique=True, until=Step.TWIN)
    new_tenant(8)  # the copy meets it
    conv.convert(shape.table, extend_unique=True, until=Step.CAPTURE)
    new_tenant(9)  # a replay meets it
    report = conv.convert(shape.table, extend_unique=True)
    assert report.state is State.SWAP
    same(dsn, shape)
    with psycopg.connect(dsn) as conn:
        tenants = conn.execute(
            "SELECT tenant_id FROM partman_meta.tenants ORDER BY tenant_id::int"
        ).fetchall()
    assert [t for (t,) in tenants] == ["0", "1", "2", "8", "9"]


def test_rollback_and_finish_stopped_midway_are_run_again(dsn: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    converter(dsn).convert(shape.table)
    write_some(dsn, shape, 4)  # on the partitioned table, captured for the rollback
    with pytest.raises(Crash):
        converter(dsn, on_step=crash_at("rollback:locked")).rollback("public", "t")
    with psycopg.connect(dsn) as conn:  # nothing of it stayed
        assert conn.execute(
            "SELECT relkind::text FROM pg_class WHERE relname = 't'"
        ).fetchone() == ("p",)
    same(dsn, shape)
    converter(dsn).rollback("public", "t")
    same(dsn, shape)
    write_some(dsn, shape, 5)  # on the original table again, captured for the twin
    converter(dsn).convert(shape.table)
    same(dsn, shape)
    with pytest.raises(Crash):
        converter(dsn, on_step=crash_at("finish:locked")).finish("public", "t")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('t_old') IS NOT NULL").fetchone() == (True,)
    converter(dsn).finish("public", "t")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT to_regclass('t_old')").fetchone() == (None,)
    same(dsn, shape)


def test_the_new_table_keeps_owner_grants_sequences_and_constraints(dsn: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    owner, reader = f"conv_owner_{suffix}", f"conv_reader_{suffix}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(reader)))
        conn.execute("CREATE TABLE kinds (kind text PRIMARY KEY)")
        conn.execute("INSERT INTO kinds VALUES ('a'), ('b')")
        conn.execute(
            """
CREATE TABLE s (id bigserial PRIMARY KEY, kind text NOT NULL REFERENCES kinds (kind),
    qty int NOT NULL DEFAULT 1 CHECK (qty > 0), note text);
COMMENT ON COLUMN s.note IS 'free text';
ALTER TABLE s REPLICA IDENTITY FULL;
INSERT INTO s (kind, qty) SELECT CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END, g
  FROM generate_series(1, 1500) g;
"""
        )
        conn.execute(sql.SQL("ALTER TABLE s OWNER TO {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("GRANT SELECT ON s TO {}").format(sql.Identifier(reader)))
        conn.execute(sql.SQL("GRANT ALL ON SEQUENCE s_id_seq TO {}").format(sql.Identifier(reader)))
    table = Table(name="s", partition_by="id", partition_interval=500, partition_count=2)
    try:
        report = converter(dsn).convert(table)
        assert report.state is State.SWAP
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT relkind::text, pg_get_userbyid(relowner)::text, relreplident::text, "
                "has_table_privilege(%s, 's', 'SELECT'), has_table_privilege(%s, 's', 'INSERT') "
                "FROM pg_class WHERE oid = 's'::regclass",
                (reader, reader),
            ).fetchone()
            assert row == ("p", owner, "f", True, False)
            checks = conn.execute(
                "SELECT contype::text, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 's'::regclass AND contype IN ('c', 'f') ORDER BY 1"
            ).fetchall()
            assert checks == [
                ("c", "CHECK ((qty > 0))"),
                ("f", "FOREIGN KEY (kind) REFERENCES kinds(kind)"),
            ]
            assert conn.execute("SELECT col_description('s'::regclass, 4)").fetchone() == (
                "free text",
            )
            # the serial's sequence belongs to the new table; ids go on after the old ones
            assert conn.execute("SELECT pg_get_serial_sequence('s', 'id')").fetchone() == (
                "public.s_id_seq",
            )
            (new_id,) = conn.execute(
                "INSERT INTO s (kind) VALUES ('a') RETURNING id"
            ).fetchone() or (0,)
            assert new_id == 1501
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("INSERT INTO s (kind) VALUES ('zzz')")
        converter(dsn).finish("public", "s")
        with psycopg.connect(dsn, autocommit=True) as conn:  # the sequence outlived the old table
            (after,) = conn.execute(
                "INSERT INTO s (kind) VALUES ('b') RETURNING id"
            ).fetchone() or (0,)
            assert after == 1503  # 1502 went to the insert the foreign key refused
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS s, s_old, s_partman_new CASCADE")
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(owner)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
            conn.execute(
                sql.SQL("DROP ROLE {}, {}").format(sql.Identifier(owner), sql.Identifier(reader))
            )


def test_async_face(dsn: str) -> None:
    import asyncio

    shape = SHAPES[0]
    set_up(dsn, shape)

    async def run() -> None:
        conv = partman.AsyncConverter(dsn, config=CONFIG, batch_rows=700)
        plan = await conv.plan(shape.table)
        assert not any(s.done for s in plan.steps)
        report = await conv.convert(shape.table)
        assert report.state is State.SWAP and report.rows_copied == 3000
        assert (await conv.rollback("public", "t")).state is State.COPY
        assert (await conv.convert(shape.table)).state is State.SWAP
        assert (await conv.finish("public", "t")).state is State.FINISHED

    asyncio.run(run())
    same(dsn, shape)


def test_verify_finds_a_twin_that_differs_and_nothing_is_swapped(dsn: str) -> None:
    shape = SHAPES[0]
    set_up(dsn, shape)
    conv = converter(dsn)
    conv.convert(shape.table, until=Step.COPY)
    with psycopg.connect(dsn, autocommit=True) as conn:  # behind the converter's back
        conn.execute("UPDATE t_partman_new SET body = 'tampered' WHERE id = 1234")
    with pytest.raises(partman.ConversionError, match="differs from the source"):
        conv.convert(shape.table)
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute(
            "SELECT relkind::text FROM pg_class WHERE relname = 't'"
        ).fetchone() == ("r",)
        conn.execute("DELETE FROM t_partman_new WHERE id = 1234")  # the same count, one short
        conn.execute(
            "INSERT INTO t_partman_new (id, body) OVERRIDING SYSTEM VALUE VALUES (1234, 'x')"
        )
    with pytest.raises(partman.ConversionError, match="differs from the source"):
        conv.convert(shape.table)
    # a change to the row in the source is captured and replayed: the twin is right again
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE t SET body = body WHERE id = 1234")
        conn.execute("UPDATE ref SET body = body WHERE id = 1234")
    assert conv.convert(shape.table).state is State.SWAP
    same(dsn, shape)


def test_many_partitions(dsn: str) -> None:
    shape = SHAPES[1]  # 3,000 hours of rows by day: 136 partitions, counted in 3 scans
    set_up(dsn, shape)
    daily = Table(name="t", partition_by="created_at", partition_interval="1 day")
    report = converter(dsn, batch_rows=1000).convert(daily, extend_unique=True)
    assert report.state is State.SWAP
    assert len(report.partitions) > 128
    assert sum(report.partitions.values()) == report.verified_rows == 3000
    same(dsn, shape)


def _uuid7(at: dt.datetime, rest: int) -> uuid.UUID:
    ms = int(at.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | ((rest & 0xFFF) << 64) | (0b10 << 62) | (rest * 7919)
    return uuid.UUID(int=value & ((1 << 128) - 1))


def test_epoch_and_uuid7_keys_are_time(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE e (id bigint PRIMARY KEY, at_ms bigint NOT NULL, v text)")
        conn.execute(
            "INSERT INTO e SELECT g, ((extract(epoch FROM now()) - g * 3600) * 1000)::bigint, "
            "'v' || g FROM generate_series(1, 1500) g"
        )
        conn.execute("CREATE TABLE u7 (id uuid PRIMARY KEY, v text)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO u7 VALUES (%s, %s)",
                [(_uuid7(NOW - dt.timedelta(hours=g), g), f"v{g}") for g in range(1, 1501)],
            )
    conv = converter(dsn)
    epoch = Table(name="e", partition_by="at_ms", epoch="milliseconds", partition_interval="1 week")
    report = conv.convert(epoch, extend_unique=True)
    assert report.state is State.SWAP and report.verified_rows == 1500
    assert "e_partman_new_default" not in report.partitions  # every row in its week
    by_uuid = Table(name="u7", partition_by="id", partition_interval="1 week")
    report = conv.convert(by_uuid)
    assert report.state is State.SWAP and report.verified_rows == 1500
    assert len(report.partitions) > 8


def test_list_tenants_shape(dsn: str) -> None:
    shape = SHAPES[2]
    set_up(dsn, shape)
    listed = Table(
        name="t",
        partition_by="created_at",
        tenant_id_column="tenant",
        tenant_partitioning="list",
        partition_interval="1 month",
    )
    writers = Writers(dsn, shape, threads=2).start()
    try:
        report = converter(dsn).convert(listed, extend_unique=True)
    finally:
        writers.finish()
    assert writers.errors == []
    assert report.state is State.SWAP
    same(dsn, shape)
    with psycopg.connect(dsn) as conn:
        strategy = conn.execute(
            "SELECT partstrat::text FROM pg_partitioned_table WHERE partrelid = 't'::regclass"
        ).fetchone()
    assert strategy == ("l",)


def test_an_id_table_keeps_its_premake_past_the_newest_id(dsn: str) -> None:
    """The twin's first pass premakes from window 0 up past the newest id; the pass after the
    copy (which sees the newest id) must then premake only `partition_count` windows past it,
    not as many again (a table with ids in the billions would get thousands of empty windows).
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE ids (id bigint PRIMARY KEY, v text)")
        conn.execute("INSERT INTO ids SELECT g, 'v' FROM generate_series(1, 30000) g")
    table = Table(name="ids", partition_by="id", partition_interval=1000, partition_count=5)
    report = converter(dsn, batch_rows=5000).convert(table)
    assert report.state is State.SWAP and report.verified_rows == 30000
    with psycopg.connect(dsn) as conn:
        uppers = conn.execute(
            "SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''?(\\d+)'))[1]"
            "::bigint FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'ids'::regclass"
        ).fetchall()
    highest = max(u for (u,) in uppers if u is not None)
    assert highest == 30000 + 1000 * 6  # the window of id 30000, then 5 more
