"""How long to wait before trying again: the one backoff formula partman uses.

Three things retry, each with its own numbers and this one shape: a transaction whose lock
budget ran out (`Config.retry_backoff`, +-50% jitter so that waiting writers do not line up
again), an import that could not lock its partitions (`Config.retry_backoff`, no jitter), and
the service's scheduled pass that could not run (`ServiceOptions.backoff_initial` capped at
`backoff_max`, +-10% jitter so that replicas do not reconnect in step).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

_MAX_DOUBLINGS = 30
"""2**30 times any sensible base is already past any sensible cap; stops float overflow."""


@dataclass(frozen=True)
class Backoff:
    """`base * 2**(attempt - 1)` seconds, at most `cap`, times a random factor within
    `1 +- jitter`. Attempt 1 waits `base`."""

    base: float
    cap: float = math.inf
    jitter: float = 0.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after the `attempt`-th failure in a row (1 for the first)."""
        doublings = min(max(attempt, 1) - 1, _MAX_DOUBLINGS)
        seconds = min(self.cap, self.base * 2.0**doublings)
        if self.jitter:
            seconds *= 1.0 - self.jitter + 2.0 * self.jitter * rand()
        return seconds
