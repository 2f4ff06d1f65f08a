"""Indexes declared in partman.toml ([[table.index]]): `partman plan` shows what is missing of
them, `partman apply` builds it after its pass without blocking writes, `partman check` puts an
index that cannot be built at its key and line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_cli import as_json, ok, run, write

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]

CONFIG = """\
[[table]]
name = "events"
tenant_id_column = "tenant_id"
partition_by = "at"
partition_count = 3
tenants = ["acme", "globex"]

[[table.index]]
columns = ["tenant_id", "at", "id"]
name = "events_lookup"
"""


def create(conn: Conn) -> None:
    conn.execute(
        "CREATE TABLE events (id bigint NOT NULL, tenant_id text NOT NULL, "
        "at timestamptz NOT NULL) PARTITION BY RANGE (tenant_id, at)"
    )


def valid(conn: Conn, name: str) -> Any:
    row = conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)
    ).fetchone()
    return None if row is None else row[0]


def test_apply_builds_a_declared_index_on_every_partition_and_plan_shows_it(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    create(conn)
    write(tmp_path, CONFIG)
    shown = ok(run(tmp_path, "plan", dsn=dsn)).stdout
    assert re.search(
        r"\+ index events_lookup on public\.events \(tenant_id, at, id\): create", shown
    )
    planned = as_json(run(tmp_path, "plan", "--json", dsn=dsn))
    [index] = planned["indexes"]
    assert index["index"] == "public.events_lookup" and index["existed"] is False

    applied = ok(run(tmp_path, "apply", "--yes", dsn=dsn)).stdout
    assert "index events_lookup on public.events (tenant_id, at, id): built on 8" in applied
    assert valid(conn, "public.events_lookup") is True
    attached = conn.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.events_lookup'::regclass"
    ).fetchone()
    assert attached == (8,)  # 2 tenants x (today + 3 ahead)

    again = as_json(run(tmp_path, "plan", "--json", dsn=dsn))
    assert again["indexes"][0]["existed"] is True and again["indexes"][0]["steps"] == []
    assert "is valid on every partition" in ok(run(tmp_path, "plan", dsn=dsn)).stdout
    report = as_json(run(tmp_path, "apply", "--json", dsn=dsn))
    assert report["indexes"][0]["valid"] is True and report["indexes"][0]["counts"]["built"] == 0


def test_an_index_that_cannot_be_built_is_a_problem_at_its_key_and_nothing_runs(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    create(conn)
    text = CONFIG + '\n[[table.index]]\ncolumns = ["id"]\nunique = true\n'
    write(tmp_path, text)
    line = text.splitlines().index('columns = ["id"]')  # 1-based: the [[table.index]] line
    checked = as_json(run(tmp_path, "check", "--json", dsn=dsn), 1)
    [problem] = checked["problems"]
    assert problem["key"] == "table[0].index[1]" and problem["line"] == line
    assert "partition key column 'tenant_id'" in problem["message"]
    refused = run(tmp_path, "apply", "--yes", dsn=dsn)
    assert refused.returncode == 2
    assert f"partman.toml:{line}: table[0].index[1]:" in refused.stderr
    assert conn.execute("SELECT count(*) FROM pg_inherits").fetchone() == (0,)  # nothing ran
