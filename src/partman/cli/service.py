"""`partman run` and `partman demo`: partman as a long-running service (scheduler, web UI,
JSON API, /metrics), on the config file or on sample data."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from ..engine import sync as sync_module
from ..errors import PartmanError
from . import fleet
from .common import (
    FLAG,
    ConfigOption,
    DsnOption,
    LogLevelOption,
    connect,
    fail,
    read_settings,
    redact_logs,
    require_dsn,
    resolve_or_fail,
    setup_logging,
)


def demo(
    dsn: Annotated[
        str | None,
        typer.Option(
            help="Use this server instead of a throwaway embedded one (it must be empty)."
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            metavar=FLAG,
            help="Keep running: the web UI, JSON API and /metrics over sample tenants and data.",
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --serve: port (0 picks a free one).")] = 8080,
) -> None:
    """Run the go_partman guide's scenario on a throwaway PostgreSQL and print what happened.

    With --serve, bring the whole service up instead (scheduler, web UI, JSON API, metrics) on
    sample tenants and data, and keep it running until Ctrl-C.

    Example: partman demo --serve --port 8080, then open http://127.0.0.1:8080/
    """
    if serve:
        from ..demo.service import run_demo_server

        run_demo_server(host, port, dsn=dsn)
        return
    from ..demo import scenario

    scenario.run(dsn)


def run(
    config: ConfigOption = None,
    dsn: DsnOption = None,
    host: Annotated[
        str | None, typer.Option(help="Listen address (overrides [service] host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (overrides [service] port; 0 picks a free one).")
    ] = None,
    log_level: LogLevelOption = None,
) -> None:
    """Run partman as a service: maintenance every sample_rate, web UI, JSON API, /metrics.

    Before every pass the config file is synced into partman's metadata (tables, declared
    tenants, tenants_query), as `partman apply` does. Several replicas may run at once: one
    leads (an advisory lock) and does the work, the others serve the API and take over if it
    dies. The [service] section sets host, port, token (needed by every request that changes
    something; ${ENV_VAR} works) and the rest of partman.service.ServiceOptions. Stops
    gracefully on SIGTERM, letting a pass under way finish. With [[databases]] in the file,
    one process serves every database (each its own pool, leader and scheduler; one down
    stops nothing else), the API under /api/databases.

    Example: PARTMAN_TOKEN=s3cret partman run --config partman.toml   (token = "${PARTMAN_TOKEN}")
    """
    from ..service import ServiceOptions, serve

    setup_logging(log_level)
    found = read_settings(config, dsn, needs=("service",))
    if found.databases:  # [[databases]]: every database from one process
        fleet.serve(found, host=host, port=port)
        return
    url = require_dsn(found)
    values = dict(found.service)
    if host is not None:
        values["host"] = host
    if port is not None:
        values["port"] = port
    try:  # an unsafe listener is refused before the database is even asked
        options = ServiceOptions(**values)
    except (TypeError, ValueError, PartmanError) as error:
        fail(f"[service] in {found.file}: {error}")
    redact_logs(t for t in (options.token, options.read_token) if t)
    with connect(url) as conn:
        resolve_or_fail(conn, found)  # a broken file or table fails now, before anything is served

    serve(
        url,
        config=found.config,
        options=options,
        prepare=functools.partial(sync_module.apply, found=found),
    )
