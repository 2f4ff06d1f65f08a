"""The `partman` command line: a config file (partman.toml), plan then apply, as cron jobs,
Kubernetes CronJobs and systemd timers want it. See docs/cli.md for a walkthrough.

Exit codes are stable: 0 ok, 1 problems found (check, status, a pass with failed or skipped
operations), 2 usage or config errors (nothing was run). `--json` on every read command prints
one JSON document on stdout; logs go to stderr, as one JSON object per line when stderr is not
a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from .. import settings as settings_module
from ..db import reads as status_module
from ..decide.coverage import Inventory
from ..engine import sync as sync_module
from ..engine.manager import Manager
from ..errors import PartmanError
from ..model import snapshot
from ..model.clock import RealClock
from ..model.config import FOREVER, Tenant
from ..model.operations import Operation, Plan
from ..model.report import Report
from ..model.text import first_line, human_duration
from ..settings import DEFAULT_PATH, Problem, Settings, SettingsError

OK, PROBLEMS, USAGE = 0, 1, 2
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

app = typer.Typer(
    help=(
        "partman: PostgreSQL partitions created ahead, trimmed behind, on a lock budget.\n\n"
        "Declare tables and retention policies in partman.toml, then: partman check, "
        "partman plan, partman apply --yes (from cron), partman partitions, partman status.\n\n"
        "Exit codes: 0 ok, 1 problems found, 2 usage or config error (nothing was run)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a DSN with its password
)
tenants_app = typer.Typer(
    help="List, add, set the policy of, or remove tenants of a multi-tenant table.",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")

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
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
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
TableOption = Annotated[
    str | None,
    typer.Option("--table", "-t", help='Only this table ("schema.name").', show_default=False),
]

_WIDE = 400  # what is printed to a pipe or a file is not cut to 80 columns
_out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _WIDE)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


# -- plumbing --------------------------------------------------------------------------------


def _fail(message: str, code: int = USAGE) -> NoReturn:
    _err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _setup_logging(level: str | None) -> None:
    terminal = sys.stderr.isatty()
    name = (level or ("warning" if terminal else "info")).upper()
    if name not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        _fail(f"--log-level {level!r}: use debug, info, warning or error")
    handler: logging.Handler
    if terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=_err, show_time=False, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, name))
    logging.getLogger("psycopg").setLevel(max(logging.WARNING, root.level))


def _config_path(config: Path | None) -> Path | None:
    if config is not None:
        return config
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def _print_problems(problems: list[Problem] | tuple[Problem, ...]) -> None:
    for p in problems:
        _err.print(f"[red]{escape(str(p))}[/]")


def _settings(config: Path | None, dsn: str | None, *, required: bool = True) -> Settings:
    """The config file read, or exit 2 listing every problem in it (nothing has run)."""
    path = _config_path(config)
    if path is None:
        if required:
            _fail(
                "no config file: pass --config FILE, set PARTMAN_CONFIG, or write ./partman.toml "
                "(docs/cli.md shows one)"
            )
        return Settings(file="(no config file)", dsn=dsn)
    found = settings_module.read(path, dsn=dsn)
    if found.problems:
        _print_problems(found.problems)
        _fail(f"{len(found.problems)} problem(s) in {path}; nothing was run")
    return found


def _dsn(found: Settings) -> str:
    if not found.dsn:
        _fail(
            'no database: pass --dsn, set PARTMAN_DSN, or write [database] dsn = "..." in the '
            "config file"
        )
    return found.dsn


@contextmanager
def _connect(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=15)
    except psycopg.Error as error:
        _fail(f"cannot connect to the database: {first_line(error)}")
    with conn:
        yield conn


@contextmanager
def _manager(found: Settings, **kwargs: Any) -> Iterator[Manager]:
    with Manager(_dsn(found), config=found.config, **kwargs) as manager:
        yield manager


def _resolve(conn: psycopg.Connection[Any], found: Settings) -> sync_module.Resolution:
    """The file against the database; exit 2 listing every problem (nothing has run)."""
    resolution = sync_module.resolve(conn, found, RealClock().now())
    if resolution.problems:
        _print_problems(resolution.problems)
        _fail(
            f"{len(resolution.problems)} problem(s) with {found.file} against this database; "
            "nothing was run (`partman check` lists them too)"
        )
    return resolution


# -- rendering -------------------------------------------------------------------------------


def _span(op: Operation) -> str:
    if op.lower is None:
        return ""
    return f" [{op.lower.isoformat()}, {op.upper.isoformat() if op.upper else ''})"


def _op_line(op: Operation, indent: str, show_sql: bool) -> list[Text]:
    create = op.kind.startswith("create")
    sign, style = (
        ("+", "green") if create else (("-", "red") if op.kind != "forget" else ("~", "yellow"))
    )
    line = Text(f"{indent}{sign} {op.kind} {op.partition_qualified}{_span(op)}", style=style)
    line.append(f"  {op.reason}", style="dim")
    lines = [line]
    if show_sql:
        lines += [Text(f"{indent}    {s}", style="dim") for s in op.sql.splitlines()]
    return lines


def _change_line(change: sync_module.Change, indent: str) -> Text:
    sign, style = ("~", "yellow") if change.kind.startswith("update") else ("+", "green")
    what = {
        "create_metadata": "metadata",
        "add_table": "register table",
        "update_table": "change policy",
        "add_tenant": "register tenant",
        "update_tenant": "change tenant policy",
    }[change.kind]
    return Text(f"{indent}{sign} {what}: {change.detail}", style=style)


def plan_summary(changes: list[sync_module.Change], plan: Plan) -> dict[str, int]:
    return {
        "tables_to_register": sum(c.kind == "add_table" for c in changes),
        "table_policies_to_change": sum(c.kind == "update_table" for c in changes),
        "tenants_to_register": sum(c.kind == "add_tenant" for c in changes),
        "tenant_policies_to_change": sum(c.kind == "update_tenant" for c in changes),
        "partitions_to_create": sum(op.kind.startswith("create") for op in plan),
        "partitions_to_retire": sum(op.kind in ("drop", "detach", "archive") for op in plan),
        "other_operations": sum(
            not op.kind.startswith("create") and op.kind not in ("drop", "detach", "archive")
            for op in plan
        ),
        "notices": len(plan.notices),
    }


def plan_json(changes: list[sync_module.Change], plan: Plan) -> dict[str, Any]:
    return {
        "now": plan.now.isoformat(),
        "changes": [c.to_dict() for c in changes],
        "operations": [op.to_dict() for op in plan],
        "notices": [n.to_dict() for n in plan.notices],
        "summary": plan_summary(changes, plan),
    }


def _render_plan(
    console: Console,
    changes: list[sync_module.Change],
    plan: Plan,
    order: list[str],
    *,
    show_sql: bool = False,
) -> None:
    """Grouped by table, then tenant; + green creates, - red retirements, ~ yellow changes."""
    tables = list(dict.fromkeys([*order, *(c.table for c in changes if c.table), *plan.tables]))
    tables += [op.parent_qualified for op in plan if op.parent_qualified not in tables]
    for c in changes:
        if c.table is None:
            console.print(_change_line(c, ""))
    for table in tables:
        mine = [c for c in changes if c.table == table]
        ops = [op for op in plan if op.parent_qualified == table]
        notices = [n for n in plan.notices if n.table == table]
        if not (mine or ops or notices):
            continue
        console.print(Text(table, style="bold"))
        for c in mine:
            if c.tenant is None:
                console.print(_change_line(c, "  "))
        for op in ops:
            if op.tenant is None:
                for line in _op_line(op, "  ", show_sql):
                    console.print(line)
        tenants = list(
            dict.fromkeys(
                [c.tenant for c in mine if c.tenant is not None]
                + [str(op.tenant) for op in ops if op.tenant is not None]
            )
        )
        for tenant in tenants:
            console.print(Text(f"  tenant {tenant}", style="bold"))
            for c in mine:
                if c.tenant == tenant:
                    console.print(_change_line(c, "    "))
            for op in ops:
                if op.tenant is not None and str(op.tenant) == tenant:
                    for line in _op_line(op, "    ", show_sql):
                        console.print(line)
        for n in notices:
            style = {"error": "red", "warning": "yellow"}.get(n.level, "dim")
            who = f"tenant {n.tenant}: " if n.tenant else ""
            console.print(Text(f"  ! {n.level}: {who}{n.message}", style=style))
    for n in plan.notices:
        if n.table not in tables:
            console.print(Text(f"! {n.level}: {n.table}: {n.message}", style="yellow"))
    console.print(_plan_summary_line(changes, plan))


def _plan_summary_line(changes: list[sync_module.Change], plan: Plan) -> Text:
    s = plan_summary(changes, plan)
    if not changes and not len(plan):
        return Text("No changes: every managed table is covered and nothing has expired.")
    parts = [
        f"{s['partitions_to_create']} partition(s) to create",
        f"{s['partitions_to_retire']} to retire",
    ]
    if s["tables_to_register"]:
        parts.append(f"{s['tables_to_register']} table(s) to register")
    if s["tenants_to_register"]:
        parts.append(f"{s['tenants_to_register']} tenant(s) to register")
    policies = s["table_policies_to_change"] + s["tenant_policies_to_change"]
    if policies:
        parts.append(f"{policies} policy change(s)")
    if s["other_operations"]:
        parts.append(f"{s['other_operations']} other operation(s)")
    return Text("Plan: " + ", ".join(parts) + ".", style="bold")


# -- commands --------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"partman {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """partman: PostgreSQL partitions created ahead, trimmed behind, on a lock budget."""


@app.command()
def init(
    config: ConfigOption = None, dsn: DsnOption = None, log_level: LogLevelOption = None
) -> None:
    """Create or upgrade partman's metadata schema (partman_meta) in the database.

    Every other writing command does this on first use too; run it on its own to give a
    deploy step the one DDL that needs schema privileges. A config file is optional (only
    metadata_schema is read from it).

    Example: partman init --dsn postgresql://partman@db/app
    """
    _setup_logging(log_level)
    found = _settings(config, dsn, required=False)
    with _connect(_dsn(found)), _manager(found) as manager:
        version = manager.init()
    _out.print(f"partman's metadata schema {found.config.metadata_schema} is at version {version}.")


@app.command()
def check(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Validate the config file, and check it against the live database.

    Lists every problem at once, each at its file:line and key with the fix: unknown or
    misspelled keys, wrong types, bad intervals, tables that do not exist or are not
    partitioned as declared, tenant ids the tenant column cannot hold, a tenants_query that
    fails. Only reads (SELECTs in READ ONLY transactions). Exit 0 when all is well, 1 when
    there are problems, 2 when it cannot run (no config file, no database).

    Example: partman check --config /etc/partman.toml
    """
    _setup_logging(log_level)
    path = _config_path(config)
    if path is None:
        _settings(config, dsn)  # fails with the message
        return
    found = settings_module.read(path, dsn=dsn)
    problems = list(found.problems)
    tables: list[dict[str, Any]] = []
    if found.dsn:
        with _connect(found.dsn) as conn:
            resolution = sync_module.resolve(conn, found, RealClock().now(), problems=problems)
        problems = sorted(resolution.problems, key=lambda p: (p.line is None, p.line or 0))
        for r in resolution.tables:
            tables.append(
                {
                    "table": r.spec.qualified_name,
                    "registered": r.record.id > 0,
                    "tenants_declared": len(r.declared),
                    "tenants_from_query": len(r.queried),
                    "tenants_registered": len(r.registered),
                }
            )
    elif not problems:
        _fail(
            "no database to check against: pass --dsn, set PARTMAN_DSN, or write dsn in the "
            "file's database section"
        )
    if as_json:
        _print_json(
            {
                "ok": not problems,
                "file": found.file,
                "problems": [p.to_dict() for p in problems],
                "tables": tables,
            }
        )
    else:
        for t in tables:
            tenants = t["tenants_declared"] + t["tenants_from_query"]
            state = "registered" if t["registered"] else "not registered yet"
            _out.print(
                Text(f"ok  {t['table']} ({state}; {tenants} tenant(s) from the file)", "green")
            )
        for p in problems:
            _out.print(Text(str(p), style="red"))
        if problems:
            unchecked = "" if found.dsn else " (not checked against a database: no DSN)"
            _out.print(f"{len(problems)} problem(s){unchecked}.")
        else:
            _out.print(f"{found.file}: no problems.")
    raise typer.Exit(PROBLEMS if problems else OK)


