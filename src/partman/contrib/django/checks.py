"""partman's system checks, so that `manage.py check` (and every command that runs checks)
says what is wrong before anything runs.

* partman.E001 (every command): the PARTMAN block does not validate, one error per problem,
  each naming the key and the fix (partman.toml's own messages).
* partman.E002 (every command): the database it names cannot be partman's (unknown alias,
  not PostgreSQL, incomplete settings).
* partman.W001 (`check --database ALIAS`, and `migrate`): a tenant's partitions reach less
  than half its premake ahead: maintenance has stopped running.
* partman.W002 (same): the block does not fit the database (a table missing or shaped
  otherwise, a tenants_query that fails); `manage.py partman plan` refuses on these.
* partman.W003 (same): the database could not be read; the runway check did not run.

The database checks only warn: `migrate` runs them before it creates the tables they look
at, and an unreachable database must never turn into an error (or a traceback) at startup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from django.core import checks

from partman.cli.render import ids_text, runway_text
from partman.decide.coverage import Runway
from partman.model.clock import RealClock
from partman.model.keys import IdInterval
from partman.model.text import first_line

from . import conf, database
from .survey import survey

APPLY_HINT = "run manage.py partman apply or partman run"
FIT_HINT = (
    "manage.py partman plan and apply refuse to run until this is fixed (a table that a "
    "migration creates is there once manage.py migrate has run)"
)


@checks.register()
def check_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """E001 and E002: the block and its database alias, without connecting."""
    block = conf.load()
    out: list[checks.CheckMessage] = [
        checks.Error(p.message, obj=conf.key_of(p), id="partman.E001") for p in block.problems
    ]
    try:
        database.conninfo(block.alias)
    except database.DatabaseSetupError as error:
        out.append(
            checks.Error(
                str(error),
                obj=f'{conf.SETTING}["DATABASE"]',
                hint="a test settings module on another database can silence it: "
                'SILENCED_SYSTEM_CHECKS = ["partman.E002"]',
                id="partman.E002",
            )
        )
    return out


@checks.register(checks.Tags.database)
def check_runway(
    app_configs: Sequence[Any] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """W001-W003 against the database, when checks are asked to look at its alias."""
    block = conf.load()
    if not databases or block.alias not in databases or not block.ok:
        return []  # an unusable block is check_settings' to report
    try:
        dsn = database.conninfo(block.alias)
    except database.DatabaseSetupError:
        return []
    try:
        with database.connect(block.alias, dsn, block.settings.config.application_name) as conn:
            found = survey(conn, block.settings, RealClock().now())
    except (database.DatabaseUnavailableError, psycopg.Error) as error:
        return [
            checks.Warning(
                f"partman could not look at the database: {first_line(error)}",
                obj=f"DATABASES[{block.alias!r}]",
                hint="partman's runway check did not run; it runs again with the next check",
                id="partman.W003",
            )
        ]
    out: list[checks.CheckMessage] = [
        checks.Warning(p.message, obj=conf.key_of(p), hint=FIT_HINT, id="partman.W002")
        for p in found.problems
    ]
    out += [
        checks.Warning(
            _short_message(r.runway),
            obj=r.runway.coverage.table,
            hint=APPLY_HINT,
            id="partman.W001",
        )
        for r in found.short
    ]
    return out


def _short_message(r: Runway) -> str:
    """W001's words (its object is the table): tenant and runway (an id table's in ids)."""
    c = r.coverage
    who = "the table" if c.tenant is None else f"tenant {c.tenant!r}"
    by_id = isinstance(r.interval, IdInterval)
    size = ids_text(r.interval.width) if isinstance(r.interval, IdInterval) else r.interval
    premake = f"its premake of {r.partition_count} x {size}"
    if c.covered_until is None:
        now = "the newest id" if by_id else "now"
        return (
            f"{who}: runway 0, no partition covers {now} ({premake}); inserts fail, or go "
            "to a default partition"
        )
    return (
        f"{who}: runway {runway_text(c)} (partitions until {c.covered_until}), less than "
        f"half {premake}"
    )
