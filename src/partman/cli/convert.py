"""`partman convert`: an ordinary table with live traffic turned into a partitioned table
managed by partman, in resumable steps (docs/convert.md); `--rollback` and `--finish`."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from ..engine.convert import Converter
from ..errors import ConfigError
from ..model.config import Table
from ..model.convert import ConvertPlan, ConvertReport, Progress, Step
from ..settings import Settings
from .common import (
    FLAG,
    OK,
    USAGE,
    ConfigOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    fail,
    out,
    print_json,
    read_settings,
    require_dsn,
    setup_logging,
)

_STEPS = ", ".join(s.value for s in Step)
# the options `convert` and `unpartition` share
BatchRowsOption = Annotated[int, typer.Option("--batch-rows", help="Rows per copy batch.")]
ThrottleOption = Annotated[
    float, typer.Option("--throttle", help="Seconds to sleep between copy batches.")
]
UntilOption = Annotated[str, typer.Option("--until", help=f"Stop after this step ({_STEPS}).")]
PlanOption = Annotated[
    bool,
    typer.Option("--plan", metavar=FLAG, help="Show the steps and what is done; change nothing."),
]
YesOption = Annotated[
    bool, typer.Option("--yes", metavar=FLAG, help="Confirm --finish without asking.")
]


class _Bar:
    """Rows copied (then verified), rows per second and the time left (a rich progress bar on a
    terminal)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(complete_style="green", finished_style="green"),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TextColumn("replayed {task.fields[replayed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=out,
            transient=False,
        )
        self.task = self.progress.add_task("copy", total=None, rate="-", replayed=0)
        self.started = time.monotonic()
        self.first: int | None = None
        self.step = "copy"

    def update(self, p: Progress) -> None:
        if self.first is None:
            self.first = p.rows_copied
            self.progress.start()
        if p.step.value != self.step:  # a new bar for the verify step
            self.step = p.step.value
            self.task = self.progress.add_task(self.step, total=None, rate="-", replayed=0)
            self.started, self.first = time.monotonic(), 0
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (p.rows_copied - self.first) / elapsed
        self.progress.update(
            self.task,
            completed=p.rows_copied,
            total=max(p.rows_total, p.rows_copied),
            rate=f"{rate:,.0f}",
            replayed=p.replayed,
        )

    def close(self) -> None:
        if self.first is not None:
            self.progress.stop()


def convert(
    table: Annotated[str, typer.Argument(help='The ordinary table to convert, "schema.name".')],
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="The partition key column (time, epoch or id).", show_default=False
        ),
    ] = None,
    interval: Annotated[
        str | None,
        typer.Option(
            "--interval",
            help='One partition\'s length: "1 day", "1 month", or a number of ids (1000000).',
            show_default=False,
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", help="The tenant column: RANGE (tenant, key).", show_default=False
        ),
    ] = None,
    premake: Annotated[int, typer.Option("--premake", help="Partitions kept ahead.")] = 10,
    retention: Annotated[
        str | None,
        typer.Option(
            "--retention",
            help="Retention once converted (applies from the swap on).",
            show_default=False,
        ),
    ] = None,
    default_partition: Annotated[
        bool, typer.Option("--default-partition", metavar=FLAG, help="Keep a DEFAULT partition.")
    ] = False,
    extend_unique: Annotated[
        bool,
        typer.Option(
            "--extend-unique",
            metavar=FLAG,
            help="Append the partition key to unique indexes that lack it (the primary key "
            "too); uniqueness then holds per key value.",
        ),
    ] = False,
    batch_rows: BatchRowsOption = 10_000,
    throttle: ThrottleOption = 0.0,
    until: UntilOption = "swap",
    plan_only: PlanOption = False,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback", metavar=FLAG, help="Swap back (changes since the swap are carried)."
        ),
    ] = False,
    finish: Annotated[
        bool,
        typer.Option("--finish", metavar=FLAG, help="Drop the old table and the change log."),
    ] = False,
    cancel: Annotated[
        bool,
        typer.Option(
            "--cancel",
            metavar=FLAG,
            help="Give up a conversion before its swap: drop the twin, triggers and log.",
        ),
    ] = False,
    yes: YesOption = False,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Partition a live table without downtime, in resumable steps; undo it with --rollback.

    1 twin: a partitioned copy of the table's definition, registered and premade by a pass;
    2 capture: a trigger logs the key of every changed row; 3 copy: keyset batches, the log
    replayed between them; 4 verify: counts and a checksum, source against twin; 5 swap:
    the names exchanged in one short transaction under the lock budget (the old table kept as
    <name>_old). Run it again to resume where it stopped. Exit 0 when done, 2 on bad input
    (nothing changed).

    Example: partman convert public.events --by created_at --interval "1 day" --plan
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    schema, name, step, bar, converter = _open(
        found, table, until, batch_rows, throttle, quiet=as_json or plan_only
    )
    _undo(converter, schema, name, "old table", rollback, finish, cancel, yes, as_json)
    if by is None or interval is None:
        fail("convert needs --by COLUMN and --interval (e.g. --interval '1 day')")
    try:
        spec = Table(
            name=name,
            schema=schema,
            partition_by=by,
            tenant_id_column=tenant,
            partition_interval=int(interval) if interval.isdigit() else interval,
            partition_count=premake,
            retention_period=retention,
            default_partition=default_partition,
        )
    except ConfigError as error:
        fail(str(error))
    if plan_only:
        plan = converter.plan(spec, extend_unique=extend_unique)
        if as_json:
            print_json(plan.to_dict())
        else:
            _print_plan(plan)
        raise typer.Exit(OK)
    try:
        report = converter.convert(spec, extend_unique=extend_unique, until=step)
    finally:
        if bar is not None:
            bar.close()
    _done(report, as_json)
    raise typer.Exit(OK)


