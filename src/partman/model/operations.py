"""Operation types, each with its reason and its SQL, composed with psycopg.sql.

An operation renders only its DDL; the executor wraps it with the lock budget, the ownership
records and the audit row, so that a crash leaves each step wholly done or wholly undone, and
the next pass can tell from the catalog and the metadata which step to take next.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from psycopg import sql

from .bounds import BoundValue
from .columns import TenantValue
from .keys import KeyValue
from .naming import MAX_IDENTIFIER_BYTES, short_hash
from .snapshot import PLAIN, Traits
from .storage import parameter_sql
from .text import iso

LIKE_OPTIONS = sql.SQL(
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION "
    "INCLUDING GENERATED INCLUDING INDEXES INCLUDING STATISTICS"
)
"""What `LIKE` copies from the parent. Identity is left out (a partition may not have its own);
foreign keys and row triggers are cloned by ATTACH itself."""

TimeBound = KeyValue
"""A bound on the range column: time, an epoch or id number, a UUIDv7 (`model.keys`)."""

PRIVILEGES = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}
)
"""Table privileges as `aclexplode` names them: keywords, so checked before they are sent."""

_IDENTITY = {"f": sql.SQL("FULL"), "n": sql.SQL("NOTHING")}


@dataclass(frozen=True)
class HashLevel:
    """Each period's partition is itself PARTITION BY HASH (`column`), with `modulus` leaf
    partitions made with it (`Table.sub_partition_by`)."""

    column: str
    modulus: int

    def leaf_name(self, period: str, remainder: int) -> str:
        return leaf_name(period, f"h{remainder}")


def leaf_name(partition: str, suffix: str) -> str:
    """A sub-partition's name: the partition's, then `_<suffix>`, cut to 63 bytes with a hash
    of what was cut (as `model.naming.partition_name` does)."""
    name = f"{partition}_{suffix}"
    if len(name.encode()) <= MAX_IDENTIFIER_BYTES:
        return name
    tag = short_hash(partition)
    budget = MAX_IDENTIFIER_BYTES - len(suffix) - len(tag) - 2
    head = partition.encode()[:budget].decode(errors="ignore")
    return f"{head}_{tag}_{suffix}"


def create_statements(
    partition: sql.Identifier,
    parent: sql.Identifier,
    traits: Traits,
    *,
    by: sql.Composable | None = None,
) -> list[sql.Composed]:
    """A new partition's table, with what its parent declares and LIKE does not copy: access
    method, storage parameters (its table's `storage_parameters`) and tablespace in the CREATE
    itself, then replica identity, grants and owner, all before the ATTACH (in the same
    transaction: a crash leaves nothing half-made). A replica identity USING INDEX is set after
    the ATTACH, once the partition's index is known (`identity_index_statement`)."""
    create = sql.SQL("CREATE TABLE {} (LIKE {} {})").format(partition, parent, LIKE_OPTIONS)
    if by is not None:  # itself partitioned: no storage of its own, so no WITH (...)
        create += sql.SQL(" PARTITION BY {}").format(by)
    if traits.access_method is not None and by is None:
        create += sql.SQL(" USING {}").format(sql.Identifier(traits.access_method))
    if traits.options and by is None:
        create += sql.SQL(" WITH ({})").format(
            sql.SQL(", ").join(parameter_sql(o) for o in traits.options)
        )
    if traits.tablespace is not None:
        create += sql.SQL(" TABLESPACE {}").format(sql.Identifier(traits.tablespace))
    out = [create]
    identity = _IDENTITY.get(traits.replica_identity)
    if identity is not None:
        out.append(sql.SQL("ALTER TABLE {} REPLICA IDENTITY {}").format(partition, identity))
    out += grant_statements(partition, traits)
    if not traits.owner_is_current:
        out.append(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(partition, sql.Identifier(traits.owner))
        )
    return out


def grant_statements(table: sql.Identifier, traits: Traits) -> list[sql.Composed]:
    """The parent's grants, one GRANT per grantee and grant option."""
    by_grantee: dict[tuple[str | None, bool], list[str]] = {}
    for g in traits.grants:
        if g.privilege not in PRIVILEGES:
            raise ValueError(f"unexpected privilege {g.privilege!r} in a table's ACL")
        by_grantee.setdefault((g.grantee, g.grantable), []).append(g.privilege)
    out = []
    for (grantee, grantable), privileges in by_grantee.items():
        statement = sql.SQL("GRANT {} ON TABLE {} TO {}").format(
            sql.SQL(", ").join(sql.SQL(p) for p in privileges),
            table,
            sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee),
        )
        if grantable:
            statement += sql.SQL(" WITH GRANT OPTION")
        out.append(statement)
    return out


