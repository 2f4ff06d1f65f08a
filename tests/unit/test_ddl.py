"""db/ddl.py: the statements the executor sends around an operation's DDL, rendered without a
server. Names that need quoting (quotes, upper case, non-ASCII) stay identifiers, values stay
literals, and the lock budget reads as PostgreSQL's '250ms'. The texts are pinned exactly: the
crash tests kill a pass at each of these round trips, so a statement changes only on purpose.
"""

from __future__ import annotations

import datetime as dt

import pytest

from partman.db import ddl
from partman.model.operations import CreatePartition, MoveRows, RetirePartition, render

UTC = dt.UTC
MS_250 = dt.timedelta(milliseconds=250)
MINUTE = dt.timedelta(minutes=1)
CUTOFF = dt.datetime(2026, 3, 2, tzinfo=UTC)


def retire(
    name: str = "Évents_p2026_03_01", *, oid: int = 4242, action: str = "drop"
) -> RetirePartition:
    return RetirePartition(
        parent_schema='Sales "EU"',
        parent_name="Évents",
        tenant=None,
        partition_schema='Sales "EU"',
        partition_name=name,
        lower=dt.datetime(2026, 3, 1, tzinfo=UTC),
        upper=CUTOFF,
        reason="retention 1 day",
        action=action,
        archive_schema="Archive" if action == "archive" else None,
        oid=oid,
        cutoff=CUTOFF,
        time_column='Created "At"',
    )


def moving() -> CreatePartition:
    return CreatePartition(
        parent_schema="Sales",
        parent_name="Évents",
        tenant="o'brien",
        partition_schema="Sales",
        partition_name="Évents_p2026_03_10",
        lower=dt.datetime(2026, 3, 10, tzinfo=UTC),
        upper=dt.datetime(2026, 3, 11, tzinfo=UTC),
        reason="premake",
        move=MoveRows("Sales", "Évents_default", ("Tenant", "At"), "Tenant", "At"),
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (MS_250, "'250ms'"),
        (dt.timedelta(seconds=60), "'60000ms'"),
        (dt.timedelta(microseconds=10), "'1ms'"),  # never 0: that would mean "no limit"
    ],
)
def test_a_duration_is_a_millisecond_literal(value: dt.timedelta, text: str) -> None:
    assert render(ddl.ms(value)) == text


def test_a_transaction_starts_under_the_lock_budget() -> None:
    assert render(ddl.begin(MS_250, MINUTE)) == (
        "BEGIN; SET LOCAL lock_timeout = '250ms'; SET LOCAL statement_timeout = '60000ms'"
    )


def test_a_session_step_sets_the_budget_and_gives_it_back_with_the_lock() -> None:
    key = ddl.parent_key("Sales.o'brien")
    assert render(ddl.session_budget(MS_250, MINUTE)) == (
        "SET lock_timeout = '250ms'; SET statement_timeout = '60000ms'"
    )
    assert render(ddl.script(ddl.release_session(key))) == (
        "RESET lock_timeout; RESET statement_timeout;\n"
        "SELECT pg_advisory_unlock(hashtextextended('partman:parent:Sales.o''brien', 0))"
    )
    assert render(ddl.script(ddl.release_session(key, unlock=False))) == (
        "RESET lock_timeout; RESET statement_timeout"
    )


def test_the_parents_advisory_lock_key_is_a_literal() -> None:
    assert render(ddl.parent_lock_sql("Sales.o'brien")) == (
        "SELECT pg_advisory_xact_lock(hashtextextended('partman:parent:Sales.o''brien', 0))"
    )


def test_the_look_ahead_names_the_parent_by_literals_and_the_budget_as_an_interval() -> None:
    text = render(
        ddl.lock_blockers_query(
            "Sales", "o'rders", exclusive=False, default_too=True, budget=MS_250
        )
    )
    assert "WHERE n.nspname = 'Sales' AND c.relname = 'o''rders')" in text
    assert (
        "SELECT p.oid, '{ShareUpdateExclusiveLock,ShareLock,ShareRowExclusiveLock,"
        "ExclusiveLock,AccessExclusiveLock}'::text[] AS modes FROM p"
    ) in text
    assert "WHERE p.partdefid <> 0 AND true)" in text
    assert "clock_timestamp() - a.xact_start > '250ms'::interval" in text
    exclusive = render(
        ddl.lock_blockers_query("Sales", "orders", exclusive=True, default_too=False, budget=MS_250)
    )
    assert "SELECT p.oid, '{AccessShareLock,RowShareLock,RowExclusiveLock," in exclusive
    assert "WHERE p.partdefid <> 0 AND false)" in exclusive


def test_the_guard_reads_a_partition_by_oid() -> None:
    assert render(ddl.guard_query(4242)) == (
        "SELECT c.relname::text, n.nspname::text, pg_get_expr(c.relpartbound, c.oid), "
        "obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 4242"
    )
    assert "FROM (VALUES (0, 11::oid), (1, 12::oid)) AS o (i, oid)" in render(
        ddl.guards_query([11, 12])
    )


