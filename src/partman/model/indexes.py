"""Indexes on a partitioned table, as pure values: what the catalog holds (`IndexTree`), what is
asked for (`IndexRequest`), the steps that build it without blocking writes (`IndexStep`,
`IndexPlan`), what a build did (`IndexReport`) and where an index stands (`IndexState`).

A partitioned table's index is built the way PostgreSQL's own documentation suggests for big
tables: `CREATE INDEX ... ON ONLY parent` (the parent's index, invalid while a partition lacks
it), then per partition `CREATE INDEX CONCURRENTLY` and `ALTER INDEX parent_index ATTACH
PARTITION partition_index`; a sub-partitioned partition gets its own ON ONLY index, its leaves
are built and attached, then it is attached. The parent's index becomes valid by itself once
every partition's index is attached. `decide/indexes.py` plans the steps, `engine/indexes*.py`
runs them under the lock budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from psycopg import sql

from ..errors import IndexDefinitionError
from .report import Outcome

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def parse_columns(text: str) -> tuple[str, ...]:
    """Column names as SQL writes them: `(tenant_id, created_at)`, `tenant_id created_at` or
    `a,"Mixed Case"`. Unquoted names fold to lower case, as PostgreSQL folds them; double-quoted
    ones are taken as written (`""` is a quote). Expressions are refused."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    out: list[str] = []
    i = 0
    expect_name = True
    while i < len(body):
        ch = body[i]
        if ch.isspace():
            i += 1
            continue
        if ch == ",":
            if expect_name:
                raise IndexDefinitionError(f"columns {text!r}: a name is missing before a comma")
            expect_name = True
            i += 1
            continue
        if ch == '"':
            j = i + 1
            name = []
            while True:
                if j >= len(body):
                    raise IndexDefinitionError(f"columns {text!r}: a quoted name is not closed")
                if body[j] == '"':
                    if j + 1 < len(body) and body[j + 1] == '"':
                        name.append('"')
                        j += 2
                        continue
                    break
                name.append(body[j])
                j += 1
            if not name:
                raise IndexDefinitionError(f'columns {text!r}: "" is not a column name')
            out.append("".join(name))
            i = j + 1
        else:
            m = _PLAIN.match(body, i)
            if m is None:
                raise IndexDefinitionError(
                    f"columns {text!r}: {body[i:]!r} is not a column name; only plain columns "
                    "are supported (no expressions), quote a name with double quotes"
                )
            out.append(m.group().lower())
            i = m.end()
        expect_name = False
    if not out:
        raise IndexDefinitionError(f"columns {text!r}: name at least one column")
    if expect_name:
        raise IndexDefinitionError(f"columns {text!r}: a name is missing after a comma")
    return tuple(out)


@dataclass(frozen=True)
class IndexEntry:
    """One index of a table of the tree, as the catalog shows it."""

    oid: int
    name: str
    table_oid: int
    unique: bool
    valid: bool
    """pg_index.indisvalid: false for a partitioned index some partition lacks, and for an
    index a killed or failed `CREATE INDEX CONCURRENTLY` left behind."""
    definition: str
    """What follows USING in `pg_get_indexdef` ("btree (tenant_id, created_at)"): the same
    text for a parent's index and its partitions' (names and ONLY apart)."""
    parent_index: int | None = None
    """The index it is attached to (a partition of), if any."""
    constraint: bool = False
    """It backs a constraint (primary key, unique, exclusion)."""
    ready: bool = True
    """pg_index.indisready: false when `CREATE INDEX CONCURRENTLY` died in its first phase."""


