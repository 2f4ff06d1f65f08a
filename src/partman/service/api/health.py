"""Is it alive, is it ready, and its Prometheus metrics."""

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ... import __version__
from .access import Access
from .host import Host


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["health"])

    @api.get("/healthz", summary="The process is alive")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "instance": host.options.instance, "version": __version__}

    @api.get(
        "/readyz",
        summary="The database is reachable and partman's metadata is ready",
        responses={503: {"description": "not ready; the body says why"}},
    )
    def readyz() -> JSONResponse:
        ready, detail = host.readiness()
        body = {"status": "ready" if ready else "not ready", **detail}
        return JSONResponse(body, status_code=200 if ready else 503)

    @api.get("/metrics", summary="Prometheus metrics", dependencies=[access.read])
    def metrics() -> Response:
        return Response(generate_latest(host.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
