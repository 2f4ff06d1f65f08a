"""Footprint: peak memory of a partman process running one pass over ~30k partitions.

    .venv/bin/python benchmarks/footprint.py [--schemas 10] [--tenants 100]

Builds the steady-state database of steady.py (each schema a copy of the seed's three tables,
`--tenants` tenants each, 11 daily partitions per tenant: 10 schemas x 3,300 = 33,000
partitions, all created by partman), then starts a fresh Python process that imports partman,
makes a Manager and runs one maintain() (nothing to do), and reports that process's resident
set: before the pass, its high-water mark (VmHWM), and, in a second process, the
peak of Python allocations during the pass (tracemalloc).

Two more fresh processes are measured the same way on the same database: `partman apply
--yes` (the CLI: one pass, from a partman.toml declaring the same tables and tenants) and
`partman run` (the service, every second, stopped with SIGTERM after three passes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

TARGET_MB = 200.0
TITLE = "5. Footprint: one pass with nothing to do, in a fresh process"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _hwm_bytes(pid: int | str = "self") -> int:
    """The process's resident-set high-water mark (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that across execve, so a child forked from this (big) benchmark process would
    report the parent's size."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/<pid>/status")


# `partman ...` in a process that writes its own VmHWM to $PARTMAN_BENCH_HWM when it exits
_CLI = (
    "import atexit, os, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(os.environ['PARTMAN_BENCH_HWM'], 'w').write(line.split()[1])\n"
    "atexit.register(hwm)\n"
    "sys.argv = ['partman', *sys.argv[1:]]\n"
    "from partman.cli import main\n"
    "main()\n"
)


def child(dsn: str, now: str, trace: bool) -> None:
    """Runs in the measured process: import, connect, one pass; print what it cost."""
    import logging
    import tracemalloc

    import partman

    logger = logging.getLogger("partman.footprint")
    logger.setLevel(logging.WARNING)
    clock = partman.SimulatedClock(dt.datetime.fromisoformat(now))
    with partman.Manager(dsn, clock=clock, logger=logger) as manager:
        manager.init()  # metadata check and first connection, outside the measured pass
        before = _rss_bytes()
        if trace:
            tracemalloc.start()
        report = manager.maintain()
        traced = tracemalloc.get_traced_memory()[1] if trace else 0
        after = _rss_bytes()
        partitions = len(report.plan.operations) if report.plan else -1
    peak = _hwm_bytes()
    print(
        json.dumps(
            {
                "before": before,
                "after": after,
                "peak": peak,
                "traced_peak": traced,
                "operations": partitions,
                "ok": report.ok,
            }
        )
    )


def _toml(dsn: str, schemas: list[str], tables: Sequence[str], tenants: list[str],
          head: str = "") -> str:  # fmt: skip
    """A partman.toml declaring the steady-state world's tables and tenants, as registered."""
    lines = [f"[database]\ndsn = {json.dumps(dsn)}\n{head}"]
    listed = json.dumps(tenants)
    for schema in schemas:
        for table in tables:
            lines.append(
                "[[table]]\n"
                f'name = "{table}"\nschema = "{schema}"\ntenant_id_column = "project_id"\n'
                'partition_by = "created_at"\npartition_interval = "1 day"\n'
                f"partition_count = 10\ntenants = {listed}\n"
            )
    return "\n".join(lines)


def _finished_runs(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM partman_meta.runs WHERE finished_at IS NOT NULL"
        ).fetchone()
        return int(row[0]) if row else 0


def measure_cli(dsn: str, schemas: list[str], tables: Sequence[str], tenants: list[str],
                service_passes: int = 0) -> dict[str, Any]:  # fmt: skip
    """`partman apply --yes` in a fresh process (it registers the file's tables and tenants
    again, finds them unchanged, and runs one pass); or, with `service_passes`, `partman run`
    (the service) until it has finished that many passes, then SIGTERM."""
    head = ""
    if service_passes:
        head = '[partman]\nsample_rate = "1s"\n[service]\nport = 0\n'
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "partman.toml")
        with open(path, "w") as f:
            f.write(_toml(dsn, schemas, tables, tenants, head))
        hwm_file = os.path.join(tmp, "hwm")
        cmd = [sys.executable, "-c", _CLI]
        if service_passes:
            cmd += ["run", "--config", path]
        else:
            cmd += ["apply", "--yes", "--config", path]
        cmd += ["--log-level", "warning"]
        runs_before = _finished_runs(dsn)
        started = time.perf_counter()
        peak = 0
        env = {**os.environ, "PARTMAN_BENCH_HWM": hwm_file}
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
            if service_passes:
                deadline = time.monotonic() + 600
                while _finished_runs(dsn) < runs_before + service_passes:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                with contextlib.suppress(OSError, RuntimeError):
                    peak = _hwm_bytes(proc.pid)  # in case SIGTERM skips the atexit hook
                proc.send_signal(signal.SIGTERM)
            proc.wait()
            seconds = time.perf_counter() - started
            out.seek(0)
            text = out.read()
        with contextlib.suppress(OSError, ValueError), open(hwm_file) as f:
            peak = max(peak, int(f.read()) * 1024)
        passes = _finished_runs(dsn) - runs_before
    if service_passes and passes < service_passes:
        raise RuntimeError(f"partman run finished {passes} pass(es):\n{text[-3000:]}")
    if not service_passes and proc.returncode != 0:
        raise RuntimeError(f"partman apply exited {proc.returncode}:\n{text[-3000:]}")
    summary = [line for line in text.splitlines() if line.startswith("Applied")]
    return {
        "peak": peak,
        "seconds": seconds,
        "passes": passes,
        "summary": summary[-1] if summary else (text.strip().splitlines() or [""])[-1],
    }


