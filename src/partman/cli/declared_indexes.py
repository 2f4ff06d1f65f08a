"""The indexes partman.toml declares ([[table.index]]): what `partman plan` shows of them,
what `partman check` finds wrong with them, what `partman apply` builds after its pass.

A declared index is built like `partman index create` builds one (`Manager.create_index`: ON
ONLY the parent, then each partition CONCURRENTLY and attached, under the lock budget), so
apply never blocks writers for it; one already complete costs a catalog read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from rich.console import Console
from rich.text import Text

from ..decide.indexes import plan_index
from ..engine.indexes import IndexBuilder
from ..engine.manager import Manager
from ..errors import PartmanError
from ..model.indexes import IndexPlan, IndexReport, IndexRequest, StepKind
from ..settings import IndexSpec, Problem, Settings, key_text

LOG = logging.getLogger("partman.cli")


@dataclass(frozen=True)
class Declared:
    """One declared index against the database: its plan, or why it cannot be built."""

    table: str
    spec: IndexSpec
    plan: IndexPlan | None
    error: str | None = None

    @property
    def label(self) -> str:
        return self.spec.label(self.table)

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "table": self.table,
            "columns": list(self.spec.columns),
            "unique": self.spec.unique,
            "index": None if plan is None else plan.qualified_index,
            "existed": None if plan is None else plan.existed,
            "steps": [] if plan is None else [s.to_dict() for s in plan.steps],
            "error": self.error,
        }


def request(spec: IndexSpec) -> IndexRequest:
    return IndexRequest(spec.columns, spec.unique, spec.name)


def preview(conn: psycopg.Connection[Any], found: Settings) -> list[Declared]:
    """Each declared index's plan (no DDL: the catalog is read, one table at a time)."""
    builder = IndexBuilder(found.config, LOG)
    out: list[Declared] = []
    for table in found.tables:
        for spec in table.indexes:
            name = table.qualified_name
            try:
                plan = plan_index(builder.tree(conn, name), request(spec))
            except PartmanError as error:
                out.append(Declared(name, spec, None, str(error)))
                continue
            out.append(Declared(name, spec, plan))
    return out


def problems(found: Settings, declared: list[Declared]) -> list[Problem]:
    """The declared indexes that cannot be built, at their [[table.index]] entries."""
    return [
        Problem(
            found.file,
            None if found.locator is None else found.locator.line(d.spec.path),
            key_text(d.spec.path),
            d.error,
        )
        for d in declared
        if d.error is not None
    ]


def summary(plan: IndexPlan) -> str:
    if not plan.steps:
        return f"{plan.qualified_index} is valid on every partition"
    builds = sum(1 for s in plan.steps if s.kind is StepKind.BUILD)
    first = "create " if not plan.existed else "finish "
    return (
        f"{first}{plan.qualified_index}: {builds} partition(s) to build CONCURRENTLY, "
        f"{len(plan.steps)} step(s) in all, none blocking writes"
    )


def render(console: Console, declared: list[Declared]) -> None:
    for d in declared:
        if d.plan is None:
            console.print(Text(f"! index {d.label}: {d.error}", style="red"))
        elif d.plan.steps:
            console.print(Text(f"+ index {d.label}: {summary(d.plan)}", style="green"))
        else:
            console.print(Text(f"  index {d.label}: {summary(d.plan)}", style="dim"))


def build(manager: Manager, found: Settings) -> list[tuple[str, IndexReport]]:
    """Build (or finish) every declared index; each report says what is left."""
    out: list[tuple[str, IndexReport]] = []
    for table in found.tables:
        for spec in table.indexes:
            report = manager.create_index(
                table.qualified_name, spec.columns, unique=spec.unique, name=spec.name
            )
            out.append((spec.label(table.qualified_name), report))
    return out


def report_line(label: str, report: IndexReport) -> Text:
    counts = report.counts()
    if report.ok:
        done = "already complete" if not report.results else f"built on {counts['built']}"
        return Text(f"index {label}: {done}; {report.index} is valid", style="green")
    missing = ", ".join(report.missing) or "none"
    return Text(
        f"index {label}: {report.index} is not complete yet (partitions left: {missing}); "
        "the next apply goes on",
        style="yellow",
    )


__all__ = ["Declared", "build", "preview", "problems", "render", "report_line"]
