"""How partman's front ends draw a plan, a pass's report and coverage on a rich Console.

Public because `manage.py partman` (partman.contrib.django) draws the same lines as the
`partman` command line, so that a team moving between the two reads the same thing. Only
drawing and JSON shapes: nothing here reads a database or exits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from ..decide.coverage import Coverage
from ..decide.reconcile import Change
from ..model.intervals import Interval
from ..model.keys import IdInterval
from ..model.operations import Notice, Operation, Plan
from ..model.report import Report
from ..model.text import human_duration, iso

_CHANGE_WORDS = {
    "create_metadata": "metadata",
    "add_table": "register table",
    "update_table": "change policy",
    "add_tenant": "register tenant",
    "update_tenant": "change tenant policy",
}
_RETIRES = ("drop", "detach", "archive", "export")


def _bounds(op: Operation) -> str:
    if op.lower is None:
        return ""
    return f" [{iso(op.lower)}, {iso(op.upper) or ''})"


def op_line(op: Operation, indent: str, show_sql: bool) -> list[Text]:
    """+ green for a create, - red for a retirement, ~ yellow for a forget or a roll-up (fine
    partitions merged: nothing is lost); its SQL below."""
    create = op.kind.startswith("create")
    sign, style = (
        ("+", "green")
        if create
        else (("~", "yellow") if op.kind in ("forget", "rollup") else ("-", "red"))
    )
    line = Text(f"{indent}{sign} {op.kind} {op.partition_qualified}{_bounds(op)}", style=style)
    line.append(f"  {op.reason}", style="dim")
    lines = [line]
    if show_sql:
        lines += [Text(f"{indent}    {s}", style="dim") for s in op.sql.splitlines()]
    return lines


def change_line(change: Change, indent: str) -> Text:
    """A change to partman's metadata: ~ yellow for a policy change, + green otherwise."""
    sign, style = ("~", "yellow") if change.kind.startswith("update") else ("+", "green")
    return Text(f"{indent}{sign} {_CHANGE_WORDS[change.kind]}: {change.detail}", style=style)


def render_grouped(
    console: Console,
    tables: Sequence[str],
    changes: Sequence[Change],
    ops: Sequence[Operation],
    notices: Sequence[Notice] = (),
    *,
    show_sql: bool = False,
) -> None:
    """Changes and operations grouped by table (in `tables`' order), then tenant; a table's
    notices after them. Changes to no table (the metadata schema) come first."""
    for c in changes:
        if c.table is None:
            console.print(change_line(c, ""))
    for table in tables:
        mine = [c for c in changes if c.table == table]
        its_ops = [op for op in ops if op.parent_qualified == table]
        its_notices = [n for n in notices if n.table == table]
        if not (mine or its_ops or its_notices):
            continue
        console.print(Text(table, style="bold"))
        for c in mine:
            if c.tenant is None:
                console.print(change_line(c, "  "))
        for op in its_ops:
            if op.tenant is None:
                _print_lines(console, op_line(op, "  ", show_sql))
        tenants = dict.fromkeys(
            [c.tenant for c in mine if c.tenant is not None]
            + [str(op.tenant) for op in its_ops if op.tenant is not None]
        )
        for tenant in tenants:
            console.print(Text(f"  tenant {tenant}", style="bold"))
            for c in mine:
                if c.tenant == tenant:
                    console.print(change_line(c, "    "))
            for op in its_ops:
                if op.tenant is not None and str(op.tenant) == tenant:
                    _print_lines(console, op_line(op, "    ", show_sql))
        for n in its_notices:
            style = {"error": "red", "warning": "yellow"}.get(n.level, "dim")
            who = f"tenant {n.tenant}: " if n.tenant else ""
            console.print(Text(f"  ! {n.level}: {who}{n.message}", style=style))


def _print_lines(console: Console, lines: Iterable[Text]) -> None:
    for line in lines:
        console.print(line)


# -- plan ------------------------------------------------------------------------------------


def plan_summary(changes: list[Change], plan: Plan) -> dict[str, int]:
    return {
        "tables_to_register": sum(c.kind == "add_table" for c in changes),
        "table_policies_to_change": sum(c.kind == "update_table" for c in changes),
        "tenants_to_register": sum(c.kind == "add_tenant" for c in changes),
        "tenant_policies_to_change": sum(c.kind == "update_tenant" for c in changes),
        "partitions_to_create": sum(op.kind.startswith("create") for op in plan),
        "partitions_to_retire": sum(op.kind in _RETIRES for op in plan),
        "other_operations": sum(
            not op.kind.startswith("create") and op.kind not in _RETIRES for op in plan
        ),
        "notices": len(plan.notices),
    }


