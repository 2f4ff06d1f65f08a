"""Is it alive, is it ready, and its Prometheus metrics."""

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ... import __version__
from ...model.text import first_line
from ..database import missing_privileges
from .access import Access
from .host import Host


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["health"])

    @api.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "instance": host.options.instance, "version": __version__}

    @api.get(
        "/readyz",
        summary=(
            "The database is reachable, partman's metadata is ready and the role holds the "
            "privileges its tables need"
        ),
        responses={503: {"description": "not ready; the body says why"}},
    )
    def readyz() -> JSONResponse:
        ready, detail = host.readiness()
        if ready:
            detail = {**detail, "privileges": privileges_lacking()}
            ready = not detail["privileges"]
        body = {"status": "ready" if ready else "not ready", **detail}
        return JSONResponse(body, status_code=200 if ready else 503)

    def privileges_lacking() -> list[dict[str, Any]]:
        """Each missing privilege with its GRANT (`partman check` lists the same)."""
        try:
            with host.connection() as conn:
                found = missing_privileges(conn, host.config.metadata_schema)
        except Exception as error:
            return [{"table": None, "problem": first_line(error, with_type=True), "grant": None}]
        return [f.to_dict() for f in found]

    @api.get("/metrics", summary="Prometheus metrics", dependencies=[access.metrics])
    def metrics() -> Response:
        return Response(generate_latest(host.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
