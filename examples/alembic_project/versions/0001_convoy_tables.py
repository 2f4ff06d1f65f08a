"""The convoy schema: projects, and the guide's three tables partitioned by (project, day).

What `alembic revision --autogenerate` writes for models.py (the `postgresql_partition_by`
comes from `partitioned()`), plus the schema and the projects the application already has.
Partitioned, not yet managed: 0002 hands the three tables to partman.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 19:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTITIONED = ("events", "event_deliveries", "delivery_attempts")
PROJECTS = [
    {"uid": "project-acme", "name": "Acme"},
    {"uid": "project-globex", "name": "Globex"},
    {"uid": "o'reilly-media", "name": "O'Reilly Media"},  # ids are data, quotes and all
]


def upgrade() -> None:
    op.execute(sa.schema.CreateSchema("convoy", if_not_exists=True))
    projects = op.create_table(
        "projects",
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("uid"),
        schema="convoy",
    )
    for name in PARTITIONED:
        op.create_table(
            name,
            sa.Column("id", sa.String(), nullable=False),
            sa.Column("project_id", sa.String(), nullable=False),
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("CURRENT_TIMESTAMP"),
                nullable=False,
            ),
            sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
            sa.PrimaryKeyConstraint("id", "created_at", "project_id"),
            schema="convoy",
            postgresql_partition_by="RANGE (project_id, created_at)",
        )
    op.bulk_insert(projects, PROJECTS)


def downgrade() -> None:
    for name in reversed(PARTITIONED):
        op.drop_table(name, schema="convoy")
    op.drop_table("projects", schema="convoy")
    op.execute(sa.schema.DropSchema("convoy"))
