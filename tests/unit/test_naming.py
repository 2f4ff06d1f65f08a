"""Partition names: at most 63 bytes, readable when they can be, never shared by two tenants."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.model.columns import TenantValue
from partman.model.naming import (
    MAX_IDENTIFIER_BYTES,
    partition_name,
    period_label,
    short_hash,
    tenant_slug,
)

FAST = settings(max_examples=150, deadline=None)

no_nul = st.characters(codec="utf-8", exclude_characters="\x00")  # what PostgreSQL text holds
parents = st.text(no_nul, min_size=1, max_size=63).filter(lambda s: len(s.encode()) <= 63)
text_tenants = st.text(no_nul, min_size=1, max_size=200)
int_tenants = st.integers(-(2**63), 2**63 - 1)
tenants: st.SearchStrategy[TenantValue] = st.one_of(text_tenants, int_tenants, st.uuids())
datetimes = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
labels = st.one_of(
    st.builds(period_label, datetimes, sub_day=st.booleans()),
    st.builds(period_label, st.dates(), sub_day=st.booleans()),
    # the planner's form when an odd partition already holds the plain name
    st.builds(
        lambda d, h: f"{period_label(d, sub_day=True)}_{h}",
        datetimes,
        st.text("0123456789abcdef", min_size=8, max_size=8),
    ),
)
LABEL = "p20240131"


def _byte_len(name: str) -> int:
    return len(name.encode())


def _variants(text: str) -> list[str]:
    """Ids that a careless slug would confuse with `text`."""
    out = [
        text.upper(),
        text.lower(),
        text.swapcase(),
        text.title(),
        text.replace(" ", "-"),
        text.replace(" ", "_"),
        text.replace("-", " "),
        text.replace("_", "-"),
        f"_{text}_",
        f"{text} ",
        tenant_slug(text),  # an id literally equal to another's slug (+ hash)
        re.sub(r"_[0-9a-f]{8}$", "", tenant_slug(text)),  # ... or to its slug without the hash
        short_hash(text),  # ... or to the bare hash of an id that has no slug
        text + "x",
        text[:-1],
    ]
    return [v for v in out if v and v != text and "\x00" not in v]


@st.composite
def confusable_pairs(draw: st.DrawFn) -> tuple[str, str]:
    base = draw(
        st.one_of(
            text_tenants,
            st.from_regex(r"[A-Za-z0-9 _\-.]{1,30}", fullmatch=True),
            st.from_regex(r"[a-z0-9]{1,12}(_[0-9a-f]{8})?", fullmatch=True),
        )
    )
    variants = _variants(base)
    if not variants:
        variants = [base + "!"]
    return base, draw(st.sampled_from(variants))


@st.composite
def distinct_pairs(draw: st.DrawFn) -> tuple[TenantValue, TenantValue]:
    """Two different tenants of one parent (a parent's tenants all have one type)."""
    kind = draw(st.sampled_from(["text", "confusable", "shared-prefix", "int", "uuid"]))
    a: TenantValue
    b: TenantValue
    if kind == "text":
        a, b = draw(text_tenants), draw(text_tenants)
    elif kind == "confusable":
        a, b = draw(confusable_pairs())
    elif kind == "shared-prefix":
        prefix = draw(st.text(no_nul, min_size=100, max_size=100))
        a = prefix + draw(st.text(no_nul, max_size=100))
        b = prefix + draw(st.text(no_nul, max_size=100))
    elif kind == "int":
        a = draw(int_tenants)
        b = draw(st.one_of(st.just(-a), int_tenants))
    else:
        a, b = draw(st.uuids()), draw(st.uuids())
    if a == b:
        b = f"{a}-other" if isinstance(a, str) else (a + 1 if isinstance(a, int) else uuid.uuid4())
        if isinstance(b, int) and b >= 2**63:
            b = a - 1
    return a, b


@FAST
@given(parents, tenants, labels)
def test_names_fit_in_63_utf8_bytes(parent: str, tenant: TenantValue, label: str) -> None:
    name = partition_name(parent, tenant, label)
    assert 0 < _byte_len(name) <= MAX_IDENTIFIER_BYTES
    assert "\x00" not in name
    assert name == partition_name(parent, tenant, label)  # deterministic across processes


@FAST
@given(parents, labels)
def test_untenanted_names_fit_in_63_utf8_bytes(parent: str, label: str) -> None:
    name = partition_name(parent, None, label)
    assert _byte_len(name) <= MAX_IDENTIFIER_BYTES
    if _byte_len(f"{parent}_{label}") <= MAX_IDENTIFIER_BYTES:
        assert name == f"{parent}_{label}"


@FAST
@given(parents, tenants, labels)
def test_a_cut_name_keeps_the_label_whole_and_starts_with_the_parent(
    parent: str, tenant: TenantValue, label: str
) -> None:
    name = partition_name(parent, tenant, label)
    assert name.endswith(f"_{label}")
    # whatever is cut, it is cut from the tenant first, then from the parent
    room = MAX_IDENTIFIER_BYTES - _byte_len(label) - 10  # "_<8 hex>_"
    if _byte_len(parent) <= room:
        assert name.startswith(parent.rstrip("_"))


@settings(max_examples=400, deadline=None)
@given(parents, labels, distinct_pairs())
def test_names_never_collide_for_distinct_tenants(
    parent: str, label: str, pair: tuple[TenantValue, TenantValue]
) -> None:
    a, b = pair
    assert a != b
    assert partition_name(parent, a, label) != partition_name(parent, b, label)


@pytest.mark.parametrize(
    "group",
    [
        ["Acme", "acme", "ACME", "aCME"],
        ["a b", "a-b", "a_b", "a.b", "a  b", "a__b", "a b ", " a b", "_a_b_"],
        ["Acme", tenant_slug("Acme")],
        ["a b", tenant_slug("a b"), tenant_slug(tenant_slug("a b"))],
        ["日本", short_hash("日本"), "東京", short_hash("東京"), "!!!", short_hash("!!!")],
        ["x" * 100 + "1", "x" * 100 + "2", "x" * 100 + "10", "x" * 100, "X" * 100 + "1"],
        [-5, 5, 0, -1, 1, 55, -55],
        [2**63 - 1, -(2**63), 2**62, 12345678, 87654321],
        [uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)],
    ],
    ids=[
        "case-only",
        "separators",
        "slug-plus-hash",
        "slug-of-slug",
        "bare-hash-of-slugless-id",
        "shared-100-char-prefix",
        "signs",
        "int64-extremes",
        "uuids",
    ],
)
@pytest.mark.parametrize("parent", ["events", "e" * 40, "ö" * 31])
@pytest.mark.parametrize("label", ["p20240131", "p20240131_0600", "p20240131_060030_1a2b3c4d"])
def test_names_never_collide_for_confusable_tenants(
    group: list[TenantValue], parent: str, label: str
) -> None:
    names = [partition_name(parent, t, label) for t in group]
    assert len(set(names)) == len(group), names
    assert all(_byte_len(n) <= MAX_IDENTIFIER_BYTES for n in names)


