"""The index build's planning (decide/indexes.py), without a database: column lists read as SQL
reads them, names as PostgreSQL chooses them, bad requests refused, and, by property, plans
that complete any tree from any state a crashed or interrupted build leaves.

The property tests run the plans against a small model of PostgreSQL's catalog (`Catalog`
below): CREATE INDEX ON ONLY makes an invalid index (valid when the table has no partitions),
CREATE INDEX CONCURRENTLY a valid one, DROP removes one, ATTACH links a partition's index to its
parent's, and a partitioned index turns valid once each partition has a valid attached index
(PostgreSQL's validatePartitionedIndex, applied upwards).
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partman.decide.indexes import (
    check_request,
    choose_name,
    index_states,
    plan_index,
    quote_column,
)
from partman.errors import IndexDefinitionError, NotPartitionedError, TableNotFoundError
from partman.model.indexes import (
    Holding,
    IndexEntry,
    IndexRequest,
    IndexStep,
    IndexTree,
    StepKind,
    TableNode,
    parse_columns,
)
from partman.model.naming import MAX_IDENTIFIER_BYTES

COLUMNS = {"tenant_id": "tenant_id", "created_at": "created_at", "Device": '"Device"'}
DEFINITION = "btree (tenant_id, created_at)"

# -- column lists ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("(tenant_id, created_at)", ("tenant_id", "created_at")),
        ("tenant_id created_at", ("tenant_id", "created_at")),
        ("tenant_id,created_at", ("tenant_id", "created_at")),
        ("(Tenant_ID)", ("tenant_id",)),
        ('("Mixed Case", "a""b")', ("Mixed Case", 'a"b')),
        ("  ( a )  ", ("a",)),
    ],
)
def test_columns_read_as_sql_reads_them(text: str, columns: tuple[str, ...]) -> None:
    assert parse_columns(text) == columns


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("()", "at least one column"),
        ("(a,,b)", "missing before a comma"),
        ("(a,)", "missing after a comma"),
        ("(lower(a))", "only plain columns"),
        ('("a)', "not closed"),
        ('("")', "is not a column name"),
    ],
)
def test_column_lists_that_are_not_lists_of_columns_are_refused(text: str, words: str) -> None:
    with pytest.raises(IndexDefinitionError, match=words):
        parse_columns(text)


@given(st.lists(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                        min_size=1, max_size=12), min_size=1, max_size=5),
       st.sampled_from([", ", ",", " , ", " "]))  # fmt: skip
def test_quoted_columns_read_back_as_they_were(names: list[str], sep: str) -> None:
    text = "(" + sep.join(quote_column(n) for n in names) + ")"
    assert parse_columns(text) == tuple(names)


# -- names -----------------------------------------------------------------------------------


def test_names_follow_postgresql_and_stay_within_63_bytes() -> None:
    assert choose_name("events", ["tenant_id", "created_at"], False, set()) == (
        "events_tenant_id_created_at_idx"
    )
    assert choose_name("events", ["id"], True, {"events_id_key"}) == "events_id_key1"
    assert choose_name("events", ["id"], False, {"events_id_idx", "events_id_idx1"}) == (
        "events_id_idx2"
    )
    long = "e" * 60
    a = choose_name(long, ["tenant_id"], False, set())
    b = choose_name(long, ["tenant_ie"], False, set())
    assert len(a.encode()) <= MAX_IDENTIFIER_BYTES and a.endswith("_idx") and a != b


@given(st.text(min_size=1, max_size=80), st.lists(st.text(min_size=1, max_size=30), min_size=1,
       max_size=4), st.booleans())  # fmt: skip
def test_a_chosen_name_always_fits_and_is_never_taken(
    table: str, columns: list[str], unique: bool
) -> None:
    taken: set[str] = set()
    for _ in range(3):
        name = choose_name(table, columns, unique, taken)
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES and name not in taken
        taken.add(name)


# -- a model of the catalog ------------------------------------------------------------------


@dataclasses.dataclass
class Catalog:
    """Enough of PostgreSQL's catalog to run index plans against."""

    tables: list[TableNode]
    indexes: list[IndexEntry]
    oids: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(10_000))

    def tree(self) -> IndexTree:
        root = next(t for t in self.tables if t.parent_oid is None)
        taken = {(t.schema, t.name) for t in self.tables}
        taken |= {(self.table(i.table_oid).schema, i.name) for i in self.indexes}
        return IndexTree(root, tuple(self.tables), tuple(self.indexes), COLUMNS, frozenset(taken))

    def table(self, oid: int) -> TableNode:
        return next(t for t in self.tables if t.oid == oid)

    def children(self, oid: int) -> list[TableNode]:
        return [t for t in self.tables if t.parent_oid == oid]

    def find(self, schema: str, name: str) -> IndexEntry:
        [found] = [
            i for i in self.indexes if i.name == name and self.table(i.table_oid).schema == schema
        ]
        return found

    def add(self, table: TableNode, name: str, *, valid: bool, ready: bool = True,
            unique: bool = False, definition: str = DEFINITION) -> None:  # fmt: skip
        assert (table.schema, name) not in self.tree().taken, f"{name} exists"
        self.indexes.append(
            IndexEntry(next(self.oids), name, table.oid, unique, valid, definition, ready=ready)
        )

    def apply(self, step: IndexStep) -> None:
        table = step.table
        if step.kind == StepKind.CREATE_PARENT:
            assert table.partitioned
            self.add(table, step.index, valid=not self.children(table.oid), unique=step.unique)
        elif step.kind == StepKind.BUILD:
            assert not table.partitioned
            self.add(table, step.index, valid=True, unique=step.unique)
        elif step.kind == StepKind.DROP_INVALID:
            gone = self.find(table.schema, step.index)
            assert not gone.valid and gone.parent_index is None
            self.indexes.remove(gone)
        else:
            assert step.parent_index is not None
            child = self.find(table.schema, step.index)
            parent = self.find(*step.parent_index)
            assert child.parent_index is None and child.table_oid == table.oid
            assert parent.table_oid == table.parent_oid
            assert child.definition == parent.definition and child.unique == parent.unique
            if not table.partitioned:
                assert child.valid  # PostgreSQL attaches valid leaf indexes only
            self._replace(dataclasses.replace(child, parent_index=parent.oid))
            self._validate(parent)

    def _replace(self, entry: IndexEntry) -> None:
        self.indexes = [entry if i.oid == entry.oid else i for i in self.indexes]

    def _validate(self, index: IndexEntry) -> None:
        """A partitioned index is valid once each partition's index is attached and valid;
        then its own parent index may turn valid in turn."""
        current = next(i for i in self.indexes if i.oid == index.oid)
        if current.valid:
            return
        for child in self.children(current.table_oid):
            if child.foreign:
                return
            if not any(
                i.table_oid == child.oid and i.parent_index == current.oid and i.valid
                for i in self.indexes
            ):
                return
        self._replace(dataclasses.replace(current, valid=True))
        if current.parent_index is not None:
            self._validate(next(i for i in self.indexes if i.oid == current.parent_index))


