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
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError
from .intervals import KEEP_FOREVER, Interval, Retention, parse_retention
from .keys import (
    EPOCH_TEXT,
    Epoch,
    IdInterval,
    IdRetention,
    parse_epoch,
    parse_id_retention,
)
from .rollup import alignment_error
from .rules import Check, Subject, apply_rules, optional, rule
from .storage import Value, check_parameters

MAX_IDENTIFIER_BYTES = 63
MAX_PARTITION_COUNT = 10_000
FOREVER = "forever"


class RetentionAction(enum.Enum):
    """What retention does with an expired partition (pg_partman: retention_keep_table)."""

    DROP = "drop"
    """Detach it, then drop the table (the default)."""
    DETACH = "detach"
    """Detach it and keep the table where it is (no longer a partition, never touched again)."""
    ARCHIVE = "archive"
    """Detach it and move it to `archive_schema`."""
    EXPORT = "export"
    """Detach it, write it to Parquet under `export_location`, read the file back and check
    it, record it in the archive manifest, then drop the table (`docs/archive.md`)."""


def parse_action(value: object, what: str) -> RetentionAction:
    if isinstance(value, RetentionAction):
        return value
    try:
        return RetentionAction(str(value).lower())
    except ValueError:
        raise ConfigError(
            f"{what} must be 'drop', 'detach', 'archive' or 'export' (partman.RetentionAction), "
            f"got {value!r}"
        ) from None


class PartitionType(enum.Enum):
    """The partitioning strategy of the parent; go_partman's `TypeRange`."""

    RANGE = "range"


class TenantPartitioning(enum.Enum):
    """How a multi-tenant parent splits its tenants."""

    RANGE = "range"
    """`PARTITION BY RANGE (tenant, time)`: one partition per tenant and period, directly
    under the parent (go_partman's shape)."""
    LIST = "list"
    """`PARTITION BY LIST (tenant)`: one partition per tenant, itself `PARTITION BY RANGE
    (time)` with the tenant's periods below it. Scales to many more tenants: the parent has
    one partition per tenant, not per tenant and period."""


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


# -- each field's own rule (`rules`), stated once ------------------------------------------------


def _positive(value: object, s: Subject) -> object:
    if not isinstance(value, dt.timedelta) or value <= dt.timedelta(0):
        raise ConfigError(f"{s.label} must be a positive timedelta, got {value!r}")
    return value


def _not_negative(value: object, s: Subject) -> object:
    if not isinstance(value, dt.timedelta) or value < dt.timedelta():
        raise ConfigError(f"{s.label} must be >= 0, got {value!r}")
    return value


def _boolean(value: object, s: Subject) -> object:
    if not isinstance(value, bool):
        raise ConfigError(f"{s.label} must be true or false, got {value!r}")
    return value


def _count_at_least(low: int) -> Check:
    def check(value: object, s: Subject) -> object:
        if not isinstance(value, int) or value < low:
            raise ConfigError(f"{s.label} must be >= {low}, got {value!r}")
        return value

    return check


def _batch_size(value: object, s: Subject) -> object:
    if not isinstance(value, int) or not 1 <= value <= 1000:
        raise ConfigError(f"{s.label} must be 1..1000, got {value!r}")
    return value


def _metadata_schema(value: object, s: Subject) -> object:
    check_identifier(value, s.label)
    if value == "partman":
        raise ConfigError(
            f"{s.label} 'partman' is where pg_partman and go_partman keep their "
            "own tables; choose another name (the default is 'partman_meta')"
        )
    return value


def _timezone(value: object, s: Subject) -> object:
    try:
        zoneinfo.ZoneInfo(value)  # type: ignore[arg-type]
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"{s.label} {value!r} is not an IANA time zone "
            "(e.g. 'UTC', 'Europe/Berlin', 'America/New_York')"
        ) from None
    return value


def _name(value: object, s: Subject) -> object:
    """An identifier; a file shows the key before the message, so it says "the name"."""
    return check_identifier(value, "the name" if s.in_file else s.label)


