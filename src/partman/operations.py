"""Operation types, each with its reason and its SQL, composed with psycopg.sql.

An operation renders only its DDL; the executor wraps it with the lock budget, the ownership
records and the audit row in one transaction, so a crash leaves it either wholly done or
wholly undone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from psycopg import sql

from .bounds import BoundValue
from .columns import TenantValue

LIKE_OPTIONS = sql.SQL(
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION "
    "INCLUDING GENERATED INCLUDING INDEXES INCLUDING STATISTICS"
)
"""What `LIKE` copies from the parent. Identity is left out (a partition may not have its own);
foreign keys and row triggers are cloned by ATTACH itself."""


def _values(values: Sequence[BoundValue]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Literal(v) for v in values)


def bound_sql(lower: Sequence[BoundValue], upper: Sequence[BoundValue]) -> sql.Composed:
    return sql.SQL("FOR VALUES FROM ({}) TO ({})").format(_values(lower), _values(upper))


def render(statement: sql.Composable) -> str:
    return statement.as_string(None)


@dataclass(frozen=True)
class Operation:
    """One change to one partition."""

    kind: ClassVar[str] = "operation"
    parent_schema: str
    parent_name: str
    tenant: TenantValue | None
    partition_schema: str
    partition_name: str
    lower: dt.datetime | dt.date
    upper: dt.datetime | dt.date
    reason: str

    @property
    def parent(self) -> sql.Identifier:
        return sql.Identifier(self.parent_schema, self.parent_name)

    @property
    def partition(self) -> sql.Identifier:
        return sql.Identifier(self.partition_schema, self.partition_name)

    @property
    def parent_qualified(self) -> str:
        return f"{self.parent_schema}.{self.parent_name}"

    def statements(self) -> list[sql.Composed]:
        raise NotImplementedError

    @property
    def sql(self) -> str:
        return ";\n".join(render(s) for s in self.statements()) + ";"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": self.parent_qualified,
            "tenant": None if self.tenant is None else str(self.tenant),
            "partition": f"{self.partition_schema}.{self.partition_name}",
            "from": self.lower.isoformat(),
            "to": self.upper.isoformat(),
            "reason": self.reason,
            "sql": self.sql,
        }


@dataclass(frozen=True)
class CreatePartition(Operation):
    """CREATE (LIKE parent) + ATTACH: the parent only takes SHARE UPDATE EXCLUSIVE, which does
    not conflict with the application's reads and writes (CREATE ... PARTITION OF would take
    ACCESS EXCLUSIVE on the parent)."""

    kind: ClassVar[str] = "create"
    lower_key: tuple[BoundValue, ...] = ()
    upper_key: tuple[BoundValue, ...] = ()

    def statements(self) -> list[sql.Composed]:
        return [
            sql.SQL("CREATE TABLE {} (LIKE {} {})").format(
                self.partition, self.parent, LIKE_OPTIONS
            ),
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
                self.parent, self.partition, bound_sql(self.lower_key, self.upper_key)
            ),
        ]


@dataclass(frozen=True)
class DropPartition(Operation):
    """DETACH then DROP in one transaction: the parent is locked before the partition, the order
    the application's queries take them in, so the two never deadlock."""

    kind: ClassVar[str] = "drop"
    oid: int = 0
    bound_text: str = ""
    estimated_rows: int | None = None

    def statements(self) -> list[sql.Composed]:
        return [
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(self.parent, self.partition),
            sql.SQL("DROP TABLE {}").format(self.partition),
        ]


@dataclass(frozen=True)
class Notice:
    """Something a person should know that is not an operation: left alone, and why."""

    level: str  # "info" | "warning" | "error"
    table: str
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
    """What a pass would do, in order: creates first (runway is urgent), then drops."""

    now: dt.datetime
    operations: tuple[Operation, ...] = ()
    notices: tuple[Notice, ...] = ()
    tables: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __getitem__(self, index: int) -> Operation:
        return self.operations[index]

    @property
    def creates(self) -> list[Operation]:
        return [op for op in self.operations if op.kind == "create"]

    @property
    def drops(self) -> list[Operation]:
        return [op for op in self.operations if op.kind == "drop"]

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
            sign = "+" if op.kind == "create" else "-"
            tenant = "" if op.tenant is None else f" tenant={op.tenant!s}"
            lines.append(
                f"  {sign} {op.kind} {op.partition_schema}.{op.partition_name} "
                f"[{op.lower.isoformat()}, {op.upper.isoformat()}){tenant}: {op.reason}"
            )
        for n in self.notices:
            lines.append(f"  ! {n.level}: {n.table}: {n.message}")
        return "\n".join(lines)
