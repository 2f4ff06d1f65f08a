"""Partitions archived to Parquet (retention_action "export"): which PostgreSQL column types
partman writes and as what, the checksum both sides of a copy compute, and the manifest row.

Pure: no I/O, and no pyarrow either (an optional dependency): a column's Arrow type is named
here (`ColumnPlan.arrow`), and `engine/export_async.py` builds it.

**Types.** Each column is written with a type that gives back exactly the value PostgreSQL
held, or the export is refused before anything is detached (`plan_columns` raises
`ArchiveError` naming the column and its type):

| PostgreSQL | Parquet (Arrow) | note |
|---|---|---|
| boolean | bool | |
| smallint, integer, bigint | int16, int32, int64 | |
| real, double precision | float64 | a real's shortest text reads back as the same real |
| numeric(p, s), p <= 38 | decimal128(p, s) | string (its text) in a file whose column has a NaN |
| numeric (no typmod, or p > 38) | string | its text: keeps the scale of each value (1.50) and NaN |
| text, varchar, char(n), citext | string | |
| an enum | string | the label; restore casts it back |
| json, jsonb | string | PostgreSQL's own text of the value |
| uuid | uuid (extension type, 16 bytes) | |
| bytea | binary | |
| date | date32 | |
| timestamp | timestamp[us] | |
| timestamptz | timestamp[us, tz=UTC] | the instant; the zone it was shown in is not data |
| one-dimensional arrays of the scalar types above (not numeric, json, enums) | list<...> | |

**Checksum.** `Checksum` hashes a canonical text of each row with BLAKE2b (128 bits) and adds
the hashes modulo 2**128: the result does not depend on row order (the file is read back in its
own order, a table in its physical order), and a repeated row counts twice. A row's text is its
values' texts (`text_of` the column's Arrow type: an instant in UTC ISO 8601, a Decimal's digits
and exponent, bytes in hex, an array's elements between braces), NULL as NUL, joined by U+001F
(backslash, U+001E and U+001F escaped inside strings). Both sides compute it in Python over the
values as read: from PostgreSQL by psycopg, from the file by pyarrow; equal counts and sums mean
the file holds the partition's rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ArchiveError as ArchiveError

ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group: large enough for column readers, small enough that a writer
holds one group in memory at a time."""

CHECKSUM_ALGORITHM = "blake2b128-sum"
"""The name stored before the checksum's digits (`Checksum.text`)."""


@dataclass(frozen=True)
class PgColumn:
    """A column of a table as the catalog describes it (`engine/export_async.columns_query`)."""

    name: str
    typname: str
    """pg_type.typname: "int4", "_text" (an array), an enum's own name."""
    type_sql: str
    """format_type(): "numeric(12,2)", "text[]", "mood"; for messages and the manifest."""
    typtype: str
    """pg_type.typtype: "b" base, "e" enum, "d" domain, "c" composite, "r" range..."""
    typmod: int
    element: str | None = None
    """An array's element typname (None: not an array)."""
    element_typtype: str | None = None
    generated: bool = False


_SCALARS = {
    "bool": "bool",
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float64",
    "float8": "float64",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "citext": "string",
    "uuid": "uuid",
    "bytea": "binary",
    "date": "date32",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
}
"""Base types whose psycopg value goes into Arrow as it is (and comes back equal)."""

_AS_TEXT = {"json": "string", "jsonb": "string"}
"""Base types read as their text (`::text`), kept as strings."""

_ARRAY_ELEMENTS = frozenset(_SCALARS) - {"bytea"}
"""Element types of the arrays partman writes as lists."""

