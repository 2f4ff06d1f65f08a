"""This replica: its role, scheduler and last pass; and what the web UI needs to start."""

from typing import Any

from fastapi import APIRouter

from ... import __version__
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
    def ui_config() -> dict[str, Any]:
        return {
            "token": options.token if options.expose_token_to_ui else None,
            "read_requires_token": options.read_requires_token,
            "mutations_enabled": options.token is not None,
            "instance": options.instance,
            "version": __version__,
        }

    return api
