"""What the HTTP API needs from the service: the routers see this, never the whole `Service`."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg

from ...decide.coverage import Inventory
from ...engine.manager import Manager
from ...model.config import Config
from ...model.operations import Plan
from ...model.report import Report
from ...model.service_options import ServiceOptions
from ..metrics import Metrics


class Host(Protocol):
    """The service as the API uses it (`partman.service.Service` is one)."""

    @property
    def options(self) -> ServiceOptions: ...

    @property
    def config(self) -> Config: ...

    @property
    def manager(self) -> Manager: ...

    @property
    def metrics(self) -> Metrics: ...

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...

    def ensure_metadata(self) -> int: ...

    def inventory(self) -> Inventory:
        """Every managed table's partitions and coverage, shared by the reads (filter it
        with `service.shared.only`)."""

    def plan(self) -> Plan:
        """What the next pass would do now, shared by the reads."""

    def run_pass(self, trigger: str) -> Report: ...

    def nudge(self) -> None:
        """Something changed: ask the leader for a pass now."""

    def status(self) -> dict[str, Any]: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...

    def diagnose(self) -> str: ...

    def start(self) -> object:
        """Start background maintenance (when the app starts serving)."""

    def stop(self, timeout: float | None = None) -> None: ...
