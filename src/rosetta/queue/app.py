"""A worker's procrastinate app: its connection to the queue, and the two tasks it runs.

- ``rosetta.sync_source`` syncs one source (:func:`rosetta.sync.sync_source`) on a store
  connection of the worker's own pool, and records who ran it and why (``sync_runs``). A source
  removed while its job waited ends the job cleanly; a sync that fails (the source or the store
  unreachable) is retried with backoff, ``ROSETTA_SYNC_RETRIES`` times; a job procrastinate
  cannot call (a malformed row) fails once, in one log line, and is not retried.
- ``rosetta.schedule``, a periodic task ticking every second, defers the due sources' jobs
  (:mod:`rosetta.queue.scheduler`), hands the jobs of dead workers back to the queue (the
  library's stalled-job query), and forgets old sync records and failed jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from datetime import datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate.job_context import JobContext
from psycopg_pool import ConnectionPool

from rosetta.capture.listener import log_captured_sync
from rosetta.catalog.connection import SourceLimits
from rosetta.catalog.connection_cache import SourceConnections
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, SourceNotFoundError, StoreUnavailableError
from rosetta.queue import (
    QUERIES,
    SCHEDULE_QUEUE,
    SCHEDULE_TASK,
    SYNC_QUEUE,
    SYNC_TASK,
    scheduler,
)
from rosetta.queue.options import QUEUE_POOL, QueueOptions
from rosetta.store import repository
from rosetta.summary import SyncRun, process_name
from rosetta.sync import sync_source
from rosetta.uow import map_store_errors

log = logging.getLogger("rosetta.queue")


class SyncFailed(RosettaError):
    """A sync job whose sync failed: the job is retried (the sync already said why)."""


class Runtime:
    """What the tasks of one worker process share: the store pool of its syncs, the key to the
    source passwords, the source limits, its name."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        limits: SourceLimits,
        options: QueueOptions,
    ) -> None:
        self.box = box
        self.limits = limits
        self.options = options
        self.name = process_name()
        self.named: set[int] = set()
        self.ticks = 0
        self.pool = ConnectionPool(
            store_url,
            min_size=0,
            max_size=options.concurrency + 1,
            kwargs={"connect_timeout": 10, "application_name": "rosetta-worker"},
            timeout=30,
            check=ConnectionPool.check_connection,
            open=False,
        )
        # Source connections reused by the next sync of the same database as the same user.
        self.connections = SourceConnections(max_idle=options.concurrency)

    def open(self) -> None:
        self.pool.open()

    def close(self) -> None:
        self.pool.close()
        self.connections.close()

    # --- rosetta.sync_source ----------------------------------------------------------------

    def sync(
        self,
        context: JobContext,
        source_id: int,
        reason: str,
        full: bool,
        woken_at: float | None,
        deferred_at: str | None,
    ) -> None:
        job = context.job
        run = SyncRun(
            self.name,
            reason,
            job.id,
            job.attempts,
            datetime.fromisoformat(deferred_at) if deferred_at else None,
        )
        with (
            map_store_errors(during=f"sync job {job.id}"),
            self.pool.connection() as store,
        ):
            self._name_worker(store, job.worker_id)
            try:
                source = repository.source_by_id(store, source_id)
            except SourceNotFoundError:
                store.rollback()
                log.info("Sync job %s: source %d was removed: nothing to sync", job.id, source_id)
                return
            store.rollback()
            summary = sync_source(
                store,
                source,
                self.box,
                limits=self.limits,
                full=full,
                woken=reason == "capture",
                run=run,
                connections=self.connections,
            )
            if woken_at is not None and summary.error is None:
                # From the notification (the listener's clock) to this sync's commit.
                store.execute(
                    repository.QUERIES["capture_latency"],
                    {"id": source.id, "seconds": max(0.0, time.time() - woken_at)},
                )
                store.commit()
        if reason == "capture":
            log_captured_sync(summary)
        if summary.error is not None and reason != "refresh":
            # Retried with backoff. A Refresh is not: its user waits for the answer, and gets
            # the error now.
            raise SyncFailed(f"sync of source {source.name!r} failed: {summary.error}")

    def _name_worker(self, store: psycopg.Connection[Any], worker_id: int | None) -> None:
        """Give procrastinate's worker id Rosetta's name for it, once per worker."""
        if worker_id is None or worker_id in self.named:
            return
        store.execute(
            QUERIES["name_worker"],
            {
                "worker_id": worker_id,
                "name": self.name,
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "concurrency": self.options.concurrency,
            },
        )
        store.commit()
        self.named.add(worker_id)

    # --- rosetta.schedule ----------------------------------------------------------------------

    def tick_in_thread(self, worker_id: int | None = None) -> None:
        """One tick's work on the store: defer the due sources' jobs; now and then, forget
        old sync records. (A worker that ticks is named before it runs any sync.)"""
        with map_store_errors(during="the scheduler's tick"):
            with self.pool.connection() as store:
                self._name_worker(store, worker_id)
                deferred = scheduler.schedule_due(
                    store, self.options.default_interval, self.options.full_every
                )
                if deferred:
                    log.debug("Scheduler deferred the syncs of %d sources", len(deferred))
                if self.ticks % 60 == 0:
                    scheduler.prune(store, self.options.retention_hours)
        self.ticks += 1

    async def tick(self, app: procrastinate.App, worker_id: int | None = None) -> None:
        await asyncio.to_thread(self.tick_in_thread, worker_id)
        # Once a heartbeat (counted in ticks, from the first tick on: with a heartbeat of one
        # tick or less, every tick).
        every = max(1, round(self.options.heartbeat / self.options.tick))
        if (self.ticks - 1) % every == 0:
            await self.retry_stalled(app)
        if self.ticks % 3600 == 1:
            await app.job_manager.delete_old_jobs(
                nb_hours=max(1, round(self.options.retention_hours)), include_failed=True
            )

    async def retry_stalled(self, app: procrastinate.App) -> None:
        """Hand the jobs of workers that stopped sending heartbeats back to the queue."""
        stalled = await app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=self.options.stalled_after
        )
        for job in stalled:
            assert job.id is not None
            what = "Sync job" if job.task_name == SYNC_TASK else "Job"
            try:
                if job.task_name != SYNC_TASK:
                    # A scheduler's tick: the next one (every second) does its work.
                    await app.job_manager.finish_job_by_id_async(
                        job.id, procrastinate.jobs.Status.ABORTED, delete_job=True
                    )
                    continue
                await app.job_manager.retry_job(job)
            except procrastinate.exceptions.UniqueViolation:
                # A job like it waits already (a Refresh's sync of the source, deferred while
                # this one ran): the queueing lock forbids a second, and that one does the same
                # work. The stalled job ends, so that its lock no longer holds the waiting one
                # back.
                await app.job_manager.finish_job_by_id_async(
                    job.id, procrastinate.jobs.Status.ABORTED, delete_job=False
                )
                log.warning(
                    "%s %s was running on a worker that stopped (no heartbeat for %gs): "
                    "ended, as a job like it waits",
                    what,
                    job.id,
                    self.options.stalled_after,
                )
                continue
            except procrastinate.exceptions.ConnectorException as exc:
                # Another scheduler's tick handed it back first (it is no longer running).
                log.debug("Stalled job %s already handled: %s", job.id, exc)
                continue
            log.warning(
                "%s %s was running on a worker that stopped (no heartbeat for %gs): queued again",
                what,
                job.id,
                self.options.stalled_after,
            )


