"""The keep-maintained loop (the generated `Keeper` and its source `AsyncKeeper`), without a
database: what it runs, how long it waits, and what it logs."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from partman.engine.keeper import Keeper
from partman.engine.keeper_async import AsyncKeeper
from partman.model.backoff import Backoff


class Recorded(Keeper):
    """Runs in the caller's thread; records each wait and stops after `attempts` attempts."""

    def __init__(self, steps: list[str], attempts: int, **kwargs: object) -> None:
        self.steps = steps
        self.waits: list[float] = []
        self.left = attempts
        super().__init__(
            lambda: self._step("maintain"),
            prepare=lambda: self._step("prepare"),
            interval=10.0,
            logger=logging.getLogger("partman.test.keeper"),
            **kwargs,  # type: ignore[arg-type]
        )

    def _step(self, name: str) -> None:
        self.steps.append(name)
        if name == "maintain":
            self.left -= 1
            if self.left == 0:
                self._stop.set()

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_prepares_then_maintains_each_interval_after_the_first_wait() -> None:
    steps: list[str] = []
    keeper = Recorded(steps, attempts=3, first_wait=2.5)
    keeper.run()
    assert steps == ["prepare", "maintain"] * 3
    assert keeper.waits == [2.5, 10.0, 10.0, 10.0]


def test_failures_back_off_are_logged_and_a_success_resets_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = iter([True, True, True, False])
    steps: list[str] = []

    def prepare() -> None:
        steps.append("prepare")
        if next(failing):
            raise OSError("connection refused")

    keeper = Recorded(steps, attempts=1, backoff=Backoff(1.0, cap=3.0))
    keeper._prepare = prepare
    caplog.set_level(logging.INFO, "partman.test.keeper")
    keeper.run()
    assert steps == ["prepare"] * 4 + ["maintain"]
    assert keeper.waits == [1.0, 2.0, 3.0, 10.0]
    assert keeper.failures == 0
    events = [(r.event, getattr(r, "failures", None)) for r in caplog.records]  # type: ignore[attr-defined]
    assert events == [
        ("pass_failed", 1),
        ("pass_failed", 2),
        ("pass_failed", 3),
        ("scheduler_recovered", 3),
    ]
    assert "OSError: connection refused" in caplog.records[0].getMessage()


def test_retries_at_the_next_interval_by_default() -> None:
    keeper = Keeper(lambda: None, interval=7.0, logger=logging.getLogger("partman.test"))
    assert [keeper.backoff.delay(n) for n in (1, 2, 5)] == [7.0, 7.0, 7.0]


def test_a_thread_keeper_stops_within_its_wait_and_says_it_ended() -> None:
    ran = threading.Event()
    keeper = Keeper(ran.set, interval=60.0, logger=logging.getLogger("partman.test"))
    keeper.start()
    assert ran.wait(5)
    keeper.start()  # a no-op while it runs
    assert keeper.running
    assert keeper.stop(5) is True
    assert not keeper.running


def test_an_async_keeper_cancels_a_pass_that_outlives_the_timeout() -> None:
    async def main() -> tuple[bool, bool]:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        keeper = AsyncKeeper(slow, interval=60.0, logger=logging.getLogger("partman.test"))
        keeper.start()
        await asyncio.wait_for(started.wait(), 5)
        ended = await keeper.stop(0.05)
        return ended, cancelled.is_set()

    assert asyncio.run(main()) == (False, True)
