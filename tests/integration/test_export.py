"""retention_action "export": expired partitions to Parquet (a local directory and a real
S3-compatible server, moto's), read back and checked before the drop; failures and crashes
never lose a row; `Manager.restore` brings them back identical, and refuses an overlap."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import partman
from partman.engine import export
from partman.model.archive import ArchiveError, Checksum

from seed import NOW, create_seed_schema, partitions, seed_table

Conn = psycopg.Connection[Any]
DAY = dt.timedelta(days=1)
DAY0 = NOW.replace(hour=0)
T1 = NOW + 4 * DAY  # with "2 days" of retention, day 0 and day 1 have expired

TYPES_TABLE = """
CREATE TYPE shop.mood AS ENUM ('happy', 'sad', 'it''s complicated');
CREATE TABLE shop.orders (
    id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    local_at timestamp,
    day date,
    amount numeric(12, 2),
    ratio numeric,
    doc jsonb,
    raw json,
    tags text[],
    nums int[],
    uid uuid,
    note text,
    code char(5),
    label varchar(20),
    blob bytea,
    flag boolean,
    small smallint,
    mid integer,
    mood shop.mood,
    r real,
    f double precision,
    total numeric GENERATED ALWAYS AS (amount * 2) STORED
) PARTITION BY RANGE (created_at)
"""

ROWS = """
INSERT INTO shop.orders (id, created_at, local_at, day, amount, ratio, doc, raw, tags, nums,
                         uid, note, code, label, blob, flag, small, mid, mood, r, f)