def build_app(store_url: str, runtime: Runtime) -> procrastinate.App:
    """The procrastinate app of a worker: the queue's pool on the store, and the tasks."""
    options = runtime.options
    connector = procrastinate.PsycopgConnector(
        conninfo=store_url,
        min_size=1,
        max_size=QUEUE_POOL,
        timeout=30,
        kwargs={"connect_timeout": 10, "application_name": "rosetta-queue"},
    )
    app = procrastinate.App(connector=connector)
    # procrastinate reads max_attempts=0 as "no limit": no retries is no strategy.
    retry: procrastinate.RetryStrategy | bool = (
        procrastinate.RetryStrategy(
            max_attempts=options.retries,
            exponential_wait=2,
            retry_exceptions={SyncFailed, StoreUnavailableError},
        )
        if options.retries > 0
        else False
    )

    @app.task(name=SYNC_TASK, queue=SYNC_QUEUE, pass_context=True, retry=retry)
    def sync_source_task(
        context: JobContext,
        source_id: int,
        reason: str = "schedule",
        full: bool = False,
        woken_at: float | None = None,
        deferred_at: str | None = None,
    ) -> None:
        runtime.sync(context, source_id, reason, full, woken_at, deferred_at)

    if options.schedule:
        tick = options.tick

        @app.periodic(cron=f"* * * * * */{tick}" if tick > 1 else "* * * * * *")
        @app.task(
            name=SCHEDULE_TASK,
            queue=SCHEDULE_QUEUE,
            pass_context=True,
            # No lock: a tick left running by a killed worker would hold back every later tick,
            # and so the retry of the jobs of dead workers, itself included. Ticks may overlap
            # (a source's claim is a row lock); the queueing lock keeps one waiting at most.
            queueing_lock=SCHEDULE_TASK,
        )
        async def schedule_task(context: JobContext, timestamp: int) -> None:
            await runtime.tick(context.app, context.job.worker_id)

    return app
