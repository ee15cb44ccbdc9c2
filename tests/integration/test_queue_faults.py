"""The job queue under faults and at scale (issue 12): real `rosetta worker` processes on a real
store, asserted by what a user sees (rows in the store, lines in each worker's output).

- two workers share 50 sources for three intervals: each source synced once per interval, a
  column added between intervals recorded once per table;
- a worker killed (SIGKILL) in the middle of a sync: the other worker runs the job;
- the store restarting under a worker: it reconnects, the job it was running is not lost;
- a source that accepts connections and never answers: its sync fails within the connection
  timeout, the other sources keep being synced;
- a source removed while its job waited, and malformed job rows: each ends in one line, with
  no retry.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from procrastinate import jobs, manager
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector
from psycopg import sql

from rosetta import sources
from rosetta.crypto import SecretBox
from rosetta.pg.server import find_bindir, postgres_credentials
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.queue import SCHEDULE_QUEUE, SYNC_QUEUE, SYNC_TASK, client
from rosetta.store import db, repository
from tests.conftest import ROSETTA, TEST_KEY, SourceDb
from tests.integration.test_queue import wait_until

LOCK_SOURCE = "SELECT pg_advisory_lock(1919251317, %s)"
"""The lock a sync of the source takes (store queries.sql ``lock_source``), held by a session:
a sync of the source blocks on it, in the middle of its job."""


# --- `rosetta worker` as a user runs it -------------------------------------------------------


class WorkerProcess:
    """A `rosetta worker` in the foreground, its output (stdout and stderr) in one file."""

    def __init__(self, env: dict[str, str], output: Path, *args: str) -> None:
        self.output_file = output
        with output.open("wb") as handle:
            self.proc = subprocess.Popen(
                [ROSETTA, "worker", *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        self.name = f"{socket.gethostname()}:{self.proc.pid}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.output_file.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 20.0, count: int = 1) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({self.proc.returncode}):\n{self.output()}"
                )
            return len(re.findall(pattern, self.output())) >= count

        try:
            wait_until(f"{pattern!r} in the worker's output", seen, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker output ---\n{self.output()}") from None

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C or a service manager stops it; SIGKILL after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """``spawn(store_url, *args, **settings)``: start a `rosetta worker`; ``settings`` are
    ROSETTA_* variables by their lower-case suffix (``monitor_interval=4``). Every worker is
    stopped at teardown."""
    started: list[WorkerProcess] = []
    (tmp_path / "logs").mkdir(exist_ok=True)

    def _spawn(store_url: str, *args: str, **settings: Any) -> WorkerProcess:
        n = len(started)
        env = dict(
            os.environ,
            ROSETTA_DATABASE_URL=store_url,
            ROSETTA_SECRET_KEY=TEST_KEY,
            ROSETTA_LOG_FILE=str(tmp_path / "logs" / f"worker-{n}.log"),
            ROSETTA_WORKER_HEARTBEAT_SECONDS="1",
            ROSETTA_MONITOR_INTERVAL="3600",
        )
        env.update({f"ROSETTA_{key.upper()}": str(value) for key, value in settings.items()})
        worker = WorkerProcess(env, tmp_path / f"worker-{n}.out", *args)
        started.append(worker)
        return worker

    yield _spawn
    for worker in started:
        worker.stop()


# --- the store, read as a user would -----------------------------------------------------------


def query(store: psycopg.Connection[Any], text: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows of a short read transaction (each call sees the workers' latest commits)."""
    rows = store.execute(text.encode(), params).fetchall()
    store.rollback()
    return rows


def runs_of(store: psycopg.Connection[Any], source_id: int) -> list[tuple[Any, ...]]:
    """(reason, status, worker, job_id, attempt, started_at, finished_at, error, deferred_at)
    of each sync."""
    return query(
        store,
        "SELECT reason, status, worker, job_id, attempt, started_at, finished_at, error, "
        "deferred_at "
        "FROM sync_runs WHERE source_id = %s ORDER BY id",
        [source_id],
    )


