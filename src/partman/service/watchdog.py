"""A deadline for a round trip on a connection, whatever the network does.

A cut network does not always fail a connection: a peer that keeps the TCP session alive
(a proxy, a NAT box, a frozen load balancer; on loopback the kernel itself) acknowledges every
packet, so neither keepalives nor tcp_user_timeout ever fire, and a query waits for its answer
for as long as the cut lasts. `deadline(conn, seconds)` bounds that wait: when it expires, the
connection's socket is shut down from a timer thread, the waiting call fails at once with
`psycopg.OperationalError`, and the connection is broken (the pool discards it; the server ends
its session when the network lets it see the close).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg


def abort(conn: psycopg.Connection[Any]) -> None:
    """Shut the connection's socket down under whoever waits on it (safe from any thread:
    only the socket is touched, never libpq's state)."""
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return  # closed already
    with contextlib.suppress(OSError):
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


@contextlib.contextmanager
def deadline(conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
    """Abort `conn` if the block has not finished within `seconds`."""
    timer = threading.Timer(seconds, abort, (conn,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
