"""What the user declares: Config (how partman runs), Table (what it manages), Tenant (who).

Everything here is checked on construction, without a database, so that a typo fails at once
with a message naming the field and the fix; what needs the catalog (does the table exist, is
the column a timestamp) is checked by `Manager.add_managed_table`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
import zoneinfo
from dataclasses import dataclass, field

from ..errors import ConfigError
from .intervals import Interval, Retention, parse_retention

MAX_IDENTIFIER_BYTES = 63
FOREVER = "forever"


class RetentionAction(enum.Enum):
    """What retention does with an expired partition (pg_partman: retention_keep_table)."""

    DROP = "drop"
    """Detach it, then drop the table (the default)."""
    DETACH = "detach"
    """Detach it and keep the table where it is (no longer a partition, never touched again)."""
    ARCHIVE = "archive"
    """Detach it and move it to `archive_schema`."""


def parse_action(value: object, what: str) -> RetentionAction:
    if isinstance(value, RetentionAction):
        return value
    try:
        return RetentionAction(str(value).lower())
    except ValueError:
        raise ConfigError(
            f"{what} must be 'drop', 'detach' or 'archive' (partman.RetentionAction), got {value!r}"
        ) from None


class PartitionType(enum.Enum):
    """The partitioning strategy of the parent; go_partman's `TypeRange`."""

    RANGE = "range"


def check_identifier(value: object, what: str) -> str:
    """A PostgreSQL identifier as the user spelled it (case kept: it is quoted, never folded)."""
    if not isinstance(value, str) or value == "":
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise ConfigError(f"{what} {value!r} contains a NUL character")
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise ConfigError(
            f"{what} {value!r} is {len(value.encode())} bytes; PostgreSQL identifiers are at "
            f"most {MAX_IDENTIFIER_BYTES} bytes"
        )
    return value


