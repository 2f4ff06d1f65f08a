"""Background maintenance: a pass every `Config.sample_rate`, on one replica at a time.

Leadership is a session-level advisory lock held on a connection of its own (never a pooled
one), keyed on the metadata schema and distinct from partman's pass lock. The holder runs the
scheduled passes; the others try to take the lock every quarter of `leader_lease` (or every
interval, if shorter).

The lease is the hand-over time. The leader's heartbeat runs a statement on its leadership
connection every fifth of the lease, from a thread of its own (passes or not). A follower that
finds the lock held by a session silent for longer than the lease (a frozen process, a cut
network the server has not noticed: nothing else tells them apart from a slow leader)
terminates that session and takes the lock. A new leader then ends every session still holding
the fence lock (a deposed leader's pass) before its first pass, and each transaction of its
passes checks that its leadership session still holds the lock (`db/fence.py`): a deposed
leader that wakes up does no DDL. A leader that gets no answer on its leadership connection
within a third of the lease (`watchdog.deadline`) or loses it steps down by itself, stands back
for an interval and a half and then competes again, so that a replica with a working
connection wins.

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

from ..db import fence as fencing
from ..db.fence import LEADER_LOCK_CLASS, Fence, is_fenced, leader_lock_key, leader_lock_sql
from ..engine.keeper import Keeper
from ..logs import log_event
from ..model.backoff import Backoff
from ..model.service_options import ServiceOptions
from ..model.text import first_line, iso
from .watchdog import deadline

__all__ = ["LEADER_LOCK_CLASS", "Scheduler", "leader_lock_key", "leader_lock_sql", "wake_channel"]

STAND_BACK_INTERVALS = 1.5
HEARTBEATS_PER_LEASE = 5
TRIES_PER_LEASE = 4
ANSWER_WITHIN_LEASE = 1 / 3


def server_keepalives(lease: float) -> tuple[tuple[str, sql.Literal], ...]:
    """The leadership session's server-side TCP settings: the server closes it (releasing the
    lock) within about the lease when the network to this replica is gone."""
    return (
        ("tcp_keepalives_idle", sql.Literal(max(1, round(lease / 3)))),
        ("tcp_keepalives_interval", sql.Literal(max(1, round(lease / 9)))),
        ("tcp_keepalives_count", sql.Literal(3)),
        ("tcp_user_timeout", sql.Literal(max(1000, round(lease * 1000)))),
    )


def wake_channel(metadata_schema: str) -> str:
    """The LISTEN/NOTIFY channel on which any replica asks the leader for a pass now."""
    digest = hashlib.sha256(metadata_schema.encode()).hexdigest()[:16]
    return f"partman_wake_{digest}"


def is_connection_error(error: BaseException) -> bool:
    return isinstance(error, psycopg.OperationalError | PoolTimeout | OSError)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PassRunner(Protocol):
    """What the scheduler runs (the service's passes)."""

    def ensure_metadata(self) -> int: ...

    def run_pass(self, trigger: str, fence: Fence | None = None) -> object: ...


class SchedulerMetrics(Protocol):
    """The metrics the scheduler keeps."""

    @property
    def pass_errors(self) -> Counter: ...

    @property
    def consecutive_failures(self) -> Gauge: ...

    @property
    def leader(self) -> Gauge: ...

    @property
    def database_reachable(self) -> Gauge: ...

    @property
    def reconnects(self) -> Counter: ...

    @property
    def leaders_deposed(self) -> Counter: ...


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
        self.lease = options.leader_lease.total_seconds()
        self.heartbeat_every = self.lease / HEARTBEATS_PER_LEASE
        self.try_every = min(interval, self.lease / TRIES_PER_LEASE)
        self.answer_within = self.lease * ANSWER_WITHIN_LEASE
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._conn_lock = threading.RLock()
        """Held by whoever uses or replaces the leadership connection (the scheduler's thread,
        the heartbeat's): one round trip at a time, never a close under a query."""
        self._conn: psycopg.Connection[Any] | None = None
        self._leader = False
        self._leader_pid: int | None = None
        self._in_pass = False
        self._began_leading = False
        self._stand_back_until = 0.0
        self._attempts = 0
        self._last_error: dict[str, Any] | None = None
        self._last_attempt: dt.datetime | None = None
        self._next_at: dt.datetime | None = None
        self._leader_since: dt.datetime | None = None
        self._state = "stopped"
        self._connected_once = False
        self._reconnects = 0
        self._deposed = 0
        self._unreachable_since: dt.datetime | None = None
        self._database_error: dict[str, Any] | None = None
        self._beat_stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- control -----------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def leader_pid(self) -> int | None:
        """The backend pid of the leadership connection (to find it in pg_stat_activity)."""
        return self._leader_pid if self._leader else None

    @property
    def database_reachable(self) -> bool:
        return self._unreachable_since is None

    def start(self) -> None:
        if self.running:
            return
        self._wake.clear()
        self._state = "starting"
        with self._lock:  # the UI says when the first pass comes (first_pass_delay)
            self._next_at = _utcnow() + self.options.first_pass_delay
        super().start()
        if self.options.leader_election:
            self._beat_stop.clear()
            self._beat = threading.Thread(
                target=self._heartbeat,
                name=f"partman-heartbeat-{self.options.instance}",
                daemon=True,
            )
            self._beat.start()

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
        self._stop_heartbeat()
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
                "leader_lease_seconds": self.lease,
                "interval_seconds": self.interval,
                "attempts": self._attempts,
                "consecutive_failures": self.failures,
                "last_error": self._last_error,
                "last_attempt_at": iso(self._last_attempt),
                "next_pass_at": iso(self._next_at),
                "database": {
                    "reachable": self._unreachable_since is None,
                    "unreachable_since": iso(self._unreachable_since),
                    "last_error": self._database_error,
                    "reconnects": self._reconnects,
                },
                "leaders_deposed": self._deposed,
            }

    # -- the keeper's steps and hooks --------------------------------------------------------

    def _prepare(self) -> None:
        self._wake.clear()  # a wake from now on (a change during the pass) means one more
        self._in_pass = False  # run_pass counts its own errors in the metrics
        self._began_leading = self._leader
        with self._lock:
            self._last_attempt = _utcnow()
            self._attempts += 1
        self.passes.ensure_metadata()

    def _attempt(self) -> None:
        if self._claim():
            self._state = "running"
            self._in_pass = True
            pid = self._leader_pid
            fence = (
                Fence(self.schema, pid)
                if self.options.leader_election and pid is not None
                else None
            )
            self.passes.run_pass("schedule", fence)

    def succeeded(self, recovered: int) -> None:
        super().succeeded(recovered)
        self.metrics.consecutive_failures.set(0)
        self._reachable()  # without leader election, passes are the only round trips
        if self._leader or not self.options.leader_election:
            self._scheduled("leader" if self._leader else "follower", self.interval)
        else:
            self._scheduled("follower", self.try_every)

    def failed(self, error: Exception, delay: float) -> None:
        if not self._in_pass:
            self.metrics.pass_errors.inc()
        fenced = is_fenced(error)
        # an attempt that began as leader (or a pass that began) and ends without it failed
        # for its leadership (the heartbeat, or the claim's check of the leadership session,
        # saw it first): said so, not as the error the lost connection gave it
        lost = (
            self.options.leader_election
            and not self._leader
            and (self._in_pass or self._began_leading)
        )
        with self._lock:
            self._last_error = {
                "message": first_line(error, with_type=True),
                "at": iso(_utcnow()),
                "kind": "leadership"
                if fenced or lost
                else ("database" if is_connection_error(error) else "error"),
            }
        self.metrics.consecutive_failures.set(self.failures)
        if fenced:
            with self._conn_lock:
                self._lose(f"fenced: {first_line(error)}")
        elif is_connection_error(error):
            self._check_connection()  # leadership first: never "unreachable and leading"
            self._unreachable(error)
        super().failed(error, delay)
        self._scheduled("backing off", delay)

    def _scheduled(self, state: str, delay: float) -> None:
        self._state = state
        with self._lock:
            self._next_at = _utcnow() + dt.timedelta(seconds=delay)

    def finished(self) -> None:
        self._stop_heartbeat()
        self._release()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds` (a follower: up to its try interval); woken by stop(),
        wake() or (while leading) a NOTIFY from another replica."""
        if self.options.leader_election and not self._leader and not self.failures:
            seconds = min(seconds, self.try_every)
        deadline_at = time.monotonic() + seconds
        while not self.stopping and not self._wake.is_set():
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, 0.25)
            if self._leader and self._listen(step):
                self._wake.set()
            elif not self._leader:
                self._wake.wait(step)

    def _listen(self, step: float) -> bool:
        """Whether a NOTIFY came within `step` seconds on the leadership connection."""
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                return any(True for _ in conn.notifies(timeout=step, stop_after=1))
            except psycopg.Error as error:
                self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")
                self._unreachable(error)
                return False

    # -- leadership --------------------------------------------------------------------------

    def _ask(
        self, conn: psycopg.Connection[Any], query: sql.Composed | str, within: float = 0.0
    ) -> list[tuple[Any, ...]]:
        """One round trip on the leadership connection, aborted if no answer comes within a
        third of the lease (plus `within`): a cut network must not hold leadership hostage."""
        with deadline(conn, self.answer_within + within):
            cur = conn.execute(query)
            rows = cur.fetchall() if cur.description is not None else []
        self._reachable()
        return rows

    def _claim(self) -> bool:
        """Whether this replica leads now (taking the lock if it is free, or deposing a leader
        silent for longer than the lease)."""
        if not self.options.leader_election:
            self._set_leader(True)
            return True
        with self._conn_lock:
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                self._lose("leadership connection closed")
            if self._conn is None:
                if time.monotonic() < self._stand_back_until:
                    return False
                self._conn = self._connect()
            conn = self._conn
            try:
                if self._leader:
                    self._ask(conn, "SELECT 1")  # the session (and its lock) is still there
                    return True
                got = self._ask(conn, leader_lock_sql(self.schema))[0][0]
                if not got and self._depose(conn):
                    got = self._ask(conn, leader_lock_sql(self.schema))[0][0]
                if got:
                    self._barrier(conn)
                    self._ask(
                        conn, sql.SQL("LISTEN {}").format(sql.Identifier(wake_channel(self.schema)))
                    )
                    self._leader_pid = conn.info.backend_pid
                    self._set_leader(True)
            except psycopg.Error as error:
                self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")
                if is_connection_error(error):
                    self._unreachable(error)
                raise
        return self._leader

    def _depose(self, conn: psycopg.Connection[Any]) -> bool:
        """If the leader's session has been silent for longer than the lease, end it; whether
        the lock is worth trying again."""
        rows = self._ask(conn, fencing.leader_holder_query(self.schema))
        if not rows:
            return True  # released since
        pid, application, silent = rows[0]
        if silent is None or float(silent) <= self.lease:
            return False  # alive (or not ours to judge: another role's session)
        log_event(
            self.logger,
            logging.WARNING,
            "leader_deposed",
            f"{self.options.instance} deposes the leader (pid {pid}, {application or '?'}): "
            f"its session has been silent for {float(silent):.2f}s, longer than the lease "
            f"({self.lease:g}s); ending it and taking over",
            instance=self.options.instance,
            pid=pid,
            silent_seconds=round(float(silent), 3),
        )
        wait = max(1.0, self.answer_within)
        try:
            self._ask(conn, fencing.terminate_sql(pid, wait), within=wait)
        except psycopg.errors.InsufficientPrivilege as error:
            log_event(
                self.logger,
                logging.ERROR,
                "leader_not_deposed",
                f"cannot end the silent leader's session ({first_line(error)}): grant this "
                "role pg_signal_backend, or run every replica as one role",
            )
            return False
        with self._lock:
            self._deposed += 1
        self.metrics.leaders_deposed.inc()
        return True

    def _barrier(self, conn: psycopg.Connection[Any]) -> None:
        """Before leading: end a deposed leader's pass still under way (its fence lock)."""
        wait = max(1.0, self.answer_within)
        ended = self._ask(conn, fencing.barrier_sql(self.schema, wait), within=wait)
        if ended:
            log_event(
                self.logger,
                logging.WARNING,
                "fenced_pass_ended",
                f"{self.options.instance} ended {len(ended)} pass(es) of a deposed leader "
                f"(pids {', '.join(str(r[0]) for r in ended)}): their open transactions roll back",
                instance=self.options.instance,
            )

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = self.connect()
            # The server keeps the lock as long as it believes the session alive: make it find
            # out within about the lease that a leader's network is gone (TCP only).
            for name, value in server_keepalives(self.lease):
                with contextlib.suppress(psycopg.errors.UndefinedObject):
                    self._ask(conn, sql.SQL("SET {} = {}").format(sql.Identifier(name), value))
        except psycopg.Error as error:
            self._unreachable(error)
            raise
        if self._connected_once:
            with self._lock:
                self._reconnects += 1
            self.metrics.reconnects.inc()
            log_event(
                self.logger,
                logging.INFO,
                "database_reconnected",
                f"{self.options.instance} reconnected to the database",
                instance=self.options.instance,
            )
        self._connected_once = True
        return conn

    def _check_connection(self) -> None:
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                return
            try:
                self._ask(conn, "SELECT 1")
            except psycopg.Error as error:
                self._lose(f"leadership connection lost: {first_line(error, with_type=True)}")
                self._unreachable(error)

    def _heartbeat(self) -> None:
        """While leading: a round trip on the leadership connection every fifth of the lease
        (followers see its session's state change; a missing answer ends leadership here)."""
        while not self._beat_stop.wait(self.heartbeat_every):
            with self._conn_lock:
                conn = self._conn
                if not self._leader or conn is None:
                    continue
                try:
                    self._ask(conn, "SELECT 1")
                except psycopg.Error as error:
                    self._lose(
                        f"no answer on the leadership connection within {self.answer_within:g}s "
                        f"({first_line(error, with_type=True)})"
                    )
                    self._unreachable(error)

    def _stop_heartbeat(self) -> None:
        self._beat_stop.set()
        beat, self._beat = self._beat, None
        if beat is not None and beat is not threading.current_thread():
            beat.join(self.answer_within + 1)

    def _reachable(self) -> None:
        if self._unreachable_since is None:
            return
        with self._lock:
            since, self._unreachable_since = self._unreachable_since, None
        self.metrics.database_reachable.set(1)
        log_event(
            self.logger,
            logging.INFO,
            "database_reachable",
            f"{self.options.instance} reaches the database again (unreachable for "
            f"{(_utcnow() - since).total_seconds():.1f}s)",
            instance=self.options.instance,
        )

    def _unreachable(self, error: BaseException) -> None:
        now = _utcnow()
        with self._lock:
            self._database_error = {
                "message": first_line(error, with_type=True),
                "at": iso(now),
            }
            first = self._unreachable_since is None
            if first:
                self._unreachable_since = now
        self.metrics.database_reachable.set(0)
        if first:
            log_event(
                self.logger,
                logging.WARNING,
                "database_unreachable",
                f"{self.options.instance} cannot reach the database "
                f"({first_line(error, with_type=True)})",
                instance=self.options.instance,
            )

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
        """The leadership connection is gone (and with it the lock, server side). Called with
        `_conn_lock` held."""
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
        with self._conn_lock:
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