@app.command()
def plan(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    show_sql: Annotated[bool, typer.Option("--sql", help="Show each operation's SQL.")] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Show what `partman apply` would change, without changing anything.

    First the metadata the config file registers (tables, tenants, policies), then the
    maintenance pass that follows: partitions to create (+, green) and to retire by
    retention (-, red), grouped by table and tenant, each with its reason. Tenants from a
    tenants_query are read now. Nothing is written, not even partman's metadata schema: the
    plan is computed from the catalog and the metadata as the file would leave it.

    Example: partman plan --sql
    """
    _setup_logging(log_level)
    found = _settings(config, dsn)
    with _connect(_dsn(found)) as conn:
        resolution = _resolve(conn, found)
        result = resolution.plan()
    if as_json:
        _print_json(plan_json(resolution.changes, result))
        return
    order = [t.qualified_name for t in found.tables]
    _render_plan(_out, resolution.changes, result, order, show_sql=show_sql)


class _Progress:
    """A progress bar advanced by the executor's on_step hook (one tick per operation)."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=_out,
            transient=False,
        )
        self.task = self.progress.add_task("applying", total=max(total, 1))
        self.seen: set[tuple[str, str, str]] = set()

    def step(self, name: str, op: Operation) -> None:
        key = (op.kind, op.partition_schema, op.partition_name)
        if key not in self.seen:
            if self.seen:
                self.progress.advance(self.task)
            self.seen.add(key)
        self.progress.update(self.task, description=f"{name} {op.partition_name}")

    def __enter__(self) -> _Progress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seen:
            total = max(len(self.seen), int(self.progress.tasks[0].total or 0))
            self.progress.update(self.task, total=total, completed=total, description="done")
        self.progress.stop()


