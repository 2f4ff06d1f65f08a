"""Every error is JSON: `{"error": <kind>, "message": <text>}`, with a 4xx status for anything
the caller can fix (every `partman.PartmanError` keeps its message) and 503 when the database
is unreachable."""

from typing import Any

import anyio
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException

from ...errors import (
    ArchiveError,
    CatalogError,
    ConfigError,
    LockUnavailableError,
    MetadataError,
    NotRegisteredError,
    PartmanError,
    TableNotFoundError,
)
from ...model.text import first_line
from .host import Host

_KINDS = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict"}


def status_for(error: PartmanError) -> int:
    """The HTTP status of a partman error: the caller can always fix it (4xx)."""
    if isinstance(error, NotRegisteredError | TableNotFoundError):
        return 404
    if isinstance(error, ConfigError):  # includes TenantError and IntervalError
        return 422
    if isinstance(error, CatalogError | MetadataError | LockUnavailableError | ArchiveError):
        return 409
    return 400


def error_response(status: int, kind: str, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": kind, "message": message, **extra}, status_code=status, headers=headers
    )


def install(app: FastAPI, host: Host) -> None:
    """The app's exception handlers."""

    @app.exception_handler(PartmanError)
    async def partman_error(request: Request, error: PartmanError) -> JSONResponse:
        return error_response(status_for(error), type(error).__name__, str(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        kind = _KINDS.get(error.status_code, "error")
        return error_response(error.status_code, kind, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for e in error.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return error_response(
            422,
            "invalid_request",
            "; ".join(problems) or "invalid request",
            detail=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in error.errors()],
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, error: psycopg.OperationalError) -> JSONResponse:
        return error_response(
            503,
            "database_unavailable",
            f"database unavailable: {first_line(error, with_type=True)}",
        )

    @app.exception_handler(psycopg.Error)
    async def database_error(request: Request, error: psycopg.Error) -> JSONResponse:
        """PostgreSQL refused a statement (`permission denied` for partman's role, ...): its
        first line, as JSON, rather than a bare 500 that drops the connection."""
        return error_response(500, "database_error", first_line(error, with_type=True))

    @app.exception_handler(PoolTimeout)
    async def pool_timeout(request: Request, error: PoolTimeout) -> JSONResponse:
        why = await anyio.to_thread.run_sync(host.diagnose)
        return error_response(503, "database_unavailable", f"database unavailable: {why}")
