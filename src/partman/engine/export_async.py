"""Parquet files of detached partitions, and partitions back from them (`docs/archive.md`).

Export (retention_action "export", driven by the executor once the partition is detached):
the rows are read with a server-side cursor, a row group at a time, inside the transaction
that will drop the table (it holds the detached table in SHARE mode, so no row can change
between the read and the drop), written with pyarrow to `<file>.partman-tmp`, and the file is
renamed to its name. The file is then read back, and its row count and checksum
(`model.archive.Checksum`) compared with what was read from PostgreSQL; only then does the
executor record the manifest row and drop the table, in that same transaction. Any failure
leaves the table detached and recorded as such: the next pass writes the file again.

Restore (`Manager.restore`): each archive's table is created unattached (`CREATE TABLE ...
(LIKE parent INCLUDING ...)`), loaded with COPY, its row count and checksum checked against
the manifest, and committed with the archive marked "restoring"; then ATTACH PARTITION under
the lock budget, with partman's ownership record and the archive marked "restored", in one
short transaction. An interrupted restore is resumed by running it again.

Files are reached through fsspec: a local directory, or a URL such as s3://bucket/prefix with
the credentials its client reads from the environment (AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL,
...). pyarrow, fsspec and s3fs come with `pip install 'partman[archive]'`.

Source of truth for both faces: `export.py` is generated from this file by
tools/async_to_sync.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ..db import archives as db
from ..db import ddl, metadata
from ..decide import restore as choose
from ..model.archive import (
    ROW_GROUP_ROWS,
    TEMP_SUFFIX,
    Archive,
    ArchiveError,
    Checksum,
    ColumnPlan,
    file_path,
    plan_columns,
)
from ..model.backoff import Backoff
from ..model.config import Config
from ..model.operations import RetirePartition, create_statements
from ..model.snapshot import ParentInfo, owner_comment
from ..model.text import first_line, iso

if TYPE_CHECKING:
    import pyarrow as pa

Progress = Callable[[int, int], None]
"""Called as rows are loaded: (rows done, rows in all)."""


@dataclasses.dataclass(frozen=True)
class Written:
    """A partition's file, written and read back: where, how big, what it holds."""

    location: str
    rows: int
    size: int
    checksum: str
    plans: tuple[ColumnPlan, ...]


def _modules() -> tuple[Any, Any, Any]:
    try:
        import fsspec
        import pyarrow
        import pyarrow.parquet
    except ImportError as error:
        raise ArchiveError(
            f"retention_action 'export' and restore need pyarrow and fsspec ({error}); "
            "install them with: pip install 'partman[archive]'"
        ) from None
    return pyarrow, pyarrow.parquet, fsspec


def filesystem(location: str) -> tuple[Any, str]:
    """The fsspec filesystem of a location and the path in it. A fresh instance each time:
    credentials and endpoints are read from the environment as it is now."""
    _, _, fsspec = _modules()
    try:
        return fsspec.core.url_to_fs(location, skip_instance_cache=True)  # type: ignore[no-any-return]
    except (ImportError, ValueError) as error:
        raise ArchiveError(
            f"export_location {location!r} cannot be opened: {error} (for s3:// install "
            "s3fs: pip install 'partman[archive]')"
        ) from None


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type a `ColumnPlan.arrow` names."""
    pa, _, _ = _modules()
    if name.startswith("list<") and name.endswith(">"):
        return pa.list_(arrow_type(name[5:-1]))
    if name.startswith("decimal128("):
        precision, scale = name[len("decimal128(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    simple = {
        "bool": pa.bool_(),
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "string": pa.string(),
        "binary": pa.binary(),
        "uuid": pa.uuid(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    return simple[name]


def arrow_schema(plans: Sequence[ColumnPlan], about: dict[str, Any]) -> pa.Schema:
    """The file's schema: one field per column, its PostgreSQL type in the field's metadata,
    and what partition it holds in the schema's (key b"partman")."""
    pa, _, _ = _modules()
    fields = [
        pa.field(p.name, arrow_type(p.arrow), metadata={b"pg_type": p.pg_type.encode()})
        for p in plans
    ]
    return pa.schema(fields, metadata={b"partman": json.dumps(about, default=str).encode()})


