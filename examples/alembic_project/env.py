"""Alembic's environment for the convoy tables: Alembic's own template, with the database
from $DATABASE_URL and the convoy schema compared. For partman, one import (marked below)."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from models import SCHEMA, Base
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, create_engine, pool

import partman.contrib.alembic  # noqa: F401  (partman: op.manage_table and autogenerate)

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> URL:
    """$DATABASE_URL, a libpq string or URI, for SQLAlchemy's psycopg (3) driver."""
    return URL.create("postgresql+psycopg", query=conninfo_to_dict(os.environ["DATABASE_URL"]))


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare the application's schema only (not partman's metadata, nor anybody else's)."""
    return type_ != "schema" or name in (None, SCHEMA)


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_schemas=True,  # the tables live in the convoy schema
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
