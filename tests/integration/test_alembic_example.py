"""examples/alembic_project run as its users run it: `alembic` and `partman` as subprocesses.

The example declares the seed's three convoy tables with `partman.contrib.sqlalchemy` and
hands them to partman in a migration (`op.manage_table`). These tests run `alembic upgrade`
and `downgrade` against this test's fresh database and look at what they left: partman's
metadata, the catalog, the rows. Failing migrations are written into a copy of the example.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Column, DateTime, Integer, MetaData, String, create_engine, pool
from sqlalchemy import Table as SATable
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import partman
from partman.contrib.sqlalchemy import declared_tables, partitioned, partman_tables
from partman.engine import registration, store

from seed import SEED_TABLES, catalog_fingerprint, days_covered

pytestmark = pytest.mark.one_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "alembic_project"
PROJECTS = ("project-acme", "project-globex", "o'reilly-media")  # seeded by 0001
PREMAKE = 10
DAY = dt.timedelta(days=1)
TIMEOUT = 120  # seconds; a command takes about one

Conn = psycopg.Connection[Any]


# -- running the tools --------------------------------------------------------------------------


def run(
    dsn: str, *args: str, project: Path = EXAMPLE, code: int | None = 0
) -> subprocess.CompletedProcess[str]:
    """A command as a deploy script runs it, with the example's configuration."""
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=project,
        env={**os.environ, "DATABASE_URL": dsn},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if code is not None:
        output = f"{proc.stdout}\n{proc.stderr}"
        assert proc.returncode == code, f"{args}: exit {proc.returncode}\n{output}"
    return proc


def alembic(dsn: str, *args: str, project: Path = EXAMPLE, code: int | None = 0) -> str:
    ini = str(project / "alembic.ini")
    proc = run(dsn, "alembic", "-c", ini, *args, project=project, code=code)
    return proc.stdout + proc.stderr


def maintain(dsn: str) -> str:
    """One maintenance pass, as cron runs it: partman.toml names only the database."""
    proc = run(dsn, "partman", "apply", "--yes", "--config", str(EXAMPLE / "partman.toml"))
    return proc.stdout


def copy_of_example(tmp_path: Path, *revisions: str) -> Path:
    """The example in a directory of its own, with more revisions after 0002."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    for number, body in enumerate(revisions, start=3):
        (project / "versions" / f"{number:04d}_more.py").write_text(
            textwrap.dedent(
                f"""\
                import sqlalchemy as sa
                from alembic import op

                revision = "{number:04d}"
                down_revision = "{number - 1:04d}"
                branch_labels = None
                depends_on = None


                def upgrade() -> None:
                """
            )
            + textwrap.indent(textwrap.dedent(body), "    ")
            + "\n\ndef downgrade() -> None:\n    pass\n"
        )
    return project


# -- looking at the database ----------------------------------------------------------------------


def managed(conn: Conn) -> dict[str, tuple[Any, ...]]:
    """Registered tables: name -> (tenant column, time column, interval, premake, retention)."""
    if not store.exists(conn, "partman_meta"):
        return {}
    rows = conn.execute(
        "SELECT schema_name || '.' || table_name, tenant_column, time_column, "
        "partition_interval, partition_count, retention FROM partman_meta.managed_tables"
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def tenants(conn: Conn, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT t.tenant_id FROM partman_meta.tenants t JOIN partman_meta.managed_tables m "
        "ON m.id = t.table_id WHERE m.schema_name = 'convoy' AND m.table_name = %s",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def partition_count(conn: Conn) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        "JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = 'convoy' AND p.relkind = 'p'"
    ).fetchone()
    return int(row[0]) if row else 0


def version(conn: Conn) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def today() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def premade(first: dt.datetime, last: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Today and PREMADE days ahead (of both days, should the test cross midnight UTC)."""
    days = {d + i * DAY for d in (first, last) for i in range(PREMAKE + 1)}
    return [(d, d + DAY) for d in sorted(days)]


TENANTS_QUERY_ARG = "tenants_query='SELECT uid FROM convoy.projects'"
SEED_POLICY = ("project_id", "created_at", "1 day", PREMAKE, "30 days")


# -- the example, end to end ------------------------------------------------------------------


