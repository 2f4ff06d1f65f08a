"""The HTTP face of the service: JSON API (OpenAPI at /docs and /openapi.json), web UI, metrics.

One router per resource (health, status, tables, tenants, partitions, passes, indexes,
archives), each over the `Host` protocol; `access` says who may read and who may change;
`errors` turns every failure into JSON. A request that fails changes nothing.
"""

import contextlib
from collections.abc import AsyncIterator

import anyio
from fastapi import FastAPI

from ... import __version__
from . import archives, errors, health, indexes, partitions, passes, status, tables, tenants, ui
from .access import access
from .host import Host
from .models import ErrorOut


def create_app(host: Host) -> FastAPI:
    """The app; serving it starts the host's background maintenance, and stopping it stops
    that after the pass under way."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(host.stop)

    app = FastAPI(
        title="partman",
        version=__version__,
        summary="PostgreSQL partitions created ahead, trimmed behind, on a lock budget.",
        description=(
            "Managed tables, their tenants and policies, partitions, the pending plan, runs and "
            "the audit log. Changes need `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        docs_url=None,  # ui.mount serves /docs and /redoc with their assets from a package
        redoc_url=None,
        openapi_url=None,  # and /openapi.json, behind read_requires_token
        responses={
            401: {"model": ErrorOut, "description": "no bearer token"},
            403: {"model": ErrorOut, "description": "wrong token, or the service is read-only"},
            503: {"model": ErrorOut, "description": "the database is unreachable"},
        },
    )
    errors.install(app, host)
    allowed = access(host.options)
    for resource in (health, status, tables, tenants, partitions, passes, indexes, archives):
        app.include_router(resource.router(host, allowed))
    ui.mount(app, allowed)
    return app


__all__ = ["Host", "create_app"]
