"""The API's request and response bodies (they make the OpenAPI document).

Request bodies declare JSON types only: the values are checked once, by the model the handler
builds from them (`Tenant(...)`), whose error the API returns as a 422 with partman's message.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, computed_field

from ...model import snapshot
from ...model.config import FOREVER, MAX_PARTITION_COUNT, RetentionAction, table_retention
from ...model.keys import IdRetention
from ...model.text import human_duration


class ErrorOut(BaseModel):
    error: str = Field(description="Kind of error, e.g. NotRegisteredError, unauthorized")
    message: str = Field(description="What went wrong and how to fix it")


class TenantIn(BaseModel):
    """A tenant to add; policy fields left out (or null) inherit the table's."""

    model_config = ConfigDict(extra="forbid")
    tenant_id: StrictStr | StrictInt = Field(description="A value of the table's tenant column")
    retention_period: StrictStr | StrictInt | None = Field(
        None,
        description='e.g. "30 days", "3 months", or "forever"; an id table\'s: a number of '
        'ids (5000000, or "5000000 ids"); null inherits',
    )
    partition_count: StrictInt | None = Field(
        None, description=f"Future partitions kept ahead (0..{MAX_PARTITION_COUNT}); null inherits"
    )
    retention_action: RetentionAction | None = Field(None, description="null inherits")


class TenantPatch(BaseModel):
    """Only the fields given change; null means "inherit the table's"."""

    model_config = ConfigDict(extra="forbid")
    retention_period: StrictStr | StrictInt | None = None
    partition_count: StrictInt | None = None
    retention_action: RetentionAction | None = None


class CoverageOut(BaseModel):
    partitions: int
    covered_until: str | None = Field(
        description="where the gap-free run of partitions from now ends: a time, or the "
        "column's own value (an id, an epoch integer, a UUID)"
    )
    runway_seconds: float = Field(description="0 for an id table: see runway_ids")
    runway_ids: int | None = Field(
        None, description="an id table's runway: ids from its newest id to covered_until"
    )

    @computed_field(
        description='the runway as the CLI writes it, e.g. "2 d 15 h", or "1500 ids" for ids'
    )
    def runway_text(self) -> str:
        return runway_words(self.runway_seconds, self.runway_ids)


def runway_words(seconds: float, ids: int | None) -> str:
    """A runway as `partman partitions` writes it (cli.render.runway_text)."""
    if ids is not None:
        return f"{ids} id" if ids == 1 else f"{ids} ids"
    return human_duration(seconds)


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
    time_column: str = Field(description="the partition_by column: time, epoch, UUIDv7 or id")
    partition_interval: str = Field(
        description='a period ("1 day", "15 minutes"), or for an id table the ids per '
        'partition ("1000000")'
    )
    by_id: bool = Field(
        False,
        description="windows of ids rather than periods of time: bounds, covered_until and "
        "the runway (runway_ids) are ids",
    )
    epoch: str | None = Field(
        None, description="the unit of an epoch integer column (seconds, milliseconds, ...)"
    )
    retention_period: str = Field(
        description='"forever" keeps all; an id table\'s distance reads "5000000 ids"'
    )
    retention_column: str | None = Field(
        None, description="the time column an id table's retention goes by"
    )
    partition_count: int
    retention_action: str
    archive_schema: str | None
    default_partition: bool
    backfill: bool
    sub_partition_by: str | None = Field(
        None, description="each period is PARTITION BY HASH (this column)"
    )
    sub_partition_modulus: int | None = Field(None, description="HASH partitions below each period")
    tenant_partitioning: str = Field(
        "range",
        description='"range": RANGE (tenant, time); "list": LIST (tenant), each tenant\'s '
        "partition RANGE (time)",
    )
    storage_parameters: dict[str, int | float | bool] = Field(
        default_factory=dict, description="each new partition's WITH (...)"
    )
    export_location: str | None = Field(
        None, description='where retention_action "export" writes Parquet files'
    )
    rollup_after: str | None = Field(
        None, description="partitions of periods wholly older than this are rolled up"
    )
    rollup_interval: str | None = Field(None, description="the coarse period they are merged into")
    tenants: int
    partitions: int
    default_rows: int | None = Field(description="rows waiting in the default partition")
    default_rows_by_tenant: dict[str, int] = Field(
        default_factory=dict,
        description="the tenants with the most rows in the default partition (20 at most)",
    )
    min_runway_seconds: float | None = Field(description="the shortest runway of its tenants")
    min_runway_ids: int | None = Field(None, description="an id table's shortest runway, in ids")

    @computed_field(description="the shortest runway as the CLI writes it; null without tenants")
    def min_runway_text(self) -> str | None:
        if self.min_runway_seconds is None:
            return None
        return runway_words(self.min_runway_seconds, self.min_runway_ids)


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


class ArchiveOut(BaseModel):
    """A period retention exported to Parquet (no longer a partition): drawn on the timeline
    in a colour of its own."""

    model_config = ConfigDict(populate_by_name=True)
    table: str
    tenant: str | None
    partition: str
    from_: str = Field(alias="from")
    to: str
    location: str
    rows: int
    bytes: int
    state: str
    exported_at: str


class PartitionsOut(BaseModel):
    now: str
    partitions: list[PartitionOut]
    coverage: list[CoverageRowOut]
    default_rows: dict[str, int]
    archives: list[ArchiveOut] = []
    """Parquet archives not (or not yet) restored: periods whose rows are outside PostgreSQL."""


class RemovedOut(BaseModel):
    table: str
    tenant_id: str
    removed: bool
    note: str


class AuditPage(BaseModel):
    entries: list[dict[str, Any]]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


def retention_out(retention: Any) -> str:
    """A retention as the API shows it: its text ("30 days", "5000000 ids"), or "forever"."""
    if isinstance(retention, IdRetention):
        return str(retention)
    return FOREVER if retention is None else str(snapshot.retention_text(retention))


def own_retention_out(stored: str | None) -> str | None:
    """A tenant's own retention as stored (None inherits, "forever", a period, an id
    distance's digits), as the API shows it."""
    if stored is None or stored == FOREVER:
        return stored
    return retention_out(table_retention(stored))