def test_upgrade_head_leaves_the_seed_tables_managed_and_the_next_pass_covers_every_project(
    dsn: str, conn: Conn
) -> None:
    alembic(dsn, "upgrade", "head")

    assert managed(conn) == {f"convoy.{t}": SEED_POLICY for t in SEED_TABLES}
    for table in SEED_TABLES:  # tenants_query found the projects the application has
        assert tenants(conn, table) == set(PROJECTS)
    assert partition_count(conn) == 0  # partitions are the maintenance pass's job

    first = today()
    assert "Applied: created 99," in maintain(dsn)  # 3 tables x 3 projects x 11 days
    expected = premade(first, today())
    for table in SEED_TABLES:
        for project in PROJECTS:
            assert days_covered(conn, "convoy", table, project) == expected, (table, project)

    # autogenerate agrees with the migrations, and proposes no drop_table for the partitions
    # the pass made (nor for partman's metadata)
    assert "No new upgrade operations detected" in alembic(dsn, "check")


def test_downgrade_stops_managing_and_keeps_every_partition_and_row(dsn: str, conn: Conn) -> None:
    alembic(dsn, "upgrade", "head")
    maintain(dsn)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO convoy.events (id, project_id, data) VALUES (%s, %s, '{}')",
            [(f"e{i}", p) for i, p in enumerate(PROJECTS)],
        )
    before = catalog_fingerprint(conn)
    owned = conn.execute("SELECT count(*) FROM partman_meta.partitions").fetchone()

    alembic(dsn, "downgrade", "0001")

    assert version(conn) == "0001"
    assert managed(conn) == {}
    assert catalog_fingerprint(conn) == before  # every partition, comment and schema is there
    assert conn.execute("SELECT count(*) FROM convoy.events").fetchone() == (len(PROJECTS),)
    # still recorded as partman's: managing the tables again resumes where they were
    assert conn.execute("SELECT count(*) FROM partman_meta.partitions").fetchone() == owned

    alembic(dsn, "upgrade", "head")
    assert managed(conn) == {f"convoy.{t}": SEED_POLICY for t in SEED_TABLES}
    out = maintain(dsn)
    if catalog_fingerprint(conn) == before:  # unless midnight UTC passed meanwhile
        assert "Applied: created 0, retired 0" in out


