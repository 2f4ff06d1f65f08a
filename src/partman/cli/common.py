"""What every `partman` command shares: exit codes, options, the two consoles, logging, and
the steps that end a command with exit 2 when it cannot run (no config file, a problem in it,
no database, a file that does not fit the database).

Exit codes are stable: 0 ok, 1 problems found (check, status, a pass with failed or skipped
operations), 2 usage or config errors (nothing was run). Logs go to stderr, as one JSON
object per line when stderr is not a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from .. import settings as settings_module
from ..db.dsn import check_dsn, secrets_of
from ..engine import sync as sync_module
from ..engine.manager import Manager
from ..engine.world import read_positions
from ..errors import PartmanError
from ..logs import Redact
from ..model.clock import RealClock
from ..model.text import first_line
from ..settings import DEFAULT_PATH, Problem, Settings

OK, PROBLEMS, USAGE = 0, 1, 2
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
"""A record's own attributes, not the event's fields (uvicorn adds `color_message`, its message
with terminal colours)."""

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="PARTMAN_CONFIG",
        show_default=False,
        help="The config file (default: ./partman.toml).",
    ),
]
DsnOption = Annotated[
    str | None,
    typer.Option(
        "--dsn",
        envvar="PARTMAN_DSN",
        show_default=False,
        help="libpq connection string or URI; wins over the file's database.dsn.",
    ),
]
FLAG = ""
"""The metavar of an on/off option: typer's help would otherwise show `--json <bool>`, as if
the option took a value."""
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", metavar=FLAG, help="Print one JSON document on stdout instead of tables."
    ),
]
LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        envvar="PARTMAN_LOG_LEVEL",
        show_default=False,
        help="debug, info, warning or error (default: warning on a terminal, info otherwise).",
    ),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "-d",
        envvar="PARTMAN_DATABASE",
        show_default=False,
        help="Only this database of the file's [[databases]] (default: each in turn).",
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option("--table", "-t", help='Only this table ("schema.name").', show_default=False),
]

_WIDE = 400  # what is printed to a pipe or a file is not cut to 80 columns
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _WIDE)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# -- output ----------------------------------------------------------------------------------


class Failed(typer.Exit):
    """A command that stopped, with what it said: over a fleet, the database's section says
    it again (cli.fleet)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code)
        self.message = message


def fail(message: str, code: int = USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise Failed(code, message)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        err.print(f"[red]{escape(str(p))}[/]")


def print_grid(grid: RichTable) -> None:
    out.print(grid, soft_wrap=False)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        found: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in found:
                found[key] = value
        if record.exc_info:
            found["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (and rid of secrets) by `logs.Redact`
            found["exception"] = record.exc_text
        return json.dumps(found, default=str, ensure_ascii=False)


def setup_logging(level: str | None) -> None:
    terminal = sys.stderr.isatty()
    name = (level or ("warning" if terminal else "info")).upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        fail(f"--log-level {level!r}: use debug, info, warning or error")
    handler: logging.Handler
    if terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=err, show_time=False, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, name))
    logging.getLogger("psycopg").setLevel(max(logging.WARNING, root.level))


# -- config and database ---------------------------------------------------------------------


def config_path(config: Path | None) -> Path | None:
    if config is not None:
        return config
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def read_settings(
    config: Path | None,
    dsn: str | None,
    *,
    required: bool = True,
    needs: tuple[str, ...] = (),
    database: str | None = None,
) -> Settings:
    """The config file read, or exit 2 listing every problem in it (nothing has run). An
    environment variable not set in a section only some commands use ([service]) stops only
    the commands that say they need it (`needs`). Of a fleet ([[databases]]), `database` (or
    $PARTMAN_DATABASE) picks one: the file as if it declared only that one."""
    path = config_path(config)
    if path is None:
        if required:
            fail(
                "no config file: pass --config FILE, set PARTMAN_CONFIG, or write ./partman.toml "
                "(docs/cli.md shows one)"
            )
        return Settings(file="(no config file)", dsn=dsn)
    found = settings_module.read(path, dsn=dsn)
    problems = found.problems_for(*needs)
    if problems:
        print_problems(problems)
        fail(f"{len(problems)} problem(s) in {path}; nothing was run")
    chosen = database or os.environ.get("PARTMAN_DATABASE") or None
    if found.databases and chosen is not None:
        try:
            return found.for_database(chosen)
        except PartmanError as error:
            fail(str(error))
    return found


def require_dsn(found: Settings) -> str:
    if found.databases:
        names = ", ".join(d.name for d in found.databases)
        fail(
            f"{found.file} declares several databases ([[databases]]: {names}) and this command "
            "works on one: pick it with --database NAME where the command has it, else "
            "PARTMAN_DATABASE=NAME"
        )
    if not found.dsn:
        fail(
            'no database: pass --dsn, set PARTMAN_DSN, or write [database] dsn = "..." in the '
            "config file"
        )
    return checked_dsn(found.dsn)


def checked_dsn(dsn: str) -> str:
    """The DSN, readable by libpq; from here on no log line shows its password."""
    try:
        check_dsn(dsn)
    except PartmanError as error:
        fail(str(error))
    redact_logs(secrets_of(dsn))
    return dsn


def redact_logs(secrets: Iterable[str]) -> None:
    """Every handler of the process's logging writes *** for each of `secrets`."""
    secrets = tuple(secrets)
    for handler in logging.getLogger().handlers:
        Redact.on(handler).add(secrets)


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    checked_dsn(dsn)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=15)
    except psycopg.Error as error:
        fail(f"cannot connect to the database: {first_line(error)}")
    with conn:
        yield conn


@contextmanager
def open_manager(found: Settings, **kwargs: Any) -> Iterator[Manager]:
    with Manager(require_dsn(found), config=found.config, **kwargs) as manager:
        yield manager


def resolve_or_fail(conn: psycopg.Connection[Any], found: Settings) -> sync_module.Resolution:
    """The file against the database; exit 2 listing every problem (nothing has run)."""
    resolution = sync_module.resolve(conn, found, RealClock().now())
    if resolution.problems:
        print_problems(resolution.problems)
        fail(
            f"{len(resolution.problems)} problem(s) with {found.file} against this database; "
            "nothing was run (`partman check` lists them too)"
        )
    # resolve reads the catalog only: an id table's plan starts at its newest id, as a pass's
    read_positions(conn, resolution.future_state(), resolution.catalog, found.config.tz)
    return resolution
