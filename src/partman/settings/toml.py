"""partman.toml, the command line's config file, read into `Config`, `Table` and `Tenant`.

    [database]
    dsn = "${DATABASE_URL}"              # --dsn / PARTMAN_DSN win over this

    [partman]                            # partman.Config; durations like "250ms", "1 minute"
    lock_timeout = "250ms"
    timezone = "UTC"

    [[table]]                            # partman.Table, field for field
    name = "events"
    schema = "convoy"
    tenant_id_column = "project_id"
    partition_by = "created_at"
    partition_interval = "1 day"
    retention_period = "30 days"         # "forever" keeps every partition
    partition_count = 10
    tenants = ["project-acme"]           # tenants with the table's policy
    tenants_query = "SELECT uid FROM convoy.projects"   # more, read on every apply

    [[table.tenant]]                     # a tenant with a policy of its own
    id = "project-globex"
    retention_period = "7 days"

String values may name environment variables: `${NAME}`, or `${NAME:-fallback}`; `$${` is a
literal `${`. Reading never touches a database. Every problem in the file is found at once and
reported as `file:line: key: message`; `load()` returns only when there is none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model.config import (
    FOREVER,
    Config,
    PartitionType,
    Table,
    Tenant,
    check_identifier,
    parse_action,
)
from ..model.intervals import Interval, parse_retention

DEFAULT_PATH = Path("partman.toml")
Path_ = tuple[str | int, ...]
"""Where a value sits in the file: ("table", 0, "tenant", 1, "id")."""


# -- problems ---------------------------------------------------------------------------------


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


# -- where keys are: tomllib keeps no positions, so the text is scanned --------------------------

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


# -- values -----------------------------------------------------------------------------------


class _Invalid(Exception):
    """A value that cannot be used; the message says why and what would do."""


_TOML_TYPES: list[tuple[type, str]] = [
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (dt.datetime, "a datetime"),
    (dt.date, "a date"),
    (dt.time, "a time"),
]


def _toml_type(value: object) -> str:
    return next((name for kind, name in _TOML_TYPES if isinstance(value, kind)), "a value")


def _expect(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Invalid(f"expected {what}, got {_toml_type(value)} ({value!r})")


_DURATION_UNITS: dict[str, dt.timedelta] = {}
for _names, _size in (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), dt.timedelta(milliseconds=1)),
    (("s", "sec", "secs", "second", "seconds"), dt.timedelta(seconds=1)),
    (("m", "min", "mins", "minute", "minutes"), dt.timedelta(minutes=1)),
    (("h", "hr", "hrs", "hour", "hours"), dt.timedelta(hours=1)),
    (("d", "day", "days"), dt.timedelta(days=1)),
):
    for _name in _names:
        _DURATION_UNITS[_name] = _size
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*")
DURATION_EXAMPLES = '"250ms", "2s", "1 minute", "1m30s", "1 hour"'


def parse_duration(text: str) -> dt.timedelta:
    """A duration for `Config`: "250ms", "1.5s", "1 minute", "1m30s", "2 hours"."""
    total = dt.timedelta()
    position = 0
    for m in _DURATION_PART.finditer(text):
        if m.start() != position:
            break
        unit = _DURATION_UNITS.get(m.group(2).lower())
        if unit is None:
            raise _Invalid(
                f"{text!r}: unknown unit {m.group(2)!r}; use ms, s, min, h or d "
                f"(e.g. {DURATION_EXAMPLES})"
            )
        total += float(m.group(1)) * unit
        position = m.end()
    if position == 0 or position != len(text):
        raise _Invalid(f"{text!r} is not a duration; use e.g. {DURATION_EXAMPLES}")
    return total


def _duration(value: object) -> dt.timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _Invalid(f"{value!r} has no unit; write e.g. {DURATION_EXAMPLES}")
    _expect(value, str, "a duration string")
    assert isinstance(value, str)
    return parse_duration(value)


def _string(value: object) -> str:
    _expect(value, str, "a string")
    assert isinstance(value, str)
    return value


def _identifier(value: object) -> str:
    _expect(value, str, "a string")
    try:
        return check_identifier(value, "the name")
    except ConfigError as error:
        raise _Invalid(str(error)) from None


def _integer(value: object) -> int:
    _expect(value, int, "an integer")
    assert isinstance(value, int)
    return value


def _boolean(value: object) -> bool:
    _expect(value, bool, "true or false")
    assert isinstance(value, bool)
    return value


def _interval(value: object) -> str:
    _expect(value, str, 'a string like "1 day", "1 hour", "1 week" or "monthly"')
    assert isinstance(value, str)
    try:
        Interval.parse(value)
    except ConfigError as error:
        raise _Invalid(str(error)) from None
    return value


def _retention(value: object) -> str:
    _expect(value, str, 'a string like "30 days", "3 months" or "forever"')
    assert isinstance(value, str)
    if value.strip().lower() == FOREVER:
        return FOREVER
    try:
        parse_retention(value)
    except ConfigError as error:
        message = str(error).replace("or None to keep partitions forever", 'or "forever"')
        raise _Invalid(message) from None
    return value


def _action(value: object) -> str:
    _expect(value, str, 'one of "drop", "detach", "archive"')
    try:
        return parse_action(value, "retention_action").value
    except ConfigError as error:
        raise _Invalid(str(error)) from None


def _partition_type(value: object) -> PartitionType:
    _expect(value, str, 'the string "range"')
    assert isinstance(value, str)
    try:
        return PartitionType(value.lower())
    except ValueError:
        raise _Invalid(f'{value!r}: partman manages "range" partitioning only') from None


def tenant_id(value: object) -> str | int:
    """A tenant id as the file may give it: a string or an integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Invalid(f"expected a tenant id (a string or an integer), got {_toml_type(value)}")
    if value == "":
        raise _Invalid("a tenant id must not be empty")
    return value


