"""`partman plan`, `partman apply` (alias `maintain`) and `partman import`: the config file
resolved against the database, shown, then applied as one maintenance pass."""

from __future__ import annotations

import functools
import sys
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.text import Text

from ..engine import sync as sync_module
from ..model import snapshot
from ..model.operations import Operation
from ..settings import Settings
from . import declared_indexes, fleet
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
    fail,
    open_manager,
    out,
    print_json,
    print_problems,
    read_settings,
    require_dsn,
    resolve_or_fail,
    setup_logging,
)
from .names import did_you_mean
from .render import apply_json, plan_json, plan_summary_line, render_plan, report_line


def plan(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    show_sql: Annotated[
        bool, typer.Option("--sql", metavar=FLAG, help="Show each operation's SQL.")
    ] = False,
    log_level: LogLevelOption = None,
    database: DatabaseOption = None,
) -> None:
    """Show what `partman apply` would change, without changing anything.

    First the metadata the config file registers (tables, tenants, policies), then the
    maintenance pass that follows: partitions to create (+, green) and to retire by
    retention (-, red), grouped by table and tenant, each with its reason. Tenants from a
    tenants_query are read now. Nothing is written, not even partman's metadata schema: the
    plan is computed from the catalog and the metadata as the file would leave it.

    With [[databases]] in the file, each database in turn (or --database NAME), each in a
    section of its own.

    Example: partman plan --sql
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, database=database)
    if found.databases:
        body = functools.partial(_plan, as_json=as_json, show_sql=show_sql)
        raise typer.Exit(fleet.each(found, body, as_json=as_json))
    _plan(found, as_json=as_json, show_sql=show_sql)


def _plan(found: Settings, *, as_json: bool, show_sql: bool) -> None:
    with connect(require_dsn(found)) as conn:
        resolution = resolve_or_fail(conn, found)
        result = resolution.plan()
        indexes = _indexes_or_fail(conn, found)
    if as_json:
        print_json(
            {**plan_json(resolution.changes, result), "indexes": [d.to_dict() for d in indexes]}
        )
        return
    order = [t.qualified_name for t in found.tables]
    render_plan(out, resolution.changes, result, order, show_sql=show_sql)
    declared_indexes.render(out, indexes)


def _indexes_or_fail(
    conn: psycopg.Connection[Any], found: Settings
) -> list[declared_indexes.Declared]:
    """The declared indexes' plans; exit 2 at the first entry that cannot be built."""
    indexes = declared_indexes.preview(conn, found)
    wrong = declared_indexes.problems(found, indexes)
    if wrong:
        print_problems(wrong)
        fail(f"{len(wrong)} problem(s) with {found.file}'s indexes; nothing was run")
    return indexes


class _Progress:
    """A progress bar advanced by the executor's on_step hook (one tick per operation). Its
    fill is green while it runs and once it is finished (rich's own styles draw the running
    fill red, which reads as an error)."""

    def __init__(self, total: int, console: Console = out) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(complete_style="green", finished_style="green"),
            MofNCompleteColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("applying", total=max(total, 1))
        self.seen: set[tuple[str, str, str]] = set()

    def step(self, name: str, op: Operation) -> None:
        key = (op.kind, op.partition_schema, op.partition_name)
        if key not in self.seen:
            if self.seen:
                self.progress.advance(self.task)
            self.seen.add(key)
        self.progress.update(self.task, description=f"{name} {op.partition_name}")

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seen:
            total = max(len(self.seen), int(self.progress.tasks[0].total or 0))
            self.progress.update(self.task, total=total, completed=total, description="done")
        self.progress.stop()


def apply(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", metavar=FLAG, help="Apply without asking (cron, CI, Kubernetes)."
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", metavar=FLAG, help="Print the pass's report as JSON (implies no prompt)."
        ),
    ] = False,
    log_level: LogLevelOption = None,
    database: DatabaseOption = None,
) -> None:
    """Register what the config file declares, then run one maintenance pass.

    Shows the plan and asks before doing anything; --yes skips the question (and is required
    when stdin is not a terminal: without it, apply refuses with exit code 2). The pass
    creates partitions ahead and applies retention under the lock budget; a table whose lock
    cannot be had is skipped and retried next time. Tenants from a tenants_query are read on
    every apply, so new ones are picked up. Exit 0 when every operation succeeded, 1 when some
    failed or were skipped (the report says why), 2 on config errors (nothing is run).

    With [[databases]] in the file, each database in turn (or --database NAME): a database
    that cannot be reached has its section say why and the others are still applied; the
    exit code is then 1.

    Example (crontab): */10 * * * * partman apply --yes --config /etc/partman.toml
    """
    setup_logging(log_level)
    if not (yes or as_json) and not sys.stdin.isatty():
        fail(
            "apply asks for confirmation, but stdin is not a terminal; review with "
            "`partman plan`, then run `partman apply --yes` (always pass --yes in cron jobs, "
            "CI and Kubernetes)"
        )
    found = read_settings(config, dsn, database=database)
    if found.databases:
        body = functools.partial(_apply, yes=yes, as_json=as_json)
        raise typer.Exit(fleet.each(found, body, as_json=as_json))
    _apply(found, yes=yes, as_json=as_json)


