"""The go_partman guide's tables as SQLAlchemy models, partitioned and managed by partman.

`convoy.projects` is an ordinary table: its rows are the tenants. The three multi-tenant
tables are partitioned BY RANGE (project_id, created_at), one partition per project per day,
ten days made ahead, thirty days kept; the declaration below is all the partman there is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, PrimaryKeyConstraint, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from partman.contrib.sqlalchemy import partitioned

SCHEMA = "convoy"


class Base(DeclarativeBase):
    pass


class Project(Base):
    """A Convoy project: the tenant of the partitioned tables."""

    __tablename__ = "projects"
    __table_args__ = ({"schema": SCHEMA},)

    uid: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.current_timestamp()
    )


class _ProjectRow:
    """The guide's multi-tenant table: (id, project_id, created_at, data)."""

    id: Mapped[str] = mapped_column(String)
    project_id: Mapped[str] = mapped_column(String)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.current_timestamp()
    )
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class Event(_ProjectRow, Base):
    __tablename__ = "events"
    __table_args__ = (
        PrimaryKeyConstraint("id", "created_at", "project_id"),
        partitioned(
            by="created_at",
            tenant="project_id",
            interval="1 day",
            premake=10,
            retention="30 days",
            tenants_query="SELECT uid FROM convoy.projects",
            schema=SCHEMA,
        ),
    )


class EventDelivery(_ProjectRow, Base):
    __tablename__ = "event_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint("id", "created_at", "project_id"),
        partitioned(
            by="created_at",
            tenant="project_id",
            interval="1 day",
            premake=10,
            retention="30 days",
            tenants_query="SELECT uid FROM convoy.projects",
            schema=SCHEMA,
        ),
    )


class DeliveryAttempt(_ProjectRow, Base):
    __tablename__ = "delivery_attempts"
    __table_args__ = (
        PrimaryKeyConstraint("id", "created_at", "project_id"),
        partitioned(
            by="created_at",
            tenant="project_id",
            interval="1 day",
            premake=10,
            retention="30 days",
            tenants_query="SELECT uid FROM convoy.projects",
            schema=SCHEMA,
        ),
    )