_optional_name = optional(_name)


def _partition_type(value: object, s: Subject) -> object:
    if s.in_file and isinstance(value, str):
        try:
            return PartitionType(value.lower())
        except ValueError:
            raise ConfigError(f'{value!r}: partman manages "range" partitioning only') from None
    if not isinstance(value, PartitionType):
        raise ConfigError(f"{s.label} must be partman.PartitionType.RANGE, got {value!r}")
    return value


def _ids(value: object) -> object:
    """An id count as written in a string, "1000000", "1_000_000" or "5000 ids", is that int
    (ids are counted, never a time): the same value an int gives."""
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("ids").strip().replace("_", "").replace(",", "")
        if text.isdigit():
            return int(text)
    return value


def _interval(value: object, s: Subject) -> object:
    value = _ids(value)
    if isinstance(value, int) and not isinstance(value, bool):
        IdInterval(value)  # a window of ids
        return value
    Interval.parse(value)  # type: ignore[arg-type]
    return value


def _rollup_after(value: object, s: Subject) -> object:
    """How old a coarse period must be, all of it, before its fine partitions are merged."""
    try:
        parse_retention(value)  # type: ignore[arg-type]
    except ConfigError:
        raise ConfigError(
            f"{s.name if s.in_file else s.label} must be a period of time like \"90 days\" or "
            f'"3 months", got {value!r}'
        ) from None
    return value


def _rollup_interval(value: object, s: Subject) -> object:
    """The coarse period fine partitions are merged into: a period of time, never ids."""
    Interval.parse(value)  # type: ignore[arg-type]
    return value


def _epoch(value: object, s: Subject) -> object:
    return parse_epoch(value, s.name if s.in_file else s.label)


def _tenant_partitioning(value: object, s: Subject) -> object:
    if isinstance(value, TenantPartitioning):
        return value
    try:
        return TenantPartitioning(str(value).lower())
    except ValueError:
        raise ConfigError(
            f'{s.name if s.in_file else s.label} must be "range" (PARTITION BY RANGE '
            f'(tenant, time)) or "list" (PARTITION BY LIST (tenant), each tenant\'s '
            f"partition by RANGE (time)), got {value!r}"
        ) from None


def _modulus(value: object, s: Subject) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 1024:
        raise ConfigError(
            f"{s.label} must be an integer from 2 to 1024 (HASH partitions below each "
            f"period), got {value!r}"
        )
    return value


def _keeps_forever(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() == FOREVER


def _retention(value: object, s: Subject) -> object:
    """A Table's retention period; "forever" (as a file writes it) is None, keep everything.
    An int is a distance in ids (id tables only, checked with the interval)."""
    if _keeps_forever(value):
        return None
    value = _ids(value)
    if isinstance(value, int) and not isinstance(value, bool):
        IdRetention(value)
        return value
    _parse_retention(value, s)
    return value


def _tenant_retention(value: object, s: Subject) -> object:
    """A Tenant's: None inherits the table's, "forever" keeps this tenant's partitions."""
    if _keeps_forever(value):
        return FOREVER
    value = _ids(value)
    if isinstance(value, int) and not isinstance(value, bool):
        IdRetention(value)
        return value
    _parse_retention(value, s)
    return value


def _parse_retention(value: object, s: Subject) -> Retention | None:
    forever = 'or "forever"' if s.in_file else KEEP_FOREVER
    return parse_retention(value, forever=forever)  # type: ignore[arg-type]


def _action(value: object, s: Subject) -> object:
    return parse_action(value, s.name if s.in_file else s.label)


def _partition_count(value: object, s: Subject) -> object:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_PARTITION_COUNT
    ):
        raise ConfigError(
            f"{s.label} must be an integer from 0 to {MAX_PARTITION_COUNT} (future partitions "
            f"kept ahead), got {value!r}"
        )
    return value


def _storage_parameters(value: object, s: Subject) -> object:
    return check_parameters(value, None if s.in_file else s.label)


