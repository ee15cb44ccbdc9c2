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


def test_with_no_retries_a_failed_sync_job_fails_once(
    store: psycopg.Connection[Any], store_url: str, box: SecretBox
) -> None:
    """ROSETTA_SYNC_RETRIES=0: one attempt (procrastinate reads max_attempts=0 as no limit)."""
    from rosetta import sources
    from rosetta.pg.server import free_port

    params = sources.parse_dsn(f"postgresql://nobody:pw@127.0.0.1:{free_port()}/nothing")
    sources.add_source(store, box, sources.SourceInput("gone", params, "pub"))
    store.commit()
    options = QueueOptions(concurrency=1, heartbeat=1.0, default_interval=3600, retries=0)
    running = Worker(store_url, box, SourceLimits(connect_timeout=1), options)
    running.start()
    try:
        wait_until("the failed sync", lambda: len(runs(store)) >= 1)

        def job_failed() -> bool:
            row = store.execute(
                "SELECT status::text FROM procrastinate_jobs WHERE task_name = %s",
                ("rosetta.sync_source",),
            ).fetchone()
            store.rollback()
            return row == ("failed",)

        wait_until("the job to fail", job_failed)
        time.sleep(3)  # a retry would come after 2 s
    finally:
        running.stop()
    assert [(name, status) for name, _, status, _ in runs(store)] == [("gone", "failed")]