Converter = Callable[[object], Any]

_CONFIG_KINDS: dict[type, Converter] = {
    dt.timedelta: _duration,
    bool: _boolean,
    int: _integer,
    str: _string,
}


def _config_fields() -> dict[str, Converter]:
    """[partman] keys: the fields of `Config`, each read by the type of its default."""
    out: dict[str, Converter] = {}
    for f in dataclasses.fields(Config):
        kind = type(f.default)
        out[f.name] = _CONFIG_KINDS.get(kind, _string)
    return out


CONFIG_FIELDS = _config_fields()
DATABASE_FIELDS: dict[str, Converter] = {"dsn": _string}
TABLE_FIELDS: dict[str, Converter] = {
    "name": _identifier,
    "schema": _identifier,
    "tenant_id_column": _identifier,
    "partition_by": _identifier,
    "partition_type": _partition_type,
    "partition_interval": _interval,
    "retention_period": _retention,
    "partition_count": _integer,
    "default_partition": _boolean,
    "retention_action": _action,
    "archive_schema": _identifier,
    "backfill": _boolean,
    "tenants_query": _string,
}
TABLE_REQUIRED = {
    "name": 'the partitioned parent table, e.g. name = "events"',
    "partition_by": 'the time column of the partition key, e.g. partition_by = "created_at"',
}
TENANT_FIELDS: dict[str, Converter] = {
    "id": tenant_id,
    "retention_period": _retention,
    "partition_count": _integer,
    "retention_action": _action,
}
SERVICE_FIELDS: dict[str, Converter] = {
    "host": _string,
    "port": _integer,
    "token": _string,
    "read_requires_token": _boolean,
    "expose_token_to_ui": _boolean,
    "scheduler": _boolean,
    "leader_election": _boolean,
    "pass_on_change": _boolean,
    "first_pass_delay": _duration,
    "backoff_initial": _duration,
    "backoff_max": _duration,
    "db_timeout": _duration,
    "pool_size": _integer,
    "instance": _string,
    "log_level": _string,
    "access_log": _boolean,
}
"""The [service] section: `partman.service.ServiceOptions`, read by `partman run`."""
SECTIONS = ("database", "partman", "service", "table")
_HINTS = {
    ("table", "tenant_id"): 'list tenants as tenants = ["a", "b"], or [[table.tenant]] id = "a"',
    ("table", "tenant_ids"): 'list tenants as tenants = ["a", "b"]',
    ("", "tables"): "write each table as [[table]]",
    ("", "dsn"): 'put it under [database]: dsn = "..."',
}