def _positive(value: dt.timedelta, what: str) -> dt.timedelta:
    if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
        raise ConfigError(f"{what} must be a positive timedelta, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Config:
    """How partman behaves; every field has a default that is safe on a busy database."""

    sample_rate: dt.timedelta = dt.timedelta(minutes=1)
    """How often `Manager.start()` runs a maintenance pass."""
    lock_timeout: dt.timedelta = dt.timedelta(milliseconds=250)
    """The longest any DDL statement waits for a lock (and so the longest it can hold up the
    application's queries queued behind it) before it gives up and retries later."""
    statement_timeout: dt.timedelta = dt.timedelta(seconds=60)
    """The longest any statement that changes something may run (moving rows out of a default
    partition, checking a partition's newest row before retention, a detach); a statement cut
    short by it is a failure, not retried."""
    max_retries: int = 3
    """Retries of a DDL transaction that hit the lock budget, with jittered exponential backoff."""
    retry_backoff: dt.timedelta = dt.timedelta(milliseconds=200)
    """Base of the wait between retries: the n-th retry waits `retry_backoff * 2**(n - 1)`,
    times a random factor between 0.5 and 1.5."""
    metadata_schema: str = "partman_meta"
    """Where partman keeps its metadata. Not `partman`: pg_partman and go_partman use that."""
    timezone: str = "UTC"
    """The IANA zone in which periods are aligned (a day starts at local midnight)."""
    batch_size: int = 32
    """Partitions created per transaction: fewer commits, but more locks held until commit."""
    move_batch_rows: int = 10_000
    """Rows moved out of a default partition per transaction."""
    pass_lock_wait: dt.timedelta = dt.timedelta(seconds=60)
    """How long a pass waits for another manager's pass on the same database to finish."""
    application_name: str = "partman"
    detach_concurrently: bool = True
    """Retention detaches with `DETACH PARTITION ... CONCURRENTLY` (SHARE UPDATE EXCLUSIVE on
    the parent: the application never waits for it). False: a batch of expired partitions is
    detached and dropped in one short transaction under ACCESS EXCLUSIVE on the parent, as
    pg_partman does: several times faster, but the application's queries on that table wait
    for it (for at most `lock_timeout` while it waits for its lock, plus the transaction).
    For quiet tables. Parents with a default partition always work this way (PostgreSQL
    refuses CONCURRENTLY there)."""
    """The `application_name` of the connections a Manager opens from a connection string (a
    pool you pass keeps its own), and the manager recorded for each run."""

    def __post_init__(self) -> None:
        _positive(self.sample_rate, "Config.sample_rate")
        _positive(self.lock_timeout, "Config.lock_timeout")
        _positive(self.statement_timeout, "Config.statement_timeout")
        _positive(self.pass_lock_wait, "Config.pass_lock_wait")
        if not isinstance(self.detach_concurrently, bool):
            raise ConfigError(
                "Config.detach_concurrently must be true or false, got "
                f"{self.detach_concurrently!r}"
            )
        if not isinstance(self.retry_backoff, dt.timedelta) or self.retry_backoff < dt.timedelta():
            raise ConfigError(f"Config.retry_backoff must be >= 0, got {self.retry_backoff!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"Config.max_retries must be >= 0, got {self.max_retries!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 1000:
            raise ConfigError(f"Config.batch_size must be 1..1000, got {self.batch_size!r}")
        if not isinstance(self.move_batch_rows, int) or self.move_batch_rows < 1:
            raise ConfigError(f"Config.move_batch_rows must be >= 1, got {self.move_batch_rows!r}")
        check_identifier(self.metadata_schema, "Config.metadata_schema")
        if self.metadata_schema == "partman":
            raise ConfigError(
                "Config.metadata_schema 'partman' is where pg_partman and go_partman keep their "
                "own tables; choose another name (the default is 'partman_meta')"
            )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(
                f"Config.timezone {self.timezone!r} is not an IANA time zone "
                "(e.g. 'UTC', 'Europe/Berlin', 'America/New_York')"
            ) from None

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


TenantId = str | int | uuid.UUID


@dataclass(frozen=True, kw_only=True)
class Table:
    """A partitioned parent and its policy; go_partman's `Table`, field for field.

    With `tenant_id` set it also registers that tenant, and its `retention_period` and
    `partition_count` become that tenant's own policy. As an import template, `name` and/or
    `tenant_id` may be None (all tables of the schema, all tenants found).
    """

    name: str | None
    """The partitioned parent (quoted: case is kept). None only in an import template: every
    partitioned table of `schema`."""
    schema: str = "public"
    """The parent's schema."""
    tenant_id: TenantId | None = None
    """Register this tenant too; the Table's `retention_period`, `partition_count` and
    `retention_action` become its own policy. None in an import template: every tenant found."""
    tenant_id_column: str | None = None
    """The tenant column, first in the key `RANGE (tenant, time)` (text-like, integer or uuid).
    None: the table is keyed by its time column alone."""
    partition_by: str
    """The time column of the key: timestamptz, timestamp or date."""
    partition_type: PartitionType = PartitionType.RANGE
    """RANGE, the only strategy partman manages."""
    retention_period: dt.timedelta | str | Interval | None = None
    """Partitions whose upper bound is at or before now minus this are retired (see
    `retention_action`). None: kept forever."""
    partition_interval: dt.timedelta | str | Interval = "1 day"
    """The length of one partition: whole hours, days, weeks or months ("6 hours", "1 day",
    "1 week", "monthly", a timedelta), aligned on the calendar of `Config.timezone`."""
    partition_count: int = 10
    """Future partitions kept ahead of the current one (pg_partman's premake)."""
    backfill: bool = False
    """Also create the partitions between the start of the retention window and now."""
    default_partition: bool = False
    """Keep a DEFAULT partition, so an insert outside every range lands somewhere. partman
    moves its rows into new partitions as they are made. It rules out DETACH CONCURRENTLY
    (PostgreSQL refuses it on a parent with a default), so retention detaches with a brief
    ACCESS EXCLUSIVE lock, under the same lock budget."""
    retention_action: RetentionAction | str = RetentionAction.DROP
    """What retention does with an expired partition: "drop", "detach" or "archive"."""
    archive_schema: str | None = None
    """Where retention_action ARCHIVE moves expired partitions."""
    interval: Interval = field(init=False, repr=False, compare=False)
    retention: Retention | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name is not None:
            check_identifier(self.name, "Table.name")
        check_identifier(self.schema, "Table.schema")
        check_identifier(self.partition_by, "Table.partition_by")
        if self.tenant_id_column is not None:
            check_identifier(self.tenant_id_column, "Table.tenant_id_column")
            if self.tenant_id_column == self.partition_by:
                raise ConfigError(
                    f"Table.tenant_id_column and Table.partition_by are both "
                    f"{self.partition_by!r}; the key is (tenant column, time column)"
                )
        elif self.tenant_id is not None:
            raise ConfigError(
                f"Table {self.name!r} has tenant_id={self.tenant_id!r} but no tenant_id_column; "
                "set tenant_id_column to the column holding the tenant (e.g. 'project_id')"
            )
        if isinstance(self.tenant_id, bool) or not (
            self.tenant_id is None or isinstance(self.tenant_id, TenantId)
        ):
            raise ConfigError(f"Table.tenant_id must be a str, int or UUID, not {self.tenant_id!r}")
        if not isinstance(self.partition_type, PartitionType):
            raise ConfigError(
                f"Table.partition_type must be partman.PartitionType.RANGE, "
                f"got {self.partition_type!r}"
            )
        if (
            isinstance(self.partition_count, bool)
            or not isinstance(self.partition_count, int)
            or not 0 <= self.partition_count <= 10_000
        ):
            raise ConfigError(
                f"Table.partition_count must be an integer from 0 to 10000 (future partitions "
                f"kept ahead), got {self.partition_count!r}"
            )
        action = parse_action(self.retention_action, "Table.retention_action")
        object.__setattr__(self, "retention_action", action)
        if self.archive_schema is not None:
            check_identifier(self.archive_schema, "Table.archive_schema")
        if action is RetentionAction.ARCHIVE and self.archive_schema is None:
            raise ConfigError(
                f"Table {self.name!r}: retention_action 'archive' needs archive_schema, the "
                "schema expired partitions are moved to"
            )
        if self.archive_schema is not None and self.archive_schema == self.schema:
            raise ConfigError(
                f"Table {self.name!r}: archive_schema must differ from the table's own schema"
            )
        object.__setattr__(self, "interval", Interval.parse(self.partition_interval))
        object.__setattr__(self, "retention", parse_retention(self.retention_period))
        if self.backfill and self.retention is None:
            raise ConfigError(
                f"Table {self.name!r}: backfill creates partitions back to the start of the "
                "retention window, so it needs a retention_period"
            )

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def action(self) -> RetentionAction:
        return parse_action(self.retention_action, "Table.retention_action")


@dataclass(frozen=True, kw_only=True)
class Tenant:
    """A tenant of a multi-tenant table; a None policy field inherits the table's."""

    tenant_id: TenantId
    """A value of the tenant column: a str, int or UUID (data, never spliced into SQL)."""
    retention_period: dt.timedelta | str | Interval | None = None
    """None inherits the table's; the string 'forever' keeps this tenant's partitions."""
    partition_count: int | None = None
    """None inherits the table's."""
    retention_action: RetentionAction | str | None = None
    """None inherits the table's."""

    def __post_init__(self) -> None:
        if self.retention_action is not None:
            action = parse_action(self.retention_action, "Tenant.retention_action")
            object.__setattr__(self, "retention_action", action)
        if isinstance(self.tenant_id, bool) or not isinstance(self.tenant_id, TenantId):
            raise ConfigError(
                f"Tenant.tenant_id must be a str, int or UUID, not {self.tenant_id!r}"
            )
        if self.partition_count is not None and (
            isinstance(self.partition_count, bool)
            or not isinstance(self.partition_count, int)
            or not 0 <= self.partition_count <= 10_000
        ):
            raise ConfigError(
                f"Tenant {self.tenant_id!r}: partition_count must be 0..10000 or None "
                f"(inherit), got {self.partition_count!r}"
            )
        if self.retention_period != FOREVER:
            parse_retention(self.retention_period)

    @property
    def action(self) -> RetentionAction | None:
        if self.retention_action is None:
            return None
        return parse_action(self.retention_action, "Tenant.retention_action")

    @property
    def keeps_forever(self) -> bool:
        return self.retention_period == FOREVER

    @property
    def retention(self) -> Retention | None:
        """The tenant's own retention; None when it inherits or keeps forever."""
        if self.retention_period == FOREVER:
            return None
        return parse_retention(self.retention_period)
