"""The scheduler: every tick, defer a sync job for each source whose interval has come.

A source is due when its ``next_sync_at`` has passed (or was never set). One statement claims
the due sources that have no job waiting or running and moves their ``next_sync_at`` one
interval on; their jobs are deferred in the same transaction. Any number of schedulers may run
(procrastinate defers each periodic tick once anyway): the claim's row locks make sure a source
is deferred once per interval.
"""

from __future__ import annotations

import logging
import time

from rosetta.queue import QUERIES, client, source_lock
from rosetta.store.repository import Conn

log = logging.getLogger("rosetta.queue")

BATCH = 1000
"""Sources claimed and deferred per transaction."""


def schedule_due(
    store: Conn, default_interval: float, full_every: int = 0, reason: str = "schedule"
) -> list[int]:
    """Defer the jobs of every due source; the ids of the sources deferred. Commits each batch.

    With ``full_every``, one scheduled sync in ``full_every`` of each source compares every
    table's columns (the sources take their turns in different intervals, by id)."""
    scheduled: list[int] = []
    while True:
        with store.transaction():
            rows = store.execute(
                QUERIES["claim_due"],
                {
                    "prefix": source_lock(0)[:-1],
                    "default_interval": default_interval,
                    "limit": BATCH,
                },
            ).fetchall()
            ids = [int(row[0]) for row in rows]
            turn = int(time.time() // default_interval)
            full = {i for i in ids if full_every > 0 and (turn + i) % full_every == 0}
            client.defer_syncs(store, ids, reason, full=full)
        scheduled.extend(ids)
        if len(ids) < BATCH:
            return scheduled


PRUNE_BATCHES = 20
"""Batches of 10,000 rows one prune deletes at most (each its own transaction)."""


def prune(store: Conn, retention_hours: float) -> int:
    """Forget sync records older than the retention, 10,000 rows a transaction, until none is
    left or ``PRUNE_BATCHES`` went (a minute's prunes keep up with 200,000 syncs a minute);
    how many went."""
    gone = 0
    for _ in range(PRUNE_BATCHES):
        with store.transaction():
            cur = store.execute(QUERIES["prune_runs"], {"seconds": retention_hours * 3600})
        gone += cur.rowcount
        if cur.rowcount < 10000:
            break
    return gone
