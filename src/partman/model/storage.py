"""Storage parameters (`WITH (fillfactor = 90)`) a table gives each new partition.

PostgreSQL refuses them on a partitioned table, so they cannot come from the parent: the table
declares them (`Table.storage_parameters`; pg_partman keeps them on a template table). Only the
parameters of a plain heap table are allowed, so that a name is known before it is written into
SQL (`parameter_sql`) and a typo fails when the table is declared, not at every pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from psycopg import sql

from ..errors import ConfigError

Value = int | float | bool

_VACUUM = (
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_max_threshold",
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_cost_limit",
    "autovacuum_freeze_min_age",
    "autovacuum_freeze_max_age",
    "autovacuum_freeze_table_age",
    "autovacuum_multixact_freeze_min_age",
    "autovacuum_multixact_freeze_max_age",
    "autovacuum_multixact_freeze_table_age",
    "log_autovacuum_min_duration",
)
_VACUUM_REAL = (
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_vacuum_cost_delay",
)
_VACUUM_BOOL = ("autovacuum_enabled", "vacuum_index_cleanup", "vacuum_truncate")

PARAMETERS: dict[str, type] = {
    "fillfactor": int,
    "toast_tuple_target": int,
    "parallel_workers": int,
    "autovacuum_analyze_threshold": int,
    "autovacuum_analyze_scale_factor": float,
    "vacuum_max_eager_freeze_failure_rate": float,
    **{name: int for name in _VACUUM},
    **{name: float for name in _VACUUM_REAL},
    **{name: bool for name in _VACUUM_BOOL},
    **{f"toast.{name}": int for name in _VACUUM},
    **{f"toast.{name}": float for name in _VACUUM_REAL},
    **{f"toast.{name}": bool for name in _VACUUM_BOOL},
}
"""The storage parameters of a heap table (PostgreSQL 15-18), by the type of their value. Left
out: `user_catalog_table` (logical decoding's, not a partition's) and `toast.` parameters
a toast table does not take. A parameter newer than the server is refused by it, when the first
partition is created (`autovacuum_vacuum_max_threshold`: PostgreSQL 18)."""

_KIND = {int: "an integer", float: "a number", bool: "true or false"}
_TRUE = frozenset({"true", "on", "yes", "1", "t", "y"})
_FALSE = frozenset({"false", "off", "no", "0", "f", "n"})


def check_parameters(value: object, label: str | None) -> dict[str, Value]:
    """`value` as `Table.storage_parameters` keeps it (sorted by name), or a ConfigError naming
    the parameter and the fix. `label` names the field (None: a file shows its key)."""
    at = "" if label is None else f"{label}: "
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{at}expected a mapping of parameter to value, like {{'fillfactor': 90}}, "
            f"got {value!r}"
        )
    out: dict[str, Value] = {}
    for name, v in sorted(value.items(), key=lambda item: str(item[0])):
        kind = PARAMETERS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise ConfigError(f"{at}{name!r} {_unknown(name)}")
        good = isinstance(v, bool) if kind is bool else (
            isinstance(v, int | float) and not isinstance(v, bool)
            and (kind is float or isinstance(v, int))
        )  # fmt: skip
        if not good:
            raise ConfigError(f"{at}{name} must be {_KIND[kind]}, got {v!r}")
        if name == "fillfactor" and not 10 <= v <= 100:
            raise ConfigError(f"{at}fillfactor must be 10..100 (percent), got {v!r}")
        out[name] = v
    return out


def _unknown(name: object) -> str:
    close = difflib.get_close_matches(str(name), PARAMETERS, n=1, cutoff=0.75)
    if close:
        return f"is not a storage parameter: did you mean {close[0]}?"
    return (
        "is not a storage parameter partman gives a partition; a heap table's only: "
        "fillfactor, toast_tuple_target, parallel_workers, autovacuum_* and toast.autovacuum_*, "
        "vacuum_index_cleanup, vacuum_truncate, log_autovacuum_min_duration "
        "(the list: partman.model.storage.PARAMETERS)"
    )


def option_text(name: str, value: Value) -> str:
    """A parameter as `pg_class.reloptions` prints it: "fillfactor=90"."""
    shown = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f"{name}={shown}"


def options_of(parameters: Mapping[str, Value]) -> tuple[str, ...]:
    return tuple(option_text(name, v) for name, v in sorted(parameters.items()))


def merged(options: Iterable[str], over: Iterable[str]) -> tuple[str, ...]:
    """`options` with those of `over` in place of any of the same name."""
    mine = {o.partition("=")[0]: o for o in options}
    mine.update({o.partition("=")[0]: o for o in over})
    return tuple(mine[name] for name in sorted(mine))


def canonical(option: str) -> tuple[str, object]:
    """An option's (name, value) as PostgreSQL means it: `autovacuum_enabled=off` and
    `autovacuum_enabled=false` are the same; so are `fillfactor=90` and `fillfactor=90.0`."""
    name, _, text = option.partition("=")
    kind = PARAMETERS.get(name)
    lowered = text.strip().lower()
    if kind is bool and lowered in _TRUE | _FALSE:
        return name, lowered in _TRUE
    if kind in (int, float):
        try:
            return name, float(lowered)
        except ValueError:
            pass
    return name, text


def parameter_sql(option: str) -> sql.Composed:
    """An option ("toast.autovacuum_enabled=off") as `"toast"."autovacuum_enabled" = 'off'`:
    only a name found among `PARAMETERS` is written (quoted as well); the value is a literal."""
    name, _, value = option.partition("=")
    if name not in PARAMETERS:
        raise ValueError(f"unexpected storage parameter {name!r}")
    return sql.SQL("{} = {}").format(
        sql.SQL(".").join(sql.Identifier(part) for part in name.split(".")), sql.Literal(value)
    )
