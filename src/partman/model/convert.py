"""Converting an ordinary table into a partitioned one (issue 15), the pure part: the steps, their
order and plan text, the names of the objects a conversion makes, and the checks that refuse a
table before any DDL (a unique index without the partition key, a foreign key that could not be
pointed at a partitioned table).

The engine (`engine/convert_async.py`) reads the catalog into `SourceTable` and runs the steps;
everything that can be decided without a connection is decided here and unit tested.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ConfigError, IndexDefinitionError, NotPartitionedError
from .config import MAX_IDENTIFIER_BYTES
from .naming import short_hash
from .storage import PARAMETERS, Value, canonical, check_parameters
from .text import sql_name


class Step(enum.Enum):
    """The steps of a conversion, in order. A conversion's record says the last one done."""

    TWIN = "twin"
    """The partitioned twin created (columns, identity, indexes, constraints, grants, owner,
    replica identity), registered with partman and its partitions made by a pass."""
    CAPTURE = "capture"
    """A trigger on the source writes the key of every changed row into the change log."""
    COPY = "copy"
    """Every row copied in keyset batches, the change log replayed as it goes."""
    VERIFY = "verify"
    """Row counts and a checksum of the whole table, source against twin, are equal."""
    SWAP = "swap"
    """Names swapped in one short transaction: the twin has the table's name, the source is
    kept as `<name>_old`, changes to the new table are captured back for a rollback."""

    @property
    def number(self) -> int:
        return list(Step).index(self) + 1


class State(enum.Enum):
    """Where a conversion stands, as recorded in `conversions.state`."""

    PLANNED = "planned"
    TWIN = "twin"
    CAPTURE = "capture"
    COPY = "copy"
    VERIFY = "verify"
    SWAP = "swap"
    FINISHED = "finished"

    @property
    def done(self) -> tuple[Step, ...]:
        """The steps this state says are done."""
        if self is State.PLANNED:
            return ()
        if self is State.FINISHED:
            return tuple(Step)
        last = Step(self.value)
        return tuple(s for s in Step if s.number <= last.number)


def remaining(state: State | None, until: Step = Step.SWAP) -> list[Step]:
    """The steps still to run, in order, up to and including `until`."""
    done = state.done if state is not None else ()
    return [s for s in Step if s not in done and s.number <= until.number]


def derived_name(name: str, suffix: str) -> str:
    """`<name>_<suffix>`, cut to 63 bytes with a hash of the full name when it is too long."""
    full = f"{name}_{suffix}"
    if len(full.encode()) <= MAX_IDENTIFIER_BYTES:
        return full
    tag = short_hash(name, suffix)
    budget = MAX_IDENTIFIER_BYTES - len(suffix) - len(tag) - 2
    head = name.encode()[:budget].decode(errors="ignore")
    return f"{head}_{tag}_{suffix}"


def twin_name(name: str) -> str:
    """The partitioned twin's name while the conversion runs."""
    return derived_name(name, "partman_new")


def old_name(name: str) -> str:
    """The source's name once swapped (kept for a rollback until `finish`)."""
    return derived_name(name, "old")


def log_name(conversion_id: int) -> str:
    """The change log table, in partman's metadata schema."""
    return f"convert_{conversion_id}_log"


def function_name(conversion_id: int) -> str:
    """The capture trigger's function, in partman's metadata schema."""
    return f"convert_{conversion_id}_capture"


TRIGGER_NAME = "partman_convert_capture"
TRUNCATE_TRIGGER_NAME = "partman_convert_truncate"
"""The BEFORE TRUNCATE statement trigger that refuses a TRUNCATE of the table the capture
trigger is on (it goes and comes with the capture trigger)."""


