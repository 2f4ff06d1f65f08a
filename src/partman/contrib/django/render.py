"""What `manage.py partman` prints: the `partman` command line's own renderers where it has
them (the plan, its JSON, the lines of changes and operations), so that a team moving between
the two reads the same thing; status in the same style.

Everything is drawn on a rich Console over a string, then written through the management
command's stdout (so `call_command(..., stdout=...)` and --no-color / --force-color work).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

from partman import Operation, Plan, Report
from partman.cli import commands as partman_cli
from partman.db.reads import Run
from partman.engine.sync import Change
from partman.model.text import human_duration

from .survey import Runway, Survey

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


# -- plan ------------------------------------------------------------------------------------


def plan_text(changes: list[Change], plan: Plan, order: list[str], show_sql: bool) -> Draw:
    def draw(console: Console) -> None:
        partman_cli._render_plan(console, changes, plan, order, show_sql=show_sql)

    return draw


def plan_json(changes: list[Change], plan: Plan) -> dict[str, Any]:
    return partman_cli.plan_json(changes, plan)


# -- apply -----------------------------------------------------------------------------------


def apply_text(changes: list[Change], report: Report, order: list[str], *, detail: bool) -> Draw:
    """What was registered and what the pass did, by table and tenant (unless `detail` is
    off: --verbosity 0, for cron mail), then the summary with every failure and skip."""

    def draw(console: Console) -> None:
        done = [r.operation for r in report.results if r.outcome == "ok"] if detail else []
        changes_shown = changes if detail else []
        tables = list(dict.fromkeys([*order, *(op.parent_qualified for op in done)]))
        for c in changes_shown:
            if c.table is None:
                console.print(partman_cli._change_line(c, ""))
        for table in tables:
            mine = [c for c in changes_shown if c.table == table]
            ops = [op for op in done if op.parent_qualified == table]
            if not (mine or ops):
                continue
            console.print(Text(table, style="bold"))
            for c in mine:
                if c.tenant is None:
                    console.print(partman_cli._change_line(c, "  "))
            _ops(console, [op for op in ops if op.tenant is None], "  ")
            tenants = dict.fromkeys(
                [c.tenant for c in mine if c.tenant is not None]
                + [str(op.tenant) for op in ops if op.tenant is not None]
            )
            for tenant in tenants:
                console.print(Text(f"  tenant {tenant}", style="bold"))
                for c in mine:
                    if c.tenant == tenant:
                        console.print(partman_cli._change_line(c, "    "))
                _ops(console, [op for op in ops if str(op.tenant) == tenant], "    ")
        style = "green" if report.ok else "red"
        console.print(Text(f"Applied: {report}", style=style))

    return draw


def _ops(console: Console, ops: list[Operation], indent: str) -> None:
    for op in ops:
        for line in partman_cli._op_line(op, indent, False):
            console.print(line)


def apply_json(changes: list[Change], report: Report) -> dict[str, Any]:
    return {"changes": [c.to_dict() for c in changes], **report.to_dict()}


# -- status ----------------------------------------------------------------------------------


def status_text(found: Survey, last: Run | None) -> Draw:
    """Per table: its policy and default partition; per tenant: partitions and runway."""

    def draw(console: Console) -> None:
        if not found.tables:
            console.print('No managed tables: declare them in PARTMAN["table"].')
        for t in found.tables:
            head = f"{t.name}: {t.record.interval} partitions, {t.record.partition_count} ahead"
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
            s = last.summary
            console.print(
                f"Last run: {last.started_at.isoformat()} {last.outcome or 'unfinished'} "
                f"(created {s.get('partitions_created', 0)}, retired "
                f"{s.get('partitions_retired', 0)}, failed {s.get('operations_failed', 0)}, "
                f"skipped {s.get('operations_skipped', 0)})"
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


def _runway_line(r: Runway) -> Text:
    who = "  " + (f"tenant {r.tenant}" if r.tenant is not None else "(single-tenant)")
    pending = "" if r.registered else " (not applied yet)"
    if r.covered_until is None:
        return Text(f"{who}: {r.partitions} partition(s); now is NOT covered{pending}", "red")
    text = (
        f"{who}: {r.partitions} partition(s), covered until {r.covered_until} "
        f"({human_duration(r.runway.total_seconds())} ahead){pending}"
    )
    return Text(text, style="yellow" if r.short else "")


def status_json(found: Survey, last: Run | None) -> dict[str, Any]:
    return {
        "ok": not found.short,
        "tables": [t.to_dict() for t in found.tables],
        "short_runway": [r.to_dict() for r in found.short],
        "last_run": None if last is None else last.to_dict(),
    }
