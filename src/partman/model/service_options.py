"""How the service runs: where it listens, who may change things, how it waits and retries.

Partition policy lives in `partman.Config` and the managed tables; this is only the service's
own behaviour. Every field has a default that is safe for one replica on a private network.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass, field

from ..errors import ConfigError


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name) listens on this machine only. A name other than
    localhost is not looked up (this module does no I/O): it counts as beyond loopback."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, kw_only=True)
class ServiceOptions:
    """Options of `partman.service.Service` (the `[service]` section of partman.toml)."""

    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port (the URL is logged and passed to `on_ready`)."""
    token: str | None = field(default=None, repr=False)
    """Bearer token of the write scope: every request that changes something (tenants, apply)
    needs it, and it reads too. None: the service is read-only (those requests get 403).
    Never in a repr, a log line or a response."""
    read_token: str | None = field(default=None, repr=False)
    """Bearer token of the read scope (dashboards, Prometheus): it reads what
    `read_requires_token` / `metrics_requires_token` protect, and gets 403 on any change."""
    read_requires_token: bool = False
    """Require a token (read or write) for reads: the API, /metrics, /openapi.json, /docs and
    /redoc. /healthz, /readyz and the UI's static files stay open; the UI then asks for one."""
    metrics_requires_token: bool = False
    """Require a token (read or write) for /metrics even when other reads are open (a
    Prometheus scrape config sends it with `authorization: {credentials: ...}`)."""
    allow_unauthenticated: bool = False
    """Listen beyond loopback (`host` not 127.0.0.1, ::1 or localhost) with no token at all.
    Refused unless set: only for a read-only replica behind something that already
    authenticates (an authenticating proxy, a NetworkPolicy that admits only the probes)."""
    expose_token_to_ui: bool = False
    """Hand the write token to the web UI so its Apply button works without asking (demos
    only, and only on a loopback `host`, to a page whose Host header is a loopback name:
    anyone who can open the page can then change things)."""
    scheduler: bool = True
    """Run maintenance in the background every `Config.sample_rate`."""
    leader_election: bool = True
    """Among replicas on one metadata schema, only the holder of the leadership lock runs
    scheduled passes. Off: every replica runs them (still one at a time, by the pass lock)."""
    leader_lease: dt.timedelta = dt.timedelta(seconds=15)
    """The hand-over time: a leader whose leadership session has been silent this long (its
    heartbeat goes every fifth of it) is deposed by a follower, which tries every quarter of
    it; a leader that gets no answer within a third of it steps down by itself. Also sets the
    leadership connection's TCP keepalives and tcp_user_timeout (docs/operations.md)."""
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
    metrics_per_tenant: bool = False
    """Also export each tenant's runway (`partman_runway_seconds{table, tenant}`): one series
    per tenant, which a table of 10,000 tenants turns into 10,000 series a scrape. Off, /metrics
    has series per table only (shortest runway, tenants by runway, tenants, partitions)."""

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
        if self.read_token is not None and (
            not isinstance(self.read_token, str) or not self.read_token.strip()
        ):
            raise ConfigError(
                "service read_token must be a non-empty string (or unset)", field="read_token"
            )
        if self.read_token is not None and self.read_token == self.token:
            raise ConfigError(
                "service read_token must differ from token (the same secret cannot have two "
                "scopes)",
                field="read_token",
            )
        tokens = self.token is not None or self.read_token is not None
        for name in ("read_requires_token", "metrics_requires_token"):
            if getattr(self, name) and not tokens:
                raise ConfigError(
                    f"service {name} needs a token: set token (read and write) or read_token "
                    "(read only)",
                    field=name,
                )
        if not tokens and not self.allow_unauthenticated and not is_loopback(self.host):
            raise ConfigError(
                f"service host {self.host!r} listens beyond loopback with no token: anyone who "
                'reaches it could read everything. Set token = "${PARTMAN_TOKEN}" (and '
                "read_requires_token = true to protect reads too), listen on 127.0.0.1, or set "
                "allow_unauthenticated = true if something in front of it already authenticates",
                field="host",
            )
        if self.expose_token_to_ui and not is_loopback(self.host):
            raise ConfigError(
                f"service expose_token_to_ui hands the write token to every page that can reach "
                f"{self.host!r}: it is only for a demo on 127.0.0.1; unset it and type the token "
                "into the UI instead",
                field="expose_token_to_ui",
            )
        if not isinstance(self.leader_lease, dt.timedelta) or self.leader_lease < dt.timedelta(
            seconds=1
        ):
            raise ConfigError(
                f"service leader_lease must be at least 1s, got {self.leader_lease!r}",
                field="leader_lease",
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