def _open(
    found: Settings, table: str, until: str, batch_rows: int, throttle: float, *, quiet: bool
) -> tuple[str, str, Step, _Bar | None, Converter]:
    """What `convert` and `unpartition` start with: the table's schema and name, the step to
    stop after, a progress bar on a terminal, and the converter."""
    schema, _, name = table.rpartition(".")
    try:
        step = Step(until)
    except ValueError:
        fail(f"--until must be one of {_STEPS}, got {until!r}")
    bar = _Bar() if sys.stdout.isatty() and not quiet else None
    converter = Converter(
        require_dsn(found),
        config=found.config,
        batch_rows=batch_rows,
        throttle=throttle,
        on_progress=bar.update if bar is not None else None,
    )
    return schema or "public", name, step, bar, converter


def _undo(
    converter: Converter,
    schema: str,
    name: str,
    old: str,
    rollback: bool,
    finish: bool,
    cancel: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """`--rollback`, `--finish` or `--cancel` (one at a time), in either direction: the
    record knows which; returns only when none was asked for."""
    if not (rollback or finish or cancel):
        return
    if rollback + finish + cancel > 1:
        fail("--rollback, --finish and --cancel go one at a time")
    question = f"drop the {old} of {schema}.{name} (no rollback after this)?"
    if finish and not yes and not (sys.stdin.isatty() and typer.confirm(question)):
        fail(f"--finish drops the {old}: confirm with --yes", USAGE)
    if cancel:
        report = converter.cancel(schema, name)
    elif rollback:
        report = converter.rollback(schema, name)
    else:
        report = converter.finish(schema, name)
    _done(report, as_json)
    raise typer.Exit(OK)


def _print_plan(plan: ConvertPlan) -> None:
    state = "not started" if plan.state is None else f"last step done: {plan.state.value}"
    out.print(Text(f"{plan.direction} {plan.table} ({state})", style="bold"))
    for s in plan.steps:
        mark = Text("done", style="green") if s.done else Text("to do", style="yellow")
        out.print(Text(f"  {s.step.number}. {s.step.value} ", style="bold"), mark)
        for line in s.lines:
            out.print(f"     {escape(line)}")
    for note in plan.notes:
        out.print(Text(f"  note: {note}", style="dim"))


def _done(report: ConvertReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    ran = ", ".join(s.value for s in report.steps_run) or "nothing"
    out.print(Text(f"{report.table}: ran {ran}; now at {report.state.value}", style="bold"))
    facts: list[tuple[str, Any]] = [
        ("rows copied", report.rows_copied if report.steps_run else None),
        ("changes replayed", report.replayed or None),
        ("rows verified", report.verified_rows),
        ("checksum", report.checksum),
        (
            "swap",
            None
            if report.swap_ms is None
            else f"{report.swap_ms:.0f} ms, {report.swap_attempts} attempt(s)",
        ),
    ]
    for label, value in facts:
        if value is not None:
            out.print(f"  {label}: {value}")
    if report.partitions:
        shown = ", ".join(f"{k} {v}" for k, v in list(report.partitions.items())[:8])
        more = len(report.partitions) - 8
        out.print(f"  partitions: {shown}" + (f" and {more} more" if more > 0 else ""))
    for note in report.notes:
        out.print(f"  {escape(note)}")
