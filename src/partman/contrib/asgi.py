"""partman inside an asyncio service (FastAPI, Starlette, aiohttp, plain asyncio).

The service's `partman.toml` is the whole integration: `maintenance()` reads it, registers what
it declares (tables, policies, tenants, each table's `tenants_query`) and then, for as long as
the service runs, re-reads the tenants and runs a maintenance pass every `sample_rate`, as a
task on the service's own event loop, over an `AsyncManager`. Nothing blocks the loop: every
round trip is awaited. It is what `partman run` does, minus the web UI, inside your process.

    app = FastAPI(lifespan=partman.contrib.asgi.lifespan("partman.toml"))

A broken file or table fails the service's start-up (a `SettingsError` naming file, line and
key), the way a bad migration would; a pass that fails later is logged and retried next time.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from .. import settings as settings_module
from ..engine.hooks import AsyncPreDropHook
from ..engine.keeper_async import AsyncKeeper
from ..engine.manager_async import AsyncManager
from ..engine.sync_async import apply as apply_settings
from ..errors import ConfigError


@contextlib.asynccontextmanager
async def maintenance(
    config_file: str | Path = "partman.toml",
    *,
    dsn: str | None = None,
    environ: Mapping[str, str] | None = None,
    logger: logging.Logger | None = None,
    pre_drop_hook: AsyncPreDropHook | None = None,
) -> AsyncIterator[AsyncManager]:
    """Keep the file's tables maintained while the block runs; yields the `AsyncManager`
    (for `plan()`, `inventory()`, `last_report`...). `dsn` wins over the file's [database]."""
    found = settings_module.load(Path(config_file), environ=environ, dsn=dsn)
    if not found.dsn:
        raise ConfigError(
            f"{found.file}: no database to connect to; set [database] dsn (e.g. "
            '"${DATABASE_URL}") or pass dsn='
        )
    log = logger or logging.getLogger("partman")
    async with AsyncManager(
        found.dsn, config=found.config, logger=log, pre_drop_hook=pre_drop_hook
    ) as manager:
        await apply_settings(manager, found)  # a broken file or table fails start-up
        await manager.maintain()
        keeper = AsyncKeeper(
            manager.maintain,
            prepare=functools.partial(apply_settings, manager, found),  # tenants_query's news
            interval=found.config.sample_rate.total_seconds(),
            first_wait=found.config.sample_rate.total_seconds(),
            logger=log,
        )
        keeper.start()
        try:
            yield manager
        finally:
            await keeper.stop(30)  # a pass that will not finish is cancelled: it rolls back


def lifespan(
    config_file: str | Path = "partman.toml", **options: Any
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """An ASGI lifespan (FastAPI/Starlette `lifespan=`) running `maintenance()`; the manager is
    at `app.state.partman`. `options` are `maintenance()`'s keyword arguments."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        async with maintenance(config_file, **options) as manager:
            state = getattr(app, "state", None)
            if state is not None:
                state.partman = manager
            yield

    return run