def _apply(found: Settings, *, yes: bool, as_json: bool) -> None:
    with connect(require_dsn(found)) as conn:
        resolution = resolve_or_fail(conn, found)
        preview = resolution.plan()
        indexes = _indexes_or_fail(conn, found)
    pending = [d for d in indexes if d.plan is not None and d.plan.steps]
    if not as_json:
        if out.is_terminal or not yes:
            order = [t.qualified_name for t in found.tables]
            render_plan(out, resolution.changes, preview, order)
            declared_indexes.render(out, pending)
        else:  # a cron job's mail: the summary (the JSON logs on stderr name every operation)
            out.print(plan_summary_line(resolution.changes, preview))
        asked = not yes and (resolution.changes or len(preview) or pending)
        if asked and not typer.confirm("Apply these changes?", default=False):
            out.print("Nothing applied.")
            raise typer.Exit(PROBLEMS)
    progress = _Progress(len(preview)) if sys.stdout.isatty() and not as_json else None
    hook = progress.step if progress is not None else None
    # The pass reads the catalog and the metadata afresh and plans again: let the preview's
    # go first, so that a big database is not held twice while the pass runs.
    del preview
    resolution.state = snapshot.State(tables=(), tenants={}, owned={})
    resolution.catalog = {}
    with open_manager(found, on_step=hook) as manager:
        sync_module.sync(manager, resolution)
        if progress is not None:
            with progress:
                report = manager.maintain()
        else:
            report = manager.maintain()
        # after the pass: the partitions it made are built with the index already
        built = declared_indexes.build(manager, found) if indexes else []
    ok = report.ok and all(r.ok for _, r in built)
    if as_json:
        print_json(
            {
                **apply_json(resolution.changes, report),
                "indexes": [{"index": label, **r.to_dict()} for label, r in built],
            }
        )
    else:
        out.print(report_line(report))
        for label, r in built:
            out.print(declared_indexes.report_line(label, r))
    raise typer.Exit(OK if ok else PROBLEMS)


def import_(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    table: TableOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Adopt the partitions that already exist in the config file's tables.

    A partition is adopted when its catalog bounds are exactly one period of the table's
    partition_interval for one tenant, whatever its name; adopted partitions are then kept
    and retired by the table's policy like the ones partman creates. Others are listed as
    misaligned or foreign and never touched. Tenants found are registered with the table's
    policy. Run it once before the first apply on tables that already have partitions.

    Example: partman import --table convoy.events
    """
    setup_logging(log_level)
    found = read_settings(config, dsn)
    specs = [s for s in found.tables if table is None or s.qualified_name == table]
    if table is not None and not specs:
        names = [s.qualified_name for s in found.tables]
        fail(
            f"{table} is not a table of {found.file} (tables: {', '.join(names) or 'none'})"
            f"{did_you_mean(table, names)}"
        )
    with connect(require_dsn(found)) as conn:
        resolve_or_fail(conn, found)
    reports = []
    with open_manager(found) as manager:
        for spec in specs:
            reports.append((spec.qualified_name, manager.import_existing_partitions(spec.table)))
    if as_json:
        print_json(
            {
                "tables": [{"table": name, **r.to_dict()} for name, r in reports],
                "summary": {
                    "imported": sum(len(r.imported) for _, r in reports),
                    "already_owned": sum(len(r.already_owned) for _, r in reports),
                    "misaligned": sum(len(r.misaligned) for _, r in reports),
                    "foreign": sum(len(r.foreign) for _, r in reports),
                },
            }
        )
        return
    for name, r in reports:
        out.print(Text(name, style="bold"))
        for f in r.imported:
            out.print(Text(f"  + adopted {f.partition} {f.bound}", style="green"))
        for line in str(r).splitlines():
            out.print(Text(f"  {line.strip()}"))