VALUES
 (1, %(t)s, '2026-03-10 01:02:03.456789', '2026-03-10', 12.50, 1.50,
  '{"a": [1, 2.50, {"b": null}], "ü": "x"}', '{ "keep" :  "spacing" }', '{a,"b c",NULL,""}',
  '{1,NULL,-3}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', E'tab\\there\\nnewline "quoted" \\\\',
  'ab', 'vé', '\\x00ff10', true, -32768, 2147483647, 'it''s complicated', 1.1, 0.1),
 (2, %(t)s + interval '1 hour', '1999-12-31 23:59:59', '0044-03-15', -0.01, 'NaN',
  '[]', 'null', '{}', '{}', NULL, '', NULL, NULL, '\\x', false, 0, 0, 'happy', 'NaN',
  '-Infinity'),
 (3, %(t)s + interval '2 hours', NULL, NULL, NULL, 123456789012345678901234567890.123456789,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (4, %(t)s + interval '23 hours 50 minutes', '2026-03-10', '2026-03-10', 9999999999.99,
  0.000000001, '{"n": 1e3}', '[1,2]', '{"{x}","a,b"}', '{2147483647}',
  '00000000-0000-0000-0000-000000000000', 'ünïcødé ✓', '12345', 'x', '\\xdeadbeef', NULL,
  32767, -2147483648, 'sad', 3.4028235e38, 1e308)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real S3-compatible server (moto's) on a free port, a bucket in it, and the AWS_*
    variables that point clients at it; yields the bucket's URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    try:
        import boto3

        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(
            Bucket="partman-archive"
        )
        yield "s3://partman-archive/exports"
    finally:
        server.stop()


def _orders(location: str, **policy: Any) -> partman.Table:
    fields: dict[str, Any] = {
        "name": "orders",
        "schema": "shop",
        "partition_by": "created_at",
        "partition_interval": "1 day",
        "retention_period": "2 days",
        "partition_count": 1,
        "retention_action": "export",
        "export_location": location,
    }
    fields.update(policy)
    return partman.Table(**fields)


def _rows(conn: Conn, table: str) -> list[str]:
    """Every row as PostgreSQL renders it (every column's own text): equal lists mean
    identical rows."""
    schema, name = table.split(".")
    with conn.transaction():
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        cur = conn.execute(
            sql.SQL("SELECT t::text FROM {} t ORDER BY id").format(sql.Identifier(schema, name))
        )
        return [r[0] for r in cur.fetchall()]


def _first_pass(dsn: str, conn: Conn, location: str, **policy: Any) -> tuple[str, list[str]]:
    """shop.orders (every type) exporting to `location`, its day-0 partition holding four
    rows: that partition's name, and the table's rows."""
    conn.execute("CREATE SCHEMA shop")
    conn.execute(TYPES_TABLE)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        m.add_managed_table(_orders(location, **policy))
        assert m.maintain().ok
    conn.execute(ROWS, {"t": DAY0 + dt.timedelta(minutes=5)})
    (day0,) = [n for n, b in partitions(conn, "shop", "orders") if "2026-03-10 00" in b]
    return day0, _rows(conn, "shop.orders")


def _round_trip(dsn: str, conn: Conn, location: str) -> None:
    day0, before = _first_pass(dsn, conn, location)
    assert len(before) == 4
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        assert report.ok, report.results
        exported = [op for op in report.retired if op.kind == "export"]
        assert day0 in {op.partition_name for op in exported}
        assert _rows(conn, "shop.orders") == []
        assert not _table_exists(conn, "shop", day0)
        (archive,) = [a for a in m.archives("shop.orders") if a.partition_name == day0]
        assert archive.rows == 4 and archive.bytes > 0 and archive.state == "archived"
        assert archive.location.startswith(location.rstrip("/") + "/shop/orders/")
        assert archive.checksum.startswith("blake2b128-sum:")
        assert {c.name for c in archive.columns} >= {"doc", "tags", "mood", "total"}
        restored = m.restore("shop.orders", "2026-03-10", "2026-03-11")
        assert [a.id for a in restored] == [archive.id]
        assert _rows(conn, "shop.orders") == before  # identical, every type
        [after] = [a for a in m.archives("shop.orders") if a.id == archive.id]
        assert after.state == "restored" and after.restored_at is not None
    owned = conn.execute(
        "SELECT origin, state FROM partman_meta.partitions WHERE partition_name = %s", (day0,)
    ).fetchall()
    assert owned == [("created", "attached")]  # partman's again: retention applies to it


def _table_exists(conn: Conn, schema: str, name: str) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    return bool(row and row[0])


def _state(conn: Conn, name: str) -> tuple[str, str | None] | None:
    row = conn.execute(
        "SELECT state, action FROM partman_meta.partitions WHERE partition_name = %s", (name,)
    ).fetchone()
    return None if row is None else (row[0], row[1])


# -- the round trip ---------------------------------------------------------------------------


def test_round_trip_through_a_local_directory_gives_identical_rows(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    _round_trip(dsn, conn, str(tmp_path / "archive"))
    files = sorted(p.name for p in (tmp_path / "archive" / "shop" / "orders").iterdir())
    assert files and all(f.endswith(".parquet") for f in files)  # no temp file left


def test_round_trip_through_s3_gives_identical_rows(dsn: str, conn: Conn, s3: str) -> None:
    _round_trip(dsn, conn, s3)


def test_the_file_is_typed_parquet_in_row_groups(dsn: str, conn: Conn, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    day0, _ = _first_pass(dsn, conn, str(tmp_path))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
        (archive,) = [a for a in m.archives() if a.partition_name == day0]
    f = pq.ParquetFile(archive.location)
    types = {field.name: field.type for field in f.schema_arrow}
    assert types["created_at"] == pa.timestamp("us", tz="UTC")
    assert types["local_at"] == pa.timestamp("us")
    assert types["day"] == pa.date32()
    assert types["amount"] == pa.decimal128(12, 2)
    assert types["ratio"] == pa.string()  # numeric without a precision: its exact text
    assert types["tags"] == pa.list_(pa.string())
    assert types["nums"] == pa.list_(pa.int32())
    assert types["uid"] == pa.uuid()
    assert types["blob"] == pa.binary()
    assert types["flag"] == pa.bool_() and types["small"] == pa.int16()
    assert types["mood"] == pa.string()
    assert f.schema_arrow.field("doc").metadata == {b"pg_type": b"jsonb"}
    assert f.metadata.num_rows == 4
    # the checksum is the one recorded, computed again from the file alone
    fs, path = export.filesystem(archive.location)
    assert export.read_back(fs, path, archive.columns).text == archive.checksum


def test_a_parent_with_a_default_partition_exports_with_a_plain_detach(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    day0, before = _first_pass(dsn, conn, str(tmp_path), default_partition=True)
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        assert report.ok, report.results
        assert day0 in {op.partition_name for op in report.exported}
        assert not any(getattr(op, "concurrently", True) for op in report.exported)
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
    assert _rows(conn, "shop.orders") == before


def test_the_async_manager_exports_lists_and_restores(dsn: str, conn: Conn, tmp_path: Path) -> None:
    import asyncio

    day0, before = _first_pass(dsn, conn, str(tmp_path))

    async def main() -> None:
        async with partman.AsyncManager(dsn, clock=partman.SimulatedClock(T1)) as m:
            report = await m.maintain()
            assert report.ok, report.results
            (archive,) = [a for a in await m.archives("shop.orders") if a.partition_name == day0]
            assert archive.rows == 4
            done = await m.restore("shop.orders", "2026-03-10", "2026-03-11")
            assert [a.id for a in done] == [archive.id]

    asyncio.run(main())
    assert _rows(conn, "shop.orders") == before


# -- failures never drop ----------------------------------------------------------------------


def test_an_unwritable_location_keeps_the_partition_and_the_next_pass_exports_it(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    day0, before = _first_pass(dsn, conn, str(blocker / "archive"))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        failed = [r for r in report.failed if r.operation.partition_name == day0]
        assert failed and "is not dropped" in str(failed[0].error)
        assert _table_exists(conn, "shop", day0)  # detached, kept
        assert _state(conn, day0) == ("detached", "export")
        assert m.archives() == []
        m.add_managed_table(_orders(str(tmp_path / "good")))  # the location fixed
        again = m.maintain()
        assert again.ok, again.results
        assert not _table_exists(conn, "shop", day0)
        assert [a.rows for a in m.archives() if a.partition_name == day0] == [4]
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
    assert _rows(conn, "shop.orders") == before


def test_a_checksum_mismatch_keeps_the_partition_and_the_next_pass_exports_it(
    dsn: str, conn: Conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day0, _ = _first_pass(dsn, conn, str(tmp_path))
    real = export.read_back

    def corrupt(fs: Any, path: str, plans: Any, batch_rows: int = 1000) -> Checksum:
        found = real(fs, path, plans, batch_rows)
        found.rows -= 1  # as if a row had been lost on the way
        return found

    monkeypatch.setattr(export, "read_back", corrupt)
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        failed = [r for r in report.failed if r.operation.partition_name == day0]
        assert failed and "does not hold what" in str(failed[0].error)
        assert _table_exists(conn, "shop", day0)
        assert _state(conn, day0) == ("detached", "export")
        assert m.archives() == []
        monkeypatch.setattr(export, "read_back", real)
        assert m.maintain().ok
        assert not _table_exists(conn, "shop", day0)
        assert [a.rows for a in m.archives() if a.partition_name == day0] == [4]


def test_a_type_that_cannot_round_trip_is_refused_before_the_detach(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute("CREATE SCHEMA shop")
    conn.execute(
        "CREATE TABLE shop.orders (id bigint, created_at timestamptz NOT NULL, took interval, "
        "seen inet) PARTITION BY RANGE (created_at)"
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        m.add_managed_table(_orders(str(tmp_path)))
        assert m.maintain().ok
    conn.execute("INSERT INTO shop.orders VALUES (1, %s, '1 day', '10.0.0.1')", (NOW,))
    before = partitions(conn, "shop", "orders")
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
    errors = [str(r.error) for r in report.failed]
    assert errors and all("'took' (interval), 'seen' (inet)" in e for e in errors)
    assert all("nothing was detached" in e for e in errors)
    assert set(before) <= set(partitions(conn, "shop", "orders"))  # all still attached
    assert list(tmp_path.iterdir()) == []


def test_values_a_file_cannot_hold_are_refused_before_the_detach_and_named(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    """Infinite timestamps (psycopg cannot read them) and arrays that are not flat and 1-based
    (a list comes back flat from 1): found by one scan before the detach, so the partition
    stays attached and in place instead of failing detached on every pass."""
    conn.execute("CREATE SCHEMA shop")
    conn.execute(
        "CREATE TABLE shop.orders (id bigint, created_at timestamptz NOT NULL, "
        "shipped_at timestamptz, due date, grid int[], tags text[]) "
        "PARTITION BY RANGE (created_at)"
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        m.add_managed_table(_orders(str(tmp_path)))
        assert m.maintain().ok
    conn.execute(
        "INSERT INTO shop.orders VALUES (1, %s, 'infinity', '2026-01-01', '{{1,2},{3,4}}', "
        "'[0:1]={a,b}'), (2, %s, now(), '-infinity', '{1}', '{c}')",
        (NOW, NOW),
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        [failed] = [r for r in report.failed if r.operation.kind == "export"]
        error = str(failed.error)
        for said in (
            "shipped_at holds infinity",
            "due holds infinity",
            "grid holds an array of more than one dimension",
            "tags holds an array",
            "nothing was detached",
        ):
            assert said in error, error
        assert failed.operation.partition_name not in {a.partition_name for a in m.archives()}
    assert conn.execute("SELECT count(*) FROM shop.orders").fetchone() == (2,)
    assert conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'shop.orders_p20260310'::regclass"
    ).fetchone() == (1,)  # the partition with the rows is still attached


def test_a_location_that_cannot_be_opened_is_refused_before_the_detach(
    dsn: str, conn: Conn
) -> None:
    day0, _ = _first_pass(dsn, conn, "nosuchscheme://bucket/prefix")
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
    errors = [str(r.error) for r in report.failed if r.operation.partition_name == day0]
    assert errors and "cannot be opened" in errors[0]
    assert day0 in {name for name, _ in partitions(conn, "shop", "orders")}  # still attached
    assert _state(conn, day0) == ("attached", None)


def test_a_stray_temporary_file_is_overwritten(dsn: str, conn: Conn, tmp_path: Path) -> None:
    day0, before = _first_pass(dsn, conn, str(tmp_path))
    folder = tmp_path / "shop" / "orders"
    folder.mkdir(parents=True)
    (folder / f"{day0}.parquet.partman-tmp").write_bytes(b"half a file from a crash")
    (folder / f"{day0}.parquet").write_bytes(b"a file without a manifest row")
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
    assert _rows(conn, "shop.orders") == before
    assert not (folder / f"{day0}.parquet.partman-tmp").exists()


# -- crashes converge -------------------------------------------------------------------------

WORKER = """
import datetime as dt, os, signal, sys
import partman
from partman.engine import export
dsn, now, kill_at = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), sys.argv[3]
def die(*args, **kwargs):
    print(kill_at, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
if kill_at == "mid-write":  # the temporary file open, its first row group being made
    export._batch = die
elif kill_at == "after-rename":  # the file complete under its name, not yet read back
    export.read_back = die
seen = []
def step(name, op):
    if op.kind == "export":
        seen.append(name)
        print(name, flush=True)
        if kill_at.isdigit() and len(seen) == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)
with partman.Manager(dsn, clock=partman.SimulatedClock(now), on_step=step) as m:
    m.maintain()
"""

EXPORT_STEPS = ("check", "detach", "export", "finish")
"""The steps of one partition's export (DETACH CONCURRENTLY: no default partition)."""
KILL_POINTS = [*(str(n) for n in range(1, len(EXPORT_STEPS) + 1)), "mid-write", "after-rename"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_a_pass_killed_anywhere_is_finished_by_the_next(
    dsn: str, conn: Conn, tmp_path: Path, kill_at: str
) -> None:
    day0, before = _first_pass(dsn, conn, str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", WORKER, dsn, T1.isoformat(), kill_at],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    last = done.stdout.split()[-1]
    assert last == (EXPORT_STEPS[int(kill_at) - 1] if kill_at.isdigit() else kill_at)
    assert _table_exists(conn, "shop", day0)  # killed before the commit that drops it
    folder = tmp_path / "shop" / "orders"
    if kill_at == "mid-write":
        assert (folder / f"{day0}.parquet.partman-tmp").exists()
    if kill_at == "after-rename":
        assert (folder / f"{day0}.parquet").exists()
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        assert report.ok, report.results
        assert m.plan().operations == ()  # nothing left to do
        assert not _table_exists(conn, "shop", day0)
        archives = [a for a in m.archives() if a.partition_name == day0]
        assert [a.rows for a in archives] == [4]  # one manifest row, whatever the kill
        left = conn.execute(
            "SELECT count(*) FROM partman_meta.partitions WHERE state <> 'attached'"
        ).fetchone()
        assert left == (0,)
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
    assert _rows(conn, "shop.orders") == before
    assert not list(folder.glob("*.partman-tmp"))


def test_an_interrupted_restore_is_resumed(dsn: str, conn: Conn, tmp_path: Path) -> None:
    day0, before = _first_pass(dsn, conn, str(tmp_path))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
        # another session holds the parent: the ATTACH cannot get its lock in time
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE shop.orders IN SHARE UPDATE EXCLUSIVE MODE")
            with pytest.raises(ArchiveError, match="run the restore again"):
                m.restore("shop.orders", "2026-03-10", "2026-03-11")
            holder.rollback()
        assert [a.state for a in m.archives() if a.partition_name == day0] == ["restoring"]
        assert _table_exists(conn, "shop", day0)
        m.restore("shop.orders", "2026-03-10", "2026-03-11")  # loaded already: attached now
    assert _rows(conn, "shop.orders") == before


# -- restore refuses an overlap -----------------------------------------------------------------


def test_restore_refuses_an_overlap_and_changes_nothing(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    day0, _ = _first_pass(dsn, conn, str(tmp_path))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
        conn.execute(
            "CREATE TABLE shop.in_the_way PARTITION OF shop.orders "
            "FOR VALUES FROM ('2026-03-10 12:00+00') TO ('2026-03-11 12:00+00')"
        )
        before = partitions(conn, "shop", "orders")
        with pytest.raises(ArchiveError, match=r"overlaps shop\.in_the_way.*Nothing was changed"):
            m.restore("shop.orders", dt.date(2026, 3, 10), dt.date(2026, 3, 11))
        assert partitions(conn, "shop", "orders") == before
        assert not _table_exists(conn, "shop", day0)
        assert {a.state for a in m.archives()} == {"archived"}
        with pytest.raises(ArchiveError, match="no archive"):
            m.restore("shop.orders", "2026-01-01", "2026-02-01")
        conn.execute("DROP TABLE shop.in_the_way")
        conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier("shop", day0)))
        with pytest.raises(ArchiveError, match=r"exists already.*Nothing was changed"):
            m.restore("shop.orders", dt.date(2026, 3, 10), dt.date(2026, 3, 11))
        assert {a.state for a in m.archives()} == {"archived"}


# -- per tenant ---------------------------------------------------------------------------------


def test_per_tenant_export_on_a_tenant_and_time_key(dsn: str, conn: Conn, tmp_path: Path) -> None:
    create_seed_schema(conn)
    location = str(tmp_path)
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        m.add_managed_table(seed_table("events", partition_count=1, export_location=location))
        m.register_tenants(
            "convoy.events",
            [
                partman.Tenant(
                    tenant_id="p1", retention_period="2 days", retention_action="export"
                ),
                partman.Tenant(tenant_id="p2", retention_period="2 days"),  # drop
            ],
        )
        assert m.maintain().ok
    for tenant in ("p1", "p2"):
        conn.execute(
            "INSERT INTO convoy.events (id, project_id, created_at, data) "
            "SELECT 'e' || g, %s, %s + g * interval '1 minute', jsonb_build_object('g', g) "
            "FROM generate_series(1, 50) g",
            (tenant, DAY0),
        )
    before = _rows(conn, "convoy.events")
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        report = m.maintain()
        assert report.ok, report.results
        kinds = {(str(op.tenant), op.kind) for op in report.retired}
        assert kinds == {("p1", "export"), ("p2", "drop")}
        archives = m.archives("convoy.events", tenant="p1")
        assert archives and all(a.tenant == "p1" for a in archives)
        assert m.archives("convoy.events", tenant="p2") == []
        assert sum(a.rows for a in archives) == 50
        restored = m.restore("convoy.events", "2026-03-10", "2026-03-11", tenant="p1")
        assert len(restored) == 1
    rows = _rows(conn, "convoy.events")
    assert rows == [r for r in before if ",p1," in r]  # p1's back, p2's dropped for good


# -- the command line -----------------------------------------------------------------------

TOML = """\
[[table]]
name = "orders"
schema = "shop"
partition_by = "created_at"
partition_interval = "1 day"
retention_period = "2 days"
partition_count = 1
retention_action = "export"
export_location = "{location}"
"""


def _cli(cwd: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PARTMAN_")}
    environ.update({"COLUMNS": "200", "NO_COLOR": "1", "PARTMAN_DSN": dsn})
    return subprocess.run(
        [sys.executable, "-m", "partman", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_line_lists_archives_and_restores(dsn: str, conn: Conn, tmp_path: Path) -> None:
    import json

    location = tmp_path / "archive"
    (tmp_path / "partman.toml").write_text(TOML.format(location=location))
    day0, before = _first_pass(dsn, conn, str(location))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
    listed = _cli(tmp_path, dsn, "archive", "list", "shop.orders", "--json")
    assert listed.returncode == 0, listed.stderr
    archives = json.loads(listed.stdout)["archives"]
    assert {a["partition"] for a in archives} >= {f"shop.{day0}"}
    assert all(a["state"] == "archived" and a["rows"] >= 0 for a in archives)
    table = _cli(tmp_path, dsn, "archive", "list")
    assert table.returncode == 0, table.stderr
    assert "2026-03-10" in table.stdout and "archived" in table.stdout
    conn.execute(
        "CREATE TABLE shop.in_the_way PARTITION OF shop.orders "
        "FOR VALUES FROM ('2026-03-10 12:00+00') TO ('2026-03-10 13:00+00')"
    )
    refused = _cli(
        tmp_path, dsn, "restore", "shop.orders", "--from", "2026-03-10", "--to", "2026-03-11"
    )
    assert refused.returncode == 2
    assert "overlaps shop.in_the_way" in refused.stderr.replace("\n", " ")
    conn.execute("DROP TABLE shop.in_the_way")
    done = _cli(
        tmp_path, dsn, "restore", "shop.orders", "--from", "2026-03-10", "--to", "2026-03-11"
    )
    assert done.returncode == 0, done.stderr
    assert f"restored shop.{day0}" in done.stdout and "checksum verified" in done.stdout
    assert _rows(conn, "shop.orders") == before
    check = _cli(tmp_path, dsn, "check")
    assert check.returncode == 0, check.stdout + check.stderr  # the file's keys are valid


def test_an_id_keyed_table_exports_and_restores_by_id(dsn: str, conn: Conn, tmp_path: Path) -> None:
    conn.execute("CREATE SCHEMA shop")
    conn.execute(
        "CREATE TABLE shop.items (id bigint NOT NULL, name text, tags int[]) "
        "PARTITION BY RANGE (id)"
    )
    table = partman.Table(
        name="items",
        schema="shop",
        partition_by="id",
        partition_interval=1000,
        retention_period=2000,
        partition_count=1,
        retention_action="export",
        export_location=str(tmp_path),
    )
    with partman.Manager(dsn, clock=partman.SimulatedClock(NOW)) as m:
        m.add_managed_table(table)
        assert m.maintain().ok
        conn.execute(
            "INSERT INTO shop.items SELECT g, 'item ' || g, ARRAY[g, g * 2] "
            "FROM generate_series(1, 999) g"
        )
        before = _rows(conn, "shop.items")
        for _ in range(4):  # the newest id moves up a window at a time
            newest = conn.execute("SELECT max(id) FROM shop.items").fetchone()
            assert newest is not None
            assert m.maintain().ok
            conn.execute("INSERT INTO shop.items VALUES (%s + 1000, 'later', NULL)", (newest[0],))
        report = m.maintain()
        assert report.ok, report.results
        archives = [a for a in m.archives("shop.items") if a.lower == "0"]
        assert [(a.upper, a.rows) for a in archives] == [("1000", 999)]
        with pytest.raises(ArchiveError, match="expected a number"):
            m.restore("shop.items", "2026-01-01", "2026-02-01")
        m.restore("shop.items", "0", "1000")
    rows = _rows(conn, "shop.items")
    assert [r for r in rows if r in before] == before


RESTORE_WORKER = """
import os, signal, sys
import partman
from partman.engine import export
dsn, kill_in = sys.argv[1], sys.argv[2]
real = getattr(export, kill_in)
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
setattr(export, kill_in, die)
with partman.Manager(dsn) as m:
    m.restore("shop.orders", "2026-03-10", "2026-03-11")
"""


@pytest.mark.parametrize("kill_in", ["_next_rows", "_attach"])
def test_a_restore_killed_while_loading_or_attaching_is_resumed(
    dsn: str, conn: Conn, tmp_path: Path, kill_in: str
) -> None:
    day0, before = _first_pass(dsn, conn, str(tmp_path))
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
    done = subprocess.run(
        [sys.executable, "-c", RESTORE_WORKER, dsn, kill_in],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        (archive,) = [a for a in m.archives() if a.partition_name == day0]
        # killed in the load: rolled back, nothing there; in the attach: loaded, waiting
        expected = ("archived", False) if kill_in == "_next_rows" else ("restoring", True)
        assert (archive.state, _table_exists(conn, "shop", day0)) == expected
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
        assert [a.state for a in m.archives() if a.partition_name == day0] == ["restored"]
    assert _rows(conn, "shop.orders") == before


def test_a_nan_in_a_numeric_with_a_precision_is_written_as_text(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    day0, _ = _first_pass(dsn, conn, str(tmp_path))
    conn.execute(
        "INSERT INTO shop.orders (id, created_at, amount) VALUES (5, %s, 'NaN')",
        (DAY0 + dt.timedelta(hours=3),),
    )
    before = _rows(conn, "shop.orders")
    with partman.Manager(dsn, clock=partman.SimulatedClock(T1)) as m:
        assert m.maintain().ok
        (archive,) = [a for a in m.archives() if a.partition_name == day0]
        assert [c.arrow for c in archive.columns if c.name == "amount"] == ["string"]
        assert pq.ParquetFile(archive.location).schema_arrow.field("amount").type == pa.string()
        m.restore("shop.orders", "2026-03-10", "2026-03-11")
    assert _rows(conn, "shop.orders") == before
