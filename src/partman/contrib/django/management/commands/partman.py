"""`manage.py partman plan | apply | status [--json]`: the PARTMAN block, applied.

The same steps as the `partman` command line with a partman.toml: the block is resolved
against the database (`partman.engine.sync.resolve`: read-only, every problem found at
once), `plan` shows what `apply` would change, `apply` registers the block in partman's
metadata (`partman.engine.sync.sync`) then runs one maintenance pass, `status` shows each
table's and tenant's runway. Exit codes follow the command line's: 0 ok, 1 problems found (a
failed or skipped operation, a tenant short of runway), 2 nothing was run (the block or the
database is wrong).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import psycopg
from django.core import checks
from django.core.management.base import BaseCommand, CommandError, CommandParser

from partman import Manager, PartmanError
from partman.cli.render import apply_json, plan_json
from partman.db import reads as status_module
from partman.engine import sync as sync_module
from partman.engine.world import read_positions
from partman.model.clock import RealClock
from partman.settings import Problem

from ... import conf, database, render
from ...survey import survey

OK, PROBLEMS, NOT_RUN = 0, 1, 2
# Django's own options, accepted after the action too (`manage.py partman apply --settings=...
# --skip-checks`), as every other command accepts them anywhere. SUPPRESS: given or absent,
# never a subparser default overwriting what was given before the action.
_DJANGO_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-v", "--verbosity"), {"type": int, "choices": [0, 1, 2, 3]}),
    (("--settings",), {}),
    (("--pythonpath",), {}),
    (("--traceback",), {"action": "store_true"}),
    (("--no-color",), {"action": "store_true"}),
    (("--force-color",), {"action": "store_true"}),
    (("--skip-checks",), {"action": "store_true"}),
]


class Command(BaseCommand):
    help = (
        "Partitions of the tables in settings.PARTMAN: plan shows what apply would do, apply "
        "registers the block and runs one maintenance pass, status shows how far ahead each "
        "tenant is covered."
    )
    # The default, "__all__", runs the checks that need no database before any action
    # (partman.E001, E002): a broken block stops here with partman's messages.

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="{plan,apply,status}")
        actions.required = True
        plan = actions.add_parser(
            "plan",
            help="Show what apply would change (tables, tenants, partitions), changing nothing.",
        )
        plan.add_argument("--sql", action="store_true", help="Show each operation's SQL.")
        plan.add_argument("--json", action="store_true", help="Print one JSON document.")
        apply = actions.add_parser(
            "apply",
            help="Register settings.PARTMAN in partman's metadata, then run one maintenance "
            "pass (create ahead, apply retention).",
        )
        apply.add_argument("--json", action="store_true", help="Print the pass's report as JSON.")
        status = actions.add_parser(
            "status",
            help="Per table and tenant: partitions, runway, rows in the default partition.",
        )
        status.add_argument("--json", action="store_true", help="Print one JSON document.")
        for action in (plan, apply, status):
            for flags, kwargs in _DJANGO_OPTIONS:
                action.add_argument(
                    *flags, default=argparse.SUPPRESS, help=argparse.SUPPRESS, **kwargs
                )

    def handle(self, *args: Any, **options: Any) -> None:
        block = conf.load()
        if not block.ok:  # reached with --skip-checks
            raise CommandError(
                _problems("settings.PARTMAN is not valid", block.problems), returncode=NOT_RUN
            )
        try:
            dsn = database.conninfo(block.alias)
        except database.DatabaseSetupError as error:
            raise CommandError(str(error), returncode=NOT_RUN) from None
        action = options["action"]
        if action != "apply" and not options.get("skip_checks"):
            # partman.W001-W003 for this database, on stderr (apply is their cure)
            self.check(tags=[checks.Tags.database], databases=[block.alias])
        self.color = bool(options.get("force_color")) or (
            not options.get("no_color") and self.stdout.isatty()
        )
        try:
            getattr(self, f"_{action}")(block, dsn, options)
        except database.DatabaseUnavailableError as error:
            raise CommandError(str(error), returncode=NOT_RUN) from None
        except psycopg.Error as error:  # e.g. a permission partman's role lacks
            raise CommandError(f"database: {str(error).strip()}", returncode=NOT_RUN) from None
        except PartmanError as error:
            raise CommandError(str(error), returncode=NOT_RUN) from None

    # -- actions ---------------------------------------------------------------------------

    def _resolve(self, block: conf.Block, dsn: str) -> sync_module.Resolution:
        settings = block.settings
        with database.connect(block.alias, dsn, settings.config.application_name) as conn:
            resolution = sync_module.resolve(conn, settings, RealClock().now())
            if not resolution.problems:  # an id table's plan starts at its newest id
                state = resolution.future_state()
                read_positions(conn, state, resolution.catalog, settings.config.tz)
        if resolution.problems:
            raise CommandError(
                _problems(
                    "settings.PARTMAN does not fit the database; nothing was run",
                    resolution.problems,
                ),
                returncode=NOT_RUN,
            )
        return resolution

    def _plan(self, block: conf.Block, dsn: str, options: dict[str, Any]) -> None:
        resolution = self._resolve(block, dsn)
        plan = resolution.plan()
        if options["json"]:
            self._json(plan_json(resolution.changes, plan))
            return
        order = [t.qualified_name for t in block.settings.tables]
        self._draw(render.plan_text(resolution.changes, plan, order, options["sql"]))

    def _apply(self, block: conf.Block, dsn: str, options: dict[str, Any]) -> None:
        resolution = self._resolve(block, dsn)
        with Manager(dsn, config=block.settings.config) as manager:
            changes = sync_module.sync(manager, resolution)
            report = manager.maintain()
        if options["json"]:
            self._json(apply_json(changes, report))
        else:
            order = [t.qualified_name for t in block.settings.tables]
            detail = options.get("verbosity", 1) > 0
            self._draw(render.apply_text(changes, report, order, detail=detail))
        if not report.ok:
            raise CommandError(
                f"{len(report.failed)} operation(s) failed, {len(report.skipped)} skipped "
                "(see above); the next pass retries them",
                returncode=PROBLEMS,
            )

    def _status(self, block: conf.Block, dsn: str, options: dict[str, Any]) -> None:
        settings = block.settings
        meta = settings.config.metadata_schema
        with database.connect(block.alias, dsn, settings.config.application_name) as conn:
            found = survey(conn, settings, RealClock().now())
            runs = (
                status_module.last_runs(conn, meta, 1)
                if status_module.metadata_exists(conn, meta)
                else []
            )
        last = runs[0] if runs else None
        for p in found.problems:
            self.stderr.write(conf.describe(p))
        if options["json"]:
            self._json(render.status_json(found, last))
        else:
            self._draw(render.status_text(found, last))
        if found.short:
            raise CommandError(
                f"{len(found.short)} table/tenant(s) short of runway: run manage.py partman "
                "apply or partman run",
                returncode=PROBLEMS,
            )

    # -- output ----------------------------------------------------------------------------

    def _draw(self, draw: render.Draw) -> None:
        self.stdout.write(render.capture(draw, color=self.color), ending="")

    def _json(self, value: Any) -> None:
        self.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def _problems(head: str, problems: tuple[Problem, ...] | list[Problem]) -> str:
    return "\n".join([f"{head}:", *(f"  {conf.describe(p)}" for p in problems)])
