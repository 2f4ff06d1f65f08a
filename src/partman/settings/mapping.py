"""partman.toml's sections and keys, already parsed (from the file, or a framework's own
settings such as Django's PARTMAN block), read into `Config`, `Table` and `Tenant`.

The reader reads TOML types and says where each problem is; whether a value is good is the
model's to say (`model.config`), and its errors name their field, so each lands at its key.
Every problem is collected at once: a key of the wrong type is named, and an entry with one is
not checked further (its other values may only make sense with it); each [partman] key stands
alone.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, PartmanError
from ..model.config import Config, Table, Tenant
from ..model.indexes import parse_columns
from ..model.rules import Source, field_errors
from .locator import Locator
from .problems import Path_, Problem, SettingsError, key_text
from .values import (
    CONFIG_FIELDS,
    DATABASE_FIELDS,
    DATABASE_NAME,
    DATABASES_FIELDS,
    NEEDED_BY_SOME,
    SECTIONS,
    SERVICE_FIELDS,
    TABLE_FIELDS,
    TABLE_REQUIRED,
    TENANT_FIELDS,
    TENANT_KEYS,
    Converter,
    Invalid,
    Unset,
    expand,
    tenant_id,
    toml_type,
)

_HINTS = {
    ("table", "tenant_id"): 'list tenants as tenants = ["a", "b"], or [[table.tenant]] id = "a"',
    ("table", "tenant_ids"): 'list tenants as tenants = ["a", "b"]',
    ("", "tables"): "write each table as [[table]]",
    ("", "dsn"): 'put it under [database]: dsn = "..."',
}


@dataclass(frozen=True)
class TenantSpec:
    """A tenant the file declares; `own_policy` when it comes from a [[table.tenant]] entry
    (the file then sets its policy on every apply), else it only has to be registered."""

    tenant: Tenant
    own_policy: bool
    path: Path_

    @property
    def tenant_id(self) -> str | int:
        value = self.tenant.tenant_id
        assert isinstance(value, str | int)
        return value


@dataclass(frozen=True)
class IndexSpec:
    """An index a [[table.index]] entry declares: `partman apply` builds what is missing of it
    on every partition without blocking writes (`Manager.create_index`), `partman plan` shows
    what that is."""

    columns: tuple[str, ...]
    unique: bool
    name: str | None
    path: Path_

    def label(self, table: str) -> str:
        named = f"{self.name} on " if self.name else ""
        return ("unique " if self.unique else "") + f"{named}{table} ({', '.join(self.columns)})"


@dataclass(frozen=True)
class TableSpec:
    """One [[table]] entry: the Table (without a tenant), its tenants and tenants_query, and
    the indexes it declares."""

    table: Table
    tenants: tuple[TenantSpec, ...]
    tenants_query: str | None
    path: Path_
    indexes: tuple[IndexSpec, ...] = ()

    @property
    def qualified_name(self) -> str:
        return self.table.qualified_name

    def tenant(self, tenant: object) -> TenantSpec | None:
        return next((t for t in self.tenants if str(t.tenant_id) == str(tenant)), None)


DEFAULT_DATABASE = "default"
"""The name of the one database of a file without [[databases]] (`partman run`'s
/api/databases lists it so)."""


@dataclass(frozen=True)
class DatabaseSpec:
    """One database of a fleet (a [[databases]] entry), or the one database of a file without
    them (named DEFAULT_DATABASE): its DSN and the tables declared for it."""

    name: str
    dsn: str | None
    tables: tuple[TableSpec, ...]
    path: Path_ = ()


@dataclass(frozen=True)
class Settings:
    """What the config file says, plus where each value came from (for messages)."""

    file: str
    config: Config = field(default_factory=Config)
    dsn: str | None = None
    tables: tuple[TableSpec, ...] = ()
    problems: tuple[Problem, ...] = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)
    service: dict[str, Any] = field(default_factory=dict)
    """The [service] section's values, by ServiceOptions field name."""
    unset: tuple[Problem, ...] = ()
    """The problems (also in `problems`) that are environment variables not set in a section
    only some commands use (NEEDED_BY_SOME): a command that does not use it runs anyway."""
    databases: tuple[DatabaseSpec, ...] = ()
    """The fleet ([[databases]] entries); empty for a file of one database ([database] and
    [[table]]), whose `dsn` and `tables` are then the ones."""
    database_name: str = DEFAULT_DATABASE
    """Which database `dsn` and `tables` are: DEFAULT_DATABASE, or the fleet's database this
    Settings was narrowed to by `for_database`."""

    def fleet(self) -> tuple[DatabaseSpec, ...]:
        """Every database the file manages: its [[databases]], else its one database."""
        if self.databases:
            return self.databases
        return (DatabaseSpec(self.database_name, self.dsn, self.tables),)

    def for_database(self, name: str) -> Settings:
        """This file as if it declared only database `name` (its DSN and tables, the shared
        [partman] and [service]): what every one-database command runs on."""
        spec = next((d for d in self.fleet() if d.name == name), None)
        if spec is None:
            names = ", ".join(d.name for d in self.fleet())
            close = difflib.get_close_matches(name, [d.name for d in self.fleet()], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{self.file} has no database {name!r} (databases: {names}){hint}")
        return dataclasses.replace(
            self, dsn=spec.dsn, tables=spec.tables, databases=(), database_name=spec.name
        )

    def problems_for(self, *sections: str) -> tuple[Problem, ...]:
        """The problems that stop a command using `sections` of NEEDED_BY_SOME (every other
        section is used by every command)."""
        skipped = [p for p in self.unset if p.key.split(".", 1)[0] not in sections]
        return tuple(p for p in self.problems if p not in skipped)

    def table(self, qualified: str) -> TableSpec | None:
        return next((t for t in self.tables if t.qualified_name == qualified), None)

    def problem(self, path: Path_, message: str) -> Problem:
        line = self.locator.line(path) if self.locator is not None else None
        return Problem(self.file, line, key_text(path), message)

    def raise_for_problems(self) -> Settings:
        if self.problems:
            raise SettingsError(self.problems)
        return self


# -- reading ----------------------------------------------------------------------------------

_BAD = object()


class Reader:
    """Collects the problems of one file (or mapping), each at its key and line."""

    def __init__(self, file: str, locator: Locator | None, environ: Mapping[str, str]) -> None:
        self.file = file
        self.locator = locator  # None: a mapping given as such (no text, so no lines)
        self.environ = environ
        self.problems: list[Problem] = []
        self.unset: list[Problem] = []

    def add(self, path: Path_, message: str) -> None:
        line = None if self.locator is None else self.locator.line(path)
        self.problems.append(Problem(self.file, line, key_text(path), message))

    def unknown(self, path: Path_, known: Sequence[str]) -> None:
        name = str(path[-1])
        section = next((str(p) for p in path[:-1] if isinstance(p, str)), "")
        hint = _HINTS.get((section, name))
        if hint is None:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
        self.add(path, f"unknown key ({hint})")

    def expanded(self, path: Path_, value: object) -> object:
        """Environment variables expanded in every string of `value`."""
        if isinstance(value, str):
            try:
                return expand(value, self.environ)
            except Invalid as error:
                self.add(path, str(error))
                if isinstance(error, Unset) and path[0] in NEEDED_BY_SOME:
                    self.unset.append(self.problems[-1])
                return _BAD
        if isinstance(value, list):
            return [self.expanded((*path, i), v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.expanded((*path, k), v) for k, v in value.items()}
        return value

    def fields(
        self,
        path: Path_,
        entry: Mapping[str, object],
        known: Mapping[str, Converter],
        handled: Sequence[str] = (),
    ) -> tuple[dict[str, Any], bool]:
        """Each value of the right TOML type, read (keys in `handled` are left to the caller),
        and whether every value was. Unknown keys are reported but do not make the rest
        unusable: `partman check` still checks such an entry against the database (every
        problem at once), and any problem at all stops every other command before it runs."""
        out: dict[str, Any] = {}
        ok = True
        for name, raw in entry.items():
            if name in handled:
                continue
            if name not in known:
                self.unknown((*path, name), [*known, *handled])
                continue
            value = self.expanded((*path, name), raw)
            if value is _BAD:
                ok = False
                continue
            try:
                out[name] = known[name](value)
            except Invalid as error:
                self.add((*path, name), str(error))
                ok = False
        return out, ok

    def checked(
        self,
        path: Path_,
        kind: type[Any],
        values: Mapping[str, Any],
        keys: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """The model's rule for each value (`values` and `keys` map fields to keys): the values
        as the fields keep them, and whether every one was good."""
        field_of = {key: name for name, key in (keys or {}).items()}
        by_field = {field_of.get(k, k): v for k, v in values.items()}
        good, errors = field_errors(kind, by_field, Source.FILE)
        for error in errors:
            self.model_error(path, error, values, keys)
        return good, not errors

    def model_error(
        self,
        path: Path_,
        error: ConfigError,
        entry: Mapping[str, object],
        keys: Mapping[str, str] | None = None,
    ) -> None:
        """An error of Config/Table/Tenant, at the key of the field it names; when that key
        is not written (a missing partner: sub_partition_by without sub_partition_modulus),
        at the key of the entry the message names first, else at the entry."""
        key = None if error.field is None else (keys or {}).get(error.field, error.field)
        if key is None or key not in entry:
            key = _first_named(str(error), entry)
        self.add((*path, key) if key is not None else path, str(error))

    def section(self, data: Mapping[str, object], name: str) -> Mapping[str, object] | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.add((name,), f"expected a table ([{name}]), got {toml_type(value)}")
            return None
        return value


def _first_named(message: str, entry: Mapping[str, object]) -> str | None:
    """The key of `entry` that `message` names first (as a whole word), if any."""
    found = [
        (m.start(), key)
        for key in entry
        if (m := re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", message)) is not None
    ]
    return min(found)[1] if found else None


def from_mapping(
    data: Mapping[str, object],
    *,
    file: str,
    environ: Mapping[str, str] | None = None,
    dsn: str | None = None,
) -> Settings:
    """Read a mapping with partman.toml's sections and keys, already parsed (a framework's own
    settings, such as Django's PARTMAN block), with the same checks and messages as `parse`.
    `file` names where it came from in messages; there are no lines to give."""
    env = os.environ if environ is None else environ
    return read_sections(data, Reader(file, None, env), dsn)


def read_sections(data: Mapping[str, object], r: Reader, dsn: str | None) -> Settings:
    """Every section of `data`, its problems collected by `r`."""
    for name in data:
        if name not in SECTIONS:
            r.unknown((name,), list(SECTIONS))

    database = r.section(data, "database")
    if database is not None:
        if dsn is not None:
            database = {k: v for k, v in database.items() if k != "dsn"}
        found, _ = r.fields(("database",), database, DATABASE_FIELDS)
        dsn = found.get("dsn", dsn)

    config = Config()
    partman = r.section(data, "partman")
    if partman is not None:
        values, _ = r.fields(("partman",), partman, CONFIG_FIELDS)
        good, _ = r.checked(("partman",), Config, values)  # each key on its own
        try:
            config = Config(**good)
        except ConfigError as error:
            r.model_error(("partman",), error, partman)

    service: dict[str, Any] = {}
    raw_service = r.section(data, "service")
    if raw_service is not None:
        service, _ = r.fields(("service",), raw_service, SERVICE_FIELDS)

    tables = _tables(r, (), data.get("table", []), {})
    databases: tuple[DatabaseSpec, ...] = ()
    if "databases" in data:
        if database is not None:
            r.add(
                ("database",),
                "a file with [[databases]] gives each database its dsn in its own entry; "
                "remove [database]",
            )
        elif dsn is not None:
            r.add(
                ("databases",),
                "--dsn (or PARTMAN_DSN) cannot say which of the [[databases]] it is: unset it, "
                "and pick one database with --database NAME (or PARTMAN_DATABASE)",
            )
        databases = _databases(r, data["databases"], tables)
        dsn = None
    return Settings(
        file=r.file,
        config=config,
        dsn=dsn,
        tables=tuple(tables),
        problems=tuple(r.problems),
        locator=r.locator,
        service=service,
        unset=tuple(r.unset),
        databases=databases,
    )


def _tables(
    r: Reader, base: Path_, raw_tables: object, shared: Mapping[str, Path_]
) -> list[TableSpec]:
    """The [[table]] entries at `base` (the file's, or a [[databases]] entry's), each declared
    once, also not again after `shared` (the file's tables every database has)."""
    where = "[[databases.table]]" if base else "[[table]]"
    path: Path_ = (*base, "table")
    if isinstance(raw_tables, dict):
        r.add(path, f"each table is an array element: write {where}, not {where[1:-1]}")
        return []
    if not isinstance(raw_tables, list):
        r.add(path, f"expected {where} entries, got {toml_type(raw_tables)}")
        return []
    tables: list[TableSpec] = []
    seen: dict[str, Path_] = {}
    for index, entry in enumerate(raw_tables):
        spec = _table(r, (*path, index), entry)
        if spec is None:
            continue
        if spec.qualified_name in shared:
            r.add(
                (*spec.path, "name"),
                f"{spec.qualified_name} is already declared for every database at "
                f"{key_text(shared[spec.qualified_name])}; declare it in one place",
            )
            continue
        if spec.qualified_name in seen:
            r.add(
                (*spec.path, "name"),
                f"{spec.qualified_name} is already declared at "
                f"{key_text(seen[spec.qualified_name])}; declare each table once",
            )
            continue
        seen[spec.qualified_name] = spec.path
        tables.append(spec)
    return tables


def _databases(r: Reader, raw: object, shared: list[TableSpec]) -> tuple[DatabaseSpec, ...]:
    """The [[databases]] entries: each named once with a safe name, each with a DSN, each with
    the file's [[table]] entries and its own [[databases.table]] entries."""
    if isinstance(raw, dict):
        r.add(("databases",), "each database is an array element: write [[databases]]")
        return ()
    if not isinstance(raw, list) or not raw:
        r.add(("databases",), "expected [[databases]] entries, each with name and dsn")
        return ()
    out: list[DatabaseSpec] = []
    names: dict[str, Path_] = {}
    common = {t.qualified_name: t.path for t in shared}
    for index, entry in enumerate(raw):
        path: Path_ = ("databases", index)
        if not isinstance(entry, dict):
            r.add(path, f"expected a table with name and dsn, got {toml_type(entry)}")
            continue
        values, ok = r.fields(path, entry, DATABASES_FIELDS, handled=("table",))
        name = values.get("name")
        if "name" not in entry:
            r.add(path, 'missing key name (the database\'s name, e.g. name = "orders")')
            ok = False
        elif isinstance(name, str) and DATABASE_NAME.fullmatch(name) is None:
            r.add(
                (*path, "name"),
                f"{name!r} is not a database name partman can use in URLs, metric labels and "
                "logs: write 1 to 63 of a-z, 0-9, _ and -, starting with a letter or digit "
                '(e.g. "orders-eu")',
            )
            ok = False
        elif isinstance(name, str) and name in names:
            r.add(
                (*path, "name"),
                f"database {name!r} is already declared at {key_text(names[name])}; "
                "give each database its own name",
            )
            ok = False
        if isinstance(name, str):
            names.setdefault(name, path)
        dsn = _database_dsn(r, path, entry, values)
        tables = _tables(r, path, entry.get("table", []), common)
        if ok and dsn is not None and isinstance(name, str):
            out.append(DatabaseSpec(name, dsn, (*shared, *tables), path))
    return tuple(out)


def _database_dsn(
    r: Reader, path: Path_, entry: Mapping[str, object], values: Mapping[str, Any]
) -> str | None:
    """A [[databases]] entry's DSN: `dsn` (with ${NAME} expanded, as [database] dsn), or
    `dsn_env`, the name of an environment variable holding it (a Kubernetes Secret's key)."""
    if "dsn" in entry and "dsn_env" in entry:
        r.add((*path, "dsn_env"), "give either dsn or dsn_env, not both")
        return None
    if "dsn" in values:
        found = str(values["dsn"])
    elif "dsn_env" in values:
        variable = str(values["dsn_env"])
        found = r.environ.get(variable, "")
        if not found:
            r.add(
                (*path, "dsn_env"),
                f"environment variable {variable} is not set (or empty); set it to the "
                "database's connection string",
            )
            return None
    elif "dsn" in entry or "dsn_env" in entry:
        return None  # its problem is reported already
    else:
        r.add(
            path,
            'missing key dsn: write dsn = "postgresql://..." or dsn_env = "ORDERS_DSN" (an '
            "environment variable holding it)",
        )
        return None
    if not found.strip():
        r.add((*path, "dsn"), "is empty; give the database's connection string")
        return None
    return found


def _table(r: Reader, path: Path_, entry: object) -> TableSpec | None:
    if not isinstance(entry, dict):
        r.add(path, f"expected a table, got {toml_type(entry)}")
        return None
    values, ok = r.fields(path, entry, TABLE_FIELDS, handled=("tenants", "tenant", "index"))
    query = values.pop("tenants_query", None)
    if ok:
        values, ok = r.checked(path, Table, values)
    for name, what in TABLE_REQUIRED.items():
        if name not in entry:
            r.add(path, f"missing key {name} ({what})")
            ok = False
    tenants: list[TenantSpec] = []
    raw_ids = r.expanded((*path, "tenants"), entry.get("tenants", []))
    if not isinstance(raw_ids, list):
        if raw_ids is not _BAD:
            r.add(
                (*path, "tenants"), f'expected an array like ["a", "b"], got {toml_type(raw_ids)}'
            )
        ok = False
        raw_ids = []
    for i, raw in enumerate(raw_ids):
        if raw is _BAD:
            ok = False
            continue
        try:
            tenants.append(
                TenantSpec(Tenant(tenant_id=tenant_id(raw)), False, (*path, "tenants", i))
            )
        except (Invalid, ConfigError) as error:
            r.add((*path, "tenants", i), str(error))
            ok = False
    raw_entries = entry.get("tenant", [])
    if isinstance(raw_entries, dict):
        r.add((*path, "tenant"), "write each tenant as [[table.tenant]], not [table.tenant]")
        ok, raw_entries = False, []
    elif not isinstance(raw_entries, list):
        r.add((*path, "tenant"), f"expected [[table.tenant]] entries, got {toml_type(raw_entries)}")
        ok, raw_entries = False, []
    for i, raw in enumerate(raw_entries):
        spec = _tenant(r, (*path, "tenant", i), raw)
        if spec is None:
            ok = False
        else:
            tenants.append(spec)
    if not ok:
        return None
    ids: dict[str, TenantSpec] = {}
    for t in tenants:
        other = ids.get(str(t.tenant_id))
        if other is not None and (other.own_policy or not t.own_policy):
            where = key_text(other.path)
            r.add(t.path, f"tenant {t.tenant_id!r} is already declared at {where}; declare it once")
            ok = False
        ids[str(t.tenant_id)] = t
    if query is not None and not query.strip():
        r.add((*path, "tenants_query"), "is empty; give a SELECT returning one column of ids")
        ok = False
    try:
        table = Table(**values)
    except ConfigError as error:
        r.model_error(path, error, entry)
        return None
    if table.tenant_id_column is None:
        for name in ("tenants", "tenant", "tenants_query"):
            if name in entry:
                r.add(
                    (*path, name),
                    f"{table.qualified_name} has no tenant_id_column, so it has no tenants; "
                    'set tenant_id_column (e.g. "project_id") or remove this key',
                )
                ok = False
    if not ok:
        return None
    indexes = _indexes(r, (*path, "index"), entry.get("index", []))
    if indexes is None:
        return None
    # plain ids first, own policies after: an entry with a policy wins over a plain mention
    merged = {str(t.tenant_id): t for t in sorted(tenants, key=lambda t: t.own_policy)}
    return TableSpec(table, tuple(merged.values()), query, path, indexes)


INDEX_KEYS = ("columns", "unique", "name")


def _indexes(r: Reader, path: Path_, raw: object) -> tuple[IndexSpec, ...] | None:
    """The [[table.index]] entries; None when one has a problem (each is reported)."""
    if isinstance(raw, dict):
        r.add(path, "write each index as [[table.index]], not [table.index]")
        return None
    if not isinstance(raw, list):
        r.add(path, f"expected [[table.index]] entries, got {toml_type(raw)}")
        return None
    out: list[IndexSpec] = []
    ok = True
    for i, entry in enumerate(raw):
        spec = _index(r, (*path, i), entry)
        if spec is None:
            ok = False
            continue
        twin = next((o for o in out if (o.columns, o.unique) == (spec.columns, spec.unique)), None)
        if twin is not None and twin.name == spec.name:
            where = key_text(twin.path)
            r.add(spec.path, f"the same index is already declared at {where}; declare it once")
            ok = False
            continue
        out.append(spec)
    return tuple(out) if ok else None


def _index(r: Reader, path: Path_, raw: object) -> IndexSpec | None:
    if not isinstance(raw, dict):
        r.add(path, f'expected a table with columns = ["a", "b"], got {toml_type(raw)}')
        return None
    ok = True
    for key in raw:
        if key not in INDEX_KEYS:
            r.unknown((*path, key), INDEX_KEYS)
            ok = False
    columns = r.expanded((*path, "columns"), raw.get("columns"))
    found: tuple[str, ...] = ()
    if "columns" not in raw:
        r.add(path, 'missing key columns (the index\'s key, e.g. columns = ["tenant_id", "at"])')
        ok = False
    elif isinstance(columns, str):
        try:
            found = parse_columns(columns)
        except PartmanError as error:
            r.add((*path, "columns"), str(error))
            ok = False
    elif isinstance(columns, list) and columns and all(
        isinstance(c, str) and c for c in columns
    ):
        found = tuple(str(c) for c in columns)
    else:
        r.add(
            (*path, "columns"),
            f'expected a non-empty array of column names like ["a", "b"], got {toml_type(columns)}',
        )
        ok = False
    unique = raw.get("unique", False)
    if not isinstance(unique, bool):
        r.add((*path, "unique"), f"expected true or false, got {toml_type(unique)}")
        ok = False
    name = r.expanded((*path, "name"), raw.get("name"))
    if name is not None and (not isinstance(name, str) or not name):
        r.add((*path, "name"), f"expected the index's name, a string, got {toml_type(name)}")
        ok = False
    if not ok:
        return None
    assert isinstance(unique, bool) and (name is None or isinstance(name, str))
    return IndexSpec(found, unique, name, path)


def _tenant(r: Reader, path: Path_, raw: object) -> TenantSpec | None:
    if not isinstance(raw, dict):
        r.add(path, f"expected a table with id = ..., got {toml_type(raw)}")
        return None
    values, ok = r.fields(path, raw, TENANT_FIELDS)
    if "id" not in raw:
        r.add(path, 'missing key id (the tenant\'s id, e.g. id = "project-acme")')
        return None
    if not ok:
        return None
    good, ok = r.checked(path, Tenant, values, TENANT_KEYS)
    if not ok:
        return None
    try:
        tenant = Tenant(**good)
    except ConfigError as error:
        r.model_error(path, error, raw, TENANT_KEYS)
        return None
    return TenantSpec(tenant, True, path)
