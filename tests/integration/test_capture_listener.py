"""The capture listener on real PostgreSQL: a change synced as its DDL commits, and a burst of
DDL with the listener's connection killed in the middle caught up without a gap or a duplicate."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from rosetta import metrics, services
from rosetta.capture import LISTENER_APPLICATION_NAME
from rosetta.capture.listener import Listener
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from tests.conftest import SourceDb

PUB = "rosetta_publication"
TABLES = 10


def rows(store_url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    with psycopg.connect(store_url, row_factory=dict_row) as conn:
        return conn.execute(query.encode(), params).fetchall()


def wait_for(what: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def listening(
    store: Any, store_url: str, box: SecretBox, source_db: SourceDb, register: Any, sync: Any
) -> Iterator[Listener]:
    """A captured source of ten tables, and a listener running on it."""
    for i in range(TABLES):
        source_db.conn.execute(f"CREATE TABLE t{i} (id int PRIMARY KEY)")
    source_db.conn.execute(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    services.install_capture(store, box, SourceLimits(), source)
    store.commit()
    listener = Listener(store_url, box, refresh=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=listener.run, args=(stop,))
    thread.start()
    assert wait_for(lambda: listeners(source_db) == 1), "the listener never connected"
    try:
        yield listener
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    # The server ends a backend a moment after its client closed the connection.
    assert wait_for(lambda: listeners(source_db) == 0, timeout=5), "a listener stayed connected"


def listeners(source_db: SourceDb) -> int:
    row = source_db.conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
        (LISTENER_APPLICATION_NAME,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def captured_versions(store_url: str) -> list[dict[str, Any]]:
    return rows(
        store_url,
        "SELECT t.table_name, h.version_schema, h.schema_table_new, h.provenance, h.detected_by "
        "FROM history_schema_evolution h JOIN table_metadata_list t "
        "ON t.id = h.table_metadata_list_id WHERE h.version_schema > 1 "
        "ORDER BY t.table_name, h.version_schema",
    )


def test_a_change_is_recorded_as_its_ddl_commits(
    store_url: str, source_db: SourceDb, listening: Listener
) -> None:
    source_db.conn.execute("ALTER TABLE t3 ADD COLUMN note text")
    assert wait_for(lambda: len(captured_versions(store_url)) == 1)
    [version] = captured_versions(store_url)
    assert (version["table_name"], version["detected_by"]) == ("t3", "capture")
    [event] = version["provenance"]["events"]
    assert event["statement"] == "ALTER TABLE t3 ADD COLUMN note text"
    # The store says which sources a listener holds a connection to.
    assert wait_for(
        lambda: (
            rows(store_url, "SELECT capture_listener_at FROM sources")[0]["capture_listener_at"]
            is not None
        )
    )
    # /metrics shows it, with the time from the notification to the version.
    with psycopg.connect(store_url) as conn:
        text = metrics.render(conn).decode()
    assert 'rosetta_capture_listener_connected{source="shop"} 1.0' in text
    assert 'rosetta_capture_broken{source="shop"} 0.0' in text
    [latency] = [
        line
        for line in text.splitlines()
        if line.startswith('rosetta_capture_notification_to_version_seconds{source="shop"}')
    ]
    assert 0 < float(latency.split()[-1]) < 10


def test_a_burst_with_the_listener_killed_midway_is_caught_up_without_gap_or_duplicate(
    store_url: str, source_db: SourceDb, listening: Listener
) -> None:
    for n in range(50):
        source_db.conn.execute(f"ALTER TABLE t{n % TABLES} ADD COLUMN c{n} int")
        if n == 20:
            source_db.conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (LISTENER_APPLICATION_NAME,),
            )

    def every_column_recorded() -> bool:
        latest: dict[str, dict[str, Any]] = {}
        for v in captured_versions(store_url):
            latest[v["table_name"]] = v["schema_table_new"]
        return len(latest) == TABLES and sum(len(s) - 1 for s in latest.values()) == 50

    assert wait_for(every_column_recorded), "not every change reached the store"
    assert wait_for(lambda: listeners(source_db) == 1), "the listener did not reconnect"
    listening.wait_idle()
    versions = captured_versions(store_url)
    # Every statement is in exactly one version's provenance: no gap, no duplicate.
    statements = sorted(e["statement"] for v in versions for e in v["provenance"]["events"])
    assert statements == sorted(f"ALTER TABLE t{n % TABLES} ADD COLUMN c{n} int" for n in range(50))
    assert all(v["detected_by"] == "capture" for v in versions)
    # No version repeats the one before it.
    by_table: dict[str, list[dict[str, Any]]] = {}
    for v in versions:
        by_table.setdefault(v["table_name"], []).append(v["schema_table_new"])
    for schemas in by_table.values():
        assert all(a != b for a, b in itertools.pairwise(schemas))