@dataclass(frozen=True)
class TableNode:
    """A table of the tree: the parent, or a partition at any depth."""

    oid: int
    schema: str
    name: str
    partitioned: bool
    """A partitioned table (relkind 'p'): its index is made ON ONLY, never built."""
    parent_oid: int | None = None
    key_columns: tuple[str | None, ...] = ()
    """A partitioned table's partition key columns (None for an expression)."""
    foreign: bool = False
    """A foreign table: PostgreSQL cannot index it."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class IndexTree:
    """A partitioned table, its partitions at every depth, their indexes, the parent's columns
    and the relation names taken in the tree's schemas: all a plan needs to know."""

    root: TableNode
    tables: tuple[TableNode, ...]
    """Every table of the tree, the root first, each partitioned table before its partitions."""
    indexes: tuple[IndexEntry, ...]
    columns: dict[str, str]
    """The parent's columns: name -> the name as SQL quotes it (quote_ident)."""
    taken: frozenset[tuple[str, str]] = frozenset()
    """(schema, name) of every relation in the tree's schemas."""

    @cached_property
    def _by_oid(self) -> dict[int, TableNode]:
        return {t.oid: t for t in self.tables}

    @cached_property
    def _children(self) -> dict[int, list[TableNode]]:
        out: dict[int, list[TableNode]] = {}
        for t in self.tables:  # in the tree's order
            if t.parent_oid is not None:
                out.setdefault(t.parent_oid, []).append(t)
        return out

    @cached_property
    def _indexes(self) -> dict[int, list[IndexEntry]]:
        out: dict[int, list[IndexEntry]] = {}
        for i in sorted(self.indexes, key=lambda i: i.name):
            out.setdefault(i.table_oid, []).append(i)
        return out

    def children(self, oid: int) -> list[TableNode]:
        return list(self._children.get(oid, ()))

    def table(self, oid: int) -> TableNode:
        return self._by_oid[oid]

    def indexes_of(self, oid: int) -> list[IndexEntry]:
        """The table's indexes, in name order."""
        return list(self._indexes.get(oid, ()))

    def path(self, oid: int) -> tuple[int, ...]:
        """Oids from the root down to `oid`."""
        out = [oid]
        node = self.table(oid)
        while node.parent_oid is not None:
            out.append(node.parent_oid)
            node = self.table(node.parent_oid)
        return tuple(reversed(out))


@dataclass(frozen=True)
class IndexRequest:
    """The index asked for: key columns in order, unique or not, and a name (or None: the
    existing index of that definition, else a name chosen like PostgreSQL's)."""

    columns: tuple[str, ...]
    unique: bool = False
    name: str | None = None


class StepKind(StrEnum):
    CREATE_PARENT = "create_parent"
    """`CREATE INDEX ... ON ONLY` a partitioned table: no build, invalid until complete."""
    BUILD = "build"
    """`CREATE INDEX CONCURRENTLY` on a leaf partition (never in a transaction block)."""
    DROP_INVALID = "drop_invalid"
    """`DROP INDEX CONCURRENTLY` of an invalid index a killed build left behind."""
    ATTACH = "attach"
    """`ALTER INDEX parent_index ATTACH PARTITION partition_index`."""


@dataclass(frozen=True)
class IndexStep:
    """One statement of a build, on one table of the tree."""

    kind: StepKind
    table: TableNode
    """The table the index is on."""
    index: str
    """The index's name (in the table's schema)."""
    columns: tuple[str, ...]
    unique: bool
    path: tuple[int, ...]
    """Oids from the root down to `table`: a step that fails holds back its ancestors'."""
    parent_index: tuple[str, str] | None = None
    """ATTACH: (schema, name) of the index it is attached to."""

    @property
    def index_ident(self) -> sql.Identifier:
        return sql.Identifier(self.table.schema, self.index)

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.table.schema}.{self.index}"

    def statement(self) -> sql.Composed:
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        unique = sql.SQL("UNIQUE ") if self.unique else sql.SQL("")
        if self.kind == StepKind.CREATE_PARENT:
            return sql.SQL("CREATE {}INDEX {} ON ONLY {} ({})").format(
                unique, sql.Identifier(self.index), self.table.ident, cols
            )
        if self.kind == StepKind.BUILD:
            return sql.SQL("CREATE {}INDEX CONCURRENTLY {} ON {} ({})").format(
                unique, sql.Identifier(self.index), self.table.ident, cols
            )
        if self.kind == StepKind.DROP_INVALID:
            return sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(self.index_ident)
        assert self.parent_index is not None
        return sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
            sql.Identifier(*self.parent_index), self.index_ident
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.kind.value,
            "table": self.table.qualified,
            "index": f"{self.table.schema}.{self.index}",
            "attach_to": None if self.parent_index is None else ".".join(self.parent_index),
            "statement": self.statement().as_string(None),
        }


