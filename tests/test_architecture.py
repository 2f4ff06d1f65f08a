"""The layout holds: every module lies in a folder of the map in docs/architecture.md, imports go
only the way that map allows, and no modules import each other in a circle.

The map is read from the page itself, so the page cannot drift from the code: a new folder
means a new row. Imports are read from the source (`ast`), never by importing it. Imports
inside functions count (they run too, only later), and so do those under TYPE_CHECKING (a
layer that needs a type from above it is as tangled as one that calls it).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "partman"
PAGE = ROOT / "docs" / "architecture.md"
ANYTHING = "anything"


# -- the map, as the page states it ----------------------------------------------------------


def read_map(page: str) -> dict[str, frozenset[str]]:
    """The rows of the "Map of folders" table: unit -> the units it may import (or ANYTHING).

    A unit is a folder (`model/` -> "model") or a top-level module (`errors.py` -> "errors").
    """
    section = page.split("## Map of folders", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    assert rows, "the Map of folders section has no table"
    out: dict[str, frozenset[str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        names = _units(cells[0])
        assert len(names) == 1, f"one folder a row: {row}"
        allowed = frozenset([ANYTHING]) if cells[-1] == ANYTHING else frozenset(_units(cells[-1]))
        out[names[0]] = allowed
    return out


def _units(cell: str) -> list[str]:
    return [re.sub(r"(/|\.py)$", "", name) for name in re.findall(r"`([^`]+)`", cell)]


# -- the modules and their imports, as the source states them --------------------------------


@dataclass(frozen=True)
class Import:
    source: str  # "partman.engine.manager"
    target: str  # the module it names: "partman.decide.planner", or "partman" for the face
    line: int

    def __str__(self) -> str:
        return f"{self.source} imports {self.target} (line {self.line})"


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name; a package is named by its __init__.py."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def unit(module: str) -> str:
    """The row of the map a module belongs to: "partman.engine.world" -> "engine"."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imports(package: Path) -> Iterator[Import]:
    """The imports of the package's own modules, wherever in a module they stand."""
    known = modules(package)
    root = package.name
    for name, path in known.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(here, node.level, node.module)
                # `from pkg import x` names the module pkg.x when there is one, else pkg
                named = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            targets = set()
            for target in named:
                if target.split(".")[0] != root:
                    continue
                while target not in known:  # `import partman.x.y` of a name, not a module
                    target = target.rpartition(".")[0]
                targets.add(target)
            for target in sorted(targets - {name}):
                yield Import(name, target, node.lineno)


