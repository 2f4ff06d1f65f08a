"""The one backoff formula, with each caller's numbers."""

from __future__ import annotations

import pytest

from partman.model.backoff import Backoff


def test_doubles_from_the_base_per_failure_without_jitter() -> None:
    """The import's lock retries: retry_backoff * 2**attempt, attempt counted from 0."""
    imports = Backoff(0.05)
    assert [imports.delay(attempt + 1) for attempt in range(4)] == pytest.approx(
        [0.05, 0.1, 0.2, 0.4]
    )
    assert imports.delay(0) == imports.delay(1)


def test_jitter_spreads_the_delay_evenly_around_it() -> None:
    """The executor's lock retries: delay * (0.5 + random()), i.e. +-50%."""
    locks = Backoff(0.1, jitter=0.5)
    assert locks.delay(3, rand=lambda: 0.0) == pytest.approx(0.4 * 0.5)
    assert locks.delay(3, rand=lambda: 0.5) == pytest.approx(0.4)
    assert locks.delay(3, rand=lambda: 1.0) == pytest.approx(0.4 * 1.5)


def test_the_cap_holds_before_the_jitter_and_never_overflows() -> None:
    """The scheduler: backoff_initial doubling up to backoff_max, then +-10%."""
    scheduler = Backoff(1.0, cap=60.0, jitter=0.1)
    assert scheduler.delay(1, rand=lambda: 0.5) == pytest.approx(1.0)
    assert scheduler.delay(6, rand=lambda: 0.5) == pytest.approx(32.0)
    assert scheduler.delay(7, rand=lambda: 0.5) == pytest.approx(60.0)
    assert scheduler.delay(10_000, rand=lambda: 1.0) == pytest.approx(66.0)
    assert 54.0 <= scheduler.delay(50) <= 66.0