def versions(store: psycopg.Connection[Any]) -> dict[tuple[int, str], list[int]]:
    """Each (source id, table) with its recorded versions, in order."""
    rows = query(
        store,
        "SELECT t.source_id, t.table_name, h.version_schema FROM history_schema_evolution h "
        "JOIN table_metadata_list t ON t.id = h.table_metadata_list_id "
        "ORDER BY t.source_id, t.table_name, h.version_schema",
    )
    got: dict[tuple[int, str], list[int]] = {}
    for source_id, table, version in rows:
        got.setdefault((source_id, table), []).append(version)
    return got


def job_status(store: psycopg.Connection[Any], job_id: int) -> str | None:
    """The job's status; None once it is gone (a successful job is deleted)."""
    rows = query(store, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", [job_id])
    return None if not rows else str(rows[0][0])


def add_sources(
    store: psycopg.Connection[Any], box: SecretBox, url: str, names: list[str]
) -> list[Any]:
    params = sources.parse_dsn(url)
    added = [
        sources.add_source(store, box, sources.SourceInput(name, params, "rosetta_publication"))
        for name in names
    ]
    store.commit()
    return added


def published(source_db: SourceDb, *tables: str) -> None:
    for table in tables:
        source_db.sql(f"CREATE TABLE {table} (id int PRIMARY KEY)")
    source_db.sql(f"CREATE PUBLICATION rosetta_publication FOR TABLE {', '.join(tables)}")


def assert_one_line_each(output: str) -> None:
    assert "Traceback" not in output, output
    assert "\n  File " not in output, output


# --- 1. two workers, 50 sources, three intervals -------------------------------------------------

INTERVAL = 4.0


def test_two_workers_sync_each_of_50_sources_once_per_interval_and_record_each_change_once(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
) -> None:
    published(source_db, "t1", "t2")
    added = add_sources(store, box, source_db.url, [f"s{i:02d}" for i in range(50)])
    ids = [source.id for source in added]

    def rounds_done(n: int) -> bool:
        counts = query(
            store,
            "SELECT count(*) FROM sync_runs WHERE status = 'ok' GROUP BY source_id",
        )
        return len(counts) == 50 and all(count >= n for (count,) in counts)

    settings = {"monitor_interval": INTERVAL, "worker_concurrency": 4}
    workers = [spawn(store_url, **settings), spawn(store_url, **settings)]
    for worker in workers:
        worker.wait_for("started: 4 syncs at a time, with the scheduler")

    wait_until("the first interval's syncs", lambda: rounds_done(1), 15)
    (first,) = query(store, "SELECT min(started_at) FROM sync_runs")[0]
    source_db.sql("ALTER TABLE t1 ADD COLUMN a int")  # seen by the second interval's syncs
    wait_until("the second interval's syncs", lambda: rounds_done(2), INTERVAL + 10)
    source_db.sql("ALTER TABLE t2 ADD COLUMN b int")  # seen by the third interval's syncs
    wait_until("the third interval's syncs", lambda: rounds_done(3), INTERVAL + 10)
    # Half an interval into the fourth... not yet: the fourth starts 3 intervals after the first.
    (now,) = query(store, "SELECT now()")[0]
    time.sleep(max(0.0, (first + timedelta(seconds=2.5 * INTERVAL) - now).total_seconds()))
    for worker in workers:
        assert worker.stop() == 0
        assert_one_line_each(worker.output())
        assert "ERROR" not in worker.output(), worker.output()

    (last,) = query(store, "SELECT max(started_at) FROM sync_runs")[0]
    assert last < first + timedelta(seconds=3 * INTERVAL)
    by_worker: dict[str, int] = {}
    for source_id in ids:
        got = runs_of(store, source_id)
        assert [(reason, status) for reason, status, *_ in got] == [("schedule", "ok")] * 3, got
        # Deferred an interval apart (a job may wait for a free worker: its start may come
        # later), and never two at once.
        deferred = [row[8] for row in got]
        for before, after in itertools.pairwise(deferred):
            assert after - before >= timedelta(seconds=INTERVAL - 1), deferred
        for before, after in itertools.pairwise(got):
            assert after[5] >= before[6], got
        for row in got:
            by_worker[row[2]] = by_worker.get(row[2], 0) + 1
    assert set(by_worker) == {worker.name for worker in workers}, by_worker
    assert all(count > 0 for count in by_worker.values())

    expected = {(i, "t1"): [1, 2] for i in ids} | {(i, "t2"): [1, 2] for i in ids}
    assert versions(store) == expected


# --- 2. a worker killed in the middle of a sync ----------------------------------------------


def doing_job(store: psycopg.Connection[Any], source_id: int) -> tuple[int, int] | None:
    """The running sync job of the source and the pid of the worker that runs it."""
    rows = query(
        store,
        "SELECT j.id, q.pid FROM procrastinate_jobs j "
        "JOIN queue_workers q ON q.worker_id = j.worker_id "
        "WHERE j.status = 'doing' AND j.lock = %s",
        [f"rosetta-source-{source_id}"],
    )
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


@pytest.mark.parametrize("refresh_waits", [False, True], ids=["alone", "refresh-waiting"])
def test_a_job_of_a_worker_killed_mid_sync_is_run_by_the_other_worker(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
    refresh_waits: bool,
) -> None:
    published(source_db, "t")
    (source,) = add_sources(store, box, source_db.url, ["shop"])
    holder = psycopg.connect(store_url, autocommit=True)
    try:
        holder.execute(LOCK_SOURCE, [source.id])
        settings = {"monitor_interval": 10, "worker_heartbeat_seconds": 1}
        workers = {w.pid: w for w in (spawn(store_url, **settings), spawn(store_url, **settings))}
        running: list[tuple[int, int]] = []

        def started() -> bool:
            found = doing_job(store, source.id)
            running[:] = [found] if found else []
            return found is not None

        wait_until("the sync job blocked in the middle of its sync", started, 20)
        ((job_id, pid),) = running
        if refresh_waits:
            # A Refresh while the sync runs: its job waits behind the running one.
            waiting = client.defer_sync(store, source.id, "refresh")
            store.commit()
            assert waiting is not None
        killed = workers.pop(pid)
        (survivor,) = workers.values()
        killed.kill()
        killed_at = time.monotonic()
    finally:
        holder.close()  # the lock goes with the session

    # The killed worker's job runs again on the other worker; or, when a Refresh's job of the
    # source waits already, that one runs (the same sync) and the killed one ends.
    job, reason, attempt, status = (
        (waiting or 0, "refresh", 0, "aborted") if refresh_waits else (job_id, "schedule", 1, None)
    )
    try:
        wait_until("the sync ran on the other worker", lambda: job_status(store, job) is None, 10)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- the other worker ---\n{survivor.output()}") from None
    assert time.monotonic() - killed_at < 10
    assert job_status(store, job_id) == status
    got = runs_of(store, source.id)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in got] == [
        (reason, "ok", survivor.name, job, attempt)
    ], got
    assert killed.name not in {r[2] for r in runs_of(store, source.id)}
    assert versions(store) == {(source.id, "t"): [1]}
    survivor.wait_for("was running on a worker that stopped")
    assert survivor.stop() == 0
    assert_one_line_each(survivor.output())


