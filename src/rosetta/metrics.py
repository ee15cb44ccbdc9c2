"""Prometheus metrics, read from the store at scrape time so every process's work counts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rosetta import liveness, sqlfile
from rosetta.store.repository import Conn

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


QUERIES = sqlfile.Queries("rosetta.store", "metrics.sql")

LISTENER_FRESH_SECONDS = 60
"""A listener refreshes ``sources.capture_listener_at`` every 15 s; older than this, it is gone."""


class StoreCollector(Collector):
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

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


def render(conn: Conn) -> bytes:
    """The metrics in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(conn))
    return generate_latest(registry)