# -- the result -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantSpec:
    """A tenant the file declares; `own_policy` when it comes from a [[table.tenant]] entry
    (the file then sets its policy on every apply), else it only has to be registered."""

    tenant: Tenant
    own_policy: bool
    path: Path_

    @property
    def tenant_id(self) -> str | int:
        value = self.tenant.tenant_id
        assert isinstance(value, str | int)
        return value


@dataclass(frozen=True)
class TableSpec:
    """One [[table]] entry: the Table (without a tenant), its tenants and tenants_query."""

    table: Table
    tenants: tuple[TenantSpec, ...]
    tenants_query: str | None
    path: Path_

    @property
    def qualified_name(self) -> str:
        return self.table.qualified_name

    def tenant(self, tenant: object) -> TenantSpec | None:
        return next((t for t in self.tenants if str(t.tenant_id) == str(tenant)), None)


@dataclass(frozen=True)
class Settings:
    """What the config file says, plus where each value came from (for messages)."""

    file: str
    config: Config = field(default_factory=Config)
    dsn: str | None = None
    tables: tuple[TableSpec, ...] = ()
    problems: tuple[Problem, ...] = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)
    service: dict[str, Any] = field(default_factory=dict)
    """The [service] section's values, by ServiceOptions field name."""

    def table(self, qualified: str) -> TableSpec | None:
        return next((t for t in self.tables if t.qualified_name == qualified), None)

    def problem(self, path: Path_, message: str) -> Problem:
        line = self.locator.line(path) if self.locator is not None else None
        return Problem(self.file, line, key_text(path), message)

    def raise_for_problems(self) -> Settings:
        if self.problems:
            raise SettingsError(self.problems)
        return self


# -- reading ----------------------------------------------------------------------------------

