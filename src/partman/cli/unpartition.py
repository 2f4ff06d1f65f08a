"""`partman unpartition`: a partitioned table with live traffic turned back into one ordinary
table (pg_partman's `undo_partition`), by the steps of `partman convert` (docs/convert.md);
`--rollback` and `--finish`. The output is convert's."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..engine.convert import Converter
from ..model.convert import Step
from .common import (
    FLAG,
    OK,
    USAGE,
    ConfigOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    fail,
    print_json,
    read_settings,
    require_dsn,
    setup_logging,
)
from .convert import _STEPS, _Bar, _done, _print_plan


def unpartition(
    table: Annotated[
        str, typer.Argument(help='The partitioned table to make ordinary, "schema.name".')
    ],
    batch_rows: Annotated[int, typer.Option("--batch-rows", help="Rows per copy batch.")] = 10_000,
    throttle: Annotated[
        float, typer.Option("--throttle", help="Seconds to sleep between copy batches.")
    ] = 0.0,
    until: Annotated[
        str,
        typer.Option("--until", help=f"Stop after this step ({_STEPS})."),
    ] = "swap",
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan", metavar=FLAG, help="Show the steps and what is done; change nothing."
        ),
    ] = False,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback",
            metavar=FLAG,
            help="Swap back to the partitioned table (changes since the swap are carried) and "
            "manage it again.",
        ),
    ] = False,
    finish: Annotated[
        bool,
        typer.Option(
            "--finish",
            metavar=FLAG,
            help="Drop the old partitioned table (all its partitions) and the change log.",
        ),
    ] = False,
    cancel: Annotated[
        bool,
        typer.Option(
            "--cancel",
            metavar=FLAG,
            help="Before the swap (or after --rollback): drop the ordinary twin, the triggers "
            "and the change log; the partitioned table is as it was.",
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", metavar=FLAG, help="Confirm --finish without asking.")
    ] = False,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Turn a partitioned table back into one ordinary table without downtime (the reverse of
    convert), in resumable steps; undo it with --rollback.

    1 twin: an ordinary table with the partitioned one's columns, keys, indexes, constraints,
    grants and owner; 2 capture: a trigger on every partition logs the key of every changed
    row; 3 copy: keyset batches, the log replayed between them; 4 verify: counts and a
    checksum, source against twin; 5 swap: the names exchanged in one short transaction under
    the lock budget, the table unregistered from partman (the old tree kept as <name>_old).
    Run it again to resume where it stopped. Exit 0 when done, 2 on bad input (nothing
    changed).

    Example: partman unpartition public.events --plan
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    try:
        step = Step(until)
    except ValueError:
        fail(f"--until must be one of {_STEPS}, got {until!r}")
    bar = _Bar() if sys.stdout.isatty() and not as_json and not plan_only else None
    converter = Converter(
        require_dsn(found),
        config=found.config,
        batch_rows=batch_rows,
        throttle=throttle,
        on_progress=bar.update if bar is not None else None,
    )
    if rollback or finish or cancel:
        if rollback + finish + cancel > 1:
            fail("--rollback, --finish and --cancel go one at a time")
        question = f"drop the old partitioned table of {schema}.{name} (no rollback after this)?"
        if finish and not yes and not (sys.stdin.isatty() and typer.confirm(question)):
            fail("--finish drops the old partitioned table: confirm with --yes", USAGE)
        if cancel:
            report = converter.cancel(schema, name)
        elif rollback:
            report = converter.rollback(schema, name)
        else:
            report = converter.finish(schema, name)
        _done(report, as_json)
        raise typer.Exit(OK)
    if plan_only:
        plan = converter.plan_unpartition(schema, name)
        if as_json:
            print_json(plan.to_dict())
        else:
            _print_plan(plan)
        raise typer.Exit(OK)
    try:
        report = converter.unpartition(schema, name, until=step)
    finally:
        if bar is not None:
            bar.close()
    _done(report, as_json)
    raise typer.Exit(OK)
