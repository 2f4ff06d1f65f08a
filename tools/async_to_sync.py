"""Generate partman's sync modules from their async sources (psycopg's way).

The engine's I/O is written once, as asyncio code in ``src/partman/engine/*_async.py``; the sync
modules (``manager.py``, ``executor.py``, ``keeper.py``, ``world.py``, ``store.py``,
``sync.py``) are generated from them by this script, so the two faces can never drift apart.
The conversion works on tokens, so strings, comments and layout are kept, and it is small
enough to read in one sitting:

* ``async def`` / ``async with`` / ``async for`` lose ``async``; ``await x`` becomes ``x``;
* names are mapped (``AsyncConnection`` -> ``Connection``, ``asyncio.Lock`` ->
  ``threading.Lock``, ``world_async`` -> ``world``, ...: see ``NAMES`` and ``DOTTED``);
* where the two faces really differ (a task or a thread), the source says so with psycopg's
  marker, and the sync module keeps the ``else`` branch::

      if True:  # ASYNC
          self._task = asyncio.create_task(self._loop())
      else:
          self._thread = threading.Thread(target=self._loop)

Then ruff sorts the imports and drops the ones the sync face does not use.

Run ``python tools/async_to_sync.py`` after editing an async source; ``--check`` exits 1 if a
generated module is out of date (tests/unit/test_generated.py runs it).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "partman" / "engine"

MODULES = [
    "store",
    "world",
    "executor",
    "keeper",
    "manager",
    "sync",
    "indexes",
    "export",
    "convert",
    "autovacuum",
]
"""Each ``<name>_async.py`` generates ``<name>.py``."""

NAMES = {
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncConverter": "Converter",
    "AsyncCursor": "Cursor",
    "AsyncExecutor": "Executor",
    "AsyncIndexBuilder": "IndexBuilder",
    "AsyncIterator": "Iterator",
    "AsyncJob": "Job",
    "AsyncKeeper": "Keeper",
    "AsyncManager": "Manager",
    "AsyncPreDropHook": "PreDropHook",
    "AsyncSleep": "Sleep",
    "AsyncStepHook": "StepHook",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "aclose": "close",
    "asynccontextmanager": "contextmanager",
    **{f"{name}_async": name for name in MODULES},
}

DOTTED = {
    "asyncio.Event": "threading.Event",
    "asyncio.Lock": "threading.Lock",
    "asyncio.sleep": "time.sleep",
}

_MARKER = re.compile(r"^(?P<indent>[ ]*)if True:  # ASYNC\b.*\n$")


def _branches(lines: list[str]) -> list[str]:
    """Replace each ``if True:  # ASYNC`` block by its ``else`` body, dedented."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MARKER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        i = _block_end(lines, i + 1, indent)  # the async branch: dropped
        if i < len(lines) and lines[i] == f"{indent}else:\n":
            end = _block_end(lines, i + 1, indent)
            out += [line[4:] if line.strip() else line for line in lines[i + 1 : end]]
            i = end
    return out


def _block_end(lines: list[str], i: int, indent: str) -> int:
    """Where the block opened at `indent` whose body starts at line `i` ends (blank lines
    between its statements belong to it; blank lines after it do not)."""
    end = i
    while i < len(lines):
        line = lines[i]
        if line.strip():
            if not line.startswith(indent + " "):
                break
            end = i + 1
        i += 1
    return end


def _tokens(source: str) -> str:
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def at(pos: tuple[int, int]) -> int:
        return offsets[pos[0] - 1] + pos[1]

    tokens = [
        t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)
    ]
    edits: list[tuple[int, int, str]] = []
    skip = 0
    for k, tok in enumerate(tokens):
        if skip:
            skip -= 1
            continue
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if tok.type != tokenize.NAME or nxt is None:
            continue
        if (tok.string == "async" and nxt.string in ("def", "with", "for")) or (
            tok.string == "await"
        ):
            edits.append((at(tok.start), at(nxt.start), ""))
        elif (
            nxt.string == "."
            and k + 2 < len(tokens)
            and f"{tok.string}.{tokens[k + 2].string}" in DOTTED
        ):
            dotted = f"{tok.string}.{tokens[k + 2].string}"
            edits.append((at(tok.start), at(tokens[k + 2].end), DOTTED[dotted]))
            skip = 2
        elif tok.string in NAMES:
            edits.append((at(tok.start), at(tok.end), NAMES[tok.string]))
    for start, end, text in reversed(edits):
        source = source[:start] + text + source[end:]
    return re.sub(r"\bfrom \. import (\w+) as \1\b", r"from . import \1", source)


def _imports(text: str) -> str:
    """Import the modules the mapped names need (``threading`` for ``threading.Lock``...) when
    the async source had no other use for them; ruff then sorts them in place."""
    for module in sorted({target.split(".")[0] for target in DOTTED.values()}):
        used = re.search(rf"(?<![\w.]){module}\.\w", text)
        if used and not re.search(rf"^import {module}$", text, re.MULTILINE):
            text = text.replace(
                "from __future__ import annotations\n",
                f"from __future__ import annotations\n\nimport {module}\n",
                1,
            )
    return text


def convert(source: str, origin: str) -> str:
    """The sync twin of an async module's source."""
    text = _imports(_tokens("".join(_branches(source.splitlines(keepends=True)))))
    header = (
        f"# Generated from {origin} by tools/async_to_sync.py: do not edit.\n"
        "# Edit the async source, then run `python tools/async_to_sync.py`.\n"
    )
    fixed = subprocess.run(
        [
            sys.executable, "-m", "ruff", "check", "--fix-only", "--exit-zero", "--quiet",
            "--select", "I,F401", "--stdin-filename", str(PACKAGE / "generated.py"), "-",
        ],
        input=header + text,
        capture_output=True,
        text=True,
        check=True,
    )
    return fixed.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a module is stale")
    args = parser.parse_args(argv)
    stale = []
    for name in MODULES:
        source = PACKAGE / f"{name}_async.py"
        target = PACKAGE / f"{name}.py"
        text = convert(source.read_text(), f"src/partman/{source.name}")
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date: {names}; run `python tools/async_to_sync.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
