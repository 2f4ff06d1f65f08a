"""The API's request and response bodies (they make the OpenAPI document).

Request bodies declare JSON types only: the values are checked once, by the model the handler
builds from them (`Tenant(...)`), whose error the API returns as a 422 with partman's message.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, computed_field

from ...model import snapshot
from ...model.config import FOREVER, MAX_PARTITION_COUNT, RetentionAction
from ...model.text import human_duration


class ErrorOut(BaseModel):
    error: str = Field(description="Kind of error, e.g. NotRegisteredError, unauthorized")
    message: str = Field(description="What went wrong and how to fix it")


class TenantIn(BaseModel):
    """A tenant to add; policy fields left out (or null) inherit the table's."""

    model_config = ConfigDict(extra="forbid")
    tenant_id: StrictStr | StrictInt = Field(description="A value of the table's tenant column")
    retention_period: StrictStr | None = Field(
        None, description='e.g. "30 days", "3 months", or "forever"; null inherits'
    )
    partition_count: StrictInt | None = Field(
        None, description=f"Future partitions kept ahead (0..{MAX_PARTITION_COUNT}); null inherits"
    )
    retention_action: RetentionAction | None = Field(None, description="null inherits")


class TenantPatch(BaseModel):
    """Only the fields given change; null means "inherit the table's"."""

    model_config = ConfigDict(extra="forbid")
    retention_period: StrictStr | None = None
    partition_count: StrictInt | None = None
    retention_action: RetentionAction | None = None


class CoverageOut(BaseModel):
    partitions: int
    covered_until: str | None
    runway_seconds: float

    @computed_field(description='runway_seconds as the CLI writes it, e.g. "2 d 15 h"')
    def runway_text(self) -> str:
        return human_duration(self.runway_seconds)


class TenantOut(BaseModel):
    table: str
    tenant_id: str
    retention_period: str | None = Field(description='own policy; null inherits, or "forever"')
    partition_count: int | None
    retention_action: str | None
    effective_retention_period: str = Field(description='what applies ("forever" keeps all)')
    effective_partition_count: int
    effective_retention_action: str
    coverage: CoverageOut | None


class TableOut(BaseModel):
    table: str
    schema_name: str
    name: str
    tenant_column: str | None
    time_column: str
    partition_interval: str
    retention_period: str = Field(description='"forever" keeps all')
    partition_count: int
    retention_action: str
    archive_schema: str | None
    default_partition: bool
    backfill: bool
    tenants: int
    partitions: int
    default_rows: int | None = Field(description="rows waiting in the default partition")
    default_rows_by_tenant: dict[str, int] = Field(
        default_factory=dict,
        description="the tenants with the most rows in the default partition (20 at most)",
    )
    min_runway_seconds: float | None = Field(description="the shortest runway of its tenants")

    @computed_field(description='min_runway_seconds as the CLI writes it; null without tenants')
    def min_runway_text(self) -> str | None:
        return None if self.min_runway_seconds is None else human_duration(self.min_runway_seconds)


class PartitionOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    table: str
    tenant: str | None
    partition: str
    from_: str = Field(alias="from")
    to: str
    owner: str
    estimated_rows: int | None
    is_default: bool


class CoverageRowOut(CoverageOut):
    table: str
    tenant: str | None


class PartitionsOut(BaseModel):
    now: str
    partitions: list[PartitionOut]
    coverage: list[CoverageRowOut]
    default_rows: dict[str, int]


class RemovedOut(BaseModel):
    table: str
    tenant_id: str
    removed: bool
    note: str


class AuditPage(BaseModel):
    entries: list[dict[str, Any]]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


def retention_out(retention: Any) -> str:
    """A retention as the API shows it: its text, or "forever"."""
    return FOREVER if retention is None else str(snapshot.retention_text(retention))