def test_an_id_equal_to_the_bare_hash_of_a_slugless_id_gets_its_own_name() -> None:
    # "日本" has no ASCII slug, so its slug is its hash alone; the id spelled like that hash
    # must not be taken as a lossless slug, or both tenants would share every partition.
    assert tenant_slug("日本") == short_hash("日本")
    assert partition_name("t", "日本", LABEL) != partition_name("t", short_hash("日本"), LABEL)


plain_ids = st.from_regex(r"[a-z0-9]{1,8}(_[a-z0-9]{1,7}){0,2}", fullmatch=True).filter(
    lambda s: not re.search(r"(^|_)[0-9a-f]{8}$", s)
)


@FAST
@given(st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True), plain_ids, labels)
def test_plain_lowercase_ascii_ids_appear_verbatim_in_the_name(
    parent: str, tenant: str, label: str
) -> None:
    assert tenant_slug(tenant) == tenant
    name = partition_name(parent, tenant, label)  # at most 12 + 1 + 24 + 1 + 25 = 63 bytes
    assert name == f"{parent}_{tenant}_{label}"


@FAST
@given(int_tenants)
def test_integer_ids_are_readable_without_a_hash(tenant: int) -> None:
    expected = str(tenant) if tenant >= 0 else f"m{-tenant}"
    assert tenant_slug(tenant) == expected
    assert partition_name("t", tenant, LABEL) == f"t_{expected}_{LABEL}"


@FAST
@given(st.uuids())
def test_uuid_ids_appear_as_their_hex_digits(tenant: uuid.UUID) -> None:
    assert partition_name("t", tenant, LABEL) == f"t_{tenant.hex}_{LABEL}"


@pytest.mark.parametrize(
    ("tenant", "slug_prefix"),
    [("Acme", "acme_"), ("a b", "a_b_"), ("Café-Ü", "caf_"), ("x_deadbeef", "x_deadbeef_")],
)
def test_lossy_slugs_stay_readable_and_carry_a_hash(tenant: str, slug_prefix: str) -> None:
    slug = tenant_slug(tenant)
    assert slug.startswith(slug_prefix)
    assert re.fullmatch(r".*_[0-9a-f]{8}", slug)
    assert slug.endswith(short_hash(tenant))


@pytest.mark.parametrize(
    ("lower", "sub_day", "label"),
    [
        (dt.date(2024, 1, 31), False, "p20240131"),
        (dt.date(2024, 1, 31), True, "p20240131"),
        (dt.datetime(2024, 1, 31, 6, 0), False, "p20240131"),
        (dt.datetime(2024, 1, 31, 6, 0), True, "p20240131_0600"),
        (dt.datetime(2024, 1, 31, 23, 45), True, "p20240131_2345"),
        (dt.datetime(2024, 1, 31, 6, 0, 30), True, "p20240131_060030"),
        (dt.datetime(2024, 1, 31, 6, 0, 0, 500000), True, "p20240131_060000"),
        (dt.datetime(2024, 1, 31, 6, 0, 30, tzinfo=dt.UTC), True, "p20240131_060030"),
        (dt.date(999, 1, 1), False, "p09990101"),
        (dt.datetime(5, 3, 4, 1, 2), True, "p00050304_0102"),
        (dt.date(9999, 12, 31), False, "p99991231"),
    ],
)
def test_period_label_formats(lower: dt.datetime | dt.date, sub_day: bool, label: str) -> None:
    assert period_label(lower, sub_day=sub_day) == label


@FAST
@given(datetimes, st.booleans())
def test_period_labels_read_back_as_their_wall_time(lower: dt.datetime, sub_day: bool) -> None:
    label = period_label(lower, sub_day=sub_day)
    m = re.fullmatch(r"p(\d{4})(\d\d)(\d\d)(?:_(\d\d)(\d\d)(\d\d)?)?", label)
    assert m is not None, label
    assert dt.date(int(m[1]), int(m[2]), int(m[3])) == lower.date()
    if not sub_day:
        assert m[4] is None
        return
    assert (int(m[4]), int(m[5])) == (lower.hour, lower.minute)
    assert (m[6] is not None) == bool(lower.second or lower.microsecond)
    if m[6] is not None:
        assert int(m[6]) == lower.second