def _report_exit(report: Report) -> int:
    return OK if report.ok else PROBLEMS


def _print_report(report: Report) -> None:
    style = "green" if report.ok else "red"
    _out.print(Text(f"Applied: {report}", style=style))


def apply(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking (cron, CI, Kubernetes).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the pass's report as JSON (implies no prompt).")
    ] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Register what the config file declares, then run one maintenance pass.

    Shows the plan and asks before doing anything; --yes skips the question (and is required
    when stdin is not a terminal: without it, apply refuses with exit code 2). The pass
    creates partitions ahead and applies retention under the lock budget; a table whose lock
    cannot be had is skipped and retried next time. Tenants from a tenants_query are read on
    every apply, so new ones are picked up. Exit 0 when every operation succeeded, 1 when some
    failed or were skipped (the report says why), 2 on config errors (nothing is run).

    Example (crontab): */10 * * * * partman apply --yes --config /etc/partman.toml
    """
    _setup_logging(log_level)
    if not (yes or as_json) and not sys.stdin.isatty():
        _fail(
            "apply asks for confirmation, but stdin is not a terminal; review with "
            "`partman plan`, then run `partman apply --yes` (always pass --yes in cron jobs, "
            "CI and Kubernetes)"
        )
    found = _settings(config, dsn)
    with _connect(_dsn(found)) as conn:
        resolution = _resolve(conn, found)
        preview = resolution.plan()
    if not as_json:
        if _out.is_terminal or not yes:
            order = [t.qualified_name for t in found.tables]
            _render_plan(_out, resolution.changes, preview, order)
        else:  # a cron job's mail: the summary (the JSON logs on stderr name every operation)
            _out.print(_plan_summary_line(resolution.changes, preview))
        asked = not yes and (resolution.changes or len(preview))
        if asked and not typer.confirm("Apply these changes?", default=False):
            _out.print("Nothing applied.")
            raise typer.Exit(PROBLEMS)
    progress = _Progress(len(preview)) if sys.stdout.isatty() and not as_json else None
    hook = progress.step if progress is not None else None
    # The pass reads the catalog and the metadata afresh and plans again: let the preview's
    # go first, so that a big database is not held twice while the pass runs.
    del preview
    resolution.state = snapshot.State(tables=(), tenants={}, owned={})
    resolution.catalog = {}
    with _manager(found, on_step=hook) as manager:
        sync_module.sync(manager, resolution)
        if progress is not None:
            with progress:
                report = manager.maintain()
        else:
            report = manager.maintain()
    if as_json:
        _print_json({"changes": [c.to_dict() for c in resolution.changes], **report.to_dict()})
    else:
        _print_report(report)
    raise typer.Exit(_report_exit(report))


app.command("apply")(apply)
app.command(
    "maintain",
    help="Same as `partman apply` (go_partman's name for one maintenance pass).",
)(apply)


@app.command("import")
def import_(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    table: TableOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Adopt the partitions that already exist in the config file's tables.

    A partition is adopted when its catalog bounds are exactly one period of the table's
    partition_interval for one tenant, whatever its name; adopted partitions are then kept
    and retired by the table's policy like the ones partman creates. Others are listed as
    misaligned or foreign and never touched. Tenants found are registered with the table's
    policy. Run it once before the first apply on tables that already have partitions.

    Example: partman import --table convoy.events
    """
    _setup_logging(log_level)
    found = _settings(config, dsn)
    specs = [s for s in found.tables if table is None or s.qualified_name == table]
    if table is not None and not specs:
        _fail(
            f"{table} is not a table of {found.file} (tables: "
            f"{', '.join(s.qualified_name for s in found.tables) or 'none'})"
        )
    with _connect(_dsn(found)) as conn:
        _resolve(conn, found)
    reports = []
    with _manager(found) as manager:
        for spec in specs:
            reports.append((spec.qualified_name, manager.import_existing_partitions(spec.table)))
    if as_json:
        _print_json(
            {
                "tables": [{"table": name, **r.to_dict()} for name, r in reports],
                "summary": {
                    "imported": sum(len(r.imported) for _, r in reports),
                    "already_owned": sum(len(r.already_owned) for _, r in reports),
                    "misaligned": sum(len(r.misaligned) for _, r in reports),
                    "foreign": sum(len(r.foreign) for _, r in reports),
                },
            }
        )
        return
    for name, r in reports:
        _out.print(Text(name, style="bold"))
        for f in r.imported:
            _out.print(Text(f"  + adopted {f.partition} {f.bound}", style="green"))
        for line in str(r).splitlines():
            _out.print(Text(f"  {line.strip()}"))