def test_a_worker_killed_in_the_middle_of_a_scheduler_tick_does_not_stop_the_scheduler(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
) -> None:
    published(source_db, "t")
    (source,) = add_sources(store, box, source_db.url, ["shop"])
    settings = {"monitor_interval": 3, "worker_heartbeat_seconds": 1}
    first = spawn(store_url, **settings)
    wait_until("the first sync", lambda: len(runs_of(store, source.id)) == 1, 20)
    blocker = psycopg.connect(store_url)
    try:
        # A tick claims the due sources (UPDATE sources): it waits on this lock, mid-tick.
        blocker.execute("LOCK TABLE sources IN EXCLUSIVE MODE")
        wait_until(
            "a tick blocked in the middle",
            lambda: query(
                store,
                "SELECT 1 FROM procrastinate_jobs WHERE queue_name = %s AND status = 'doing'",
                [SCHEDULE_QUEUE],
            ),
            10,
        )
        first.kill()
    finally:
        blocker.close()
    second = spawn(store_url, **settings)
    killed_at = time.monotonic()
    try:
        wait_until("a sync by the other worker", lambda: len(runs_of(store, source.id)) >= 2, 12)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- the other worker ---\n{second.output()}") from None
    assert time.monotonic() - killed_at < 12
    assert [(r[0], r[1], r[2]) for r in runs_of(store, source.id)][1] == (
        "schedule",
        "ok",
        second.name,
    )
    assert second.stop() == 0
    assert_one_line_each(second.output())


