"""The PARTMAN settings block, read by partman.toml's own reader.

Upper-case keys are Django's side (`DATABASE`: the alias of DATABASES partman works on);
lower-case keys are partman.toml's sections, `partman` and `table`, handed as they are to
`partman.settings.from_mapping`: the same keys, the same validation, the same messages as the
file, so a block and a file never mean different things. The DSN comes from DATABASES, so the
file's `database` section has no place here, nor has `service` (that is `partman run`).

Problems keep partman's wording; only their key is shown as Python reads it,
`PARTMAN["table"][0]["partition_interval"]`, because that is what the user edits.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS

from partman import settings as partman_settings
from partman.settings import Problem, Settings

SETTING = "PARTMAN"
SOURCE = "settings.PARTMAN"
OPTIONS = ("DATABASE",)
SECTIONS = ("partman", "table")
KNOWN = (*OPTIONS, *SECTIONS)
_ELSEWHERE = {
    "database": 'the database is the one of DATABASES; name its alias as "DATABASE": "default"',
    "dsn": 'the database is the one of DATABASES; name its alias as "DATABASE": "default"',
    "service": "the web service is `partman run --config partman.toml`, not part of Django",
    "tables": 'tables go under "table": [{"name": ..., ...}, ...] (partman.toml\'s [[table]])',
}


@dataclass(frozen=True)
class Block:
    """settings.PARTMAN, read: the alias it works on and partman's Settings (with every
    problem found; `problems` is empty when the block can be used)."""

    alias: str
    settings: Settings

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.settings.problems

    @property
    def ok(self) -> bool:
        return not self.problems


def load() -> Block:
    """The project's PARTMAN block (none at all: nothing managed, on the default alias)."""
    return read(getattr(django_settings, SETTING, {}))


def read(raw: object) -> Block:
    """A PARTMAN block read; problems are collected, never raised."""
    if not isinstance(raw, Mapping):
        problem = Problem(SOURCE, None, "", f"must be a dict, got {type(raw).__name__}")
        return Block(DEFAULT_DB_ALIAS, Settings(file=SOURCE, problems=(problem,)))
    problems: list[Problem] = []
    alias = raw.get("DATABASE", DEFAULT_DB_ALIAS)
    if not isinstance(alias, str) or not alias:
        problems.append(
            Problem(SOURCE, None, "DATABASE", f"expected an alias of DATABASES, got {alias!r}")
        )
        alias = DEFAULT_DB_ALIAS
    for key in raw:
        if key not in KNOWN:
            problems.append(Problem(SOURCE, None, str(key), f"unknown key ({_hint(str(key))})"))
    sections = {k: _plain(v) for k, v in raw.items() if k in SECTIONS}
    if isinstance(sections.get("table"), dict):
        problems.append(Problem(SOURCE, None, "table", "expected a list of tables: [{...}, {...}]"))
        del sections["table"]
    found = partman_settings.from_mapping(sections, file=SOURCE)
    if problems:
        found = dataclasses.replace(found, problems=(*problems, *found.problems))
    return Block(alias, found)


def _hint(key: str) -> str:
    if key in _ELSEWHERE:
        return _ELSEWHERE[key]
    close = difflib.get_close_matches(key, KNOWN, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(KNOWN)}"


def _plain(value: object) -> object:
    """Python's spellings of partman.toml's values: tuples read as lists, any mapping as a
    dict (the reader checks for the TOML types, and settings modules like tuples), an enum
    (`partman.RetentionAction.DETACH`, `Epoch.MILLISECONDS`) as its value."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


_KEY_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def key_of(problem: Problem) -> str:
    """'table[0].name' -> 'PARTMAN["table"][0]["name"]': the key as the settings module has it."""
    out = SETTING
    for m in _KEY_PART.finditer(problem.key):
        out += f"[{m.group(1)}]" if m.group(1) is not None else f'["{m.group(2)}"]'
    return out


def describe(problem: Problem) -> str:
    """One problem as a line: the key, then partman's message."""
    return f"{key_of(problem)}: {problem.message}"
