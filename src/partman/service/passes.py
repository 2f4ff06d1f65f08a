"""Running a pass for the service: `prepare` first, then the Manager's pass, recorded in the
metrics and in the status (the last pass, the last prepare error)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..db.fence import Fence
from ..engine.manager import Manager
from ..errors import PartmanError
from ..logs import log_event
from ..model.report import Report
from ..model.text import first_line
from .metrics import Metrics

Prepare = Callable[[Manager], object]
"""Called before every pass (scheduled or applied through the API) with the service's Manager:
the place to (re)register what a config file declares. A PartmanError it raises is reported in
the status and the pass goes on; a database error fails the pass (retried with backoff)."""


class Passes:
    """Passes on any replica, at any time: passes on one database take turns on partman's pass
    lock (a pass that waited longer than `Config.pass_lock_wait` is reported skipped)."""

    def __init__(
        self,
        manager: Manager,
        metrics: Metrics,
        *,
        instance: str,
        logger: logging.Logger,
        prepare: Prepare | None = None,
        changed: Callable[[], None] | None = None,
    ) -> None:
        self.manager = manager
        self.changed = changed
        """Called once a pass ends, whatever its outcome (the shared reads start again)."""
        self.metrics = metrics
        self.instance = instance
        self.logger = logger
        self.prepare = prepare
        self.last_pass: dict[str, Any] | None = None
        self.prepare_error: dict[str, Any] | None = None
        self._metadata_version: int | None = None
        self._metadata_lock = threading.Lock()

    def ensure_metadata(self) -> int:
        """Create or upgrade partman's metadata schema once per process; its version."""
        with self._metadata_lock:
            if self._metadata_version is None:
                self._metadata_version = self.manager.init()
            return self._metadata_version

    def run_pass(self, trigger: str, fence: Fence | None = None) -> Report:
        """One maintenance pass now (`prepare` first), recorded in the metrics and status;
        fenced by the leadership session for the scheduler's passes (`db/fence.py`)."""
        started = time.perf_counter()
        at = dt.datetime.now(dt.UTC)
        try:
            self.ensure_metadata()
            self._prepare()
            report = self.manager.maintain(fence=fence)
        except Exception as error:
            if self.changed is not None:
                self.changed()
            self.metrics.pass_errors.inc()
            self.last_pass = {
                "trigger": trigger,
                "instance": self.instance,
                "started_at": at.isoformat(),
                "error": first_line(error, with_type=True),
            }
            raise
        seconds = time.perf_counter() - started
        if self.changed is not None:
            self.changed()
        self.metrics.observe(report, seconds)
        self.last_pass = {
            "trigger": trigger,
            "instance": self.instance,
            "started_at": at.isoformat(),
            "duration_seconds": round(seconds, 3),
            "error": None,
            **report.summary(),
        }
        return report

    def _prepare(self) -> None:
        if self.prepare is None:
            return
        try:
            self.prepare(self.manager)
            self.prepare_error = None
        except PartmanError as error:
            self.prepare_error = {"message": str(error), "at": dt.datetime.now(dt.UTC).isoformat()}
            log_event(
                self.logger,
                logging.ERROR,
                "prepare_failed",
                f"before the pass: {error}; the pass goes on with what is registered",
            )
