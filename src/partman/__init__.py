"""partman: PostgreSQL declarative partitioning, managed from Python.

Pre-creates future time-range partitions (per tenant for `RANGE (tenant, time)` keys), applies
retention policies that can differ per tenant, adopts partitions that already exist, and runs
its DDL on a lock budget so the application never waits behind it.
"""

from .decide.adoption import Found, ImportReport
from .decide.coverage import Coverage, Inventory, PartitionRow
from .engine.convert import Converter
from .engine.convert_async import AsyncConverter
from .engine.manager import Manager
from .engine.manager_async import AsyncManager
from .errors import (
    ArchiveError,
    CatalogError,
    ConfigError,
    ConversionError,
    IndexDefinitionError,
    IntervalError,
    KeyMismatchError,
    LockUnavailableError,
    MetadataError,
    NotPartitionedError,
    NotRegisteredError,
    PartmanError,
    TableNotFoundError,
    TenantError,
)
from .model.archive import Archive
from .model.clock import Clock, RealClock, SimulatedClock
from .model.config import (
    Config,
    PartitionType,
    RetentionAction,
    Table,
    Tenant,
    TenantPartitioning,
)
from .model.indexes import IndexReport, IndexState, IndexStep
from .model.intervals import Interval, Retention
from .model.keys import Epoch
from .model.operations import (
    CreateDefaultPartition,
    CreatePartition,
    DropPartition,
    ForgetPartition,
    Notice,
    Operation,
    Plan,
    RetirePartition,
)
from .model.report import OperationResult, Outcome, Report, SkipReason

__version__ = "0.1.0"

__all__ = [
    "Archive",
    "ArchiveError",
    "AsyncConverter",
    "AsyncManager",
    "CatalogError",
    "Clock",
    "Config",
    "ConfigError",
    "ConversionError",
    "Converter",
    "Coverage",
    "CreateDefaultPartition",
    "CreatePartition",
    "DropPartition",
    "Epoch",
    "ForgetPartition",
    "Found",
    "ImportReport",
    "IndexDefinitionError",
    "IndexReport",
    "IndexState",
    "IndexStep",
    "Interval",
    "IntervalError",
    "Inventory",
    "KeyMismatchError",
    "LockUnavailableError",
    "Manager",
    "MetadataError",
    "NotPartitionedError",
    "NotRegisteredError",
    "Notice",
    "Operation",
    "OperationResult",
    "Outcome",
    "PartitionRow",
    "PartitionType",
    "PartmanError",
    "Plan",
    "RealClock",
    "Report",
    "Retention",
    "RetentionAction",
    "RetirePartition",
    "SimulatedClock",
    "SkipReason",
    "Table",
    "TableNotFoundError",
    "Tenant",
    "TenantError",
    "TenantPartitioning",
    "__version__",
]