_ENV = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME}` and `${NAME:-fallback}` from the environment; `$${` is a literal `${`."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, fallback = m.group(1), m.group(2)
        value = environ.get(name)
        if value is None or (value == "" and fallback is not None):
            if fallback is not None:
                return fallback
            raise _Invalid(
                f"environment variable {name} is not set (set it, or write "
                f"${{{name}:-fallback}} for a fallback)"
            )
        return value

    return _ENV.sub(one, text)


class _Reader:
    def __init__(self, file: str, locator: Locator | None, environ: Mapping[str, str]) -> None:
        self.file = file
        self.locator = locator  # None: a mapping given as such (no text, so no lines)
        self.environ = environ
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        line = None if self.locator is None else self.locator.line(path)
        self.problems.append(Problem(self.file, line, key_text(path), message))

    def unknown(self, path: Path_, known: Sequence[str]) -> None:
        name = str(path[-1])
        section = next((str(p) for p in path[:-1] if isinstance(p, str)), "")
        hint = _HINTS.get((section, name))
        if hint is None:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        self.add(path, f"unknown key ({hint})")

    def expanded(self, path: Path_, value: object) -> object:
        """Environment variables expanded in every string of `value`."""
        if isinstance(value, str):
            try:
                return expand(value, self.environ)
            except _Invalid as error:
                self.add(path, str(error))
                return _BAD
        if isinstance(value, list):
            return [self.expanded((*path, i), v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expanded((*path, k), v) for k, v in value.items()}
        return value

    def fields(
        self,
        path: Path_,
        entry: Mapping[str, object],
        known: Mapping[str, Converter],
        handled: Sequence[str] = (),
    ) -> tuple[dict[str, Any], bool]:
        """Each good value converted (keys in `handled` are left to the caller), and whether
        every value was good. Unknown keys are reported but do not make the rest unusable:
        `partman check` still checks such an entry against the database (every problem at
        once), and any problem at all stops every other command before it runs."""
        out: dict[str, Any] = {}
        ok = True
        for name, raw in entry.items():
            if name in handled:
                continue
            if name not in known:
                self.unknown((*path, name), [*known, *handled])
                continue
            value = self.expanded((*path, name), raw)
            if value is _BAD:
                ok = False
                continue
            try:
                out[name] = known[name](value)
            except _Invalid as error:
                self.add((*path, name), str(error))
                ok = False
        return out, ok

    def section(self, data: Mapping[str, object], name: str) -> Mapping[str, object] | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add((name,), f"expected a table ([{name}]), got {_toml_type(value)}")
            return None
        return value

    def attribute(self, path: Path_, error: ConfigError, entry: Mapping[str, object]) -> None:
        """A ConfigError from Config/Table/Tenant, placed at the key it is about."""
        message = str(error)
        m = re.search(r"\b(?:Config|Table|Tenant)\.(\w+)", message)
        name: str | None = m.group(1) if m else None
        if name == "tenant_id":
            name = "id"
        if name is None or name not in entry:
            found = [(message.find(k), k) for k in entry if k in message]
            found = [(i, k) for i, k in found if i >= 0]
            name = min(found)[1] if found else None
        self.add(path if name is None else (*path, name), message)


_BAD = object()


def parse(
    text: str,
    *,
    file: str = str(DEFAULT_PATH),
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file's text. Problems are collected in `Settings.problems` (everything
    that could be read is still returned, so `partman check` can look at the rest); `dsn`, when
    given, wins over [database] dsn, which is then not even expanded."""
    env = os.environ if environ is None else environ
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        m = re.search(r"\(at line (\d+), column \d+\)$", message)
        line = int(m.group(1)) if m else None
        message = message[: m.start()].strip() if m else message
        return Settings(file=file, dsn=dsn, problems=(Problem(file, line, "", message),))
    return _read(data, _Reader(file, Locator(text), env), dsn)


def from_mapping(
    data: Mapping[str, object],
    *,
    file: str,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a mapping with partman.toml's sections and keys, already parsed (a framework's own
    settings, such as Django's PARTMAN block), with the same checks and messages as `parse`.
    `file` names where it came from in messages; there are no lines to give."""
    env = os.environ if environ is None else environ
    return _read(data, _Reader(file, None, env), dsn)


def _read(data: Mapping[str, object], r: _Reader, dsn: str | None) -> Settings:
    for name in data:
        if name not in SECTIONS:
            r.unknown((name,), list(SECTIONS))

    database = r.section(data, "database")
    if database is not None:
        if dsn is not None:
            database = {k: v for k, v in database.items() if k != "dsn"}
        found, _ = r.fields(("database",), database, DATABASE_FIELDS)
        dsn = found.get("dsn", dsn)

    config = Config()
    partman = r.section(data, "partman")
    if partman is not None:
        values, _ = r.fields(("partman",), partman, CONFIG_FIELDS)
        good: dict[str, Any] = {}
        for name, value in values.items():  # one at a time, so that every bad one is named
            try:
                Config(**{name: value})
            except ConfigError as error:
                r.add(("partman", name), str(error))
            else:
                good[name] = value
        try:
            config = Config(**good)
        except ConfigError as error:
            r.attribute(("partman",), error, partman)

    service: dict[str, Any] = {}
    raw_service = r.section(data, "service")
    if raw_service is not None:
        service, _ = r.fields(("service",), raw_service, SERVICE_FIELDS)

    tables: list[TableSpec] = []
    raw_tables = data.get("table", [])
    if isinstance(raw_tables, dict):
        r.add(("table",), "each table is an array element: write [[table]], not [table]")
        raw_tables = []
    elif not isinstance(raw_tables, list):
        r.add(("table",), f"expected [[table]] entries, got {_toml_type(raw_tables)}")
        raw_tables = []
    seen: dict[str, Path_] = {}
    for index, entry in enumerate(raw_tables):
        spec = _table(r, ("table", index), entry)
        if spec is None:
            continue
        if spec.qualified_name in seen:
            r.add(
                (*spec.path, "name"),
                f"{spec.qualified_name} is already declared at "
                f"{key_text(seen[spec.qualified_name])}; declare each table once",
            )
            continue
        seen[spec.qualified_name] = spec.path
        tables.append(spec)
    return Settings(
        file=r.file,
        config=config,
        dsn=dsn,
        tables=tuple(tables),
        problems=tuple(r.problems),
        locator=r.locator,
        service=service,
    )


def _table(r: _Reader, path: Path_, entry: object) -> TableSpec | None:
    if not isinstance(entry, dict):
        r.add(path, f"expected a table, got {_toml_type(entry)}")
        return None
    values, ok = r.fields(path, entry, TABLE_FIELDS, handled=("tenants", "tenant"))
    for name, what in TABLE_REQUIRED.items():
        if name not in entry:
            r.add(path, f"missing key {name} ({what})")
            ok = False
    tenants: list[TenantSpec] = []
    raw_ids = r.expanded((*path, "tenants"), entry.get("tenants", []))
    if not isinstance(raw_ids, list):
        if raw_ids is not _BAD:
            r.add(
                (*path, "tenants"), f'expected an array like ["a", "b"], got {_toml_type(raw_ids)}'
            )
        ok = False
        raw_ids = []
    for i, raw in enumerate(raw_ids):
        if raw is _BAD:
            ok = False
            continue
        try:
            tenants.append(
                TenantSpec(Tenant(tenant_id=tenant_id(raw)), False, (*path, "tenants", i))
            )
        except (_Invalid, ConfigError) as error:
            r.add((*path, "tenants", i), str(error))
            ok = False
    raw_entries = entry.get("tenant", [])
    if isinstance(raw_entries, dict):
        r.add((*path, "tenant"), "write each tenant as [[table.tenant]], not [table.tenant]")
        ok, raw_entries = False, []
    elif not isinstance(raw_entries, list):
        r.add(
            (*path, "tenant"), f"expected [[table.tenant]] entries, got {_toml_type(raw_entries)}"
        )
        ok, raw_entries = False, []
    for i, raw in enumerate(raw_entries):
        spec = _tenant(r, (*path, "tenant", i), raw)
        if spec is None:
            ok = False
        else:
            tenants.append(spec)
    if not ok:
        return None
    ids: dict[str, TenantSpec] = {}
    for t in tenants:
        other = ids.get(str(t.tenant_id))
        if other is not None and (other.own_policy or not t.own_policy):
            where = key_text(other.path)
            r.add(t.path, f"tenant {t.tenant_id!r} is already declared at {where}; declare it once")
            ok = False
        ids[str(t.tenant_id)] = t
    query = values.pop("tenants_query", None)
    if query is not None and not query.strip():
        r.add((*path, "tenants_query"), "is empty; give a SELECT returning one column of ids")
        ok = False
    if values.get("retention_period") == FOREVER:
        values["retention_period"] = None
    try:
        table = Table(**values)
    except ConfigError as error:
        r.attribute(path, error, entry)
        return None
    if table.tenant_id_column is None:
        for name in ("tenants", "tenant", "tenants_query"):
            if name in entry:
                r.add(
                    (*path, name),
                    f"{table.qualified_name} has no tenant_id_column, so it has no tenants; "
                    'set tenant_id_column (e.g. "project_id") or remove this key',
                )
                ok = False
    if not ok:
        return None
    # plain ids first, own policies after: an entry with a policy wins over a plain mention
    merged = {str(t.tenant_id): t for t in sorted(tenants, key=lambda t: t.own_policy)}
    return TableSpec(table, tuple(merged.values()), query, path)


def _tenant(r: _Reader, path: Path_, raw: object) -> TenantSpec | None:
    if not isinstance(raw, dict):
        r.add(path, f"expected a table with id = ..., got {_toml_type(raw)}")
        return None
    values, ok = r.fields(path, raw, TENANT_FIELDS)
    if "id" not in raw:
        r.add(path, 'missing key id (the tenant\'s id, e.g. id = "project-acme")')
        return None
    if not ok:
        return None
    try:
        tenant = Tenant(
            tenant_id=values["id"],
            retention_period=values.get("retention_period"),
            partition_count=values.get("partition_count"),
            retention_action=values.get("retention_action"),
        )
    except ConfigError as error:
        r.attribute(path, error, raw)
        return None
    return TenantSpec(tenant, True, path)


def read(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file; problems (including a missing file) are in `Settings.problems`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = Problem(str(path), None, "", "no such config file")
        return Settings(file=str(path), dsn=dsn, problems=(problem,))
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(str(path), None, "", f"cannot read: {error}")
        return Settings(file=str(path), dsn=dsn, problems=(problem,))
    return parse(text, file=str(path), environ=environ, dsn=dsn)


def load(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file, or raise SettingsError listing every problem in it."""
    return read(path, environ=environ, dsn=dsn).raise_for_problems()