def identity_index_statement(partition: sql.Identifier, index: str) -> sql.Composed:
    """REPLICA IDENTITY USING INDEX, with the partition's own index of the parent's one."""
    return sql.SQL("ALTER TABLE {} REPLICA IDENTITY USING INDEX {}").format(
        partition, sql.Identifier(index)
    )


def _values(values: Sequence[BoundValue]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Literal(v) for v in values)


def bound_sql(lower: Sequence[BoundValue], upper: Sequence[BoundValue]) -> sql.Composed:
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(_values(lower), _values(upper))


def render(statement: sql.Composable) -> str:
    return statement.as_string(None)


class Stage(StrEnum):
    """Where retention found a partition: what a previous pass (or a crash) left."""

    ATTACHED = "attached"
    """The normal case: still a partition of its parent."""
    PENDING = "pending"
    """An interrupted `DETACH ... CONCURRENTLY`: finalized first."""
    DETACHED = "detached"
    """Detached, not yet dropped, kept or archived."""


@dataclass(frozen=True)
class Operation:
    """One change to one partition."""

    parent_schema: str
    """The partitioned parent's schema."""
    parent_name: str
    """The partitioned parent."""
    tenant: TenantValue | None
    """The tenant, as a value of the tenant column; None for a single-tenant table or the
    default partition."""
    partition_schema: str
    partition_name: str
    lower: TimeBound | None
    """Start of the partition's range on the time column (inclusive); None for the default."""
    upper: TimeBound | None
    """End of the partition's range (exclusive); None for the default."""
    reason: str
    """Why the planner chose it, for people ("premake: 3 ahead", "retention 30 days: ...")."""

    @property
    def kind(self) -> str:
        """One of "create", "create_default", "drop", "detach", "archive", "forget"."""
        return "operation"

    @property
    def parent(self) -> sql.Identifier:
        return sql.Identifier(self.parent_schema, self.parent_name)

    @property
    def partition(self) -> sql.Identifier:
        return sql.Identifier(self.partition_schema, self.partition_name)

    @property
    def parent_qualified(self) -> str:
        return f"{self.parent_schema}.{self.parent_name}"

    @property
    def partition_qualified(self) -> str:
        return f"{self.partition_schema}.{self.partition_name}"

    def statements(self) -> list[sql.Composed]:
        """Its DDL, composed with psycopg.sql (the executor adds the lock budget, ownership
        records and audit row around it)."""
        return []

    @property
    def sql(self) -> str:
        """Its DDL as text, for people and plans."""
        statements = self.statements()
        if not statements:
            return "-- partman metadata only"
        return ";\n".join(render(s) for s in statements) + ";"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.parent_qualified,
            "tenant": None if self.tenant is None else str(self.tenant),
            "partition": self.partition_qualified,
            "from": iso(self.lower),
            "to": iso(self.upper),
            "reason": self.reason,
            "sql": self.sql,
        }


@dataclass(frozen=True)
class MoveRows:
    """Where rows of a new partition's range may be waiting: the parent's DEFAULT partition."""

    default_schema: str
    default_name: str
    columns: tuple[str, ...]  # insertable columns (generated ones are recomputed)
    tenant_column: str | None
    time_column: str

    @property
    def default(self) -> sql.Identifier:
        return sql.Identifier(self.default_schema, self.default_name)


