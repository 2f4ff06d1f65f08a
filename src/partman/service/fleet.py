"""The fleet's composition root: several databases served by one process.

    Fleet -> one Service per database (its pool, Manager, Metrics, Passes, Scheduler)
          -> one FastAPI app (api.fleet: each Service's routers under /api/databases/{name})
          -> one metrics registry (every Service's series with a `database` label)
          -> one HTTP server

Each database is a whole `Service`: its own pool, its own leadership (the advisory lock lives
in that database, so replicas elect a leader per database) and its own scheduler thread. One
database down is that Service's business alone: its scheduler backs off and retries, its
routes answer 503, and the others go on.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ..engine.hooks import PreDropHook
from ..model.clock import Clock
from ..model.config import Config
from ..model.service_options import ServiceOptions
from ..model.text import first_line
from .api.fleet import create_fleet_app
from .api.host import Host
from .database import missing_privileges
from .passes import Prepare
from .root import Service
from .server import HttpServer, ServerThread, serve_until_signalled

OnFleetReady = Callable[["Fleet", str], None]
"""Called once the HTTP server listens, with the fleet and its base URL."""


@dataclasses.dataclass(frozen=True)
class Member:
    """One database of a fleet, as the fleet is told about it."""

    name: str
    dsn: str
    prepare: Prepare | None = None


class _DatabaseField(logging.Filter):
    """Every record a database's Service logs carries `database` (a JSON log line's field)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.database = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.database = self.database
        return True


UP = "partman_database_up"
UP_HELP = "1 when the last scrape could read the catalog and partman's metadata"


