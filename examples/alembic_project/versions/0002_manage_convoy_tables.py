"""partman manages the three convoy tables: a partition per project per day, ten days ahead,
thirty days kept; every project in convoy.projects is a tenant.

What `alembic revision --autogenerate` writes once models.py declares the tables with
`partitioned()`. The registration commits with this migration (or not at all); partitions
are made by the next maintenance pass (`partman apply --yes --config partman.toml`). The
downgrade stops managing the tables and leaves every partition and row where it is.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:56:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("events", "event_deliveries", "delivery_attempts"):
        op.manage_table(
            name,
            schema="convoy",
            by="created_at",
            tenant="project_id",
            interval="1 day",
            premake=10,
            retention="30 days",
            tenants_query="SELECT uid FROM convoy.projects",
        )


def downgrade() -> None:
    for name in ("delivery_attempts", "event_deliveries", "events"):
        op.unmanage_table(name, schema="convoy")
