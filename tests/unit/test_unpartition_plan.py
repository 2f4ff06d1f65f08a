"""partman unpartition's pure part (model/unpartition.py): which way a conversion record goes,
the key the keyset copy walks (or the key to add), the plain twin's indexes, and the partition
trees it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partman.errors import CatalogError, NotPartitionedError
from partman.model import unpartition as u
from partman.model.convert import Column, ForeignKey, Index, SourceTable, foreign_key_plans

COLUMNS = (
    Column("id", "bigint", True),
    Column("created_at", "timestamp with time zone", True),
    Column("note", "text"),
)


def table(
    *indexes: Index, primary: tuple[str, ...] = (), refs: tuple[ForeignKey, ...] = ()
) -> SourceTable:
    return SourceTable("public", "events", COLUMNS, primary, indexes, refs)


PKEY = Index(
    "events_pkey",
    "CREATE UNIQUE INDEX events_pkey ON ONLY public.events USING btree (id, created_at)",
    ("id", "created_at"),
    unique=True,
    primary=True,
    constraint="p",
)
BY_TIME = Index(
    "events_created_at_idx",
    "CREATE INDEX events_created_at_idx ON ONLY public.events USING btree (created_at)",
    ("created_at",),
)


def test_records_without_a_direction_are_conversions() -> None:
    assert u.direction_of({}) is u.Direction.CONVERT
    assert u.direction_of({"direction": "unpartition"}) is u.Direction.UNPARTITION
    assert u.Direction.UNPARTITION.command == "partman unpartition"
    with pytest.raises(ValueError):
        u.direction_of({"direction": "sideways"})


def test_the_primary_key_is_the_keyset_key() -> None:
    assert u.keyset_key(table(PKEY, BY_TIME, primary=("id", "created_at")), ["created_at"]) == (
        "id",
        "created_at",
    )


def test_without_a_primary_key_a_unique_index_on_not_null_columns_serves() -> None:
    unique = Index("u", "CREATE UNIQUE INDEX u ...", ("created_at", "id"), unique=True)
    assert u.keyset_key(table(BY_TIME, unique), ["created_at"]) == ("created_at", "id")


@pytest.mark.parametrize(
    "index",
    [
        Index("n", "CREATE UNIQUE INDEX n ...", ("note", "created_at"), unique=True),  # nullable
        Index(
            "p", "CREATE UNIQUE INDEX p ...", ("id", "created_at"), unique=True, predicate="id > 0"
        ),
        Index("x", "CREATE UNIQUE INDEX x ...", (None, "created_at"), unique=True),  # expression
        BY_TIME,  # not unique
    ],
    ids=["nullable", "partial", "expression", "not-unique"],
)
def test_no_usable_key_is_refused_naming_the_key_to_add(index: Index) -> None:
    with pytest.raises(CatalogError, match=r"ADD PRIMARY KEY \(id, created_at\)"):
        u.keyset_key(table(index), ["created_at"])


def test_the_plain_twin_keeps_every_index_on_the_same_columns() -> None:
    twin = u.plain_indexes(table(PKEY, BY_TIME, primary=("id", "created_at")))
    assert [(t.source.name, t.columns, t.extended) for t in twin] == [
        ("events_pkey", ("id", "created_at"), ()),
        ("events_created_at_idx", None, ()),  # its definition, reused as it is
    ]


def test_every_foreign_key_referencing_the_partitioned_table_is_repointed() -> None:
    fk = ForeignKey("d_fk", "public", "deliveries", ("event_id", "at"), ("id", "created_at"), "")
    source = table(PKEY, primary=("id", "created_at"), refs=(fk,))
    plans = foreign_key_plans(source, u.plain_indexes(source))
    assert [(p.key.name, p.repointed) for p in plans] == [("d_fk", True)]


@given(
    st.lists(st.tuples(st.sampled_from(["r", "f"]), st.booleans(), st.integers(1, 3)), max_size=12)
)
def test_only_foreign_partitions_are_refused(shapes: list[tuple[str, bool, int]]) -> None:
    leaves = [u.Leaf(f"p{i}", k, d, lv) for i, (k, d, lv) in enumerate(shapes)]
    foreign = [leaf.name for leaf in leaves if leaf.kind == "f"]
    if foreign:
        with pytest.raises(NotPartitionedError, match=foreign[0]):
            u.check_leaves("public.events", leaves)
    else:  # sub-partitions at any depth and a default partition are read through the parent
        u.check_leaves("public.events", leaves)