def plan_json(changes: list[Change], plan: Plan) -> dict[str, Any]:
    return {
        "now": plan.now.isoformat(),
        "changes": [c.to_dict() for c in changes],
        "operations": [op.to_dict() for op in plan],
        "notices": [n.to_dict() for n in plan.notices],
        "summary": plan_summary(changes, plan),
    }


def render_plan(
    console: Console,
    changes: list[Change],
    plan: Plan,
    order: list[str],
    *,
    show_sql: bool = False,
) -> None:
    """The metadata changes and the pass after them, grouped by table (the file's order
    first), then the one-line summary."""
    tables = list(dict.fromkeys([*order, *(c.table for c in changes if c.table), *plan.tables]))
    # a LIST parent's tenant partitions are parents of their own operations: each once
    tables = list(dict.fromkeys([*tables, *(op.parent_qualified for op in plan)]))
    render_grouped(console, tables, changes, list(plan), plan.notices, show_sql=show_sql)
    for n in plan.notices:
        if n.table not in tables:
            console.print(Text(f"! {n.level}: {n.table}: {n.message}", style="yellow"))
    console.print(plan_summary_line(changes, plan))


def plan_summary_line(changes: list[Change], plan: Plan) -> Text:
    s = plan_summary(changes, plan)
    if not changes and not len(plan):
        return Text("No changes: every managed table is covered and nothing has expired.")
    parts = [
        f"{s['partitions_to_create']} partition(s) to create",
        f"{s['partitions_to_retire']} to retire",
    ]
    if s["tables_to_register"]:
        parts.append(f"{s['tables_to_register']} table(s) to register")
    if s["tenants_to_register"]:
        parts.append(f"{s['tenants_to_register']} tenant(s) to register")
    policies = s["table_policies_to_change"] + s["tenant_policies_to_change"]
    if policies:
        parts.append(f"{policies} policy change(s)")
    if s["other_operations"]:
        parts.append(f"{s['other_operations']} other operation(s)")
    return Text("Plan: " + ", ".join(parts) + ".", style="bold")


# -- a pass ----------------------------------------------------------------------------------


def report_line(report: Report) -> Text:
    return Text(f"Applied: {report}", style="green" if report.ok else "red")


def apply_json(changes: list[Change], report: Report) -> dict[str, Any]:
    return {"changes": [c.to_dict() for c in changes], **report.to_dict()}


def run_counts(summary: dict[str, Any]) -> str:
    """A recorded pass's counts, from its `runs.summary`."""
    return (
        f"created {summary.get('partitions_created', 0)}, retired "
        f"{summary.get('partitions_retired', 0)}, failed {summary.get('operations_failed', 0)}, "
        f"skipped {summary.get('operations_skipped', 0)}"
    )


# -- coverage --------------------------------------------------------------------------------


def runway_text(c: Coverage) -> str:
    """How far ahead the partitions reach: "2 d 4 h", or an id table's "1500 ids"."""
    if c.runway_ids is not None:
        return ids_text(c.runway_ids)
    return human_duration(c.runway_seconds)


def ids_text(count: int) -> str:
    return f"{count} id" if count == 1 else f"{count} ids"


def partitions_text(interval: Interval | IdInterval) -> str:
    """One partition's size before "partitions": "1 day", an id table's "1000000-id"."""
    return f"{interval.width}-id" if isinstance(interval, IdInterval) else str(interval)


def period_text(interval: Interval | IdInterval) -> str:
    """One period as "less than one ... period" says it: "1-day", "15-minute", "1000-id"."""
    if isinstance(interval, IdInterval):
        return f"{interval.width}-id"
    count, _, unit = str(interval).partition(" ")
    return f"{count}-{unit.removesuffix('s')}"


def coverage_words(c: Coverage) -> str:
    """How many partitions, and until when they cover from now (an id table: up to which
    id they reach from its newest one)."""
    if c.covered_until is None:
        now = "the newest id" if c.runway_ids is not None else "now"
        return f"{c.partitions} partition(s); {now} is NOT covered"
    return f"{c.partitions} partition(s), covered until {c.covered_until} ({runway_text(c)} ahead)"
