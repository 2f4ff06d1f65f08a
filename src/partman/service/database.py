"""The service's way to its database: one pool for the API and the passes, and the libpq
settings every connection gets (the leadership connection's stricter ones included)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ..db import privileges as privileges_db
from ..db import reads
from ..db.dsn import check_dsn
from ..decide import privileges
from ..model.config import Config
from ..model.service_options import ServiceOptions
from ..model.text import first_line
from .watchdog import deadline

_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def leader_keepalives(lease: float) -> dict[str, str]:
    """A silent network loss must end leadership within about the lease, on both sides (the
    server's side: `scheduler.server_keepalives`)."""
    return {
        "keepalives": "1",
        "keepalives_idle": str(max(1, round(lease / 3))),
        "keepalives_interval": str(max(1, round(lease / 9))),
        "keepalives_count": "3",
        "tcp_user_timeout": str(max(1000, round(lease * 1000))),
    }


class Database:
    """The pool (opened at once, connecting lazily: the database may be down) and fresh
    connections for the roles that must not share it (leadership, probes)."""

    def __init__(self, dsn: str, config: Config, options: ServiceOptions) -> None:
        check_dsn(dsn)  # libpq's complaint would quote the DSN, password and all
        self.dsn = dsn
        self.config = config
        self.options = options
        self.pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=options.pool_size,
            kwargs=self.connection_kwargs(role="pool"),
            timeout=options.db_timeout.total_seconds(),
            check=self._check,
            reconnect_timeout=max(60.0, options.backoff_max.total_seconds() * 2),
            name=f"partman-service-{options.instance}",
            open=True,
        )

    def connection_kwargs(self, *, role: str) -> dict[str, Any]:
        """libpq parameters for our connections: autocommit, a name in pg_stat_activity, a
        connect timeout and TCP keepalives (so a dead network is noticed), unless the DSN sets
        its own."""
        given = pg_conninfo.conninfo_to_dict(self.dsn)
        name = self.config.application_name
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": name if role == "pool" else f"{name}:{role}",
        }
        if "connect_timeout" not in given:
            kwargs["connect_timeout"] = max(1, round(self.options.db_timeout.total_seconds()))
        lease = self.options.leader_lease.total_seconds()
        for key, value in (leader_keepalives(lease) if role == "leader" else _KEEPALIVES).items():
            if key not in given:
                kwargs[key] = value
        return kwargs

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's check of a connection before it hands it out, within `db_timeout`: on a
        cut network the check would otherwise wait for as long as the cut lasts."""
        with deadline(conn, self.options.db_timeout.total_seconds()):
            ConnectionPool.check_connection(conn)

    def connect(self, *, role: str) -> psycopg.Connection[Any]:
        """A connection of its own (not pooled), named after its role."""
        return psycopg.connect(self.dsn, **self.connection_kwargs(role=role))

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection (PoolTimeout after `options.db_timeout`)."""
        with self.pool.connection() as conn:
            yield conn

    def diagnose(self) -> str:
        """Why the pool has no connection to give: the database's own answer to a fresh
        connection attempt, or (if that works) a busy pool."""
        try:
            with self.connect(role="probe") as conn:
                conn.execute("SELECT 1")
        except Exception as error:
            return first_line(error, with_type=True)
        return (
            f"all {self.options.pool_size} pooled connections stayed busy for "
            f"{self.options.db_timeout.total_seconds():g}s"
        )

    def unreachable(self) -> str | None:
        """Why the database cannot be reached now (None when it can), within a second."""
        try:
            with self.pool.connection(timeout=min(1.0, self.options.db_timeout.total_seconds())):
                pass  # the pool checks the connection before handing it out
        except PoolTimeout:
            return self.diagnose()
        except Exception as error:
            return first_line(error, with_type=True)
        return None

    def close(self) -> None:
        self.pool.close()


def missing_privileges(
    conn: psycopg.Connection[Any], metadata_schema: str
) -> list[privileges.Finding]:
    """What the service's role lacks for the tables registered now (readiness reports it:
    without it every pass fails at apply time with `permission denied`)."""
    state = reads.read_registered(conn, metadata_schema)
    return privileges.findings(privileges_db.read(conn, metadata_schema, privileges.needs(state)))
