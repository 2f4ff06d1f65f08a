"""This replica: its role, scheduler and last pass; and what the web UI needs to start."""

from typing import Any

from fastapi import APIRouter, Request

from ... import __version__
from ...model.service_options import is_loopback
from .access import Access
from .host import Host


def router(host: Host, access: Access) -> APIRouter:
    api = APIRouter(tags=["service"])
    options = host.options

    @api.get("/api/status", dependencies=[access.read])
    def status() -> dict[str, Any]:
        """This replica: leader or follower, scheduler state, last pass, last error."""
        return host.status()

    @api.get("/api/ui-config", include_in_schema=False)
    def ui_config(request: Request) -> dict[str, Any]:
        # The token goes only to a page opened by a loopback name: a page of another site
        # that rebinds its DNS name to 127.0.0.1 reaches here with its own name as the Host.
        loopback = is_loopback(request.url.hostname or "")
        return {
            "token": options.token if options.expose_token_to_ui and loopback else None,
            "read_requires_token": options.read_requires_token,
            "metrics_requires_token": options.metrics_requires_token or options.read_requires_token,
            "mutations_enabled": options.token is not None,
            "instance": options.instance,
            "version": __version__,
        }

    return api
