"""Which privileges partman's role lacks, each named with the GRANT that gives it. Pure.

What a table asks of the role, from PostgreSQL's rules for the statements a pass sends:

- a new partition is `CREATE TABLE ... (LIKE parent ...)` in the parent's schema: USAGE and
  CREATE on that schema, SELECT on the parent (LIKE reads it);
- the new partition is handed to the parent's owner (`ALTER TABLE ... OWNER TO`): SET on that
  role (PostgreSQL 16; membership before), and CREATE on the schema for the owner;
- `ALTER TABLE parent ATTACH PARTITION` / `DETACH PARTITION`: the parent's owner. Being a member
  of the owning role with its privileges (`GRANT owner TO role`) counts; MAINTAIN (PostgreSQL
  17) does not, it allows VACUUM, ANALYZE and LOCK but no ALTER TABLE;
- rows waiting in the default partition are moved out with DELETE ... RETURNING: SELECT and
  DELETE on the default partition;
- retention reads each partition's newest row first (SELECT on it); `DROP TABLE` needs the
  partition's owner or its schema's; detach and archive end with `COMMENT ON TABLE` and archive
  with `ALTER TABLE ... SET SCHEMA`, both the partition's owner only; archive also runs
  `CREATE SCHEMA IF NOT EXISTS`, which PostgreSQL checks for CREATE on the database before it
  looks whether the schema exists, and SET SCHEMA needs CREATE on the archive schema;
- partman's metadata: CREATE on the database to create its schema (`partman init`), then USAGE
  on the schema and SELECT, INSERT, UPDATE, DELETE on its tables (or being their owner).

The GRANT statements here are text for a person to read and run, never sent by partman; every
name in them arrives already quoted by the server (`quote_ident`, `*_sql` fields), so the
wording can be composed as plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.privileges import Grants, MetadataGrants, Need, TableGrants
from ..model.snapshot import State


@dataclass(frozen=True)
class Finding:
    """A privilege the role lacks: for which table (None: the database or the metadata), what
    it stops, and the GRANT that gives it."""

    table: str | None
    problem: str
    grant: str

    def __str__(self) -> str:
        text = f"{self.problem}: {self.grant}"
        return text if self.table is None else f"{self.table}: {text}"

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "problem": self.problem, "grant": self.grant}


def needs(state: State) -> list[Need]:
    """What each table of `state` asks of the role: retention, and its actions, when the table
    or any of its tenants keeps partitions for a limited time."""
    out = []
    for table in state.tables:
        policies = [(table.retention, table.retention_action)]
        for tenant in state.tenants.get(table.id, ()):
            policies.append((tenant.effective_retention(table), tenant.effective_action(table)))
        actions = {action for retention, action in policies if retention is not None}
        out.append(
            Need(
                schema=table.schema,
                name=table.name,
                retains=bool(actions),
                drop_only=actions <= {"drop"},
                archive_schema=table.archive_schema if "archive" in actions else None,
            )
        )
    return out


def findings(grants: Grants) -> list[Finding]:
    """Every privilege missing, the metadata's first, then each table's in order."""
    out = _metadata(grants.metadata)
    for table in grants.tables:
        out += _table(table, grants.metadata)
    return out


def _metadata(m: MetadataGrants) -> list[Finding]:
    role = m.role_sql
    if not m.schema_exists:
        if m.database_create:
            return []
        return [
            Finding(
                None,
                f"partman's metadata schema {m.schema_sql} does not exist and {role} may not "
                "create it (or run `partman init` once as a role that may)",
                f"GRANT CREATE ON DATABASE {m.database_sql} TO {role};",
            )
        ]
    if not m.tables:  # an empty schema made for partman: `partman init` fills it
        out = []
        if not m.database_create:
            out.append(
                Finding(
                    None,
                    f"partman's metadata schema {m.schema_sql} is empty and creating it runs "
                    "CREATE SCHEMA IF NOT EXISTS, which needs CREATE on the database",
                    f"GRANT CREATE ON DATABASE {m.database_sql} TO {role};",
                )
            )
        if not m.schema_owner:
            out.append(
                Finding(
                    None,
                    f"`partman init` comments on schema {m.schema_sql} and creates its tables, "
                    "which needs the schema's owner",
                    f"ALTER SCHEMA {m.schema_sql} OWNER TO {role};",
                )
            )
        return out
    out = []
    if not m.schema_usage:
        out.append(
            Finding(
                None,
                f"partman's metadata schema {m.schema_sql} cannot be read",
                f"GRANT USAGE ON SCHEMA {m.schema_sql} TO {role};",
            )
        )
    if m.tables_lacking:
        out.append(
            Finding(
                None,
                f"partman's metadata tables {', '.join(m.tables_lacking)} in schema "
                f"{m.schema_sql} cannot be written",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {m.schema_sql} "
                f"TO {role};",
            )
        )
    return out


def _table(t: TableGrants, m: MetadataGrants) -> list[Finding]:
    if not t.table_exists:
        return []  # `partman check` says so already, and a pass reports it
    role = m.role_sql
    name = t.qualified_name
    out = []

    def lacks(problem: str, grant: str) -> None:
        out.append(Finding(name, problem, grant))

    schema = [p for p, held in (("USAGE", t.schema_usage), ("CREATE", t.schema_create)) if not held]
    if schema:
        lacks(
            f"new partitions are created in schema {t.schema_sql}, which needs "
            f"{' and '.join(schema)} on it",
            f"GRANT {', '.join(schema)} ON SCHEMA {t.schema_sql} TO {role};",
        )
    if not t.acts_as_owner:
        lacks(
            f"ATTACH and DETACH PARTITION need the owner of {name}, {t.owner_sql} (MAINTAIN is "
            f"not enough: ALTER TABLE is the owner's); make {role} a member of it",
            f"GRANT {t.owner_sql} TO {role};",
        )
    elif not t.gives_to_owner:
        lacks(
            f"new partitions are handed to the parent's owner (ALTER TABLE ... OWNER TO "
            f"{t.owner_sql}), which needs SET on that role",
            f"GRANT {t.owner_sql} TO {role} WITH SET TRUE;",
        )
    elif not t.parent_select:
        lacks(
            "new partitions copy the parent (CREATE TABLE ... LIKE), which needs SELECT on it",
            f"GRANT SELECT ON {t.parent_sql} TO {role};",
        )
    if not t.owner_schema_create:
        lacks(
            f"the parent's owner {t.owner_sql} owns each new partition, and PostgreSQL allows "
            f"that only with CREATE on schema {t.schema_sql} for {t.owner_sql}",
            f"GRANT CREATE ON SCHEMA {t.schema_sql} TO {t.owner_sql};",
        )
    if t.default_sql is not None and not (t.default_select and t.default_delete):
        lacks(
            f"rows waiting in the default partition {t.default_sql} are moved out with "
            "DELETE ... RETURNING, which needs SELECT and DELETE on it",
            f"GRANT SELECT, DELETE ON {t.default_sql} TO {role};",
        )
    for owner in t.foreign_owners:
        lacks(
            f"retention drops, detaches or archives partitions owned by {owner}, which needs "
            f"their owner; make {role} a member of it",
            f"GRANT {owner} TO {role};",
        )
    if t.unreadable_count:
        shown = ", ".join(t.unreadable)
        more = t.unreadable_count - len(t.unreadable)
        lacks(
            f"retention reads a partition's newest row before it lets the partition go, and "
            f"{role} may not read {shown}" + (f" and {more} more" if more > 0 else ""),
            f"GRANT SELECT ON {shown} TO {role};"
            if more <= 0
            else f"GRANT SELECT ON ALL TABLES IN SCHEMA {t.schema_sql} TO {role};",
        )
    if t.archive_sql is not None:
        if not m.database_create:
            lacks(
                f"retention_action archive runs CREATE SCHEMA IF NOT EXISTS {t.archive_sql}, "
                "which PostgreSQL allows only with CREATE on the database, even when the "
                "schema exists",
                f"GRANT CREATE ON DATABASE {m.database_sql} TO {role};",
            )
        archive = [
            p for p, held in (("USAGE", t.archive_usage), ("CREATE", t.archive_create)) if not held
        ]
        if t.archive_exists and archive:
            lacks(
                f"retention_action archive moves partitions into schema {t.archive_sql} (ALTER "
                f"TABLE ... SET SCHEMA), which needs {' and '.join(archive)} on it",
                f"GRANT {', '.join(archive)} ON SCHEMA {t.archive_sql} TO {role};",
            )
    return out
