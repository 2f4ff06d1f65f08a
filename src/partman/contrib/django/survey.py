"""How far ahead each managed (table, tenant) is covered, judged against its premake.

One read-only look at the database, shared by the system check (partman.W001) and
`manage.py partman status`: the PARTMAN block resolved against the database by
`partman.engine.sync.resolve` (the same code `partman check` and `partman apply` use), coverage
computed by `partman.decide.coverage` on the metadata *as the block will leave it*, so a table or
tenant declared but never applied yet counts as uncovered rather than being missed. Rows
waiting in default partitions are counted too (they mean inserts fell outside every range).

"Short" means covered less than half its premake ahead (`partition_count` periods): a pass
every `sample_rate` keeps a tenant near its full premake, so half of it gone says passes
have stopped, long before inserts fail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from partman.decide.coverage import inventory
from partman.engine.sync import Resolution, resolve
from partman.engine.world import default_rows
from partman.model import snapshot
from partman.model.text import human_duration
from partman.settings import Problem, Settings


@dataclass(frozen=True)
class Runway:
    """One (table, tenant): its partitions and how far ahead of now they reach."""

    table: str
    tenant: str | None
    registered: bool  # in partman's metadata already (else: declared, not applied yet)
    partitions: int
    covered_until: str | None  # None: no partition covers now
    runway: dt.timedelta
    premake: dt.timedelta  # partition_count periods
    partition_count: int
    interval: str  # the period, as the table's partition_interval

    @property
    def short(self) -> bool:
        if self.covered_until is None:
            return True
        return self.runway < self.premake / 2

    def message(self) -> str:
        """What the system check says (its object is the table): tenant and runway."""
        who = "the table" if self.tenant is None else f"tenant {self.tenant!r}"
        premake = f"its premake of {self.partition_count} x {self.interval}"
        if self.covered_until is None:
            return (
                f"{who}: runway 0, no partition covers now ({premake}); inserts fail, or go "
                "to a default partition"
            )
        return (
            f"{who}: runway {human_duration(self.runway.total_seconds())} (partitions until "
            f"{self.covered_until}), less than half {premake}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "tenant": self.tenant,
            "registered": self.registered,
            "partitions": self.partitions,
            "covered_until": self.covered_until,
            "runway_seconds": self.runway.total_seconds(),
            "premake_seconds": self.premake.total_seconds(),
            "partition_count": self.partition_count,
            "short": self.short,
        }


@dataclass(frozen=True)
class TableSurvey:
    """A managed table: its policy, its tenants' runways, its default partition's rows."""

    record: snapshot.TableRecord
    registered: bool
    runways: list[Runway]
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
    def short(self) -> list[Runway]:
        return [r for t in self.tables for r in t.runways if r.short]


def survey(conn: psycopg.Connection[Any], settings: Settings, now: dt.datetime) -> Survey:
    """Only reads (the catalog, partman's metadata, the tenants_query of each table)."""
    resolution = resolve(conn, settings, now)
    state = resolution.future_state()
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
    tables = []
    for record in state.tables:
        counts = {t.tenant_id: t.partition_count for t in state.tenants.get(record.id, ())}
        period = record.interval.approx
        runways = []
        for c in found.coverage:
            if c.table != record.qualified_name:
                continue
            count = counts.get(c.tenant or "")
            count = record.partition_count if count is None else count
            runways.append(
                Runway(
                    table=c.table,
                    tenant=c.tenant,
                    registered=(
                        (c.table, c.tenant) in registered_tenants
                        if c.tenant is not None
                        else (record.schema, record.name) in registered_tables
                    ),
                    partitions=c.partitions,
                    covered_until=c.covered_until,
                    runway=dt.timedelta(seconds=c.runway_seconds),
                    premake=count * period,
                    partition_count=count,
                    interval=str(record.interval),
                )
            )
        where = defaults.get(record.qualified_name)
        tables.append(
            TableSurvey(
                record=record,
                registered=(record.schema, record.name) in registered_tables,
                runways=runways,
                default_partition=None if where is None else ".".join(where),
                default_rows=rows.get(record.qualified_name),
            )
        )
    return Survey(resolution, tables)
