"""`op.unpartition_table` in a real Alembic migration (examples/alembic_project, copied, with more
revisions): `alembic upgrade` turns the example's managed, multi-tenant `convoy.events` back
into one ordinary table while a writer inserts into it, `alembic downgrade` swaps back to the
partitioned table, managed by partman again, and removes what the unpartition made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_alembic_convert import Writer as ConvertWriter
from test_alembic_convert import alembic, project, relkind
from test_alembic_example import maintain

pytestmark = pytest.mark.one_server

FILL_EVENTS = """
op.execute(
    "INSERT INTO convoy.events (id, project_id, created_at) SELECT 'e' || g, p.uid, "
    "now() + (g % 48) * interval '1 hour' FROM generate_series(1, 1000) g "
    "CROSS JOIN convoy.projects p"
)
"""
EMPTY_EVENTS = 'op.execute("DELETE FROM convoy.events")\n'
UNPARTITION = """
with op.get_context().autocommit_block():
    op.unpartition_table("events", schema="convoy", batch_rows=700)
"""
ROLLBACK = """
with op.get_context().autocommit_block():
    op.rollback_unpartition_table("events", schema="convoy")
"""


class Writer(ConvertWriter):
    """Inserts an event every few milliseconds, through the whole command."""

    insert = (
        "INSERT INTO convoy.events (id, project_id) "
        "VALUES (gen_random_uuid()::text, 'project-acme')"
    )


def managed(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM partman_meta.managed_tables WHERE schema_name = 'convoy' ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def test_upgrade_unpartitions_a_live_table_and_downgrade_partitions_it_again(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    where = project(tmp_path, (FILL_EVENTS, EMPTY_EVENTS), (UNPARTITION, ROLLBACK))
    alembic(dsn, where, "upgrade", "0002")
    maintain(dsn)  # the partitions, made ahead by a pass
    alembic(dsn, where, "upgrade", "0003")
    assert relkind(conn, "convoy.events") == "p"
    assert "events" in managed(conn)
    (before,) = conn.execute("SELECT count(*) FROM convoy.events").fetchone() or (0,)
    assert before == 3000  # three projects

    with Writer(dsn) as writer:
        time.sleep(0.1)
        alembic(dsn, where, "upgrade", "head")
        time.sleep(0.1)
    assert writer.errors == [] and writer.written > 0
    assert relkind(conn, "convoy.events") == "r"
    assert relkind(conn, "convoy.events_old") == "p"  # kept for the downgrade
    assert "events" not in managed(conn)
    assert conn.execute("SELECT count(*) FROM convoy.events").fetchone() == (
        before + writer.written,
    )

    with Writer(dsn) as writer:
        time.sleep(0.1)
        alembic(dsn, where, "downgrade", "0003")
        time.sleep(0.1)
    assert writer.errors == []
    assert relkind(conn, "convoy.events") == "p"  # partitioned again, every row in it
    assert "events" in managed(conn)
    assert relkind(conn, "convoy.events_partman_new") is None
    assert relkind(conn, "convoy.events_old") is None
    (total,) = conn.execute("SELECT count(*) FROM convoy.events").fetchone() or (0,)
    assert total > before
    assert conn.execute("SELECT count(*) FROM partman_meta.conversions").fetchone() == (0,)
    triggers = conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'partman_convert%'"
    ).fetchone()
    assert triggers == (0,)


def test_unpartition_table_inside_the_migrations_transaction_is_refused(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    inside = 'op.unpartition_table("events", schema="convoy")\n'
    where = project(tmp_path, (FILL_EVENTS, EMPTY_EVENTS), (inside, "pass"))
    alembic(dsn, where, "upgrade", "0002")
    maintain(dsn)
    alembic(dsn, where, "upgrade", "0003")

    out = alembic(dsn, where, "upgrade", "head", code=1)

    assert "op.unpartition_table commits its steps on connections of its own" in out
    assert relkind(conn, "convoy.events") == "p"
    assert relkind(conn, "convoy.events_partman_new") is None