def _absolute(package: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def outside_the_map(package: Path, layout: dict[str, frozenset[str]]) -> list[str]:
    """The files of modules that belong to no row of the map."""
    return sorted(
        str(path.relative_to(package.parent))
        for module, path in modules(package).items()
        if unit(module) not in layout
    )


def wrong_way(found: Iterable[Import], layout: dict[str, frozenset[str]]) -> list[str]:
    """The imports the map does not allow."""
    out = []
    for imp in found:
        source, target = unit(imp.source), unit(imp.target)
        allowed = layout.get(source, frozenset())
        if source != target and ANYTHING not in allowed and target not in allowed:
            out.append(f"{imp}: {source} may not import {target}")
    return out


def cycles(found: Iterable[Import]) -> list[list[str]]:
    """The sets of modules that import each other in a circle (Tarjan's strongly connected
    components of more than one module), each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(out)


# -- the layout of src/partman ---------------------------------------------------------------

LAYOUT = read_map(PAGE.read_text(encoding="utf-8"))
FOUND = list(imports(PACKAGE))


def test_every_module_lies_in_a_folder_of_the_map_and_every_row_exists() -> None:
    outside = outside_the_map(PACKAGE, LAYOUT)
    assert not outside, (
        "modules outside the map in docs/architecture.md (add a row, or move them):\n"
        + "\n".join(outside)
    )
    units = {unit(module) for module in modules(PACKAGE)}
    stale = sorted(set(LAYOUT) - units)
    assert not stale, f"rows of the map with no module behind them: {stale}"
    unknown = sorted({u for allowed in LAYOUT.values() for u in allowed} - set(LAYOUT) - {ANYTHING})
    assert not unknown, f"the map allows imports of units it has no row for: {unknown}"


def test_imports_go_only_the_way_the_map_allows() -> None:
    wrong = wrong_way(FOUND, LAYOUT)
    assert not wrong, "imports against docs/architecture.md's map:\n" + "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle() -> None:
    found = cycles(FOUND)
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_map_puts_the_pure_layers_below_the_io_and_the_front_ends_on_top() -> None:
    """The rules the page states in words, checked against its table."""
    assert LAYOUT["errors"] == LAYOUT["logs"] == frozenset()
    assert LAYOUT["model"] == {"errors"}
    assert "db" not in LAYOUT["decide"] and "engine" not in LAYOUT["decide"]
    front_ends = {"cli", "service", "demo", "contrib"}
    for name, allowed in LAYOUT.items():
        if name not in front_ends and ANYTHING not in allowed:
            assert not allowed & front_ends, f"{name} may import a front end"


# -- the checks themselves, on a package made up for them -------------------------------------


def make_package(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "partman"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


def test_relative_absolute_and_function_level_imports_are_all_read(tmp_path: Path) -> None:
    package = make_package(
        tmp_path,
        {
            "model/__init__.py": "from . import config\n",
            "model/config.py": "from ..errors import Oops\n",
            "errors.py": "import json\n",
            "decide/__init__.py": "",
            "decide/planner.py": (
                "import partman.model.config\n"
                "from partman.model import config\n"
                "def later():\n    from ..engine import run\n"
            ),
            "engine/__init__.py": "from partman import Something\n",
        },
    )
    found = {(i.source, i.target, i.line) for i in imports(package)}
    assert found == {
        ("partman.model", "partman.model.config", 1),
        ("partman.model.config", "partman.errors", 1),
        ("partman.decide.planner", "partman.model.config", 1),
        ("partman.decide.planner", "partman.model.config", 2),
        ("partman.decide.planner", "partman.engine", 4),
        ("partman.engine", "partman", 1),
    }


def test_a_module_added_outside_the_map_is_named(tmp_path: Path) -> None:
    package = make_package(
        tmp_path,
        {"errors.py": "", "model/__init__.py": "", "model/a.py": "", "helpers/util.py": ""},
    )
    layout = {"__init__": frozenset([ANYTHING]), "errors": frozenset(), "model": frozenset()}
    assert outside_the_map(package, layout) == ["partman/helpers/util.py"]
    assert outside_the_map(package, {**layout, "helpers": frozenset()}) == []


def test_an_import_against_the_map_is_named_with_its_line(tmp_path: Path) -> None:
    package = make_package(
        tmp_path,
        {
            "cli/__init__.py": "",
            "model/__init__.py": "",
            "model/a.py": "def f():\n    from ..cli import x, y\n",
        },
    )
    layout = {"model": frozenset({"errors"}), "cli": frozenset({"model"})}
    assert wrong_way(imports(package), layout) == [
        "partman.model.a imports partman.cli (line 2): model may not import cli"
    ]
    assert wrong_way(imports(package), {"model": frozenset([ANYTHING])}) == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = make_package(
        tmp_path,
        {
            "service/__init__.py": "",
            "service/app.py": "from .core import Service\n",
            "service/core.py": "from . import scheduler\n",
            "service/scheduler.py": "def tick():\n    from .app import app\n",
            "service/metrics.py": "from .core import Service\n",
        },
    )
    assert cycles(imports(package)) == [
        ["partman.service.app", "partman.service.core", "partman.service.scheduler"]
    ]


def test_the_map_is_read_from_the_pages_table() -> None:
    page = (
        "# A\n\n## Map of folders\n\ntext\n\n| Folder | What | May import |\n|---|---|---|\n"
        "| `errors.py` | errors | nothing |\n| `model/` | values, `not` here | `errors.py` |\n"
        "| `__init__.py` | face | anything |\n\n## Next\n\n| `x/` | y | z |\n"
    )
    assert read_map(page) == {
        "errors": frozenset(),
        "model": frozenset({"errors"}),
        "__init__": frozenset([ANYTHING]),
    }


@pytest.mark.parametrize(
    ("module", "row"),
    [
        ("partman", "__init__"),
        ("partman.__main__", "__main__"),
        ("partman.errors", "errors"),
        ("partman.cli", "cli"),
        ("partman.contrib.django.management.commands.partman", "contrib"),
    ],
)
def test_a_module_belongs_to_the_row_of_its_top_folder(module: str, row: str) -> None:
    assert unit(module) == row
