"""Archive to Parquet (issue 16): partman's export and restore of one partition against plain
`COPY ... TO` and `COPY ... FROM` of the same partition.

    .venv/bin/python benchmarks/export.py [--rows 500000] [--repeat 3]

One table, RANGE (created_at) by day, with the column types an application table has (bigint,
int, timestamptz, numeric(12,2), text, jsonb, text[]); day 0 holds R rows. On PostgreSQL 18
(embedded), files in a scratch directory (PARTMAN_BENCH_TMPDIR, else /dev/shm, else /tmp):

* plain SQL: `COPY partition TO STDOUT` (text format) through psycopg into a file, and
  `COPY copy_of_it FROM STDIN` from that file into a fresh table `LIKE` the parent: the bytes
  moved, nothing checked;
* partman export: the pass in which that partition expires (`retention_action = "export"`):
  check, DETACH CONCURRENTLY, rows read with a server-side cursor, written to Parquet (zstd,
  row groups of 131,072 rows), the file read back and its row count and checksum
  compared, manifest row, DROP; the whole `maintain()`;
* partman restore: `Manager.restore` of that period: CREATE (LIKE parent), COPY FROM the
  Parquet file, row count and checksum checked, ATTACH.

MB/s are the partition's heap size (`pg_relation_size`) divided by the wall time, so that every
row of the table measures the same work; the file size each one wrote is shown beside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import benchlib as b
import psycopg
from psycopg import sql

import partman

TABLE_SQL = """
CREATE SCHEMA bench;
CREATE TABLE bench.events (
    id bigint NOT NULL,
    tenant_id int NOT NULL,
    created_at timestamptz NOT NULL,
    amount numeric(12, 2),
    payload text,
    doc jsonb,
    tags text[]
) PARTITION BY RANGE (created_at)
"""

FILL_SQL = """
INSERT INTO bench.events
SELECT g, g %% 1000, %(day)s::timestamptz + (g %% 86400) * interval '1 second',
       (g %% 100000) / 100.0, md5(g::text) || ' ' || repeat('x', g %% 40),
       jsonb_build_object('g', g, 'kind', 'k' || (g %% 7), 'ok', g %% 2 = 0),
       ARRAY['a' || (g %% 10), 'b' || (g %% 3)]
  FROM generate_series(1, %(rows)s) g
