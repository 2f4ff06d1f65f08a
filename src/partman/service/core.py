"""The service: one Manager, its connection pool, the scheduler, the metrics and the web app."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType
from typing import Any

import psycopg
import uvicorn
from fastapi import FastAPI
from psycopg import conninfo as pg_conninfo
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import __version__
from ..decide.coverage import Inventory
from ..engine.hooks import PreDropHook, StepHook
from ..engine.manager import Manager
from ..errors import PartmanError
from ..logs import log_event
from ..model.clock import Clock
from ..model.config import Config
from ..model.report import Report
from ..model.service_options import ServiceOptions
from ..model.text import first_line
from .metrics import Metrics
from .scheduler import Scheduler, wake_channel

Prepare = Callable[[Manager], None]
"""Called before every pass (scheduled or applied through the API) with the service's Manager:
the place to (re)register what a config file declares. A PartmanError it raises is reported in
the status and the pass goes on; a database error fails the pass (retried with backoff)."""

OnReady = Callable[["Service", str], None]
"""Called once the HTTP server listens, with the service and its base URL."""

_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
_LEADER_KEEPALIVES = {  # a silent network loss must end leadership quickly, on both sides
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


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
        self.prepare = prepare
        self.started_at = dt.datetime.now(dt.UTC)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=self.options.pool_size,
            kwargs=self.connection_kwargs(role="pool"),
            timeout=self.options.db_timeout.total_seconds(),
            check=ConnectionPool.check_connection,
            reconnect_timeout=max(60.0, self.options.backoff_max.total_seconds() * 2),
            name=f"partman-service-{self.options.instance}",
            open=True,
        )
        self.manager = Manager(
            self.pool,
            config=self.config,
            clock=clock,
            logger=logger or logging.getLogger("partman"),
            pre_drop_hook=pre_drop_hook,
            on_step=on_step,
        )
        self.metrics = Metrics(self.manager.inventory, self.logger)
        self.scheduler = Scheduler(self)
        self._metadata_version: int | None = None
        self._metadata_lock = threading.Lock()
        self._last_pass: dict[str, Any] | None = None
        self._last_prepare_error: dict[str, Any] | None = None
        self._closed = False
        from .app import create_app  # the app needs the finished service

        self.app: FastAPI = create_app(self)

    # -- connections -------------------------------------------------------------------------

    def connection_kwargs(self, *, role: str) -> dict[str, Any]:
        """libpq parameters for our connections: autocommit, a name in pg_stat_activity, a
        connect timeout and TCP keepalives (so a dead network is noticed), unless the DSN sets
        its own."""
        given = pg_conninfo.conninfo_to_dict(self.dsn)
        name = self.config.application_name
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": name if role == "pool" else f"{name}:{role}",
        }
        if "connect_timeout" not in given:
            kwargs["connect_timeout"] = max(1, round(self.options.db_timeout.total_seconds()))
        for key, value in (_LEADER_KEEPALIVES if role == "leader" else _KEEPALIVES).items():
            if key not in given:
                kwargs[key] = value
        return kwargs

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection (PoolTimeout after `options.db_timeout`)."""
        with self.pool.connection() as conn:
            yield conn

    def diagnose(self) -> str:
        """Why the pool has no connection to give: the database's own answer to a fresh
        connection attempt, or (if that works) a busy pool."""
        kwargs = self.connection_kwargs(role="probe")
        try:
            with psycopg.connect(self.dsn, **kwargs) as conn:
                conn.execute("SELECT 1")
        except Exception as error:
            return first_line(error, with_type=True)
        return (
            f"all {self.options.pool_size} pooled connections stayed busy for "
            f"{self.options.db_timeout.total_seconds():g}s"
        )

    def ensure_metadata(self) -> int:
        """Create or upgrade partman's metadata schema once per process; its version."""
        with self._metadata_lock:
            if self._metadata_version is None:
                self._metadata_version = self.manager.init()
            return self._metadata_version

    # -- passes ------------------------------------------------------------------------------

    def run_pass(self, trigger: str) -> Report:
        """One maintenance pass now (`prepare` first), recorded in the metrics and status.

        Safe on any replica at any time: passes on one database take turns on partman's pass
        lock (a pass that waited longer than `Config.pass_lock_wait` is reported skipped)."""
        started = time.perf_counter()
        at = dt.datetime.now(dt.UTC)
        try:
            self.ensure_metadata()
            if self.prepare is not None:
                try:
                    self.prepare(self.manager)
                    self._last_prepare_error = None
                except PartmanError as error:
                    self._last_prepare_error = {
                        "message": str(error),
                        "at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                    log_event(
                        self.logger,
                        logging.ERROR,
                        "prepare_failed",
                        f"before the pass: {error}; the pass goes on with what is registered",
                    )
            report = self.manager.maintain()
        except Exception as error:
            self.metrics.pass_errors.inc()
            self._last_pass = {
                "trigger": trigger,
                "instance": self.options.instance,
                "started_at": at.isoformat(),
                "error": first_line(error, with_type=True),
            }
            raise
        seconds = time.perf_counter() - started
        self.metrics.observe(report, seconds)
        self._last_pass = {
            "trigger": trigger,
            "instance": self.options.instance,
            "started_at": at.isoformat(),
            "duration_seconds": round(seconds, 3),
            "error": None,
            **report.summary(),
        }
        return report

    def nudge(self) -> None:
        """Something changed through the API: ask the leader (here or elsewhere) for a pass."""
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

    def inventory(self) -> Inventory:
        return self.manager.inventory()

    # -- health ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Database reachable and metadata at this partman's version."""
        try:
            with self.pool.connection(timeout=min(1.0, self.options.db_timeout.total_seconds())):
                pass  # the pool checks the connection before handing it out
        except PoolTimeout:
            return False, {"database": f"unreachable: {self.diagnose()}"}
        except Exception as error:
            return False, {"database": f"unreachable: {first_line(error, with_type=True)}"}
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
            "last_pass": self._last_pass,
            "prepare_error": self._last_prepare_error,
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
        self.pool.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _uvicorn(self, on_ready: OnReady | None) -> _Server:
        config = uvicorn.Config(
            self.app,
            host=self.options.host,
            port=self.options.port,
            log_level=self.options.log_level,
            access_log=self.options.access_log,
            lifespan="on",
            timeout_graceful_shutdown=None,
        )
        return _Server(config, self, on_ready)

    def serve(self, on_ready: OnReady | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully: requests under way and the
        pass under way finish, leadership is released, the pool is closed. Returns normally.
        """
        server = self._uvicorn(on_ready)
        stopping: list[int] = []
        main = threading.current_thread() is threading.main_thread()

        def remember(signum: int, frame: FrameType | None) -> None:
            stopping.append(signum)  # uvicorn re-raises the signal it handled, once done

        previous = (
            {s: signal.signal(s, remember) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
        )
        try:
            server.run()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.close()
        if stopping:
            log_event(
                self.logger,
                logging.INFO,
                "service_stopped",
                f"{self.options.instance} stopped on {signal.Signals(stopping[0]).name}",
            )

    def start_server(self, on_ready: OnReady | None = None, timeout: float = 30.0) -> ServerThread:
        """Serve from a background thread (tests, or an application embedding the service)."""
        server = self._uvicorn(on_ready)
        thread = ServerThread(server, self)
        thread.start_and_wait(timeout)
        return thread


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, service: Service, on_ready: OnReady | None) -> None:
        super().__init__(config)
        self.service = service
        self.on_ready = on_ready
        self.url: str | None = None

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if not self.started or self.should_exit:
            return
        port = self.config.port
        for server in getattr(self, "servers", []):
            for sock in server.sockets:
                port = sock.getsockname()[1]
                break
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        log_event(
            self.service.logger,
            logging.INFO,
            "service_listening",
            f"partman service {self.service.options.instance} listening on {self.url}",
            url=self.url,
        )
        if self.on_ready is not None:
            self.on_ready(self.service, self.url)


class ServerThread:
    """A service served by uvicorn in a daemon thread; `stop()` shuts it down gracefully."""

    def __init__(self, server: _Server, service: Service) -> None:
        self.server = server
        self.service = service
        self._thread = threading.Thread(
            target=server.run, name=f"partman-http-{service.options.instance}", daemon=True
        )

    @property
    def url(self) -> str:
        assert self.server.url is not None
        return self.server.url

    def start_and_wait(self, timeout: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self.server.url is None:
            if not self._thread.is_alive():
                raise PartmanError(
                    f"the HTTP server did not start on {self.service.options.host}:"
                    f"{self.service.options.port} (port in use?)"
                )
            if time.monotonic() > deadline:
                raise PartmanError(f"the HTTP server did not start within {timeout}s")
            time.sleep(0.01)

    def stop(self, timeout: float = 60.0, *, close: bool = True) -> None:
        """Graceful: the server stops accepting and finishes its requests, the scheduler its
        pass; then (`close`) the service's pool is closed."""
        self.server.should_exit = True
        self._thread.join(timeout)
        if close:
            self.service.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