def complete(catalog: Catalog, name: str) -> None:
    """The root's index `name` is valid and every table has a valid index attached to its
    parent's, down the tree."""
    tree = catalog.tree()
    [root_index] = [i for i in tree.indexes_of(tree.root.oid) if i.name == name]
    assert root_index.valid

    def down(table: TableNode, index: IndexEntry) -> None:
        for child in tree.children(table.oid):
            [mine] = [i for i in tree.indexes_of(child.oid) if i.parent_index == index.oid]
            assert mine.valid
            down(child, mine)

    down(tree.root, root_index)
    [state] = [s for s in index_states(tree) if s.name == name]
    assert state.valid and not state.holdings and state.attached == state.partitions


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    """A RANGE parent with leaves and RANGE -> HASH partitions (in two schemas), and what a
    person or an earlier build left on the leaves: invalid (ready or not) or valid indexes of
    the same definition, and unrelated ones."""
    oids = itertools.count(1)
    root = TableNode(next(oids), "app", "events", True, None, ("created_at",))
    tables = [root]
    for p in range(draw(st.integers(0, 4))):
        schema = draw(st.sampled_from(["app", "part"]))
        if draw(st.booleans()):
            parent = TableNode(next(oids), schema, f"events_p{p}", True, root.oid, ("tenant_id",))
            tables.append(parent)
            for h in range(draw(st.integers(0, 3))):
                tables.append(TableNode(next(oids), schema, f"events_p{p}_h{h}", False, parent.oid))
        else:
            tables.append(TableNode(next(oids), schema, f"events_p{p}", False, root.oid))
    catalog = Catalog(tables, [])
    for t in tables[1:]:
        if t.partitioned:
            continue
        left = draw(st.sampled_from(["none", "invalid", "not_ready", "valid", "other", "taken"]))
        if left == "invalid":
            catalog.add(t, f"left_{t.name}", valid=False)
        elif left == "not_ready":  # with the very name the plan would choose
            catalog.add(t, f"{t.name}_tenant_id_created_at_idx", valid=False, ready=False)
        elif left == "valid":
            catalog.add(t, f"mine_{t.name}", valid=True)
        elif left == "other":
            catalog.add(t, f"other_{t.name}", valid=True, definition="btree (created_at)")
        elif left == "taken":  # the name the plan would choose, another definition
            catalog.add(t, f"{t.name}_tenant_id_created_at_idx", valid=True, unique=True)
    return catalog


