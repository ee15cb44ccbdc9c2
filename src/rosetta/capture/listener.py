"""Listening for captured DDL: one ``LISTEN`` connection per captured source, all watched by one
thread, and a sync of a source as soon as its notification arrives.

PostgreSQL delivers a notification only when the DDL's transaction commits. A burst of them
becomes one sync per source at a time: a notification that arrives while its source is being
synced asks for one more sync after it, never for one each. Each sync reads the events of every
transaction committed since the previous read (:mod:`rosetta.capture.events`), so the
notification itself carries nothing the sync needs: a notification lost with a dropped
connection loses nothing. After a dropped connection (a restart of the source,
``pg_terminate_backend``) the listener reconnects with backoff and syncs the source at once,
which catches up on what happened meanwhile. The periodic monitor stays the safety net.

In `rosetta monitor` and `rosetta serve` (``defer``), the listener does not sync: it defers a
sync job of the source on the queue (:mod:`rosetta.queue`), which a worker runs at once; the
job's queueing lock coalesces a burst into one waiting job per source.
"""

from __future__ import annotations

import logging
import selectors
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from rosetta.capture import CHANNEL, LISTENER_APPLICATION_NAME
from rosetta.catalog.connection import SourceLimits, connect, describe
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError
from rosetta.store import db, repository
from rosetta.store.repository import QUERIES, Source
from rosetta.summary import SyncSummary
from rosetta.sync import connection_params, sync_source

log = logging.getLogger("rosetta.capture")

MAX_BACKOFF = 60.0
"""The longest wait between two attempts to reconnect a source's listener (seconds)."""


@dataclass
class _Listening:
    """One captured source: its LISTEN connection (None while it reconnects) and its syncs."""

    source: Source
    conn: psycopg.Connection[Any] | None = None
    fileno: int = -1
    failures: int = 0
    retry_at: float = 0.0
    running: bool = False
    again: bool = False
    error: str | None = None
    woken_at: list[float] = field(default_factory=list)


def log_captured_sync(summary: SyncSummary) -> None:
    """The line a sync woken by captured DDL logs when it wrote something (here, or on the
    worker that ran its job)."""
    if summary.error is None and summary.wrote_anything:
        log.info(
            "Captured DDL on source %s synced in %.0f ms (%d events)",
            summary.source,
            summary.duration * 1000,
            summary.captured_events,
            extra={"source": summary.source},
        )


