"""The `partman` command line: a config file (partman.toml), plan then apply, as cron jobs,
Kubernetes CronJobs and systemd timers want it. See docs/cli.md for a walkthrough.

This module assembles the Typer app from the command groups (setup, plan, inventory,
tenants, service), in the order `partman --help` lists them, and turns the errors a command
lets escape into exit code 2. `--json` on every read command prints one JSON document on
stdout; logs go to stderr.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from ..errors import PartmanError
from ..model.text import first_line
from ..settings import SettingsError
from . import archive, convert, indexes, inventory, plan, service, setup, tenants, unpartition
from .common import FLAG, USAGE, err, print_problems


class _Group(TyperGroup):
    """`--help` drawn as the flag it is (typer's help would show `--help <bool>`)."""

    def get_help_option(self, ctx: Any) -> Any:
        return _flag(super().get_help_option(ctx))


class _Command(TyperCommand):
    """`--help` drawn as the flag it is (typer's help would show `--help <bool>`)."""

    def get_help_option(self, ctx: Any) -> Any:
        return _flag(super().get_help_option(ctx))


def _flag(option: Any) -> Any:
    if option is not None:
        option.metavar = FLAG
    return option


app = typer.Typer(
    cls=_Group,
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
    cls=_Group,
    help="List, add, set the policy of, or remove tenants of a multi-tenant table.",
    no_args_is_help=True,
)
app.add_typer(tenants_app, name="tenants")
index_app = typer.Typer(
    cls=_Group,
    help="Build an index on a partitioned table without blocking writes, or list its indexes.",
    no_args_is_help=True,
)
app.add_typer(index_app, name="index")
archive_app = typer.Typer(
    cls=_Group,
    help="List the partitions retention exported to Parquet (retention_action export).",
    no_args_is_help=True,
)
app.add_typer(archive_app, name="archive")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"partman {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            is_flag=True,
            metavar=FLAG,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """partman: PostgreSQL partitions created ahead, trimmed behind, on a lock budget."""


app.command(cls=_Command)(setup.init)
app.command(cls=_Command)(setup.check)
app.command(cls=_Command)(plan.plan)
app.command("apply", cls=_Command)(plan.apply)
app.command(
    "maintain",
    cls=_Command,
    help="Same as `partman apply` (go_partman's name for one maintenance pass).",
)(plan.apply)
app.command("import", cls=_Command)(plan.import_)
app.command(cls=_Command)(inventory.partitions)
app.command(cls=_Command)(inventory.status)
tenants_app.command("list", cls=_Command)(tenants.list_)
tenants_app.command("add", cls=_Command)(tenants.add)
tenants_app.command("set", cls=_Command)(tenants.set_)
tenants_app.command("remove", cls=_Command)(tenants.remove)
index_app.command("create", cls=_Command)(indexes.create)
index_app.command("list", cls=_Command)(indexes.list_)
archive_app.command("list", cls=_Command)(archive.list_)
app.command("restore", cls=_Command)(archive.restore)
app.command("convert", cls=_Command)(convert.convert)
app.command("unpartition", cls=_Command)(unpartition.unpartition)
app.command(cls=_Command)(service.demo)
app.command(cls=_Command)(service.run)


def main() -> None:
    try:
        app()
    except SettingsError as error:
        print_problems(error.problems)
        raise SystemExit(USAGE) from None
    except PartmanError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
        raise SystemExit(USAGE) from None
    except psycopg.OperationalError as error:
        err.print(f"[bold red]error:[/] database: {escape(first_line(error))}")
        raise SystemExit(USAGE) from None
