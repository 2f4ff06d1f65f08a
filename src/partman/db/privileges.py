"""What the connected role may do to partman's metadata and to the tables it manages, read in
two statements whatever the number of tables (one for the metadata schema, one for every
table), so that `partman check` and the service's readiness can name a missing GRANT before a
pass fails on it with `permission denied`.

Only SELECTs on the catalog and the `has_*_privilege` / `pg_has_role` functions, for
`current_user`; a schema or table that does not exist reads as "no privilege", never as an
error. What each privilege is needed for is decided in `decide/privileges.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from ..model.privileges import Grants, MetadataGrants, Need, TableGrants

METADATA_TABLES = ("managed_tables", "tenants", "partitions", "runs", "audit_log")
"""partman's metadata tables a pass reads and writes (schema_version is only read)."""

METADATA = sql.SQL(
    """
SELECT quote_ident(current_user) AS role_sql,
       quote_ident(current_database()) AS database_sql,
       has_database_privilege(current_database(), 'CREATE') AS database_create,
       quote_ident(w.name) AS schema_sql,
       n.oid IS NOT NULL AS schema_exists,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
       coalesce(pg_has_role(n.nspowner, 'USAGE'), false) AS schema_owner,
       coalesce(array(SELECT c.relname::text FROM pg_class c
                       WHERE c.relnamespace = n.oid AND c.relname = ANY (%(tables)s::text[])
                       ORDER BY c.relname), ARRAY[]::text[]) AS tables,
       coalesce(array(SELECT c.relname::text FROM pg_class c
                       WHERE c.relnamespace = n.oid AND c.relname = ANY (%(tables)s::text[])
                         AND NOT (has_table_privilege(c.oid, 'SELECT')
                                  AND has_table_privilege(c.oid, 'INSERT')
                                  AND has_table_privilege(c.oid, 'UPDATE')
                                  AND has_table_privilege(c.oid, 'DELETE'))
                       ORDER BY c.relname), ARRAY[]::text[]) AS tables_lacking
  FROM (SELECT %(schema)s::text AS name) w
  LEFT JOIN pg_namespace n ON n.nspname = w.name
"""
)
"""One `MetadataGrants` row for the schema named by `schema`."""

UNREADABLE_SHOWN = 5

