"""Background maintenance: a pass every `Config.sample_rate`, on one replica at a time.

Leadership is a session-level advisory lock held on a connection of its own (never a pooled
one), keyed on the metadata schema and distinct from partman's pass lock. The holder runs the
scheduled passes; the others try to take the lock once per interval, so when the leader's
process or connection dies (PostgreSQL releases a session lock with its backend) another
replica takes over within one interval. A leader that loses its connection stands back for an
interval and a half before it tries again, so that the takeover goes to a replica that still
has a working connection.

The loop is partman's keep-maintained loop (`engine/keeper.py`): failures (database
restarted, network gone, pool exhausted) are recorded in the status and the metrics and retried
with exponential backoff; a pass that succeeds resets it. `stop()` lets the pass under way
finish, then releases leadership by closing its connection.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from prometheus_client import Counter, Gauge
from psycopg import sql
from psycopg_pool import PoolTimeout

from ..engine.keeper import Keeper
from ..logs import log_event
from ..model.backoff import Backoff
from ..model.service_options import ServiceOptions
from ..model.text import first_line, iso

LEADER_LOCK_CLASS = 0x6C656164  # 'lead': apart from the pass lock's class ('part')
STAND_BACK_INTERVALS = 1.5
SERVER_KEEPALIVES = (
    ("tcp_keepalives_idle", sql.Literal(10)),
    ("tcp_keepalives_interval", sql.Literal(5)),
    ("tcp_keepalives_count", sql.Literal(3)),
    ("tcp_user_timeout", sql.Literal(30000)),
)


def leader_lock_key(metadata_schema: str) -> str:
    return f"partman:leader:{metadata_schema}"


def wake_channel(metadata_schema: str) -> str:
    """The LISTEN/NOTIFY channel on which any replica asks the leader for a pass now."""
    digest = hashlib.sha256(metadata_schema.encode()).hexdigest()[:16]
    return f"partman_wake_{digest}"


def leader_lock_sql(metadata_schema: str, function: str = "pg_try_advisory_lock") -> sql.Composed:
    return sql.SQL("SELECT {}({}, hashtext({}))").format(
        sql.Identifier(function),
        sql.Literal(LEADER_LOCK_CLASS),
        sql.Literal(leader_lock_key(metadata_schema)),
    )


def is_connection_error(error: BaseException) -> bool:
    return isinstance(error, psycopg.OperationalError | PoolTimeout | OSError)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PassRunner(Protocol):
    """What the scheduler runs (the service's passes)."""

    def ensure_metadata(self) -> int: ...

    def run_pass(self, trigger: str) -> object: ...


class SchedulerMetrics(Protocol):
    """The metrics the scheduler keeps."""

    @property
    def pass_errors(self) -> Counter: ...

    @property
    def consecutive_failures(self) -> Gauge: ...

    @property
    def leader(self) -> Gauge: ...


Connect = Callable[[], psycopg.Connection[Any]]
"""Opens the leadership connection: one of its own, never a pooled one."""


class Scheduler(Keeper):
    """Runs `passes.run_pass("schedule")` every interval while this replica leads."""

    def __init__(
        self,
        passes: PassRunner,
        metrics: SchedulerMetrics,
        connect: Connect,
        *,
        options: ServiceOptions,
        interval: float,
        schema: str,
        logger: logging.Logger,
    ) -> None:
        super().__init__(
            self._attempt,
            prepare=self._prepare,
            interval=interval,
            logger=logger,
            backoff=Backoff(
                options.backoff_initial.total_seconds(),
                cap=options.backoff_max.total_seconds(),
                jitter=0.1,  # replicas that failed together do not retry in step
            ),
            first_wait=options.first_pass_delay.total_seconds(),
            name=f"partman-scheduler-{options.instance}",
        )
        self.passes = passes
        self.metrics = metrics
        self.connect = connect
        self.options = options
        self.schema = schema
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._leader = False
        self._in_pass = False
        self._stand_back_until = 0.0
        self._attempts = 0
        self._last_error: dict[str, Any] | None = None
        self._last_attempt: dt.datetime | None = None
        self._next_at: dt.datetime | None = None
        self._leader_since: dt.datetime | None = None
        self._state = "stopped"

    # -- control -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def leader_pid(self) -> int | None:
        """The backend pid of the leadership connection (to find it in pg_stat_activity)."""
        conn = self._conn
        if not self._leader or conn is None or conn.closed:
            return None
        return conn.info.backend_pid

    def start(self) -> None:
        if self.running:
            return
        self._wake.clear()
        self._state = "starting"
        with self._lock:  # the UI says when the first pass comes (first_pass_delay)
            self._next_at = _utcnow() + self.options.first_pass_delay
        super().start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop after the pass under way (if any) has finished; give up leadership."""
        if not super().stop(timeout):
            log_event(
                self.logger,
                logging.WARNING,
                "scheduler_stop_timeout",
                f"the pass under way did not finish within {timeout}s; leaving it running",
            )
            return False
        self._release()
        self._state = "stopped"
        return True

    def wake(self) -> None:
        """Run the next pass now (if this replica leads) instead of at the next interval."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self._state,
                "leader": self._leader,
                "leader_election": self.options.leader_election,
                "leader_since": iso(self._leader_since),
                "interval_seconds": self.interval,
                "attempts": self._attempts,
                "consecutive_failures": self.failures,
                "last_error": self._last_error,
                "last_attempt_at": iso(self._last_attempt),
                "next_pass_at": iso(self._next_at),
            }

    # -- the keeper's steps and hooks --------------------------------------------------------

    def _prepare(self) -> None:
        self._wake.clear()  # a wake from now on (a change during the pass) means one more
        self._in_pass = False  # run_pass counts its own errors in the metrics
        with self._lock:
            self._last_attempt = _utcnow()
            self._attempts += 1
        self.passes.ensure_metadata()

    def _attempt(self) -> None:
        if self._claim():
            self._state = "running"
            self._in_pass = True
            self.passes.run_pass("schedule")

    def succeeded(self, recovered: int) -> None:
        super().succeeded(recovered)
        self.metrics.consecutive_failures.set(0)
        self._scheduled("leader" if self._leader else "follower", self.interval)

    def failed(self, error: Exception, delay: float) -> None:
        if not self._in_pass:
            self.metrics.pass_errors.inc()
        with self._lock:
            self._last_error = {
                "message": first_line(error, with_type=True),
                "at": iso(_utcnow()),
                "kind": "database" if is_connection_error(error) else "error",
            }
        self.metrics.consecutive_failures.set(self.failures)
        if is_connection_error(error) and self._conn is not None:
            self._check_connection()
        super().failed(error, delay)
        self._scheduled("backing off", delay)

    def _scheduled(self, state: str, delay: float) -> None:
        self._state = state
        with self._lock:
            self._next_at = _utcnow() + dt.timedelta(seconds=delay)

    def finished(self) -> None:
        self._release()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`; woken by stop(), wake() or (while leading) a NOTIFY from
        another replica. Watches the leadership connection meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopping and not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, 0.25)
            conn = self._conn
            if self._leader and conn is not None:
                try:
                    for _ in conn.notifies(timeout=step, stop_after=1):
                        self._wake.set()
                except psycopg.Error as error:
                    self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")
            else:
                self._wake.wait(step)

    # -- leadership --------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Whether this replica leads now (taking the lock if it is free)."""
        if not self.options.leader_election:
            self._set_leader(True)
            return True
        if self._conn is not None and (self._conn.closed or self._conn.broken):
            self._lose("leadership connection closed")
        if self._conn is None:
            if time.monotonic() < self._stand_back_until:
                return False
            self._conn = self._connect()
        conn = self._conn
        try:
            if self._leader:
                conn.execute("SELECT 1")  # the session (and its lock) is still there
                return True
            row = conn.execute(leader_lock_sql(self.schema)).fetchone()
        except psycopg.Error as error:
            self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")
            raise
        if row is not None and row[0]:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(wake_channel(self.schema))))
            self._set_leader(True)
        return self._leader

    def _connect(self) -> psycopg.Connection[Any]:
        conn = self.connect()
        # The server keeps the lock as long as it believes the session alive: make it find out
        # within ~30s that a leader's network is gone (TCP only; ignored on a Unix socket).
        for name, value in SERVER_KEEPALIVES:
            with contextlib.suppress(psycopg.errors.UndefinedObject):
                conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), value))
        return conn

    def _check_connection(self) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as error:
            self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")

    def _set_leader(self, leader: bool) -> None:
        if leader == self._leader:
            return
        with self._lock:
            self._leader = leader
            self._leader_since = _utcnow() if leader else None
        self.metrics.leader.set(1 if leader else 0)
        if leader:
            log_event(
                self.logger,
                logging.INFO,
                "leader_acquired",
                f"{self.options.instance} leads: it runs the scheduled passes",
                instance=self.options.instance,
            )

    def _lose(self, reason: str) -> None:
        """The leadership connection is gone (and with it the lock, server side)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is gone either way
                conn.close()
        if self._leader:
            self._stand_back_until = time.monotonic() + STAND_BACK_INTERVALS * self.interval
            self._set_leader(False)
            with self._lock:
                self._last_error = {"message": reason, "at": iso(_utcnow()), "kind": "leadership"}
            log_event(
                self.logger,
                logging.WARNING,
                "leader_lost",
                f"{self.options.instance} lost leadership ({reason}); another replica may take "
                "over",
                instance=self.options.instance,
                reason=reason,
            )

    def _release(self) -> None:
        """Give up leadership (closing the connection releases the session lock)."""
        conn, self._conn = self._conn, None
        was_leader = self._leader
        self._set_leader(False)
        if conn is not None:
            with contextlib.suppress(Exception):  # best effort on the way out
                conn.close()
        if was_leader:
            log_event(
                self.logger,
                logging.INFO,
                "leader_released",
                f"{self.options.instance} gave up leadership",
                instance=self.options.instance,
            )
