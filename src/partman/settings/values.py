"""TOML values read as what the model's fields take, and the keys of each section.

Only types are checked here (a duration is a string with a unit, a count an integer); whether a
value is good for its field is the model's rule (`model.config.check_field`), so a file and
Python never disagree. Each section's keys come from its dataclass's fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from ..model.config import Config, Table, Tenant
from ..model.rules import rule_of
from ..model.service_options import ServiceOptions


class Invalid(Exception):
    """A value that cannot be used; the message says why and what would do."""


class Unset(Invalid):
    """A value names an environment variable that is not set: wrong only for a command that
    needs that value (`partman plan` never uses [service] token)."""


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


def toml_type(value: object) -> str:
    """How a message names the TOML type of `value`: "a string", "an array"."""
    return next((name for kind, name in _TOML_TYPES if isinstance(value, kind)), "a value")


def _expect(value: object, kind: type, what: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"expected {what}, got {toml_type(value)} ({value!r})")


# -- durations: TOML has none, so partman.toml writes them as text ------------------------------

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
            raise Invalid(
                f"{text!r}: unknown unit {m.group(2)!r}; use ms, s, min, h or d "
                f"(e.g. {DURATION_EXAMPLES})"
            )
        total += float(m.group(1)) * unit
        position = m.end()
    if position == 0 or position != len(text):
        raise Invalid(f"{text!r} is not a duration; use e.g. {DURATION_EXAMPLES}")
    return total


# -- one reading per TOML type --------------------------------------------------------------------

Converter = Callable[[object], Any]


def _duration(value: object) -> dt.timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise Invalid(f"{value!r} has no unit; write e.g. {DURATION_EXAMPLES}")
    _expect(value, str, "a duration string")
    assert isinstance(value, str)
    return parse_duration(value)


def _text(what: str) -> Converter:
    """A string, described as `what` when it is not one (e.g. 'a string like "1 day"')."""

    def text(value: object) -> str:
        _expect(value, str, what)
        assert isinstance(value, str)
        return value

    return text


_string = _text("a string")


def _integer(value: object) -> int:
    _expect(value, int, "an integer")
    assert isinstance(value, int)
    return value


def _boolean(value: object) -> bool:
    _expect(value, bool, "true or false")
    assert isinstance(value, bool)
    return value


def tenant_id(value: object) -> str | int:
    """A tenant id as the file may give it: a string or an integer. An empty one is refused
    here, not by `Tenant`: in Python the tenant column says it (`canonical_tenant`), with the
    column's other limits, when the tenant is registered; a file is read without a database."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"expected a tenant id (a string or an integer), got {toml_type(value)}")
    if value == "":
        raise Invalid("a tenant id must not be empty")
    return value


def retention_text_value(text: str) -> str | int:
    """A retention period as a command line or a JSON string gives it, as the model takes it:
    an id table's distance ("5000000", or "5000000 ids", as partman shows it) is an int; any
    other text ("30 days", "forever", "inherit") is left as it is."""
    digits = text.strip().lower().removesuffix("ids").strip()
    return int(digits) if digits.isdigit() else text


def _inline_table(value: object) -> dict[str, object]:
    _expect(value, dict, "an inline table like { fillfactor = 90 }")
    assert isinstance(value, dict)
    return value


_BY_TYPE: dict[object, Converter] = {
    dt.timedelta: _duration,
    bool: _boolean,
    int: _integer,
    str: _string,
}


_WRITTEN: tuple[type, ...] = (str, int, bool)
"""The field types a file writes as such (a field typed `str | int` takes either)."""


def _written_as(kinds: tuple[type, ...], what: str) -> Converter:
    """A value of one of the TOML types `kinds`, described as `what` when it is none of them
    (e.g. 'a string like "1 day", or an integer (ids per window)')."""

    def written(value: object) -> object:
        fits = any(
            isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            for kind in kinds
        )
        if not fits:
            raise Invalid(f"expected {what}, got {toml_type(value)} ({value!r})")
        return value

    return written


def _reading(f: dataclasses.Field[Any], hint: object) -> Converter:
    """How a file writes field `f`: as the TOML types among its type's (a string when it
    has none: an enum is written as its value), described by the text its rule gives; else
    by its type."""
    kinds = [k for k in (typing.get_args(hint) or (hint,)) if k is not type(None)]
    found = rule_of(f)
    if found is not None and found.expected is not None:
        written = tuple(k for k in _WRITTEN if k in kinds)
        return _written_as(written or (str,), found.expected)
    if len(kinds) == 1 and kinds[0] in _BY_TYPE:
        return _BY_TYPE[kinds[0]]
    raise TypeError(f"{f.name}: say how a file writes {hint} (a rule's `expected` text)")


def keys_of(
    kind: type[Any],
    rename: Mapping[str, str] | None = None,
    read_as: Mapping[str, Converter] | None = None,
) -> dict[str, Converter]:
    """A section's keys: the fields of `kind` a user sets, each read by its type. `rename`
    maps a field to its key in the file ("": the file writes it some other way); `read_as`
    reads a field whose type TOML cannot write as such."""
    rename, read_as = rename or {}, read_as or {}
    hints = typing.get_type_hints(kind)
    out: dict[str, Converter] = {}
    for f in dataclasses.fields(kind):
        key = rename.get(f.name, f.name)
        if f.init and key:
            out[key] = read_as.get(f.name) or _reading(f, hints[f.name])
    return out


CONFIG_FIELDS = keys_of(Config)
"""[partman]: partman.Config."""
DATABASE_FIELDS: dict[str, Converter] = {"dsn": _string}
TABLE_FIELDS = {
    **keys_of(Table, rename={"tenant_id": ""}, read_as={"storage_parameters": _inline_table}),
    "tenants_query": _string,
}
"""[[table]]: partman.Table, field for field (its tenants are listed, `tenants` and
[[table.tenant]], instead of one tenant_id), and the query more tenants are read by."""
TABLE_REQUIRED = {
    "name": 'the partitioned parent table, e.g. name = "events"',
    "partition_by": 'the time column of the partition key, e.g. partition_by = "created_at"',
}
TENANT_KEYS = {"tenant_id": "id"}
TENANT_FIELDS = keys_of(Tenant, rename=TENANT_KEYS, read_as={"tenant_id": tenant_id})
"""[[table.tenant]]: partman.Tenant, with its tenant_id written `id`."""
def _secret(value: object) -> str:
    """A token: a string, and a message that never repeats what was written instead."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {toml_type(value)} (not shown: it is a secret)")
    return value


SERVICE_FIELDS = {**keys_of(ServiceOptions), "token": _secret, "read_token": _secret}
"""The [service] section: `partman.service.ServiceOptions`, read by `partman run`."""
DATABASES_FIELDS: dict[str, Converter] = {"name": _string, "dsn": _string, "dsn_env": _string}
"""A [[databases]] entry's own keys (its tables are [[databases.table]] entries)."""
DATABASE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""A fleet database's name: a URL path segment, a Prometheus label value and a word in logs
as it is, never quoted or escaped anywhere."""
SECTIONS = ("database", "databases", "partman", "service", "table")
NEEDED_BY_SOME = ("service",)
"""Sections only some commands use ([service]: `partman run`): an unset environment variable
there is a problem of the file, but only those commands stop on it."""

# -- environment variables ---------------------------------------------------------------------

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
            raise Unset(
                f"environment variable {name} is not set (set it, or write "
                f"${{{name}:-fallback}} for a fallback)"
            )
        return value

    return _ENV.sub(one, text)
