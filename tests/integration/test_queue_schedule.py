"""The queue in the store: its schema applied and upgraded by `rosetta db upgrade`, per-source
intervals, and `rosetta monitor` (one process) running the scheduler, a worker and the capture
listener on the queue."""

from __future__ import annotations

import itertools
import os
import threading
import time
from typing import Any

import psycopg
from psycopg import sql

from rosetta import services
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.monitor import Monitor
from rosetta.pg.server import PostgresServer
from rosetta.queue.options import QueueOptions
from rosetta.store import db, repository
from tests.conftest import Cli, SourceDb
from tests.integration.test_queue import runs, wait_until


def test_db_upgrade_applies_the_queue_schema_with_the_store(pg: PostgresServer) -> None:
    name = f"queue_upgrade_{os.getpid()}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        applied = db.upgrade(pg.url(name))
        assert "0012.job-queue" in applied and "0013.sync-schedule" in applied
        assert db.upgrade(pg.url(name)) == []  # nothing twice
        with psycopg.connect(pg.url(name)) as conn:
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE tablename LIKE 'procrastinate%'"
                )
            }
            db.ensure_migrated(conn)
        assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events"} <= tables
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_source_interval_is_set_checked_and_shown(
    store: psycopg.Connection[Any], cli: Cli, source_db: SourceDb, register: Any
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    register("shop")
    done = cli("source", "update", "shop", "--interval", "300")
    assert done.returncode == 0, done.stderr
    assert repository.source_by_name(store, "shop").sync_interval_seconds == 300
    store.rollback()
    bad = cli("source", "update", "shop", "--interval", "0.5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "invalid sync interval 0.5" in bad.stderr
    back = cli("source", "update", "shop", "--interval", "0")
    assert back.returncode == 0
    assert repository.source_by_name(store, "shop").sync_interval_seconds is None


def test_each_source_is_synced_at_its_own_interval(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
) -> None:
    """The default interval is an hour; one source's own is 2 s: only it is synced again."""
    from rosetta.queue.worker import Worker

    source_db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE t")
    register("hourly")
    fast = register("fast")
    store.execute("UPDATE sources SET sync_interval_seconds = 2 WHERE id = %s", (fast.id,))
    store.commit()
    options = QueueOptions(concurrency=2, heartbeat=1.0, default_interval=3600)
    worker = Worker(store_url, box, SourceLimits(connect_timeout=3), options)
    worker.start()
    try:
        wait_until("three syncs of the fast source", lambda: _count(store, "fast") >= 3, 20)
    finally:
        worker.stop()
    assert _count(store, "hourly") == 1
    starts = store.execute(
        "SELECT extract(epoch FROM started_at) FROM sync_runs r JOIN sources s "
        "ON s.id = r.source_id WHERE s.name = 'fast' ORDER BY r.id"
    ).fetchall()
    store.rollback()
    gaps = [float(b[0]) - float(a[0]) for a, b in itertools.pairwise(starts)]
    assert all(1.0 <= gap <= 4.0 for gap in gaps), gaps


def _count(store: psycopg.Connection[Any], name: str) -> int:
    return sum(1 for r in runs(store) if r[0] == name)


def test_the_monitor_runs_captured_ddl_as_a_job_of_its_own_worker(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    source_db.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    source = register("shop")
    sync(source)
    services.install_capture(store, box, SourceLimits(), source)
    store.commit()
    monitor = Monitor(store_url, box, interval=3600, limits=SourceLimits(connect_timeout=3))
    monitor.listener.refresh = 0.2
    stop = threading.Event()
    thread = threading.Thread(target=monitor.run_forever, args=(stop,))
    thread.start()
    try:
        wait_until("the first cycle", lambda: monitor.last is not None)
        wait_until(
            "the listener",
            lambda: bool(
                source_db.sql(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = "
                    "'rosetta capture listener'"
                )
            ),
        )
        began = time.monotonic()
        source_db.sql("ALTER TABLE orders ADD COLUMN note text")
        wait_until("the captured version", lambda: _versions(store) == [1, 2], 10)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    got = runs(store)
    assert got[-1][1:3] == ("capture", "ok")
    detected = store.execute(
        "SELECT detected_by FROM history_schema_evolution WHERE version_schema = 2"
    ).fetchone()
    store.rollback()
    assert detected == ("capture",)
    assert elapsed < 5


def _versions(store: psycopg.Connection[Any]) -> list[int]:
    rows = store.execute(
        "SELECT version_schema FROM history_schema_evolution ORDER BY version_schema"
    ).fetchall()
    store.rollback()
    return [int(r[0]) for r in rows]


def test_the_api_sets_an_interval_and_the_source_page_shows_it_and_who_synced(
    store: psycopg.Connection[Any],
    source_db: SourceDb,
    register: Any,
    sync: Any,
    api: Any,
    web: Any,
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = register("shop")
    sync(source)
    bad = api.patch(f"/api/v1/sources/{source.id}", json={"sync_interval_seconds": 0})
    assert bad.status_code == 422
    done = api.patch(f"/api/v1/sources/{source.id}", json={"sync_interval_seconds": 300})
    assert done.status_code == 200, done.text
    assert done.json()["sync_interval_seconds"] == 300
    page = web.get(f"/sources/{source.id}").text
    assert "polling every 300 s" in page
    by = repository.source_by_id(store, source.id).last_sync_by
    store.rollback()
    assert by and f"by {by}" in page
    cleared = api.patch(f"/api/v1/sources/{source.id}", json={"sync_interval_seconds": None})
    assert cleared.json()["sync_interval_seconds"] is None
    assert "polling every 60 s" in web.get(f"/sources/{source.id}").text


def test_the_source_form_sets_keeps_and_checks_the_interval(
    store: psycopg.Connection[Any], source_db: SourceDb, register: Any, web: Any
) -> None:
    from tests.integration.web_helpers import csrf_of, source_form

    source_db.sql("CREATE PUBLICATION rosetta_publication")
    shop = register("shop")
    edit = f"/sources/{shop.id}/edit"
    assert 'placeholder="60 (the default)"' in web.get(edit).text
    form = {**source_form(source_db), "sync_interval": "300"}
    saved = web.post(edit, data={**form, "csrf": csrf_of(web, edit)})
    assert saved.status_code == 303, saved.text
    assert repository.source_by_name(store, "shop").sync_interval_seconds == 300
    store.rollback()
    assert 'name="sync_interval" value="300"' in web.get(edit).text
    bad = {**form, "sync_interval": "soon"}
    refused = web.post(edit, data={**bad, "csrf": csrf_of(web, edit)})
    assert refused.status_code == 422
    assert "the sync interval must be a number of seconds" in refused.text
    too_small = {**form, "sync_interval": "0.5"}
    refused = web.post(edit, data={**too_small, "csrf": csrf_of(web, edit)})
    assert "invalid sync interval 0.5" in refused.text
    cleared = {**form, "sync_interval": ""}
    assert web.post(edit, data={**cleared, "csrf": csrf_of(web, edit)}).status_code == 303
    assert repository.source_by_name(store, "shop").sync_interval_seconds is None
    store.rollback()