# --- 4. the store restarts under a running worker ------------------------------------------


class RestartablePostgres(ThrowawayPostgres):
    """A throwaway server that can be stopped and started again on the same port and data."""

    def down(self) -> None:
        proc = self._proc
        assert proc is not None
        proc.send_signal(signal.SIGINT)  # fast shutdown: every connection is closed
        proc.wait(30)
        self._proc = None

    def up(self) -> None:
        server = self.server
        socket_dir = server.socket_dir
        creds = postgres_credentials()
        log = server.datadir.parent / "postgres.log"
        with log.open("ab") as log_handle:
            proc = subprocess.Popen(
                [
                    str(find_bindir() / "postgres"),
                    *("-D", str(server.datadir), "-p", str(server.port), "-k", str(socket_dir)),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                    *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                cwd="/",
                user=creds.user,
                group=creds.group,
                extra_groups=creds.extra_groups,
            )
        self._proc = proc
        assert self._wait_ready(proc, server, log)


@pytest.fixture
def own_store() -> Iterator[tuple[RestartablePostgres, str]]:
    """A store on a server of the test's own, which the test may restart."""
    throwaway = RestartablePostgres()
    server = throwaway.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("store")))
        db.upgrade(server.url("store"))
        yield throwaway, server.url("store")
    finally:
        throwaway.stop()


def test_a_worker_reconnects_when_the_store_restarts_and_its_running_job_is_not_lost(
    own_store: tuple[RestartablePostgres, str],
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
) -> None:
    throwaway, store_url = own_store
    published(source_db, "t")
    store = db.connect(store_url)
    try:
        (source,) = add_sources(store, box, source_db.url, ["shop"])
        holder = psycopg.connect(store_url, autocommit=True)
        holder.execute(LOCK_SOURCE, [source.id])
        worker = spawn(store_url, monitor_interval=3, worker_heartbeat_seconds=1)
        running: list[tuple[int, int]] = []

        def started() -> bool:
            found = doing_job(store, source.id)
            running[:] = [found] if found else []
            return found is not None

        wait_until("the sync job blocked in the middle of its sync", started, 20)
        ((job_id, _),) = running
        store.close()
        throwaway.down()  # the holder's session, and its lock, go with it
        holder.close()
        time.sleep(2)
        throwaway.up()
        restarted = time.monotonic()
        worker.wait_for("reconnected to the store", 30)
        store = db.connect(store_url)
        wait_until(
            "the job running at the restart ended", lambda: not job_status(store, job_id), 15
        )
        got = runs_of(store, source.id)
        assert [(r[0], r[1], r[3]) for r in got][:1] == [("schedule", "ok", job_id)], got
        wait_until("a later sync", lambda: len(runs_of(store, source.id)) >= 2, 10)
        assert time.monotonic() - restarted < 25
        assert [(r[0], r[1]) for r in runs_of(store, source.id)][1] == ("schedule", "ok")
        assert versions(store) == {(source.id, "t"): [1]}
        assert worker.stop() == 0
        # What the worker said of it: its own lines, and the libraries' each on one line.
        output = worker.output()
        assert re.search(r"WARNING \[-\] Worker \S+ lost the store", output)
        assert "Traceback" not in output, output
    finally:
        store.close()


# --- 5. a source that accepts connections and never answers ---------------------------------


