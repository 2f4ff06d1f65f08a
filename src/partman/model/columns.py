"""The partition key's column types, and values moving between Python, the catalog and SQL.

A tenant id is data of the tenant column's type: the same tenant is `'42'` in a text column and
`42` in an integer one. Everything that compares tenants (planner, metadata, catalog bounds)
uses the canonical Python value this module produces, so a tenant never appears twice under two
spellings.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from ..errors import TenantError

TenantValue = str | int | uuid.UUID
TimeValue = dt.datetime | dt.date


class ColumnKind(enum.Enum):
    """What partman needs to know of a key column's type."""

    TEXT = "text"
    INTEGER = "integer"
    NUMERIC = "numeric"
    UUID = "uuid"
    TIMESTAMPTZ = "timestamptz"
    TIMESTAMP = "timestamp"
    DATE = "date"
    OTHER = "other"

    @classmethod
    def from_typname(cls, typname: str) -> ColumnKind:
        return _KINDS.get(typname, cls.OTHER)

    @property
    def is_time(self) -> bool:
        return self in (ColumnKind.TIMESTAMPTZ, ColumnKind.TIMESTAMP, ColumnKind.DATE)

    @property
    def is_id(self) -> bool:
        """Counts ids (or epoch time): integer or numeric."""
        return self in (ColumnKind.INTEGER, ColumnKind.NUMERIC)

    @property
    def is_tenant(self) -> bool:
        return self in (ColumnKind.TEXT, ColumnKind.INTEGER, ColumnKind.UUID)


_KINDS = {
    "text": ColumnKind.TEXT,
    "varchar": ColumnKind.TEXT,
    "bpchar": ColumnKind.TEXT,
    "citext": ColumnKind.TEXT,
    "int2": ColumnKind.INTEGER,
    "int4": ColumnKind.INTEGER,
    "int8": ColumnKind.INTEGER,
    "numeric": ColumnKind.NUMERIC,
    "uuid": ColumnKind.UUID,
    "timestamptz": ColumnKind.TIMESTAMPTZ,
    "timestamp": ColumnKind.TIMESTAMP,
    "date": ColumnKind.DATE,
}

_INT_RANGES = {"int2": 2**15, "int4": 2**31, "int8": 2**63}


@dataclass(frozen=True)
class KeyColumn:
    """One column of a parent's partition key, as the catalog describes it."""

    name: str
    typname: str  # pg_type.typname, e.g. "varchar"
    type_sql: str  # format_type(), e.g. "character varying(40)", for messages only
    typmod: int  # atttypmod; for varchar(n)/char(n) it is n + 4
    generated: bool = False  # a generated column: computed, never inserted into

    @property
    def kind(self) -> ColumnKind:
        return ColumnKind.from_typname(self.typname)

    @property
    def max_length(self) -> int | None:
        if self.typname in ("varchar", "bpchar") and self.typmod > 4:
            return self.typmod - 4
        return None


def canonical_tenant(value: object, column: KeyColumn, *, table: str) -> TenantValue:
    """The tenant id as a value of the tenant column, or a TenantError saying why it cannot be.

    Checked before any DDL, so that a bad id never leaves half a registration behind.
    """
    where = f"tenant id {value!r} for {table}.{column.name} ({column.type_sql})"
    kind = column.kind
    if kind is ColumnKind.TEXT:
        if isinstance(value, bool) or not isinstance(value, str | int | uuid.UUID):
            raise TenantError(f"{where}: expected a string")
        text = str(value)
        if text == "":
            raise TenantError(f"{where}: a tenant id must not be empty")
        if "\x00" in text:
            raise TenantError(f"{where}: PostgreSQL text cannot hold a NUL character")
        limit = column.max_length
        if limit is not None and len(text) > limit:
            raise TenantError(
                f"{where}: {len(text)} characters do not fit the column's limit of {limit}; "
                "use a shorter id or widen the column"
            )
        if column.typname == "bpchar" and text != text.rstrip(" "):
            raise TenantError(f"{where}: char(n) columns drop trailing spaces; remove them")
        return text
    if kind is ColumnKind.INTEGER:
        if isinstance(value, bool):
            raise TenantError(f"{where}: expected an integer")
        try:
            number = int(value) if isinstance(value, int | str) else None
        except ValueError:
            number = None
        if number is None:
            raise TenantError(f"{where}: expected an integer")
        bound = _INT_RANGES[column.typname]
        if not -bound <= number < bound:
            raise TenantError(f"{where}: out of range for {column.typname}")
        return number
    if kind is ColumnKind.UUID:
        if isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise TenantError(f"{where}: expected a UUID") from None
    raise TenantError(f"{where}: tenant columns must be text-like, integer or uuid")


def tenant_text(value: TenantValue | None) -> str | None:
    """The form in which a tenant id is stored in partman's metadata (text, exact)."""
    return None if value is None else str(value)


def tenant_from_text(text: str, kind: ColumnKind) -> TenantValue:
    """Inverse of `tenant_text` for a column of the given kind."""
    if kind is ColumnKind.INTEGER:
        return int(text)
    if kind is ColumnKind.UUID:
        return uuid.UUID(text)
    return text
