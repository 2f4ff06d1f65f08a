"""partman.toml and framework settings (Django's PARTMAN block), read into `model` objects.

Pure: reads text and mappings, never a database. `toml` reads the file (and mappings with the
same keys), reporting every problem as `file:line: key`.
"""

from .toml import (
    CONFIG_FIELDS,
    DEFAULT_PATH,
    DURATION_EXAMPLES,
    SERVICE_FIELDS,
    TABLE_FIELDS,
    TENANT_FIELDS,
    Locator,
    Path_,
    Problem,
    Settings,
    SettingsError,
    TableSpec,
    TenantSpec,
    expand,
    from_mapping,
    key_text,
    load,
    parse,
    parse_duration,
    read,
)

__all__ = [
    "CONFIG_FIELDS",
    "DEFAULT_PATH",
    "DURATION_EXAMPLES",
    "SERVICE_FIELDS",
    "TABLE_FIELDS",
    "TENANT_FIELDS",
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
]
