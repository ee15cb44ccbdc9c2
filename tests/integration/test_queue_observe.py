"""What the sync queue looks like from outside: /metrics, /api/v1/health, `rosetta doctor`, the
sources page and `rosetta source list`, with a worker of this process on a real store."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from rosetta.queue import client
from rosetta.queue.options import QueueOptions
from rosetta.queue.worker import Worker
from tests.conftest import Cli, SourceDb

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def scalar(store: psycopg.Connection[Any], query: Any) -> Any:
    row = store.execute(query).fetchone()
    store.rollback()
    assert row is not None
    return row[0]


def scrape(api: TestClient) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    out: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def jobs(status: str, queue: str = "rosetta_sync") -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("rosetta_queue_jobs", (("queue", queue), ("status", status)))


def plain(name: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, ())


def doctor_lines(cli: Cli) -> list[str]:
    """The store-level lines of `rosetta doctor` (before the first source's heading)."""
    done = cli("doctor")
    lines: list[str] = []
    for line in done.stdout.splitlines():
        if not line.startswith("  "):
            break
        lines.append(line.strip())
    assert lines, done.stdout + done.stderr
    return lines


@pytest.fixture
def worker(store_url: str, box: SecretBox) -> Iterator[Worker]:
    options = QueueOptions(concurrency=2, heartbeat=1.0, default_interval=3600, retries=1)
    running = Worker(store_url, box, SourceLimits(connect_timeout=3), options)
    running.start()
    assert running.started.wait(20)
    yield running
    running.stop()


@pytest.fixture
def published(source_db: SourceDb) -> SourceDb:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return source_db


def test_metrics_show_the_queue_the_workers_and_the_sync_jobs(
    store: psycopg.Connection[Any],
    box: SecretBox,
    published: SourceDb,
    register: Any,
    api: TestClient,
    worker: Worker,
) -> None:
    from rosetta import sources

    register("a")
    register("b")
    down = sources.parse_dsn(f"postgresql://u:p@127.0.0.1:{free_port()}/x")
    sources.add_source(store, box, sources.SourceInput("down", down, "pub"))
    store.commit()
    # a and b synced; down failed, was retried once, failed again: its job failed for good.
    wait_until(
        "the failed job of down",
        lambda: (
            scalar(store, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'") == 1
        ),
    )
    wait_until("four sync records", lambda: scalar(store, "SELECT count(*) FROM sync_runs") == 4)

    got = scrape(api)
    assert got[plain("rosetta_queue_workers")] == 1
    assert got[plain("rosetta_queue_workers_alive")] == 1
    name = worker.runtime.name
    beat = got[("rosetta_queue_worker_last_heartbeat_timestamp_seconds", (("worker", name),))]
    assert abs(beat - time.time()) < 30
    assert got[("rosetta_queue_worker_running_jobs", (("worker", name),))] == 0
    assert got[jobs("failed")] == 1
    assert got[jobs("todo")] == 0 and got[jobs("doing")] == 0
    assert got[plain("rosetta_sync_jobs_waiting")] == 0
    assert got[plain("rosetta_sync_oldest_waiting_job_seconds")] == 0
    # Four attempts ran (a, b, down twice); three were first attempts, one a retry.
    assert got[plain("rosetta_sync_job_run_seconds_count")] == 4
    assert got[plain("rosetta_sync_job_run_seconds_sum")] > 0
    assert got[plain("rosetta_sync_job_wait_seconds_count")] == 3
    p50 = got[("rosetta_sync_job_wait_seconds", (("quantile", "0.5"),))]
    p95 = got[("rosetta_sync_job_wait_seconds", (("quantile", "0.95"),))]
    assert 0 <= p50 <= p95 < 30
    assert 0 < got[("rosetta_sync_job_run_seconds", (("quantile", "0.95"),))] < 30
    assert got[("rosetta_sync_job_attempts", (("status", "ok"),))] == 2
    assert got[("rosetta_sync_job_attempts", (("status", "failed"),))] == 2
    assert got[plain("rosetta_sync_job_retries")] == 1


def test_with_no_worker_a_waiting_job_and_a_dead_worker_are_shown(
    store: psycopg.Connection[Any],
    published: SourceDb,
    register: Any,
    api: TestClient,
    cli: Cli,
) -> None:
    shop = register("shop")
    assert client.defer_sync(store, shop.id, "refresh") is not None
    # What a killed worker leaves: its row, its heartbeat a while ago, Rosetta's name for it.
    row = store.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) "
        "VALUES (now() - interval '5 minutes') RETURNING id"
    ).fetchone()
    assert row is not None
    dead = row[0]
    store.execute(
        "INSERT INTO queue_workers (worker_id, name, hostname, pid, concurrency) "
        "VALUES (%s, 'gone-host:4242', 'gone-host', 4242, 3)",
        (dead,),
    )
    store.commit()

    got = scrape(api)
    assert got[jobs("todo")] == 1
    assert got[plain("rosetta_sync_jobs_waiting")] == 1
    assert got[plain("rosetta_sync_oldest_waiting_job_seconds")] >= 0
    assert got[plain("rosetta_queue_workers")] == 1
    assert got[plain("rosetta_queue_workers_alive")] == 0

    lines = doctor_lines(cli)
    workers = [line for line in lines if line.startswith("WARN  workers")]
    assert len(workers) == 1, lines
    assert "no worker is alive and 1 sync job waiting" in workers[0]
    fix = lines[lines.index(workers[0]) + 1]
    assert fix == "fix: start `rosetta worker` or `rosetta monitor`"
    gone = [line for line in lines if line.startswith("WARN  worker ")]
    assert len(gone) == 1, lines
    assert "gone-host:4242 on gone-host pid 4242 is dead: last heartbeat" in gone[0]

    health = poll_health(api, lambda body: body.get("workers") is not None)
    assert health["queue"]["waiting"] == 1 and health["queue"]["jobs"]["todo"] == 1
    [ghost] = health["workers"]
    assert ghost["name"] == "gone-host:4242" and ghost["alive"] is False
    assert (ghost["hostname"], ghost["pid"], ghost["concurrency"]) == ("gone-host", 4242, 3)


