"""The engine and the library API against a real server: the seed's scenario and its edges."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool

import partman

from seed import (
    NOW,
    SEED_TABLES,
    catalog_fingerprint,
    create_seed_schema,
    days_covered,
    partitions,
    seed_table,
)

DAY = dt.timedelta(days=1)
TODAY = NOW.replace(hour=0)

Conn = psycopg.Connection[Any]


@pytest.fixture
def clock() -> partman.SimulatedClock:
    return partman.SimulatedClock(NOW)


@pytest.fixture
def manager(dsn: str, clock: partman.SimulatedClock) -> Any:
    with partman.Manager(dsn, clock=clock) as m:
        yield m


def test_premake_covers_today_and_partition_count_days_ahead_for_every_tenant(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    tenants = ["project-1", "project-2", "project-3"]
    for name in SEED_TABLES:
        for tenant in tenants:
            manager.add_managed_table(seed_table(name, tenant))
    report = manager.maintain()
    assert report.ok, str(report)
    assert len(report.created) == 3 * 3 * 11
    for name in SEED_TABLES:
        for tenant in tenants:
            covered = days_covered(conn, "convoy", name, tenant)
            assert covered == [(TODAY + i * DAY, TODAY + (i + 1) * DAY) for i in range(11)]
    # rows for now and ten days ahead land in real partitions
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) VALUES "
        "('a', 'project-1', %s), ('b', 'project-3', %s)",
        (NOW, NOW + 10 * DAY),
    )


def test_second_pass_plans_nothing(conn: Conn, manager: partman.Manager) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1"))
    first = manager.plan()
    assert len(first) == 11
    assert all(op.kind == "create" and op.reason for op in first)
    assert "ATTACH PARTITION" in first[0].sql
    manager.maintain()
    assert len(manager.plan()) == 0
    assert manager.maintain().results == []


def test_plan_is_a_dry_run(conn: Conn, manager: partman.Manager) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1"))
    before = catalog_fingerprint(conn)
    plan = manager.plan()
    assert len(plan) == 11
    assert catalog_fingerprint(conn) == before
    assert plan.to_dict()["operations"][0]["kind"] == "create"


def test_retention_drops_exactly_what_each_tenants_policy_allows(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "short", retention_period=dt.timedelta(days=2)))
    manager.add_managed_table(seed_table("events", "long", retention_period="5 days"))
    manager.maintain()
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) "
        "SELECT 'r' || d, t, %s + d * interval '1 day' + interval '1 hour' "
        "FROM generate_series(0, 10) d, unnest(ARRAY['short', 'long']) t",
        (TODAY,),
    )
    clock.advance(6 * DAY)  # now = day 6, 12:00
    report = manager.maintain()
    assert report.ok, str(report)
    dropped = {(op.tenant, op.lower) for op in report.dropped}
    # short: cutoff day 4 12:00 -> days 0..3 end at or before it; long: cutoff day 1 12:00
    assert dropped == {("short", TODAY + i * DAY) for i in range(4)} | {("long", TODAY)}
    assert days_covered(conn, "convoy", "events", "short")[0][0] == TODAY + 4 * DAY
    assert days_covered(conn, "convoy", "events", "long")[0][0] == TODAY + DAY
    rows = conn.execute(
        "SELECT project_id, count(*) FROM convoy.events GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [("long", 10), ("short", 7)]  # nothing inside a retention window was lost
    assert len(manager.plan()) == 0


def test_partitions_partman_does_not_own_are_reported_never_dropped(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    conn.execute(
        "CREATE TABLE convoy.legacy_p1 PARTITION OF convoy.events "
        "FOR VALUES FROM ('p1', '2025-01-01') TO ('p1', '2025-01-02')"
    )
    manager.add_managed_table(seed_table("events", "p1", retention_period="3 days"))
    report = manager.maintain()
    assert report.ok
    assert ("legacy_p1",) in [(n,) for n, _ in partitions(conn, "convoy", "events")]
    notices = [n for n in report.plan.notices if n.partition == "convoy.legacy_p1"]
    assert notices and "did not create or adopt" in notices[0].message


def test_changed_policy_takes_effect_on_the_next_pass(conn: Conn, manager: partman.Manager) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1", partition_count=2))
    assert len(manager.maintain().created) == 3
    manager.add_managed_table(seed_table("events", "p1", partition_count=5))
    assert len(manager.maintain().created) == 3
    manager.add_managed_table(
        seed_table("events", "p1", retention_period="1 day", partition_count=5)
    )
    assert len(manager.plan()) == 0  # nothing expired yet: today's partition ends tomorrow


def test_changing_the_interval_of_a_managed_table_is_refused(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1"))
    with pytest.raises(partman.ConfigError, match="partition_interval '1 day'"):
        manager.add_managed_table(seed_table("events", "p1", partition_interval="1 hour"))


def test_backfill_creates_back_to_the_start_of_the_retention_window(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(
        seed_table("events", "p1", retention_period="3 days", partition_count=1, backfill=True)
    )
    manager.maintain()
    covered = days_covered(conn, "convoy", "events", "p1")
    # cutoff = day -3 12:00, so the first kept day is day -3; through tomorrow
    assert covered[0][0] == TODAY - 3 * DAY
    assert covered[-1][1] == TODAY + 2 * DAY
    assert len(covered) == 5


def test_register_tenants_is_atomic(conn: Conn, manager: partman.Manager) -> None:
    create_seed_schema(conn)
    conn.execute(
        "CREATE TABLE convoy.narrow (id int, project_id varchar(10) NOT NULL, "
        "created_at timestamptz NOT NULL) PARTITION BY RANGE (project_id, created_at)"
    )
    table = seed_table("narrow")
    registered = manager.register_tenants(
        table, ["a", partman.Tenant(tenant_id="b", retention_period="2 days", partition_count=1)]
    )
    assert registered == ["a", "b"]
    with pytest.raises(partman.TenantError, match="x" * 11):
        manager.register_tenants("convoy.narrow", ["c", "x" * 11, ""])
    tenants = conn.execute("SELECT tenant_id FROM partman_meta.tenants ORDER BY 1").fetchall()
    assert tenants == [("a",), ("b",)]
    report = manager.maintain()
    assert len(report.created) == 11 + 2


def test_remove_managed_table_never_drops_data(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1", retention_period="1 day"))
    manager.add_managed_table(seed_table("events", "p2", retention_period="1 day"))
    manager.maintain()
    assert manager.remove_managed_table(seed_table("events", "p1")) is True
    assert manager.remove_managed_table("convoy.events", "nobody") is False
    clock.advance(5 * DAY)
    report = manager.maintain()
    assert {op.tenant for op in report.dropped} == {"p2"}
    assert len(days_covered(conn, "convoy", "events", "p1")) == 11
    assert manager.remove_managed_table("convoy.events") is True
    clock.advance(5 * DAY)
    assert len(manager.maintain().results) == 0


def test_two_managers_started_at_once_end_in_the_same_state_without_error(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    errors: list[BaseException] = []
    reports: list[partman.Report] = []
    barrier = threading.Barrier(2, timeout=30)

    def run() -> None:
        try:
            with partman.Manager(dsn, clock=clock) as m:
                for name in SEED_TABLES:
                    m.register_tenants(seed_table(name), ["t1", "t2", "t3"])
                barrier.wait()
                reports.append(m.maintain())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(r.ok for r in reports), [str(r) for r in reports]
    assert sum(len(r.created) for r in reports) == 3 * 3 * 11
    for name in SEED_TABLES:
        assert len(partitions(conn, "convoy", name)) == 3 * 11


def test_audit_log_has_a_row_per_operation_and_a_run_row(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", "p1", partition_count=1))
    report = manager.maintain()
    rows = conn.execute(
        "SELECT operation, outcome, partition_name, run_id::text FROM partman_meta.audit_log"
    ).fetchall()
    assert sorted(r[2] for r in rows) == sorted(op.partition_name for op in report.created)
    assert {r[3] for r in rows} == {report.run_id}
    run = conn.execute(
        "SELECT outcome, summary->>'partitions_created' FROM partman_meta.runs"
    ).fetchone()
    assert run == ("ok", "2")


def test_created_partitions_carry_the_parents_indexes_and_an_ownership_comment(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    conn.execute("CREATE INDEX ON convoy.events (created_at)")
    manager.add_managed_table(seed_table("events", "p1", partition_count=0))
    report = manager.maintain()
    name = report.created[0].partition_name
    indexes = conn.execute(
        "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass",
        (f'convoy."{name}"',),
    ).fetchone()
    assert indexes == (2,)  # primary key + the created_at index, attached to the parent's
    comment = conn.execute(
        "SELECT obj_description(%s::regclass, 'pg_class')", (f'convoy."{name}"',)
    ).fetchone()
    assert comment is not None and comment[0].startswith("managed by partman (created)")


def test_a_user_pool_is_borrowed_not_closed(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        with partman.Manager(pool, clock=partman.SimulatedClock(NOW)) as m:
            m.add_managed_table(seed_table("events", "p1", partition_count=1))
            assert len(m.maintain().created) == 2
        with pool.connection() as c:
            assert c.execute("SELECT 1").fetchone() == (1,)


def test_background_maintenance_runs_every_sample_rate_and_stops(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    config = partman.Config(sample_rate=dt.timedelta(milliseconds=50))
    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(seed_table("events", "p1", partition_count=1))
        m.start()
        deadline = dt.datetime.now() + dt.timedelta(seconds=20)
        while len(partitions(conn, "convoy", "events")) < 2:
            assert dt.datetime.now() < deadline
            threading.Event().wait(0.05)
        clock.advance(DAY)
        while len(partitions(conn, "convoy", "events")) < 3:
            assert dt.datetime.now() < deadline
            threading.Event().wait(0.05)
        m.stop()
    assert len(partitions(conn, "convoy", "events")) == 3


def test_a_lock_held_by_the_application_makes_the_pass_skip_within_the_budget(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    config = partman.Config(
        lock_timeout=dt.timedelta(milliseconds=100),
        max_retries=1,
        retry_backoff=dt.timedelta(milliseconds=10),
    )
    locked = threading.Event()

    def application() -> None:  # a busy statement, not yet old enough to be looked for
        with psycopg.connect(dsn) as app:
            app.execute("LOCK TABLE convoy.events IN ACCESS EXCLUSIVE MODE")
            locked.set()
            app.execute("SELECT pg_sleep(2)")

    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(seed_table("events", "p1", partition_count=1))
        m.add_managed_table(seed_table("event_deliveries", "p1", partition_count=1))
        thread = threading.Thread(target=application)
        thread.start()
        assert locked.wait(10)
        started = dt.datetime.now()
        report = m.maintain()
        elapsed = dt.datetime.now() - started
        thread.join()
        assert elapsed < dt.timedelta(seconds=1.5)
        assert len(report.skipped) == 2
        # its lock request timed out, then (a retry, or a batch's tenant going on by itself)
        # the look for holders found the statement old enough to name it
        reason = report.skipped[0].error or ""
        assert "lock not available" in reason or "SELECT pg_sleep(2)" in reason, reason
        assert len(report.created) == 2  # the other table went on
        assert len(m.maintain().created) == 2  # the next pass finishes the job


def test_an_idle_transaction_holding_a_lock_is_named_and_its_table_skipped_at_once(
    dsn: str, conn: Conn, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    with partman.Manager(dsn, clock=clock) as m:
        m.add_managed_table(seed_table("events", "p1", partition_count=1))
        m.add_managed_table(seed_table("event_deliveries", "p1", partition_count=1))
        with psycopg.connect(dsn, application_name="billing-job") as app:
            app.execute("LOCK TABLE convoy.events IN SHARE MODE")
            pid = app.info.backend_pid
            started = dt.datetime.now()
            report = m.maintain()
            elapsed = dt.datetime.now() - started
            app.rollback()
        assert elapsed < dt.timedelta(seconds=1)  # no lock_timeout waited out, no retries
        assert len(report.skipped) == 2 and len(report.created) == 2
        error = report.skipped[0].error or ""
        assert f"pid {pid} (billing-job, idle in transaction" in error
        assert "ShareLock on events" in error
        assert len(m.maintain().created) == 2


@pytest.mark.parametrize(
    "tenant",
    [
        "O'Brien & Sons",
        "with space",
        "Ünïcødé-租户",
        "UPPER",
        "upper",
        "x" * 100,
        'semi;colon"quote',
        "Robert'); DROP TABLE convoy.events;--",
    ],
)
def test_awkward_tenant_ids_work_end_to_end(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock, tenant: str
) -> None:
    create_seed_schema(conn)
    manager.add_managed_table(seed_table("events", tenant, retention_period="2 days"))
    manager.add_managed_table(seed_table("events", "upper", retention_period="2 days"))
    report = manager.maintain()
    assert report.ok, str(report)
    names = [n for n, _ in partitions(conn, "convoy", "events")]
    assert len(names) == len(set(names)) == 22 or (tenant == "upper" and len(names) == 11)
    assert all(len(n.encode()) <= 63 for n in names)
    conn.execute(
        "INSERT INTO convoy.events (id, project_id, created_at) VALUES ('1', %s, %s)",
        (tenant, NOW),
    )
    assert len(days_covered(conn, "convoy", "events", tenant)) == 11
    clock.advance(5 * DAY)
    report = manager.maintain()
    assert report.ok, str(report)
    assert {op.tenant for op in report.dropped} == {tenant, "upper"}
    assert conn.execute("SELECT count(*) FROM convoy.events").fetchone() == (0,)
    assert len(manager.plan()) == 0


def test_single_tenant_table_with_timestamp_and_hourly_partitions(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    conn.execute("CREATE TABLE metrics (at timestamp NOT NULL, v float8) PARTITION BY RANGE (at)")
    table = partman.Table(
        name="metrics",
        partition_by="at",
        partition_interval="1 hour",
        partition_count=3,
        retention_period="2 hours",
    )
    manager.add_managed_table(table)
    manager.maintain()
    bounds = [b for _, b in partitions(conn, "public", "metrics")]
    assert bounds[0] == "FOR VALUES FROM ('2026-03-10 12:00:00') TO ('2026-03-10 13:00:00')"
    assert len(bounds) == 4
    clock.advance(dt.timedelta(hours=5))
    report = manager.maintain()
    assert len(report.dropped) == 3  # 12-13, 13-14, 14-15 end at or before 15:00
    assert len(manager.plan()) == 0


def test_date_column_with_monthly_partitions_and_integer_tenants(
    conn: Conn, manager: partman.Manager
) -> None:
    conn.execute(
        "CREATE TABLE ledger (account bigint NOT NULL, day date NOT NULL) "
        "PARTITION BY RANGE (account, day)"
    )
    table = partman.Table(
        name="ledger",
        tenant_id_column="account",
        partition_by="day",
        partition_interval="monthly",
        partition_count=2,
    )
    manager.register_tenants(table, [42, "-7"])
    manager.maintain()
    bounds = [b for _, b in partitions(conn, "public", "ledger")]
    assert "FOR VALUES FROM ('42', '2026-03-01') TO ('42', '2026-04-01')" in bounds
    assert "FOR VALUES FROM ('-7', '2026-05-01') TO ('-7', '2026-06-01')" in bounds
    assert len(bounds) == 6


def test_uuid_tenants(conn: Conn, manager: partman.Manager) -> None:
    conn.execute(
        "CREATE TABLE docs (org uuid NOT NULL, at timestamptz NOT NULL) "
        "PARTITION BY RANGE (org, at)"
    )
    table = partman.Table(
        name="docs",
        tenant_id_column="org",
        partition_by="at",
        partition_interval="1 week",
        partition_count=1,
    )
    org = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
    manager.register_tenants(table, [org])
    manager.register_tenants("public.docs", [org.lower()])  # the same tenant, not a second one
    manager.maintain()
    bounds = [b for _, b in partitions(conn, "public", "docs")]
    assert bounds[0] == (
        "FOR VALUES FROM ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-03-09 00:00:00+00') "
        "TO ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2026-03-16 00:00:00+00')"
    )
    assert len(bounds) == 2


def test_daily_partitions_follow_local_midnight_across_dst(dsn: str, conn: Conn) -> None:
    conn.execute("CREATE TABLE ev (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    clock = partman.SimulatedClock(dt.datetime(2026, 3, 27, 12, tzinfo=dt.UTC))
    config = partman.Config(timezone="Europe/Berlin")
    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(partman.Table(name="ev", partition_by="at", partition_count=3))
        m.maintain()
    bounds = [b for _, b in partitions(conn, "public", "ev")]
    assert bounds == [
        "FOR VALUES FROM ('2026-03-26 23:00:00+00') TO ('2026-03-27 23:00:00+00')",
        "FOR VALUES FROM ('2026-03-27 23:00:00+00') TO ('2026-03-28 23:00:00+00')",
        "FOR VALUES FROM ('2026-03-28 23:00:00+00') TO ('2026-03-29 22:00:00+00')",  # 23 hours
        "FOR VALUES FROM ('2026-03-29 22:00:00+00') TO ('2026-03-30 22:00:00+00')",
    ]


def test_gaps_next_to_existing_odd_partitions_are_filled_without_overlap(
    conn: Conn, manager: partman.Manager
) -> None:
    create_seed_schema(conn)
    conn.execute(
        "CREATE TABLE convoy.odd PARTITION OF convoy.events "
        "FOR VALUES FROM ('p1', '2026-03-11 06:00+00') TO ('p1', '2026-03-12 06:00+00')"
    )
    manager.add_managed_table(seed_table("events", "p1", partition_count=3))
    report = manager.maintain()
    assert report.ok, str(report)
    covered = days_covered(conn, "convoy", "events", "p1")
    assert covered[0][0] == TODAY and covered[-1][1] == TODAY + 4 * DAY
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))  # contiguous
    assert len(manager.plan()) == 0


def test_metadata_schema_is_not_partman_and_refuses_foreign_objects(dsn: str, conn: Conn) -> None:
    with pytest.raises(partman.ConfigError, match="pg_partman"):
        partman.Config(metadata_schema="partman")
    create_seed_schema(conn)
    conn.execute("CREATE SCHEMA partman_meta; CREATE TABLE partman_meta.mine (x int)")
    before = catalog_fingerprint(conn)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        with pytest.raises(partman.MetadataError, match="not partman's"):
            m.init()
        with pytest.raises(partman.MetadataError, match="metadata_schema"):
            m.add_managed_table(seed_table("events", "p1"))
    assert catalog_fingerprint(conn) == before


def test_metadata_migrations_are_versioned_and_idempotent(dsn: str, conn: Conn) -> None:
    with partman.Manager(dsn) as m:
        v1 = m.init()
        v2 = m.init()
    assert v1 == v2 >= 1
    rows = conn.execute("SELECT version FROM partman_meta.schema_version ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == list(range(1, v1 + 1))


BAD_TABLES: list[tuple[str, dict[str, Any], type[partman.PartmanError], str]] = [
    ("unknown table", {"name": "nope"}, partman.TableNotFoundError, "does not exist"),
    (
        "plain table",
        {"name": "plain"},
        partman.NotPartitionedError,
        "plain table, not a partitioned",
    ),
    ("list partitioned", {"name": "listed"}, partman.NotPartitionedError, "LIST"),
    (
        "text time column",
        {"name": "texty"},
        partman.KeyMismatchError,
        "timestamptz, timestamp, date, a UUIDv7",
    ),
    (
        "wrong tenant column",
        {"tenant_id_column": "id"},
        partman.KeyMismatchError,
        r"RANGE \(project_id",
    ),
    (
        "missing column",
        {"partition_by": "created"},
        partman.KeyMismatchError,
        "no column 'created'",
    ),
    ("jsonb tenant", {"name": "jsonb_tenant"}, partman.KeyMismatchError, "tenant columns must be"),
    (
        "hourly on date",
        {"name": "dated", "partition_interval": "1 hour"},
        partman.KeyMismatchError,
        "date",
    ),
]


@pytest.mark.parametrize(
    ("what", "change", "error", "message"), BAD_TABLES, ids=[b[0] for b in BAD_TABLES]
)
def test_bad_tables_raise_a_clear_error_and_change_nothing(
    conn: Conn,
    manager: partman.Manager,
    what: str,
    change: dict[str, Any],
    error: type[partman.PartmanError],
    message: str,
) -> None:
    create_seed_schema(conn)
    conn.execute("CREATE TABLE convoy.plain (project_id text, created_at timestamptz)")
    conn.execute(
        "CREATE TABLE convoy.listed (project_id text, created_at timestamptz) "
        "PARTITION BY LIST (project_id)"
    )
    conn.execute(
        "CREATE TABLE convoy.texty (project_id text, created_at text) "
        "PARTITION BY RANGE (project_id, created_at)"
    )
    conn.execute(
        "CREATE TABLE convoy.jsonb_tenant (project_id int4range, created_at timestamptz) "
        "PARTITION BY RANGE (project_id, created_at)"
    )
    conn.execute(
        "CREATE TABLE convoy.dated (project_id text, created_at date) "
        "PARTITION BY RANGE (project_id, created_at)"
    )
    before = catalog_fingerprint(conn)
    fields: dict[str, Any] = {"name": "events", "tenant": "p1"}
    fields.update(change)
    name = fields.pop("name")
    tenant = fields.pop("tenant")
    table = seed_table(name, tenant, **fields)
    with pytest.raises(error, match=message) as raised:
        manager.add_managed_table(table)
    assert f"convoy.{name}" in str(raised.value)
    assert isinstance(raised.value, partman.PartmanError)
    assert catalog_fingerprint(conn) == before
    assert len(manager.plan()) == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("partition_interval", dt.timedelta(0), "positive"),
        ("partition_interval", dt.timedelta(days=-1), "positive"),
        ("partition_interval", "0 days", "0 days"),
        ("partition_interval", "3 fortnights", "3 fortnights"),
        ("retention_period", dt.timedelta(seconds=-5), "positive"),
        ("partition_count", -1, "partition_count"),
    ],
)
def test_impossible_policies_fail_before_any_database_is_asked(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(partman.ConfigError, match=message):
        seed_table("events", "p1", **{field: value})


def test_bad_tenant_ids_fail_before_any_ddl(conn: Conn, manager: partman.Manager) -> None:
    conn.execute(
        "CREATE TABLE ledger (account int NOT NULL, day date NOT NULL) "
        "PARTITION BY RANGE (account, day)"
    )
    before = catalog_fingerprint(conn)
    table = partman.Table(name="ledger", tenant_id_column="account", partition_by="day")
    for bad in ["abc", 2**40]:
        with pytest.raises(partman.TenantError, match=r"ledger\.account"):
            manager.add_managed_table(
                partman.Table(
                    name="ledger", tenant_id_column="account", partition_by="day", tenant_id=bad
                )
            )
    with pytest.raises(partman.TenantError):
        manager.register_tenants(table, [1, "two"])
    assert catalog_fingerprint(conn) == before


def test_case_sensitive_names_are_quoted_not_folded(conn: Conn, manager: partman.Manager) -> None:
    conn.execute(
        'CREATE SCHEMA "Convoy"; CREATE TABLE "Convoy"."Events" ("ProjectId" text NOT NULL, '
        '"CreatedAt" timestamptz NOT NULL) PARTITION BY RANGE ("ProjectId", "CreatedAt")'
    )
    table = partman.Table(
        name="Events",
        schema="Convoy",
        tenant_id="Acme",
        tenant_id_column="ProjectId",
        partition_by="CreatedAt",
        partition_count=1,
        retention_period="1 day",
    )
    manager.add_managed_table(table)
    assert len(manager.maintain().created) == 2
    assert len(partitions(conn, "Convoy", "Events")) == 2
    with pytest.raises(partman.TableNotFoundError):
        manager.add_managed_table(
            partman.Table(name="events", schema="Convoy", partition_by="CreatedAt")
        )


def test_sql_of_every_operation_is_composed_safely(conn: Conn, manager: partman.Manager) -> None:
    create_seed_schema(conn)
    evil = "x'); DROP TABLE convoy.events; --"
    manager.add_managed_table(seed_table("events", evil, partition_count=0))
    plan = manager.plan()
    assert "'x''); DROP TABLE convoy.events; --'" in plan[0].sql
    manager.maintain()
    assert conn.execute(
        sql.SQL("SELECT to_regclass({})").format(sql.Literal("convoy.events"))
    ).fetchone() == ("convoy.events",)


def test_inventory_shows_owners_and_runway_per_tenant(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_seed_schema(conn)
    conn.execute(
        "CREATE TABLE convoy.theirs PARTITION OF convoy.events "
        "FOR VALUES FROM ('zz', '2020-01-01') TO ('zz', '2020-01-02')"
    )
    assert manager.add_managed_table(seed_table("events", "p1", partition_count=2)) is True
    assert manager.add_managed_table(seed_table("events", "p1", partition_count=2)) is False
    assert manager.inventory().coverage[0].runway_seconds == 0
    manager.maintain()
    found = manager.inventory()
    assert [c.tenant for c in found.coverage] == ["p1"]
    # today 12:00 -> covered until the end of day +2
    assert found.coverage[0].runway_seconds == (2.5 * DAY).total_seconds()
    owners = {r.partition: r.owner for r in found.partitions}
    assert owners["convoy.theirs"] == "foreign"
    assert sum(o == "created" for o in owners.values()) == 3
    assert len(manager.inventory(tenant="p1").partitions) == 3
