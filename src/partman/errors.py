"""Every error a user can act on is a PartmanError; the message names the object and the fix."""

from __future__ import annotations


class PartmanError(Exception):
    """Base of every error partman raises for a problem the user can fix."""


class ConfigError(PartmanError):
    """A Table, Tenant or Config value is invalid on its own (before any database is asked)."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field
        """The field the value was given for, when the error is about one: a settings file
        shows the problem at that key."""


class IntervalError(ConfigError):
    """A partition interval or retention period cannot be understood or is impossible."""


class CatalogError(PartmanError):
    """The database does not hold what the configuration describes (table, key, column type)."""


class TableNotFoundError(CatalogError):
    """The parent table named in the configuration does not exist."""


class NotPartitionedError(CatalogError):
    """The parent exists but is not a partitioned table of the supported shape."""


class KeyMismatchError(CatalogError):
    """The parent's partition key does not match the configured columns or types."""


class TenantError(ConfigError):
    """A tenant id cannot be stored in the tenant column, or is unknown."""


class NotRegisteredError(PartmanError):
    """The table (or tenant) is not managed by partman yet."""


class MetadataError(PartmanError):
    """partman's metadata schema is missing, foreign, or from a newer partman."""


class LockUnavailableError(PartmanError):
    """A lock could not be had within the lock budget; the work was skipped, not queued."""


class IndexDefinitionError(CatalogError):
    """An index asked for cannot be built as given (an unknown column, a unique index without
    the partition key, a name another definition uses); nothing was changed."""


class ArchiveError(PartmanError):
    """A partition cannot be exported to Parquet (a column type that cannot round-trip, a
    location that cannot be written, a file that does not match), or an archive cannot be
    restored (an overlap, a name in use); nothing irreversible was done."""


class ConversionError(PartmanError):
    """`partman convert` cannot go on as asked (a name in use, settings that differ from the
    conversion under way, a step out of order); the message says what to do."""
