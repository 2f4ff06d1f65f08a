"""What `manage.py partman` prints: the `partman` command line's own renderers
(`partman.cli.render`: the plan, the lines of changes and operations, the pass's report; the
management command takes the JSON documents from there directly), so that a team moving
between the two reads the same thing; status in the same style.

Everything is drawn on a rich Console over a string, then written through the management
command's stdout (so `call_command(..., stdout=...)` and --no-color / --force-color work).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from partman import Plan, Report
from partman.cli.render import (
    coverage_words,
    partitions_text,
    render_grouped,
    render_plan,
    report_line,
    run_counts,
)
from partman.db.reads import Run
from partman.engine.sync import Change
from partman.model.text import iso_seconds

from .survey import Survey, SurveyedRunway

Draw = Callable[[Console], None]
WIDTH = 400  # lines are never cut: output goes to logs and cron mail more than to terminals


def capture(draw: Draw, *, color: bool) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        soft_wrap=True,
        width=WIDTH,
    )
    draw(console)
    return buffer.getvalue()


def plan_text(changes: list[Change], plan: Plan, order: list[str], show_sql: bool) -> Draw:
    def draw(console: Console) -> None:
        render_plan(console, changes, plan, order, show_sql=show_sql)

    return draw


def apply_text(changes: list[Change], report: Report, order: list[str], *, detail: bool) -> Draw:
    """What was registered and what the pass did, by table and tenant (unless `detail` is
    off: --verbosity 0, for cron mail), then the summary with every failure and skip."""

    def draw(console: Console) -> None:
        done = [r.operation for r in report.results if r.outcome == "ok"] if detail else []
        tables = list(dict.fromkeys([*order, *(op.parent_qualified for op in done)]))
        render_grouped(console, tables, changes if detail else [], done)
        console.print(report_line(report))

    return draw


# -- status ----------------------------------------------------------------------------------


def status_text(found: Survey, last: Run | None) -> Draw:
    """Per table: its policy and default partition; per tenant: partitions and runway."""

    def draw(console: Console) -> None:
        if not found.tables:
            console.print('No managed tables: declare them in PARTMAN["table"].')
        for t in found.tables:
            size = partitions_text(t.record.interval)
            head = f"{t.name}: {size} partitions, {t.record.partition_count} ahead"
            if not t.registered:
                head += " (not applied yet)"
            console.print(Text(head, style="bold"))
            if t.default_partition is not None:
                rows = t.default_rows or 0
                console.print(
                    Text(
                        f"  default partition {t.default_partition}: {rows} row(s)",
                        style="yellow" if rows else "",
                    )
                )
            for r in t.runways:
                console.print(_runway_line(r))
        if last is None:
            console.print("Last run: none yet (manage.py partman apply)")
        else:
            console.print(
                f"Last run: {iso_seconds(last.started_at)} {last.outcome or 'unfinished'} "
                f"({run_counts(last.summary)})"
            )
        short = found.short
        if short:
            console.print(
                Text(
                    f"{len(short)} short of runway: run manage.py partman apply or partman run",
                    style="red",
                )
            )
        else:
            console.print(Text("All well.", style="green"))

    return draw


def _runway_line(r: SurveyedRunway) -> Text:
    c = r.runway.coverage
    who = "  " + (f"tenant {c.tenant}" if c.tenant is not None else "(single-tenant)")
    pending = "" if r.registered else " (not applied yet)"
    style = "red" if c.covered_until is None else ("yellow" if r.short else "")
    return Text(f"{who}: {coverage_words(c)}{pending}", style=style)


def status_json(found: Survey, last: Run | None) -> dict[str, Any]:
    return {
        "ok": not found.short,
        "tables": [t.to_dict() for t in found.tables],
        "short_runway": [r.to_dict() for r in found.short],
        "last_run": None if last is None else last.to_dict(),
    }