class Listener:
    """Keeps a LISTEN connection to every source with capture installed and syncs a source when
    its DDL commits. ``refresh``: how often the list of captured sources is read again."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        *,
        limits: SourceLimits | None = None,
        concurrency: int = 4,
        refresh: float = 15.0,
        defer: bool = False,
    ) -> None:
        self.store_url = store_url
        self.box = box
        self.limits = limits or SourceLimits()
        self.concurrency = concurrency
        self.refresh = refresh
        self.defer = defer
        """Defer a sync job per notification (a worker runs it) instead of syncing here."""
        self.sources: dict[int, _Listening] = {}
        self.lock = threading.Lock()
        self.local = threading.local()
        self.stores: list[psycopg.Connection[Any]] = []
        self.syncs = 0

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set."""
        selector = selectors.DefaultSelector()
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="rosetta-capture")
        next_refresh = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_refresh:
                    self._refresh(selector)
                    next_refresh = now + self.refresh
                self._reconnect(selector, pool)
                if not selector.get_map():
                    stop.wait(min(1.0, max(0.0, next_refresh - time.monotonic())))
                    continue
                for key, _ in selector.select(timeout=0.5):
                    self._receive(selector, pool, key.data)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for item in list(self.sources.values()):
                self._close(selector, item)
            selector.close()
            with self.lock:
                for store in self.stores:
                    store.close()
                self.stores.clear()

    def _refresh(self, selector: selectors.BaseSelector) -> None:
        """Follow the store: listen to newly captured sources, stop listening to the others,
        and say which sources are listened to (``sources.capture_listener_at``)."""
        try:
            store = self._store()
            captured = {s.id: s for s in repository.list_sources(store) if s.capture_enabled}
            connected = [i for i, item in self.sources.items() if item.conn is not None]
            if connected:
                store.execute(QUERIES["capture_listening"], {"ids": connected})
            store.commit()
        except (RosettaError, psycopg.Error) as exc:
            self._drop_store()
            log.warning("Capture listener: cannot read the sources from the store: %s", exc)
            return
        for source_id in list(self.sources):
            if source_id not in captured:
                self._close(selector, self.sources.pop(source_id))
        for source_id, source in captured.items():
            item = self.sources.get(source_id)
            if item is None:
                self.sources[source_id] = _Listening(source)
            else:
                item.source = source

    def _reconnect(self, selector: selectors.BaseSelector, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        for item in self.sources.values():
            if item.conn is not None or now < item.retry_at:
                continue
            try:
                conn = self._listen(item.source)
            except (RosettaError, psycopg.Error) as exc:
                item.failures += 1
                item.retry_at = now + min(MAX_BACKOFF, 0.5 * 2**item.failures)
                message = exc.message if isinstance(exc, RosettaError) else describe(exc)
                if message != item.error:
                    log.warning(
                        "Capture listener for source %s cannot connect: %s (retrying)",
                        item.source.name,
                        message,
                        extra={"source": item.source.name},
                    )
                item.error = message
                continue
            if item.failures or item.error:
                log.info(
                    "Capture listener for source %s reconnected",
                    item.source.name,
                    extra={"source": item.source.name},
                )
            item.conn, item.failures, item.error = conn, 0, None
            item.fileno = conn.fileno()
            selector.register(item.fileno, selectors.EVENT_READ, item)
            # Catch up with whatever committed while nobody listened.
            self._wake(pool, item)

    def _listen(self, source: Source) -> psycopg.Connection[Any]:
        conn = connect(
            connection_params(source, self.box),
            self.limits,
            application_name=LISTENER_APPLICATION_NAME,
        )
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _receive(
        self, selector: selectors.BaseSelector, pool: ThreadPoolExecutor, item: _Listening
    ) -> None:
        assert item.conn is not None
        try:
            got = sum(1 for _ in item.conn.notifies(timeout=0.0))
        except psycopg.Error as exc:
            log.warning(
                "Capture listener for source %s lost its connection: %s (reconnecting)",
                item.source.name,
                describe(exc),
                extra={"source": item.source.name},
            )
            self._close(selector, item)
            item.retry_at = time.monotonic() + 0.5
            return
        if got:
            self._wake(pool, item)

    def _close(self, selector: selectors.BaseSelector, item: _Listening) -> None:
        if item.conn is None:
            return
        try:
            selector.unregister(item.fileno)
        except (KeyError, ValueError):
            pass
        item.conn.close()
        item.conn, item.fileno = None, -1

    # --- the syncs ----------------------------------------------------------------------------

    def _wake(self, pool: ThreadPoolExecutor, item: _Listening) -> None:
        """Sync ``item``'s source now, or once more after the sync that is running."""
        with self.lock:
            item.woken_at.append(time.monotonic())
            if item.running:
                item.again = True
                return
            item.running = True
        pool.submit(self._sync, item)

    def _sync(self, item: _Listening) -> None:
        while True:
            with self.lock:
                woken_at, item.woken_at = item.woken_at, []
            try:
                store = self._store()
                if self.defer:
                    if woken_at:
                        self._defer(store, item.source.id, min(woken_at))
                else:
                    self._sync_here(store, item, woken_at)
            except (RosettaError, psycopg.Error) as exc:
                self._drop_store()
                log.error(
                    "Capture sync of source %s failed: %s (polling catches it up)",
                    item.source.name,
                    exc.message if isinstance(exc, RosettaError) else describe(exc),
                    extra={"source": item.source.name},
                )
            with self.lock:
                if not item.again:
                    item.running = False
                    return
                item.again = False

    def _sync_here(
        self, store: psycopg.Connection[Any], item: _Listening, woken_at: list[float]
    ) -> None:
        """Sync the source in this thread (no worker: a listener on its own, as in the tests)."""
        source = repository.source_by_id(store, item.source.id)
        store.rollback()
        summary = sync_source(store, source, self.box, limits=self.limits, woken=True)
        self.syncs += 1
        if summary.error is None and woken_at:
            # From the earliest notification this sync answers to its commit.
            seconds = time.monotonic() - min(woken_at)
            store.execute(QUERIES["capture_latency"], {"id": source.id, "seconds": seconds})
            store.commit()
        log_captured_sync(summary)

    def _defer(self, store: psycopg.Connection[Any], source_id: int, woken: float) -> None:
        """Defer a sync job of the source (none if one already waits: it will read these events
        too), stamped with the wall-clock time of the earliest notification it answers."""
        from rosetta.queue import client

        woken_at = time.time() - (time.monotonic() - woken)
        client.defer_sync(store, source_id, "capture", woken_at=woken_at)
        store.commit()
        self.syncs += 1

    def _store(self) -> psycopg.Connection[Any]:
        """This thread's store connection, kept between syncs."""
        store: psycopg.Connection[Any] | None = getattr(self.local, "store", None)
        if store is None or store.closed or store.broken:
            store = db.connect(self.store_url, check=False)
            self.local.store = store
            with self.lock:
                self.stores.append(store)
        return store

    def _drop_store(self) -> None:
        store = getattr(self.local, "store", None)
        if store is not None:
            store.close()
            self.local.store = None
            with self.lock:
                self.stores.remove(store)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Whether every sync started has ended within ``timeout`` (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not any(item.running for item in self.sources.values()):
                    return True
            time.sleep(0.01)
        return False
