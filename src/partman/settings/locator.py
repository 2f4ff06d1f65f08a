"""Where each key of a TOML text is: tomllib keeps no positions, so the text is scanned."""

from __future__ import annotations

import re

from .problems import Path_

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"' + r"|'[^']*'"
_PART = rf"(?:{_BARE}|{_QUOTED})"
_KEYS = rf"{_PART}(?:\s*\.\s*{_PART})*"
_KEY_LINE = re.compile(rf"\s*({_KEYS})\s*=")
_AOT_HEADER = re.compile(rf"\s*\[\[\s*({_KEYS})\s*\]\]")
_HEADER = re.compile(rf"\s*\[\s*({_KEYS})\s*\]")
_KEY_PART = re.compile(rf"\s*({_PART})\s*(?:\.|$)")


def _split_keys(text: str) -> list[str]:
    parts: list[str] = []
    for m in _KEY_PART.finditer(text):
        part = m.group(1)
        if part[:1] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return parts


def _scan_value(text: str, depth: int, open_string: str | None) -> tuple[int, str | None]:
    """Carry (bracket depth, open multi-line string delimiter) across a piece of a line."""
    i = 0
    while i < len(text):
        if open_string is not None:
            end = text.find(open_string, i)
            if end < 0:
                return depth, open_string
            i = end + 3
            open_string = None
            continue
        c = text[i]
        if text.startswith('"""', i) or text.startswith("'''", i):
            open_string = text[i : i + 3]
            i += 3
        elif c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c == "'":
            end = text.find("'", i + 1)
            i = len(text) if end < 0 else end + 1
        elif c == "#":
            break
        else:
            depth += (c in "[{") - (c in "]}")
            i += 1
    return depth, open_string


class Locator:
    """The line of each key and table header of a TOML text (good enough for messages: keys
    inside inline tables are placed at their parent key's line)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path_, int] = {}
        arrays: dict[Path_, int] = {}  # array-of-tables path -> index of its last element
        current: Path_ = ()
        depth, open_string = 0, None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_string is not None or depth > 0:
                depth, open_string = _scan_value(line, depth, open_string)
                continue
            if m := _AOT_HEADER.match(line):
                current = self._resolve(_split_keys(m.group(1)), arrays, new_element=True)
                self._lines.setdefault(current, number)
            elif m := _HEADER.match(line):
                current = self._resolve(_split_keys(m.group(1)), arrays, new_element=False)
                self._lines.setdefault(current, number)
            elif m := _KEY_LINE.match(line):
                self._lines.setdefault(current + tuple(_split_keys(m.group(1))), number)
                depth, open_string = _scan_value(line[m.end() :], 0, None)

    @staticmethod
    def _resolve(parts: list[str], arrays: dict[Path_, int], *, new_element: bool) -> Path_:
        resolved: Path_ = ()
        for position, part in enumerate(parts):
            resolved += (part,)
            if new_element and position == len(parts) - 1:
                arrays[resolved] = arrays.get(resolved, -1) + 1
                resolved += (arrays[resolved],)
            elif resolved in arrays:
                resolved += (arrays[resolved],)
        return resolved

    def line(self, path: Path_) -> int | None:
        """The line of `path`, else of the nearest enclosing key or header that has one."""
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None