def poll_health(api: TestClient, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The health answer with a token, once the store watch has looked at the store."""
    deadline = time.monotonic() + 15
    while True:
        response = api.get("/api/v1/health")
        body: dict[str, Any] = response.json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_health_doctor_the_sources_page_and_source_list_name_the_worker(
    store: psycopg.Connection[Any],
    published: SourceDb,
    register: Any,
    api: TestClient,
    web: TestClient,
    cli: Cli,
    worker: Worker,
) -> None:
    register("shop")
    wait_until(
        "the worker's sync of shop",
        lambda: scalar(store, "SELECT last_sync_by FROM sources WHERE name = 'shop'") is not None,
    )
    name = worker.runtime.name
    assert name == f"{socket.gethostname()}:{os.getpid()}"

    health = poll_health(api, lambda body: bool(body.get("workers")))
    assert health["status"] == "ok" and health["store"] == "ok"  # the fields it always had
    assert "monitor" in health and "last_heartbeat" in health and "version" in health
    [me] = health["workers"]
    assert me["name"] == name and me["alive"] is True
    assert (me["hostname"], me["pid"], me["concurrency"], me["running"]) == (
        socket.gethostname(),
        os.getpid(),
        2,
        0,
    )
    assert health["queue"]["waiting"] == 0

    lines = doctor_lines(cli)
    assert "PASS  workers           1 worker alive; 0 sync jobs waiting" in lines, lines
    mine = [line for line in lines if line.startswith("PASS  worker ")]
    assert len(mine) == 1, lines
    assert f"{name} on {socket.gethostname()} pid {os.getpid()}: 0 of 2 syncs running" in mine[0]

    page = web.get("/")
    assert page.status_code == 200
    assert f"by <code>{name}</code>" in page.text
    assert "Workers: 1 alive of 1." in page.text

    wide = Cli(dict(cli.env, COLUMNS="200"), cli.log_file)
    listed = wide("source", "list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if "shop" in line]
    assert name in row and " ok " in row
    [as_json] = json.loads(wide("source", "list", "--json").stdout)
    assert as_json["last_sync_by"] == name


def test_a_stored_worker_name_is_shown_as_text(
    store: psycopg.Connection[Any],
    published: SourceDb,
    register: Any,
    sync: Any,
    web: TestClient,
    cli: Cli,
) -> None:
    sync(register("shop"))
    hostile = "<img src=x onerror=alert(1)>[bold red]boom[/]:1"
    store.execute("UPDATE sources SET last_sync_by = %s", (hostile,))
    store.commit()

    page = web.get("/")
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;[bold red]boom[/]:1" in page.text

    listed = Cli(dict(cli.env, COLUMNS="200"), cli.log_file)("source", "list")
    assert listed.returncode == 0, listed.stderr
    assert hostile in listed.stdout  # Rich markup shown as it is, not applied
