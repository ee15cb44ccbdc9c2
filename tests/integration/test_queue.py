"""Syncs on the job queue (rosetta.queue): workers in this process, on a real store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.queue import client
from rosetta.queue.options import QueueOptions
from rosetta.queue.worker import Worker
from tests.conftest import SourceDb


def wait_until(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def runs(store: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    rows = store.execute(
        "SELECT s.name, r.reason, r.status, r.worker FROM sync_runs r "
        "JOIN sources s ON s.id = r.source_id ORDER BY r.id"
    ).fetchall()
    store.rollback()
    return rows


@pytest.fixture
def worker(store_url: str, box: SecretBox) -> Iterator[Worker]:
    options = QueueOptions(concurrency=2, heartbeat=1.0, default_interval=3600)
    running = Worker(store_url, box, SourceLimits(connect_timeout=3), options)
    running.start()
    assert running.started.wait(20)
    yield running
    running.stop()


def test_the_scheduler_defers_each_source_once_and_a_worker_syncs_it(
    store: psycopg.Connection[Any], source_db: SourceDb, register: Any, worker: Worker
) -> None:
    source_db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE t")
    register("a")
    register("b")
    wait_until("two syncs", lambda: len(runs(store)) >= 2)
    time.sleep(2.5)  # more ticks: nothing more is due within the interval
    got = runs(store)
    assert sorted((name, reason, status) for name, reason, status, _ in got) == [
        ("a", "schedule", "ok"),
        ("b", "schedule", "ok"),
    ]
    assert all(by == worker.runtime.name for *_, by in got)
    tables = store.execute("SELECT count(*) FROM table_metadata_list").fetchone()
    assert tables == (2,)
    last_by = store.execute("SELECT DISTINCT last_sync_by FROM sources").fetchall()
    assert last_by == [(worker.runtime.name,)]
    store.rollback()
    assert client.workers_alive(store, 3.0) == 1
