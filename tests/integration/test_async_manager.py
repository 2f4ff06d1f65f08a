"""AsyncManager, driven from an event loop: the engine's source, checked where it runs.

The async code is the truth: `engine/manager_async.py` is written by hand and the sync
`Manager` (`engine/manager.py`) is generated from it by tools/async_to_sync.py. Most
integration tests drive the generated `Manager`; these drive the source itself, and what only
the async face has (a background task, coroutine hooks, async pools).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

import partman
from partman.model.operations import RetirePartition

from seed import NOW, catalog_fingerprint, create_seed_schema, days_covered, seed_table

Conn = psycopg.Connection[Any]
TENANTS = ["project-acme", "o'reilly-媒体", "Tenant With Spaces"]


def _op_keys(plan: partman.Plan) -> list[tuple[str, str, str]]:
    return sorted((op.kind, op.partition_qualified, op.reason) for op in plan.operations)


def test_async_manager_runs_the_seed_scenario_like_manager(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)

    async def scenario() -> tuple[partman.Report, partman.Plan, partman.Report]:
        async with partman.AsyncManager(dsn, clock=clock) as manager:
            for name in ("events", "event_deliveries", "delivery_attempts"):
                table = seed_table(name, TENANTS[0])
                assert await manager.add_managed_table(table)
                await manager.register_tenants(
                    table,
                    [TENANTS[1], partman.Tenant(tenant_id=TENANTS[2], retention_period="7 days")],
                )
            first = await manager.maintain()
            clock.advance(dt.timedelta(days=12))
            async_plan = await manager.plan()
            with partman.Manager(dsn, clock=clock) as sync_manager:
                assert _op_keys(sync_manager.plan()) == _op_keys(async_plan)
            second = await manager.maintain()
            return first, async_plan, second

    first, _, second = asyncio.run(scenario())
    assert first.ok and len(first.created) == 3 * 3 * 11  # today + 10 ahead, 3 tenants, 3 tables
    assert second.ok
    # 12 days later: today + 10 ahead again (the day in between is past, and no backfill);
    # the 7-day tenant lost its 5 oldest days, the 30-day ones nothing
    assert len(second.created) == 3 * 3 * 11
    assert len(second.dropped) == 3 * 5
    days = days_covered(conn, "convoy", "events", TENANTS[2])
    assert days[0][0] == dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
    assert days[-1][1] == dt.datetime(2026, 4, 2, tzinfo=dt.UTC)
    assert len(days_covered(conn, "convoy", "events", TENANTS[1])) == 22


def test_background_task_maintains_without_blocking_the_event_loop(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    tenants = [f"tenant-{i:03}" for i in range(40)]

    async def run() -> tuple[float, int, partman.Report | None]:
        config = partman.Config(sample_rate=dt.timedelta(milliseconds=200))
        async with partman.AsyncManager(dsn, config=config) as manager:
            table = seed_table("events", None)
            await manager.add_managed_table(table)
            await manager.register_tenants(table, tenants)
            worst, ticks = 0.0, 0
            manager.start()
            assert manager.start() is manager  # a second start() is a no-op
            deadline = time.monotonic() + 60
            while manager.last_report is None and time.monotonic() < deadline:
                before = time.monotonic()
                await asyncio.sleep(0.005)
                worst = max(worst, time.monotonic() - before)
                ticks += 1
            await manager.stop()
            return worst, ticks, manager.last_report

    worst, ticks, report = asyncio.run(run())
    assert report is not None and report.ok and len(report.created) == 40 * 11
    assert ticks > 10  # the loop kept running while 440 partitions were created
    # every round trip is awaited: the loop is never held for a whole pass (seconds here),
    # only for the planner's few milliseconds of CPU at a time
    assert worst < 0.5, f"the event loop was held for {worst:.3f}s"
    assert len(days_covered(conn, "convoy", "events", "tenant-039")) == 11


def test_a_coroutine_pre_drop_hook_decides_retention(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    clock = partman.SimulatedClock(NOW)
    asked: list[str] = []

    async def hook(op: RetirePartition) -> str | None:
        await asyncio.sleep(0)  # e.g. an async upload of the partition before it goes
        asked.append(op.partition_name)
        return "skip" if len(asked) == 1 else None

    async def run() -> partman.Report:
        async with partman.AsyncManager(dsn, clock=clock, pre_drop_hook=hook) as manager:
            await manager.add_managed_table(
                seed_table("events", "project-acme", retention_period="2 days")
            )
            await manager.maintain()
            clock.advance(dt.timedelta(days=4))
            return await manager.maintain()

    report = asyncio.run(run())
    assert len(asked) == 2  # 4 days later, 2 days are past the 2-day retention
    assert len(report.dropped) == 1
    assert [r.error for r in report.skipped] == ["the pre-drop hook said skip"]


def test_a_borrowed_async_pool_stays_open_and_a_sync_pool_is_refused(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)

    async def run() -> None:
        async with AsyncConnectionPool(dsn, min_size=1, max_size=2, open=False) as pool:
            async with partman.AsyncManager(pool) as manager:
                await manager.add_managed_table(seed_table("events", "project-acme"))
                assert (await manager.maintain()).ok
            assert not pool.closed
            async with pool.connection() as c:
                cur = await c.execute("SELECT count(*) FROM partman_meta.partitions")
                assert await cur.fetchone() == (11,)

    asyncio.run(run())
    with (
        ConnectionPool(dsn, open=False) as sync_pool,
        pytest.raises(partman.ConfigError, match="AsyncConnectionPool"),
    ):
            partman.AsyncManager(sync_pool)  # type: ignore[arg-type]


def test_bad_input_is_refused_before_anything_is_written(dsn: str, conn: Conn) -> None:
    create_seed_schema(conn)
    before = catalog_fingerprint(conn)

    async def run() -> None:
        async with partman.AsyncManager(dsn) as manager:
            with pytest.raises(partman.TableNotFoundError, match=r"convoy\.nope"):
                await manager.add_managed_table(seed_table("nope", "project-acme"))
            with pytest.raises(partman.TenantError, match="no tenant registered"):
                await manager.register_tenants(seed_table("events"), ["ok", "bad\x00id"])
            assert not (await manager.plan()).operations

    asyncio.run(run())
    assert catalog_fingerprint(conn) == before