def truncate_function_name(conversion_id: int) -> str:
    """The function of the TRUNCATE guard, in partman's metadata schema."""
    return f"convert_{conversion_id}_truncate"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """As `format_type` prints it."""
    not_null: bool = False
    identity: str = ""
    """'' (none), 'a' (GENERATED ALWAYS) or 'd' (BY DEFAULT)."""
    generated: str = ""
    """'' or 's' (a stored generated column: never inserted into)."""
    statistics: int | None = None
    """`ALTER COLUMN ... SET STATISTICS`, when not the default."""
    options: tuple[str, ...] = ()
    """`ALTER COLUMN ... SET (n_distinct = ...)`, as `pg_attribute.attoptions` prints them."""


@dataclass(frozen=True)
class Index:
    name: str
    definition: str
    """`pg_get_indexdef`."""
    columns: tuple[str | None, ...]
    """Key columns in order; None for an expression."""
    unique: bool = False
    primary: bool = False
    constraint: str | None = None
    """'p', 'u' or 'x' when a constraint owns the index."""
    predicate: str | None = None
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of another table referencing the source."""

    name: str
    schema: str
    table: str
    columns: tuple[str, ...]
    referenced: tuple[str, ...]
    definition: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class SourceTable:
    """What the catalog says about the table to convert."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    referenced_by: tuple[ForeignKey, ...] = ()
    rows_estimate: int = 0
    reloptions: tuple[str, ...] = ()
    """`pg_class.reloptions` of the table, and its toast table's prefixed `toast.`."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def quoted(self) -> str:
        """The name as SQL a message suggests running (quoted where it needs to be)."""
        return sql_name(self.schema, self.name)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def insertable(self) -> tuple[str, ...]:
        """Columns a copy writes (a generated column is computed again by the twin)."""
        return tuple(c.name for c in self.columns if not c.generated)


@dataclass(frozen=True)
class TwinIndex:
    """An index of the source as the twin gets it."""

    source: Index
    columns: tuple[str, ...] | None
    """The twin's key columns when the index is rebuilt from columns (unique ones, perhaps
    extended by the partition key); None: the source's definition is reused as it is."""
    extended: tuple[str, ...] = ()
    """Partition key columns appended to a unique index (`extend_unique`)."""


def twin_indexes(
    source: SourceTable, key: Sequence[str], *, extend_unique: bool
) -> list[TwinIndex]:
    """Each index of the source as the twin will have it; raises before any DDL for one that a
    partitioned table cannot have."""
    out: list[TwinIndex] = []
    for index in source.indexes:
        if index.constraint == "x":
            raise IndexDefinitionError(
                f"{source.qualified}: exclusion constraint {index.name} cannot be carried to a "
                "partitioned table by convert; drop it first (and add it back to the converted "
                "table's partitions yourself), nothing was changed"
            )
        if not index.unique:
            out.append(TwinIndex(index, None))
            continue
        if any(c is None for c in index.columns):
            raise IndexDefinitionError(
                f"{source.qualified}: unique index {index.name} ({index.definition}) is on an "
                "expression; a partitioned table's unique index must be on plain columns "
                "including the partition key. Drop it or make it non-unique first; nothing was "
                "changed"
            )
        columns = tuple(c for c in index.columns if c is not None)
        missing = tuple(k for k in key if k not in columns)
        if missing and not extend_unique:
            raise IndexDefinitionError(
                f"{source.qualified}: unique index {index.name} on ({', '.join(columns)}) lacks "
                f"the partition key column(s) {', '.join(missing)}: PostgreSQL cannot enforce it "
                "on a partitioned table. Pass extend_unique=True (--extend-unique) to make the "
                f"twin's ({', '.join(columns + missing)}) (uniqueness then holds per partition "
                "key value), or drop the index first; nothing was changed"
            )
        out.append(TwinIndex(index, columns + missing, missing))
    return out


def carried_parameters(
    source: SourceTable, over: Mapping[str, Value]
) -> tuple[dict[str, Value], list[str]]:
    """The storage parameters the twin's partitions get: the source's reloptions (PostgreSQL
    refuses them on a partitioned parent, so partman gives them to each partition it makes),
    with `over` (the Table's own `storage_parameters`) winning; and the source's options
    that no partition can take, to be named in a notice."""
    carried: dict[str, Value] = {}
    dropped: list[str] = []
    for option in source.reloptions:
        name = option.partition("=")[0]
        _, value = canonical(option)
        if PARAMETERS.get(name) is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        try:
            carried.update(check_parameters({name: value}, None))
        except ConfigError:
            dropped.append(option)
    carried.update(over)
    return dict(sorted(carried.items())), dropped


