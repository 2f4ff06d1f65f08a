"""The `partman` command line on the new shapes: a partman.toml with integer ids (a TOML integer
interval), an epoch column, HASH leaves and a 30-second interval is checked at its keys, and
an id table's coverage is said in ids by `partitions` and `status`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_cli import as_json, ok, run, write

pytestmark = pytest.mark.one_server

Conn = psycopg.Connection[Any]

SHAPES = """\
[[table]]
name = "orders"
partition_by = "id"
partition_interval = 1000
partition_count = 2
retention_period = 5000

[[table]]
name = "hits"
partition_by = "at"
epoch = "milliseconds"
partition_interval = "1 day"
sub_partition_by = "device"
sub_partition_modulus = 4

[[table]]
name = "ticks"
partition_by = "at"
partition_interval = "30 seconds"
"""


def create(conn: Conn) -> None:
    conn.execute("CREATE TABLE orders (id bigint NOT NULL) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE hits (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    conn.execute("CREATE TABLE ticks (at timestamptz NOT NULL) PARTITION BY RANGE (at)")


def line_of(text: str, fragment: str, after: str = "") -> int:
    lines = text.splitlines()
    start = lines.index(after) if after else 0
    return next(i for i, t in enumerate(lines, 1) if i > start and t.startswith(fragment))


def test_check_puts_each_shape_problem_at_its_key_and_warns_of_exploding_counts(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    create(conn)
    write(tmp_path, SHAPES)
    report = as_json(run(tmp_path, "check", "--json", dsn=dsn), 1)
    hits = 'name = "hits"'
    problems = [(p["line"], p["key"]) for p in report["problems"]]
    assert problems == [(line_of(SHAPES, "sub_partition_by", hits), "table[1].sub_partition_by")]
    assert "has no column 'device'" in report["problems"][0]["message"]
    (warning,) = report["warnings"]
    assert warning["key"] == "table[2].partition_interval"
    assert "2,880" in warning["message"]  # partitions a day (decide/validate.many_partitions)
    assert [t["table"] for t in report["tables"]] == ["public.orders", "public.ticks"]

    fixed = SHAPES.replace('sub_partition_by = "device"', 'sub_partition_by = "at"')
    write(tmp_path, fixed)
    report = as_json(run(tmp_path, "check", "--json", dsn=dsn), 1)
    assert [p["key"] for p in report["problems"]] == ["table[1].sub_partition_by"]
    assert "already a key column" in report["problems"][0]["message"]

    epoch_on_time = SHAPES.replace('sub_partition_by = "device"\nsub_partition_modulus = 4\n', "")
    write(tmp_path, epoch_on_time)
    checked = ok(run(tmp_path, "check", dsn=dsn), 1)
    line = line_of(epoch_on_time, "epoch")
    assert (
        f"partman.toml:{line}: table[1].epoch: public.hits.at is timestamp with time zone; "
        "epoch 'milliseconds' is for integer columns (bigint)"
    ) in checked.stdout


def test_an_id_tables_coverage_is_said_in_ids(dsn: str, conn: Conn, tmp_path: Path) -> None:
    conn.execute("CREATE TABLE orders (id bigint NOT NULL) PARTITION BY RANGE (id)")
    write(tmp_path, SHAPES.split("\n\n")[0] + "\n")
    plan = ok(run(tmp_path, "plan", dsn=dsn))
    assert "1000-id partitions, 2 ahead, retention 5000 ids" in plan.stdout
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    shown = ok(run(tmp_path, "partitions", dsn=dsn)).stdout
    assert "3 partition(s), covered until 3000 (3000 ids ahead)" in shown
    assert "public.orders: 1000-id partitions, 0 tenant(s), least covered: 3000 ids ahead" in (
        ok(run(tmp_path, "status", dsn=dsn)).stdout
    )

    conn.execute("INSERT INTO orders SELECT generate_series(1, 2500)")
    planned = as_json(run(tmp_path, "plan", "--json", dsn=dsn))
    # premade ahead of the newest id (2500), as the pass will: [3000, 4000), [4000, 5000)
    assert [op["partition"] for op in planned["operations"]] == [
        "public.orders_p3000",
        "public.orders_p4000",
    ]
    status = run(tmp_path, "status", dsn=dsn)
    assert status.returncode == 1
    assert (
        "problem: public.orders: covered only until 3000 (less than one 1000-id period ahead)"
    ) in status.stderr
    report = as_json(run(tmp_path, "status", "--json", dsn=dsn), 1)
    assert [(c["covered_until"], c["runway_ids"]) for c in report["runway"]] == [("3000", 500)]


def test_an_id_tables_tenants_take_and_show_a_retention_in_ids(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE orders (shop text NOT NULL, id bigint NOT NULL) PARTITION BY RANGE (shop, id)"
    )
    write(tmp_path, SHAPES.split("\n\n")[0].replace('"id"', '"id"\ntenant_id_column = "shop"', 1))
    ok(run(tmp_path, "tenants", "add", "public.orders", "a", "--retention-period", "2000", dsn=dsn))
    changed = ok(
        run(tmp_path, "tenants", "set", "public.orders", "a", "--partition-count", "1", dsn=dsn)
    )
    assert "partition_count 2 -> 1" in changed.stdout
    changed = ok(
        run(
            tmp_path,
            "tenants",
            "set",
            "public.orders",
            "a",
            "--retention-period",
            "3000 ids",
            dsn=dsn,
        )
    )
    assert "retention 2000 ids -> 3000 ids" in changed.stdout
    listed = ok(run(tmp_path, "tenants", "list", dsn=dsn)).stdout
    assert re.search(r"public\.orders\s+a\s+3000 ids \(own\)\s+1 \(own\)", listed), listed


def test_a_list_parents_plan_shows_each_tenant_partition_once(
    dsn: str, conn: Conn, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE events (tenant_id text NOT NULL, at timestamptz NOT NULL) "
        "PARTITION BY LIST (tenant_id)"
    )
    conn.execute(
        "CREATE TABLE events_acme PARTITION OF events FOR VALUES IN ('acme') "
        "PARTITION BY RANGE (at)"
    )
    write(
        tmp_path,
        '[[table]]\nname = "events"\npartition_by = "at"\ntenant_id_column = "tenant_id"\n'
        'tenant_partitioning = "list"\npartition_count = 2\n\n'
        '[[table.tenant]]\nid = "acme"\n\n[[table.tenant]]\nid = "globex"\n',
    )
    shown = ok(run(tmp_path, "plan", dsn=dsn)).stdout
    headings = [line for line in shown.splitlines() if line.startswith("public.events_acme")]
    assert len(headings) == 1, shown
    assert "public.events_globex" in shown, shown  # the new tenant's partition, with periods
    ok(run(tmp_path, "apply", "--yes", dsn=dsn))
    assert "No changes" in ok(run(tmp_path, "plan", dsn=dsn)).stdout
