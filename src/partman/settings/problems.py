"""A problem of a config file: where it is (file, line, key) and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

Path_ = tuple[str | int, ...]
"""Where a value sits in the file: ("table", 0, "tenant", 1, "id")."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config file (or, from `partman check`, with the database)."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "key": self.key, "message": self.message}


class SettingsError(ConfigError):
    """The config file is wrong; `problems` lists every mistake found, each with file and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def key_text(path: Path_) -> str:
    """("table", 0, "name") -> "table[0].name", as problems show it."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