def _batch(columns: Sequence[Sequence[Any]], plans: Sequence[ColumnPlan], schema: pa.Schema) -> Any:
    pa, _, _ = _modules()
    arrays = []
    for plan, values, f in zip(plans, columns, schema, strict=True):
        try:
            arrays.append(pa.array(values, type=f.type))
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
            raise ArchiveError(
                f"column {plan.name!r} ({plan.pg_type}) holds a value partman cannot write as "
                f"{plan.arrow} ({first_line(error)}); e.g. a multi-dimensional array"
            ) from None
    return pa.Table.from_arrays(arrays, schema=schema)


def read_back(
    fs: Any, path: str, plans: Sequence[ColumnPlan], batch_rows: int = ROW_GROUP_ROWS
) -> Checksum:
    """Row count and checksum of a Parquet file written with `plans`, a batch at a time."""
    _, pq, _ = _modules()
    found = Checksum(plans)
    with fs.open(path, "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows):
            found.add_columns([c.to_pylist() for c in batch.columns])
    return found


# -- export ---------------------------------------------------------------------------------


async def table_columns(
    conn: psycopg.AsyncConnection[Any], schema: str, name: str, *, scan: bool = False
) -> tuple[ColumnPlan, ...]:
    """The table's columns as they would be written; `ArchiveError` naming any that cannot be.

    `scan`: a numeric(p, s) column holding a NaN (which decimal128 cannot hold) is written as
    its text instead (one pass over the table, only when it has such columns)."""
    cur = await conn.execute(db.columns_query(schema, name))
    rows = await cur.fetchall()
    if not rows:
        raise ArchiveError(f"{schema}.{name} not found (or has no columns)")
    plans = plan_columns([db.pg_column(r) for r in rows], f"{schema}.{name}")
    decimals = [p for p in plans if p.arrow.startswith("decimal128(")]
    if not scan or not decimals:
        return plans
    cur = await conn.execute(db.nan_query(sql.Identifier(schema, name), decimals))
    found = await cur.fetchone()
    with_nan = {p.name for p, nan in zip(decimals, found or (), strict=False) if nan}
    return tuple(
        dataclasses.replace(p, arrow="string", as_text=True) if p.name in with_nan else p
        for p in plans
    )


async def preflight(conn: psycopg.AsyncConnection[Any], op: RetirePartition) -> None:
    """Before the detach: pyarrow and the location's filesystem can be loaded, every column
    can be written, and no value is one a file cannot hold (infinite times, arrays that are
    not flat and 1-based: one scan, only for tables with such columns); `ArchiveError` saying
    what is wrong, and nothing is detached."""
    if op.export_location is None:
        raise ArchiveError(f"{op.parent_qualified} has no export_location; nothing was detached")
    _modules()
    filesystem(op.export_location)
    plans = await table_columns(conn, op.partition_schema, op.partition_name)
    checks = db.unwritable_checks(plans)
    if not checks:
        return
    table = sql.Identifier(op.partition_schema, op.partition_name)
    cur = await conn.execute(db.unwritable_query(table, checks))
    found = await cur.fetchone()
    bad = found or ()
    wrong = [f"{name} {what}" for (name, what, _), b in zip(checks, bad, strict=False) if b]
    if wrong:
        raise ArchiveError(
            f"{op.partition_schema}.{op.partition_name} cannot be written to Parquet and read "
            f"back identically: {'; '.join(wrong)}; change those values, or give this table "
            "another retention_action; nothing was detached"
        )


async def check_free(conn: psycopg.AsyncConnection[Any], targets: Sequence[choose.Target]) -> None:
    """`ArchiveError` naming every archive not yet loaded whose table name is taken by a
    table that is not a partition (`choose.check` has looked at the partitions)."""
    taken = []
    for t in targets:
        a = t.archive
        if a.state == "restoring":
            continue
        cur = await conn.execute(ddl.detached_query(a.partition_schema, a.partition_name))
        if await cur.fetchone() is not None:
            taken.append(a.partition)
    if taken:
        raise ArchiveError(
            f"cannot restore: a table named {', '.join(taken)} exists already; rename or drop "
            "it first. Nothing was changed"
        )


def lock_sql(op: RetirePartition) -> sql.Composed:
    """The detached table's rows held still until the transaction that drops it commits."""
    return sql.SQL("LOCK TABLE {} IN SHARE MODE").format(op.partition)


async def write_partition(
    conn: psycopg.AsyncConnection[Any],
    op: RetirePartition,
    *,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Written:
    """Write the detached partition `op` names to Parquet under its export_location, then read
    the file back and check it. Call inside a transaction that holds `lock_sql(op)`; it stays
    open. `ArchiveError` when anything fails (the table is never dropped here)."""
    assert op.export_location is not None
    _, pq, _ = _modules()
    plans = await table_columns(conn, op.partition_schema, op.partition_name, scan=True)
    fs, root = filesystem(op.export_location)
    path = file_path(root, op.partition_schema, op.parent_name, op.partition_name)
    shown = file_path(op.export_location, op.partition_schema, op.parent_name, op.partition_name)
    temp = path + TEMP_SUFFIX
    about = {
        "table": op.parent_qualified,
        "partition": op.partition_qualified,
        "tenant": None if op.tenant is None else str(op.tenant),
        "from": iso(op.lower),
        "to": iso(op.upper),
    }
    schema = arrow_schema(plans, about)
    source = Checksum(plans)
    try:
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(temp, "wb") as f, pq.ParquetWriter(f, schema, compression="zstd") as out:
            cur = conn.cursor(name="partman_export")
            await cur.execute(db.select_rows(op.partition, plans))
            while True:
                rows = await cur.fetchmany(row_group_rows)
                if not rows:
                    break
                group = (out, source, rows, plans, schema, row_group_rows)
                if True:  # ASYNC
                    await asyncio.to_thread(_write_group, *group)  # the event loop goes on
                else:
                    _write_group(*group)
            await cur.close()
        if True:  # ASYNC
            found, size = await asyncio.to_thread(_settle, fs, temp, path, plans, row_group_rows)
        else:
            found, size = _settle(fs, temp, path, plans, row_group_rows)
    except ArchiveError:
        raise
    except psycopg.Error:
        raise
    except Exception as error:
        raise ArchiveError(
            f"writing {op.partition_qualified} to {shown} failed: {type(error).__name__}: "
            f"{first_line(error)}; the partition stays detached and is not dropped, the next "
            "pass tries again"
        ) from error
    if (found.rows, found.text) != (source.rows, source.text):
        raise ArchiveError(
            f"{shown} does not hold what {op.partition_qualified} holds: {found.rows} row(s), "
            f"{found.text} in the file, {source.rows} row(s), {source.text} in the table; "
            "the partition stays detached and is not dropped, the next pass writes it again"
        )
    return Written(shown, source.rows, size, source.text, plans)


def _write_group(
    out: Any,
    source: Checksum,
    rows: Sequence[Sequence[Any]],
    plans: Sequence[ColumnPlan],
    schema: pa.Schema,
    size: int,
) -> None:
    """One row group: its rows into the checksum, then into the file (CPU and I/O: run in a
    thread by `AsyncManager`)."""
    columns = list(zip(*rows, strict=True))
    source.add_columns(columns)
    out.write_table(_batch(columns, plans, schema), row_group_size=size)


def _settle(
    fs: Any, temp: str, path: str, plans: Sequence[ColumnPlan], batch_rows: int
) -> tuple[Checksum, int]:
    """The temporary file renamed to its name (replacing one a crash left), then read back:
    its checksum and size."""
    if fs.exists(path):
        fs.rm(path)
    fs.mv(temp, path)
    return read_back(fs, path, plans, batch_rows), int(fs.size(path))


def finish_sql(meta: str, op: RetirePartition, written: Written) -> list[sql.Composable]:
    """The manifest row, then the DROP: sent in the transaction that read the rows."""
    return [
        db.insert_archive(
            meta,
            parent_schema=op.parent_schema,
            parent_name=op.parent_name,
            partition_schema=op.partition_schema,
            partition_name=op.partition_name,
            tenant_id=None if op.tenant is None else str(op.tenant),
            lower=iso(op.lower) or "",
            upper=iso(op.upper) or "",
            location=written.location,
            rows=written.rows,
            size=written.size,
            checksum=written.checksum,
            plans=written.plans,
        ),
        sql.SQL("DROP TABLE {}").format(op.partition),
    ]


# -- the manifest, and restore --------------------------------------------------------------


async def list_archives(
    conn: psycopg.AsyncConnection[Any], meta: str, table: str | None = None
) -> list[Archive]:
    cur = await conn.execute(db.list_archives(meta, table))
    return [db.parse_archive(r) for r in await cur.fetchall()]


async def restore_one(
    conn: psycopg.AsyncConnection[Any],
    config: Config,
    parent: ParentInfo,
    target: choose.Target,
    *,
    progress: Progress | None = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> Archive:
    """Bring one archive back as a partition of `parent` (see the module docstring)."""
    a = target.archive
    partition = sql.Identifier(a.partition_schema, a.partition_name)
    cur = await conn.execute(ddl.detached_query(a.partition_schema, a.partition_name))
    found = await cur.fetchone()
    if found is not None and found[0]:
        raise ArchiveError(f"{a.partition} is a partition already; archive {a.id} left as it is")
    if found is None or a.state != "restoring":
        if found is not None:
            raise ArchiveError(f"a table {a.partition} exists already; restore refused")
        await _load(conn, config, parent, a, partition, progress)
    await _attach(conn, config, target, partition, sleep)
    return dataclasses.replace(a, state="restored", restored_at=dt.datetime.now(dt.UTC))


async def _load(
    conn: psycopg.AsyncConnection[Any],
    config: Config,
    parent: ParentInfo,
    a: Archive,
    partition: sql.Identifier,
    progress: Progress | None,
) -> None:
    """Create the table unattached, COPY the file's rows in, check them; one transaction."""
    _, pq, _ = _modules()
    missing = [c.name for c in a.columns if c.name not in parent.columns]
    if missing:
        raise ArchiveError(
            f"{parent.qualified_name} has no column {', '.join(map(repr, missing))} any more; "
            f"archive {a.id} ({a.location}) cannot be restored into it"
        )
    fs, path = filesystem(a.location)
    loaded = [i for i, c in enumerate(a.columns) if not c.generated]
    names = sql.SQL(", ").join(sql.Identifier(a.columns[i].name) for i in loaded)
    parent_id = sql.Identifier(parent.schema, parent.name)
    try:
        handle = fs.open(path, "rb")
    except Exception as error:
        raise ArchiveError(f"cannot open {a.location}: {type(error).__name__}: {error}") from None
    done = 0
    # the lock budget for LIKE's read of the parent; no statement_timeout: COPY takes its time
    await conn.execute(
        sql.SQL("BEGIN; SET LOCAL lock_timeout = {}").format(ddl.ms(config.lock_timeout))
    )
    try:
        await conn.execute(ddl.script(create_statements(partition, parent_id, parent.traits)))
        with handle:
            batches = pq.ParquetFile(handle).iter_batches(batch_size=ROW_GROUP_ROWS)
            async with conn.cursor().copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(partition, names)
            ) as copy:
                while True:
                    if True:  # ASYNC
                        rows = await asyncio.to_thread(_next_rows, batches, loaded)
                    else:
                        rows = _next_rows(batches, loaded)
                    if rows is None:
                        break
                    for row in rows:
                        await copy.write_row(row)
                    done += len(rows)
                    if progress is not None:
                        progress(done, a.rows)
        again = Checksum(a.columns)
        named = conn.cursor(name="partman_restore_check")
        await named.execute(db.select_rows(partition, a.columns))
        while True:
            rows = await named.fetchmany(ROW_GROUP_ROWS)
            if not rows:
                break
            if True:  # ASYNC
                await asyncio.to_thread(again.add_rows, rows)
            else:
                again.add_rows(rows)
        await named.close()
        if (again.rows, again.text) != (a.rows, a.checksum):
            raise ArchiveError(
                f"{a.partition} as loaded from {a.location} does not match the manifest: "
                f"{again.rows} row(s), {again.text}; expected {a.rows} row(s), {a.checksum}. "
                "Nothing was restored"
            )
        await conn.execute(
            ddl.script(
                [
                    sql.SQL("COMMENT ON TABLE {} IS {}").format(
                        partition,
                        sql.Literal(f"partman restore of archive {a.id}: loaded, attached next"),
                    ),
                    db.archive_state(config.metadata_schema, a.id, "restoring"),
                    ddl.COMMIT,
                ]
            )
        )
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await conn.execute(ddl.ROLLBACK)
        raise


def _next_rows(batches: Any, loaded: Sequence[int]) -> list[tuple[Any, ...]] | None:
    """The next batch of the file as rows of the columns COPY loads; None at the end."""
    batch = next(batches, None)
    if batch is None:
        return None
    return list(zip(*(batch.column(i).to_pylist() for i in loaded), strict=True))


async def _attach(
    conn: psycopg.AsyncConnection[Any],
    config: Config,
    target: choose.Target,
    partition: sql.Identifier,
    sleep: Callable[[float], Any],
) -> None:
    """ATTACH under the lock budget, with partman's records, in one short transaction."""
    a = target.archive
    parent = sql.Identifier(a.parent_schema, a.parent_name)
    bound = sql.SQL("FOR VALUES FROM ({}) TO ({})").format(
        sql.SQL(", ").join(sql.Literal(v) for v in target.lower_text),
        sql.SQL(", ").join(sql.Literal(v) for v in target.upper_text),
    )
    statements = [
        ddl.begin(config.lock_timeout, config.statement_timeout),
        ddl.parent_lock_sql(a.table),
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(parent, partition, bound),
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            partition, sql.Literal(owner_comment("created"))
        ),
        metadata.record_partition_sql(
            config.metadata_schema,
            partition_schema=a.partition_schema,
            partition_name=a.partition_name,
            parent_schema=a.parent_schema,
            parent_name=a.parent_name,
            tenant_id=a.tenant,
            lower=a.lower,
            upper=a.upper,
            origin="created",
        ),
        db.archive_state(config.metadata_schema, a.id, "restored"),
        ddl.COMMIT,
    ]
    backoff = Backoff(config.retry_backoff.total_seconds(), jitter=0.5)
    attempts = 0
    while True:
        attempts += 1
        try:
            await conn.execute(ddl.script(statements))
            return
        except ddl.RETRYABLE as error:
            await conn.execute(ddl.ROLLBACK)
            if attempts <= config.max_retries:
                await sleep(backoff.delay(attempts))
                continue
            raise ArchiveError(
                f"{a.partition} is loaded and checked but could not be attached to {a.table}: "
                f"no lock within lock_timeout after {attempts} attempts ({first_line(error)}); "
                "run the restore again to attach it"
            ) from None
        except psycopg.Error as error:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.execute(ddl.ROLLBACK)
            raise ArchiveError(
                f"{a.partition} is loaded and checked but ATTACH failed: {ddl.explain(error)}; "
                "it waits, unattached, for the restore to be run again"
            ) from None
