"""Each field's own rule, declared on the field: `field(metadata=rule(check))`.

A rule is stated once and applied twice: by the dataclass on construction (`apply_rules`, the
first bad value raises) and by the settings reader for each key it reads (`field_errors`, every
bad value is named), so a file and Python never disagree on what is good. A ConfigError a rule
raises carries its `field`, so the reader puts it at its key. Rules that need other fields (an
archive needs archive_schema) stay in `__post_init__`, after these.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


class Source(enum.Enum):
    """Where a value was written, so that its message answers in the user's own terms."""

    PYTHON = "python"
    """`Table(name=...)`: a message names the field (`Table.name`); None keeps forever."""
    FILE = "file"
    """partman.toml or a framework's settings block: the key is shown before the message, and
    "forever" keeps partitions forever."""


@dataclass(frozen=True)
class Subject:
    """The field a rule checks a value for, and where the value was written."""

    kind: str
    name: str
    source: Source = Source.PYTHON

    @property
    def label(self) -> str:
        """The field as Python spells it: `Table.partition_count`."""
        return f"{self.kind}.{self.name}"

    @property
    def in_file(self) -> bool:
        return self.source is Source.FILE


Check = Callable[[Any, Subject], Any]
"""(value, subject) -> the value the field keeps; a ConfigError says why it cannot be."""


@dataclass(frozen=True)
class Rule:
    """A field's own rule. The dataclass applies it on construction; the settings reader
    applies it to each key it reads, so that every bad value of a file is named at once.
    Rules that need other fields (archive needs archive_schema) run after, in `__post_init__`."""

    check: Check
    expected: str | None = None
    """A good value as a settings file writes it, for a value of the wrong TOML type."""


_RULE = "partman.rule"


def rule(check: Check, expected: str | None = None) -> dict[str, Rule]:
    """Field metadata declaring the field's rule: `field(metadata=rule(...))`."""
    return {_RULE: Rule(check, expected)}


def rule_of(f: dataclasses.Field[Any]) -> Rule | None:
    found = f.metadata.get(_RULE)
    return found if isinstance(found, Rule) else None


@contextmanager
def about(name: str) -> Iterator[None]:
    """A ConfigError raised inside is about field `name` (unless it already names one)."""
    try:
        yield
    except ConfigError as error:
        if error.field is None:
            error.field = name
        raise


def check_field(kind: type[Any], name: str, value: object, source: Source = Source.PYTHON) -> Any:
    """`value` checked by the rule of field `name` of `kind`, on its own (no other field is
    looked at): the value the field would keep, or a ConfigError whose `field` is `name`."""
    f = next((f for f in dataclasses.fields(kind) if f.name == name), None)
    found = None if f is None else rule_of(f)
    if found is None:
        return value
    with about(name):
        return found.check(value, Subject(kind.__name__, name, source))


def field_errors(
    kind: type[Any], values: Mapping[str, object], source: Source
) -> tuple[dict[str, Any], list[ConfigError]]:
    """Every value checked by its field's own rule: those that pass (as the field keeps them),
    and an error (with its `field`) for each one that does not."""
    good: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for name, value in values.items():
        try:
            good[name] = check_field(kind, name, value, source)
        except ConfigError as error:
            errors.append(error)
    return good, errors


def apply_rules(obj: object) -> None:
    """Each field's rule, in field order; the first bad value raises. For `__post_init__`."""
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        found = rule_of(f)
        if found is not None:
            with about(f.name):
                kept = found.check(getattr(obj, f.name), Subject(type(obj).__name__, f.name))
            object.__setattr__(obj, f.name, kept)


def optional(check: Check) -> Check:
    """`check`, but None (unset, or inherit the table's) is fine."""

    def optional_check(value: object, s: Subject) -> object:
        return None if value is None else check(value, s)

    return optional_check