@dataclass(frozen=True)
class IndexPlan:
    """What is left to do for one index of a partitioned table."""

    table: str
    schema: str
    name: str
    """The parent's index, existing or to be made."""
    columns: tuple[str, ...]
    unique: bool
    definition: str
    existed: bool
    """The parent's index existed already (a resumed build, or nothing left to do)."""
    steps: tuple[IndexStep, ...] = ()
    notes: tuple[str, ...] = ()
    """What the build cannot do (a foreign-table partition) or leaves as is."""

    @property
    def qualified_index(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class StepResult:
    step: IndexStep
    outcome: Outcome
    reason: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.step.to_dict(),
            "outcome": self.outcome.value,
            "reason": self.reason,
            "attempts": self.attempts,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclass
class IndexReport:
    """What `create_index` did, and where the index stands after it."""

    table: str
    index: str
    """schema.name of the parent's index."""
    definition: str
    unique: bool
    existed: bool
    results: list[StepResult] = field(default_factory=list)
    valid: bool = False
    """The parent's index is valid: every partition's index is attached."""
    missing: list[str] = field(default_factory=list)
    """Partitions still lacking the index (skipped: a lock not granted within the budget, or
    a failure); running the build again resumes them."""
    notes: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.valid and all(r.outcome == Outcome.OK for r in self.results)

    def counts(self) -> dict[str, int]:
        out = {"built": 0, "attached": 0, "dropped_invalid": 0, "skipped": 0, "failed": 0}
        for r in self.results:
            if r.outcome == Outcome.SKIPPED:
                out["skipped"] += 1
            elif r.outcome == Outcome.FAILED:
                out["failed"] += 1
            elif r.step.kind == StepKind.BUILD:
                out["built"] += 1
            elif r.step.kind == StepKind.ATTACH:
                out["attached"] += 1
            elif r.step.kind == StepKind.DROP_INVALID:
                out["dropped_invalid"] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "index": self.index,
            "definition": self.definition,
            "unique": self.unique,
            "existed": self.existed,
            "valid": self.valid,
            "missing": self.missing,
            "notes": self.notes,
            "counts": self.counts(),
            "duration_ms": round(self.duration_ms, 3),
            "steps": [r.to_dict() for r in self.results],
        }


class Holding(StrEnum):
    """Where one partition stands for one index of its parent."""

    ATTACHED = "attached"
    """Its index is attached to the parent's (and valid, or being completed below)."""
    UNATTACHED = "unattached"
    """It has a valid index of the same definition, not attached yet."""
    INVALID = "invalid"
    """It holds an invalid index of the same definition (a killed build's leftover)."""
    MISSING = "missing"
    """No index of that definition."""


@dataclass(frozen=True)
class IndexState:
    """One index of a partitioned table and which partitions carry it."""

    table: str
    name: str
    definition: str
    unique: bool
    valid: bool
    constraint: bool
    partitions: int
    """Partitions at every depth (leaves and sub-partitioned ones)."""
    holdings: dict[str, Holding] = field(default_factory=dict)
    """schema.name of each partition that is not simply attached -> where it stands."""

    def lacking(self, holding: Holding) -> list[str]:
        return sorted(p for p, h in self.holdings.items() if h == holding)

    @property
    def attached(self) -> int:
        return self.partitions - len(self.holdings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "index": self.name,
            "definition": self.definition,
            "unique": self.unique,
            "valid": self.valid,
            "constraint": self.constraint,
            "partitions": self.partitions,
            "attached": self.attached,
            "missing": self.lacking(Holding.MISSING),
            "invalid": self.lacking(Holding.INVALID),
            "unattached": self.lacking(Holding.UNATTACHED),
        }
