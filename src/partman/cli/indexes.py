"""`partman index create` and `partman index list`: an index on a partitioned table built
without blocking writes, and where each index of a table stands (which partitions lack it)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from ..model.indexes import Holding, IndexReport, IndexState, IndexStep
from ..model.report import Outcome
from .common import (
    FLAG,
    OK,
    PROBLEMS,
    ConfigOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    open_manager,
    out,
    print_grid,
    print_json,
    read_settings,
    setup_logging,
)

TableArgument = Annotated[str, typer.Argument(help='The partitioned table, as "schema.name".')]


class _Progress:
    """A progress bar advanced before each step of the build (green, as `partman apply`'s)."""

    def __init__(self, console: Console = out) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(complete_style="green", finished_style="green"),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("reading the catalog", total=1)

    def step(self, step: IndexStep, number: int, total: int) -> None:
        self.progress.update(
            self.task, total=total, completed=number - 1, description=escape(step.label)
        )

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        task = self.progress.tasks[0]
        self.progress.update(self.task, completed=task.total, description="done")
        self.progress.stop()


def create(
    table: TableArgument,
    columns: Annotated[
        list[str],
        typer.Argument(
            help='The key columns, in order: "(tenant_id, created_at)" or tenant_id created_at.',
            show_default=False,
        ),
    ],
    unique: Annotated[
        bool,
        typer.Option(
            "--unique",
            metavar=FLAG,
            help="A unique index (it must include every partition key column).",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The parent's index name (default: <table>_<columns>_idx, or the existing "
            "index of this definition).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Build an index on a partitioned table without blocking writes.

    CREATE INDEX ... ON ONLY the parent (no build; the index stays invalid until complete),
    then for each partition, one at a time, CREATE INDEX CONCURRENTLY and ALTER INDEX ...
    ATTACH PARTITION (a sub-partitioned partition gets its own ON ONLY index, its leaves
    built and attached, then is attached). Each step waits at most lock_timeout for its
    locks, with retries; a partition that cannot be locked is skipped and named, the others
    go on. Run it again to resume after a crash or a skip: what exists is found (an invalid
    leftover of a killed build is dropped and built again). Exit 0 when the index is valid,
    1 when partitions still lack it, 2 on bad input (nothing was changed).

    Example: partman index create app.events "(tenant_id, created_at)"
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    progress = _Progress() if sys.stdout.isatty() and not as_json else None
    with open_manager(found) as manager:
        if progress is not None:
            with progress:
                report = manager.create_index(
                    table, " ".join(columns), unique=unique, name=name, on_step=progress.step
                )
        else:
            report = manager.create_index(table, " ".join(columns), unique=unique, name=name)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    raise typer.Exit(OK if report.valid else PROBLEMS)


def _print_report(report: IndexReport) -> None:
    unique = "UNIQUE " if report.unique else ""
    out.print(
        Text(f"{report.table}: index {report.index} {unique}{report.definition}", style="bold")
    )
    counts = report.counts()
    done = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v)
    if not report.results:
        out.print("  nothing to do: it exists and is valid" if report.valid else "  no step ran")
    else:
        out.print(f"  {done} in {report.duration_ms / 1000:.2f} s")
    for r in report.results:
        if r.outcome != Outcome.OK:
            style = "red" if r.outcome == Outcome.FAILED else "yellow"
            out.print(Text(f"  {r.outcome} {r.step.label}: {r.reason}", style=style))
    for note in report.notes:
        out.print(Text(f"  note: {note}", style="yellow"))
    if report.valid:
        out.print(Text("  valid: attached in every partition", style="green"))
    else:
        lacking = ", ".join(report.missing)
        out.print(
            Text(
                f"  not valid yet: {len(report.missing)} partition(s) lack it ({lacking}); run "
                "the same command again to resume",
                style="yellow",
            )
        )


def list_(
    table: TableArgument,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """List the indexes of a partitioned table and which partitions lack each one.

    For each index of the parent: its definition, whether it is valid, how many partitions
    (at every depth) have it attached, and which ones lack it, hold an invalid one (a killed
    build's leftover) or hold a valid one not attached yet (`partman index create` finishes
    them). Only reads. Exit 0 when every index is valid, 1 otherwise.

    Example: partman index list app.events --json
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    with open_manager(found) as manager:
        states = manager.index_status(table)
    if as_json:
        print_json({"table": table, "indexes": [s.to_dict() for s in states]})
    else:
        _print_states(table, states)
    raise typer.Exit(OK if all(s.valid for s in states) else PROBLEMS)


def _print_states(table: str, states: list[IndexState]) -> None:
    if not states:
        out.print(f"{table} has no index.")
        return
    out.print(Text(f"{table} ({states[0].partitions} partitions)", style="bold"))
    grid = RichTable(box=None, pad_edge=False, show_edge=False)
    for column in ("index", "definition", "valid", "attached", "missing", "invalid", "unattached"):
        grid.add_column(column, justify="right" if column == "attached" else "left")
    for s in states:
        grid.add_row(
            escape(s.name),
            escape(("UNIQUE " if s.unique else "") + s.definition),
            "[green]yes[/]" if s.valid else "[yellow]no[/]",
            f"{s.attached}/{s.partitions}",
            *(_names(s, h) for h in (Holding.MISSING, Holding.INVALID, Holding.UNATTACHED)),
        )
    print_grid(grid)


def _names(state: IndexState, holding: Holding) -> Any:
    names = state.lacking(holding)
    if len(names) > 5:
        names = [*names[:5], f"... {len(names) - 5} more"]
    return escape(", ".join(names))