"""


def _table(location: str) -> partman.Table:
    return partman.Table(
        name="events",
        schema="bench",
        partition_by="created_at",
        partition_interval="1 day",
        retention_period="2 days",
        partition_count=1,
        retention_action="export",
        export_location=location,
    )


def run(dsn: str, rows: int, repeat: int, scratch: Path) -> dict[str, Any]:
    """Set up, then time the four contestants, each `repeat` times (medians): COPY TO and
    COPY FROM first; then export and restore in turn (a restored partition is partman's again
    and still past retention, so the next pass exports it again)."""
    location = scratch / "archive"
    clock = partman.SimulatedClock(b.START)
    config = partman.Config(lock_timeout=dt.timedelta(seconds=1))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        m.add_managed_table(_table(str(location)))
        if not m.maintain().ok:
            raise RuntimeError("set-up pass failed")
    day = b.day_start(b.START)
    copy_to: list[float] = []
    copy_from: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(FILL_SQL, {"day": day, "rows": rows})
        conn.execute("VACUUM ANALYZE bench.events")
        row = conn.execute(
            "SELECT c.relname::text, pg_relation_size(c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'bench.events'::regclass "
            "AND pg_get_expr(c.relpartbound, c.oid) LIKE %s",
            (f"%{day.date().isoformat()}%",),
        ).fetchone()
        assert row is not None
        partition, heap = row[0], int(row[1])
        source = sql.Identifier("bench", partition)
        target = sql.Identifier("bench", "copy_target")
        dump = scratch / "copy.txt"
        b.progress(f"COPY {partition} TO a file and back, x{repeat} ({rows:,} rows)")
        for _ in range(repeat):
            copy_to.append(b.timed(lambda: _copy_to(conn, source, dump))[0])
            conn.execute("CREATE TABLE bench.copy_target (LIKE bench.events INCLUDING ALL)")
            copy_from.append(b.timed(lambda: _copy_from(conn, target, dump))[0])
            conn.execute("DROP TABLE bench.copy_target")
    exports: list[float] = []
    restores: list[float] = []
    lower = day.date().isoformat()
    upper = (day + b.DAY).date().isoformat()
    clock.advance(4 * b.DAY)
    with partman.Manager(dsn, clock=clock, config=config) as m:
        for i in range(repeat):
            b.progress(f"partman export and restore ({i + 1}/{repeat})")
            seconds, report = b.timed(m.maintain)
            if not report.ok or partition not in {op.partition_name for op in report.exported}:
                raise RuntimeError(f"export pass failed: {report.results}")
            exports.append(seconds)
            restores.append(b.timed(lambda: m.restore("bench.events", lower, upper))[0])
        (archive, *_) = [a for a in m.archives("bench.events") if a.partition_name == partition]
    return {
        "rows": rows,
        "heap": heap,
        "copy_to": statistics.median(copy_to),
        "copy_from": statistics.median(copy_from),
        "copy_bytes": dump.stat().st_size,
        "export": statistics.median(exports),
        "restore": statistics.median(restores),
        "parquet_bytes": archive.bytes,
        "repeat": repeat,
    }


def _copy_to(conn: psycopg.Connection[Any], table: sql.Identifier, path: Path) -> None:
    with (
        path.open("wb") as f,
        conn.cursor().copy(sql.SQL("COPY {} TO STDOUT").format(table)) as copy,
    ):
        for data in copy:
            f.write(data)


def _copy_from(conn: psycopg.Connection[Any], table: sql.Identifier, path: Path) -> None:
    with (
        path.open("rb") as f,
        conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(table)) as copy,
    ):
        while data := f.read(1 << 20):
            copy.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows in the partition")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (medians)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args(argv)
    rows = 20_000 if args.quick else args.rows
    notes: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="partman-export-", dir=b.scratch_parent(1 << 30)))
    try:
        with b.server("18") as srv:
            notes.append(srv.describe())
            dsn = b.create_database(srv, "bench_export")
            r = run(dsn, rows, 1 if args.quick else args.repeat, scratch)
            b.drop_database(srv, "bench_export")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    mb = r["heap"] / 1e6

    def line(who: str, what: str, seconds: float, base: float, size: int) -> list[Any]:
        return [
            who,
            what,
            b.secs(seconds),
            f"{mb / seconds:.1f}",
            f"{r['rows'] / seconds:,.0f}",
            b.ratio(seconds, base),
            f"{size / 1e6:.1f} MB",
        ]

    out = [
        line("plain COPY TO", "COPY partition TO STDOUT -> file", r["copy_to"], r["copy_to"],
             r["copy_bytes"]),
        line("partman export", "detach, Parquet, read back + checksum, drop", r["export"],
             r["copy_to"], r["parquet_bytes"]),
        line("plain COPY FROM", "file -> COPY FROM STDIN (new table)", r["copy_from"],
             r["copy_from"], r["copy_bytes"]),
        line("partman restore", "LIKE + COPY from Parquet + checksum + ATTACH", r["restore"],
             r["copy_from"], r["parquet_bytes"]),
    ]  # fmt: skip
    notes.append(
        f"one partition of {r['rows']:,} rows, {mb:.1f} MB heap (bigint, int, timestamptz, "
        "numeric(12,2), text, jsonb, text[]); MB/s = heap MB / wall; files in "
        f"{os.path.dirname(scratch)} (zstd Parquet, row groups of 131,072 rows); median of "
        f"{r['repeat']} runs each"
    )
    notes.append(
        "partman export is the whole maintain() pass (its checks, DETACH CONCURRENTLY, the "
        "write, the read-back with the checksum of both sides, the manifest and the DROP)"
    )
    b.print_table(
        "9. Archive to Parquet: export and restore of one partition against COPY",
        ["who", "what", "wall", "MB/s", "rows/s", "vs COPY", "file"],
        out,
        notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