REQUEST = IndexRequest(("tenant_id", "created_at"))


def run(catalog: Catalog, steps: tuple[IndexStep, ...]) -> None:
    for step in steps:
        catalog.apply(step)


@settings(max_examples=300, deadline=None)
@given(catalogs(), st.data())
def test_a_plan_completes_any_tree_and_resumes_from_any_step(
    catalog: Catalog, data: st.DataObject
) -> None:
    plan = plan_index(catalog.tree(), REQUEST)
    assert not plan.existed and plan.steps[0].kind == StepKind.CREATE_PARENT
    _ordered(plan.steps)
    stop = data.draw(st.integers(0, len(plan.steps)))
    run(catalog, plan.steps[:stop])  # a crash after `stop` steps
    resumed = plan_index(catalog.tree(), REQUEST)
    assert resumed.name == plan.name and resumed.existed == (stop > 0)
    assert len(resumed.steps) <= len(plan.steps) - stop + sum(
        1
        for s in plan.steps[:stop]
        if s.kind == StepKind.BUILD  # a build not attached yet
    )
    _ordered(resumed.steps)
    run(catalog, resumed.steps)
    complete(catalog, plan.name)
    assert plan_index(catalog.tree(), REQUEST).steps == ()  # nothing left
    # nothing valid was built twice, no leftover remains beside the attached ones
    tree = catalog.tree()
    for t in tree.tables[1:]:
        same = [i for i in tree.indexes_of(t.oid) if i.definition == DEFINITION and not i.unique]
        assert len(same) == 1, (t.name, same)


def _ordered(steps: tuple[IndexStep, ...]) -> None:
    """Each table's own index before anything below it; a leaf's leftovers dropped, then it is
    built, then attached; a partitioned table attached after all its partitions; one attach a
    table; names fit."""
    seen: dict[int, list[StepKind]] = {}
    attached: set[int] = set()
    for step in steps:
        kinds = seen.setdefault(step.table.oid, [])
        assert len(step.index.encode()) <= MAX_IDENTIFIER_BYTES
        for ancestor in step.path[:-1]:
            assert ancestor not in attached  # an ancestor is attached after all below it
        if step.kind == StepKind.ATTACH:
            assert step.table.oid not in attached
            attached.add(step.table.oid)
        if step.kind == StepKind.BUILD:
            assert StepKind.ATTACH not in kinds and StepKind.BUILD not in kinds
        if step.kind == StepKind.DROP_INVALID:
            assert StepKind.BUILD not in kinds and StepKind.ATTACH not in kinds
        kinds.append(step.kind)
    for oid, kinds in seen.items():
        if StepKind.BUILD in kinds:
            assert kinds[-1] == StepKind.ATTACH, (oid, kinds)


# -- requests refused ------------------------------------------------------------------------


