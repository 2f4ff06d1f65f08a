"""partman convert's pure part (model/convert.py): the order of the steps and what remains, the
names it makes, the indexes a partitioned twin can have, the foreign keys a swap can move, and
the copy's batch count."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partman.errors import IndexDefinitionError, NotPartitionedError
from partman.model import convert as m
from partman.model.convert import Column, ForeignKey, Index, SourceTable, State, Step


def test_steps_in_order_and_numbered() -> None:
    assert [s.value for s in Step] == ["twin", "capture", "copy", "verify", "swap"]
    assert [s.number for s in Step] == [1, 2, 3, 4, 5]


@given(st.sampled_from([None, *State]), st.sampled_from(list(Step)))
def test_remaining_is_what_is_not_done_up_to_until(state: State | None, until: Step) -> None:
    left = m.remaining(state, until)
    done = state.done if state is not None else ()
    assert left == sorted(left, key=lambda s: s.number)  # in order
    assert not set(left) & set(done)  # never a step twice
    assert all(s.number <= until.number for s in left)
    # done and left together are every step up to `until`, nothing skipped
    assert {s for s in Step if s.number <= until.number} <= set(left) | set(done)


def test_done_steps_of_each_state() -> None:
    assert State.PLANNED.done == ()
    assert State.COPY.done == (Step.TWIN, Step.CAPTURE, Step.COPY)
    assert State.FINISHED.done == tuple(Step)
    assert m.remaining(State.VERIFY) == [Step.SWAP]
    assert m.remaining(None, Step.CAPTURE) == [Step.TWIN, Step.CAPTURE]


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=70,
    )
)
def test_derived_names_fit_and_differ(name: str) -> None:
    twin, old = m.twin_name(name), m.old_name(name)
    for made in (twin, old):
        assert len(made.encode()) <= 63
    assert twin != old
    assert twin != name and old != name
    if len(f"{name}_partman_new".encode()) <= 63:
        assert twin == f"{name}_partman_new"


def test_long_names_keep_apart() -> None:
    a, b = "x" * 60 + "a", "x" * 60 + "b"
    assert m.twin_name(a) != m.twin_name(b)
    assert m.old_name(a) != m.old_name(b)


def _source(*indexes: Index, fks: tuple[ForeignKey, ...] = ()) -> SourceTable:
    return SourceTable(
        "public",
        "events",
        (Column("id", "bigint", True, "a"), Column("at", "timestamp with time zone", True)),
        ("id",),
        indexes,
        fks,
    )


PK = Index("events_pkey", "CREATE UNIQUE INDEX ...", ("id",), unique=True, primary=True,
           constraint="p")  # fmt: skip
PK_WITH_KEY = Index("events_pkey", "...", ("id", "at"), unique=True, primary=True, constraint="p")
BY_AT = Index(
    "events_at_idx", "CREATE INDEX events_at_idx ON public.events USING btree (at)", ("at",)
)


def test_unique_index_without_the_key_is_refused_or_extended() -> None:
    with pytest.raises(IndexDefinitionError, match=r"events_pkey on \(id\) lacks .* at"):
        m.twin_indexes(_source(PK, BY_AT), ("at",), extend_unique=False)
    twin = m.twin_indexes(_source(PK, BY_AT), ("at",), extend_unique=True)
    assert twin[0].columns == ("id", "at") and twin[0].extended == ("at",)
    assert twin[1].columns is None  # a plain index: the source's definition, reused


def test_unique_index_with_the_key_is_kept_as_it_is() -> None:
    twin = m.twin_indexes(_source(PK_WITH_KEY), ("at",), extend_unique=False)
    assert twin[0].columns == ("id", "at") and twin[0].extended == ()


def test_expression_unique_and_exclusion_are_refused() -> None:
    expr = Index("lower_idx", "CREATE UNIQUE INDEX ... (lower(x))", (None,), unique=True)
    with pytest.raises(IndexDefinitionError, match="expression"):
        m.twin_indexes(_source(expr), ("at",), extend_unique=True)
    excl = Index("no_overlap", "...", ("at",), constraint="x")
    with pytest.raises(IndexDefinitionError, match="exclusion"):
        m.twin_indexes(_source(excl), ("at",), extend_unique=True)


def test_foreign_keys_move_only_to_an_unchanged_unique_key() -> None:
    fk = ForeignKey("items_event_fkey", "public", "items", ("event_id",), ("id",), "FOREIGN KEY")
    by_id = _source(PK, fks=(fk,))
    plans = m.foreign_key_plans(by_id, m.twin_indexes(by_id, ("id",), extend_unique=False))
    assert [p.repointed for p in plans] == [True]
    m.check_foreign_keys(by_id, plans)
    by_time = m.foreign_key_plans(by_id, m.twin_indexes(by_id, ("at",), extend_unique=True))
    assert [p.repointed for p in by_time] == [False]
    with pytest.raises(NotPartitionedError, match=r"items_event_fkey of public\.items"):
        m.check_foreign_keys(by_id, by_time)


@given(st.integers(0, 10**9), st.integers(1, 10**6))
def test_batch_count_covers_every_row(rows: int, batch: int) -> None:
    n = m.batch_count(rows, batch)
    assert n >= 1
    assert n * batch >= rows
    assert (n - 1) * batch < max(rows, 1)


def test_plan_json_shape() -> None:
    plan = m.ConvertPlan(
        "public.events",
        "events_partman_new",
        "events_old",
        State.CAPTURE,
        [m.StepPlan(Step.TWIN, True, ["x"])],
    )
    assert plan.to_dict()["state"] == "capture"
    assert plan.to_dict()["steps"] == [{"step": "twin", "done": True, "lines": ["x"]}]


def _names(keys: tuple[str, ...], types: tuple[str, ...]) -> Any:
    from partman.engine.convert_async import _Names

    table = SourceTable(
        "public", "t", tuple(Column(k, t) for k, t in zip(keys, types, strict=True)), keys
    )
    record = {"id": 7, "key_columns": list(keys), "key_types": list(types)}
    return _Names("partman_meta", "public", "t", "t_partman_new", record, table)


def test_keyset_predicates_are_ones_an_index_serves() -> None:
    one = _names(("id",), ("bigint",))
    assert one.after(None).as_string(None) == "TRUE"
    assert one.after(["41"]).as_string(None) == "\"id\" > '41'::bigint"
    assert one.at_most(["99"], "s").as_string(None) == '"s"."id" <= \'99\'::bigint'
    assert one.match("t").as_string(None) == '"t"."id" = ANY(%(k0)s::text[]::bigint[])'
    two = _names(("tenant", "id"), ("integer", "uuid"))
    assert two.after(["3", "00000000-0000-0000-0000-000000000001"]).as_string(None) == (
        "(\"tenant\", \"id\") > ('3'::integer, '00000000-0000-0000-0000-000000000001'::uuid)"
    )
    assert two.match("s").as_string(None) == (
        '("s"."tenant", "s"."id") IN (SELECT * FROM unnest(%(k0)s::text[]::integer[], '
        "%(k1)s::text[]::uuid[]))"
    )
    assert two.key_arrays([("1", "a"), ("2", "b")]) == {"k0": ["1", "2"], "k1": ["a", "b"]}
    assert one.log.as_string(None) == '"partman_meta"."convert_7_log"'


@given(st.lists(st.integers(0, 10**6), min_size=0, max_size=50, unique=True), st.integers(1, 9))
def test_key_arrays_keep_each_key_once_in_column_order(ids: list[int], tenant: int) -> None:
    two = _names(("tenant", "id"), ("integer", "bigint"))
    rows = [(str(tenant), str(i)) for i in ids]
    arrays = two.key_arrays(rows)
    assert list(zip(arrays["k0"], arrays["k1"], strict=True)) == rows


def test_reloptions_become_the_partitions_storage_parameters_and_the_table_s_own_win() -> None:
    source = SourceTable(
        "public",
        "t",
        (),
        (),
        reloptions=(
            "fillfactor=70",
            "autovacuum_enabled=off",
            "toast.autovacuum_vacuum_scale_factor=0.1",
            "user_catalog_table=true",
        ),
    )
    carried, dropped = m.carried_parameters(source, {"fillfactor": 90})
    assert carried == {
        "autovacuum_enabled": False,
        "fillfactor": 90,  # the Table's own
        "toast.autovacuum_vacuum_scale_factor": 0.1,
    }
    assert isinstance(carried["fillfactor"], int)
    assert dropped == ["user_catalog_table=true"]  # not a partition's: named in a notice
    assert m.carried_parameters(SourceTable("public", "t", (), ()), {}) == ({}, [])


def test_the_truncate_guard_is_named_apart_from_the_capture() -> None:
    assert m.TRUNCATE_TRIGGER_NAME != m.TRIGGER_NAME
    assert m.truncate_function_name(7) != m.function_name(7)
