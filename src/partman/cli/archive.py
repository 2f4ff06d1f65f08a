"""`partman archive list` and `partman restore`: the partitions retention exported to Parquet
(retention_action "export"), and bringing archived periods back as partitions."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from ..engine.manager import Manager
from ..model.archive import Archive
from .common import (
    OK,
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


def list_(
    table: Annotated[
        str | None,
        typer.Argument(help='Only this table ("schema.name").', show_default=False),
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant.", show_default=False)
    ] = None,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """List the archive manifest: each partition retention exported to Parquet.

    One row per file: table, tenant, period, rows, size, state (archived, restoring,
    restored), location and checksum. A row is written only once its file was read back and
    its row count and checksum matched the partition. Only reads.

    Example: partman archive list convoy.events --json
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    with open_manager(found) as manager:
        archives = manager.archives(table, tenant)
    if as_json:
        print_json({"archives": [a.to_dict() for a in archives]})
        return
    if not archives:
        out.print("No archives." if table is None else f"No archives of {escape(table)}.")
        return
    grid = RichTable(box=None, pad_edge=False, show_edge=False)
    for column in ("table", "tenant", "from", "to", "rows", "size", "state", "location"):
        grid.add_column(column, justify="right" if column in ("rows", "size") else "left")
    for a in archives:
        grid.add_row(
            escape(a.table),
            escape(a.tenant or ""),
            escape(a.lower),
            escape(a.upper),
            f"{a.rows:,}",
            _size(a.bytes),
            _state(a),
            escape(a.location),
        )
    print_grid(grid)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def _state(a: Archive) -> str:
    colour = {"archived": "", "restoring": "yellow", "restored": "green"}.get(a.state, "")
    return f"[{colour}]{a.state}[/]" if colour else a.state


def restore(
    table: TableArgument,
    start: Annotated[
        str,
        typer.Option(
            "--from", help="Start of the period (a date or time, inclusive).", show_default=False
        ),
    ],
    end: Annotated[
        str,
        typer.Option("--to", help="End of the period (exclusive).", show_default=False),
    ],
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Only this tenant's.", show_default=False)
    ] = None,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Bring archived periods back as partitions.

    Every archive of the table (and tenant) whose period meets [--from, --to) is restored,
    whole: its table is created unattached (LIKE the parent), loaded with COPY from its
    Parquet file, its row count and checksum checked against the manifest, then attached
    under the lock budget and recorded as partman's, so retention applies to it again (keep
    it with a longer retention_period first, or the next pass exports it again). A period
    that overlaps an existing partition is refused before anything is changed (exit 2). Run
    it again to resume an interrupted restore.

    Example: partman restore convoy.events --tenant acme --from 2026-01-01 --to 2026-02-01
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    with open_manager(found) as manager:
        if sys.stdout.isatty() and not as_json:
            restored = _with_progress(manager, table, start, end, tenant)
        else:
            restored = manager.restore(table, start, end, tenant=tenant)
    if as_json:
        print_json({"restored": [a.to_dict() for a in restored]})
    else:
        for a in restored:
            who = "" if a.tenant is None else f" (tenant {escape(a.tenant)})"
            out.print(
                f"restored {escape(a.partition)}{who} [{escape(a.lower)}, {escape(a.upper)}): "
                f"{a.rows:,} row(s) from {escape(a.location)}, checksum verified"
            )
    raise typer.Exit(OK)


def _with_progress(
    manager: Manager, table: str, start: str, end: str, tenant: str | None, console: Console = out
) -> list[Archive]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(complete_style="green", finished_style="green"),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"restoring {escape(table)} (rows)", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return manager.restore(table, start, end, tenant=tenant, on_progress=advance)
