"""The `partman` command line. Today: `demo`; the config-file commands build on the same Manager."""

from __future__ import annotations

from typing import Annotated

import typer

from .errors import PartmanError

app = typer.Typer(
    help="partman: PostgreSQL partitions created ahead, trimmed behind, on a lock budget.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Keep `demo` a sub-command even while it is the only one."""


@app.command()
def demo(
    dsn: Annotated[
        str | None,
        typer.Option(
            help="Use this server instead of a throwaway embedded one (it must be empty)."
        ),
    ] = None,
) -> None:
    """Run the go_partman guide's scenario on a throwaway PostgreSQL and print what happened."""
    from . import demo as scenario

    scenario.run(dsn)


def main() -> None:
    try:
        app()
    except PartmanError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