def _table_tenant_id(value: object, s: Subject) -> object:
    if isinstance(value, bool) or not (value is None or isinstance(value, TenantId)):
        raise ConfigError(f"{s.label} must be a str, int or UUID, not {value!r}")
    return value


def _optional_location(value: object, s: Subject) -> object:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{s.label} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise ConfigError(f"{s.label} {value!r} contains a NUL character")
    return value


def _tenant_id(value: object, s: Subject) -> object:
    if isinstance(value, bool) or not isinstance(value, TenantId):
        raise ConfigError(f"{s.label} must be a str, int or UUID, not {value!r}")
    return value


_INTERVAL_TEXT = (
    'a string like "1 day", "15 minutes", "1 week" or "monthly", or an integer (ids per window)'
)
_RETENTION_TEXT = 'a string like "30 days", "3 months" or "forever", or an integer (ids)'
_TENANT_PARTITIONING_TEXT = 'the string "range" or "list"'
_ACTION_TEXT = 'one of "drop", "detach", "archive", "export"'
_ROLLUP_AFTER_TEXT = 'a string like "90 days" or "3 months"'
_ROLLUP_INTERVAL_TEXT = 'a string like "1 month" or "1 day"'


@dataclass(frozen=True, kw_only=True)
class Config:
    """How partman behaves; every field has a default that is safe on a busy database."""

    sample_rate: dt.timedelta = field(default=dt.timedelta(minutes=1), metadata=rule(_positive))
    """How often `Manager.start()` runs a maintenance pass."""
    lock_timeout: dt.timedelta = field(
        default=dt.timedelta(milliseconds=250), metadata=rule(_positive)
    )
    """The longest any DDL statement waits for a lock (and so the longest it can hold up the
    application's queries queued behind it) before it gives up and retries later."""
    statement_timeout: dt.timedelta = field(
        default=dt.timedelta(seconds=60), metadata=rule(_positive)
    )
    """The longest any statement that changes something may run (moving rows out of a default
    partition, checking a partition's newest row before retention, a detach); a statement cut
    short by it is a failure, not retried."""
    max_retries: int = field(default=3, metadata=rule(_count_at_least(0)))
    """Retries of a DDL transaction that hit the lock budget, with jittered exponential backoff."""
    retry_backoff: dt.timedelta = field(
        default=dt.timedelta(milliseconds=200), metadata=rule(_not_negative)
    )
    """Base of the wait between retries: the n-th retry waits `retry_backoff * 2**(n - 1)`,
    times a random factor between 0.5 and 1.5."""
    metadata_schema: str = field(default="partman_meta", metadata=rule(_metadata_schema))
    """Where partman keeps its metadata. Not `partman`: pg_partman and go_partman use that."""
    timezone: str = field(default="UTC", metadata=rule(_timezone))
    """The IANA zone in which periods are aligned (a day starts at local midnight)."""
    batch_size: int = field(default=32, metadata=rule(_batch_size))
    """Partitions created per transaction: fewer commits, but more locks held until commit."""
    move_batch_rows: int = field(default=10_000, metadata=rule(_count_at_least(1)))
    """Rows moved out of a default partition per transaction."""
    pass_lock_wait: dt.timedelta = field(default=dt.timedelta(seconds=60), metadata=rule(_positive))
    """How long a pass waits for another manager's pass on the same database to finish."""
    application_name: str = "partman"
    detach_concurrently: bool = field(default=True, metadata=rule(_boolean))
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
        apply_rules(self)

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

    name: str | None = field(metadata=rule(_optional_name, "a string"))
    """The partitioned parent (quoted: case is kept). None only in an import template: every
    partitioned table of `schema`."""
    schema: str = field(default="public", metadata=rule(_name, "a string"))
    """The parent's schema."""
    tenant_id: TenantId | None = field(default=None, metadata=rule(_table_tenant_id))
    """Register this tenant too; the Table's `retention_period`, `partition_count` and
    `retention_action` become its own policy. None in an import template: every tenant found."""
    tenant_id_column: str | None = field(default=None, metadata=rule(_optional_name, "a string"))
    """The tenant column, first in the key `RANGE (tenant, time)` (text-like, integer or uuid).
    None: the table is keyed by its time column alone."""
    partition_by: str = field(metadata=rule(_name, "a string"))
    """The column partitions are ranges of: time (timestamptz, timestamp, date), an epoch
    integer (with `epoch`), a UUIDv7 (uuid), or an integer id (int, bigint, numeric, with an
    integer `partition_interval`)."""
    partition_type: PartitionType = field(
        default=PartitionType.RANGE, metadata=rule(_partition_type, 'the string "range"')
    )
    """RANGE, the only strategy partman manages."""
    retention_period: dt.timedelta | str | Interval | int | None = field(
        default=None, metadata=rule(_retention, _RETENTION_TEXT)
    )
    """Partitions whose upper bound is at or before now minus this are retired (see
    `retention_action`). None: kept forever. For an id table, an int: windows wholly below
    max(id) minus this many ids expire; or a time period with `retention_column`."""
    partition_interval: dt.timedelta | str | Interval | int = field(
        default="1 day", metadata=rule(_interval, _INTERVAL_TEXT)
    )
    """The length of one partition: seconds, minutes, hours, days, weeks or months ("15
    minutes", "6 hours", "1 day", "1 week", "monthly", a timedelta), aligned on the calendar
    of `Config.timezone`; for an id key, an int: the ids in one window (e.g. 1_000_000)."""
    epoch: Epoch | str | None = field(default=None, metadata=rule(optional(_epoch), EPOCH_TEXT))
    """The partition_by column is an integer holding time since 1970 in this unit:
    "seconds", "milliseconds", "microseconds" or "nanoseconds" (pg_partman's p_epoch)."""
    retention_column: str | None = field(default=None, metadata=rule(_optional_name, "a string"))
    """Id tables: a time column (timestamptz, timestamp, date) by whose age retention goes:
    a window below the current one expires once its newest row in this column is older than
    `retention_period`, checked against the rows themselves."""
    sub_partition_by: str | None = field(default=None, metadata=rule(_optional_name, "a string"))
    """Each period's partition is itself `PARTITION BY HASH (this column)`, with
    `sub_partition_modulus` partitions below it, made with it in one transaction."""
    sub_partition_modulus: int | None = field(
        default=None, metadata=rule(optional(_modulus), "an integer")
    )
    """How many HASH partitions each period has (2 to 1024)."""
    tenant_partitioning: TenantPartitioning | str = field(
        default=TenantPartitioning.RANGE,
        metadata=rule(_tenant_partitioning, _TENANT_PARTITIONING_TEXT),
    )
    """How tenants split the parent: "range" (`RANGE (tenant, time)`, the default) or "list"
    (`LIST (tenant)`, each tenant's partition `RANGE (time)`)."""
    partition_count: int = field(default=10, metadata=rule(_partition_count))
    """Future partitions kept ahead of the current one (pg_partman's premake)."""
    backfill: bool = False
    """Also create the partitions between the start of the retention window and now."""
    default_partition: bool = False
    """Keep a DEFAULT partition, so an insert outside every range lands somewhere. partman
    moves its rows into new partitions as they are made. It rules out DETACH CONCURRENTLY
    (PostgreSQL refuses it on a parent with a default), so retention detaches with a brief
    ACCESS EXCLUSIVE lock, under the same lock budget."""
    retention_action: RetentionAction | str = field(
        default=RetentionAction.DROP, metadata=rule(_action, _ACTION_TEXT)
    )
    """What retention does with an expired partition: "drop", "detach" or "archive"."""
    archive_schema: str | None = field(default=None, metadata=rule(_optional_name, "a string"))
    """Where retention_action ARCHIVE moves expired partitions."""
    export_location: str | None = field(default=None, metadata=rule(_optional_location, "a string"))
    """Where retention_action EXPORT writes expired partitions as Parquet files: a local
    directory, or an fsspec URL such as "s3://bucket/prefix" (credentials from the
    environment, as the storage's own client reads them)."""
    storage_parameters: Mapping[str, Value] = field(
        default_factory=dict, hash=False, metadata=rule(_storage_parameters)
    )
    """Storage parameters each new partition is created with (`WITH (fillfactor = 90)`), e.g.
    {"fillfactor": 90, "autovacuum_vacuum_scale_factor": 0.05}: PostgreSQL refuses them on a
    partitioned parent. Heap table parameters only (`model.storage.PARAMETERS`)."""
    rollup_after: dt.timedelta | str | Interval | None = field(
        default=None, metadata=rule(optional(_rollup_after), _ROLLUP_AFTER_TEXT)
    )
    """Roll-ups (pg_partman #466): once a whole `rollup_interval` period is older than now
    minus this, its fine partitions (partman's own) are merged into one partition of that
    period, built detached, copied, and swapped in in one short transaction. None: never.
    Time keys only (timestamptz, timestamp, date, epoch, UUIDv7)."""
    rollup_interval: dt.timedelta | str | Interval | None = field(
        default=None, metadata=rule(optional(_rollup_interval), _ROLLUP_INTERVAL_TEXT)
    )
    """The coarse period a roll-up merges into, e.g. "1 month" over "1 day" partitions: its
    boundaries must be partition_interval boundaries (daily -> monthly, not weekly ->
    monthly)."""
    interval: Interval | IdInterval = field(init=False, repr=False, compare=False)
    retention: Retention | IdRetention | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        apply_rules(self)
        if self.tenant_id_column is None and self.tenant_id is not None:
            raise ConfigError(
                f"Table {self.name!r} has tenant_id={self.tenant_id!r} but no tenant_id_column; "
                "set tenant_id_column to the column holding the tenant (e.g. 'project_id')",
                field="tenant_id",
            )
        if self.tenant_id_column == self.partition_by:
            raise ConfigError(
                f"Table.tenant_id_column and Table.partition_by are both "
                f"{self.partition_by!r}; the key is (tenant column, time column)",
                field="tenant_id_column",
            )
        if self.action is RetentionAction.ARCHIVE and self.archive_schema is None:
            raise ConfigError(
                f"Table {self.name!r}: retention_action 'archive' needs archive_schema, the "
                "schema expired partitions are moved to",
                field="retention_action",
            )
        if self.action is RetentionAction.EXPORT and self.export_location is None:
            raise ConfigError(
                f"Table {self.name!r}: retention_action 'export' needs export_location, a "
                'local directory or a URL like "s3://bucket/prefix" the Parquet files go to',
                field="retention_action",
            )
        if self.archive_schema is not None and self.archive_schema == self.schema:
            raise ConfigError(
                f"Table {self.name!r}: archive_schema must differ from the table's own schema",
                field="archive_schema",
            )
        object.__setattr__(self, "interval", table_interval(self.partition_interval))
        object.__setattr__(self, "retention", table_retention(self.retention_period))
        self._check_shape()
        self._check_rollup()
        if self.backfill and self.retention is None:
            raise ConfigError(
                f"Table {self.name!r}: backfill creates partitions back to the start of the "
                "retention window, so it needs a retention_period",
                field="backfill",
            )

    def _check_shape(self) -> None:
        """The rules between the shape's fields (key axis, levels); each names the fix."""
        by_id = isinstance(self.interval, IdInterval)
        name = self.name
        if by_id and self.epoch is not None:
            raise ConfigError(
                f"Table {name!r}: epoch {self.epoch_unit.value!r} makes {self.partition_by!r} "
                "time, so partition_interval must be a period like '1 day', not a number of ids",
                field="partition_interval",
            )
        if isinstance(self.retention, IdRetention) and not by_id:
            raise ConfigError(
                f"Table {name!r}: retention_period {self.retention_period!r} is a number of ids, "
                "but partition_interval is a period of time; write a period like '30 days'",
                field="retention_period",
            )
        if self.retention_column is not None:
            if not by_id:
                raise ConfigError(
                    f"Table {name!r}: retention_column is for id tables (an integer "
                    "partition_interval); a time table's retention goes by partition_by itself",
                    field="retention_column",
                )
            if self.retention is None or isinstance(self.retention, IdRetention):
                raise ConfigError(
                    f"Table {name!r}: retention_column {self.retention_column!r} needs a "
                    "retention_period of time, like '30 days'",
                    field="retention_column",
                )
        elif by_id and isinstance(self.retention, Retention):
            raise ConfigError(
                f"Table {name!r}: retention_period {self.retention_period!r} is a period of time "
                "but the key is an id; give a number of ids (windows below max(id) minus it "
                "expire), or set retention_column to a time column whose age decides",
                field="retention_period",
            )
        if by_id and self.backfill:
            raise ConfigError(
                f"Table {name!r}: backfill is for time keys; an id table's windows start at "
                "its current max(id)",
                field="backfill",
            )
        if (self.sub_partition_by is None) != (self.sub_partition_modulus is None):
            raise ConfigError(
                f"Table {name!r}: sub_partition_by and sub_partition_modulus go together "
                "(e.g. sub_partition_by='device_id', sub_partition_modulus=8)",
                field="sub_partition_modulus"
                if self.sub_partition_modulus is None
                else "sub_partition_by",
            )
        if self.sub_partition_by is not None and self.sub_partition_by in (
            self.partition_by,
            self.tenant_id_column,
        ):
            raise ConfigError(
                f"Table {name!r}: sub_partition_by {self.sub_partition_by!r} is already a key "
                "column; hash by another column",
                field="sub_partition_by",
            )
        if self.list_tenants:
            if self.tenant_id_column is None:
                raise ConfigError(
                    f"Table {name!r}: tenant_partitioning 'list' needs tenant_id_column, the "
                    "column the parent is PARTITION BY LIST on",
                    field="tenant_partitioning",
                )
            if self.default_partition:
                raise ConfigError(
                    f"Table {name!r}: default_partition is not supported with "
                    "tenant_partitioning 'list' (rows of an unregistered tenant would have "
                    "nowhere to move); register each tenant instead",
                    field="default_partition",
                )
            if self.sub_partition_by is not None:
                raise ConfigError(
                    f"Table {name!r}: sub_partition_by is not supported with "
                    "tenant_partitioning 'list' (LIST -> RANGE -> HASH); partman supports "
                    "LIST -> RANGE, RANGE -> HASH and RANGE (tenant, time)",
                    field="sub_partition_by",
                )

    def _check_rollup(self) -> None:
        """rollup_after and rollup_interval go together, on a time key, aligned."""
        name = self.name
        after, coarse = self.rollup_after, self.rollup_interval
        if after is None and coarse is None:
            return
        if after is None or coarse is None:
            raise ConfigError(
                f"Table {name!r}: rollup_after and rollup_interval go together (e.g. "
                "rollup_after='90 days', rollup_interval='1 month')",
                field="rollup_interval" if coarse is None else "rollup_after",
            )
        if isinstance(self.interval, IdInterval):
            raise ConfigError(
                f"Table {name!r}: roll-ups are for time keys; an id table's windows are not "
                "periods of time (remove rollup_after and rollup_interval, or widen "
                "partition_interval)",
                field="rollup_after",
            )
        if self.sub_partition_by is not None:
            raise ConfigError(
                f"Table {name!r}: roll-ups of HASH-partitioned periods (sub_partition_by) are "
                "not supported; remove rollup_after and rollup_interval, or sub_partition_by",
                field="rollup_after",
            )
        wide = rollup_interval(self)
        assert wide is not None
        why = alignment_error(self.interval, wide)
        if why is not None:
            raise ConfigError(
                f"Table {name!r}: rollup_interval {wide} does not fit partition_interval "
                f"{self.interval}: {why}; choose a rollup_interval made of whole "
                "partitions (e.g. '1 day' -> '1 month', '1 hour' -> '1 day', '1 week' -> "
                "'4 weeks')",
                field="rollup_interval",
            )
        kept = parse_retention(after)
        if self.retention is not None and isinstance(self.retention, Retention):
            assert kept is not None
            if _length(kept) >= _length(self.retention):
                raise ConfigError(
                    f"Table {name!r}: rollup_after {kept} is not shorter than "
                    f"retention_period {self.retention}: retention would drop the partitions "
                    "first; make rollup_after shorter than retention_period",
                    field="rollup_after",
                )

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def action(self) -> RetentionAction:
        return parse_action(self.retention_action, "Table.retention_action")

    @property
    def epoch_unit(self) -> Epoch:
        assert self.epoch is not None
        return parse_epoch(self.epoch, "Table.epoch")

    @property
    def list_tenants(self) -> bool:
        """Tenants are LIST partitions of the parent, each partitioned by RANGE (time)."""
        return (
            TenantPartitioning(
                _tenant_partitioning(self.tenant_partitioning, Subject("Table", "x"))
            )
            is TenantPartitioning.LIST
        )


