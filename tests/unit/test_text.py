"""Texts partman shows: a partition list in key order whatever the names' digit counts, and
SQL a message suggests running, with the names quoted where they must be."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from partman.model.text import natural_key, sql_name


def test_an_id_tables_partitions_sort_by_their_numbers_not_as_text() -> None:
    names = ["orders_p1000000", "orders_p150000", "orders_p0", "orders_p50000", "orders_default"]
    assert sorted(names, key=natural_key) == [
        "orders_default",
        "orders_p0",
        "orders_p50000",
        "orders_p150000",
        "orders_p1000000",
    ]


def test_date_named_partitions_keep_their_calendar_order() -> None:
    names = ["events_p20260110", "events_p20251231", "events_p20260101"]
    assert sorted(names, key=natural_key) == sorted(names)


@given(st.lists(st.integers(min_value=0, max_value=10**12), unique=True))
def test_numbered_names_sort_as_their_numbers(numbers: list[int]) -> None:
    names = [f"t_p{n}" for n in numbers]
    assert [int(n[3:]) for n in sorted(names, key=natural_key)] == sorted(numbers)


def test_a_suggested_statement_quotes_only_the_names_that_need_it() -> None:
    assert sql_name("public", "events") == "public.events"
    assert sql_name("Sales", 'my "odd" table', "été") == '"Sales"."my ""odd"" table"."été"'
    assert sql_name("1st") == '"1st"'
