"""The schema monitor: `rosetta monitor` and the monitor inside `rosetta serve`.

One cycle (``run_cycle``, `rosetta monitor --once`) syncs every source in this process, a few at
a time. Running for good (``run_forever``), the monitor is the one-process mode of the job queue
(:mod:`rosetta.queue`): a worker in a thread of its own runs the scheduler and the sync jobs
(with any other `rosetta worker` sharing the store), the capture listener defers a job per
notification, and every interval the monitor reports the syncs recorded in it (a "cycle": the
log line, the heartbeat, ``last``). Its first cycle waits for the sources that were due when it
started, so a fresh monitor reports them at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rosetta.capture.listener import Listener
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError
from rosetta.queue.options import QueueOptions
from rosetta.queue.worker import Worker
from rosetta.store import db, repository
from rosetta.store.repository import QUERIES, Source
from rosetta.summary import SyncSummary
from rosetta.sync import sync_source

log = logging.getLogger("rosetta.monitor")


@dataclass
class CycleResult:
    started_at: datetime
    duration: float = 0.0
    summaries: list[SyncSummary] = field(default_factory=list)
    store_error: str | None = None

    def count(self, attr: str) -> int:
        return sum(len(getattr(s, attr)) for s in self.summaries)

    @property
    def sources_failed(self) -> int:
        return sum(1 for s in self.summaries if s.status == "failed")

    @property
    def outcome(self) -> str:
        if self.store_error:
            return "store_failed"
        if self.sources_failed or any(s.failed for s in self.summaries):
            return "partial"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "duration": round(self.duration, 4),
            "outcome": self.outcome,
            "sources": len(self.summaries),
            "sources_failed": self.sources_failed,
            **{
                k: self.count(k)
                for k in ("added", "healed", "changed", "removed", "skipped", "failed")
            },
        }


class Monitor:
    """Runs cycles against one store; several monitors may share a store."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        *,
        interval: float = 60.0,
        concurrency: int = 4,
        limits: SourceLimits | None = None,
        full_every: int = 60,
        queue: QueueOptions | None = None,
    ) -> None:
        self.store_url = store_url
        self.box = box
        self.interval = interval
        self.concurrency = concurrency
        self.limits = limits or SourceLimits()
        self.full_every = full_every
        self.cycles = 0
        self.monitor_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.last: CycleResult | None = None
        self.running_since: datetime | None = None
        self.cycle_started_at: datetime | None = None
        self.listener = Listener(store_url, box, limits=self.limits, concurrency=concurrency)
        self.queue = replace(
            queue or QueueOptions(),
            concurrency=concurrency,
            default_interval=interval,
            full_every=full_every,
        )

    def _sync_one(self, source: Source, full: bool = False) -> SyncSummary:
        store = db.connect(self.store_url, check=False)
        try:
            return sync_source(store, source, self.box, limits=self.limits, full=full)
        except StoreUnavailableError:
            raise
        except RosettaError as exc:
            summary = SyncSummary(source.name, error=exc.message)
            log.error(
                "Sync of source %s failed: %s",
                source.name,
                exc.message,
                extra={"source": source.name},
            )
            return summary
        finally:
            store.close()

    def run_cycle(self) -> CycleResult:
        """One cycle over every source. Raises StoreUnavailableError when the store fails."""
        started = time.perf_counter()
        result = CycleResult(datetime.now(UTC))
        self.cycle_started_at = result.started_at
        # Every full_every-th cycle compares every table's columns, not only changed fingerprints.
        full = self.full_every > 0 and self.cycles % self.full_every == self.full_every - 1
        self.cycles += 1
        log.info("Starting schema monitoring cycle%s", " (full compare)" if full else "")
        try:
            store = db.connect(self.store_url, autocommit=True)
            try:
                self._beat_started(store)
                sources = repository.list_sources(store)
                workers = max(1, min(self.concurrency, len(sources)))
                with ThreadPoolExecutor(workers, thread_name_prefix="rosetta-sync") as pool:
                    result.summaries = list(pool.map(lambda s: self._sync_one(s, full), sources))
                result.duration = time.perf_counter() - started
                self._beat_finished(store, result)
            finally:
                store.close()
        except RosettaError as exc:
            result.store_error = exc.message
            result.duration = time.perf_counter() - started
            self.last = result
            log.error("Schema monitoring cycle failed: %s", exc.message)
            raise
        self.last = result
        self._log_cycle(result)
        return result

    def _beat_started(self, store: psycopg.Connection[Any]) -> datetime:
        """Say in the store that a cycle of this monitor starts; when (the store's clock)."""
        row = store.execute(
            QUERIES["heartbeat_start"] + " RETURNING last_cycle_started_at",
            {
                "monitor_id": self.monitor_id,
                "hostname": socket.gethostname(),
                "pid": os.getpid(),
                "interval": self.interval,
            },
        ).fetchone()
        assert row is not None
        started: datetime = row[0]
        return started

    def _beat_finished(self, store: psycopg.Connection[Any], result: CycleResult) -> None:
        store.execute(
            QUERIES["heartbeat_finish"],
            {
                "monitor_id": self.monitor_id,
                "duration": result.duration,
                "outcome": result.outcome,
                "summary": Jsonb(result.to_json()),
            },
        )

    def _log_cycle(self, result: CycleResult) -> None:
        log.info(
            "Schema monitoring cycle completed in %.2fs: %d sources (%d failed), tables: "
            "%d added, %d healed, %d changed, %d removed, %d skipped, %d failed",
            result.duration,
            len(result.summaries),
            result.sources_failed,
            result.count("added"),
            result.count("healed"),
            result.count("changed"),
            result.count("removed"),
            result.count("skipped"),
            result.count("failed"),
        )

    def run_forever(self, stop: threading.Event) -> None:
        """Run a worker (with the scheduler) and the capture listener until ``stop`` is set,
        reporting a cycle every interval; a failing store is logged and retried."""
        self.running_since = datetime.now(UTC)
        log.info(
            "Schema monitor started: every %gs, %d sources at a time",
            self.interval,
            self.concurrency,
        )
        began = time.monotonic()
        due: list[int] | None = None
        try:
            due = self._start_cycle()
        except RosettaError as exc:
            log.error("Schema monitoring cycle failed: %s", exc.message)
        worker = Worker(self.store_url, self.box, self.limits, self.queue)
        worker.start()
        self.listener.defer = True
        listening = threading.Thread(
            target=self.listener.run, args=(stop,), name="rosetta-capture-listener", daemon=True
        )
        listening.start()
        try:
            while not stop.is_set():
                deadline = began + self.interval
                if due is not None:
                    self._wait_for(due, deadline, stop)
                else:
                    stop.wait(max(0.0, deadline - time.monotonic()))
                if stop.is_set():
                    break
                try:
                    self._finish_cycle(time.monotonic() - began)
                except RosettaError as exc:
                    log.error("Schema monitoring cycle failed: %s", exc.message)
                stop.wait(max(0.0, began + self.interval - time.monotonic()))
                began = time.monotonic()
                due = None
                try:
                    self._start_cycle()
                except RosettaError as exc:
                    log.error("Schema monitoring cycle failed: %s", exc.message)
        finally:
            worker.stop()
            listening.join(timeout=30)
            log.info("Schema monitor stopped")

    def _start_cycle(self) -> list[int]:
        """Say a cycle starts (the heartbeat); the sources due now."""
        self.cycles += 1
        store = db.connect(self.store_url, autocommit=True)
        try:
            self.cycle_started_at = self._beat_started(store)
            return [int(r[0]) for r in store.execute(QUERIES["sources_due"])]
        finally:
            store.close()

    def _wait_for(self, due: list[int], deadline: float, stop: threading.Event) -> None:
        """Wait until every source of ``due`` has a sync recorded in this cycle (or the
        cycle's time is up)."""
        pending = set(due)
        while pending and not stop.is_set() and time.monotonic() < deadline:
            try:
                store = db.connect(self.store_url, autocommit=True)
                try:
                    done = store.execute(
                        QUERIES["synced_since"],
                        {"ids": list(pending), "since": self.cycle_started_at},
                    )
                    pending -= {int(r[0]) for r in done}
                finally:
                    store.close()
            except RosettaError:
                pass
            if pending:
                stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))

    def _finish_cycle(self, duration: float) -> CycleResult:
        """Report the syncs recorded since the cycle started, by any worker."""
        started = self.cycle_started_at or datetime.now(UTC)
        result = CycleResult(started, duration)
        store = db.connect(self.store_url, autocommit=True)
        try:
            rows = store.execute(QUERIES["runs_since"], {"since": started}).fetchall()
            result.summaries = [SyncSummary.from_json(r[0]) for r in rows]
            self._beat_finished(store, result)
        finally:
            store.close()
        self.last = result
        self._log_cycle(result)
        return result
