"""Serving the app with uvicorn: in the foreground (`Service.serve`) or from a thread
(`ServerThread`, for tests and applications that embed the service)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI

from ..errors import PartmanError
from ..logs import log_event
from ..model.service_options import ServiceOptions


class Served(Protocol):
    """What a `ServerThread` stops with its server."""

    @property
    def options(self) -> ServiceOptions: ...

    def close(self) -> None: ...


def _uvicorn_logging() -> dict[str, Any] | None:
    """uvicorn's own logging setup (plain lines on stderr), unless the process has set up its
    logging (`partman run`: one JSON object per line): then uvicorn's loggers hand their
    records to it, and every line on stderr has the same form."""
    if logging.getLogger().handlers:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            named = logging.getLogger(name)
            named.handlers.clear()
            named.propagate = True
        return None
    return uvicorn.config.LOGGING_CONFIG


class HttpServer(uvicorn.Server):
    """uvicorn's server, which knows its URL once it listens (port 0 picks a free one)."""

    def __init__(
        self,
        app: FastAPI,
        options: ServiceOptions,
        logger: logging.Logger,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=options.host,
                port=options.port,
                log_config=_uvicorn_logging(),
                log_level=options.log_level,
                access_log=options.access_log,
                lifespan="on",
                timeout_graceful_shutdown=None,
            )
        )
        self.instance = options.instance
        self.logger = logger
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
            self.logger,
            logging.INFO,
            "service_listening",
            f"partman service {self.instance} listening on {self.url}",
            url=self.url,
        )
        if self.on_ready is not None:
            self.on_ready(self.url)


class ServerThread:
    """A service served by uvicorn in a daemon thread; `stop()` shuts it down gracefully."""

    def __init__(self, server: HttpServer, service: Served) -> None:
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


def serve_until_signalled(server: HttpServer, served: Served, logger: logging.Logger) -> None:
    """Serve in this thread until SIGTERM or SIGINT, then stop gracefully: requests under way
    and the pass under way finish, `served` is closed (leadership released, pools closed).
    Returns normally, so that a container's stop is a clean exit, not a signal death."""
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
        served.close()
    if stopping:
        log_event(
            logger,
            logging.INFO,
            "service_stopped",
            f"{served.options.instance} stopped on {signal.Signals(stopping[0]).name}",
        )