MAX_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is written: its Arrow type's name, and whether it is read as text."""

    name: str
    pg_type: str
    """format_type(), as the manifest records it."""
    arrow: str
    """"int32", "string", "decimal128(12,2)", "list<int32>", ... (`engine/export_async`)."""
    as_text: bool = False
    """Selected as `column::text` (json, jsonb, numeric without a precision)."""
    generated: bool = False
    """A generated column: written (readers see it), recomputed on restore, not loaded."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pg_type": self.pg_type,
            "arrow": self.arrow,
            "as_text": self.as_text,
            "generated": self.generated,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnPlan:
        return cls(
            name=str(d["name"]),
            pg_type=str(d["pg_type"]),
            arrow=str(d["arrow"]),
            as_text=bool(d.get("as_text", False)),
            generated=bool(d.get("generated", False)),
        )


def plan_column(column: PgColumn) -> ColumnPlan:
    """The column's Arrow type; `ArchiveError` naming it if its values cannot come back
    exactly from a Parquet file."""
    name, typname = column.name, column.typname
    generated = column.generated
    if column.typtype == "e":
        return ColumnPlan(name, column.type_sql, "string", generated=generated)
    if typname in _SCALARS and column.typtype == "b":
        return ColumnPlan(name, column.type_sql, _SCALARS[typname], generated=generated)
    if typname in _AS_TEXT:
        return ColumnPlan(name, column.type_sql, _AS_TEXT[typname], True, generated)
    if typname == "numeric":
        precision, scale = numeric_typmod(column.typmod)
        if precision is not None and precision <= MAX_DECIMAL_PRECISION:
            arrow = f"decimal128({precision},{scale})"
            return ColumnPlan(name, column.type_sql, arrow, generated=generated)
        return ColumnPlan(name, column.type_sql, "string", True, generated)
    element = column.element
    if element is not None and column.element_typtype == "b" and element in _ARRAY_ELEMENTS:
        arrow = f"list<{_SCALARS[element]}>"
        return ColumnPlan(name, column.type_sql, arrow, generated=generated)
    raise ArchiveError(
        f"column {name!r} is of type {column.type_sql}, which partman cannot write to Parquet "
        "and read back identically; export supports boolean, integers, real and double "
        "precision, numeric, text, varchar, char, enums, json, jsonb, uuid, bytea, date, "
        "timestamp, timestamptz and one-dimensional arrays of the scalar ones. Choose another "
        "retention_action for this table, or change the column's type"
    )


def plan_columns(columns: Sequence[PgColumn], table: str) -> tuple[ColumnPlan, ...]:
    """Every column's plan, or one `ArchiveError` naming all those refused."""
    plans: list[ColumnPlan] = []
    refused: list[str] = []
    for c in columns:
        try:
            plans.append(plan_column(c))
        except ArchiveError:
            refused.append(f"{c.name!r} ({c.type_sql})")
    if refused:
        raise ArchiveError(
            f"{table} cannot be exported to Parquet: column(s) {', '.join(refused)} are of a "
            "type partman cannot write and read back identically (supported: boolean, "
            "integers, real, double precision, numeric, text, varchar, char, enums, json, "
            "jsonb, uuid, bytea, date, timestamp, timestamptz, one-dimensional arrays of the "
            "scalar ones); nothing was detached. Choose another retention_action for it, or "
            "change the column's type"
        )
    return tuple(plans)


def numeric_typmod(typmod: int) -> tuple[int | None, int]:
    """numeric(p, s)'s p and s from atttypmod (-1: no precision given)."""
    if typmod < 4:
        return None, 0
    value = typmod - 4
    precision = (value >> 16) & 0xFFFF
    scale = value & 0x7FF
    if scale & 0x400:  # PostgreSQL 15 allows a negative scale (11 bits, two's complement)
        scale -= 0x800
    if scale < 0:
        return None, 0  # numeric(p, -s): kept as text
    return precision, scale


# -- the checksum ---------------------------------------------------------------------------

NULL = "\x00"
"""A NULL's text: NUL cannot be in a PostgreSQL text value, nor in any other value's text."""
FIELD = "\x1f"
"""Between the values of a row."""
ELEMENT = "\x1e"
"""Between the elements of an array."""
_ESCAPES = str.maketrans({"\\": "\\\\", FIELD: "\\x1f", ELEMENT: "\\x1e"})


def _text(value: str) -> str:
    if "\\" in value or FIELD in value or ELEMENT in value:  # rare: translate is slow
        return value.translate(_ESCAPES)
    return value


def _bool(value: bool) -> str:
    return "t" if value else "f"


def _hex(value: bytes) -> str:
    return bytes(value).hex()


def _iso(value: dt.date) -> str:
    return value.isoformat()


