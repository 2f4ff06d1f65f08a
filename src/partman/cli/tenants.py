"""`partman tenants list | add | set | remove`: the tenants of a multi-tenant table, managed
from the command line (for tenants the config file does not declare)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from ..db import reads
from ..errors import PartmanError
from ..model.config import FOREVER, Tenant
from ..settings import Settings, retention_text_value
from .common import (
    FLAG,
    OK,
    PROBLEMS,
    ConfigOption,
    DsnOption,
    JsonOption,
    LogLevelOption,
    TableOption,
    connect,
    err,
    fail,
    open_manager,
    out,
    print_grid,
    print_json,
    read_settings,
    require_dsn,
    setup_logging,
)
from .names import did_you_mean, known_tables, managed_tables, not_managed, require_managed

TableArgument = Annotated[str, typer.Argument(help='The table, as "schema.name".')]
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


def list_(
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
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    with connect(require_dsn(found)) as conn:
        if table is not None and table not in (known := known_tables(conn, found)):
            fail(not_managed(table, found, known))
        exists = reads.metadata_exists(conn, meta)
        rows = reads.tenant_policies(conn, meta, table) if exists else []
    registered = {(r.table, r.tenant) for r in rows}
    pending = [
        {"table": s.qualified_name, "tenant": str(t.tenant_id)}
        for s in found.tables
        if table is None or s.qualified_name == table
        for t in s.tenants
        if (s.qualified_name, str(t.tenant_id)) not in registered
    ]
    if as_json:
        print_json(
            {
                "tenants": [
                    {**r.to_dict(), "in_config": _declared(found, r.table, r.tenant)} for r in rows
                ],
                "not_registered": pending,
            }
        )
        return
    if not rows and not pending:
        out.print("No tenants registered.")
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
            mark(_retention_words(r.retention), r.own_retention),
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
    print_grid(grid)


def _retention_words(stored: str) -> str:
    """A retention as the metadata stores it, for people: an id distance's digits as
    "5000 ids" (what `tenants set --retention-period` takes back)."""
    return f"{stored} ids" if stored.isdigit() else stored


def _declared(found: Settings, table: str, tenant: str) -> bool:
    spec = found.table(table)
    return spec is not None and spec.tenant(tenant) is not None


def _warn_declared(found: Settings, table: str, tenant: str) -> None:
    """The file's policy wins on the next apply: say so where a command set another."""
    if _declared(found, table, tenant):
        err.print(
            Text(
                f"note: {found.file} declares tenant {tenant} of {table}; the next apply sets "
                "the file's policy for it again (change it in the file to keep it)",
                style="yellow",
            )
        )


def _policy_value(option: str, value: str | None, current: Any) -> Any:
    """An option's value: unchanged when not given, None for "inherit"."""
    if value is None:
        if option == "--retention-period" and isinstance(current, str):
            return retention_text_value(current)  # as stored: an id distance is its digits
        return current
    if value.strip().lower() == "inherit":
        return None
    if option == "--partition-count":
        try:
            return int(value)
        except ValueError:
            fail(f"{option} {value!r}: give a whole number, or inherit")
    if option == "--retention-period" and value.strip().lower() == FOREVER:
        return FOREVER
    if option == "--retention-period":
        return retention_text_value(value)  # an id table's distance: "5000" or "5000 ids"
    return value


def _tenant_target(found: Settings, table: str) -> Any:
    """What register_tenants takes: the file's Table (registered if need be), else the name."""
    spec = found.table(table)
    return spec.table if spec is not None else table


def add(
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
    setup_logging(log_level)
    found = read_settings(config, dsn, required=False)
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
        fail(str(error))
    with connect(require_dsn(found)) as conn:
        if found.table(table) is None:
            require_managed(conn, found, table)
    with open_manager(found) as manager:
        added = manager.register_tenants(_tenant_target(found, table), tenants)
    for t in added:
        out.print(Text(f"+ tenant {t} of {table}", style="green"))
        _warn_declared(found, table, t)
    out.print("Their partitions are created by the next `partman apply`.")


def set_(
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
    setup_logging(log_level)
    if retention_period is None and partition_count is None and retention_action is None:
        fail("nothing to set: give --retention-period, --partition-count or --retention-action")
    found = read_settings(config, dsn, required=False)
    meta = found.config.metadata_schema
    with connect(require_dsn(found)) as conn:
        if found.table(table) is None:  # the file's: `tenants add` registers it
            require_managed(conn, found, table)
        rows = reads.tenant_policies(conn, meta, table) if reads.metadata_exists(conn, meta) else []
        current = next((r for r in rows if r.tenant == tenant_id), None)
        if current is None:
            fail(
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
            fail(str(error))
        with open_manager(found) as manager:
            manager.register_tenants(table, [tenant])
        after = next(r for r in reads.tenant_policies(conn, meta, table) if r.tenant == tenant_id)
    changed = [
        _change(name, getattr(current, name), getattr(after, name), getattr(current, own), own_now)
        for name, own, own_now in (
            ("retention", "own_retention", after.own_retention),
            ("partition_count", "own_partition_count", after.own_partition_count),
            ("retention_action", "own_retention_action", after.own_retention_action),
        )
        if (getattr(current, name), getattr(current, own)) != (getattr(after, name), own_now)
    ]
    what = ", ".join(changed) or "no change (it already had this policy)"
    out.print(Text(f"~ tenant {tenant_id} of {table}: {what}", style="yellow"))
    _warn_declared(found, table, tenant_id)


def _change(name: str, before: object, now: object, own_before: object, own_now: object) -> str:
    """ "retention 30 days -> 7 days", with where each comes from when only that changed."""
    if name == "retention" and isinstance(before, str) and isinstance(now, str):
        before, now = _retention_words(before), _retention_words(now)
    if before != now:
        return f"{name} {before} -> {now}"
    where = {True: "its own", False: "the table's"}
    return f"{name} {now} ({where[own_before is not None]} -> {where[own_now is not None]})"


def remove(
    table: TableArgument,
    tenant_ids: Annotated[
        list[str] | None, typer.Argument(help="Tenant ids to stop managing.", show_default=False)
    ] = None,
    all_tenants: Annotated[
        bool,
        typer.Option(
            "--all", metavar=FLAG, help="Stop managing the table itself, with all its tenants."
        ),
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
    setup_logging(log_level)
    if bool(tenant_ids) == all_tenants:
        fail("give tenant ids, or --all to stop managing the whole table (not both)")
    found = read_settings(config, dsn, required=False)
    missing = 0
    with connect(require_dsn(found)) as conn:
        known = known_tables(conn, found)
        managed = managed_tables(conn, found)
    hint = "" if table in managed else f" ({table} is not managed{did_you_mean(table, known)})"
    with open_manager(found) as manager:
        if all_tenants:
            if manager.remove_managed_table(table):
                out.print(Text(f"- {table} is no longer managed (its partitions stay)", "red"))
            else:
                err.print(f"{table} was not managed{did_you_mean(table, known)}.")
                missing += 1
        for t in tenant_ids or []:
            if manager.remove_managed_table(table, t):
                out.print(Text(f"- tenant {t} of {table} (its partitions stay)", style="red"))
            else:
                err.print(f"tenant {t!r} of {table} was not registered{hint}.")
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
            err.print(Text(f"note: {found.file} {back} (change the file too)", style="yellow"))
    raise typer.Exit(PROBLEMS if missing else OK)
