"""The database partman works on: a DATABASES alias's, as a libpq connection string.

Django already knows how to reach the database (NAME, USER, HOST, OPTIONS, a service file...);
its backend's `get_connection_params()` turns that into libpq parameters, and partman keeps
the ones libpq knows (Django adds Python-only ones such as its cursor factory and adapters).
So there is no second DSN to keep in step with DATABASES.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import psycopg
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from psycopg import conninfo as libpq_conninfo
from psycopg import pq

from partman.errors import ConfigError, PartmanError

CONNECT_TIMEOUT = 10  # seconds, unless OPTIONS say otherwise: a check must not hang


class DatabaseSetupError(ConfigError):
    """The alias cannot be used by partman (unknown, not PostgreSQL, incomplete); the message
    says what to change."""


class DatabaseUnavailableError(PartmanError):
    """The database could not be reached; the message carries the server's reason."""


@cache
def _libpq_keywords() -> frozenset[str]:
    return frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())


def conninfo(alias: str) -> str:
    """The libpq connection string of DATABASES[alias]; raises DatabaseSetupError."""
    aliases = list(django_settings.DATABASES)
    if alias not in aliases:
        raise DatabaseSetupError(
            f'PARTMAN["DATABASE"] is {alias!r}, which is not an alias of DATABASES '
            f"(aliases: {', '.join(aliases) or 'none'}); name one of them"
        )
    connection = connections[alias]
    if connection.vendor != "postgresql":
        engine = connection.settings_dict.get("ENGINE")
        raise DatabaseSetupError(
            f"DATABASES[{alias!r}] uses ENGINE {engine!r}; partman manages PostgreSQL "
            'partitions only: point PARTMAN["DATABASE"] at an alias whose ENGINE is '
            "django.db.backends.postgresql"
        )
    try:
        params: dict[str, Any] = connection.get_connection_params()
    except ImproperlyConfigured as error:
        raise DatabaseSetupError(f"DATABASES[{alias!r}]: {error}") from None
    keywords = _libpq_keywords()
    kept = {
        k: v
        for k, v in params.items()
        if k in keywords and isinstance(v, str | int) and not isinstance(v, bool)
    }
    kept.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return libpq_conninfo.make_conninfo("", **kept)


def where(dsn: str) -> str:
    """host:port/dbname of a connection string, for messages (never its password)."""
    info = libpq_conninfo.conninfo_to_dict(dsn)
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = f":{info['port']}" if info.get("port") else ""
    return f"{host}{port}/{info.get('dbname', '')}"


@contextmanager
def connect(alias: str, dsn: str, application_name: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection (partman's reads make their own READ ONLY transactions);
    raises DatabaseUnavailableError naming the alias and the server's reason."""
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=application_name)
    except psycopg.Error as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatabaseUnavailableError(
            f"cannot connect to DATABASES[{alias!r}] ({where(dsn)}): {reason}"
        ) from None
    with conn:
        yield conn
