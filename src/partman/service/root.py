"""The composition root: `Service` builds the service's parts and wires them together.

    Database (pool) -> Manager -> Metrics -> Passes -> Scheduler (leadership + the keeper loop)
                                                    -> the FastAPI app (routers over `Host`)

Nothing else constructs them, and none of them imports this module: the scheduler sees a
`PassRunner`, the routers a `Host`, the server thread something it can close.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import psycopg
from fastapi import FastAPI
from psycopg import sql

from .. import __version__
from ..db import reads
from ..decide.coverage import Inventory
from ..engine.hooks import PreDropHook, StepHook
from ..engine.manager import Manager
from ..model.clock import Clock
from ..model.config import Config
from ..model.operations import Plan
from ..model.report import Report
from ..model.service_options import ServiceOptions
from ..model.text import first_line
from .api import create_app
from .database import Database
from .metrics import Metrics
from .passes import Passes, Prepare
from .scheduler import Scheduler, wake_channel
from .server import HttpServer, ServerThread, serve_until_signalled
from .shared import SharedReads, read_fingerprint

OnReady = Callable[["Service", str], None]
"""Called once the HTTP server listens, with the service and its base URL."""


class Service:
    """partman as a long-running service: scheduled maintenance with leader election among
    replicas, a JSON API, a web UI and Prometheus metrics, over one database.

    `Service(dsn, config=..., options=...)` opens a connection pool (lazily connecting; the
    database may be down) and builds the FastAPI app (`service.app`). Serving it starts the
    scheduler (`options.scheduler`) and stopping it stops the scheduler after the pass under
    way. `serve()` blocks until SIGTERM/SIGINT; `start_server()` serves from a thread.
    """

    def __init__(
        self,
        dsn: str,
        *,
        config: Config | None = None,
        options: ServiceOptions | None = None,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
        prepare: Prepare | None = None,
        pre_drop_hook: PreDropHook | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        self.dsn = dsn
        self.config = config or Config()
        self.options = options or ServiceOptions()
        self.logger = logger or logging.getLogger("partman.service")
        self.started_at = dt.datetime.now(dt.UTC)
        self.database = Database(dsn, self.config, self.options)
        self.pool = self.database.pool
        self.manager = Manager(
            self.pool,
            config=self.config,
            clock=clock,
            logger=logger or logging.getLogger("partman"),
            pre_drop_hook=pre_drop_hook,
            on_step=on_step,
        )
        self.reads = SharedReads(self.manager, self._fingerprint)
        self.metrics = Metrics(
            self.reads.inventory,
            self.logger,
            self._archive_totals,
            per_tenant=self.options.metrics_per_tenant,
        )
        self.passes = Passes(
            self.manager,
            self.metrics,
            instance=self.options.instance,
            logger=self.logger,
            prepare=prepare,
            changed=self.reads.invalidate,
        )
        self.scheduler = Scheduler(
            self.passes,
            self.metrics,
            functools.partial(self.database.connect, role="leader"),
            options=self.options,
            interval=self.config.sample_rate.total_seconds(),
            schema=self.config.metadata_schema,
            logger=self.logger,
        )
        self.app: FastAPI = create_app(self)
        self._closed = False

    # -- what the API and the passes use -----------------------------------------------------

    def connection_kwargs(self, *, role: str) -> dict[str, Any]:
        return self.database.connection_kwargs(role=role)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection (PoolTimeout after `options.db_timeout`)."""
        with self.database.connection() as conn:
            yield conn

    def diagnose(self) -> str:
        return self.database.diagnose()

    def _archive_totals(self) -> list[reads.ArchiveTotal]:
        with self.connection() as conn:
            return reads.archive_totals(conn, self.config.metadata_schema)

    def ensure_metadata(self) -> int:
        return self.passes.ensure_metadata()

    def run_pass(self, trigger: str) -> Report:
        """One maintenance pass now (`prepare` first), recorded in the metrics and status.
        Safe on any replica at any time: passes on one database take turns."""
        return self.passes.run_pass(trigger)

    def inventory(self) -> Inventory:
        """Every managed table's partitions and coverage, shared by the service's reads
        (`shared.SharedReads`: computed once, renewed when anything changes)."""
        return self.reads.inventory()

    def plan(self) -> Plan:
        """What the next pass would do now, shared as the inventory is."""
        return self.reads.plan()

    def _fingerprint(self) -> object:
        with self.connection() as conn:
            return read_fingerprint(conn, self.config.metadata_schema)

    def nudge(self) -> None:
        """Something changed through the API: ask the leader (here or elsewhere) for a pass."""
        self.reads.invalidate()  # this replica's next read shows the change
        if not self.options.pass_on_change:
            return
        self.scheduler.wake()
        try:
            with self.connection() as conn:
                conn.execute(
                    sql.SQL("SELECT pg_notify({}, {})").format(
                        sql.Literal(wake_channel(self.config.metadata_schema)),
                        sql.Literal(self.options.instance),
                    )
                )
        except Exception as error:  # the next interval's pass does it anyway
            self.logger.debug("could not notify the leader: %s", error)

    # -- health ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Database reachable and metadata at this partman's version."""
        why = self.database.unreachable()
        if why is not None:
            return False, {"database": f"unreachable: {why}"}
        try:
            version = self.ensure_metadata()
        except Exception as error:
            return False, {"database": "reachable", "metadata": first_line(error, with_type=True)}
        return True, {"database": "reachable", "metadata_version": version}

    def status(self) -> dict[str, Any]:
        scheduler = self.scheduler.status()
        if not self.options.scheduler:
            role = "api-only"
        elif not self.options.leader_election:
            role = "standalone"
        elif scheduler["state"] in ("starting", "stopped"):
            role = scheduler["state"]
        else:
            role = "leader" if scheduler["leader"] else "follower"
        return {
            "instance": self.options.instance,
            "version": __version__,
            "role": role,
            "leader": bool(scheduler["leader"]),
            "started_at": self.started_at.isoformat(),
            "metadata_schema": self.config.metadata_schema,
            "sample_rate_seconds": self.config.sample_rate.total_seconds(),
            "mutations_enabled": self.options.token is not None,
            "read_requires_token": self.options.read_requires_token,
            "scheduler": scheduler,
            "last_pass": self.passes.last_pass,
            "prepare_error": self.passes.prepare_error,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Service:
        """Start background maintenance (done by the app's startup when served)."""
        if self.options.scheduler:
            self.scheduler.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop background maintenance after the pass under way; release leadership."""
        self.scheduler.stop(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.database.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _server(self, on_ready: OnReady | None) -> HttpServer:
        ready = None if on_ready is None else functools.partial(on_ready, self)
        return HttpServer(self.app, self.options, self.logger, ready)

    def serve(self, on_ready: OnReady | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully: requests under way and the
        pass under way finish, leadership is released, the pool is closed. Returns normally.
        """
        serve_until_signalled(self._server(on_ready), self, self.logger)

    def start_server(self, on_ready: OnReady | None = None, timeout: float = 30.0) -> ServerThread:
        """Serve from a background thread (tests, or an application embedding the service)."""
        thread = ServerThread(self._server(on_ready), self)
        thread.start_and_wait(timeout)
        return thread