def _tree(**root: object) -> IndexTree:
    node = TableNode(1, "app", "events", True, None, ("created_at",))
    node = dataclasses.replace(node, **root)  # type: ignore[arg-type]
    leaf = TableNode(2, "app", "events_p0", False, 1)
    sub = TableNode(3, "app", "events_p1", True, 1, ("tenant_id",))
    hashed = TableNode(4, "app", "events_p1_h0", False, 3)
    plain = IndexEntry(50, "by_tenant", 1, False, True, "btree (tenant_id)")
    taken = frozenset({("app", "events"), ("app", "by_tenant"), ("app", "seq")})
    return IndexTree(node, (node, leaf, sub, hashed), (plain,), COLUMNS, taken)


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (IndexRequest(("tenant",)), "has no column 'tenant' \\(did you mean 'tenant_id'\\?\\)"),
        (IndexRequest(("created_at",), unique=True),
         "must include the partition key column 'tenant_id' of app.events_p1"),
        (IndexRequest(("tenant_id",), unique=True),
         "must include the partition key column 'created_at' of app.events.*"
         "\\(tenant_id, created_at\\) --unique"),
        (IndexRequest(("created_at",), name="by_tenant"),
         "app.by_tenant already exists on app.events as btree \\(tenant_id\\)"),
        (IndexRequest(("created_at",), name="seq"), "app.seq is the name of another relation"),
        (IndexRequest(("created_at",), name="x" * 64), "give 1 to 63 bytes"),
        (IndexRequest(()), "at least one column"),
    ],
)  # fmt: skip
def test_requests_postgresql_would_refuse_are_refused_first(
    request_: IndexRequest, words: str
) -> None:
    with pytest.raises(IndexDefinitionError, match=words):
        plan_index(_tree(), request_)


def test_a_unique_index_cannot_be_asked_of_an_expression_key() -> None:
    with pytest.raises(IndexDefinitionError, match="is an expression"):
        check_request(_tree(key_columns=(None,)), IndexRequest(("tenant_id",), unique=True))


def test_the_definition_quotes_as_the_server_does() -> None:
    assert check_request(_tree(), IndexRequest(("Device", "created_at"))) == (
        'btree ("Device", created_at)'
    )


def test_unique_with_every_key_plans_and_an_existing_index_is_resumed_by_definition() -> None:
    tree = _tree()
    plan = plan_index(tree, IndexRequest(("tenant_id", "created_at"), unique=True))
    assert plan.name == "events_tenant_id_created_at_key"
    assert [(s.kind.value, s.table.name) for s in plan.steps] == [
        ("create_parent", "events"),
        ("build", "events_p0"),
        ("attach", "events_p0"),
        ("create_parent", "events_p1"),
        ("build", "events_p1_h0"),
        ("attach", "events_p1_h0"),
        ("attach", "events_p1"),
    ]
    assert plan.steps[0].statement().as_string(None) == (
        'CREATE UNIQUE INDEX "events_tenant_id_created_at_key" ON ONLY "app"."events" '
        '("tenant_id", "created_at")'
    )
    assert plan.steps[1].statement().as_string(None) == (
        'CREATE UNIQUE INDEX CONCURRENTLY "events_p0_tenant_id_created_at_key" ON '
        '"app"."events_p0" ("tenant_id", "created_at")'
    )
    assert plan.steps[2].statement().as_string(None) == (
        'ALTER INDEX "app"."events_tenant_id_created_at_key" ATTACH PARTITION '
        '"app"."events_p0_tenant_id_created_at_key"'
    )
    resumed = plan_index(tree, IndexRequest(("tenant_id",)))  # by_tenant: valid, complete
    assert resumed.existed and resumed.name == "by_tenant" and resumed.steps == ()


def test_table_checks_name_what_the_relation_is() -> None:
    from partman.decide.indexes import check_table

    with pytest.raises(TableNotFoundError, match="does not exist"):
        check_table("app.x", None)
    with pytest.raises(NotPartitionedError, match="is a view"):
        check_table("app.x", "v")
    check_table("app.x", "p")


def test_states_name_the_partitions_lacking_an_index() -> None:
    tree = _tree()
    index = IndexEntry(60, "by_time", 1, False, False, "btree (created_at)")
    attached = IndexEntry(61, "p0_time", 2, False, True, "btree (created_at)", parent_index=60)
    invalid = IndexEntry(62, "h0_time", 4, False, False, "btree (created_at)")
    tree = dataclasses.replace(tree, indexes=(*tree.indexes, index, attached, invalid))
    states = {s.name: s for s in index_states(tree)}
    assert states["by_tenant"].lacking(Holding.MISSING) == [
        "app.events_p0", "app.events_p1", "app.events_p1_h0"
    ]  # fmt: skip
    by_time = states["by_time"]
    assert by_time.partitions == 3 and by_time.attached == 1
    assert by_time.lacking(Holding.MISSING) == ["app.events_p1"]
    assert by_time.lacking(Holding.INVALID) == ["app.events_p1_h0"]
