"""parse_range_bound on the exact text `pg_get_expr(relpartbound, oid)` prints.

The examples below are copied from PostgreSQL 18 and 15 (TimeZone UTC, DateStyle ISO,
standard_conforming_strings on: the session the catalog query sets up).
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.model.bounds import (
    DEFAULT_BOUND,
    BoundSyntaxError,
    RangeBound,
    Special,
    _careful_lists,
    _fast_lists,
    parse_range_bound,
)
from partman.model.columns import ColumnKind

TEXT, INT, UUID = ColumnKind.TEXT, ColumnKind.INTEGER, ColumnKind.UUID
TSTZ, TS, DATE = ColumnKind.TIMESTAMPTZ, ColumnKind.TIMESTAMP, ColumnKind.DATE
UTC = dt.UTC
U = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")

FAST = settings(max_examples=200, deadline=None)


def pg_literal(value: str) -> str:
    """How ruleutils quotes a text constant with standard_conforming_strings on."""
    return "'" + value.replace("'", "''") + "'"


def pg_timestamp(value: dt.datetime) -> str:
    """timestamp/timestamptz output under DateStyle ISO and TimeZone UTC."""
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text if value.tzinfo is None else text + "+00"


def range_text(lower: list[str], upper: list[str]) -> str:
    return f"FOR VALUES FROM ({', '.join(lower)}) TO ({', '.join(upper)})"


@pytest.mark.parametrize(
    ("text", "kinds", "expected"),
    [
        (
            "FOR VALUES FROM ('it''s a\\b', '2023-12-31 23:00:00.5+00') "
            "TO ('it''s a\\b', '2024-01-02 00:00:00+00')",
            [TEXT, TSTZ],
            RangeBound(
                ("it's a\\b", dt.datetime(2023, 12, 31, 23, 0, 0, 500000, UTC)),
                ("it's a\\b", dt.datetime(2024, 1, 2, tzinfo=UTC)),
            ),
        ),
        (
            "FOR VALUES FROM ('-5', '2024-01-01') TO ('-5', 'infinity')",
            [INT, DATE],
            RangeBound((-5, dt.date(2024, 1, 1)), (-5, Special.UNREADABLE)),
        ),
        (
            "FOR VALUES FROM (5, '2024-01-01') TO (5, '2024-02-01')",
            [INT, DATE],
            RangeBound((5, dt.date(2024, 1, 1)), (5, dt.date(2024, 2, 1))),
        ),
        (
            "FOR VALUES FROM (5, '2024-01-01 00:00:00+00') TO (5, '2024-02-01 00:00:00+00')",
            [INT, TSTZ],
            RangeBound(
                (5, dt.datetime(2024, 1, 1, tzinfo=UTC)), (5, dt.datetime(2024, 2, 1, tzinfo=UTC))
            ),
        ),
        (
            "FOR VALUES FROM ('x', MINVALUE) TO ('y', MAXVALUE)",
            [TEXT, TSTZ],
            RangeBound(("x", Special.MINVALUE), ("y", Special.MAXVALUE)),
        ),
        (
            "FOR VALUES FROM (6, MINVALUE) TO (7, MAXVALUE)",
            [INT, DATE],
            RangeBound((6, Special.MINVALUE), (7, Special.MAXVALUE)),
        ),
        (
            "FOR VALUES FROM (MINVALUE, MINVALUE) TO (MAXVALUE, MAXVALUE)",
            [TEXT, TSTZ],
            RangeBound((Special.MINVALUE,) * 2, (Special.MAXVALUE,) * 2),
        ),
        (
            "FOR VALUES FROM ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
            "'2024-01-01 00:00:00.000001') TO ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
            "'2024-01-02 00:00:00')",
            [UUID, TS],
            RangeBound(
                (U, dt.datetime(2024, 1, 1, 0, 0, 0, 1)), (U, dt.datetime(2024, 1, 2, 0, 0))
            ),
        ),
        (
            "FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')",
            [TSTZ],
            RangeBound(
                (dt.datetime(2024, 1, 1, tzinfo=UTC),), (dt.datetime(2024, 2, 1, tzinfo=UTC),)
            ),
        ),
        (
            "FOR VALUES FROM ('abc  ', '2024-01-01 00:00:00') TO ('abc  ', '2024-01-02 00:00:00')",
            [TEXT, TS],
            RangeBound(
                ("abc  ", dt.datetime(2024, 1, 1)), ("abc  ", dt.datetime(2024, 1, 2))
            ),  # char(5) as printed: padded (catalog.py strips it for bpchar key columns)
        ),
        (
            # quoted MINVALUE is a tenant called MINVALUE, not the unbounded end
            "FOR VALUES FROM ('MINVALUE', '2024-01-01') TO ('MAXVALUE', '2024-01-02')",
            [TEXT, DATE],
            RangeBound(("MINVALUE", dt.date(2024, 1, 1)), ("MAXVALUE", dt.date(2024, 1, 2))),
        ),
        (
            "FOR VALUES FROM ('', '2024-01-01') TO ('''', '2024-01-02')",
            [TEXT, DATE],
            RangeBound(("", dt.date(2024, 1, 1)), ("'", dt.date(2024, 1, 2))),
        ),
    ],
    ids=[
        "text-quote-backslash-fraction",
        "negative-int-quoted-infinity",
        "int-bare-date",
        "int-bare-timestamptz",
        "minvalue-maxvalue",
        "int-minvalue-maxvalue",
        "all-unbounded",
        "uuid-timestamp",
        "time-only",
        "bpchar-padding",
        "quoted-minvalue-is-text",
        "empty-and-lone-quote",
    ],
)
def test_parses_the_exact_text_postgresql_prints(
    text: str, kinds: list[ColumnKind], expected: RangeBound
) -> None:
    bound = parse_range_bound(text, kinds)
    assert bound == expected
    assert not bound.is_default
    for value, kind in zip(bound.lower + bound.upper, kinds + kinds, strict=True):
        if kind is TSTZ and isinstance(value, dt.datetime):
            assert value.utcoffset() == dt.timedelta(0)
        if kind is TS and isinstance(value, dt.datetime):
            assert value.tzinfo is None


@pytest.mark.parametrize("text", ["DEFAULT", " DEFAULT", "DEFAULT\n"])
def test_default_is_the_default_bound(text: str) -> None:
    bound = parse_range_bound(text, [TEXT, TSTZ])
    assert bound == DEFAULT_BOUND
    assert bound.is_default
    assert bound.lower == bound.upper == ()


@pytest.mark.parametrize(
    ("literal", "kind"),
    [
        ("'infinity'", TSTZ),
        ("'-infinity'", TSTZ),
        ("'infinity'", TS),
        ("'-infinity'", DATE),
        ("'0044-03-15 00:00:00+00 BC'", TSTZ),
        ("'0044-03-15 BC'", DATE),
        ("'10000-01-01 00:00:00'", TS),
        ("'294276-12-31 23:59:59.999999+00'", TSTZ),
        ("'2024-01-01 00:00:00+00'", TS),  # a zone on a timestamp without time zone
        ("'2024-01-01 00:00:00'", TSTZ),  # no zone on a timestamptz
        ("'0001-01-01 00:00:00+05'", TSTZ),  # before year 1 in UTC
        ("'9999-12-31 23:00:00-05'", TSTZ),  # after 9999 in UTC
        ("'not-a-uuid'", UUID),
        ("'12.5'", INT),
    ],
)
def test_values_python_cannot_hold_are_unreadable_not_errors(
    literal: str, kind: ColumnKind
) -> None:
    bound = parse_range_bound(range_text(["'t'", literal], ["'t'", literal]), [TEXT, kind])
    assert bound.lower == ("t", Special.UNREADABLE)
    assert bound.upper == ("t", Special.UNREADABLE)


TRICKY_TENANTS = [
    "', '",
    "') TO ('",
    "a', '2024-01-01') TO ('b",
    "'",
    "''",
    "'''",
    "it's",
    ",",
    ", ",
    "(",
    ")",
    "()",
    "a,b",
    "a), (b",
    "MINVALUE",
    "DEFAULT",
    " leading and trailing ",
    "back\\slash\\",
    "\\'",
    "E'x'",
    "tab\there\nnewline\r",
    "日本語テナント",
    "emoji 🎉👩‍👩‍👧",
    "ümlaut-ß",
    "\u200b zero width",
    "FOR VALUES FROM ('x') TO ('y')",
]


@pytest.mark.parametrize("tenant", TRICKY_TENANTS)
def test_tenant_strings_that_look_like_bound_syntax_parse_back_exactly(tenant: str) -> None:
    lo = dt.datetime(2024, 1, 1, tzinfo=UTC)
    hi = dt.datetime(2024, 1, 2, tzinfo=UTC)
    text = range_text(
        [pg_literal(tenant), pg_literal(pg_timestamp(lo))],
        [pg_literal(tenant), pg_literal(pg_timestamp(hi))],
    )
    assert parse_range_bound(text, [TEXT, TSTZ]) == RangeBound((tenant, lo), (tenant, hi))


tenant_texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)
instants = st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30), timezones=st.just(UTC))


@FAST
@given(tenant_texts, tenant_texts, instants, instants)
def test_any_text_tenants_and_instants_parse_back_exactly(
    t1: str, t2: str, a: dt.datetime, b: dt.datetime
) -> None:
    text = range_text(
        [pg_literal(t1), pg_literal(pg_timestamp(a))],
        [pg_literal(t2), pg_literal(pg_timestamp(b))],
    )
    bound = parse_range_bound(text, [TEXT, TSTZ])
    assert bound == RangeBound((t1, a), (t2, b))


@FAST
@given(
    st.integers(-(2**63), 2**63 - 1),
    st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    st.dates(),
)
def test_integer_tenants_parse_quoted_when_negative_and_bare_otherwise(
    tenant: int, at: dt.datetime, day: dt.date
) -> None:
    shown = pg_literal(str(tenant)) if tenant < 0 else str(tenant)
    text = range_text([shown, pg_literal(pg_timestamp(at))], [shown, "MAXVALUE"])
    assert parse_range_bound(text, [INT, TS]) == RangeBound(
        (tenant, at), (tenant, Special.MAXVALUE)
    )
    date_text = range_text([shown, pg_literal(day.isoformat())], [shown, "MAXVALUE"])
    bound = parse_range_bound(date_text, [INT, DATE])
    assert bound == RangeBound((tenant, day), (tenant, Special.MAXVALUE))


@FAST
@given(st.uuids(), instants)
def test_uuid_tenants_parse_back_exactly(tenant: uuid.UUID, at: dt.datetime) -> None:
    shown = pg_literal(str(tenant))
    text = range_text([shown, pg_literal(pg_timestamp(at))], [shown, "MAXVALUE"])
    assert parse_range_bound(text, [UUID, TSTZ]) == RangeBound(
        (tenant, at), (tenant, Special.MAXVALUE)
    )


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("", [TSTZ]),
        ("FOR VALUES IN ('a', 'b')", [TEXT]),
        ("FOR VALUES WITH (modulus 4, remainder 0)", [TEXT]),
        ("FOR VALUES FROM ('a')", [TEXT]),
        ("FOR VALUES FROM ('a') TO", [TEXT]),
        ("FOR VALUES FROM ('a') TO ('b'", [TEXT]),
        ("FOR VALUES FROM ('a' TO ('b')", [TEXT]),
        ("FOR VALUES FROM 'a' TO 'b'", [TEXT]),
        ("FOR VALUES FROM ('a) TO ('b')", [TEXT]),
        ("FOR VALUES FROM ('a''') TO ('b''", [TEXT]),
        ("FOR VALUES FROM () TO ()", [TEXT]),
        ("FOR VALUES FROM (, ) TO (, )", [TEXT, TSTZ]),
        ("FOR VALUES FROM ('a',) TO ('b',)", [TEXT]),
        ("FOR VALUES FROM ('a','x') TO ('b','y')", [TEXT, TEXT]),
        ("FOR VALUES FROM ('a') TO ('b') AND MORE", [TEXT]),
        ("FOR VALUES FROM ('a')TO ('b')", [TEXT]),
        ("FOR VALUES FROM ('a') TO ('b')('c')", [TEXT]),
        ("FOR VALUES FROM ('a'x) TO ('b')", [TEXT]),
        ("FOR VALUES FROM ('a', 'b') TO ('c', 'd')", [TEXT]),  # more values than key columns
        ("FOR VALUES FROM ('a') TO ('b')", [TEXT, TSTZ]),  # fewer
        ("FOR VALUES FROM ('a', 'b') TO ('c')", [TEXT, TEXT]),
        ("FOR VALUES FROM (E'a\\\\b') TO (E'c')", [TEXT]),  # standard_conforming_strings off
        ("FOR VALUES FROM ('a'::text) TO ('b'::text)", [TEXT]),
        ("FOR VALUES FROM (a b) TO (c)", [TEXT]),
        ("DEFAULT VALUES", [TEXT]),
        ("for values from ('a') to ('b')", [TEXT]),
    ],
)
def test_malformed_bounds_raise_bound_syntax_error(text: str, kinds: list[ColumnKind]) -> None:
    with pytest.raises(BoundSyntaxError):
        parse_range_bound(text, kinds)


@FAST
@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_or_raises_bound_syntax_error(text: str) -> None:
    try:
        bound = parse_range_bound(text, [TEXT, TSTZ])
    except BoundSyntaxError:
        return
    assert bound.is_default or (len(bound.lower), len(bound.upper)) == (2, 2)


@FAST
@given(tenant_texts, instants, st.integers(0, 40))
def test_every_truncation_of_a_bound_raises_bound_syntax_error(
    tenant: str, at: dt.datetime, cut: int
) -> None:
    text = range_text(
        [pg_literal(tenant), pg_literal(pg_timestamp(at))],
        [pg_literal(tenant), "MAXVALUE"],
    )
    with pytest.raises(BoundSyntaxError):
        parse_range_bound(text[: len(text) - 1 - cut], [TEXT, TSTZ])


def _careful_or_error(text: str) -> object:
    try:
        return _careful_lists(text)
    except BoundSyntaxError:
        return BoundSyntaxError


bound_pieces = st.sampled_from(
    ["FOR VALUES FROM ", " TO ", "(", ")", ", ", ",", "'", "''", "MINVALUE", "x", "1", " "]
)


@FAST
@given(
    st.one_of(
        st.lists(st.one_of(bound_pieces, tenant_texts.map(pg_literal)), max_size=12).map("".join),
        st.builds(
            lambda lo, hi: range_text(lo, hi),
            st.lists(st.one_of(tenant_texts.map(pg_literal), st.sampled_from(["MAXVALUE", "7"]))),
            st.lists(st.one_of(tenant_texts.map(pg_literal), st.sampled_from(["MINVALUE", "-1"]))),
        ),
    )
)
def test_the_fast_path_reads_exactly_what_the_careful_one_does(text: str) -> None:
    """The regular expression is a shortcut, never a second grammar: whatever it accepts, the
    character-at-a-time parser reads the same way."""
    fast = _fast_lists(text)
    if fast is not None:
        assert _careful_or_error(text) == fast
