"""How the service runs: where it listens, who may change things, how it waits and retries.

Partition policy lives in `partman.Config` and the managed tables; this is only the service's
own behaviour. Every field has a default that is safe for one replica on a private network.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass, field

from ..errors import ConfigError


def _instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class ServiceOptions:
    """Options of `partman.service.Service` (the `[service]` section of partman.toml)."""

    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port (the URL is logged and passed to `on_ready`)."""
    token: str | None = None
    """Bearer token for every request that changes something (tenants, apply). None: the
    service is read-only (those requests get 403)."""
    read_requires_token: bool = False
    """Also require the token for reads (API, /metrics). /healthz, /readyz and the UI's static
    files stay open; the UI then asks for the token."""
    expose_token_to_ui: bool = False
    """Hand the token to the web UI so its Apply button works without asking (demos only:
    anyone who can open the page can then change things)."""
    scheduler: bool = True
    """Run maintenance in the background every `Config.sample_rate`."""
    leader_election: bool = True
    """Among replicas on one metadata schema, only the holder of the leadership lock runs
    scheduled passes. Off: every replica runs them (still one at a time, by the pass lock)."""
    pass_on_change: bool = True
    """After a tenant is added, changed or removed through the API, ask the leader (wherever it
    runs) for a pass now instead of at the next interval."""
    first_pass_delay: dt.timedelta = dt.timedelta(0)
    """Wait this long before the first scheduled pass (0: a pass right after start). A change
    through the API ends the wait (see `pass_on_change`)."""
    backoff_initial: dt.timedelta = dt.timedelta(seconds=1)
    """After a failed pass (database down, network gone) wait this long, doubling per failure
    up to `backoff_max`, before trying again; a success goes back to `sample_rate`."""
    backoff_max: dt.timedelta = dt.timedelta(seconds=60)
    db_timeout: dt.timedelta = dt.timedelta(seconds=5)
    """Longest wait for a database connection (API requests, scrapes, health checks)."""
    pool_size: int = 8
    instance: str = field(default_factory=_instance_name)
    """This replica's name in status, logs and metrics."""
    log_level: str = "info"
    access_log: bool = False

    def __post_init__(self) -> None:
        if (
            not isinstance(self.port, int)
            or isinstance(self.port, bool)
            or not (0 <= self.port <= 65535)
        ):
            raise ConfigError(f"service port must be 0..65535, got {self.port!r}", field="port")
        if self.token is not None and (not isinstance(self.token, str) or not self.token.strip()):
            raise ConfigError(
                "service token must be a non-empty string (or unset for a read-only service)",
                field="token",
            )
        if self.read_requires_token and self.token is None:
            raise ConfigError(
                "service read_requires_token needs a token", field="read_requires_token"
            )
        for name in ("backoff_initial", "backoff_max", "db_timeout"):
            value = getattr(self, name)
            if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
                raise ConfigError(
                    f"service {name} must be a positive duration, got {value!r}", field=name
                )
        if self.backoff_max < self.backoff_initial:
            raise ConfigError(
                "service backoff_max must be at least backoff_initial", field="backoff_max"
            )
        if not isinstance(self.first_pass_delay, dt.timedelta) or self.first_pass_delay < (
            dt.timedelta(0)
        ):
            raise ConfigError(
                f"service first_pass_delay must be >= 0, got {self.first_pass_delay!r}",
                field="first_pass_delay",
            )
        if not isinstance(self.pool_size, int) or not 2 <= self.pool_size <= 100:
            raise ConfigError(
                f"service pool_size must be 2..100, got {self.pool_size!r}", field="pool_size"
            )
        if self.log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            raise ConfigError(
                f"service log_level must be one of critical, error, warning, info, debug, trace; "
                f"got {self.log_level!r}",
                field="log_level",
            )