@dataclass(frozen=True)
class CreatePartition(Operation):
    """CREATE (LIKE parent) + ATTACH: the parent only takes SHARE UPDATE EXCLUSIVE, which does
    not conflict with the application's reads and writes (CREATE ... PARTITION OF would take
    ACCESS EXCLUSIVE on the parent)."""

    lower_key: tuple[BoundValue, ...] = ()
    upper_key: tuple[BoundValue, ...] = ()
    move: MoveRows | None = None
    """Set when the parent has a default partition: its rows of this range move first."""
    resume_staging: bool = False
    """The table exists already, unattached, partly filled from the default (a pass was
    interrupted while moving rows): finish moving and attach it."""
    traits: Traits = PLAIN
    """What the parent declares that the new partition carries (`create_statements`)."""
    hash_level: HashLevel | None = None
    """The period is itself PARTITION BY HASH, its leaves made with it, before it is attached
    (one transaction: it is never live without all of them)."""
    like: tuple[str, str] | None = None
    """The table new tables copy (LIKE): the parent, unless that is itself a partition under
    construction (a LIST tenant's partition): then the top parent."""

    @property
    def kind(self) -> str:
        return "create"

    def create_statement(self) -> sql.Composed:
        """The CREATE alone (`create_statements` has what comes with it)."""
        return self.create_statements()[0]

    @property
    def template(self) -> sql.Identifier:
        return self.parent if self.like is None else sql.Identifier(*self.like)

    def create_statements(self) -> list[sql.Composed]:
        level = self.hash_level
        if level is None:
            return create_statements(self.partition, self.template, self.traits)
        by = sql.SQL("HASH ({})").format(sql.Identifier(level.column))
        out = create_statements(self.partition, self.template, self.traits, by=by)
        for remainder in range(level.modulus):
            leaf = sql.Identifier(
                self.partition_schema, level.leaf_name(self.partition_name, remainder)
            )
            out += create_statements(leaf, self.template, self.traits)
            out.append(
                sql.SQL(
                    "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES WITH (MODULUS {}, REMAINDER {})"
                ).format(self.partition, leaf, sql.Literal(level.modulus), sql.Literal(remainder))
            )
        return out

    def attach_statement(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
            self.parent, self.partition, bound_sql(self.lower_key, self.upper_key)
        )

    def range_condition(self) -> sql.Composed:
        """Rows of this partition's range, as a WHERE condition on the default partition."""
        assert self.move is not None and self.lower is not None and self.upper is not None
        time = sql.Identifier(self.move.time_column)
        parts = [
            sql.SQL("{} >= {}").format(time, sql.Literal(self.lower)),
            sql.SQL("{} < {}").format(time, sql.Literal(self.upper)),
        ]
        if self.move.tenant_column is not None:
            tenant = sql.SQL("{} = {}").format(
                sql.Identifier(self.move.tenant_column), sql.Literal(self.tenant)
            )
            parts.insert(0, tenant)
        return sql.SQL(" AND ").join(parts)

    def move_statement(self, limit: int | None) -> sql.Composed:
        """Move rows from the default into the new table in one statement: a row is deleted
        and inserted by the same command, so it is never lost or seen twice."""
        assert self.move is not None
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.move.columns)
        where = self.range_condition()
        if limit is not None:
            where = sql.SQL("ctid = ANY(ARRAY(SELECT ctid FROM {} WHERE {} LIMIT {}))").format(
                self.move.default, where, sql.Literal(limit)
            )
        return sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE {} RETURNING {}) "
            "INSERT INTO {} ({}) SELECT {} FROM moved"
        ).format(self.move.default, where, columns, self.partition, columns, columns)

    def statements(self) -> list[sql.Composed]:
        out = [] if self.resume_staging else self.create_statements()
        if self.move is not None:
            out.append(self.move_statement(None))
        out.append(self.attach_statement())
        return out


@dataclass(frozen=True)
class CreateTenantPartition(CreatePartition):
    """A tenant's partition of a LIST parent, itself PARTITION BY RANGE (time), with its first
    periods (`children`, each a CreatePartition of it): all made while it is detached, and it
    is attached last, in one transaction. No moment sees it live and short of its periods, so
    a crash never leaves a tenant whose rows would be rejected by a live partition."""

    time_column: str = ""
    children: tuple[CreatePartition, ...] = ()

    def create_statements(self) -> list[sql.Composed]:
        by = sql.SQL("RANGE ({})").format(sql.Identifier(self.time_column))
        out = create_statements(self.partition, self.template, self.traits, by=by)
        for child in self.children:
            out += child.create_statements()
            out.append(child.attach_statement())
        return out

    def attach_statement(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES IN ({})").format(
            self.parent, self.partition, sql.Literal(self.tenant)
        )

    def statements(self) -> list[sql.Composed]:
        return [*self.create_statements(), self.attach_statement()]


