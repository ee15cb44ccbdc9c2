"""Refresh through the queue (services.refresh): run by a worker when one is alive, in-process
when none is; the same from the CLI, the API and the web."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from rosetta import services
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import RefreshTimeoutError
from rosetta.queue import client
from rosetta.queue.options import QueueOptions
from rosetta.queue.worker import Worker
from rosetta.store import repository
from tests.conftest import Cli, SourceDb
from tests.integration.test_queue import runs, wait_until

QUEUE = QueueOptions(concurrency=2, heartbeat=1.0, default_interval=3600, refresh_timeout=30)


@pytest.fixture
def worker(store_url: str, box: SecretBox, store: psycopg.Connection[Any]) -> Iterator[Worker]:
    running = Worker(store_url, box, SourceLimits(connect_timeout=3), QUEUE)
    running.start()
    assert running.started.wait(20)

    def registered() -> bool:
        alive = client.workers_alive(store, QUEUE.stalled_after)
        store.rollback()
        return alive == 1

    wait_until("the worker's registration", registered)
    yield running
    running.stop()


@pytest.fixture
def shop(source_db: SourceDb, register: Any) -> Any:
    source_db.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return register("shop")


def refresh(store: psycopg.Connection[Any], box: SecretBox, name: str, **kw: Any) -> Any:
    source = repository.source_by_name(store, name)
    return services.refresh(store, box, SourceLimits(connect_timeout=3), source, QUEUE, **kw)


def test_without_a_worker_refresh_runs_in_process(
    store: psycopg.Connection[Any], box: SecretBox, shop: Any
) -> None:
    summary = refresh(store, box, "shop")
    assert summary.added == ["orders"] and summary.job_id is None
    assert runs(store)[-1][1:3] == ("refresh", "ok")
    row = store.execute("SELECT job_id FROM sync_runs").fetchone()
    assert row == (None,)


def test_with_a_worker_refresh_is_a_job_it_runs(
    store: psycopg.Connection[Any],
    box: SecretBox,
    source_db: SourceDb,
    shop: Any,
    worker: Worker,
) -> None:
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    summary = refresh(store, box, "shop", full=True)
    assert summary.job_id is not None and summary.synced_by == worker.runtime.name
    # The scheduler's first sync and the Refresh: each recorded once, by the worker.
    got = runs(store)
    assert ("shop", "refresh", "ok", worker.runtime.name) in got
    assert all(r[3] == worker.runtime.name for r in got)
    # The scheduler's first sync may have run before the ALTER: one or two versions, never a
    # duplicate, and the last one has the new column.
    history = store.execute(
        "SELECT version_schema, schema_table_new::text FROM history_schema_evolution "
        "ORDER BY version_schema"
    ).fetchall()
    store.rollback()
    assert [v for v, _ in history] in ([1], [1, 2])
    assert '"note"' in history[-1][1]


def test_the_cli_and_the_api_say_which_worker_ran_the_refresh(
    store: psycopg.Connection[Any], cli: Cli, shop: Any, worker: Worker, api: TestClient
) -> None:
    done = cli("refresh", "shop")
    assert done.returncode == 0, done.stderr
    assert f"on worker {worker.runtime.name} (job " in done.stdout
    source_id = repository.source_by_name(store, "shop").id
    store.rollback()
    response = api.post(f"/api/v1/sources/{source_id}/refresh")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["synced_by"] == worker.runtime.name and isinstance(body["job_id"], int)
    listed = api.get(f"/api/v1/sources/{source_id}").json()
    assert listed["last_sync_by"] == worker.runtime.name


def test_refresh_waits_no_longer_than_its_timeout(
    store: psycopg.Connection[Any], box: SecretBox, shop: Any, store_url: str
) -> None:
    """A worker that is alive but busy (here: its heartbeat faked) leaves the Refresh waiting:
    after the timeout it says so in one line, and the job stays queued."""
    store.execute("SELECT procrastinate_register_worker_v1()")
    store.commit()
    source = repository.source_by_name(store, "shop")
    quick = QueueOptions(heartbeat=10.0, refresh_timeout=0.5)
    with pytest.raises(RefreshTimeoutError) as caught:
        services.refresh(store, box, SourceLimits(connect_timeout=3), source, quick)
    assert "no worker finished the sync within 0.5 s: it is still waiting" in caught.value.message
    waiting = store.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
    ).fetchone()
    assert waiting == (1,)


def test_a_refresh_of_an_unreachable_source_fails_at_once_without_retries(
    store: psycopg.Connection[Any], box: SecretBox, worker: Worker
) -> None:
    from rosetta import sources
    from rosetta.pg.server import free_port

    params = sources.parse_dsn(f"postgresql://nobody:pw@127.0.0.1:{free_port()}/nothing")
    sources.add_source(store, box, sources.SourceInput("gone", params, "pub"))
    store.commit()
    wait_until("the scheduled sync and its retries", lambda: len(runs(store)) >= 3)
    before = len(runs(store))
    summary = refresh(store, box, "gone")
    assert summary.error is not None and "cannot connect" in summary.error
    assert summary.job_id is not None
    refreshes = [r for r in runs(store)[before:] if r[1] == "refresh"]
    assert [(r[0], r[2]) for r in refreshes] == [("gone", "failed")]
