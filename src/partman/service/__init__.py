"""partman as a service: scheduled maintenance with leader election, JSON API, web UI, metrics.

    from partman.service import ServiceOptions, serve
    serve("postgresql://partman@db/app", config=partman.Config(...),
          options=ServiceOptions(host="0.0.0.0", port=8080, token="..."),
          prepare=lambda manager: ...)   # e.g. register what the config file declares

blocks until SIGTERM/SIGINT, then stops gracefully (requests and the pass under way finish,
leadership is released). `partman.demo.service.run_demo_server()` does the same on a throwaway
embedded PostgreSQL with the seed's tables, tenants and rows. See `Service` to embed it instead.

Inside: `root` (the composition root: `Service` builds and wires the parts), `database` (the
pool and connection settings), `passes` (a pass with `prepare`, recorded), `scheduler`
(leadership around partman's keep-maintained loop), `metrics`, `api/` (one router per
resource), `server` (uvicorn), `ui/` (the web UI's files).
"""

from __future__ import annotations

import logging

from ..engine.hooks import PreDropHook, StepHook
from ..model.clock import Clock
from ..model.config import Config
from ..model.service_options import ServiceOptions
from .fleet import Fleet, Member, OnFleetReady
from .metrics import SERIES
from .passes import Prepare
from .root import OnReady, Service
from .scheduler import LEADER_LOCK_CLASS, leader_lock_key
from .server import ServerThread


def serve(
    dsn: str,
    *,
    config: Config | None = None,
    options: ServiceOptions | None = None,
    clock: Clock | None = None,
    logger: logging.Logger | None = None,
    prepare: Prepare | None = None,
    pre_drop_hook: PreDropHook | None = None,
    on_step: StepHook | None = None,
    on_ready: OnReady | None = None,
) -> None:
    """Run the service in the foreground until SIGTERM or SIGINT (then return normally).

    `config` is partman's (sample_rate is the scheduler's interval), `options` the service's
    (address, token, ...). `prepare(manager)` runs before every pass: the place to register
    tables and tenants from a config file. `on_ready(service, url)` is called once listening.
    """
    service = Service(
        dsn,
        config=config,
        options=options,
        clock=clock,
        logger=logger,
        prepare=prepare,
        pre_drop_hook=pre_drop_hook,
        on_step=on_step,
    )
    service.serve(on_ready)


__all__ = [
    "LEADER_LOCK_CLASS",
    "SERIES",
    "Fleet",
    "Member",
    "OnFleetReady",
    "OnReady",
    "Prepare",
    "ServerThread",
    "Service",
    "ServiceOptions",
    "leader_lock_key",
    "serve",
]
