"""The schema monitor: every interval, sync every source, a few at a time."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from rosetta.capture.listener import Listener
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError
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
                store.execute(
                    QUERIES["heartbeat_start"],
                    {
                        "monitor_id": self.monitor_id,
                        "hostname": socket.gethostname(),
                        "pid": os.getpid(),
                        "interval": self.interval,
                    },
                )
                sources = repository.list_sources(store)
                workers = max(1, min(self.concurrency, len(sources)))
                with ThreadPoolExecutor(workers, thread_name_prefix="rosetta-sync") as pool:
                    result.summaries = list(pool.map(lambda s: self._sync_one(s, full), sources))
                result.duration = time.perf_counter() - started
                store.execute(
                    QUERIES["heartbeat_finish"],
                    {
                        "monitor_id": self.monitor_id,
                        "duration": result.duration,
                        "outcome": result.outcome,
                        "summary": Jsonb(result.to_json()),
                    },
                )
            finally:
                store.close()
        except RosettaError as exc:
            result.store_error = exc.message
            result.duration = time.perf_counter() - started
            self.last = result
            log.error("Schema monitoring cycle failed: %s", exc.message)
            raise
        self.last = result
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
        return result

    def run_forever(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set; a failing store is logged and retried next cycle. The
        capture listener runs beside the cycles, syncing a captured source as its DDL commits."""
        self.running_since = datetime.now(UTC)
        log.info(
            "Schema monitor started: every %gs, %d sources at a time",
            self.interval,
            self.concurrency,
        )
        listening = threading.Thread(
            target=self.listener.run, args=(stop,), name="rosetta-capture-listener", daemon=True
        )
        listening.start()
        while not stop.is_set():
            began = time.monotonic()
            try:
                self.run_cycle()
            except RosettaError:
                pass
            stop.wait(max(0.0, self.interval - (time.monotonic() - began)))
        listening.join(timeout=30)
        log.info("Schema monitor stopped")
