"""What partman's role may do, as values: what each table asks of it (`Need`, from its policy)
and what the server says the role holds (`MetadataGrants`, `TableGrants`, one row each).

`db/privileges.py` reads the grants in one statement for all tables; `decide/privileges.py`
turns them into findings naming the missing GRANT. Names ending in `_sql` are quoted by the
server (`quote_ident`), ready to be pasted into a GRANT.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """What partman will do to one table: always create partitions in its schema and attach
    them; with retention, drop, detach or archive partitions too."""

    schema: str
    name: str
    retains: bool = False
    drop_only: bool = True  # retention only drops (the schema's owner may drop too)
    archive_schema: str | None = None  # where retention_action archive moves partitions


@dataclass(frozen=True)
class MetadataGrants:
    """The role, the database, and what the role may do in partman's metadata schema."""

    role_sql: str
    database_sql: str
    database_create: bool
    schema_sql: str
    schema_exists: bool
    schema_usage: bool
    schema_owner: bool  # the role is (or has the privileges of) the schema's owner
    tables: list[str]  # partman's tables found in the schema
    tables_lacking: list[str]  # those without SELECT, INSERT, UPDATE and DELETE for the role


@dataclass(frozen=True)
class TableGrants:
    """One `Need`'s table, as the role sees it."""

    schema: str
    name: str
    schema_sql: str
    parent_sql: str
    schema_exists: bool
    schema_usage: bool
    schema_create: bool
    table_exists: bool
    owner_sql: str | None
    acts_as_owner: bool  # pg_has_role(owner, 'USAGE'): the owner's privileges, ALTER included
    gives_to_owner: bool  # the role is the owner, or may hand it new partitions (OWNER TO)
    owner_schema_create: bool  # the owner has CREATE on the schema (OWNER TO needs it)
    parent_select: bool
    default_sql: str | None  # the default partition, if the parent has one
    default_select: bool
    default_delete: bool
    foreign_owners: list[str]  # owners of partitions retention needs and the role cannot act as
    unreadable: list[str]  # a few partitions retention must read and the role cannot
    unreadable_count: int
    archive_sql: str | None
    archive_exists: bool
    archive_usage: bool
    archive_create: bool

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Grants:
    """Everything `db.privileges.read` finds, in one value."""

    metadata: MetadataGrants
    tables: tuple[TableGrants, ...]