class SilentPeer:
    """A TCP server on 127.0.0.1 that accepts every connection and never says a word."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.held.append(conn)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


def test_a_source_that_never_answers_fails_within_the_connect_timeout_and_others_keep_syncing(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
    silent_peer: SilentPeer,
) -> None:
    published(source_db, "t")
    good = add_sources(store, box, source_db.url, ["a", "b", "c"])
    params = sources.parse_dsn(f"postgresql://u:p@127.0.0.1:{silent_peer.port}/db")
    silent = sources.add_source(
        store, box, sources.SourceInput("silent", params, "rosetta_publication")
    )
    store.commit()
    worker = spawn(
        store_url,
        monitor_interval=3,
        worker_concurrency=2,
        source_connect_timeout=2,
        sync_retries=1,
    )

    def failed_runs() -> list[tuple[Any, ...]]:
        return [r for r in runs_of(store, silent.id) if r[1] == "failed"]

    wait_until("the silent source's failed sync", lambda: len(failed_runs()) >= 2, 20)
    first, retried = failed_runs()[:2]
    for run in (first, retried):
        assert run[6] - run[5] < timedelta(seconds=3.5), run
        assert run[7].endswith("connection timeout expired"), run
    # While the silent source hung, and was retried, the others kept their interval.
    for source in good:
        during = [
            r for r in runs_of(store, source.id) if r[1] == "ok" and first[5] <= r[5] <= retried[6]
        ]
        assert during, runs_of(store, source.id)
    assert first[3] == retried[3] and (first[4], retried[4]) == (0, 1)
    wait_until(
        "the silent source's job ended failed", lambda: job_status(store, first[3]) == "failed"
    )
    failures = [line for line in worker.output().splitlines() if "[silent]" in line]
    assert len(failures) >= 2, worker.output()
    assert all("ERROR [silent] Sync of source silent failed" in line for line in failures)
    assert all(
        f"cannot connect to 127.0.0.1:{silent_peer.port}/db as u: connection timeout expired"
        in line
        for line in failures
    )
    assert worker.stop() == 0
    assert_one_line_each(worker.output())


# --- 6. a source removed while its job waited ------------------------------------------------


def test_a_job_whose_source_was_removed_while_it_waited_ends_cleanly(
    store: psycopg.Connection[Any],
    store_url: str,
    box: SecretBox,
    source_db: SourceDb,
    spawn: Spawn,
) -> None:
    published(source_db, "t")
    (source,) = add_sources(store, box, source_db.url, ["gone"])
    job_id = client.defer_sync(store, source.id, "refresh")
    store.commit()
    assert job_id is not None
    repository.delete_source(store, source.id)
    store.commit()
    worker = spawn(store_url)
    worker.wait_for(f"Sync job {job_id}: source {source.id} was removed: nothing to sync")
    wait_until("the job ended", lambda: job_status(store, job_id) is None, 5)
    time.sleep(1.5)  # a tick or two: nothing retried, nothing synced
    assert query(
        store, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s", [SYNC_QUEUE]
    ) == [(0,)]
    assert query(store, "SELECT count(*) FROM sync_runs") == [(0,)]
    assert worker.stop() == 0
    output = worker.output()
    assert_one_line_each(output)
    assert "ERROR" not in output and "WARNING" not in output, output
    assert output.count("was removed") == 1


# --- 7. malformed job rows --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_name", "kwargs"),
    [
        (SYNC_TASK, {"source_id": 1, "colour": "blue"}),
        (SYNC_TASK, {"source_id": "x"}),
        (SYNC_TASK, {}),
        ("rosetta.no_such_task", {"source_id": 1}),
    ],
    ids=["unknown-kwarg", "bad-source-id", "no-source-id", "unknown-task"],
)
def test_a_malformed_job_fails_once_in_one_line(
    store: psycopg.Connection[Any],
    store_url: str,
    spawn: Spawn,
    task_name: str,
    kwargs: dict[str, Any],
) -> None:
    job = jobs.Job(
        queue=SYNC_QUEUE, lock=None, queueing_lock=None, task_name=task_name, task_kwargs=kwargs
    )
    deferred = manager.JobManager(connector=SyncPsycopgConnector()).defer_job(job, connection=store)
    store.commit()
    assert deferred.id is not None
    worker = spawn(store_url, sync_retries=3)
    wait_until("the job ended", lambda: job_status(store, deferred.id or 0) == "failed", 10)
    time.sleep(3)  # a retry would come after 2 s
    assert query(
        store, "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = %s", [deferred.id]
    ) == [("failed", 1)]  # one attempt: it ran once
    assert worker.stop() == 0
    output = worker.output()
    assert_one_line_each(output)
    lines = [line for line in output.splitlines() if "Worker" not in line]
    assert len(lines) == 1, output
    assert f"{task_name}[{deferred.id}]" in lines[0]