@dataclass(frozen=True)
class ForeignKeyPlan:
    key: ForeignKey
    repointed: bool
    why: str = ""


def foreign_key_plans(source: SourceTable, twin: Sequence[TwinIndex]) -> list[ForeignKeyPlan]:
    """Which foreign keys referencing the source the swap points at the new table: those whose
    referenced columns are exactly a unique key the twin keeps unchanged. The others are refused
    (`check_foreign_keys`): left on the old table, each insert into the referencing table would
    fail for a row that only the new table has."""
    unique = {t.columns for t in twin if t.columns is not None and not t.extended}
    plans: list[ForeignKeyPlan] = []
    for fk in source.referenced_by:
        if any(set(fk.referenced) == set(cols) for cols in unique):
            plans.append(ForeignKeyPlan(fk, True))
        else:
            plans.append(
                ForeignKeyPlan(
                    fk,
                    False,
                    f"foreign key {fk.name} of {fk.qualified} ({', '.join(fk.columns)}) "
                    f"references ({', '.join(fk.referenced)}), which cannot be a unique key of "
                    "the partitioned table (a partitioned table's unique keys must include "
                    "the partition key)",
                )
            )
    return plans


def check_foreign_keys(source: SourceTable, plans: Sequence[ForeignKeyPlan]) -> None:
    refused = [p.why for p in plans if not p.repointed]
    if refused:
        raise NotPartitionedError(
            f"{source.qualified} cannot be converted with this partition key: "
            + "; ".join(refused)
            + ". Partition by a column of that key (e.g. the id itself), or drop the foreign "
            "key first; nothing was changed"
        )


def batch_count(rows: int, batch_rows: int) -> int:
    """How many copy batches `rows` rows take (the last one may be short; an empty table is one
    batch that finds nothing)."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be >= 1")
    return max(1, -(-rows // batch_rows))


@dataclass
class StepPlan:
    """One step as `--plan` shows it."""

    step: Step
    done: bool
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"step": self.step.value, "done": self.done, "lines": list(self.lines)}


@dataclass
class ConvertPlan:
    """What a conversion will do (and what it has done), step by step."""

    table: str
    twin: str
    old: str
    state: State | None
    steps: list[StepPlan]
    notes: list[str] = field(default_factory=list)
    direction: str = "convert"
    """"convert", or "unpartition" (`model.unpartition.Direction`)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "table": self.table,
            "twin": self.twin,
            "old": self.old,
            "state": None if self.state is None else self.state.value,
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }


@dataclass
class Progress:
    """Where the copy stands: rows copied, an estimate of the total, log entries replayed."""

    step: Step
    rows_copied: int = 0
    rows_total: int = 0
    replayed: int = 0
    pending: int = 0


@dataclass
class ConvertReport:
    """What a run did."""

    table: str
    state: State
    steps_run: list[Step] = field(default_factory=list)
    rows_copied: int = 0
    replayed: int = 0
    verified_rows: int | None = None
    checksum: str | None = None
    partitions: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    swap_ms: float | None = None
    swap_attempts: int = 0
    direction: str = "convert"
    """"convert", or "unpartition" (`model.unpartition.Direction`)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "table": self.table,
            "state": self.state.value,
            "steps_run": [s.value for s in self.steps_run],
            "rows_copied": self.rows_copied,
            "replayed": self.replayed,
            "verified_rows": self.verified_rows,
            "checksum": self.checksum,
            "partitions": dict(self.partitions),
            "notes": list(self.notes),
            "swap_ms": self.swap_ms,
            "swap_attempts": self.swap_attempts,
        }
