"""`partman partitions` and `partman status`: what exists, how far ahead it reaches, and
whether maintenance is keeping up. Only reads."""

from __future__ import annotations

import functools
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from ..db import reads
from ..decide.coverage import SHORT_OF_ONE_PERIOD, Inventory, Runway, runways
from ..model.clock import RealClock
from ..model.config import table_interval
from ..model.keys import IdInterval
from ..model.text import iso_seconds
from ..settings import Settings
from . import fleet
from .common import (
    FLAG,
    OK,
    PROBLEMS,
    ConfigOption,
    DatabaseOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    TableOption,
    connect,
    err,
    open_manager,
    out,
    print_grid,
    print_json,
    read_settings,
    require_dsn,
    setup_logging,
)
from .names import require_managed
from .render import coverage_words, partitions_text, period_text, run_counts, runway_text


def partitions(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    table: TableOption = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant.", show_default=False)
    ] = None,
    summary: Annotated[
        bool,
        typer.Option("--summary", metavar=FLAG, help="Only the coverage per table and tenant."),
    ] = False,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
    database: DatabaseOption = None,
) -> None:
    """List the partitions of the managed tables, and how far ahead each is covered.

    Per table and tenant: partitions with their bounds, owner (created or adopted by
    partman, or foreign: never touched), row estimate and size (pg_total_relation_size),
    and the runway: until when a gap-free run of partitions covers from now. The config file
    is optional (only its partman section is read). Only reads.

    With [[databases]] in the file, each database in turn (or --database NAME).

    Example: partman partitions --table convoy.events --tenant project-acme
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False, database=database)
    body = functools.partial(
        _partitions, table=table, tenant=tenant, summary=summary, as_json=as_json
    )
    if found.databases:
        raise typer.Exit(fleet.each(found, body, as_json=as_json))
    body(found)


def _partitions(
    found: Settings, *, table: str | None, tenant: str | None, summary: bool, as_json: bool
) -> None:
    meta = found.config.metadata_schema
    with connect(require_dsn(found)) as conn:
        exists = reads.metadata_exists(conn, meta)
        if exists and table is not None:
            require_managed(conn, found, table)
        sizes = reads.sizes(conn, meta) if exists else {}
    inventory = Inventory([], [])
    if exists:
        with open_manager(found) as manager:
            inventory = manager.inventory(table=table, tenant=tenant)
    if as_json:
        print_json(
            {
                "partitions": [
                    {**r.to_dict(), "size_bytes": sizes.get(r.partition)}
                    for r in inventory.partitions
                ],
                "coverage": [c.to_dict() for c in inventory.coverage],
                "table_sizes": {
                    t: sizes.get(t) for t in dict.fromkeys(c.table for c in inventory.coverage)
                },
            }
        )
        return
    if not exists or not inventory.coverage:
        out.print("No managed tables yet: write a config file, then `partman apply`.")
        return
    for name in dict.fromkeys(c.table for c in inventory.coverage):
        size = sizes.get(name)
        out.print(Text(f"{name}  ({_size(size)})" if size is not None else name, style="bold"))
        for c in [c for c in inventory.coverage if c.table == name]:
            who = "" if c.tenant is None else f"tenant {c.tenant}: "
            style = "red" if c.covered_until is None else ""
            out.print(Text(f"  {who}{coverage_words(c)}", style=style))
        if summary:
            continue
        grid = RichTable(box=None, pad_edge=False, show_edge=False)
        for column in ("tenant", "partition", "from", "to", "owner", "rows", "size"):
            grid.add_column(column, justify="right" if column in ("rows", "size") else "left")
        for r in [r for r in inventory.partitions if r.table == name]:
            rows = "?" if r.estimated_rows is None else str(r.estimated_rows)
            grid.add_row(
                escape(r.tenant or ""),
                escape(r.partition),
                "DEFAULT" if r.is_default else r.lower,
                "" if r.is_default else r.upper,
                r.owner if r.owner != "foreign" else "[yellow]foreign[/]",
                rows,
                _size(sizes.get(r.partition)),
            )
        print_grid(grid)


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def status(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.", min=1)] = 5,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
    database: DatabaseOption = None,
) -> None:
    """Last maintenance runs, recent problems, and tables running out of partitions.

    Exit 1 when the last run failed, or when a managed table (or tenant) is covered less than
    one partition_interval ahead of now (a partition_count of 0 asks for the current period
    only, so then only an uncovered now counts), or when partman was never set up here; 0
    otherwise. Failed or skipped operations of the last 24 hours are listed. Made for
    monitoring: `partman status --json` from a probe. Only reads.

    With [[databases]] in the file, each database in turn (or --database NAME); exit 1 when
    any of them has a finding or cannot be reached.

    Example: partman status || alert "partitions need attention"
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False, database=database)
    if found.databases:
        body = functools.partial(_status, runs=runs, as_json=as_json)
        raise typer.Exit(fleet.each(found, body, as_json=as_json))
    _status(found, runs=runs, as_json=as_json)


