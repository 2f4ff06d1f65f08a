# Generated from src/partman/autovacuum_async.py by tools/async_to_sync.py: do not edit.
# Edit the async source, then run `python tools/async_to_sync.py`.
"""Cancelling the autovacuum workers in the way of a lock request (see `model.holders`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from ..db import ddl
from ..logs import log_event
from ..model.holders import Holder


def cancel_autovacuum(
    conn: psycopg.Connection[Any],
    holders: Sequence[Holder],
    logger: logging.Logger,
    notes: list[str] | None = None,
) -> list[Holder]:
    """Cancel each autovacuum among `holders` that may be cancelled; returns the holders still
    in the way (the others, and an autovacuum that runs to prevent wraparound or that this
    role may not signal)."""
    left: list[Holder] = []
    done: set[int] = set()
    for holder in holders:
        if not holder.cancellable:
            left.append(holder)
            continue
        if holder.pid in done:
            continue
        try:
            with conn.transaction():  # in a transaction, a savepoint: a refusal undoes
                conn.execute(ddl.cancel_backend_sql(holder.pid))  # only itself
        except pgerrors.InsufficientPrivilege:
            left.append(holder.refuse())
            continue
        done.add(holder.pid)
        log_event(
            logger,
            logging.INFO,
            "autovacuum_cancelled",
            f"cancelled the autovacuum of {holder.relation} (pid {holder.pid}): it held "
            f"{holder.mode}, which a lock request under lock_timeout would time out behind",
            pid=holder.pid,
            relation=holder.relation,
        )
        if notes is not None:
            notes.append(
                f"cancelled the autovacuum of {holder.relation} (pid {holder.pid}) to take the lock"
            )
    return left
