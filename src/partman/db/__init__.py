"""The database's side, as SQL and rows: the catalog statements and their parsing, partman's
metadata schema (migrations, records, the SQL that writes them), the metadata reads, and the
SQL the executor sends around its DDL. Composes SQL with `psycopg.sql`; the reads take a
connection the caller owns. Imports `model` only.
"""
