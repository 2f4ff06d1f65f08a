"""Hand-over time (issue 17): how long after its leader freezes a follower takes over, by
`[service] leader_lease`.

    .venv/bin/python benchmarks/handover.py [--leases 1,2,5,10,15] [--server 18|15] [--quick]

Two replicas of `partman run` (processes of their own) on one database: the first leads, the
second follows. The leader is frozen with SIGSTOP between two passes (its TCP sessions stay
open: the server sees nothing wrong); the table is the time from the SIGSTOP until the
follower's `/api/status` says it leads, and from the SIGCONT until the woken one says it
follows. The bound is what docs/operations.md#high-availability promises: the lease plus a
try (a quarter of the lease).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import benchlib as b
import httpx

REPLICA = textwrap.dedent(
    """
    import datetime as dt, sys
    import partman
    from partman.service import ServiceOptions, serve

    dsn, name, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def ready(service, url):
        print("READY", url, flush=True)

    serve(
        dsn,
        config=partman.Config(sample_rate=dt.timedelta(seconds=1), application_name=name),
        options=ServiceOptions(
            port=0, instance=name, log_level="error", leader_lease=dt.timedelta(seconds=lease)
        ),
        on_ready=ready,
    )
    """
)


class Replica:
    def __init__(self, dsn: str, name: str, lease: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", REPLICA, dsn, name, str(lease)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"replica {name} did not start: {line!r}")
        self.client = httpx.Client(base_url=line.split()[1], timeout=60)

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.client.get("/api/status").json()
        return found

    def close(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        self.proc.wait(30)


def until(condition: Callable[[], Any], timeout: float) -> float:
    """Seconds until `condition()` holds (polled every 10 ms)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - started


def measure(dsn: str, lease: float) -> tuple[float, float]:
    a = Replica(dsn, "a", lease)
    try:
        until(lambda: a.status()["leader"], 60)
        f = Replica(dsn, "b", lease)
        try:
            until(lambda: f.status()["role"] == "follower", 60)
            time.sleep(lease / 2)
            a.proc.send_signal(signal.SIGSTOP)
            takeover = until(lambda: f.status()["leader"], lease * 4 + 30)
            a.proc.send_signal(signal.SIGCONT)
            follows = until(lambda: a.status()["role"] == "follower", lease * 4 + 30)
        finally:
            f.close()
    finally:
        a.close()
    return takeover, follows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leases", default="1,2,5,10,15", help="leader_lease values, seconds")
    parser.add_argument("--server", default="18", help="18 (embedded) or 15 (Debian)")
    parser.add_argument("--quick", action="store_true", help="one short lease, to check it")
    args = parser.parse_args(argv)
    leases = [1.0] if args.quick else [float(x) for x in args.leases.split(",")]
    rows = []
    with b.server(args.server) as srv:
        for lease in leases:
            dsn = b.create_database(srv, "bench_handover")
            takeover, follows = measure(dsn, lease)
            b.drop_database(srv, "bench_handover")
            rows.append([f"{lease:g} s", f"{takeover:.2f} s", f"{lease * 1.25:.2f} s",
                         f"{follows:.2f} s"])  # fmt: skip
            b.progress(f"lease {lease:g}s: takeover {takeover:.2f}s")
        notes = [srv.describe(), f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"]
    b.print_table(
        "12. Hand-over time: leader frozen (SIGSTOP) until the follower leads",
        ["leader_lease", "takeover", "bound: lease + lease/4", "woken leader follows after"],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
