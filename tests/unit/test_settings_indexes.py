"""[[table.index]] in partman.toml: columns as an array or as SQL writes them, unique, name; each
mistake at its key and line."""

from __future__ import annotations

import pytest

from partman.settings import IndexSpec, parse

TABLE = '[[table]]\nname = "events"\npartition_by = "at"\n'


def test_declared_indexes_are_read_with_their_columns_unique_and_name() -> None:
    s = parse(
        TABLE
        + '\n[[table.index]]\ncolumns = ["tenant_id", "at"]\n'
        + '\n[[table.index]]\ncolumns = \'(id, "At")\'\nunique = true\nname = "events_id"\n',
        environ={},
    )
    assert not s.problems, s.problems
    [spec] = s.tables
    assert [(i.columns, i.unique, i.name) for i in spec.indexes] == [
        (("tenant_id", "at"), False, None),
        (("id", "At"), True, "events_id"),
    ]
    assert spec.indexes[1].label("public.events") == "unique events_id on public.events (id, At)"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("columns = []", "table[0].index[0].columns: expected a non-empty array"),
        ("unique = true", "table[0].index[0]: missing key columns"),
        ('columns = ["a"]\nunique = "yes"', "table[0].index[0].unique: expected true or false"),
        ('columns = ["a"]\nname = 3', "table[0].index[0].name: expected the index's name"),
        ('columns = ["a"]\ncolums = ["b"]', "table[0].index[0].colums: unknown key (did you mean"),
        ('columns = "(a,, b)"', "table[0].index[0].columns: columns '(a,, b)'"),
    ],
)
def test_each_index_mistake_lands_at_its_key_and_line(body: str, expected: str) -> None:
    text = TABLE + "\n[[table.index]]\n" + body + "\n"
    problems = parse(text, environ={}).problems
    assert any(expected in str(p) for p in problems), problems
    assert all(p.line is not None and p.line >= 5 for p in problems), problems


def test_the_same_index_twice_is_refused_at_the_second() -> None:
    text = TABLE + '\n[[table.index]]\ncolumns = ["a"]\n\n[[table.index]]\ncolumns = ["a"]\n'
    [problem] = parse(text, environ={}).problems
    assert problem.key == "table[0].index[1]" and "already declared at table[0].index[0]" in (
        problem.message
    )


def test_an_index_section_written_once_is_told_to_be_an_array() -> None:
    [problem] = parse(TABLE + '\n[table.index]\ncolumns = ["a"]\n', environ={}).problems
    assert "[[table.index]]" in problem.message


def test_a_table_without_indexes_declares_none() -> None:
    [spec] = parse(TABLE, environ={}).tables
    assert spec.indexes == ()
    assert IndexSpec(("a",), False, None, ()).label("s.t") == "s.t (a)"
