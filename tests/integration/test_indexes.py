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
from typing import Any

import psycopg
import pytest

import partman
from partman.model.indexes import StepKind

Conn = psycopg.Connection[Any]
NOW = dt.datetime(2026, 3, 10, 12, 7, tzinfo=dt.UTC)
BUDGET = dt.timedelta(milliseconds=200)
CONFIG = partman.Config(lock_timeout=BUDGET, retry_backoff=dt.timedelta(milliseconds=20))
TIMEOUT = 120


def make_events(conn: Conn, days: int = 5, rows: int = 200, *, default: bool = True) -> None:
    """app.events: RANGE (created_at), `days` daily partitions from 2026-03-01 (+ a DEFAULT),
    `rows` rows in each."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS app")
    conn.execute(
        "CREATE TABLE app.events (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id int NOT NULL, "
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
