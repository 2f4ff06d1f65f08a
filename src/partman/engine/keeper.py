# Generated from src/partman/keeper_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""Keeping a database maintained in the background: the one loop that does it.

Every interval: `prepare` (e.g. sync the config file into partman's metadata), then a pass.
A failure is logged (`pass_failed`) and the next attempt waits longer (a `Backoff`); a success
goes back to the interval. `Manager.start()` / `AsyncManager.start()`, `partman.contrib.asgi`
and the service's scheduler all run this loop; the scheduler adds leadership and its status
around it through the hooks (`wait`, `wake`, `succeeded`, `failed`, `finished`).

Written once: this file is `AsyncKeeper` (a task on the running loop); `keeper.py` (`Keeper`:
a daemon thread) is generated from it by tools/async_to_sync.py.
"""

from __future__ import annotations

import logging
import threading

from ..logs import log_event
from ..model.backoff import Backoff
from ..model.text import first_line
from .hooks import Job


class Keeper:
    """Runs `prepare()` then `maintain()` after `first_wait` seconds and then every `interval`
    seconds until `stop()`; after a failure it waits `backoff.delay(failures)` instead (the
    default backoff retries at the next interval). Nothing `prepare` or `maintain` raises ends
    it."""

    def __init__(
        self,
        maintain: Job,
        *,
        interval: float,
        logger: logging.Logger,
        prepare: Job | None = None,
        backoff: Backoff | None = None,
        first_wait: float = 0.0,
        name: str = "partman-maintenance",
    ) -> None:
        self.interval = interval
        self.backoff = backoff or Backoff(interval, cap=interval)
        self.first_wait = first_wait
        self.logger = logger
        self.name = name
        self.failures = 0
        """Attempts in a row that failed (0 once one succeeds)."""
        self._maintain = maintain
        self._prepare = prepare
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run the loop in the background (a no-op while it runs): a task on the running loop
        for `AsyncKeeper`, a daemon thread for `Keeper`."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop after the attempt under way; whether the loop has ended within `timeout`
        seconds. If not, `AsyncKeeper` cancels it (its transaction rolls back) and `Keeper`
        leaves its thread to finish on its own."""
        self._stop.set()
        self.wake()
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """The loop itself, in the caller's task or thread (`start()` runs it in the
        background)."""
        try:
            if self.first_wait > 0:
                self.wait(self.first_wait)
            while not self._stop.is_set():
                self.wait(self.attempt())
        finally:
            self.finished()

    def attempt(self) -> float:
        """Prepare, then maintain, once; the seconds to wait before the next attempt."""
        try:
            if self._prepare is not None:
                self._prepare()
            self._maintain()
        except Exception as error:  # nothing may end background maintenance
            self.failures += 1
            delay = self.backoff.delay(self.failures)
            self.failed(error, delay)
            return delay
        recovered, self.failures = self.failures, 0
        self.succeeded(recovered)
        return self.interval

    # -- hooks (the service's scheduler overrides them) ------------------------------------

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`; `stop()` ends it at once."""
        self._stop.wait(seconds)

    def wake(self) -> None:
        """End the wait under way now (`stop()` calls it). The default wait watches `stop()`
        itself: nothing more to do."""

    def succeeded(self, recovered: int) -> None:
        """An attempt succeeded after `recovered` failed ones in a row."""
        if recovered:
            log_event(
                self.logger,
                logging.INFO,
                "scheduler_recovered",
                f"maintenance recovered after {recovered} failed attempt(s)",
                failures=recovered,
            )

    def failed(self, error: Exception, delay: float) -> None:
        """An attempt failed (`self.failures` in a row); the next one is in `delay` seconds."""
        text = first_line(error, with_type=True)
        log_event(
            self.logger,
            logging.ERROR,
            "pass_failed",
            f"maintenance pass could not run ({text}); retrying in {delay:.1f}s "
            f"(attempt {self.failures})",
            error=text,
            failures=self.failures,
            retry_in_seconds=round(delay, 3),
        )

    def finished(self) -> None:
        """The loop has ended (stopped), in its own task or thread."""
