"""The schema monitor's cycle over several sources, against real PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from psycopg.rows import dict_row

from rosetta import sources
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import StoreUnavailableError
from rosetta.monitor import Monitor

PUB = "rosetta_publication"
WRONG_PASSWORD = "not-the-password-3f9c"
COMPLETED = re.compile(
    r"Schema monitoring cycle completed in \d+\.\d\ds: (\d+) sources \((\d+) failed\), tables: "
    r"(\d+) added, (\d+) healed, (\d+) changed, (\d+) removed, (\d+) skipped, (\d+) failed"
)


def select(store: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    with store.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)
        out: list[dict[str, Any]] = cur.fetchall()
    store.commit()
    return out


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def completed(caplog: pytest.LogCaptureFixture) -> list[tuple[int, ...]]:
    found = [COMPLETED.fullmatch(m) for m in messages(caplog)]
    return [tuple(int(g) for g in m.groups()) for m in found if m]


def source_rows(store: Any) -> dict[str, dict[str, Any]]:
    rows = select(
        store,
        "SELECT name, is_publication_enabled, is_replication_enabled, last_sync_status,"
        " last_sync_error FROM sources",
    )
    return {r.pop("name"): r for r in rows}


def test_cycle_syncs_every_source_and_survives_an_unreachable_one(
    source_db: Any,
    store: Any,
    store_url: str,
    box: SecretBox,
    register: Any,
    caplog_rosetta: Any,
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2))")
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, name text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE orders, customers")
    register("good")
    bad_dsn = source_db.server.url(source_db.name, password=WRONG_PASSWORD)
    sources.add_source(
        store, box, sources.SourceInput("bad", sources.parse_dsn(bad_dsn), PUB, None)
    )
    store.commit()
    monitor = Monitor(
        store_url, box, interval=60, concurrency=2, limits=SourceLimits(connect_timeout=5)
    )

    result = monitor.run_cycle()

    by_name = {s.source: s for s in result.summaries}
    assert set(by_name) == {"bad", "good"}
    bad, good = by_name["bad"], by_name["good"]
    assert bad.status == "failed"
    assert bad.error is not None and "password authentication failed" in bad.error
    assert sorted(good.added) == ["customers", "orders"]
    assert good.status == "ok"
    assert result.outcome == "partial" and result.sources_failed == 1
    assert monitor.last is result

    logged = messages(caplog_rosetta)
    assert logged[0] == "Starting schema monitoring cycle"
    assert completed(caplog_rosetta) == [(2, 1, 2, 0, 0, 0, 0, 0)]
    assert any(m.startswith("Sync of source bad failed: cannot connect to") for m in logged)
    assert not any(WRONG_PASSWORD in m for m in logged)
    assert WRONG_PASSWORD not in (bad.error or "")

    rows = source_rows(store)
    assert rows["good"]["last_sync_status"] == "ok"
    assert rows["good"]["is_publication_enabled"] is True
    assert rows["bad"]["last_sync_status"] == "failed"
    assert "password authentication failed" in rows["bad"]["last_sync_error"]
    tracked = select(
        store,
        "SELECT s.name, t.table_name, h.version_schema, h.changes_type"
        " FROM table_metadata_list t JOIN sources s ON s.id = t.source_id"
        " JOIN history_schema_evolution h ON h.table_metadata_list_id = t.id"
        " ORDER BY t.table_name",
    )
    assert [tuple(r.values()) for r in tracked] == [
        ("good", "customers", 1, "INITIAL_LOAD"),
        ("good", "orders", 1, "INITIAL_LOAD"),
    ]
    [beat] = select(store, "SELECT * FROM monitor_heartbeats")
    assert beat["monitor_id"] == monitor.monitor_id
    assert beat["last_cycle_outcome"] == "partial"
    assert beat["last_cycle_finished_at"] is not None
    assert beat["last_cycle_summary"]["sources"] == 2
    assert beat["last_cycle_summary"]["sources_failed"] == 1
    assert beat["last_cycle_summary"]["added"] == 2

    # The next cycle: the good source has nothing to do, the bad one still fails.
    source_db.sql("ALTER TABLE orders ADD COLUMN paid boolean")
    caplog_rosetta.clear()
    again = monitor.run_cycle()
    assert completed(caplog_rosetta) == [(2, 1, 0, 0, 1, 0, 0, 0)]
    assert {s.source: s.status for s in again.summaries} == {"bad": "failed", "good": "ok"}


def test_a_source_whose_publication_is_missing_is_flagged_and_skipped(
    source_db: Any,
    store: Any,
    store_url: str,
    box: SecretBox,
    register: Any,
    caplog_rosetta: Any,
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE orders")
    source_db.sql("CREATE PUBLICATION other_pub FOR TABLE orders")
    source_db.sql("SELECT pg_create_logical_replication_slot('rosetta_slot_monitor', 'pgoutput')")
    try:
        register("shop", slot="rosetta_slot_monitor")
        register("ghost", publication="never_created")
        register("other", publication="other_pub")
        monitor = Monitor(
            store_url, box, interval=60, concurrency=3, limits=SourceLimits(connect_timeout=5)
        )

        first = monitor.run_cycle()
        assert {s.source: s.status for s in first.summaries} == {
            "shop": "ok",
            "ghost": "publication_missing",
            "other": "ok",
        }
        rows = source_rows(store)
        assert (rows["shop"]["is_publication_enabled"], rows["shop"]["is_replication_enabled"]) == (
            True,
            True,
        )
        assert rows["ghost"]["is_publication_enabled"] is False
        assert rows["ghost"]["last_sync_status"] == "publication_missing"
        tables_before = select(store, "SELECT * FROM table_metadata_list ORDER BY id")
        history_before = select(store, "SELECT * FROM history_schema_evolution ORDER BY id")
        assert len(tables_before) == 2

        source_db.sql(f"DROP PUBLICATION {PUB}")
        source_db.sql("SELECT pg_drop_replication_slot('rosetta_slot_monitor')")
        source_db.sql("ALTER TABLE orders ADD COLUMN note text")
        caplog_rosetta.clear()

        second = monitor.run_cycle()

        summaries = {s.source: s for s in second.summaries}
        shop = summaries["shop"]
        assert shop.status == "publication_missing"
        assert shop.publication_exists is False and shop.slot_exists is False
        assert not shop.wrote_anything and shop.error is None
        assert summaries["other"].changed[0].changes_type == "NEW COLUMN"
        assert second.outcome == "ok"
        rows = source_rows(store)
        assert rows["shop"] == {
            "is_publication_enabled": False,
            "is_replication_enabled": False,
            "last_sync_status": "publication_missing",
            "last_sync_error": f"publication {PUB!r} does not exist",
        }
        logged = messages(caplog_rosetta)
        assert f"Publication {PUB} does not exist on source shop: skipping it" in logged
        assert "Publication never_created does not exist on source ghost: skipping it" in logged
        assert completed(caplog_rosetta) == [(3, 0, 0, 0, 1, 0, 0, 0)]
        # Skipped: the shop's table and history are as they were.
        shop_id = select(store, "SELECT id FROM sources WHERE name = 'shop'")[0]["id"]
        shop_tables = "SELECT * FROM table_metadata_list WHERE source_id = %s ORDER BY id"
        assert select(store, shop_tables, (shop_id,)) == [
            t for t in tables_before if t["source_id"] == shop_id
        ]
        shop_history = select(
            store,
            "SELECT h.* FROM history_schema_evolution h JOIN table_metadata_list t"
            " ON t.id = h.table_metadata_list_id WHERE t.source_id = %s ORDER BY h.id",
            (shop_id,),
        )
        assert shop_history == [
            h
            for h in history_before
            if h["table_metadata_list_id"]
            in {t["id"] for t in tables_before if t["source_id"] == shop_id}
        ]
    finally:
        source_db.sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = 'rosetta_slot_monitor'"
        )


def test_a_store_that_cannot_be_reached_fails_the_cycle(
    pg: Any, box: SecretBox, caplog_rosetta: Any
) -> None:
    monitor = Monitor(pg.url("no_such_store_db"), box, interval=60)
    with pytest.raises(StoreUnavailableError):
        monitor.run_cycle()
    assert monitor.last is not None and monitor.last.outcome == "store_failed"
    assert any(
        m.startswith("Schema monitoring cycle failed: Rosetta's store cannot be reached")
        for m in messages(caplog_rosetta)
    )