def test_autogenerate_writes_manage_table_and_never_proposes_dropping_partitions(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    """At 0001 the tables exist but nobody manages them: autogenerate writes what 0002 says.
    Here env.py compares every schema (no include_name), partman's metadata included."""
    project = copy_of_example(tmp_path)
    (project / "versions" / "0002_manage_convoy_tables.py").unlink()
    env = project / "env.py"
    env.write_text(env.read_text().replace("include_name=include_name,", ""))
    alembic(dsn, "upgrade", "head", project=project)

    alembic(dsn, "revision", "--autogenerate", "-m", "manage", "--rev-id", "0002", project=project)

    (script,) = (project / "versions").glob("0002_*.py")
    text = script.read_text()
    for table in SEED_TABLES:
        assert (
            f"op.manage_table('{table}', schema='convoy', by='created_at', tenant='project_id', "
            f"interval='1 day', premake=10, retention='30 days', {TENANTS_QUERY_ARG})"
        ) in text
        assert f"op.unmanage_table('{table}', schema='convoy')" in text
    assert "drop_table" not in text and "create_table" not in text
    alembic(dsn, "upgrade", "head", project=project)
    assert managed(conn) == {f"convoy.{t}": SEED_POLICY for t in SEED_TABLES}
    maintain(dsn)
    assert partition_count(conn) == 99
    # neither the 99 partitions nor partman_meta's tables and indexes are proposed for drops
    assert "No new upgrade operations detected" in alembic(dsn, "check", project=project)


# -- failed migrations leave nothing behind ---------------------------------------------------

CREATE_AND_FAIL = """\
op.create_partitioned_table(
    "audit_events",
    sa.Column("id", sa.String(), nullable=False),
    sa.Column("project_id", sa.String(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", "created_at", "project_id"),
    schema="convoy",
    by="created_at",
    tenant="project_id",
    interval="1 day",
    premake=3,
    retention="7 days",
    tenants=["project-acme"],
)
op.manage_table(
    "events", schema="convoy", by="created_at", tenant="project_id", interval="1 day",
    premake=10, retention="90 days",
)
op.execute("SELECT 1 / 0")  # a later step of the same migration fails
"""


def test_a_migration_failing_after_the_operation_leaves_no_table_and_no_registration(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    alembic(dsn, "upgrade", "0002")
    before = catalog_fingerprint(conn)
    project = copy_of_example(tmp_path, CREATE_AND_FAIL)

    out = alembic(dsn, "upgrade", "head", project=project, code=1)

    assert "division by zero" in out
    assert version(conn) == "0002"
    assert catalog_fingerprint(conn) == before  # no convoy.audit_events
    assert managed(conn) == {f"convoy.{t}": SEED_POLICY for t in SEED_TABLES}  # 30 days, still

    # the same migration without its failing step commits the table and both registrations
    fixed = copy_of_example(tmp_path / "fixed", CREATE_AND_FAIL.replace('op.execute("SELECT', "#"))
    alembic(dsn, "upgrade", "head", project=fixed)
    assert managed(conn) == {
        **{f"convoy.{t}": SEED_POLICY for t in SEED_TABLES},
        "convoy.events": ("project_id", "created_at", "1 day", PREMAKE, "90 days"),
        "convoy.audit_events": ("project_id", "created_at", "1 day", 3, "1 week"),
    }
    assert tenants(conn, "audit_events") == {"project-acme"}


def test_a_first_migration_that_fails_leaves_not_even_partmans_metadata(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    """0001 to 0003 in one transaction: 0002 registers (creating partman_meta), 0003 fails on
    a table that is not partitioned, with partman's message; nothing at all is left."""
    project = copy_of_example(
        tmp_path,
        'op.manage_table("projects", schema="convoy", by="created_at", tenant="uid")\n',
    )
    before = catalog_fingerprint(conn)

    out = alembic(dsn, "upgrade", "head", project=project, code=1)

    assert "NotPartitionedError: convoy.projects is a plain table, not a partitioned table" in out
    assert catalog_fingerprint(conn) == before  # no convoy, no partman_meta, no alembic_version


# -- declarations ---------------------------------------------------------------------------------


class _Base(DeclarativeBase):
    pass


def test_a_bad_policy_is_a_partman_error_naming_the_model_when_the_module_is_imported() -> None:
    with pytest.raises(partman.IntervalError, match=r"model Misspelt: invalid .* '1 dya'"):

        class Misspelt(_Base):
            __tablename__ = "misspelt"
            __table_args__ = partitioned(by="created_at", interval="1 dya")
            id: Mapped[int] = mapped_column(primary_key=True)
            created_at: Mapped[dt.datetime] = mapped_column(primary_key=True)

    with pytest.raises(partman.ConfigError, match=r"model Keyless \(table keyless\): its primary"):

        class Keyless(_Base):  # PostgreSQL wants project_id in the primary key
            __tablename__ = "keyless"
            __table_args__ = partitioned(by="created_at", tenant="project_id")
            id: Mapped[int] = mapped_column(primary_key=True)
            project_id: Mapped[str]
            created_at: Mapped[dt.datetime] = mapped_column(primary_key=True)

    with pytest.raises(partman.ConfigError, match=r"table t: column 'n' is INTEGER"):
        SATable("t", MetaData(), Column("n", Integer, primary_key=True), **partitioned(by="n"))

    assert not {"misspelt", "keyless"} & set(_Base.metadata.tables)


def _example_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alembic_example_models", EXAMPLE / "models.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:  # once per session: SQLAlchemy resolves annotations by module name
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def test_the_declared_tables_drive_a_manager_without_alembic(dsn: str, conn: Conn) -> None:
    """`metadata.create_all()` makes the parents partitioned; `declared_tables()` gives the
    Manager the same Tables the migration registers."""
    models = _example_models()
    engine = create_engine(
        URL.create("postgresql+psycopg", query=conninfo_to_dict(dsn)), poolclass=pool.NullPool
    )
    conn.execute("CREATE SCHEMA convoy")
    models.Base.metadata.create_all(engine)
    engine.dispose()
    assert [t.qualified_name for t in partman_tables(models.Base.metadata)] == [
        f"convoy.{t}" for t in sorted(SEED_TABLES)
    ]

    first = today()
    with partman.Manager(dsn) as manager:
        for declared in declared_tables(models.Base.metadata):
            assert declared.model in {"Event", "EventDelivery", "DeliveryAttempt"}
            manager.add_managed_table(declared.table)
            manager.register_tenants(declared.table, PROJECTS)
        manager.maintain()
    for table in SEED_TABLES:
        for project in PROJECTS:
            assert days_covered(conn, "convoy", table, project) == premade(first, today())


# -- registration on the caller's connection ----------------------------------------------------


def test_register_joins_the_callers_transaction_and_leaves_its_settings_alone(dsn: str) -> None:
    table = partman.Table(
        name="events", schema="convoy", tenant_id_column="project_id", partition_by="created_at"
    )
    with psycopg.connect(dsn) as conn:  # not autocommit: the caller's transaction
        conn.execute("CREATE SCHEMA convoy")
        conn.execute(
            "CREATE TABLE convoy.events (project_id text, created_at timestamptz) "
            "PARTITION BY RANGE (project_id, created_at)"
        )
        conn.execute("SET LOCAL TimeZone = 'Asia/Tokyo'; SET LOCAL lock_timeout = '2s'")

        registration.register(conn, table, ["project-acme"])

        settings = "SELECT current_setting('TimeZone'), current_setting('lock_timeout')"
        assert conn.execute(settings).fetchone() == ("Asia/Tokyo", "2s")
        assert managed(conn) == {"convoy.events": ("project_id", "created_at", "1 day", 10, None)}
        conn.rollback()  # the caller decides: nothing was committed on its behalf
        assert managed(conn) == {}
        conn.rollback()

    with (
        pytest.raises(partman.TenantError, match="nothing registered"),
        psycopg.connect(dsn, autocommit=True) as conn,
    ):
        conn.execute("CREATE SCHEMA convoy")
        conn.execute(
            "CREATE TABLE convoy.events (project_id int, created_at timestamptz) "
            "PARTITION BY RANGE (project_id, created_at)"
        )
        registration.register(conn, table, [1, "not-a-number"])
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert managed(conn) == {}


def test_a_key_column_that_needs_quoting_is_quoted_in_partition_by() -> None:
    """A key column that needs quoting is quoted in PARTITION BY, like everywhere else."""
    args = partitioned(by="Created At", tenant="tenant")
    assert args["postgresql_partition_by"] == 'RANGE (tenant, "Created At")'
    table = SATable(
        "odd",
        MetaData(),
        Column("tenant", String, primary_key=True),
        Column("Created At", DateTime(timezone=True), primary_key=True),
        **args,
    )
    assert [t.partition_by for t in partman_tables(table.metadata)] == ["Created At"]


SHAPES = """\
op.create_partitioned_table(
    "orders",
    sa.Column("id", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    schema="convoy",
    by="id",
    interval=1000,
    premake=2,
    retention="30 days",
    retention_column="created_at",
)
op.create_partitioned_table(
    "readings",
    sa.Column("device_id", sa.Integer(), nullable=False),
    sa.Column("at", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("device_id", "at"),
    schema="convoy",
    by="at",
    epoch="milliseconds",
    interval="1 day",
    premake=1,
    sub_partition_by="device_id",
    sub_partition_modulus=4,
)
"""


def test_a_migration_creates_and_manages_id_and_epoch_tables_with_hash_leaves(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    alembic(dsn, "upgrade", "head", project=copy_of_example(tmp_path, SHAPES))
    shapes = conn.execute(
        "SELECT table_name, partition_interval, retention, retention_column, epoch, "
        "sub_partition_by, sub_partition_modulus FROM partman_meta.managed_tables "
        "WHERE table_name IN ('orders', 'readings') ORDER BY 1"
    ).fetchall()
    assert shapes == [
        ("orders", "1000", "30 days", "created_at", None, None, None),
        ("readings", "1 day", None, None, "milliseconds", "device_id", 4),
    ]
    maintain(dsn)
    leaves = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname LIKE 'readings_p%' AND p.relkind = 'p'"
    ).fetchone()
    assert leaves == (2 * 4,)  # today and one day ahead, each HASH into 4
