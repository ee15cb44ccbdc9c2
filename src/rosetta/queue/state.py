"""The job queue's state as `/metrics`, `/api/v1/health`, `rosetta doctor` and the sources page
show it: its workers (alive or dead), the sync jobs waiting, and the jobs by status; one query
each (``queries.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row, dict_row

from rosetta.queue import QUERIES, SYNC_QUEUE
from rosetta.queue.options import QueueOptions
from rosetta.store.repository import Conn

STALLED_AFTER = QueueOptions().stalled_after
"""When a worker is dead, for a caller that does not pass ``ROSETTA_WORKER_HEARTBEAT_SECONDS``
(``QueueOptions.from_settings(settings).stalled_after``): three default heartbeats."""


@dataclass(frozen=True)
class QueueWorker:
    """A worker procrastinate knows, with Rosetta's name for it (None until its first job)."""

    worker_id: int
    name: str | None
    hostname: str | None
    pid: int | None
    concurrency: int | None
    last_heartbeat: datetime
    last_heartbeat_seconds: float
    heartbeat_age: float
    alive: bool
    running: int

    @property
    def label(self) -> str:
        """Its name, or procrastinate's id until it has one."""
        return self.name or f"worker {self.worker_id}"


@dataclass(frozen=True)
class Waiting:
    """The sync jobs due to run that no worker has taken, and the oldest one's wait."""

    jobs: int
    oldest_seconds: float


def queue_workers(conn: Conn, stalled_after: float = STALLED_AFTER) -> list[QueueWorker]:
    """Every worker procrastinate knows, alive or not (``stalled_after``: seconds without a
    heartbeat after which a worker is dead)."""
    with conn.cursor(row_factory=class_row(QueueWorker)) as cur:
        cur.execute(QUERIES["queue_workers"], {"stalled_after": stalled_after})
        return cur.fetchall()


def waiting_jobs(conn: Conn) -> Waiting:
    with conn.cursor(row_factory=class_row(Waiting)) as cur:
        cur.execute(QUERIES["queue_waiting"], {"sync_queue": SYNC_QUEUE})
        row = cur.fetchone()
    return row if row is not None else Waiting(0, 0.0)


def queue_depth(conn: Conn) -> dict[str, dict[str, int]]:
    """The jobs of each queue by status: ``{queue: {status: jobs}}``."""
    depth: dict[str, dict[str, int]] = {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["queue_jobs"], {"sync_queue": SYNC_QUEUE})
        for row in cur:
            depth.setdefault(row["queue_name"], {})[row["status"]] = int(row["jobs"])
    return depth