@dataclass(frozen=True)
class CreateDefaultPartition(Operation):
    """The DEFAULT partition a table asked for (`Table.default_partition`)."""

    traits: Traits = PLAIN
    """What the parent declares that the new partition carries (`create_statements`)."""

    @property
    def kind(self) -> str:
        return "create_default"

    def statements(self) -> list[sql.Composed]:
        return [
            *create_statements(self.partition, self.parent, self.traits),
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} DEFAULT").format(
                self.parent, self.partition
            ),
        ]


@dataclass(frozen=True)
class RetirePartition(Operation):
    """Retention: detach an expired partition, then drop it, keep it, or archive it.

    `stage` says where a previous pass left it: "attached" (the normal case), "pending" (an
    interrupted DETACH CONCURRENTLY: FINALIZE it) or "detached" (detached, next step not
    done). The pre-drop hook may change `action` or skip it, just before it runs.
    """

    action: str = "drop"  # "drop" | "detach" | "archive" | "export"
    """What happens after the detach: "drop", "detach" (keep the table), "archive" or "export"
    (written to Parquet and checked, then dropped: `engine/export_async.py`)."""
    archive_schema: str | None = None
    """Where "archive" moves the table."""
    export_location: str | None = None
    """Where "export" writes the Parquet file (a directory or an fsspec URL)."""
    oid: int = 0
    """The partition's oid when the plan was made (checked again before the detach)."""
    bound_text: str = ""
    """The partition's bound as the catalog shows it."""
    estimated_rows: int | None = None
    """The catalog's row estimate (None until the table is analyzed)."""
    cutoff: TimeBound | None = None
    """now - retention: no row at or after it may be in the partition when it is detached."""
    time_column: str = ""
    """The time column, read to check the partition's newest row."""
    concurrently: bool = True  # DETACH ... CONCURRENTLY (impossible with a default partition)
    """Detach with CONCURRENTLY (False when the parent has a default partition)."""
    stage: Stage = Stage.ATTACHED
    """Where a previous pass left it: "attached", "pending" or "detached"."""
    sub_partitioned: bool = False
    """Its rows are in partitions of its own (a HASH level): archive moves them with it."""

    @property
    def kind(self) -> str:
        return self.action

    def detach_statement(self) -> sql.Composed:
        if self.stage == Stage.PENDING:
            return sql.SQL("ALTER TABLE {} DETACH PARTITION {} FINALIZE").format(
                self.parent, self.partition
            )
        mode = sql.SQL(" CONCURRENTLY") if self.concurrently else sql.SQL("")
        return sql.SQL("ALTER TABLE {} DETACH PARTITION {}{}").format(
            self.parent, self.partition, mode
        )

    def finish_statements(self, action: str) -> list[sql.Composed]:
        if action == "drop":
            return [sql.SQL("DROP TABLE {}").format(self.partition)]
        if action == "archive":
            assert self.archive_schema is not None
            target = sql.Identifier(self.archive_schema)
            moves = [sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(self.partition, target)]
            if self.sub_partitioned:
                moves.insert(
                    0,
                    _move_subtree(
                        (self.partition_schema, self.partition_name), self.archive_schema
                    ),
                )
            return [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(target), *moves]
        return []

    def statements(self) -> list[sql.Composed]:
        first = [] if self.stage == Stage.DETACHED else [self.detach_statement()]
        if self.action == "export":  # the DROP only once the file is written and checked
            return [*first, sql.SQL("DROP TABLE {}").format(self.partition)]
        return first + self.finish_statements(self.action)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "stage": self.stage.value,
            "archive_schema": self.archive_schema,
            "export_location": self.export_location,
            "estimated_rows": self.estimated_rows,
        }


