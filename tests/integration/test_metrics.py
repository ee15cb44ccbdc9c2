"""Prometheus metrics after a few monitor cycles, read from the store."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from rosetta import metrics, sources, webhooks
from rosetta.crypto import SecretBox
from rosetta.monitor import Monitor
from rosetta.pg.server import free_port


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_cycles(
    store: Any, store_url: str, box: SecretBox, source_db: Any, register: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders, customers")
    shop = register()
    sources.add_source(
        store,
        box,
        sources.SourceInput(
            "down", sources.parse_dsn(f"postgresql://u:p@127.0.0.1:{free_port()}/x"), "pub"
        ),
    )
    store.commit()
    webhooks.add_endpoint(store, box, shop.id, f"http://127.0.0.1:{free_port()}/", None, None)
    store.commit()

    monitor = Monitor(store_url, box, interval=60)
    monitor.run_cycle()
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    source_db.sql("ALTER PUBLICATION rosetta_publication DROP TABLE customers")
    monitor.run_cycle()
    monitor.run_cycle()
    webhooks.deliver_due(store, box, timeout=2)

    got = samples(metrics.render(store))
    mon = (("monitor", monitor.monitor_id),)
    assert got[("rosetta_monitor_cycle_duration_seconds", mon)] > 0
    assert got[("rosetta_monitor_last_cycle_timestamp_seconds", mon)] > 1.7e9
    assert (
        got[("rosetta_source_last_successful_sync_timestamp_seconds", (("source", "shop"),))]
        > 1.7e9
    )
    assert (
        "rosetta_source_last_successful_sync_timestamp_seconds",
        (("source", "down"),),
    ) not in got
    assert got[("rosetta_sync_failures_total", (("source", "down"),))] == 3
    assert got[("rosetta_sync_failures_total", (("source", "shop"),))] == 0
    assert got[("rosetta_source_up", (("source", "down"),))] == 0
    assert got[("rosetta_tables", (("source", "shop"), ("status", "tracked")))] == 1
    assert got[("rosetta_tables", (("source", "shop"), ("status", "removed")))] == 1
    assert (
        got[
            ("rosetta_schema_versions_total", (("change_type", "INITIAL_LOAD"), ("source", "shop")))
        ]
        == 2
    )
    assert (
        got[("rosetta_schema_versions_total", (("change_type", "NEW COLUMN"), ("source", "shop")))]
        == 1
    )
    # 2 added + 1 changed + 1 removed, all to a dead endpoint: one failed attempt each
    assert got[("rosetta_webhook_failures_total", (("source", "shop"),))] == 4
    assert got[("rosetta_webhook_pending", (("source", "shop"),))] == 4
    assert got[("rosetta_webhook_deliveries_total", (("source", "shop"),))] == 0
