"""decide.expiry.check_verdict: the last word before anything irreversible.

An expired partition is retired only if it is still the partition the plan saw (same name,
schema and bound, still marked as partman's) and holds no row at or after the retention
cutoff; otherwise it is left alone, and `Skipped.reason` says which of the two it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from builders import ADOPTED, CREATED, utc
from hypothesis import given
from hypothesis import strategies as st

from partman.decide.expiry import check_verdict
from partman.model.operations import RetirePartition
from partman.model.report import Skipped, SkipReason

BOUND = "FOR VALUES FROM ('acme', '2024-01-01 00:00:00+00') TO ('acme', '2024-01-02 00:00:00+00')"
OP = RetirePartition(
    parent_schema="public",
    parent_name="events",
    tenant="acme",
    partition_schema="public",
    partition_name="events_acme_p20240101",
    lower=utc(2024, 1, 1),
    upper=utc(2024, 1, 2),
    reason="retention 30 days",
    bound_text=BOUND,
    cutoff=utc(2024, 1, 5),
    time_column="at",
)
GUARD = ("events_acme_p20240101", "public", BOUND, CREATED)
OLDEST, NEWEST = utc(2024, 1, 1, 3), utc(2024, 1, 1, 22)


def skipped(verdict: Skipped | str) -> Skipped:
    assert isinstance(verdict, Skipped), verdict
    return verdict


def test_an_unchanged_partition_with_no_row_in_the_window_says_what_it_holds() -> None:
    assert check_verdict(OP, GUARD, OLDEST, NEWEST, 0) == (
        "rows from 2024-01-01 03:00:00+00:00 to 2024-01-01 22:00:00+00:00"
    )


def test_an_unchanged_empty_partition_is_empty() -> None:
    assert check_verdict(OP, GUARD, None, None, 0) == "empty"


def test_a_partition_adopted_by_partman_is_still_partmans() -> None:
    assert check_verdict(OP, (*GUARD[:3], ADOPTED), None, None, 0) == "empty"


def test_a_partition_gone_from_the_catalog_changed_since_the_plan() -> None:
    verdict = skipped(check_verdict(OP, None, None, None, 0))
    assert verdict.reason is SkipReason.CHANGED
    assert str(verdict) == (
        "public.events_acme_p20240101 changed since the plan was made (renamed, re-bounded, "
        "dropped or no longer marked as partman's); left alone"
    )


def test_a_renamed_moved_rebounded_or_unmarked_partition_changed_since_the_plan() -> None:
    name, schema, bound, comment = GUARD
    for guard in [
        ("events_acme_renamed", schema, bound, comment),
        (name, "archive", bound, comment),
        (name, schema, BOUND.replace("2024-01-02", "2024-01-03"), comment),
        (name, schema, bound, None),
        (name, schema, bound, "kept by hand: do not drop"),
    ]:
        assert skipped(check_verdict(OP, guard, OLDEST, NEWEST, 0)).reason is SkipReason.CHANGED


def test_rows_inside_the_retention_window_keep_the_partition_and_say_how_many() -> None:
    verdict = skipped(check_verdict(OP, GUARD, OLDEST, utc(2024, 1, 6), 3))
    assert verdict.reason is SkipReason.ROWS_IN_WINDOW
    assert str(verdict) == (
        "public.events_acme_p20240101 holds 3 row(s) at or after the retention cutoff "
        "2024-01-05 00:00:00+00:00 (newest 2024-01-06 00:00:00+00:00); left alone so no row "
        "inside the retention window is lost"
    )


def test_a_changed_partition_is_reported_as_changed_even_with_rows_in_the_window() -> None:
    verdict = skipped(check_verdict(OP, None, OLDEST, NEWEST, 5))
    assert verdict.reason is SkipReason.CHANGED


def test_a_guard_row_with_more_columns_is_read_by_its_first_four() -> None:
    """The batched check passes whole rows; only name, schema, bound and comment count."""
    assert check_verdict(OP, [*GUARD, "extra"], None, None, 0) == "empty"


GUARDS = st.one_of(
    st.just(GUARD),
    st.none(),
    st.tuples(
        st.sampled_from([GUARD[0], "events_acme_other"]),
        st.sampled_from([GUARD[1], "archive"]),
        st.sampled_from([GUARD[2], "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)"]),
        st.sampled_from([GUARD[3], ADOPTED, None, "a note"]),
    ),
)
TIMES = st.one_of(st.none(), st.datetimes(timezones=st.just(dt.UTC)))


@given(guard=GUARDS, oldest=TIMES, newest=TIMES, inside=st.integers(0, 10**6))
def test_skips_iff_the_partition_changed_or_holds_rows_in_the_window(
    guard: Any, oldest: Any, newest: Any, inside: int
) -> None:
    changed = guard is None or tuple(guard[:3]) != GUARD[:3] or guard[3] not in (CREATED, ADOPTED)
    verdict = check_verdict(OP, guard, oldest, newest, inside)
    assert isinstance(verdict, Skipped) == (changed or inside > 0)
    if isinstance(verdict, Skipped):
        expected = SkipReason.CHANGED if changed else SkipReason.ROWS_IN_WINDOW
        assert verdict.reason is expected
        assert OP.partition_qualified in str(verdict)
    else:
        assert verdict == ("empty" if newest is None else f"rows from {oldest} to {newest}")