def _timestamp(value: dt.datetime) -> str:
    """An instant in UTC (the zone it was read in is not data); a naive time as it is."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat()


_SCALAR_TEXT: dict[str, Callable[[Any], str]] = {
    "bool": _bool,
    "int16": str,
    "int32": str,
    "int64": str,
    "float64": repr,
    "string": _text,
    "binary": _hex,
    "uuid": str,
    "date32": _iso,
    "timestamp": _iso,
    "timestamptz": _timestamp,
}


def text_of(arrow: str) -> Callable[[Any], str]:
    """The canonical text of a (non-NULL) value of a column written as `arrow`: the same for the
    value psycopg reads from PostgreSQL and the one pyarrow reads from the file."""
    if arrow.startswith("list<") and arrow.endswith(">"):
        inner = text_of(arrow[5:-1])

        def elements(value: Sequence[Any]) -> str:
            return "{" + ELEMENT.join(NULL if v is None else inner(v) for v in value) + "}"

        return elements
    if arrow.startswith("decimal128("):
        return str  # a Decimal's digits and exponent: 1.50 is not 1.5
    return _SCALAR_TEXT[arrow]


class Checksum:
    """Row count and an order-independent hash of a set of rows (see the module docstring).

    A row's canonical text is its values' texts (`text_of` its column's type, NULL as NUL)
    joined by U+001F, with backslash, U+001E and U+001F escaped inside strings."""

    def __init__(self, plans: Sequence[ColumnPlan]) -> None:
        self.rows = 0
        self._sum = 0
        self._texts = [text_of(p.arrow) for p in plans]

    def add_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """Rows given column by column (as pyarrow gives them), in the plans' order."""
        if len(columns) != len(self._texts):
            raise ArchiveError(f"{len(columns)} columns, {len(self._texts)} expected")
        texts = [
            [NULL if v is None else text(v) for v in column]
            for text, column in zip(self._texts, columns, strict=True)
        ]
        total = self._sum
        blake2b = hashlib.blake2b
        count = 0
        for row in map(FIELD.join, zip(*texts, strict=True)):
            total += int.from_bytes(blake2b(row.encode(), digest_size=16).digest(), "big")
            count += 1
        self._sum = total
        self.rows += count

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows given row by row (as psycopg gives them)."""
        if rows:
            self.add_columns(list(zip(*rows, strict=True)))

    @property
    def text(self) -> str:
        """ "blake2b128-sum:<32 hex digits>", as the manifest stores it."""
        return f"{CHECKSUM_ALGORITHM}:{self._sum % _MOD:032x}"


_MOD = 1 << 128


# -- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """One partition written to Parquet by retention: a row of partman's `archives` table."""

    id: int
    parent_schema: str
    parent_name: str
    partition_schema: str
    partition_name: str
    tenant: str | None
    lower: str
    """The partition's lower bound on the time (or id) column, as partman's metadata writes it."""
    upper: str
    location: str
    """The Parquet file: a path, or a URL (s3://bucket/prefix/...)."""
    rows: int
    bytes: int
    checksum: str
    columns: tuple[ColumnPlan, ...]
    state: str
    """"archived"; "restoring" (a restore under way, or interrupted); "restored"."""
    exported_at: dt.datetime
    restored_at: dt.datetime | None = None

    @property
    def table(self) -> str:
        return f"{self.parent_schema}.{self.parent_name}"

    @property
    def partition(self) -> str:
        return f"{self.partition_schema}.{self.partition_name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "table": self.table,
            "partition": self.partition,
            "tenant": self.tenant,
            "from": self.lower,
            "to": self.upper,
            "location": self.location,
            "rows": self.rows,
            "bytes": self.bytes,
            "checksum": self.checksum,
            "columns": [c.to_dict() for c in self.columns],
            "state": self.state,
            "exported_at": self.exported_at.isoformat(),
            "restored_at": None if self.restored_at is None else self.restored_at.isoformat(),
        }


def file_path(location: str, schema: str, parent: str, partition: str) -> str:
    """Where a partition's file goes under `location`: <location>/<schema>/<parent>/<partition>
    .parquet (partition names are unique in their schema, and carry the tenant and period)."""
    base = location.rstrip("/")
    return f"{base}/{_segment(schema)}/{_segment(parent)}/{_segment(partition)}.parquet"


def _segment(name: str) -> str:
    """A PostgreSQL name as one path segment: '/' and NUL cannot appear in a file name."""
    return name.replace("%", "%25").replace("/", "%2F")


TEMP_SUFFIX = ".partman-tmp"
"""A file being written: renamed to its name once complete (a stray one is overwritten)."""
