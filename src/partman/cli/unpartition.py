"""`partman unpartition`: a partitioned table with live traffic turned back into one ordinary
table (pg_partman's `undo_partition`), by the steps of `partman convert` (docs/convert.md);
`--rollback` and `--finish`. The output is convert's."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    FLAG,
    OK,
    ConfigOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    print_json,
    read_settings,
    setup_logging,
)
from .convert import (
    BatchRowsOption,
    PlanOption,
    ThrottleOption,
    UntilOption,
    YesOption,
    _done,
    _open,
    _print_plan,
    _undo,
)


def unpartition(
    table: Annotated[
        str, typer.Argument(help='The partitioned table to make ordinary, "schema.name".')
    ],
    batch_rows: BatchRowsOption = 10_000,
    throttle: ThrottleOption = 0.0,
    until: UntilOption = "swap",
    plan_only: PlanOption = False,
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
    yes: YesOption = False,
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
    schema, name, step, bar, converter = _open(
        found, table, until, batch_rows, throttle, quiet=as_json or plan_only
    )
    old = "old partitioned table"
    _undo(converter, schema, name, old, rollback, finish, cancel, yes, as_json)
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