class _DatabaseLabelled(Collector):
    """Every database's series in one exposition, each sample with a `database` label: one
    family per metric name (Prometheus refuses a family twice), its samples from each
    database's registry, read side by side.

    A scrape waits at most `budget` seconds for the databases: one whose reads have not
    answered by then (down: its pool waits for a connection it cannot make) is reported
    `partman_database_up 0` and its other series are left out of that scrape, so one
    database down never makes the scrape of the others time out. Its reading goes on in the
    background and the next scrape waits on it rather than starting another."""

    def __init__(self, registries: Mapping[str, CollectorRegistry], budget: float) -> None:
        self._registries = registries
        self._budget = budget
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="partman-scrape")
        self._pending: dict[str, Future[list[Metric]]] = {}
        self._lock = threading.Lock()

    def _reading(self, name: str) -> Future[list[Metric]]:
        with self._lock:
            found = self._pending.get(name)
            if found is None or found.done():
                registry = self._registries[name]
                found = self._pool.submit(lambda: list(registry.collect()))
                self._pending[name] = found
            return found

    def collect(self) -> Iterable[Metric]:
        readings = {name: self._reading(name) for name in self._registries}
        wait(readings.values(), timeout=self._budget)
        merged: dict[str, Metric] = {}
        for name, reading in readings.items():
            if not reading.done() or reading.exception() is not None:
                up = merged.setdefault(UP, Metric(UP, UP_HELP, "gauge"))
                up.add_sample(UP, {"database": name}, 0)
                continue
            for family in reading.result():
                into = merged.get(family.name)
                if into is None:
                    into = Metric(family.name, family.documentation, family.type, family.unit)
                    merged[family.name] = into
                for s in family.samples:
                    into.add_sample(
                        s.name, {"database": name, **s.labels}, s.value, s.timestamp, s.exemplar
                    )
        return list(merged.values())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class Fleet:
    """partman as a service over several databases: one `Service` per database (each with
    its pool, leadership, scheduler and metrics), one app, one registry, one HTTP server.

    `Fleet(members, config=..., options=...)` builds every Service (pools connect lazily: a
    database may be down) and the app (`fleet.app`); `serve()` blocks until SIGTERM/SIGINT,
    `start_server()` serves from a thread.
    """

    def __init__(
        self,
        members: Sequence[Member],
        *,
        config: Config | None = None,
        options: ServiceOptions | None = None,
        clock: Clock | None = None,
        logger: logging.Logger | None = None,
        pre_drop_hook: PreDropHook | None = None,
    ) -> None:
        if not members:
            raise ValueError("a fleet needs at least one database")
        self.config = config or Config()
        self.options = options or ServiceOptions()
        self.logger = logger or logging.getLogger("partman.service")
        self.services: dict[str, Service] = {}
        self._fields: list[tuple[logging.Logger, logging.Filter]] = []
        for member in members:
            logger = self.logger.getChild(member.name)
            field = _DatabaseField(member.name)
            logger.addFilter(field)
            self._fields.append((logger, field))
            self.services[member.name] = Service(
                member.dsn,
                config=self.config,
                options=self.options,
                clock=clock,
                logger=logger,
                prepare=member.prepare,
                pre_drop_hook=pre_drop_hook,
            )
        self.registry = CollectorRegistry(auto_describe=False)
        self._scrape = _DatabaseLabelled(
            {n: s.metrics.registry for n, s in self.services.items()},
            budget=self.options.db_timeout.total_seconds(),
        )
        self.registry.register(self._scrape)
        self.app: FastAPI = create_fleet_app(self)
        self._closed = False

    # -- what the app uses -------------------------------------------------------------------

    def members(self) -> Mapping[str, Host]:
        return self.services

    def _each(self, read: Callable[[Service], dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """`read` of each database side by side: one that is down costs its own timeout."""
        with ThreadPoolExecutor(max_workers=min(8, len(self.services))) as pool:
            found = list(pool.map(read, self.services.values()))
        return dict(zip(self.services, found, strict=True))

    def databases(self) -> list[dict[str, Any]]:
        def one(service: Service) -> dict[str, Any]:
            why = service.database.unreachable()
            status = service.status()
            return {
                "reachable": why is None,
                "unreachable_reason": why,
                "role": status["role"],
                "leader": status["leader"],
                "scheduler": status["scheduler"],
                "last_pass": status["last_pass"],
                "prepare_error": status["prepare_error"],
            }

        return [
            {"name": name, "url": f"/api/databases/{name}", **state}
            for name, state in self._each(one).items()
        ]

    def readiness(self) -> dict[str, dict[str, Any]]:
        def one(service: Service) -> dict[str, Any]:
            ready, detail = service.readiness()
            if ready:
                try:
                    with service.connection() as conn:
                        lacking = missing_privileges(conn, self.config.metadata_schema)
                    detail = {**detail, "privileges": [f.to_dict() for f in lacking]}
                    ready = not lacking
                except Exception as error:
                    detail = {**detail, "privileges": first_line(error, with_type=True)}
                    ready = False
            return {"ready": ready, **detail}

        return self._each(one)

    def diagnose(self, name: str) -> str:
        return self.services[name].diagnose()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Fleet:
        for service in self.services.values():
            service.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop every database's maintenance after its pass under way, side by side."""
        threads = [
            threading.Thread(target=s.stop, args=(timeout,), name=f"partman-stop-{n}")
            for n, s in self.services.items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._scrape.close()
        for service in self.services.values():
            service.close()
        for logger, field in self._fields:
            logger.removeFilter(field)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _server(self, on_ready: OnFleetReady | None) -> HttpServer:
        ready = None if on_ready is None else functools.partial(on_ready, self)
        return HttpServer(self.app, self.options, self.logger, ready)

    def serve(self, on_ready: OnFleetReady | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then stop gracefully (as `Service.serve`)."""
        serve_until_signalled(self._server(on_ready), self, self.logger)

    def start_server(
        self, on_ready: OnFleetReady | None = None, timeout: float = 30.0
    ) -> ServerThread:
        """Serve from a background thread (tests, or an application embedding the fleet)."""
        thread = ServerThread(self._server(on_ready), self)
        thread.start_and_wait(timeout)
        return thread
