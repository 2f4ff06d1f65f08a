"""The HTTP face of a fleet: one app over several databases, each served by its own `Host`.

    /healthz, /readyz, /metrics          the process (every database's series, labelled)
    /api/databases                       each database: reachable, role, leader, last pass
    /api/databases/{name}                one database's readiness in detail
    /api/databases/{name}/tables, ...    every resource of the one-database API, per database

A fleet of one also serves the one-database routes (/api/tables, ...) as they are. Each
database's routes are the one-database routers themselves (tables, tenants, partitions, ...),
built over that database's Host and mounted under its prefix: whatever those routers learn,
the fleet serves too.
"""

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import anyio
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException

from ... import __version__
from ...model.service_options import ServiceOptions
from . import archives, errors, indexes, partitions, passes, status, tables, tenants, ui
from .access import Access, access
from .host import Host
from .models import ErrorOut
from .security import SecurityHeaders

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.

PREFIX = "/api/databases"
RESOURCES = (status, tables, tenants, partitions, passes, indexes, archives)
"""The one-database routers each database of a fleet serves under its prefix."""


class FleetHost(Protocol):
    """The fleet as its app uses it (`partman.service.Fleet` is one)."""

    @property
    def options(self) -> ServiceOptions: ...

    @property
    def registry(self) -> CollectorRegistry: ...

    def members(self) -> Mapping[str, Host]:
        """Each database's Host, by name, in the file's order."""

    def databases(self) -> list[dict[str, Any]]:
        """Each database's state, as /api/databases lists it."""

    def readiness(self) -> dict[str, dict[str, Any]]:
        """Each database's readiness, by name."""

    def diagnose(self, name: str) -> str: ...

    def start(self) -> object: ...

    def stop(self, timeout: float | None = None) -> None: ...


def database_router(name: str, host: Host, allowed: Access) -> APIRouter:
    """The one-database API of `host` under /api/databases/{name}: each router's /api/...
    routes, re-rooted (its other routes are the fleet's own: /healthz, /metrics)."""
    out = APIRouter()
    for resource in RESOURCES:
        router = resource.router(host, allowed)
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path.startswith("/api/"):
                route.path = route.path.removeprefix("/api")
        router.routes[:] = [r for r in router.routes if isinstance(r, APIRoute)]
        out.include_router(router, prefix=f"{PREFIX}/{name}", tags=[f"database {name}"])
    return out


def create_fleet_app(fleet: FleetHost) -> FastAPI:
    """The fleet's app; serving it starts every database's background maintenance, and
    stopping it stops them after their passes under way."""
    members = fleet.members()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        fleet.start()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(fleet.stop)

    app = FastAPI(
        title="partman",
        version=__version__,
        summary="PostgreSQL partitions created ahead, trimmed behind, on a lock budget.",
        description=(
            "A fleet of databases: /api/databases lists them; each database's tables, tenants, "
            "partitions, plan, runs and audit log are under /api/databases/{name}/. Changes "
            "need `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        docs_url=None,  # ui.mount serves /docs, /redoc and /openapi.json, as create_app's
        redoc_url=None,
        openapi_url=None,
        responses={
            401: {"model": ErrorOut, "description": "no bearer token"},
            403: {"model": ErrorOut, "description": "wrong token, or the service is read-only"},
            503: {"model": ErrorOut, "description": "the database is unreachable"},
        },
    )
    errors.install(app, next(iter(members.values())))

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, error: PoolTimeout) -> JSONResponse:
        """Which database's pool gave up: the one the path names."""
        parts = request.url.path.removeprefix(PREFIX + "/").split("/", 1)
        name = parts[0] if parts[0] in members else next(iter(members))
        why = await anyio.to_thread.run_sync(fleet.diagnose, name)
        return errors.error_response(
            503, "database_unavailable", f"database {name} unavailable: {why}"
        )

    allowed = access(fleet.options)
    first = next(iter(members.values()))  # every database's options are the fleet's
    if len(members) == 1:  # a fleet of one answers the one-database routes as they are
        for resource in RESOURCES:
            app.include_router(resource.router(first, allowed))
    else:  # the web UI's start-up values are the one-database API's own
        shared = status.router(first, allowed)
        shared.routes[:] = [
            r for r in shared.routes if isinstance(r, APIRoute) and r.path == "/api/ui-config"
        ]
        app.include_router(shared)
    app.include_router(_fleet_router(fleet, allowed))
    for name, host in members.items():
        app.include_router(database_router(name, host, allowed))
    ui.mount(app, allowed)
    app.add_middleware(SecurityHeaders)
    return app


def _fleet_router(fleet: FleetHost, access: Access) -> APIRouter:
    api = APIRouter(tags=["fleet"])
    options = fleet.options

    @api.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "instance": options.instance, "version": __version__}

    @api.get(
        "/readyz",
        summary=(
            "The process serves; each database's readiness is in the body (one database down "
            "never makes the fleet unready)"
        ),
    )
    def readyz() -> JSONResponse:
        found = fleet.readiness()
        down = sorted(name for name, r in found.items() if not r["ready"])
        body = {
            "status": "ready",
            "databases_ready": len(found) - len(down),
            "databases_not_ready": down,
            "databases": found,
        }
        return JSONResponse(body, status_code=200)

    @api.get("/metrics", summary="Prometheus metrics", dependencies=[access.metrics])
    def metrics() -> Response:
        return Response(generate_latest(fleet.registry), media_type=CONTENT_TYPE_LATEST)

    @api.get("/api/databases", dependencies=[access.read])
    def databases() -> list[dict[str, Any]]:
        """Each database of the fleet: reachable or why not, this replica's role (leader,
        follower, ...), its last pass and last prepare error."""
        return fleet.databases()

    @api.get(
        "/api/databases/{name}",
        dependencies=[access.read],
        responses={404: {"model": ErrorOut, "description": "no such database"}},
    )
    def database(name: str) -> JSONResponse:
        """One database: its state as /api/databases lists it, and its readiness (database
        reachable, metadata at this version); 503 when it is not ready."""
        found = {d["name"]: d for d in fleet.databases()}
        if name not in found:
            raise HTTPException(404, f"no database {name!r} (databases: {', '.join(found)})")
        ready = fleet.readiness()[name]
        return JSONResponse({**found[name], **ready}, status_code=200 if ready["ready"] else 503)

    @api.get("/api/status", dependencies=[access.read])
    def status() -> dict[str, Any]:
        """This replica over the fleet: each database's state (as /api/databases)."""
        return {
            "instance": options.instance,
            "version": __version__,
            "fleet": True,
            "databases": fleet.databases(),
        }

    return api