def _move_subtree(root: tuple[str, str], schema: str) -> sql.Composed:
    """Every partition below `root` into `schema` (SET SCHEMA moves one table, not its
    partitions). A DO block cannot take parameters: the names reach it through two settings
    local to the transaction, and it quotes what it runs with format()'s %I."""
    return sql.SQL(
        "SELECT set_config('partman.subtree', {}, true), "
        "set_config('partman.subtree_schema', {}, true); "
        "DO $partman$ DECLARE leaf regclass; BEGIN "
        "FOR leaf IN SELECT relid FROM pg_partition_tree("
        "current_setting('partman.subtree')::regclass) WHERE level > 0 ORDER BY level DESC LOOP "
        "EXECUTE format('ALTER TABLE %s SET SCHEMA %I', leaf, "
        "current_setting('partman.subtree_schema')); "
        "END LOOP; END $partman$"
    ).format(sql.Literal(_quoted(root)), sql.Literal(schema))


def _quoted(name: tuple[str, str]) -> str:
    """ "schema"."name", as regclass reads it (each part quoted, as PostgreSQL quotes them)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name)


DropPartition = RetirePartition
"""The name the seed's vocabulary uses; retention's operation is a RetirePartition."""


@dataclass(frozen=True)
class ForgetPartition(Operation):
    """An ownership record whose table no longer exists (dropped by hand): tidy the metadata."""

    @property
    def kind(self) -> str:
        return "forget"


@dataclass(frozen=True)
class Notice:
    """Something a person should know that is not an operation: left alone, and why."""

    level: str  # "info" | "warning" | "error"
    """One of "info", "warning", "error"."""
    table: str
    """The managed table, "schema.name"."""
    message: str
    tenant: str | None = None
    partition: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "table": self.table,
            "tenant": self.tenant,
            "partition": self.partition,
            "message": self.message,
        }


@dataclass(frozen=True)
class Plan:
    """What a pass would do, in order: creates first (runway is urgent), then retention."""

    now: dt.datetime
    """The instant the plan was made for."""
    operations: tuple[Operation, ...] = ()
    """Creates first, then retention; a Plan also iterates over them and has a len()."""
    notices: tuple[Notice, ...] = ()
    """What a person should know and that is not an operation (left alone, and why)."""
    tables: tuple[str, ...] = field(default=())
    """The managed tables the plan looked at."""

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __getitem__(self, index: int) -> Operation:
        return self.operations[index]

    @property
    def creates(self) -> list[Operation]:
        """The CreatePartition operations."""
        return [op for op in self.operations if isinstance(op, CreatePartition)]

    @property
    def drops(self) -> list[Operation]:
        """The RetirePartition operations (drop, detach or archive)."""
        return [op for op in self.operations if isinstance(op, RetirePartition)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "operations": [op.to_dict() for op in self.operations],
            "notices": [n.to_dict() for n in self.notices],
        }

    def __str__(self) -> str:
        if not self.operations and not self.notices:
            return "Nothing to do: every managed table is covered and nothing has expired."
        lines = [f"Plan at {self.now.isoformat()}: {len(self.operations)} operation(s)"]
        for op in self.operations:
            sign = "+" if op.kind.startswith("create") else "~" if op.kind == "rollup" else "-"
            tenant = "" if op.tenant is None else f" tenant={op.tenant!s}"
            span = "" if op.lower is None else f" [{iso(op.lower)}, {iso(op.upper)})"
            lines.append(f"  {sign} {op.kind} {op.partition_qualified}{span}{tenant}: {op.reason}")
        for n in self.notices:
            lines.append(f"  ! {n.level}: {n.table}: {n.message}")
        return "\n".join(lines)


ROLLUP_CHECK = "partman_rollup_bound"
"""The CHECK constraint a coarse partition carries while it is built detached: it proves its
rows fit its bound, so ATTACH does not scan it under the parent's lock; dropped once attached."""


