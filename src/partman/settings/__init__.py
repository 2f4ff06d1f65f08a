"""partman.toml and framework settings (Django's PARTMAN block), read into `model` objects.

Pure: reads text and mappings, never a database. `toml` parses the file and `mapping` reads
its sections (or a mapping with the same keys), reporting every problem as `file:line: key`;
`values` reads TOML types (the model's dataclasses say what is a good value); `locator` finds
the line of a key; `problems` is what is reported.
"""

from .locator import Locator
from .mapping import (
    DEFAULT_DATABASE,
    DatabaseSpec,
    IndexSpec,
    Settings,
    TableSpec,
    TenantSpec,
    from_mapping,
)
from .problems import Path_, Problem, SettingsError, key_text
from .toml import DEFAULT_PATH, load, parse, read
from .values import (
    CONFIG_FIELDS,
    DURATION_EXAMPLES,
    SERVICE_FIELDS,
    TABLE_FIELDS,
    TENANT_FIELDS,
    expand,
    parse_duration,
    retention_text_value,
)

__all__ = [
    "CONFIG_FIELDS",
    "DEFAULT_DATABASE",
    "DEFAULT_PATH",
    "DURATION_EXAMPLES",
    "SERVICE_FIELDS",
    "TABLE_FIELDS",
    "TENANT_FIELDS",
    "DatabaseSpec",
    "IndexSpec",
    "Locator",
    "Path_",
    "Problem",
    "Settings",
    "SettingsError",
    "TableSpec",
    "TenantSpec",
    "expand",
    "from_mapping",
    "key_text",
    "load",
    "parse",
    "parse_duration",
    "read",
    "retention_text_value",
]
