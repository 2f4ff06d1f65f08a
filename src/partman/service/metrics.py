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

SERIES = (
    "partman_runway_seconds",
    "partman_runway_ids",
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
    "partman_archive_files",
    "partman_archive_rows",
    "partman_archive_bytes",
    "partman_last_archive_timestamp_seconds",
)
"""Every metric family the service exports (histograms add _bucket/_sum/_count)."""


class _InventoryCollector(Collector):
    """Runway per (table, tenant) and partitions per table, read when scraped."""

    def __init__(self, read: Callable[[], Inventory], logger: logging.Logger) -> None:
        self._read = read
        self._logger = logger

    def _families(
        self,
    ) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
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
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        runway, runway_ids, partitions, up = self._families()
        try:
            found = self._read()
        except Exception as error:  # a scrape must answer even when the database is down
            self._logger.debug("metrics: inventory unavailable: %s", error)
            up.add_metric([], 0)
            return (runway, runway_ids, partitions, up)
        counts: dict[str, int] = {}
        for row in found.partitions:
            counts.setdefault(row.table, 0)
            if not row.is_default:
                counts[row.table] += 1
        for c in found.coverage:
            counts.setdefault(c.table, 0)
            if c.runway_ids is not None:  # not seconds: an alert on 0 s would always fire
                runway_ids.add_metric([c.table, c.tenant or ""], c.runway_ids)
            else:
                runway.add_metric([c.table, c.tenant or ""], c.runway_seconds)
        for table, n in sorted(counts.items()):
            partitions.add_metric([table], n)
        up.add_metric([], 1)
        return (runway, runway_ids, partitions, up)


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
        for outcome in ("ok", "partial", "failed", "skipped"):
            self.passes.labels(outcome)
        r.register(_InventoryCollector(inventory, logger))
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