@dataclass(frozen=True)
class FinePartition:
    """One fine partition a roll-up merges: its name and range (time values), and its oid when
    the plan was made (checked again before the swap)."""

    schema: str
    name: str
    lower: TimeBound
    upper: TimeBound
    oid: int = 0

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class RollupPartition(Operation):
    """Merge the fine partitions of one coarse period into one partition of that period
    (`Table.rollup_after`): build it detached (CREATE ... LIKE, with a CHECK of its bound),
    copy each fine partition's rows into it (one transaction each, while they stay live), then
    in one short transaction under the lock budget: lock the fine partitions against writes,
    copy again any that changed since, check the row counts, drop the fine partitions and
    ATTACH the coarse one. `resume`: a previous pass built the table already (its "staging"
    record, action "rollup"); `abandon`: drop that table instead (its period no longer needs
    it)."""

    lower_key: tuple[BoundValue, ...] = ()
    upper_key: tuple[BoundValue, ...] = ()
    fines: tuple[FinePartition, ...] = ()
    time_column: str = ""
    columns: tuple[str, ...] = ()
    """Insertable columns (generated ones are recomputed)."""
    tenant_column: str | None = None
    """The tenant column when it is in the parent's key (RANGE (tenant, time))."""
    traits: Traits = PLAIN
    like: tuple[str, str] | None = None
    resume: bool = False
    abandon: bool = False

    @property
    def kind(self) -> str:
        return "rollup"

    @property
    def template(self) -> sql.Identifier:
        return self.parent if self.like is None else sql.Identifier(*self.like)

    def range_check(self, lower: TimeBound, upper: TimeBound) -> sql.Composed:
        time = sql.Identifier(self.time_column)
        return sql.SQL("{} IS NOT NULL AND {} >= {} AND {} < {}").format(
            time, time, sql.Literal(lower), time, sql.Literal(upper)
        )

    def create_statements(self) -> list[sql.Composed]:
        assert self.lower is not None and self.upper is not None
        check = self.range_check(self.lower, self.upper)
        if self.tenant_column is not None:
            tenant = sql.Identifier(self.tenant_column)
            check = sql.SQL("{} IS NOT NULL AND {} = {} AND {}").format(
                tenant, tenant, sql.Literal(self.tenant), check
            )
        return [
            *create_statements(self.partition, self.template, self.traits),
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})").format(
                self.partition, sql.Identifier(ROLLUP_CHECK), check
            ),
        ]

    def copy_statements(
        self,
        fine: FinePartition,
        blocks: tuple[int, int | None] | None = None,
        *,
        replace: bool = True,
        seen: sql.Composable | None = None,
    ) -> list[sql.Composed]:
        """Replace the coarse table's rows of `fine`'s range by `fine`'s rows (idempotent: a
        copy redone after a crash or a late row never doubles one). A large partition is
        copied in batches of its blocks, `blocks` = [first, end) (None: to the last block);
        only the first batch (`replace`) clears the range, and the later ones take only the
        rows the first one's snapshot saw (`seen`, a condition on `xmin`): a row updated
        meanwhile is copied by the swap, never twice."""
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM ONLY {}").format(
            self.partition, columns, columns, fine.table
        )
        if blocks is not None:
            first, end = blocks
            insert += sql.SQL(" WHERE ctid >= {}::tid").format(sql.Literal(f"({first},0)"))
            if end is not None:
                insert += sql.SQL(" AND ctid < {}::tid").format(sql.Literal(f"({end},0)"))
            if seen is not None:
                insert += sql.SQL(" AND {}").format(seen)
        if not replace:
            return [insert]
        return [
            sql.SQL("DELETE FROM {} WHERE {}").format(
                self.partition, self.range_check(fine.lower, fine.upper)
            ),
            insert,
        ]

    def lock_statement(self) -> sql.Composed:
        """Writes to the fine partitions wait (reads go on; the parent is not locked yet)."""
        return sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.SQL("ONLY {}").format(f.table) for f in self.fines)
        )

    def attach_statement(self) -> sql.Composed:
        return sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
            self.parent, self.partition, bound_sql(self.lower_key, self.upper_key)
        )

    def swap_statements(self) -> list[sql.Composed]:
        """Drop the fine partitions (DROP of an attached partition detaches it: ACCESS
        EXCLUSIVE on the parent, until the commit), attach the coarse one (its CHECK proves
        its rows fit), then drop the CHECK."""
        return [
            sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(f.table for f in self.fines)),
            self.attach_statement(),
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                self.partition, sql.Identifier(ROLLUP_CHECK)
            ),
        ]

    def statements(self) -> list[sql.Composed]:
        if self.abandon:
            return [sql.SQL("DROP TABLE {}").format(self.partition)]
        out = [] if self.resume else self.create_statements()
        for fine in self.fines:
            out += self.copy_statements(fine)
        return [*out, self.lock_statement(), *self.swap_statements()]

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "fine_partitions": [f.qualified_name for f in self.fines],
            "resume": self.resume,
            "abandon": self.abandon,
        }
