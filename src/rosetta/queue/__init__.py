"""Syncs as jobs on a queue in the store: any number of workers, on any number of machines,
share the sources.

procrastinate keeps the queue in the store Rosetta already has (its tables come with the
store's migrations). Each sync of a source is one job whose lock and queueing lock are the
source: never two syncs of a source at once, never two waiting. A scheduler, a periodic task
that every worker may run (procrastinate defers each tick once, whichever worker sees it),
defers one job per source per interval; a Refresh defers one and waits for its result. A worker
killed in the middle of a job stops sending heartbeats; the scheduler then hands its jobs back
to the queue, and another worker runs them (the sync's own rules never record a version twice).

- :mod:`rosetta.queue.options`: the settings of a worker and a scheduler;
- :mod:`rosetta.queue.app`: a process's procrastinate app, and the tasks it runs;
- :mod:`rosetta.queue.scheduler`: which sources are due, and deferring their jobs;
- :mod:`rosetta.queue.worker`: running a worker (the `rosetta worker` command, or a thread of
  `rosetta monitor` and `rosetta serve`), reconnecting when the store goes away;
- :mod:`rosetta.queue.client`: what a Refresh needs: whether a worker is alive, deferring a job,
  and waiting for its result;
- :mod:`rosetta.queue.state`: the workers and the jobs waiting, as the metrics, the health
  check, doctor and the sources page show them.
"""

from __future__ import annotations

from rosetta import sqlfile

QUERIES = sqlfile.Queries("rosetta.queue", "queries.sql")
"""The queue's reads and writes of Rosetta's tables, and its reads of procrastinate's."""

SYNC_QUEUE = "rosetta_sync"
"""The queue of the sync jobs."""
SCHEDULE_QUEUE = "rosetta_schedule"
"""The queue of the scheduler's ticks (run only by workers that run the scheduler)."""
SYNC_TASK = "rosetta.sync_source"
SCHEDULE_TASK = "rosetta.schedule"


def source_lock(source_id: int) -> str:
    """The lock and the queueing lock of every sync job of the source."""
    return f"rosetta-source-{source_id}"
