"""The connection string's secrets: a DSN libpq cannot read is refused without quoting it,
and whatever partman writes about a connection can be rid of its password.

libpq quotes the piece of a connection string it cannot read in its complaint (`unexpected
spaces found in "pw secret"`, `missing "=" after "s3cret"`): passed on as it is, that line
would put the password in a log, an API answer or a terminal.
"""

from __future__ import annotations

import re
import urllib.parse

import psycopg
from psycopg import conninfo

from ..errors import ConfigError

_QUOTED = re.compile(r'"([^"]*)"')
MASK = "***"


def _keywords() -> frozenset[str]:
    return frozenset(
        option.keyword.decode() for option in psycopg.pq.Conninfo.get_defaults() if option.keyword
    )


def check_dsn(dsn: str) -> None:
    """A ConfigError, before anything connects, for a connection string libpq cannot read;
    its message keeps libpq's words and option names, never a value."""
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as error:
        keywords = _keywords()

        def masked(m: re.Match[str]) -> str:
            return m.group(0) if m.group(1) in keywords or len(m.group(1)) <= 1 else f'"{MASK}"'

        why = _QUOTED.sub(masked, str(error).strip().splitlines()[0] if str(error) else "")
        raise ConfigError(
            f"the database connection string cannot be read: {why} (values are not shown; "
            "check its quoting and percent-encoding, e.g. a space in a URI is %20)",
            field="dsn",
        ) from None


def secrets_of(dsn: str) -> tuple[str, ...]:
    """The DSN's password, as given and as a URI writes it (percent-encoded): what no line
    partman writes may contain. Empty when the DSN has none (or cannot be read)."""
    try:
        password = conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return ()
    if not isinstance(password, str) or not password:
        return ()
    return tuple(dict.fromkeys((password, urllib.parse.quote(password, safe=""))))
