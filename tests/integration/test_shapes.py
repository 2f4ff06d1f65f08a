"""Every key axis against a real server: integer ids (windows ahead of max(id), retention by
distance or by a time column's age), epoch integers, UUIDv7 and sub-hour periods. Each is
premade, adopted and retired like a time table, and a shape partman cannot manage is refused
before anything is written."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman

NOW = dt.datetime(2026, 3, 10, 12, 7, tzinfo=dt.UTC)
Conn = psycopg.Connection[Any]


@pytest.fixture
def clock() -> partman.SimulatedClock:
    return partman.SimulatedClock(NOW)


@pytest.fixture
def manager(dsn: str, clock: partman.SimulatedClock) -> Any:
    with partman.Manager(dsn, clock=clock) as m:
        yield m


def bounds(conn: Conn, parent: str) -> list[str]:
    """The parent's partitions' bounds, in order of their lower bound."""
    rows = conn.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
        (parent,),
    ).fetchall()
    return sorted((r[0] for r in rows), key=_lower)


def _lower(bound: str) -> Any:
    text = bound.split("FROM (", 1)[1].split(")", 1)[0].strip("'")
    return int(text) if text.lstrip("-").isdigit() else text


def uuid7(instant: dt.datetime, rest: int = 0x1234) -> uuid.UUID:
    """A UUIDv7 of `instant` (its 48-bit millisecond prefix), version and variant set."""
    ms = int(instant.timestamp() * 1000)
    return uuid.UUID(int=(ms << 80) | (0x7 << 76) | (0b10 << 62) | rest)


# -- integer ids ---------------------------------------------------------------------------


def create_orders(conn: Conn) -> None:
    conn.execute(
        "CREATE TABLE public.orders (id bigint NOT NULL, created_at timestamptz NOT NULL, "
        "PRIMARY KEY (id)) PARTITION BY RANGE (id)"
    )


def test_id_windows_are_made_ahead_of_the_newest_id_read_from_the_newest_partition(
    conn: Conn, manager: partman.Manager
) -> None:
    create_orders(conn)
    table = partman.Table(
        name="orders", partition_by="id", partition_interval=1000, partition_count=2
    )
    manager.add_managed_table(table)
    report = manager.maintain()
    assert report.ok, str(report)
    assert bounds(conn, "public.orders") == [
        "FOR VALUES FROM ('0') TO ('1000')",
        "FOR VALUES FROM ('1000') TO ('2000')",
        "FOR VALUES FROM ('2000') TO ('3000')",
    ]
    assert manager.plan().operations == ()  # nothing to do until ids grow
    conn.execute("INSERT INTO orders SELECT g, now() FROM generate_series(1, 2500) AS g")
    plan = manager.plan()
    assert [op.partition_name for op in plan.creates] == ["orders_p3000", "orders_p4000"]
    assert "premake: 1 ahead" in plan.creates[0].reason
    assert manager.maintain().ok
    assert len(bounds(conn, "public.orders")) == 5


def test_id_retention_by_distance_drops_windows_wholly_below_max_minus_distance(
    conn: Conn, manager: partman.Manager
) -> None:
    create_orders(conn)
    table = partman.Table(
        name="orders",
        partition_by="id",
        partition_interval=1000,
        partition_count=1,
        retention_period=2500,
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok
    for k in range(4):  # ids grow window by window; each pass premakes the next
        conn.execute(
            "INSERT INTO orders SELECT g, now() FROM generate_series(%s::int8, %s::int8) g",
            (k * 1000 + 1, (k + 1) * 1000),
        )
        assert manager.maintain().ok
    newest = conn.execute("SELECT max(id) FROM orders").fetchone()
    assert newest == (4000,)
    # cutoff 4000 - 2500 = 1500: only [0, 1000) ends at or below it
    assert bounds(conn, "public.orders")[0] == "FOR VALUES FROM ('1000') TO ('2000')"
    dropped = conn.execute(
        "SELECT count(*) FROM partman_meta.audit_log WHERE operation = 'drop' AND outcome = 'ok'"
    ).fetchone()
    assert dropped == (1,)


def test_id_retention_by_a_time_column_checks_the_rows_and_keeps_a_window_with_young_rows(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_orders(conn)
    table = partman.Table(
        name="orders",
        partition_by="id",
        partition_interval=1000,
        partition_count=1,
        retention_period="30 days",
        retention_column="created_at",
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok
    old, young = NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=5)
    conn.execute("INSERT INTO orders SELECT g, %s FROM generate_series(0, 999) g", (old,))
    conn.execute("INSERT INTO orders SELECT g, %s FROM generate_series(1000, 1998) g", (old,))
    conn.execute("INSERT INTO orders VALUES (1999, %s)", (young,))
    report = manager.maintain()
    # the newest id is in [1000, 2000): [0, 1000) is closed and all older than 30 days
    assert [op.partition_name for op in report.dropped] == ["orders_p0"]
    conn.execute("INSERT INTO orders SELECT g, %s FROM generate_series(2000, 2100) g", (NOW,))
    report = manager.maintain()
    # [1000, 2000) is closed now, but holds a row 5 days old: kept, and said why
    assert report.dropped == []
    kept = [r for r in report.skipped if r.operation.partition_name == "orders_p1000"]
    assert kept and "at or after the retention cutoff" in str(kept[0].error)
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (1000 + 101,)


# -- epoch integers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch", "per_second"),
    [("seconds", 1), ("milliseconds", 1000), ("microseconds", 10**6)],
)
def test_epoch_columns_are_partitioned_by_calendar_days_in_their_unit(
    conn: Conn, manager: partman.Manager, epoch: str, per_second: int
) -> None:
    conn.execute("CREATE TABLE public.hits (at bigint NOT NULL, path text) PARTITION BY RANGE (at)")
    table = partman.Table(
        name="hits", partition_by="at", epoch=epoch, partition_count=2, retention_period="2 days"
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok
    day = int(dt.datetime(2026, 3, 10, tzinfo=dt.UTC).timestamp()) * per_second
    step = 86400 * per_second
    assert bounds(conn, "public.hits") == [
        f"FOR VALUES FROM ('{day + k * step}') TO ('{day + (k + 1) * step}')" for k in range(3)
    ]
    query = "SELECT relname FROM pg_class WHERE relname LIKE 'hits_p%' ORDER BY 1"
    names = [r[0] for r in conn.execute(query).fetchall()]
    assert names == ["hits_p20260310", "hits_p20260311", "hits_p20260312"]
    conn.execute("INSERT INTO hits VALUES (%s, '/')", (int(NOW.timestamp()) * per_second,))


def test_an_epoch_table_is_retired_by_the_age_of_its_periods(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    conn.execute("CREATE TABLE public.hits (at bigint NOT NULL) PARTITION BY RANGE (at)")
    table = partman.Table(
        name="hits",
        partition_by="at",
        epoch="milliseconds",
        partition_count=1,
        retention_period="2 days",
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok
    conn.execute("INSERT INTO hits VALUES (%s)", (int(NOW.timestamp() * 1000),))
    clock.advance(dt.timedelta(days=4))
    report = manager.maintain()
    assert report.ok, str(report)
    assert sorted(op.partition_name for op in report.dropped) == [
        "hits_p20260310",
        "hits_p20260311",
    ]


# -- UUIDv7 -------------------------------------------------------------------------------


def test_uuidv7_bounds_are_the_least_uuid_of_each_period_and_rows_land_by_their_time(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    conn.execute(
        "CREATE TABLE public.events (id uuid NOT NULL, body text, PRIMARY KEY (id)) "
        "PARTITION BY RANGE (id)"
    )
    table = partman.Table(
        name="events", partition_by="id", partition_count=1, retention_period="1 day"
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    ms = int(day.timestamp() * 1000)
    first = uuid.UUID(int=ms << 80)
    assert bounds(conn, "public.events")[0] == (
        f"FOR VALUES FROM ('{first}') TO ('{uuid.UUID(int=(ms + 86_400_000) << 80)}')"
    )
    for at in (day, NOW, day + dt.timedelta(days=1, hours=23)):
        conn.execute("INSERT INTO events VALUES (%s, 'x')", (uuid7(at),))
    where = conn.execute("SELECT tableoid::regclass::text FROM events ORDER BY id").fetchall()
    assert [w[0] for w in where] == ["events_p20260310", "events_p20260310", "events_p20260311"]
    clock.advance(dt.timedelta(days=3))
    report = manager.maintain()
    assert report.ok, str(report)
    assert sorted(op.partition_name for op in report.dropped) == [
        "events_p20260310",
        "events_p20260311",
    ]


def test_an_existing_uuidv7_partition_is_adopted_by_its_bounds(
    conn: Conn, manager: partman.Manager
) -> None:
    conn.execute("CREATE TABLE public.events (id uuid NOT NULL) PARTITION BY RANGE (id)")
    day = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    lo, hi = (uuid.UUID(int=int(t.timestamp() * 1000) << 80) for t in (day, day + dt.timedelta(1)))
    legacy = "CREATE TABLE public.legacy PARTITION OF public.events FOR VALUES FROM ({}) TO ({})"
    conn.execute(sql.SQL(legacy).format(sql.Literal(str(lo)), sql.Literal(str(hi))))
    table = partman.Table(name="events", partition_by="id", partition_count=1)
    manager.add_managed_table(table)
    found = manager.import_existing_partitions(table)
    assert [f.partition for f in found.imported] == ["public.legacy"]
    plan = manager.plan()
    assert [op.partition_name for op in plan.creates] == ["events_p20260311"]


# -- sub-hour periods -------------------------------------------------------------------------


def test_quarter_hour_partitions_are_aligned_and_named_to_the_minute(
    conn: Conn, manager: partman.Manager
) -> None:
    conn.execute(
        "CREATE TABLE public.ticks (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at)"
    )
    table = partman.Table(
        name="ticks", partition_by="at", partition_interval="15 minutes", partition_count=3
    )
    manager.add_managed_table(table)
    report = manager.maintain()
    assert report.ok, str(report)
    assert [op.partition_name for op in report.created] == [
        "ticks_p20260310_1200",
        "ticks_p20260310_1215",
        "ticks_p20260310_1230",
        "ticks_p20260310_1245",
    ]


# -- shapes refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ddl", "table", "words"),
    [
        (
            "CREATE TABLE public.t (at bigint) PARTITION BY RANGE (at)",
            {"partition_by": "at"},
            "set epoch",
        ),
        (
            "CREATE TABLE public.t (at uuid) PARTITION BY RANGE (at)",
            {"partition_by": "at", "partition_interval": 1000},
            "needs an integer id column",
        ),
        (
            "CREATE TABLE public.t (at timestamptz, k int) PARTITION BY HASH (k)",
            {"partition_by": "at"},
            "partitioned by HASH, not RANGE",
        ),
        (
            "CREATE TABLE public.t (at int) PARTITION BY RANGE (at)",
            {"partition_by": "at", "epoch": "milliseconds"},
            "use bigint",
        ),
    ],
)
def test_a_shape_partman_cannot_manage_is_refused_before_anything_is_written(
    conn: Conn, manager: partman.Manager, ddl: str, table: dict[str, Any], words: str
) -> None:
    conn.execute(ddl)
    with pytest.raises(partman.PartmanError, match=words):
        manager.add_managed_table(partman.Table(name="t", **table))
    assert conn.execute("SELECT to_regnamespace('partman_meta') IS NULL").fetchone() == (True,)


# -- levels: RANGE (time) -> HASH -------------------------------------------------------------


def test_each_period_is_built_with_its_hash_leaves_before_it_is_attached_and_retired_whole(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    conn.execute(
        "CREATE TABLE public.readings (device_id int NOT NULL, at timestamptz NOT NULL, "
        "v float8, PRIMARY KEY (device_id, at)) PARTITION BY RANGE (at)"
    )
    table = partman.Table(
        name="readings",
        partition_by="at",
        partition_count=1,
        retention_period="1 day",
        sub_partition_by="device_id",
        sub_partition_modulus=4,
    )
    manager.add_managed_table(table)
    plan = manager.plan()
    assert 'PARTITION BY HASH ("device_id")' in plan.creates[0].sql
    assert manager.maintain().ok
    leaves = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.readings_p20260310'::regclass ORDER BY 1"
    ).fetchall()
    assert leaves == [
        (f"readings_p20260310_h{r}", f"FOR VALUES WITH (modulus 4, remainder {r})")
        for r in range(4)
    ]
    conn.execute("INSERT INTO readings SELECT d, %s, 1.0 FROM generate_series(1, 100) d", (NOW,))
    spread = conn.execute("SELECT count(DISTINCT tableoid) FROM readings").fetchone()
    assert spread == (4,)
    assert manager.plan().operations == ()  # the partitioned periods are partman's own
    clock.advance(dt.timedelta(days=3))
    report = manager.maintain()
    assert report.ok, str(report)
    assert sorted(op.partition_name for op in report.dropped) == [
        "readings_p20260310",
        "readings_p20260311",
    ]
    gone = conn.execute("SELECT to_regclass('public.readings_p20260310_h0')").fetchone()
    assert gone == (None,)


# -- levels: LIST (tenant) -> RANGE (time) -----------------------------------------------------


def create_list_parent(conn: Conn) -> None:
    conn.execute(
        "CREATE TABLE public.events (tenant_id text NOT NULL, created_at timestamptz NOT NULL, "
        "body text) PARTITION BY LIST (tenant_id)"
    )


def list_table(**policy: Any) -> partman.Table:
    fields: dict[str, Any] = {
        "name": "events",
        "tenant_id_column": "tenant_id",
        "tenant_partitioning": "list",
        "partition_by": "created_at",
        "partition_count": 2,
        "retention_period": "3 days",
    }
    return partman.Table(**{**fields, **policy})


def test_a_new_list_tenant_gets_its_partition_and_periods_in_one_pass_attached_last(
    conn: Conn, manager: partman.Manager
) -> None:
    create_list_parent(conn)
    manager.add_managed_table(list_table(tenant_id="Acme Inc."))
    plan = manager.plan()
    [op] = plan.creates
    statements = op.sql.split(";\n")
    assert statements[0].startswith('CREATE TABLE "public"."events_acme_inc_')
    assert statements[0].endswith('PARTITION BY RANGE ("created_at")')
    assert statements[-1].endswith("FOR VALUES IN ('Acme Inc.');")
    report = manager.maintain()
    assert report.ok, str(report)
    tenant = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'public.events'::regclass"
    ).fetchall()
    assert len(tenant) == 1 and tenant[0][1] == "FOR VALUES IN ('Acme Inc.')"
    periods = bounds(conn, f"public.{tenant[0][0]}")
    assert len(periods) == 3
    conn.execute("INSERT INTO events VALUES ('Acme Inc.', %s, 'x')", (NOW,))
    assert manager.plan().operations == ()


def test_list_tenants_keep_their_own_retention_and_count(
    conn: Conn, manager: partman.Manager, clock: partman.SimulatedClock
) -> None:
    create_list_parent(conn)
    manager.add_managed_table(list_table(tenant_id="a"))
    manager.register_tenants(
        list_table(),
        [partman.Tenant(tenant_id="b", retention_period="forever", partition_count=4)],
    )
    assert manager.maintain().ok
    counts = dict(
        conn.execute(
            "SELECT p.relname, count(*) FROM pg_inherits t JOIN pg_class p ON p.oid = t.inhrelid "
            "JOIN pg_inherits c ON c.inhparent = p.oid "
            "WHERE t.inhparent = 'public.events'::regclass GROUP BY 1"
        ).fetchall()
    )
    assert counts == {"events_a": 3, "events_b": 5}
    clock.advance(dt.timedelta(days=6))
    report = manager.maintain()
    assert report.ok, str(report)
    dropped = {op.partition_name for op in report.dropped}
    assert dropped == {"events_a_p20260310", "events_a_p20260311", "events_a_p20260312"}
    assert all(op.parent_name == "events_a" for op in report.dropped)


def test_list_tenants_show_in_the_inventory_with_their_runway(
    conn: Conn, manager: partman.Manager
) -> None:
    create_list_parent(conn)
    manager.add_managed_table(list_table(tenant_id="a"))
    assert manager.maintain().ok
    inventory = manager.inventory()
    assert {r.partition for r in inventory.partitions} == {
        "public.events_a_p20260310",
        "public.events_a_p20260311",
        "public.events_a_p20260312",
    }
    assert {r.tenant for r in inventory.partitions} == {"a"}
    [coverage] = inventory.coverage
    assert coverage.covered_until == "2026-03-13T00:00:00+00:00"


def test_an_id_table_under_list_tenants_reads_each_tenants_newest_id(
    conn: Conn, manager: partman.Manager
) -> None:
    conn.execute(
        "CREATE TABLE public.ledger (tenant_id int NOT NULL, id bigint NOT NULL) "
        "PARTITION BY LIST (tenant_id)"
    )
    table = partman.Table(
        name="ledger",
        tenant_id=1,
        tenant_id_column="tenant_id",
        tenant_partitioning="list",
        partition_by="id",
        partition_interval=100,
        partition_count=1,
    )
    manager.add_managed_table(table)
    manager.register_tenants(table, [2])
    assert manager.maintain().ok
    conn.execute("INSERT INTO ledger SELECT 1, g FROM generate_series(0, 150) g")
    plan = manager.plan()
    assert [(op.tenant, op.partition_name) for op in plan.creates] == [(1, "ledger_1_p200")]
    runway = {c.tenant: c.runway_ids for c in manager.inventory().coverage}
    assert runway == {"1": 50, "2": 200}


def test_an_existing_list_tree_is_adopted_period_by_period_with_its_tenants(
    conn: Conn, manager: partman.Manager
) -> None:
    create_list_parent(conn)
    conn.execute(
        "CREATE TABLE public.events_globex PARTITION OF public.events FOR VALUES IN ('globex') "
        "PARTITION BY RANGE (created_at)"
    )
    conn.execute(
        "CREATE TABLE public.globex_day PARTITION OF public.events_globex "
        "FOR VALUES FROM ('2026-03-10') TO ('2026-03-11')"
    )
    conn.execute(
        "CREATE TABLE public.globex_odd PARTITION OF public.events_globex "
        "FOR VALUES FROM ('2026-03-11') TO ('2026-03-11 06:00')"
    )
    found = manager.import_existing_partitions(list_table(name="events"))
    assert [f.partition for f in found.imported] == ["public.globex_day"]
    assert [f.partition for f in found.misaligned] == ["public.globex_odd"]
    assert found.tenants == {"public.events": ["globex"]}
    plan = manager.plan()
    assert {op.partition_name for op in plan.creates} == {
        "events_globex_p20260311_0600",
        "events_globex_p20260312",
    }
    assert all(op.parent_name == "events_globex" for op in plan.creates)


def test_a_tenant_in_a_partition_of_several_is_left_alone_said_and_never_fails_a_pass(
    conn: Conn, manager: partman.Manager
) -> None:
    """A LIST partition holding two tenants is foreign: the import names it, a registered
    tenant it holds gets an error notice instead of a partition that would overlap it, and
    the other tenants are managed as usual, pass after pass."""
    create_list_parent(conn)
    conn.execute(
        "CREATE TABLE public.events_shared PARTITION OF public.events "
        "FOR VALUES IN ('acme', 'globex')"
    )
    manager.add_managed_table(list_table())
    found = manager.import_existing_partitions(list_table(name="events"))
    [shared] = found.foreign
    assert shared.partition == "public.events_shared" and "holds 2 tenants" in shared.reason
    manager.register_tenants("public.events", ["acme", "initech"])
    plan = manager.plan()
    assert [op.parent_name for op in plan.creates] == ["events"]  # initech's partition only
    [notice] = [n for n in plan.notices if n.tenant == "acme"]
    assert "public.events_shared, a partition of several tenants" in notice.message
    for _ in range(2):
        report = manager.maintain()
        assert not report.failed, str(report)
    assert conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events'::regclass"
    ).fetchone() == (2,)


def test_ids_waiting_in_the_default_partition_count_and_move_into_their_new_window(
    conn: Conn, manager: partman.Manager
) -> None:
    create_orders(conn)
    table = partman.Table(
        name="orders",
        partition_by="id",
        partition_interval=1000,
        partition_count=1,
        default_partition=True,
    )
    manager.add_managed_table(table)
    assert manager.maintain().ok  # [0, 1000), [1000, 2000) and the default
    conn.execute("INSERT INTO orders SELECT g, now() FROM generate_series(2500, 2600) g")
    report = manager.maintain()
    assert report.ok, str(report)
    assert [op.partition_name for op in report.created] == ["orders_p2000", "orders_p3000"]
    where = conn.execute(
        "SELECT tableoid::regclass::text, count(*) FROM orders GROUP BY 1"
    ).fetchall()
    assert where == [("orders_p2000", 101)]


def test_existing_id_windows_are_adopted_by_bounds_and_a_gap_is_filled_with_the_gap_only(
    conn: Conn, manager: partman.Manager
) -> None:
    create_orders(conn)
    conn.execute(
        "CREATE TABLE public.orders_a PARTITION OF public.orders FOR VALUES FROM (0) TO (1000)"
    )
    conn.execute(  # a foreign, odd window in the premake range
        "CREATE TABLE public.orders_b PARTITION OF public.orders FOR VALUES FROM (1000) TO (1500)"
    )
    conn.execute("INSERT INTO orders VALUES (999, now())")
    table = partman.Table(
        name="orders", partition_by="id", partition_interval=1000, partition_count=2
    )
    found = manager.import_existing_partitions(table)
    assert [f.partition for f in found.imported] == ["public.orders_a"]
    assert [f.partition for f in found.misaligned] == ["public.orders_b"]
    plan = manager.plan()
    assert [(op.lower, op.upper) for op in plan.creates] == [(1500, 2000), (2000, 3000)]
    assert manager.maintain().ok
