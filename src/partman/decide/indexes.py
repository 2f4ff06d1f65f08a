"""Building an index on a partitioned table without blocking writes: which steps are left, from
a snapshot of the catalog (`model.indexes.IndexTree`). Pure: no I/O.

The plan resumes whatever a previous run (or a person) left: the parent's index is found by
name or by definition; a partition whose index is attached is done; one with a valid index of
the same definition only needs it attached; one with an invalid index of that definition (a
`CREATE INDEX CONCURRENTLY` that was killed, cancelled or timed out) gets it dropped
concurrently and built again; a sub-partitioned partition gets an ON ONLY index of its own,
its leaves built and attached, then is attached itself. Bad input is refused here, before any
DDL: an unknown column, a unique index without a partition key column, a name another
definition holds.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from ..errors import IndexDefinitionError, NotPartitionedError, TableNotFoundError
from ..model.indexes import (
    Holding,
    IndexEntry,
    IndexPlan,
    IndexRequest,
    IndexState,
    IndexStep,
    IndexTree,
    StepKind,
    TableNode,
)
from ..model.naming import MAX_IDENTIFIER_BYTES, short_hash

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_KINDS = {
    "r": "a plain table",
    "v": "a view",
    "m": "a materialized view",
    "f": "a foreign table",
    "i": "an index",
    "I": "an index",
    "S": "a sequence",
}


# -- input -----------------------------------------------------------------------------------


def quote_column(name: str) -> str:
    """A column as `parse_columns` reads it back (quoted unless it is a plain lower-case name)."""
    if _PLAIN.fullmatch(name) and name == name.lower():
        return name
    return '"' + name.replace('"', '""') + '"'


def check_table(qualified: str, relkind: str | None) -> None:
    """The table exists and is partitioned, or a CatalogError naming what it is."""
    if relkind is None:
        raise TableNotFoundError(f"table {qualified} does not exist")
    if relkind != "p":
        what = _KINDS.get(relkind, f"a relation of kind {relkind!r}")
        raise NotPartitionedError(
            f"{qualified} is {what}, not a partitioned table: index it with a plain "
            "CREATE INDEX CONCURRENTLY"
        )


def check_request(tree: IndexTree, request: IndexRequest) -> str:
    """Refuse what PostgreSQL would refuse, before any DDL; returns the definition text the
    catalog shows for such an index ("btree (tenant_id, created_at)")."""
    root = tree.root
    if not request.columns:
        raise IndexDefinitionError(f"an index on {root.qualified} needs at least one column")
    seen: set[str] = set()
    for c in request.columns:
        if c in seen:
            raise IndexDefinitionError(
                f"column {c!r} is named twice in the index on {root.qualified}"
            )
        seen.add(c)
        if c not in tree.columns:
            close = difflib.get_close_matches(c, list(tree.columns), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise IndexDefinitionError(
                f"{root.qualified} has no column {c!r}{hint}; its columns: "
                + ", ".join(tree.columns)
            )
    if request.name is not None and (
        not request.name or len(request.name.encode()) > MAX_IDENTIFIER_BYTES
    ):
        raise IndexDefinitionError(
            f"index name {request.name!r}: give 1 to {MAX_IDENTIFIER_BYTES} bytes"
        )
    if request.unique:
        for table in tree.tables:
            if not table.partitioned:
                continue
            for key in table.key_columns:
                if key is None:
                    raise IndexDefinitionError(
                        f"a unique index cannot be built on {root.qualified}: the partition "
                        f"key of {table.qualified} is an expression (PostgreSQL requires the "
                        "unique columns to include every partition key column)"
                    )
                if key not in request.columns:
                    wanted = ", ".join(quote_column(c) for c in (*request.columns, key))
                    raise IndexDefinitionError(
                        f"a unique index on {root.qualified} must include the partition key "
                        f"column {key!r} of {table.qualified} (PostgreSQL's rule: uniqueness is "
                        f"checked in each partition alone); add it: ({wanted}) --unique"
                    )
    return "btree (" + ", ".join(tree.columns[c] for c in request.columns) + ")"


# -- the plan --------------------------------------------------------------------------------


def _matches(i: IndexEntry, definition: str, unique: bool) -> bool:
    return i.definition == definition and i.unique == unique


def _fit(base: str, tail: str) -> str:
    name = f"{base}_{tail}"
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    tag = short_hash(base)
    budget = MAX_IDENTIFIER_BYTES - len(tail.encode()) - len(tag) - 2
    head = base.encode()[:budget].decode(errors="ignore")
    return f"{head}_{tag}_{tail}"


def choose_name(
    table: str, columns: Sequence[str], unique: bool, taken: set[str] | frozenset[str]
) -> str:
    """PostgreSQL's way: `<table>_<columns>_idx` (`_key` when unique), a number after it when
    that is taken, cut to 63 bytes with a hash of what was cut."""
    base = f"{table}_{'_'.join(columns)}"
    suffix = "key" if unique else "idx"
    n = 0
    while True:
        name = _fit(base, suffix if n == 0 else f"{suffix}{n}")
        if name not in taken:
            return name
        n += 1


class _Planner:
    def __init__(self, tree: IndexTree, request: IndexRequest, definition: str) -> None:
        self.tree = tree
        self.request = request
        self.definition = definition
        self.steps: list[IndexStep] = []
        self.notes: list[str] = []
        self.taken: dict[str, set[str]] = {}
        for schema, name in tree.taken:
            self.taken.setdefault(schema, set()).add(name)

    def name_for(self, table: TableNode) -> str:
        taken = self.taken.setdefault(table.schema, set())
        name = choose_name(table.name, self.request.columns, self.request.unique, taken)
        taken.add(name)
        return name

    def step(
        self,
        kind: StepKind,
        table: TableNode,
        index: str,
        parent_index: tuple[str, str] | None = None,
    ) -> None:
        self.steps.append(
            IndexStep(
                kind,
                table,
                index,
                self.request.columns,
                self.request.unique,
                self.tree.path(table.oid),
                parent_index,
            )
        )

    def descend(self, table: TableNode, index_oid: int | None, index_name: str) -> None:
        """Steps for the partitions of `table`, whose index is `index_name` (oid None: it is
        made by this plan)."""
        here = (table.schema, index_name)
        for child in self.tree.children(table.oid):
            if child.foreign:
                self.notes.append(
                    f"{child.qualified} is a foreign table: PostgreSQL cannot index it, so "
                    f"{table.schema}.{index_name} stays invalid while it is a partition"
                )
                continue
            own = self.tree.indexes_of(child.oid)
            attached = [i for i in own if index_oid is not None and i.parent_index == index_oid]
            if attached:
                done = attached[0]
                if done.valid:
                    continue
                if child.partitioned:
                    self.descend(child, done.oid, done.name)
                else:  # PostgreSQL never attaches an invalid leaf index; say so if it did
                    self.notes.append(
                        f"{child.schema}.{done.name} is attached but invalid; REINDEX INDEX "
                        f"CONCURRENTLY {child.schema}.{done.name} repairs it"
                    )
                continue
            candidates = [
                i
                for i in own
                if i.parent_index is None
                and not i.constraint
                and _matches(i, self.definition, self.request.unique)
            ]
            if child.partitioned:
                if candidates:
                    pick = sorted(candidates, key=lambda i: (not i.valid, i.name))[0]
                    self.descend(child, pick.oid, pick.name)
                    name = pick.name
                else:
                    name = self.name_for(child)
                    self.step(StepKind.CREATE_PARENT, child, name)
                    self.descend(child, None, name)
                self.step(StepKind.ATTACH, child, name, here)
                continue
            good = [i for i in candidates if i.valid and i.ready]
            bad = [i for i in candidates if not (i.valid and i.ready)]
            for leftover in bad:
                self.step(StepKind.DROP_INVALID, child, leftover.name)
            if good:
                name = good[0].name
            else:
                name = bad[0].name if bad else self.name_for(child)
                self.step(StepKind.BUILD, child, name)
            self.step(StepKind.ATTACH, child, name, here)


def _root_index(tree: IndexTree, request: IndexRequest, definition: str) -> IndexEntry | None:
    """The parent's index this request resumes, if any; a name held by something else is
    refused."""
    root = tree.root
    own = tree.indexes_of(root.oid)
    if request.name is not None:
        same = [i for i in own if i.name == request.name]
        if same:
            found = same[0]
            if _matches(found, definition, request.unique):
                return found
            unique = "UNIQUE " if found.unique else ""
            raise IndexDefinitionError(
                f"index {root.schema}.{request.name} already exists on {root.qualified} as "
                f"{unique}{found.definition}, not {'UNIQUE ' if request.unique else ''}"
                f"{definition}; choose another --name, or drop it first"
            )
        if (root.schema, request.name) in tree.taken:
            raise IndexDefinitionError(
                f"{root.schema}.{request.name} is the name of another relation (not an index "
                f"of {root.qualified}); choose another --name"
            )
        return None
    matching = [i for i in own if _matches(i, definition, request.unique)]
    if not matching:
        return None
    return sorted(matching, key=lambda i: (not i.valid, i.constraint, i.name))[0]


def plan_index(tree: IndexTree, request: IndexRequest) -> IndexPlan:
    """The steps left to build `request` on `tree`'s parent (none when it is complete)."""
    definition = check_request(tree, request)
    root = tree.root
    existing = _root_index(tree, request, definition)
    planner = _Planner(tree, request, definition)
    if existing is not None:
        name = existing.name
        if existing.constraint and not existing.valid:
            raise IndexDefinitionError(
                f"{root.schema}.{name} backs a constraint of {root.qualified} and is invalid; "
                "partman builds plain indexes only: complete it with ALTER INDEX ... ATTACH "
                "PARTITION yourself, or choose another --name"
            )
        if not existing.valid:
            planner.descend(root, existing.oid, name)
    else:
        name = request.name or planner.name_for(root)
        planner.step(StepKind.CREATE_PARENT, root, name)
        planner.descend(root, None, name)
    return IndexPlan(
        table=root.qualified,
        schema=root.schema,
        name=name,
        columns=request.columns,
        unique=request.unique,
        definition=definition,
        existed=existing is not None,
        steps=tuple(planner.steps),
        notes=tuple(planner.notes),
    )


