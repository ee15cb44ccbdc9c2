"""Prometheus metrics, read from the store at scrape time so every process's work counts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from psycopg.rows import dict_row

from rosetta import liveness, sqlfile
from rosetta.queue.state import STALLED_AFTER, queue_depth, queue_workers, waiting_jobs
from rosetta.store.repository import Conn

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


QUERIES = sqlfile.Queries("rosetta.store", "metrics.sql")

LISTENER_FRESH_SECONDS = 60
"""A listener refreshes ``sources.capture_listener_at`` every 15 s; older than this, it is gone."""

JOB_WINDOW_SECONDS = 900
"""The sync job times and outcomes cover the jobs that finished in the last 15 minutes."""

QUANTILES = ("0.5", "0.95")
"""The quantiles of the sync job times (as ``sync_job_times`` computes them)."""


class StoreCollector(Collector):
    def __init__(self, conn: Conn, stalled_after: float = STALLED_AFTER) -> None:
        self.conn = conn
        self.stalled_after = stalled_after

    def collect(self) -> Iterator[Metric]:
        conn = self.conn
        duration = GaugeMetricFamily(
            "rosetta_monitor_cycle_duration_seconds",
            "Duration of the last schema monitoring cycle",
            labels=["monitor"],
        )
        finished = GaugeMetricFamily(
            "rosetta_monitor_last_cycle_timestamp_seconds",
            "When the last schema monitoring cycle finished",
            labels=["monitor"],
        )
        for monitor_id, seconds, at in conn.execute(
            QUERIES["monitor_metrics"], liveness.SQL_PARAMS
        ):
            duration.add_metric([monitor_id], seconds or 0.0)
            finished.add_metric([monitor_id], at or 0.0)
        yield duration
        yield finished

        success = GaugeMetricFamily(
            "rosetta_source_last_successful_sync_timestamp_seconds",
            "When each source was last synced successfully",
            labels=["source"],
        )
        failures = CounterMetricFamily(
            "rosetta_sync_failures",
            "Syncs of each source that failed, wholly or for a table",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "rosetta_source_up", "1 when the last sync of a source succeeded", labels=["source"]
        )
        for name, last_success, failed, status in conn.execute(QUERIES["source_metrics"]):
            if last_success is not None:
                success.add_metric([name], last_success)
            failures.add_metric([name], float(failed))
            up.add_metric([name], 1.0 if status in ("ok", "partial") else 0.0)
        yield success
        yield failures
        yield up

        tables = GaugeMetricFamily(
            "rosetta_tables", "Tables tracked, by status", labels=["source", "status"]
        )
        for name, status, count in conn.execute(QUERIES["table_metrics"]):
            tables.add_metric([name, status], float(count))
        yield tables

        versions = CounterMetricFamily(
            "rosetta_schema_versions",
            "Schema versions recorded, by change type",
            labels=["source", "change_type"],
        )
        for name, kind, count in conn.execute(QUERIES["version_metrics"]):
            versions.add_metric([name, kind], float(count))
        yield versions

        delivered = CounterMetricFamily(
            "rosetta_webhook_deliveries", "Webhook deliveries that succeeded", labels=["source"]
        )
        failed_attempts = CounterMetricFamily(
            "rosetta_webhook_failures", "Webhook delivery attempts that failed", labels=["source"]
        )
        pending = GaugeMetricFamily(
            "rosetta_webhook_pending", "Webhook deliveries waiting to be sent", labels=["source"]
        )
        dead = GaugeMetricFamily(
            "rosetta_webhook_dead",
            "Webhook deliveries given up after the last retry",
            labels=["source"],
        )
        for name, ok, waiting, gave_up, failed_n in conn.execute(QUERIES["webhook_metrics"]):
            delivered.add_metric([name], float(ok))
            failed_attempts.add_metric([name], float(failed_n))
            pending.add_metric([name], float(waiting))
            dead.add_metric([name], float(gave_up))
        yield delivered
        yield failed_attempts
        yield pending
        yield dead

        listening = GaugeMetricFamily(
            "rosetta_capture_listener_connected",
            "1 when a listener holds a LISTEN connection to the source (capture installed)",
            labels=["source"],
        )
        latency = GaugeMetricFamily(
            "rosetta_capture_notification_to_version_seconds",
            "Seconds from the last captured DDL's notification to its sync's commit",
            labels=["source"],
        )
        broken = GaugeMetricFamily(
            "rosetta_capture_broken",
            "1 when the capture cannot be read on the source (it is on polling)",
            labels=["source"],
        )
        params = {"listener_fresh": LISTENER_FRESH_SECONDS}
        for name, connected, seconds, is_broken in conn.execute(QUERIES["capture_metrics"], params):
            listening.add_metric([name], float(connected or 0))
            if seconds is not None:
                latency.add_metric([name], float(seconds))
            broken.add_metric([name], float(is_broken))
        yield listening
        yield latency
        yield broken

        yield from self.collect_queue()

    def collect_queue(self) -> Iterator[Metric]:
        """The job queue: its depth, its workers, and the sync jobs of the last minutes."""
        conn = self.conn
        jobs = GaugeMetricFamily(
            "rosetta_queue_jobs",
            "Jobs in the queue, by queue and status",
            labels=["queue", "status"],
        )
        for queue, statuses in queue_depth(conn).items():
            for status, count in statuses.items():
                jobs.add_metric([queue, status], float(count))
        yield jobs

        waiting = waiting_jobs(conn)
        yield GaugeMetricFamily(
            "rosetta_sync_jobs_waiting",
            "Sync jobs due to run that no worker has taken yet",
            value=float(waiting.jobs),
        )
        yield GaugeMetricFamily(
            "rosetta_sync_oldest_waiting_job_seconds",
            "Seconds the oldest sync job due to run has waited for a worker (0: none waits)",
            value=waiting.oldest_seconds,
        )

        workers = queue_workers(conn, self.stalled_after)
        yield GaugeMetricFamily(
            "rosetta_queue_workers",
            "Workers the queue knows, alive or not (a worker stopped cleanly is forgotten)",
            value=float(len(workers)),
        )
        yield GaugeMetricFamily(
            "rosetta_queue_workers_alive",
            "Workers whose last heartbeat is within three heartbeat intervals",
            value=float(sum(1 for w in workers if w.alive)),
        )
        heartbeat = GaugeMetricFamily(
            "rosetta_queue_worker_last_heartbeat_timestamp_seconds",
            "When each worker the queue knows last sent a heartbeat",
            labels=["worker"],
        )
        running = GaugeMetricFamily(
            "rosetta_queue_worker_running_jobs",
            "Jobs each worker the queue knows is running now",
            labels=["worker"],
        )
        for w in workers:
            heartbeat.add_metric([w.label], w.last_heartbeat_seconds)
            running.add_metric([w.label], float(w.running))
        yield heartbeat
        yield running

        window = {"window": JOB_WINDOW_SECONDS}
        with conn.cursor(row_factory=dict_row) as cur:
            times = cur.execute(QUERIES["sync_job_times"], window).fetchone()
            outcomes = cur.execute(QUERIES["sync_job_outcomes"], window).fetchall()
        assert times is not None  # an aggregate: always one row
        yield _summary(
            "rosetta_sync_job_wait_seconds",
            "Seconds first attempts of sync jobs waited in the queue, deferred to started; over "
            "the jobs that finished in the last 15 minutes (a gauge: older ones drop out)",
            times["waited_count"],
            times["waited_sum"],
            times["waited_quantiles"],
        )
        yield _summary(
            "rosetta_sync_job_run_seconds",
            "Seconds sync jobs ran, started to finished; over the jobs that finished in the "
            "last 15 minutes (a gauge: older ones drop out)",
            times["jobs"],
            times["ran_sum"],
            times["ran_quantiles"],
        )

        attempts = GaugeMetricFamily(
            "rosetta_sync_job_attempts",
            "Sync job attempts that finished in the last 15 minutes, by the sync's status "
            "(ok, partial, publication_missing, failed)",
            labels=["status"],
        )
        retries = GaugeMetricFamily(
            "rosetta_sync_job_retries",
            "Sync job attempts that finished in the last 15 minutes and were retries of a "
            "failed one",
        )
        by_status = {"ok": 0, "failed": 0} | {r["status"]: int(r["attempts"]) for r in outcomes}
        for status, n in sorted(by_status.items()):
            attempts.add_metric([status], float(n))
        retries.add_metric([], float(sum(int(r["retries"]) for r in outcomes)))
        yield attempts
        yield retries


def _summary(
    name: str, documentation: str, count: int, total: float, quantiles: list[float] | None
) -> Metric:
    """A summary of a window's jobs: count, sum and the ``QUANTILES`` (none without a job)."""
    family = SummaryMetricFamily(
        name, documentation, count_value=int(count), sum_value=float(total)
    )
    for q, value in zip(QUANTILES, quantiles or [], strict=False):
        family.add_sample(name, {"quantile": q}, float(value))
    return family


def render(conn: Conn, stalled_after: float = STALLED_AFTER) -> bytes:
    """The metrics in Prometheus text format (``stalled_after``: seconds without a heartbeat
    after which a worker is dead, ``QueueOptions.stalled_after``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(conn, stalled_after))
    return generate_latest(registry)