TABLES = sql.SQL(
    """
WITH need AS (
    SELECT * FROM unnest(%(schemas)s::text[], %(names)s::text[], %(retains)s::bool[],
                         %(drop_only)s::bool[], %(archive)s::text[])
           WITH ORDINALITY AS u (schema_name, table_name, retains, drop_only, archive_schema, i)
),
part AS (  -- the partitions retention may retire: every one but the default
    SELECT u.i, p.oid, p.relowner, pn.nspowner, u.drop_only,
           quote_ident(pn.nspname) || '.' || quote_ident(p.relname) AS name_sql
      FROM need u
      JOIN pg_namespace n ON n.nspname = u.schema_name
      JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = u.table_name
      JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
      JOIN pg_inherits h ON h.inhparent = c.oid AND h.inhrelid <> pt.partdefid
      JOIN pg_class p ON p.oid = h.inhrelid
      JOIN pg_namespace pn ON pn.oid = p.relnamespace
     WHERE u.retains
)
SELECT u.schema_name AS schema, u.table_name AS name,
       quote_ident(u.schema_name) AS schema_sql,
       quote_ident(u.schema_name) || '.' || quote_ident(u.table_name) AS parent_sql,
       n.oid IS NOT NULL AS schema_exists,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS schema_usage,
       coalesce(has_schema_privilege(n.oid, 'CREATE'), false) AS schema_create,
       c.oid IS NOT NULL AS table_exists,
       quote_ident(o.rolname) AS owner_sql,
       coalesce(pg_has_role(c.relowner, 'USAGE'), false) AS acts_as_owner,
       coalesce(o.rolname = current_user OR pg_has_role(c.relowner, {set_role}), false)
           AS gives_to_owner,
       coalesce(o.rolname = current_user OR has_schema_privilege(c.relowner, n.oid, 'CREATE'),
                false) AS owner_schema_create,
       coalesce(has_table_privilege(c.oid, 'SELECT'), false) AS parent_select,
       quote_ident(dn.nspname) || '.' || quote_ident(d.relname) AS default_sql,
       coalesce(has_table_privilege(d.oid, 'SELECT'), false) AS default_select,
       coalesce(has_table_privilege(d.oid, 'DELETE'), false) AS default_delete,
       coalesce(array(
           SELECT DISTINCT quote_ident(r.rolname) FROM part
             JOIN pg_roles r ON r.oid = part.relowner
            WHERE part.i = u.i AND NOT pg_has_role(part.relowner, 'USAGE')
              AND NOT (part.drop_only AND pg_has_role(part.nspowner, 'USAGE'))
            ORDER BY 1), ARRAY[]::text[]) AS foreign_owners,
       coalesce(array(
           SELECT part.name_sql FROM part
            WHERE part.i = u.i AND NOT has_table_privilege(part.oid, 'SELECT')
            ORDER BY 1 LIMIT {shown}), ARRAY[]::text[]) AS unreadable,
       (SELECT count(*) FROM part
         WHERE part.i = u.i AND NOT has_table_privilege(part.oid, 'SELECT'))::int
           AS unreadable_count,
       quote_ident(u.archive_schema) AS archive_sql,
       an.oid IS NOT NULL AS archive_exists,
       coalesce(has_schema_privilege(an.oid, 'USAGE'), false) AS archive_usage,
       coalesce(has_schema_privilege(an.oid, 'CREATE'), false) AS archive_create
  FROM need u
  LEFT JOIN pg_namespace n ON n.nspname = u.schema_name
  LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = u.table_name
  LEFT JOIN pg_roles o ON o.oid = c.relowner
  LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
  LEFT JOIN pg_class d ON d.oid = pt.partdefid
  LEFT JOIN pg_namespace dn ON dn.oid = d.relnamespace
  LEFT JOIN pg_namespace an ON an.nspname = u.archive_schema
 ORDER BY u.i
"""
)
"""One `TableGrants` row per `Need`, in their order (parameters: one array per Need field;
`set_role`: the privilege `ALTER TABLE ... OWNER TO` needs, see `set_role`)."""


def set_role(server_version: int) -> sql.Literal:
    """Handing a table to another owner takes SET on that role from PostgreSQL 16 (a member
    may be granted it WITH SET FALSE), membership before (where 'SET' is no privilege name)."""
    return sql.Literal("SET" if server_version >= 160000 else "MEMBER")


def table_params(needs: Sequence[Need]) -> dict[str, list[Any]]:
    """`TABLES`'s parameters: the needs as one array per field."""
    return {
        "schemas": [n.schema for n in needs],
        "names": [n.name for n in needs],
        "retains": [n.retains for n in needs],
        "drop_only": [n.drop_only for n in needs],
        "archive": [n.archive_schema for n in needs],
    }


def read(conn: psycopg.Connection[Any], metadata_schema: str, needs: Sequence[Need]) -> Grants:
    """What the connected role may do in `metadata_schema` and to each needed table."""
    with conn.cursor(row_factory=class_row(MetadataGrants)) as cur:
        metadata = cur.execute(
            METADATA, {"schema": metadata_schema, "tables": list(METADATA_TABLES)}
        ).fetchone()
    assert metadata is not None
    with conn.cursor(row_factory=class_row(TableGrants)) as cur:
        query = TABLES.format(
            shown=sql.Literal(UNREADABLE_SHOWN), set_role=set_role(conn.info.server_version)
        )
        tables = cur.execute(query, table_params(needs)).fetchall()
    return Grants(metadata=metadata, tables=tuple(tables))