@app.command()
def partitions(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    table: TableOption = None,
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant.", show_default=False)
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Only the coverage per table and tenant.")
    ] = False,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """List the partitions of the managed tables, and how far ahead each is covered.

    Per table and tenant: partitions with their bounds, owner (created or adopted by
    partman, or foreign: never touched), row estimate and size (pg_total_relation_size),
    and the runway: until when a gap-free run of partitions covers from now. The config file
    is optional (only its partman section is read). Only reads.

    Example: partman partitions --table convoy.events --tenant project-acme
    """
    _setup_logging(log_level)
    found = _settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    with _connect(_dsn(found)) as conn:
        exists = status_module.metadata_exists(conn, meta)
        sizes = status_module.sizes(conn, meta) if exists else {}
    inventory = Inventory([], [])
    if exists:
        with _manager(found) as manager:
            inventory = manager.inventory(table=table, tenant=tenant)
    if as_json:
        _print_json(
            {
                "partitions": [
                    {**r.to_dict(), "size_bytes": sizes.get(r.partition)}
                    for r in inventory.partitions
                ],
                "coverage": [c.to_dict() for c in inventory.coverage],
                "table_sizes": {
                    t: sizes.get(t) for t in dict.fromkeys(c.table for c in inventory.coverage)
                },
            }
        )
        return
    if not exists or not inventory.coverage:
        _out.print("No managed tables yet: write a config file, then `partman apply`.")
        return
    for name in dict.fromkeys(c.table for c in inventory.coverage):
        size = sizes.get(name)
        _out.print(Text(f"{name}  ({_bytes(size)})" if size is not None else name, style="bold"))
        for c in [c for c in inventory.coverage if c.table == name]:
            who = "" if c.tenant is None else f"tenant {c.tenant}: "
            if c.covered_until is None:
                line = Text(f"  {who}{c.partitions} partition(s); now is NOT covered", "red")
            else:
                ahead = human_duration(c.runway_seconds)
                line = Text(
                    f"  {who}{c.partitions} partition(s), covered until {c.covered_until} "
                    f"({ahead} ahead)"
                )
            _out.print(line)
        if summary:
            continue
        grid = RichTable(box=None, pad_edge=False, show_edge=False)
        for column in ("tenant", "partition", "from", "to", "owner", "rows", "size"):
            grid.add_column(column, justify="right" if column in ("rows", "size") else "left")
        for r in [r for r in inventory.partitions if r.table == name]:
            rows = "?" if r.estimated_rows is None else str(r.estimated_rows)
            grid.add_row(
                escape(r.tenant or ""),
                escape(r.partition),
                "DEFAULT" if r.is_default else r.lower,
                "" if r.is_default else r.upper,
                r.owner if r.owner != "foreign" else "[yellow]foreign[/]",
                rows,
                _bytes(sizes.get(r.partition)),
            )
        _print_grid(grid)


