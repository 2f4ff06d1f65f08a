"""A command over a fleet: the file's [[databases]], each in turn, each in a section of its own.

A database that cannot be reached (or whose command stops) has its section say why, and the
next database is still done: one database down never stops the others. The exit code is the
fleet's: 0 when every database's was 0, 2 when every database stopped before running
anything (as one database's 2 says: nothing was run), else 1 (some database has problems,
or did not run while others did).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import typer
from rich.text import Text

from ..errors import PartmanError
from ..logs import log_event
from ..model.text import first_line
from ..settings import Settings
from .common import (
    OK,
    PROBLEMS,
    USAGE,
    Failed,
    checked_dsn,
    err,
    fail,
    out,
    print_json,
    redact_logs,
    resolve_or_fail,
)

Body = Callable[[Settings], None]
"""A command's work on one database (a Settings narrowed by `Settings.for_database`); it ends
by returning or by raising typer.Exit with its exit code, as the one-database command does."""


def fleet_code(codes: list[int]) -> int:
    """The fleet's exit code from each database's."""
    if all(c == OK for c in codes):
        return OK
    if all(c == USAGE for c in codes):
        return USAGE
    return PROBLEMS


def _run(body: Body, one: Settings) -> tuple[int, str | None]:
    """One database's exit code, and why it stopped (None when it ran to its end)."""
    try:
        body(one)
    except Failed as stopped:
        return int(stopped.exit_code), stopped.message
    except typer.Exit as done:
        return int(done.exit_code), None
    except PartmanError as error:
        err.print(f"[bold red]error:[/] {one.database_name}: {error}")
        return USAGE, str(error)
    except psycopg.Error as error:
        message = f"database: {first_line(error)}"
        err.print(f"[bold red]error:[/] {one.database_name}: {message}")
        return USAGE, message
    return OK, None


class _Labelled(logging.Filter):
    """Every log record of one database's section carries `database` (a JSON log line's
    field): a fleet's lines can be told apart in one stream."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.database = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.database = self.database
        return True


@contextlib.contextmanager
def _labelled(name: str) -> Iterator[None]:
    label = _Labelled(name)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(label)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(label)


def each(found: Settings, body: Body, *, as_json: bool = False) -> int:
    """Run `body` on each database of the fleet, in the file's order; the fleet's exit code.

    As text, each database gets a heading line, then what the command prints, then (when it
    stopped) why. As JSON, one document: {"databases": [{"database", "exit_code", "error",
    "result"}], "ok"}, each `result` the document the command prints for one database."""
    codes: list[int] = []
    sections: list[dict[str, Any]] = []
    for spec in found.fleet():
        one = found.for_database(spec.name)
        if as_json:
            captured = io.StringIO()
            with contextlib.redirect_stdout(captured), _labelled(spec.name):
                code, why = _run(body, one)
            text = captured.getvalue().strip()
            try:
                result = json.loads(text) if text else None
            except ValueError:
                result = text
            sections.append(
                {"database": spec.name, "exit_code": code, "error": why, "result": result}
            )
        else:
            out.print(Text(f"== database {spec.name} ==", style="bold"))
            with _labelled(spec.name):
                code, why = _run(body, one)
            if why is not None:
                out.print(Text(f"database {spec.name} not done: {why}", style="red"))
            out.print()
        codes.append(code)
        log_event(
            logging.getLogger("partman.cli"),
            logging.INFO if code == OK else logging.ERROR,
            "database_done",
            f"database {spec.name}: exit {code}" + (f" ({why})" if why else ""),
            database=spec.name,
            exit_code=code,
            error=why,
        )
    code = fleet_code(codes)
    if as_json:
        print_json({"ok": code == OK, "exit_code": code, "databases": sections})
    else:
        failed = [s.name for s, c in zip(found.fleet(), codes, strict=True) if c != OK]
        total = len(codes)
        if failed:
            out.print(
                Text(
                    f"{total - len(failed)} of {total} database(s) ok; not ok: {', '.join(failed)}",
                    style="red",
                )
            )
        else:
            out.print(Text(f"{total} database(s) ok.", style="green"))
    return code


def serve(found: Settings, *, host: str | None, port: int | None) -> None:
    """`partman run` over the fleet: one process, one Service per database (its pool, its
    leadership, its scheduler, its metrics), one app and one HTTP server. A database that
    cannot be reached now is served anyway (its section says so, its scheduler retries with
    backoff); a file that does not fit a database that can be reached stops everything now,
    as it does for one database (exit 2, nothing served)."""
    from ..engine import sync as sync_module
    from ..service import Fleet, Member, ServiceOptions

    values = dict(found.service)
    if host is not None:
        values["host"] = host
    if port is not None:
        values["port"] = port
    try:
        options = ServiceOptions(**values)
    except (TypeError, ValueError, PartmanError) as error:
        fail(f"[service] in {found.file}: {error}")
    redact_logs(t for t in (options.token, options.read_token) if t)
    logger = logging.getLogger("partman.service")
    members = []
    for spec in found.fleet():
        assert spec.dsn is not None  # the settings refuse a database without one
        checked_dsn(spec.dsn)  # readable, and its password masked in every log line
        one = found.for_database(spec.name)
        timeout = max(1, round(options.db_timeout.total_seconds()))
        try:
            conn = psycopg.connect(spec.dsn, autocommit=True, connect_timeout=timeout)
        except psycopg.OperationalError as error:
            log_event(
                logger,
                logging.WARNING,
                "database_unreachable_at_start",
                f"database {spec.name} cannot be reached now ({first_line(error)}); it is "
                "served anyway and its passes are retried with backoff",
                database=spec.name,
            )
        else:
            with conn:
                resolve_or_fail(conn, one)
        prepare = functools.partial(sync_module.apply, found=one)
        members.append(Member(spec.name, spec.dsn, prepare))
    Fleet(members, config=found.config, options=options).serve()
