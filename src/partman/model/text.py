"""How values are worded for people and for partman's metadata: an error's first line, a
timestamp in ISO 8601, a duration in the largest unit that keeps it readable.

Every front end (CLI, API, UI, logs, Django checks) words these the same way, so they are
written once, here.
"""

from __future__ import annotations

import datetime as dt
import re


def first_line(error: BaseException, *, with_type: bool = False) -> str:
    """The first line of an error's message (PostgreSQL's are several lines long); the type's
    name when the message is empty. `with_type` prefixes it ("OperationalError: ...") where the
    kind of failure matters more than its words (the scheduler's status)."""
    lines = str(error).strip().splitlines()
    if not with_type:
        return lines[0] if lines else type(error).__name__
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def iso(value: object) -> str | None:
    """ISO 8601 for time, the value's own text for an id or UUID; None kept as None (JSON
    null)."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def iso_seconds(value: dt.datetime) -> str:
    """ISO 8601 to the second, as people read a time (runs, problems): the microseconds a
    clock gives say nothing to them and only make the columns ragged."""
    return value.replace(microsecond=0).isoformat()


def human_duration(seconds: float) -> str:
    """3 d 4 h, 5 h 12 min, 40 min, 1 min 30 s, 45 s: how far ahead partitions reach (a
    30-second interval's runway is seconds, not "0 min")."""
    seconds = max(0.0, seconds)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    secs = rest % 60
    if minutes >= 10 or (minutes and not secs):
        return f"{minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """A name's sort key with its digit runs compared as numbers: an id table's partitions
    `p50000`, `p100000` come in key order, where sorting as text puts `p100000` first."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", name)
        if part
    )


_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


def sql_name(*parts: str) -> str:
    """A (qualified) name as a message suggests running it: each part double-quoted when it
    needs to be (uppercase, spaces, quotes, unicode), bare when plain, as people write SQL."""
    return ".".join(
        part if _PLAIN.fullmatch(part) else '"' + part.replace('"', '""') + '"' for part in parts
    )