def _print_grid(grid: RichTable) -> None:
    _out.print(grid, soft_wrap=False)


def _bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@app.command()
def status(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    runs: Annotated[int, typer.Option(help="How many recent runs to show.", min=1)] = 5,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """Last maintenance runs, recent problems, and tables running out of partitions.

    Exit 1 when the last run failed, or when a managed table (or tenant) is covered less than
    one partition_interval ahead of now (a partition_count of 0 asks for the current period
    only, so then only an uncovered now counts), or when partman was never set up here; 0
    otherwise. Failed or skipped operations of the last 24 hours are listed. Made for
    monitoring: `partman status --json` from a probe. Only reads.

    Example: partman status || alert "partitions need attention"
    """
    _setup_logging(log_level)
    found = _settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    now = RealClock().now()
    with _connect(_dsn(found)) as conn:
        if not status_module.metadata_exists(conn, meta):
            findings = [
                f"partman is not set up in this database (no metadata schema {meta}); "
                "run `partman apply`"
            ]
            if as_json:
                _print_json(
                    {
                        "ok": False,
                        "findings": findings,
                        "runs": [],
                        "problems": [],
                        "runway": [],
                        "tables": [],
                    }
                )
            else:
                _print_problems_text(findings)
            raise typer.Exit(PROBLEMS)
        last = status_module.last_runs(conn, meta, runs)
        problems = status_module.recent_problems(
            conn, meta, now - status_module.DEFAULT_PROBLEM_WINDOW
        )
        tables = status_module.managed_tables(conn, meta)
        policies = status_module.tenant_policies(conn, meta)
    with _manager(found) as manager:
        inventory = manager.inventory()
    short = status_module.short_runways(inventory.coverage, tables, policies)
    findings = []
    if last and last[0].failed:
        summary = last[0].summary
        findings.append(
            f"the last run ({last[0].started_at.isoformat()}) failed: "
            f"{summary.get('operations_failed', '?')} operation(s) failed"
        )
    findings += [r.message() for r in short]
    if as_json:
        _print_json(
            {
                "ok": not findings,
                "findings": findings,
                "runs": [r.to_dict() for r in last],
                "problems": [p.to_dict() for p in problems],
                "runway": [c.to_dict() for c in inventory.coverage],
                "short_runway": [r.to_dict() for r in short],
                "tables": [t.to_dict() for t in tables],
            }
        )
        raise typer.Exit(PROBLEMS if findings else OK)
    _out.print(Text("Last runs", style="bold"))
    if not last:
        _out.print("  none yet: run `partman apply`")
    for r in last:
        style = {"ok": "green", "partial": "yellow", "failed": "red"}.get(r.outcome or "", "")
        s = r.summary
        detail = (
            f"created {s.get('partitions_created', 0)}, retired {s.get('partitions_retired', 0)}, "
            f"failed {s.get('operations_failed', 0)}, skipped {s.get('operations_skipped', 0)}"
            if s
            else "unfinished (still running, or interrupted)"
        )
        _out.print(
            Text(f"  {r.started_at.isoformat()}  {r.outcome or '-':8} {detail}", style=style)
        )
    _out.print(Text(f"Tables ({len(tables)})", style="bold"))
    for t in tables:
        mine = [c for c in inventory.coverage if c.table == t.table]
        least = min(mine, key=lambda c: c.runway_seconds, default=None)
        ahead = (
            "no tenants"
            if least is None
            else f"least covered: {human_duration(least.runway_seconds)} ahead"
            + ("" if least.tenant is None else f" (tenant {least.tenant})")
        )
        _out.print(Text(f"  {t.table}: {t.interval} partitions, {t.tenants} tenant(s), {ahead}"))
    if problems:
        _out.print(Text("Problems in the last 24 hours", style="bold"))
        for p in problems:
            where = p.partition or p.table or ""
            _out.print(
                Text(
                    f"  {p.at.isoformat()}  {p.outcome} {p.operation} {where}: "
                    f"{p.error or p.reason or ''}",
                    style="red" if p.outcome == "failed" else "yellow",
                )
            )
    if findings:
        _print_problems_text(findings)
        raise typer.Exit(PROBLEMS)
    _out.print(Text("All well.", style="green"))


def _print_problems_text(findings: list[str]) -> None:
    for f in findings:
        _err.print(Text(f"problem: {f}", style="red"))


# -- tenants ---------------------------------------------------------------------------------

TableArgument = Annotated[str, typer.Argument(help='The table, as "schema.name".')]


def _table_spec(found: Settings, table: str) -> settings_module.TableSpec | None:
    return found.table(table)


@tenants_app.command("list")
def tenants_list(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    table: TableOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
) -> None:
    """List the registered tenants of each managed table with their policies.

    For each tenant: the retention, partition_count and retention_action it resolves to,
    and which of them are its own (the others are inherited from the table). With a config
    file, tenants it declares that are not registered yet are listed too. Only reads.

    Example: partman tenants list --table convoy.events --json
    """
    _setup_logging(log_level)
    found = _settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    with _connect(_dsn(found)) as conn:
        exists = status_module.metadata_exists(conn, meta)
        rows = status_module.tenant_policies(conn, meta, table) if exists else []
    registered = {(r.table, r.tenant) for r in rows}
    pending = [
        {"table": s.qualified_name, "tenant": str(t.tenant_id)}
        for s in found.tables
        if table is None or s.qualified_name == table
        for t in s.tenants
        if (s.qualified_name, str(t.tenant_id)) not in registered
    ]
    if as_json:
        _print_json(
            {
                "tenants": [
                    {**r.to_dict(), "in_config": _declared(found, r.table, r.tenant)} for r in rows
                ],
                "not_registered": pending,
            }
        )
        return
    if not rows and not pending:
        _out.print("No tenants registered.")
        return
    grid = RichTable(box=None, pad_edge=False, show_edge=False)
    for column in ("table", "tenant", "retention", "partition_count", "retention_action", "config"):
        grid.add_column(column)

    def mark(value: object, own: object) -> str:
        return f"{escape(str(value))}" + ("" if own is None else " [bold](own)[/]")

    for r in rows:
        grid.add_row(
            escape(r.table),
            escape(r.tenant),
            mark(r.retention, r.own_retention),
            mark(r.partition_count, r.own_partition_count),
            mark(r.retention_action, r.own_retention_action),
            "declared" if _declared(found, r.table, r.tenant) else "",
        )
    for p in pending:
        grid.add_row(
            escape(p["table"]),
            escape(p["tenant"]),
            "[yellow]not registered yet[/]",
            "",
            "",
            "config",
        )
    _print_grid(grid)


def _declared(found: Settings, table: str, tenant: str) -> bool:
    spec = found.table(table)
    return spec is not None and spec.tenant(tenant) is not None


RetentionOption = Annotated[
    str | None,
    typer.Option(
        "--retention-period",
        help='e.g. "7 days", "3 months"; "forever" keeps all; "inherit": the table\'s.',
        show_default=False,
    ),
]
CountOption = Annotated[
    str | None,
    typer.Option(
        "--partition-count",
        help='Partitions kept ahead, or "inherit".',
        show_default=False,
    ),
]
ActionOption = Annotated[
    str | None,
    typer.Option(
        "--retention-action",
        help='drop, detach or archive, or "inherit".',
        show_default=False,
    ),
]


def _policy_value(option: str, value: str | None, current: Any) -> Any:
    """An option's value: unchanged when not given, None for "inherit"."""
    if value is None:
        return current
    if value.strip().lower() == "inherit":
        return None
    if option == "--partition-count":
        try:
            return int(value)
        except ValueError:
            _fail(f"{option} {value!r}: give a whole number, or inherit")
    if option == "--retention-period" and value.strip().lower() == FOREVER:
        return FOREVER
    return value


def _tenant_target(found: Settings, table: str) -> Any:
    """What register_tenants takes: the file's Table (registered if need be), else the name."""
    spec = found.table(table)
    return spec.table if spec is not None else table


@tenants_app.command("add")
def tenants_add(
    table: TableArgument,
    tenant_ids: Annotated[list[str], typer.Argument(help="One or more tenant ids.")],
    retention_period: RetentionOption = None,
    partition_count: CountOption = None,
    retention_action: ActionOption = None,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Register tenants of a table, all of them or (on any bad id) none.

    Without policy options they inherit the table's; with them they get their own. Their
    partitions are created by the next `partman apply`. The table must be registered, or
    declared in the config file. Tenants the config file declares get the file's policy back
    on every apply: change those in the file instead.

    Example: partman tenants add convoy.events project-initech --retention-period "7 days"
    """
    _setup_logging(log_level)
    found = _settings(config, dsn, required=False)
    try:
        tenants = [
            Tenant(
                tenant_id=t,
                retention_period=_policy_value("--retention-period", retention_period, None),
                partition_count=_policy_value("--partition-count", partition_count, None),
                retention_action=_policy_value("--retention-action", retention_action, None),
            )
            for t in tenant_ids
        ]
    except PartmanError as error:
        _fail(str(error))
    with _connect(_dsn(found)), _manager(found) as manager:
        added = manager.register_tenants(_tenant_target(found, table), tenants)
    for t in added:
        _out.print(Text(f"+ tenant {t} of {table}", style="green"))
        _warn_declared(found, table, t)
    _out.print("Their partitions are created by the next `partman apply`.")


def _warn_declared(found: Settings, table: str, tenant: str) -> None:
    spec = found.table(table)
    if spec is not None and spec.tenant(tenant) is not None:
        _err.print(
            Text(
                f"note: {found.file} declares tenant {tenant} of {table}; the next apply sets "
                "the file's policy for it again (change it in the file to keep it)",
                style="yellow",
            )
        )


@tenants_app.command("set")
def tenants_set(
    table: TableArgument,
    tenant_id: Annotated[str, typer.Argument(help="The tenant id.")],
    retention_period: RetentionOption = None,
    partition_count: CountOption = None,
    retention_action: ActionOption = None,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Change the policy of one registered tenant; options not given stay as they are.

    "inherit" returns a field to the table's policy; --retention-period forever keeps all of
    the tenant's partitions. Takes effect on the next `partman apply`.

    Example: partman tenants set convoy.events project-acme --retention-period "90 days"
    """
    _setup_logging(log_level)
    if retention_period is None and partition_count is None and retention_action is None:
        _fail("nothing to set: give --retention-period, --partition-count or --retention-action")
    found = _settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    with _connect(_dsn(found)) as conn:
        rows = (
            status_module.tenant_policies(conn, meta, table)
            if status_module.metadata_exists(conn, meta)
            else []
        )
        current = next((r for r in rows if r.tenant == tenant_id), None)
        if current is None:
            _fail(
                f"tenant {tenant_id!r} of {table} is not registered; add it with "
                f"`partman tenants add {table} {tenant_id}`"
            )
        try:
            tenant = Tenant(
                tenant_id=tenant_id,
                retention_period=_policy_value(
                    "--retention-period", retention_period, current.own_retention
                ),
                partition_count=_policy_value(
                    "--partition-count", partition_count, current.own_partition_count
                ),
                retention_action=_policy_value(
                    "--retention-action", retention_action, current.own_retention_action
                ),
            )
        except PartmanError as error:
            _fail(str(error))
        with _manager(found) as manager:
            manager.register_tenants(table, [tenant])
        after = next(
            r for r in status_module.tenant_policies(conn, meta, table) if r.tenant == tenant_id
        )
    _out.print(
        Text(
            f"~ tenant {tenant_id} of {table}: retention {current.retention} -> "
            f"{after.retention}, partition_count {current.partition_count} -> "
            f"{after.partition_count}, retention_action {current.retention_action} -> "
            f"{after.retention_action}",
            style="yellow",
        )
    )
    _warn_declared(found, table, tenant_id)


@tenants_app.command("remove")
def tenants_remove(
    table: TableArgument,
    tenant_ids: Annotated[
        list[str] | None, typer.Argument(help="Tenant ids to stop managing.", show_default=False)
    ] = None,
    all_tenants: Annotated[
        bool,
        typer.Option("--all", help="Stop managing the table itself, with all its tenants."),
    ] = False,
    config: ConfigOption = None,
    dsn: DsnOption = None,
    log_level: LogLevelOption = None,
) -> None:
    """Stop managing tenants of a table (or, with --all, the table). Never drops data.

    Their partitions stay in place, and stay recorded as partman's: registering them again
    resumes where it left off. A tenant the config file declares, or its tenants_query
    returns, is registered again by the next apply: remove it there too. Exit 1 when one of
    them was not registered.

    Example: partman tenants remove convoy.events project-globex
    """
    _setup_logging(log_level)
    if bool(tenant_ids) == all_tenants:
        _fail("give tenant ids, or --all to stop managing the whole table (not both)")
    found = _settings(config, dsn, required=False)
    missing = 0
    with _connect(_dsn(found)), _manager(found) as manager:
        if all_tenants:
            if manager.remove_managed_table(table):
                _out.print(Text(f"- {table} is no longer managed (its partitions stay)", "red"))
            else:
                _err.print(f"{table} was not managed.")
                missing += 1
        for t in tenant_ids or []:
            if manager.remove_managed_table(table, t):
                _out.print(Text(f"- tenant {t} of {table} (its partitions stay)", style="red"))
            else:
                _err.print(f"tenant {t!r} of {table} was not registered.")
                missing += 1
    spec = found.table(table)
    if spec is not None:
        if all_tenants:
            back = f"declares {table}; the next apply registers it again"
        elif any(spec.tenant(t) for t in tenant_ids or []):
            back = "declares some of these tenants; the next apply registers them again"
        elif spec.tenants_query:
            back = "has a tenants_query for this table; the tenants it returns are registered "
            back += "again by the next apply"
        else:
            back = ""
        if back:
            _err.print(Text(f"note: {found.file} {back} (change the file too)", style="yellow"))
    raise typer.Exit(PROBLEMS if missing else OK)


# -- demo ------------------------------------------------------------------------------------


@app.command()
def demo(
    dsn: Annotated[
        str | None,
        typer.Option(
            help="Use this server instead of a throwaway embedded one (it must be empty)."
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Keep running: the web UI, JSON API and /metrics over sample tenants and data.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port (0 picks a free one).")] = 8080,
) -> None:
    """Run the go_partman guide's scenario on a throwaway PostgreSQL and print what happened.

    With --serve, bring the whole service up instead (scheduler, web UI, JSON API, metrics) on
    sample tenants and data, and keep it running until Ctrl-C.

    Example: partman demo --serve --port 8080, then open http://127.0.0.1:8080/
    """
    if serve:
        from ..demo.service import run_demo_server

        run_demo_server(host, port, dsn=dsn)
        return
    from ..demo import scenario

    scenario.run(dsn)


@app.command()
def run(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    host: Annotated[
        str | None, typer.Option(help="Listen address (overrides [service] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (overrides [service] port; 0 picks a free one).")
    ] = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run partman as a service: maintenance every sample_rate, web UI, JSON API, /metrics.

    Before every pass the config file is synced into partman's metadata (tables, declared
    tenants, tenants_query), as `partman apply` does. Several replicas may run at once: one
    leads (an advisory lock) and does the work, the others serve the API and take over if it
    dies. The [service] section sets host, port, token (needed by every request that changes
    something; ${ENV_VAR} works) and the rest of partman.service.ServiceOptions. Stops
    gracefully on SIGTERM, letting a pass under way finish.

    Example: PARTMAN_TOKEN=s3cret partman run --config partman.toml   (token = "${PARTMAN_TOKEN}")
    """
    from ..service import ServiceOptions, serve

    _setup_logging(log_level)
    found = _settings(config, dsn)
    url = _dsn(found)
    with _connect(url) as conn:
        _resolve(conn, found)  # a broken file or table fails now, before anything is served
    values = dict(found.service)
    if host is not None:
        values["host"] = host
    if port is not None:
        values["port"] = port
    try:
        options = ServiceOptions(**values)
    except (TypeError, ValueError, PartmanError) as error:
        _fail(f"[service] in {found.file}: {error}")

    def prepare(manager: Manager) -> None:
        with psycopg.connect(url, autocommit=True, connect_timeout=15) as c:
            resolution = sync_module.resolve(c, found, manager.clock.now())
        sync_module.sync(manager, resolution)

    serve(url, config=found.config, options=options, prepare=prepare)


def main() -> None:
    try:
        app()
    except SettingsError as error:
        _print_problems(error.problems)
        raise SystemExit(USAGE) from None
    except PartmanError as error:
        _err.print(f"[bold red]error:[/] {escape(str(error))}")
        raise SystemExit(USAGE) from None
    except psycopg.OperationalError as error:
        _err.print(f"[bold red]error:[/] database: {escape(first_line(error))}")
        raise SystemExit(USAGE) from None