def _status(found: Settings, *, runs: int, as_json: bool) -> None:
    meta = found.config.metadata_schema
    now = RealClock().now()
    with connect(require_dsn(found)) as conn:
        if not reads.metadata_exists(conn, meta):
            findings = [
                f"partman is not set up in this database (no metadata schema {meta}); "
                "run `partman apply`"
            ]
            if as_json:
                print_json(
                    {
                        "ok": False,
                        "findings": findings,
                        "runs": [],
                        "problems": [],
                        "runway": [],
                        "tables": [],
                    }
                )
            else:
                _print_findings(findings)
            raise typer.Exit(PROBLEMS)
        last = reads.last_runs(conn, meta, runs)
        problems = reads.recent_problems(conn, meta, now - reads.DEFAULT_PROBLEM_WINDOW)
        tables = reads.managed_tables(conn, meta)
        policies = reads.tenant_policies(conn, meta)
    with open_manager(found) as manager:
        inventory = manager.inventory()
    short = [
        r
        for r in runways(
            inventory.coverage,
            {t.table: (table_interval(t.interval), t.partition_count) for t in tables},
            {(p.table, p.tenant): p.partition_count for p in policies},
        )
        if r.short(SHORT_OF_ONE_PERIOD)
    ]
    findings = []
    if last and last[0].failed:
        summary = last[0].summary
        findings.append(
            f"the last run ({iso_seconds(last[0].started_at)}) failed: "
            f"{summary.get('operations_failed', '?')} operation(s) failed"
        )
    findings += [_short_message(r) for r in short]
    if as_json:
        print_json(
            {
                "ok": not findings,
                "findings": findings,
                "runs": [r.to_dict() for r in last],
                "problems": [p.to_dict() for p in problems],
                "runway": [c.to_dict() for c in inventory.coverage],
                "short_runway": [r.to_dict() for r in short],
                "tables": [t.to_dict() for t in tables],
            }
        )
        raise typer.Exit(PROBLEMS if findings else OK)
    out.print(Text("Last runs", style="bold"))
    if not last:
        out.print("  none yet: run `partman apply`")
    for r in last:
        style = {"ok": "green", "partial": "yellow", "failed": "red"}.get(r.outcome or "", "")
        detail = (
            run_counts(r.summary) if r.summary else "unfinished (still running, or interrupted)"
        )
        out.print(
            Text(f"  {iso_seconds(r.started_at)}  {r.outcome or '-':8} {detail}", style=style)
        )
    out.print(Text(f"Tables ({len(tables)})", style="bold"))
    for t in tables:
        mine = [c for c in inventory.coverage if c.table == t.table]
        least = min(mine, key=lambda c: (c.runway_ids or 0, c.runway_seconds), default=None)
        ahead = (
            "no tenants"
            if least is None
            else f"least covered: {runway_text(least)} ahead"
            + ("" if least.tenant is None else f" (tenant {least.tenant})")
        )
        size = partitions_text(table_interval(t.interval))
        out.print(Text(f"  {t.table}: {size} partitions, {t.tenants} tenant(s), {ahead}"))
    if problems:
        out.print(Text("Problems in the last 24 hours", style="bold"))
        for p in problems:
            where = p.partition or p.table or ""
            out.print(
                Text(
                    f"  {iso_seconds(p.at)}  {p.outcome} {p.operation} {where}: "
                    f"{p.error or p.reason or ''}",
                    style="red" if p.outcome == "failed" else "yellow",
                )
            )
    if findings:
        _print_findings(findings)
        raise typer.Exit(PROBLEMS)
    out.print(Text("All well.", style="green"))


def _short_message(r: Runway) -> str:
    c = r.coverage
    who = c.table + ("" if c.tenant is None else f" tenant {c.tenant}")
    if c.covered_until is None:
        if isinstance(r.interval, IdInterval):
            return (
                f"{who}: no partition covers the newest id; inserts of new ids fail (or go "
                "to a default partition)"
            )
        return f"{who}: no partition covers now; inserts fail (or go to a default partition)"
    return (
        f"{who}: covered only until {c.covered_until} (less than one "
        f"{period_text(r.interval)} period ahead); run `partman apply`"
    )


def _print_findings(findings: list[str]) -> None:
    for f in findings:
        err.print(Text(f"problem: {f}", style="red"))