def table_interval(value: object) -> Interval | IdInterval:
    """A partition_interval as the planner uses it: ids per window, or a period of time."""
    if isinstance(value, IdInterval):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return IdInterval(value)
    if isinstance(value, str) and value.strip().isdigit():  # as the metadata stores ids
        return IdInterval(int(value))
    return Interval.parse(value)  # type: ignore[arg-type]


def rollup_interval(table: Table) -> Interval | None:
    """A table's rollup_interval as the planner uses it."""
    value = table.rollup_interval
    return None if value is None else Interval.parse(value)


def rollup_after(table: Table) -> Retention | None:
    """A table's rollup_after as the planner uses it."""
    return parse_retention(table.rollup_after)


def _length(kept: Retention) -> dt.timedelta:
    period = kept.period
    return period.approx if isinstance(period, Interval) else period


def table_retention(value: object) -> Retention | IdRetention | None:
    """A retention_period as the planner uses it: a distance in ids, or a period of time."""
    return parse_id_retention(value) or parse_retention(value)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class Tenant:
    """A tenant of a multi-tenant table; a None policy field inherits the table's."""

    tenant_id: TenantId = field(metadata=rule(_tenant_id))
    """A value of the tenant column: a str, int or UUID (data, never spliced into SQL)."""
    retention_period: dt.timedelta | str | Interval | int | None = field(
        default=None, metadata=rule(optional(_tenant_retention), _RETENTION_TEXT)
    )
    """None inherits the table's; the string 'forever' keeps this tenant's partitions; an int
    is a distance in ids (id tables)."""
    partition_count: int | None = None
    """None inherits the table's."""
    retention_action: RetentionAction | str | None = field(
        default=None, metadata=rule(optional(_action), _ACTION_TEXT)
    )
    """None inherits the table's."""

    def __post_init__(self) -> None:
        apply_rules(self)
        count = self.partition_count
        if count is not None and (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 0 <= count <= MAX_PARTITION_COUNT
        ):
            raise ConfigError(
                f"Tenant {self.tenant_id!r}: partition_count must be "
                f"0..{MAX_PARTITION_COUNT} or None (inherit), got {count!r}",
                field="partition_count",
            )

    @property
    def action(self) -> RetentionAction | None:
        if self.retention_action is None:
            return None
        return parse_action(self.retention_action, "Tenant.retention_action")

    @property
    def keeps_forever(self) -> bool:
        return self.retention_period == FOREVER

    @property
    def retention(self) -> Retention | IdRetention | None:
        """The tenant's own retention; None when it inherits or keeps forever."""
        if self.retention_period == FOREVER:
            return None
        return table_retention(self.retention_period)
