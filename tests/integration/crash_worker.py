"""One maintenance pass in a process of its own, which SIGKILLs itself at a chosen point.

Run by tests/integration/test_crash.py as a real subprocess, so that a "crash" is a crash: the
process dies at once, with whatever transaction its connection had open, and PostgreSQL is left
to notice the connection is gone. Nothing in the process gets a chance to clean up.

    crash_worker.py --dsn DSN --now ISO [--kill-at N] [--kill-mode step|roundtrip]
                    [--move-batch-rows R] [--kill-during-detach K] [--lock-timeout-ms MS]

* ``--kill-mode step`` (the default): the N-th call of the Manager's ``on_step`` hook, i.e.
  just before the N-th round trip that changes something, kills the process.
* ``--kill-mode roundtrip``: the N-th round trip of the pass, whatever it is (reads, the run
  record, the state updates that follow a DETACH CONCURRENTLY, ...), kills the process just
  before it is sent.
* ``--kill-during-detach K``: at the K-th ``detach`` step, the kill is armed to fire 0.4 s
  after the step's statement was sent, i.e. while the DETACH is running on the server (the
  test holds a lock that makes DETACH ... CONCURRENTLY wait, so it is still running then).

Without a kill the pass runs to its end. Either way every event is printed to stdout as one
JSON line as it happens (``{"event": "step" | "roundtrip", "n": ..., ...}``, flushed), so a
killed run's output shows where it died; a finished run ends with ``{"event": "report", ...}``
and exits 0 if the report is ok, 1 if not.

    crash_worker.py --serve

runs the same passes in processes forked from this one, which has imported partman and
psycopg once (most of a pass's second otherwise): each line on stdin is a JSON request
``{"argv": [...], "stdout": path, "stderr": path, "timeout": seconds}``; a child is forked
with its stdout and stderr in those files, runs ``main(argv)`` (killed by SIGALRM after
`timeout`), and the line ``{"returncode": ...}`` answers (negative: killed by that signal), as
subprocess would. The child is a process of its own: a SIGKILL is as real a crash as above.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import sys
import threading
import traceback
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

import partman

_counts = {"step": 0, "roundtrip": 0, "detach": 0}
_args: argparse.Namespace


def _emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def on_step(step: str, op: partman.Operation) -> None:
    _counts["step"] += 1
    n = _counts["step"]
    _emit(
        {
            "event": "step",
            "n": n,
            "step": step,
            "kind": op.kind,
            "table": op.parent_qualified,
            "partition": op.partition_name,
            "concurrently": getattr(op, "concurrently", None),
        }
    )
    if _args.kill_mode == "step" and n == _args.kill_at:
        _die()
    if step == "detach" and _args.kill_during_detach:
        _counts["detach"] += 1
        if _counts["detach"] == _args.kill_during_detach:
            timer = threading.Timer(0.4, _die)
            timer.daemon = True
            timer.start()


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class CountingConnection(psycopg.Connection[Any]):
    """Counts (and in roundtrip mode may die before) every query the pass sends."""

    counting = False

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        if CountingConnection.counting:
            _counts["roundtrip"] += 1
            n = _counts["roundtrip"]
            text = query if isinstance(query, str) else query.as_string(self)
            text = _UUID.sub("<uuid>", " ".join(text.split()))  # run ids differ run to run
            _emit({"event": "roundtrip", "n": n, "sql": text[:160]})
            if _args.kill_mode == "roundtrip" and n == _args.kill_at:
                _die()
        return super().execute(query, *args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    global _args
    _counts.update(step=0, roundtrip=0, detach=0)
    CountingConnection.counting = False
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--now", required=True, help="the simulated clock, ISO 8601 with zone")
    parser.add_argument("--kill-at", type=int, default=0, help="0: never")
    parser.add_argument("--kill-mode", choices=("step", "roundtrip"), default="step")
    parser.add_argument("--kill-during-detach", type=int, default=0, help="0: never")
    parser.add_argument("--move-batch-rows", type=int, default=20)
    parser.add_argument("--lock-timeout-ms", type=int, default=250)
    parser.add_argument("--scenario", default="convoy", help="informational only")
    _args = parser.parse_args(argv)

    config = partman.Config(
        move_batch_rows=_args.move_batch_rows,
        lock_timeout=dt.timedelta(milliseconds=_args.lock_timeout_ms),
        retry_backoff=dt.timedelta(milliseconds=10),
    )
    clock = partman.SimulatedClock(dt.datetime.fromisoformat(_args.now))
    pool: ConnectionPool[Any] = ConnectionPool(
        _args.dsn,
        connection_class=CountingConnection,
        kwargs={"autocommit": True, "application_name": config.application_name},
        min_size=1,
        max_size=2,
        open=True,
    )
    try:
        with partman.Manager(pool, config=config, clock=clock, on_step=on_step) as manager:
            manager.init()  # the metadata exists already; not part of the pass counted
            CountingConnection.counting = True
            report = manager.maintain()
            CountingConnection.counting = False
    finally:
        pool.close()
    _emit({"event": "report", "ok": report.ok, "report": report.to_dict()})
    return 0 if report.ok else 1


def _child(request: dict[str, Any]) -> int:
    """In the forked child: output to the request's files, a deadline, then the pass."""
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    signal.alarm(int(request["timeout"]))
    try:
        code = main(request["argv"])
    except BaseException:
        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def serve() -> int:
    """Fork one child per request on stdin, one at a time (no thread here: forks stay safe)."""
    import partman.engine.executor  # noqa: F401  (imported by the first pass otherwise)

    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child(request))
        _, status = os.waitpid(pid, 0)
        returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        sys.stdout.write(json.dumps({"returncode": returncode}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
