"""partman.toml, the command line's config file, read into `Config`, `Table` and `Tenant`.

    [database]
    dsn = "${DATABASE_URL}"              # --dsn / PARTMAN_DSN win over this

    [partman]                            # partman.Config; durations like "250ms", "1 minute"
    lock_timeout = "250ms"
    timezone = "UTC"

    [[table]]                            # partman.Table, field for field
    name = "events"
    schema = "convoy"
    tenant_id_column = "project_id"
    partition_by = "created_at"
    partition_interval = "1 day"
    retention_period = "30 days"         # "forever" keeps every partition
    partition_count = 10
    tenants = ["project-acme"]           # tenants with the table's policy
    tenants_query = "SELECT uid FROM convoy.projects"   # more, read on every apply

    [[table.tenant]]                     # a tenant with a policy of its own
    id = "project-globex"
    retention_period = "7 days"

String values may name environment variables: `${NAME}`, or `${NAME:-fallback}`; `$${` is a
literal `${`. Reading never touches a database. Every problem in the file is found at once and
reported as `file:line: key: message`; `load()` returns only when there is none. The text is
parsed here; its sections are read by `mapping`, as a framework's settings are.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from .locator import Locator
from .mapping import Reader, Settings, read_sections
from .problems import Problem

DEFAULT_PATH = Path("partman.toml")


def parse(
    text: str,
    *,
    file: str = str(DEFAULT_PATH),
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file's text. Problems are collected in `Settings.problems` (everything
    that could be read is still returned, so `partman check` can look at the rest); `dsn`, when
    given, wins over [database] dsn, which is then not even expanded."""
    env = os.environ if environ is None else environ
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        m = re.search(r"\(at line (\d+), column \d+\)$", message)
        line = int(m.group(1)) if m else None
        message = message[: m.start()].strip() if m else message
        return Settings(file=file, dsn=dsn, problems=(Problem(file, line, "", message),))
    return read_sections(data, Reader(file, Locator(text), env), dsn)


def read(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file; problems (including a missing file) are in `Settings.problems`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problem = Problem(str(path), None, "", "no such config file")
        return Settings(file=str(path), dsn=dsn, problems=(problem,))
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(str(path), None, "", f"cannot read: {error}")
        return Settings(file=str(path), dsn=dsn, problems=(problem,))
    return parse(text, file=str(path), environ=environ, dsn=dsn)


def load(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a config file, or raise SettingsError listing every problem in it."""
    return read(path, environ=environ, dsn=dsn).raise_for_problems()