def test_the_newest_row_is_read_with_quoted_identifiers_and_a_literal_cutoff() -> None:
    c, p = '"Created ""At"""', '"Sales ""EU"""."Évents_p2026_03_01"'
    expected = (
        "SELECT (SELECT %c%::text FROM %p% WHERE %c% IS NOT NULL ORDER BY %c% LIMIT 1), "
        "(SELECT %c%::text FROM %p% WHERE %c% IS NOT NULL ORDER BY %c% DESC LIMIT 1), "
        "(SELECT count(*) FROM %p% WHERE %c% >= '2026-03-02 00:00:00+00:00'::timestamptz)"
    )
    assert render(ddl.newest_row_query(retire())) == expected.replace("%c%", c).replace("%p%", p)
    batch = render(ddl.newest_rows_query([retire(), retire("Évents_p2026_03_02", oid=4243)]))
    assert batch.startswith("(SELECT 0, (SELECT ")
    assert f"{c}::text" in batch
    assert ") UNION ALL (SELECT 1, " in batch
    assert batch.endswith("'2026-03-02 00:00:00+00:00'::timestamptz)) ORDER BY 1")


def test_a_concurrent_detach_starts_with_a_try_lock_a_pending_probe_and_the_budget() -> None:
    op = retire()
    key = ddl.parent_key(op.parent_qualified)
    assert render(
        ddl.detach_start_query(key, op.partition_schema, op.partition_name, MS_250, MINUTE)
    ) == (
        "SELECT pg_try_advisory_lock(hashtextextended('partman:parent:Sales \"EU\".Évents', 0)), "
        "coalesce((SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON "
        "c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
        "n.nspname = 'Sales \"EU\"' AND c.relname = 'Évents_p2026_03_01'), false); "
        "SET lock_timeout = '250ms'; SET statement_timeout = '60000ms'"
    )
    assert render(ddl.try_lock_parent_query(key, "Sales", "o'rders")).endswith(
        "WHERE n.nspname = 'Sales' AND c.relname = 'o''rders' AND i.inhdetachpending)"
    )


def test_the_detached_probe_names_the_table_by_literals() -> None:
    assert render(ddl.detached_query("Sales", "o'ld")).endswith(
        "WHERE n.nspname = 'Sales' AND c.relname = 'o''ld'"
    )


def test_moving_rows_counts_and_locks_the_default_partition() -> None:
    op = moving()
    assert render(ddl.waiting_rows_query(op, 21)) == (
        'SELECT count(*) FROM (SELECT FROM "Sales"."Évents_default" WHERE "Tenant" = '
        "'o''brien' AND \"At\" >= '2026-03-10 00:00:00+00:00'::timestamptz AND \"At\" < "
        "'2026-03-11 00:00:00+00:00'::timestamptz LIMIT 21) AS x"
    )
    assert [render(s) for s in ddl.attach_locks(op)] == [
        'LOCK TABLE "Sales"."Évents" IN SHARE UPDATE EXCLUSIVE MODE',
        'LOCK TABLE "Sales"."Évents_default" IN ACCESS EXCLUSIVE MODE',
    ]


def test_a_staging_partition_says_so_in_its_comment_and_record() -> None:
    comment, record = (render(s) for s in ddl.created_records("Partman", moving(), "staging"))
    assert comment == (
        'COMMENT ON TABLE "Sales"."Évents_p2026_03_10" IS \'partman staging for '
        "Sales.Évents: rows are moving in from the default partition; attached when done'"
    )
    assert record.startswith('INSERT INTO "Partman".partitions (')
    assert "'o''brien', '2026-03-10T00:00:00+00:00'" in record
    assert "'created', NULL, 'staging')" in record


def test_a_retired_partition_is_forgotten_or_says_partman_let_it_go() -> None:
    on = dt.date(2026, 3, 10)
    (forget,) = (render(s) for s in ddl.retired_records("partman", retire(), on))
    assert forget == (
        'DELETE FROM "partman".partitions WHERE schema_name = \'Sales "EU"\' '
        "AND partition_name = 'Évents_p2026_03_01'"
    )
    comment, state = (
        render(s) for s in ddl.retired_records("partman", retire(action="archive"), on)
    )
    assert comment == (
        'COMMENT ON TABLE "Archive"."Évents_p2026_03_01" IS \'retired by partman retention '
        'from Sales "EU".Évents on 2026-03-10 (archive); no longer managed\''
    )
    assert "SET state = 'archived'" in state
    assert "schema_name = coalesce('Archive', schema_name)" in state


def test_one_drop_for_a_batch_and_one_round_trip_for_a_script() -> None:
    tables = [retire().partition, retire("Évents_p2026_03_02").partition]
    assert render(ddl.drop_tables(tables)) == (
        'DROP TABLE "Sales ""EU"""."Évents_p2026_03_01", "Sales ""EU"""."Évents_p2026_03_02"'
    )
    assert render(ddl.script([ddl.begin(MS_250, MINUTE), ddl.COMMIT])) == (
        "BEGIN; SET LOCAL lock_timeout = '250ms'; SET LOCAL statement_timeout = '60000ms';\nCOMMIT"
    )
