"""Clocks: the real one, and one tests and demos move by hand (go_partman's WithClock)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware."""
        ...


class RealClock:
    """The wall clock, in UTC: what every manager uses unless told otherwise."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class SimulatedClock:
    """A clock that only moves when told to; safe to share with the maintenance thread."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = _aware(start or dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: dt.datetime) -> None:
        with self._lock:
            self._now = _aware(instant)


def _aware(instant: dt.datetime) -> dt.datetime:
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} has no time zone; pass an aware datetime (e.g. tzinfo=UTC)")
    return instant
