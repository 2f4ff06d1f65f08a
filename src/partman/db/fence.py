"""Fencing: a scheduled pass does DDL only while its replica still holds leadership.

Leadership is a session advisory lock (class `LEADER_LOCK_CLASS`) on a connection of its own,
the leadership connection. A leader can lose it without knowing: its process frozen (a stopped
container, a long GC pause, SIGSTOP), its network cut; another replica then takes the lock
(the server closed the old session, or the follower terminated it after the lease expired).
When the old leader runs again, whatever it was about to do must not happen. Two guards:

- Every transaction of a fenced pass starts with `Fence.check()`: a DO block that raises
  (SQLSTATE `FENCED_SQLSTATE`) unless the leadership connection's backend (its pid) still
  holds the lock, granted, now. The transaction aborts before its DDL.
- The pass's own connection holds the fence lock (class `FENCE_LOCK_CLASS`, shared) for the
  whole pass. A replica that becomes leader terminates every other holder of it
  (`barrier_sql`) before its first pass: a deposed leader's transaction under way (which
  passed its check before the lock moved) is rolled back by the server, not committed later.

Either the old leader's backend still held the lock when its transaction checked, and the new
leader's barrier then ends that transaction; or it did not, and the check aborts it. So once a
replica leads, no DDL of a deposed leader commits, and none starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

LEADER_LOCK_CLASS = 0x6C656164  # 'lead': apart from the pass lock's class ('part')
FENCE_LOCK_CLASS = 0x66656E63  # 'fenc': held (shared) by the connection of a fenced pass
FENCED_SQLSTATE = "PMF01"
"""The SQLSTATE a fence check raises (class PM: partman's own)."""


def leader_lock_key(metadata_schema: str) -> str:
    return f"partman:leader:{metadata_schema}"


def fence_lock_key(metadata_schema: str) -> str:
    return f"partman:fence:{metadata_schema}"


def leader_lock_sql(metadata_schema: str, function: str = "pg_try_advisory_lock") -> sql.Composed:
    """Take (or try, or release) the leadership lock: `function` is an advisory lock function."""
    return sql.SQL("SELECT {}({}, hashtext({}))").format(
        sql.Identifier(function),
        sql.Literal(LEADER_LOCK_CLASS),
        sql.Literal(leader_lock_key(metadata_schema)),
    )


def _advisory(classid: int, key: sql.Composable) -> sql.Composed:
    """pg_locks' row of a two-key advisory lock in this database (objsubid 2 marks two keys)."""
    return sql.SQL(
        "locktype = 'advisory' AND objsubid = 2 AND classid = {} AND objid = hashtext({})::oid "
        "AND database = (SELECT oid FROM pg_catalog.pg_database "
        "WHERE datname = pg_catalog.current_database())"
    ).format(sql.Literal(classid), key)


def leader_holder_query(metadata_schema: str) -> sql.Composed:
    """Who holds leadership, and for how many seconds its session has been silent (no
    statement started or ended): the leader's heartbeat keeps that under its interval. Empty
    when nobody holds it; the seconds are NULL when this role may not see the other session's
    state (another role, without pg_read_all_stats): then nobody can tell it is stale."""
    return sql.SQL(
        "SELECT l.pid, a.application_name, "
        "extract(epoch FROM clock_timestamp() - a.state_change) "
        "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.granted AND {}"
    ).format(_advisory(LEADER_LOCK_CLASS, sql.Literal(leader_lock_key(metadata_schema))))


def terminate_sql(pid: int, wait: float) -> sql.Composed:
    """End a backend and wait (up to `wait` seconds) until it has exited: its session locks
    are released and its open transaction rolled back by then."""
    return sql.SQL("SELECT pg_catalog.pg_terminate_backend({}, {})").format(
        sql.Literal(pid), sql.Literal(max(1, int(wait * 1000)))
    )


def barrier_sql(metadata_schema: str, wait: float) -> sql.Composed:
    """For a new leader, before its first pass: end every other session holding the fence
    lock (a deposed leader's pass), waiting for each to exit. Returns one row per session."""
    return sql.SQL(
        "SELECT pid, pg_catalog.pg_terminate_backend(pid, {}) FROM pg_catalog.pg_locks "
        "WHERE granted AND pid <> pg_catalog.pg_backend_pid() AND {}"
    ).format(
        sql.Literal(max(1, int(wait * 1000))),
        _advisory(FENCE_LOCK_CLASS, sql.Literal(fence_lock_key(metadata_schema))),
    )


def is_fenced(error: BaseException) -> bool:
    """Whether `error` is a fence check's: this replica no longer leads."""
    return isinstance(error, psycopg.Error) and error.sqlstate == FENCED_SQLSTATE


@dataclass(frozen=True)
class Fence:
    """A scheduled pass's fence: the leadership connection's backend pid, when it took the
    lock, and the metadata schema the lock is keyed on."""

    metadata_schema: str
    leader_pid: int

    def check(self) -> sql.Composed:
        """Raise (SQLSTATE `FENCED_SQLSTATE`) unless the leader backend holds the lock now:
        the first statement of every transaction of the pass."""
        held = sql.SQL(
            "IF NOT EXISTS (SELECT FROM pg_catalog.pg_locks WHERE granted AND pid = {} AND {}) "
            "THEN RAISE EXCEPTION USING ERRCODE = {}, MESSAGE = {}, HINT = {}; END IF;"
        ).format(
            sql.Literal(self.leader_pid),
            _advisory(LEADER_LOCK_CLASS, sql.Literal(leader_lock_key(self.metadata_schema))),
            sql.Literal(FENCED_SQLSTATE),
            sql.Literal(
                f"partman: this replica no longer leads (its leadership session, pid "
                f"{self.leader_pid}, no longer holds the leadership lock); the pass stops "
                "before its DDL"
            ),
            sql.Literal("another replica took over; this one follows from its next attempt"),
        )
        body = sql.SQL("BEGIN {} END").format(held).as_string(None)
        return sql.SQL("DO {}").format(sql.Literal(body))

    def hold(self) -> sql.Composed:
        """At the start of the pass, on its connection: take the fence lock (shared, never
        waited for: nobody takes it exclusively), then check leadership."""
        return sql.SQL("SELECT pg_catalog.pg_advisory_lock_shared({}, hashtext({}));\n{}").format(
            sql.Literal(FENCE_LOCK_CLASS),
            sql.Literal(fence_lock_key(self.metadata_schema)),
            self.check(),
        )

    def release(self) -> sql.Composed:
        """At the end of the pass (the fence lock is a session lock)."""
        return sql.SQL("SELECT pg_catalog.pg_advisory_unlock_shared({}, hashtext({}))").format(
            sql.Literal(FENCE_LOCK_CLASS), sql.Literal(fence_lock_key(self.metadata_schema))
        )
