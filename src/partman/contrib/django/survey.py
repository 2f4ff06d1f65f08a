"""How far ahead each managed (table, tenant) is covered, judged against its premake.

One read-only look at the database, shared by the system check (partman.W001) and
`manage.py partman status`: the PARTMAN block resolved against the database by
`partman.engine.sync.resolve` (the same code `partman check` and `partman apply` use), coverage
computed by `partman.decide.coverage` on the metadata *as the block will leave it*, so a table or
tenant declared but never applied yet counts as uncovered rather than being missed. Rows
waiting in default partitions are counted too (they mean inserts fell outside every range).

"Short" is `partman.decide.coverage.SHORT_OF_HALF_PREMAKE`: no partition covers now, or the
partitions reach less than half the premake (`partition_count` periods) ahead. A pass every
`sample_rate` keeps a tenant near its full premake, so half of it gone says passes have
stopped, long before inserts fail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from partman.decide.coverage import SHORT_OF_HALF_PREMAKE, Runway, inventory, runways
from partman.engine.sync import Resolution, resolve
from partman.engine.world import default_rows, read_positions
from partman.model import snapshot
from partman.model.keys import IdInterval
from partman.settings import Problem, Settings


@dataclass(frozen=True)
class SurveyedRunway:
    """One (table, tenant) of the block: its runway, and whether it is in partman's metadata
    already (else: declared, not applied yet)."""

    runway: Runway
    registered: bool

    @property
    def short(self) -> bool:
        return self.runway.short(SHORT_OF_HALF_PREMAKE)

    def to_dict(self) -> dict[str, Any]:
        """An id table's runway and premake are in ids (`runway_ids`, `premake_ids`), its
        seconds null."""
        c = self.runway.coverage
        interval = self.runway.interval
        by_id = isinstance(interval, IdInterval)
        out: dict[str, Any] = {
            "table": c.table,
            "tenant": c.tenant,
            "registered": self.registered,
            "partitions": c.partitions,
            "covered_until": c.covered_until,
            "runway_seconds": None if by_id else self.runway.runway.total_seconds(),
            "premake_seconds": None if by_id else self.runway.premake.total_seconds(),
            "partition_count": self.runway.partition_count,
            "short": self.short,
        }
        if isinstance(interval, IdInterval):
            out["runway_ids"] = c.runway_ids or 0
            out["premake_ids"] = self.runway.partition_count * interval.width
        return out


@dataclass(frozen=True)
class TableSurvey:
    """A managed table: its policy, its tenants' runways, its default partition's rows."""

    record: snapshot.TableRecord
    registered: bool
    runways: list[SurveyedRunway]
    default_partition: str | None
    default_rows: int | None

    @property
    def name(self) -> str:
        return self.record.qualified_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "registered": self.registered,
            "partition_interval": str(self.record.interval),
            "partition_count": self.record.partition_count,
            "default_partition": self.default_partition,
            "default_rows": self.default_rows,
            "tenants": [r.to_dict() for r in self.runways],
        }


@dataclass(frozen=True)
class Survey:
    """The block against the database: problems found (nothing else is judged for a table
    that has one) and every managed table's coverage."""

    resolution: Resolution
    tables: list[TableSurvey]

    @property
    def problems(self) -> list[Problem]:
        return self.resolution.problems

    @property
    def short(self) -> list[SurveyedRunway]:
        return [r for t in self.tables for r in t.runways if r.short]


def survey(conn: psycopg.Connection[Any], settings: Settings, now: dt.datetime) -> Survey:
    """Only reads (the catalog, partman's metadata, the tenants_query of each table)."""
    resolution = resolve(conn, settings, now)
    state = resolution.future_state()
    # an id table's runway starts at its newest id (resolve reads the catalog only)
    read_positions(conn, state, resolution.catalog, settings.config.tz)
    found = inventory(state, resolution.catalog, now, settings.config.tz)
    was = resolution.state
    registered_tables = {(t.schema, t.name) for t in was.tables}
    registered_tenants = {
        (t.qualified_name, n.tenant_id) for t in was.tables for n in was.tenants.get(t.id, ())
    }
    defaults: dict[str, tuple[str, str]] = {}
    for record in state.tables:
        parent = resolution.catalog.get((record.schema, record.name))
        default = None if parent is None else parent.default_partition
        if default is not None:
            defaults[record.qualified_name] = (default.schema, default.name)
    rows = default_rows(conn, defaults)
    held = runways(
        found.coverage,
        {r.qualified_name: (r.interval, r.partition_count) for r in state.tables},
        {
            (r.qualified_name, t.tenant_id): t.partition_count
            for r in state.tables
            for t in state.tenants.get(r.id, ())
            if t.partition_count is not None
        },
    )
    tables = []
    for record in state.tables:
        surveyed = [
            SurveyedRunway(
                r,
                registered=(
                    (r.coverage.table, r.coverage.tenant) in registered_tenants
                    if r.coverage.tenant is not None
                    else (record.schema, record.name) in registered_tables
                ),
            )
            for r in held
            if r.coverage.table == record.qualified_name
        ]
        where = defaults.get(record.qualified_name)
        tables.append(
            TableSurvey(
                record=record,
                registered=(record.schema, record.name) in registered_tables,
                runways=surveyed,
                default_partition=None if where is None else ".".join(where),
                default_rows=rows.get(record.qualified_name),
            )
        )
    return Survey(resolution, tables)
