"""`partman init` and `partman check`: get a database ready, and see whether the config file
fits it, before anything is planned."""

from __future__ import annotations

import functools
from typing import Any

import typer
from rich.text import Text

from .. import settings as settings_module
from ..db import privileges as privileges_db
from ..decide import privileges, validate
from ..engine import sync as sync_module
from ..model.clock import RealClock
from ..settings import Problem, Settings
from . import declared_indexes, fleet
from .common import (
    OK,
    PROBLEMS,
    ConfigOption,
    DatabaseOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    config_path,
    connect,
    fail,
    open_manager,
    out,
    print_json,
    read_settings,
    require_dsn,
    setup_logging,
)


def init(
    config: ConfigOption = None, dsn: DsnOption = None, log_level: LogLevelOption = None
) -> None:
    """Create or upgrade partman's metadata schema (partman_meta) in the database.

    Every other writing command does this on first use too; run it on its own to give a
    deploy step the one DDL that needs schema privileges. A config file is optional (only
    metadata_schema is read from it).

    Example: partman init --dsn postgresql://partman@db/app
    """
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    with connect(require_dsn(found)), open_manager(found) as manager:
        version = manager.init()
    out.print(f"partman's metadata schema {found.config.metadata_schema} is at version {version}.")


def check(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    as_json: JsonOption = False,
    log_level: LogLevelOption = None,
    database: DatabaseOption = None,
) -> None:
    """Validate the config file, and check it against the live database.

    Lists every problem at once, each at its file:line and key with the fix: unknown or
    misspelled keys, wrong types, bad intervals, tables that do not exist or are not
    partitioned as declared, tenant ids the tenant column cannot hold, a tenants_query that
    fails. Only reads (SELECTs in READ ONLY transactions). Warnings (legal but likely not
    meant, such as a retention_period shorter than the partition_interval, a short interval
    whose partitions would number in the thousands per tenant, or an environment variable
    only `partman run` needs that is not set) are listed and do not fail the check.
    Exit 0 when all is well, 1 when there are problems, 2 when it cannot run (no config file,
    no database).

    Also lists each privilege the DSN's role lacks for what partman will do to the tables
    (creating and attaching partitions, retention, its metadata), with the GRANT that gives it.

    With [[databases]] in the file (and no problem in it), each database in turn (or
    --database NAME), each checked against its own server.

    Example: partman check --config /etc/partman.toml
    """
    setup_logging(log_level)
    path = config_path(config)
    if path is None:
        read_settings(config, dsn)  # fails with the message
        return
    found = settings_module.read(path, dsn=dsn)
    if found.databases and not found.problems_for():
        found = read_settings(config, dsn, database=database)  # one of them, if chosen
        if found.databases:
            raise typer.Exit(
                fleet.each(found, functools.partial(_check, as_json=as_json), as_json=as_json)
            )
    _check(found, as_json=as_json)


def _check(found: Settings, *, as_json: bool) -> None:
    problems = list(found.problems_for())
    warnings = [*found.unset, *validate.warnings(found)]
    tables: list[dict[str, Any]] = []
    tenants: dict[str, int] = {}  # a tenant declared and returned by tenants_query is one
    if found.dsn:
        with connect(found.dsn) as conn:
            resolution = sync_module.resolve(conn, found, RealClock().now(), problems=problems)
            # the declared indexes, once the tables themselves are right
            wrong = (
                []
                if resolution.problems
                else declared_indexes.problems(found, declared_indexes.preview(conn, found))
            )
            missing = privileges.findings(
                privileges_db.read(
                    conn,
                    found.config.metadata_schema,
                    privileges.needs(resolution.future_state()),
                )
            )
        problems = resolution.problems + wrong + [_placed(found, f) for f in missing]
        problems = sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        for r in resolution.tables:
            tenants[r.spec.qualified_name] = len({*r.declared, *r.queried})
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
        fail(
            "no database to check against: pass --dsn, set PARTMAN_DSN, or write dsn in the "
            "file's database section"
        )
    if as_json:
        print_json(
            {
                "ok": not problems,
                "file": found.file,
                "problems": [p.to_dict() for p in problems],
                "warnings": [p.to_dict() for p in warnings],
                "tables": tables,
            }
        )
    else:
        for t in tables:
            state = "registered" if t["registered"] else "not registered yet"
            out.print(
                Text(
                    f"ok  {t['table']} ({state}; {tenants[t['table']]} tenant(s) from the file)",
                    "green",
                )
            )
        for w in warnings:
            out.print(Text(f"warning: {w}", style="yellow"))
        for p in problems:
            out.print(Text(str(p), style="red"))
        if problems:
            unchecked = "" if found.dsn else " (not checked against a database: no DSN)"
            out.print(f"{len(problems)} problem(s){unchecked}.")
        elif warnings:
            out.print(f"{found.file}: no problems, {len(warnings)} warning(s).")
        else:
            out.print(f"{found.file}: no problems.")
    raise typer.Exit(PROBLEMS if problems else OK)


def _placed(found: Settings, finding: privileges.Finding) -> Problem:
    """A missing privilege as a problem of the file: at its table's entry, or at
    metadata_schema for the metadata's (and the database's)."""
    spec = found.table(finding.table) if finding.table is not None else None
    if spec is not None:
        return found.problem(spec.path, str(finding))
    where = ("partman", "metadata_schema") if finding.table is None else ()
    return found.problem(where, str(finding))
