"""Prometheus metrics: one registry per service instance (tests run several in one process).

Counters and the pass histogram are fed by each pass's `Report`; runway and partition counts
are read from the database at scrape time (one round trip), so they are right on every
replica, leader or not, and move with the clock between passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..db.reads import ArchiveTotal
from ..decide.coverage import Inventory
from ..model.report import Outcome, Report, SkipReason

PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
RUNWAY_BUCKETS = (0, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400)
"""The `le` thresholds (seconds) of partman_runway_tenants: no partition for now, an hour,
six hours, a day, three days, a week."""

SERIES = (
    "partman_runway_seconds",
    "partman_runway_ids",
    "partman_runway_min_seconds",
    "partman_runway_min_ids",
    "partman_runway_tenants",
    "partman_tenants",
    "partman_partitions",
    "partman_database_up",
    "partman_default_partition_rows",
    "partman_last_success_timestamp_seconds",
    "partman_last_pass_timestamp_seconds",
    "partman_operations_total",
    "partman_lock_timeouts_total",
    "partman_skipped_operations_total",
    "partman_passes_total",
    "partman_pass_errors_total",
    "partman_pass_duration_seconds",
    "partman_leader",
    "partman_consecutive_failures",
    "partman_database_reachable",
    "partman_reconnects_total",
    "partman_leaders_deposed_total",
    "partman_archive_files",
    "partman_archive_rows",
    "partman_archive_bytes",
    "partman_last_archive_timestamp_seconds",
)
"""Every metric family the service exports (histograms add _bucket/_sum/_count)."""


class _InventoryCollector(Collector):
    """Runway and partitions per table, read when scraped; runway per tenant only when
    `per_tenant` (10,000 tenants would be 10,000 series a scrape: Prometheus pays for each
    one, for as long as it keeps them). A table without a tenant column is one series either
    way."""

    def __init__(
        self, read: Callable[[], Inventory], logger: logging.Logger, per_tenant: bool = False
    ) -> None:
        self._read = read
        self._logger = logger
        self._per_tenant = per_tenant

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "partman_runway_seconds",
                "Seconds from now to the end of the gap-free run of partitions holding now "
                "(0 when now has no partition), per managed table and tenant (id tables: "
                "partman_runway_ids)",
                labels=["table", "tenant"],
            ),
            GaugeMetricFamily(
                "partman_runway_ids",
                "An id table's runway: ids from its newest id to the end of the gap-free run "
                "of partitions holding it (0 when it has no partition), per table and tenant",
                labels=["table", "tenant"],
            ),
            GaugeMetricFamily(
                "partman_partitions",
                "Partitions of each managed table (the default partition not counted)",
                labels=["table"],
            ),
            GaugeMetricFamily(
                "partman_database_up",
                "1 when the last scrape could read the catalog and partman's metadata",
            ),
            GaugeMetricFamily(
                "partman_runway_min_seconds",
                "The shortest partman_runway_seconds among each table's tenants (the table's "
                "own runway when it has no tenant column)",
                labels=["table"],
            ),
            GaugeMetricFamily(
                "partman_runway_min_ids",
                "The shortest runway in ids among each id table's tenants",
                labels=["table"],
            ),
            GaugeMetricFamily(
                "partman_runway_tenants",
                "Tenants of each table whose runway is at most le seconds (le=\"0\": no "
                "partition holds now); a table without a tenant column counts as one; an id "
                "table counts only at le=\"0\" (no partition holds its newest id)",
                labels=["table", "le"],
            ),
            GaugeMetricFamily(
                "partman_tenants",
                "Registered tenants of each managed table (0 for a table without a tenant "
                "column)",
                labels=["table"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        runway, runway_ids, partitions, up, least, least_ids, short, tenants = families
        try:
            found = self._read()
        except Exception as error:  # a scrape must answer even when the database is down
            self._logger.debug("metrics: inventory unavailable: %s", error)
            up.add_metric([], 0)
            return families
        counts: dict[str, int] = {}
        for row in found.partitions:
            counts.setdefault(row.table, 0)
            if not row.is_default:
                counts[row.table] += 1
        shortest: dict[str, float] = {}
        shortest_ids: dict[str, int] = {}
        at_most: dict[str, list[int]] = {}
        registered: dict[str, int] = {}
        for c in found.coverage:
            counts.setdefault(c.table, 0)
            registered[c.table] = registered.get(c.table, 0) + (c.tenant is not None)
            below = at_most.setdefault(c.table, [0] * len(RUNWAY_BUCKETS))
            one = self._per_tenant or c.tenant is None
            if c.runway_ids is not None:  # not seconds: an alert on 0 s would always fire
                if one:
                    runway_ids.add_metric([c.table, c.tenant or ""], c.runway_ids)
                shortest_ids[c.table] = min(shortest_ids.get(c.table, c.runway_ids), c.runway_ids)
                below[0] += c.runway_ids <= 0
                continue
            if one:
                runway.add_metric([c.table, c.tenant or ""], c.runway_seconds)
            shortest[c.table] = min(shortest.get(c.table, c.runway_seconds), c.runway_seconds)
            for i, le in enumerate(RUNWAY_BUCKETS):
                below[i] += c.runway_seconds <= le
        for table, n in sorted(counts.items()):
            partitions.add_metric([table], n)
            tenants.add_metric([table], registered.get(table, 0))
        for table, seconds in sorted(shortest.items()):
            least.add_metric([table], seconds)
        for table, ids in sorted(shortest_ids.items()):
            least_ids.add_metric([table], ids)
        for table, below in sorted(at_most.items()):
            for le, n in zip(RUNWAY_BUCKETS, below, strict=True):
                short.add_metric([table, str(le)], n)
        up.add_metric([], 1)
        return families


class _ArchiveCollector(Collector):
    """Parquet archives (retention_action "export") per table and state, read when scraped
    from partman's manifest: what was moved out of PostgreSQL and when it last was."""

    def __init__(self, read: Callable[[], list[ArchiveTotal]], logger: logging.Logger) -> None:
        self._read = read
        self._logger = logger

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        per_state = ["table", "state"]
        return (
            GaugeMetricFamily(
                "partman_archive_files",
                "Parquet files written by retention_action 'export', by table and state "
                "(archived; restoring; restored: read back into a partition, the file kept)",
                labels=per_state,
            ),
            GaugeMetricFamily(
                "partman_archive_rows",
                "Rows in those Parquet files, by table and state",
                labels=per_state,
            ),
            GaugeMetricFamily(
                "partman_archive_bytes",
                "Bytes of those Parquet files, by table and state",
                labels=per_state,
            ),
            GaugeMetricFamily(
                "partman_last_archive_timestamp_seconds",
                "Unix time of the newest Parquet archive of each table",
                labels=["table"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        files, rows, size, last = self._families()
        try:
            totals = self._read()
        except Exception as error:  # no manifest yet, or the database is down
            self._logger.debug("metrics: archives unavailable: %s", error)
            return (files, rows, size, last)
        newest: dict[str, float] = {}
        for t in totals:
            files.add_metric([t.table, t.state], t.files)
            rows.add_metric([t.table, t.state], t.rows)
            size.add_metric([t.table, t.state], t.bytes)
            at = t.last_exported.timestamp()
            newest[t.table] = max(newest.get(t.table, at), at)
        for table, at in sorted(newest.items()):
            last.add_metric([table], at)
        return (files, rows, size, last)


class Metrics:
    """The service's metrics; `observe(report, seconds)` after each pass."""

    def __init__(
        self,
        inventory: Callable[[], Inventory],
        logger: logging.Logger,
        archives: Callable[[], list[ArchiveTotal]] | None = None,
        *,
        per_tenant: bool = False,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.default_rows = Gauge(
            "partman_default_partition_rows",
            "Rows waiting in each table's default partition after the last pass (they move "
            "into their partitions as those are created)",
            ["table"],
            registry=r,
        )
        self.last_success = Gauge(
            "partman_last_success_timestamp_seconds",
            "Unix time of the end of the last pass that ran with no failed operation",
            registry=r,
        )
        self.last_pass = Gauge(
            "partman_last_pass_timestamp_seconds",
            "Unix time of the end of the last pass, whatever its outcome",
            registry=r,
        )
        self.operations = Counter(
            "partman_operations",
            "Operations applied by passes of this replica, by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.lock_timeouts = Counter(
            "partman_lock_timeouts",
            "Operations skipped because a lock was not had within lock_timeout after retries "
            '(by table: partman_skipped_operations_total{reason="lock_timeout"})',
            registry=r,
        )
        self.skips = Counter(
            "partman_skipped_operations",
            "Operations skipped, by table and reason (" + ", ".join(SkipReason) + ")",
            ["table", "reason"],
            registry=r,
        )
        self.passes = Counter(
            "partman_passes",
            "Passes run by this replica, by outcome (ok, partial, failed, skipped: another "
            "pass held the pass lock)",
            ["outcome"],
            registry=r,
        )
        self.pass_errors = Counter(
            "partman_pass_errors",
            "Passes that could not run at all (database unreachable, connection lost, ...)",
            registry=r,
        )
        self.duration = Histogram(
            "partman_pass_duration_seconds",
            "Duration of passes run by this replica",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "partman_leader",
            "1 while this replica holds the leadership lock and runs scheduled passes",
            registry=r,
        )
        self.consecutive_failures = Gauge(
            "partman_consecutive_failures",
            "Scheduled passes in a row that could not run (0 once one runs)",
            registry=r,
        )
        self.database_reachable = Gauge(
            "partman_database_reachable",
            "1 while this replica's leadership connection answers within a third of "
            "leader_lease (0: database down, restarting, or the network cut)",
            registry=r,
        )
        self.database_reachable.set(1)
        self.reconnects = Counter(
            "partman_reconnects",
            "Leadership connections this replica opened again after losing one",
            registry=r,
        )
        self.leaders_deposed = Counter(
            "partman_leaders_deposed",
            "Leaders this replica deposed: their session silent for longer than leader_lease",
            registry=r,
        )
        for outcome in ("ok", "partial", "failed", "skipped"):
            self.passes.labels(outcome)
        r.register(_InventoryCollector(inventory, logger, per_tenant))
        if archives is not None:
            r.register(_ArchiveCollector(archives, logger))

    def observe(self, report: Report, seconds: float) -> None:
        self.duration.observe(seconds)
        now = time.time()
        self.last_pass.set(now)
        if report.skipped_reason is not None:
            self.passes.labels("skipped").inc()
            return
        outcome = "ok" if report.ok else ("failed" if report.failed else "partial")
        self.passes.labels(outcome).inc()
        if not report.failed:
            self.last_success.set(now)
        for result in report.results:
            self.operations.labels(result.operation.kind, result.outcome).inc()
            if result.outcome == Outcome.SKIPPED:
                table = result.operation.parent_qualified
                reason = result.skip_reason or SkipReason.OTHER
                self.skips.labels(table, reason.value).inc()
                if reason == SkipReason.LOCK_TIMEOUT:
                    self.lock_timeouts.inc()
        for table, rows in report.default_rows.items():
            self.default_rows.labels(table).set(rows)

    def families(self) -> Iterator[str]:
        for metric in self.registry.collect():
            yield metric.name