def measure(dsn: str, now: dt.datetime) -> dict[str, Any]:
    """Two fresh processes: one for RSS, one with tracemalloc (which slows and inflates it)."""
    out: dict[str, Any] = {}
    for trace in (False, True):
        cmd = [sys.executable, __file__, "--child", "--dsn", dsn, "--now", now.isoformat()]
        if trace:
            cmd.append("--trace")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"footprint child failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if trace:
            out["traced_peak"] = result["traced_peak"]
        else:
            out.update(result)
    return out


def rows(partitions: int, m: dict[str, Any], cli: dict[str, Any], service: dict[str, Any]
         ) -> list[list[str]]:  # fmt: skip
    mb = 1024 * 1024
    return [
        [
            "Manager.maintain() (library)",
            f"{partitions:,}",
            "",
            f"{m['before'] / mb:.0f} MB",
            f"{m['peak'] / mb:.0f} MB",
            f"{(m['peak'] - m['before']) / mb:.0f} MB",
            f"{m['traced_peak'] / mb:.0f} MB",
            f"< {TARGET_MB:.0f} MB: " + ("met" if m["peak"] / mb < TARGET_MB else "missed"),
        ],
        [
            "partman apply --yes (CLI)",
            f"{partitions:,}",
            f"{cli['seconds']:.2f} s",
            "",
            f"{cli['peak'] / mb:.0f} MB",
            "",
            "",
            f"< {TARGET_MB:.0f} MB: " + ("met" if cli["peak"] / mb < TARGET_MB else "missed"),
        ],
        [
            f"partman run (service), {service['passes']} passes",
            f"{partitions:,}",
            f"{service['seconds']:.2f} s",
            "",
            f"{service['peak'] / mb:.0f} MB",
            "",
            "",
            f"< {TARGET_MB:.0f} MB: " + ("met" if service["peak"] / mb < TARGET_MB else "missed"),
        ],
    ]


HEADER = [
    "process",
    "partitions",
    "wall",
    "RSS before pass",
    "peak RSS",
    "pass adds",
    "Python heap peak (tracemalloc)",
    "target",
]
NOTES = [
    "peak RSS is the whole process (interpreter, psycopg, partman): its VmHWM; "
    "'pass adds' is that high-water mark minus the RSS just before the pass",
    "the CLI process also registers the file's tables and tenants again (found unchanged) and "
    "plans once for its preview before the pass; the service (sample_rate 1s, port 0, no "
    "token) syncs the file before every pass, and is stopped with SIGTERM after 3 passes",
]


def world_rows(world: Any) -> list[list[str]]:
    import benchlib as b

    m = measure(world.dsn, world.clock.now())
    tenants = b.tenant_ids(world.tenants)
    cli = measure_cli(world.dsn, world.schemas, b.TABLES, tenants)
    if not cli["summary"].startswith("Applied: created 0, retired 0"):
        b.progress(f"note: partman apply did something: {cli['summary']}")
    service = measure_cli(world.dsn, world.schemas, b.TABLES, tenants, service_passes=3)
    return rows(world.partitions, m, cli, service)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemas", type=int, default=10)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.dsn, args.now, args.trace)
        return 0

    import benchlib as b
    import steady

    schemas, tenants = (2, 20) if args.quick else (args.schemas, args.tenants)
    with b.server("18") as srv:
        b.progress(srv.describe())
        world = steady.World(srv, tenants)
        try:
            world.grow(schemas)
            table = world_rows(world)
        finally:
            world.close()
    b.print_table(TITLE, HEADER, table, NOTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
