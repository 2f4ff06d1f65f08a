"""The engine's hooks: what an application may plug into a pass (the pre-drop hook, a step
callback for progress bars and crash tests), in a sync and an async form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..model.operations import Operation, RetirePartition

HOOK_DECISIONS = ("drop", "detach", "archive", "skip")


PreDropHook = Callable[[RetirePartition], str | None]
"""Called before retention retires a partition. Return "drop", "detach", "archive", "skip" or
None (do what the policy says). It may take its time (a dump, say): no lock is held."""


StepHook = Callable[[str, Operation], None]
"""Called before each round trip that changes something (progress bars, crash tests)."""


Sleep = Callable[[float], None]


AsyncSleep = Callable[[float], Awaitable[None]]


Job = Callable[[], object]
"""What the background loop (`engine/keeper.py`) runs each time: prepare, or a pass."""


AsyncJob = Callable[[], Awaitable[object]]
"""`Job` for `AsyncKeeper`: a coroutine function."""


AsyncPreDropHook = Callable[[RetirePartition], str | Awaitable[str | None] | None]
"""`PreDropHook` for `AsyncManager`: a plain function or a coroutine function."""


AsyncStepHook = Callable[[str, Operation], Awaitable[None] | None]
"""`StepHook` for `AsyncManager`: a plain function or a coroutine function."""
