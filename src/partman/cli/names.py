"""Table names as a person types them: `events` for convoy.events, `convoy.evnts` for
convoy.events. When a command is given a table partman does not manage, it says what to do in
CLI terms and which schema-qualified names were likely meant (the tables partman manages and
the ones the config file declares)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from ..db import reads
from ..settings import Settings
from .common import fail


def managed_tables(conn: psycopg.Connection[Any], found: Settings) -> list[str]:
    """The tables partman manages here, "schema.name"."""
    return [t.qualified_name for t in reads.tables(conn, found.config.metadata_schema)]


def known_tables(conn: psycopg.Connection[Any], found: Settings) -> list[str]:
    """The managed tables, then the file's, each once."""
    managed = managed_tables(conn, found)
    return list(dict.fromkeys([*managed, *(s.qualified_name for s in found.tables)]))


def suggestions(name: str, known: Iterable[str]) -> list[str]:
    """The schema-qualified names `name` likely meant: the same table name in any schema (a
    bare name), else the closest spellings."""
    known = [k for k in known if k != name]
    bare = name.rsplit(".", 1)[-1]
    same = [k for k in known if k.rsplit(".", 1)[-1] == bare]
    if same:
        return same
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.75)
    if close:
        return close
    by_name = {k.rsplit(".", 1)[-1]: k for k in known}
    return [by_name[n] for n in difflib.get_close_matches(bare, list(by_name), n=2, cutoff=0.75)]


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ "; did you mean convoy.events?" or ""."""
    found = suggestions(name, known)
    return f"; did you mean {' or '.join(found)}?" if found else ""


def not_managed(name: str, found: Settings, known: Sequence[str]) -> str:
    """A table partman does not manage, and what to do about it from the command line."""
    where = "partman.toml" if found.file == "(no config file)" else found.file
    return (
        f"{name} is not managed by partman: declare it as a [[table]] in {where}, then run "
        f"`partman apply`{did_you_mean(name, known)}"
    )


def require_managed(conn: psycopg.Connection[Any], found: Settings, name: str) -> None:
    """Exit 2 naming the fix when `name` is not a managed table (nothing has run)."""
    if name not in managed_tables(conn, found):
        fail(not_managed(name, found, known_tables(conn, found)))
