"""Deferring sync jobs and reading what became of them, on a store connection the caller holds.

A job is deferred in the caller's own transaction (procrastinate's ``defer_job`` on an explicit
connection), so a scheduler's claim of a source and the job it defers commit together, and a
Refresh needs no connection of its own. This module never commits: the caller's unit of work
does.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from rosetta.queue import QUERIES, SYNC_QUEUE, SYNC_TASK, source_lock
from rosetta.store.repository import Conn
from rosetta.summary import SyncSummary

if TYPE_CHECKING:
    from procrastinate import jobs, manager


@cache
def _manager() -> manager.JobManager:
    """procrastinate's job manager, used only with the caller's connection: it never opens a
    pool of its own. (Imported when first needed: a command that defers nothing never loads
    procrastinate.)"""
    from procrastinate import manager
    from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

    return manager.JobManager(connector=SyncPsycopgConnector())


def sync_job(source_id: int, reason: str, **kwargs: Any) -> jobs.Job:
    """The job of one sync of ``source_id``."""
    from procrastinate import jobs

    lock = source_lock(source_id)
    return jobs.Job(
        queue=SYNC_QUEUE,
        lock=lock,
        queueing_lock=lock,
        task_name=SYNC_TASK,
        task_kwargs={
            "source_id": source_id,
            "reason": reason,
            "deferred_at": datetime.now(UTC).isoformat(),
            **kwargs,
        },
    )


def defer_syncs(
    store: Conn, source_ids: Sequence[int], reason: str, full: Collection[int] = ()
) -> int:
    """Defer one sync job per source (a full compare for those in ``full``), in the caller's
    transaction; a source whose job already waits keeps that one. Returns how many jobs were
    deferred."""
    from procrastinate import exceptions

    if not source_ids:
        return 0
    try:
        with store.transaction():
            _manager().batch_defer_jobs(
                [_job(i, reason, i in full) for i in source_ids], connection=store
            )
        return len(source_ids)
    except exceptions.AlreadyEnqueued:
        pass
    deferred = 0
    for source_id in source_ids:
        extra = {"full": True} if source_id in full else {}
        if defer_sync(store, source_id, reason, **extra) is not None:
            deferred += 1
    return deferred


def _job(source_id: int, reason: str, full: bool) -> jobs.Job:
    return sync_job(source_id, reason, full=True) if full else sync_job(source_id, reason)


def defer_sync(store: Conn, source_id: int, reason: str, **kwargs: Any) -> int | None:
    """Defer one sync job of ``source_id``; None when one already waits."""
    from procrastinate import exceptions

    try:
        with store.transaction():
            job = _manager().defer_job(sync_job(source_id, reason, **kwargs), connection=store)
    except exceptions.AlreadyEnqueued:
        return None
    assert job.id is not None
    return job.id


def waiting_job(store: Conn, source_id: int) -> int | None:
    """The sync job of ``source_id`` that waits in the queue, if any."""
    row = store.execute(QUERIES["waiting_job"], {"lock": source_lock(source_id)}).fetchone()
    return None if row is None else int(row[0])


def workers_alive(store: Conn, stalled_after: float) -> int:
    """How many workers sent a heartbeat within ``stalled_after`` seconds."""
    row = store.execute(QUERIES["workers_alive"], {"stalled_after": stalled_after}).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class JobOutcome:
    """What a waited-for job became: its sync's summary (which names the worker that ran it),
    or why there is none."""

    summary: SyncSummary | None
    problem: str | None = None


def wait_for(store: Conn, job_id: int, timeout: float, poll: float = 0.05) -> JobOutcome:
    """Wait until the job has ended (or ``timeout`` seconds), then read the sync it ran. Reads
    in autocommit-like short transactions, so that each look sees the worker's commits."""
    deadline = time.monotonic() + timeout
    while True:
        status_row = store.execute(QUERIES["job_status"], {"id": job_id}).fetchone()
        status = None if status_row is None else str(status_row[0])
        if status not in ("todo", "doing"):
            run = store.execute(QUERIES["job_run"], {"id": job_id}).fetchone()
            store.rollback()
            if run is not None:
                return JobOutcome(SyncSummary.from_json(run[0]))
            return JobOutcome(None, f"the sync job ended ({status or 'removed'}) without a result")
        store.rollback()
        if time.monotonic() >= deadline:
            return JobOutcome(
                None,
                f"no worker finished the sync within {timeout:g} s: it is still "
                f"{'waiting' if status == 'todo' else 'running'}",
            )
        time.sleep(poll)
        poll = min(poll * 1.5, 0.5)