# -- where indexes stand ---------------------------------------------------------------------


def index_states(tree: IndexTree) -> list[IndexState]:
    """Each index of the parent, valid or not, and which partitions lack it or hold an invalid
    or unattached one of its definition."""
    partitions = sum(1 for t in tree.tables if t.oid != tree.root.oid and not t.foreign)
    out = []
    for index in tree.indexes_of(tree.root.oid):
        holdings: dict[str, Holding] = {}
        _walk(tree, tree.root, index, index, holdings)
        out.append(
            IndexState(
                table=tree.root.qualified,
                name=index.name,
                definition=index.definition,
                unique=index.unique,
                valid=index.valid,
                constraint=index.constraint,
                partitions=partitions,
                holdings=holdings,
            )
        )
    return out


def _walk(
    tree: IndexTree,
    table: TableNode,
    index: IndexEntry | None,
    root_index: IndexEntry,
    holdings: dict[str, Holding],
) -> None:
    for child in tree.children(table.oid):
        if child.foreign:
            continue
        own = tree.indexes_of(child.oid)
        attached = [i for i in own if index is not None and i.parent_index == index.oid]
        if attached:
            if child.partitioned:
                _walk(tree, child, attached[0], root_index, holdings)
            continue
        candidates = [
            i
            for i in own
            if i.parent_index is None and _matches(i, root_index.definition, root_index.unique)
        ]
        good = [i for i in candidates if i.valid and i.ready]
        if child.partitioned:
            holdings[child.qualified] = Holding.UNATTACHED if candidates else Holding.MISSING
            _walk(tree, child, candidates[0] if candidates else None, root_index, holdings)
        elif good:
            holdings[child.qualified] = Holding.UNATTACHED
        elif candidates:
            holdings[child.qualified] = Holding.INVALID
        else:
            holdings[child.qualified] = Holding.MISSING


def state_of(tree: IndexTree, name: str) -> IndexState | None:
    for s in index_states(tree):
        if s.name == name:
            return s
    return None
