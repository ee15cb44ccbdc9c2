"""Is the store up? A thread with a connection of its own asks it four times a second.

``GET /api/v1/health`` answers from the latest answer, so it never waits behind other requests
for a pooled connection, and the admission gate refuses requests at once while the store is
down, instead of letting each wait for the pool. An answer older than ``stale_after`` seconds
(a check that hangs) counts as "unreachable". Each change of state is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from rosetta.errors import first_line
from rosetta.store import db

log = logging.getLogger("rosetta.api")

T = TypeVar("T")

CHECK_INTERVAL = 0.25
STALE_AFTER = 1.0
CONNECT_TIMEOUT = 2  # libpq's least
STOP_WAIT = 5.0

OK, UNREACHABLE, NOT_MIGRATED = "ok", "unreachable", "not_migrated"


@dataclass(frozen=True)
class StoreState:
    """One answer: ``store`` is ok, unreachable or not_migrated."""

    store: str
    detail: str | None
    checked_at: float  # time.monotonic()

    @property
    def ok(self) -> bool:
        return self.store == OK


class StoreWatch:
    """One thread and one autocommit connection that check the store every ``interval``."""

    def __init__(
        self,
        store_url: str,
        *,
        interval: float = CHECK_INTERVAL,
        stale_after: float = STALE_AFTER,
    ) -> None:
        self._url = store_url
        self._interval = interval
        self._stale_after = stale_after
        self._wanted = set(db.migration_ids())
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_lock = threading.Lock()  # one user of the connection at a time
        self._state_lock = threading.Lock()
        self._state = StoreState(UNREACHABLE, "the store has not been checked yet", 0.0)
        self._logged = OK  # the state last logged: the app starts assuming a usable store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the answer ------------------------------------------------------------------------

    @property
    def state(self) -> StoreState:
        """The latest answer; "unreachable" when it is older than ``stale_after`` seconds."""
        current = self._state
        if current.ok and time.monotonic() - current.checked_at > self._stale_after:
            stale = StoreState(
                UNREACHABLE,
                f"the store did not answer within {self._stale_after:g} s",
                current.checked_at,
            )
            self._log_change(stale)
            return stale
        return current

    @property
    def reachable(self) -> bool:
        """False while the store cannot be reached (a store that is not migrated is reachable:
        its requests get the not-migrated error)."""
        return self.state.store != UNREACHABLE

    # --- checking --------------------------------------------------------------------------

    def check(self) -> StoreState:
        """Ask the store now (in the caller's thread) and record the answer."""
        detail: str | None = None
        try:
            migrated = self.run(self._migrated, timeout=self._stale_after)
        except psycopg.Error as exc:
            store, detail = UNREACHABLE, first_line(exc)
        else:
            if migrated is None:  # another user held the connection: the answer goes stale
                return self.state
            store = OK if migrated else NOT_MIGRATED
            if not migrated:
                detail = "the store is not migrated: run `rosetta db upgrade`"
        state = StoreState(store, detail, time.monotonic())
        self._state = state
        self._log_change(state)
        return state

    def run(self, work: Callable[[psycopg.Connection[Any]], T], timeout: float) -> T | None:
        """``work(conn)`` on the watch's own connection, connecting first if needed; None when
        the connection stays busy for ``timeout`` seconds. A failed connection is dropped (and
        the error raised), so the next call connects again."""
        if not self._conn_lock.acquire(timeout=timeout):
            return None
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    application_name="rosetta-health",
                )
            try:
                return work(self._conn)
            except psycopg.OperationalError:
                self._drop()
                raise
        finally:
            self._conn_lock.release()

    def _migrated(self, conn: psycopg.Connection[Any]) -> bool:
        applied = db.applied_migrations(conn)
        return applied is not None and self._wanted <= applied

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _log_change(self, state: StoreState) -> None:
        with self._state_lock:
            if state.store == self._logged:
                return
            self._logged = state.store
        if state.ok:
            log.info("Rosetta's store is reachable again")
        elif state.store == NOT_MIGRATED:
            log.error("Rosetta's store is not migrated: run `rosetta db upgrade`")
        else:
            log.error("Rosetta's store is unreachable: %s", state.detail)

    # --- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rosetta-store-watch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # never let the watch die: it would turn every answer stale
                log.exception("The store check failed unexpectedly")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT)
            self._thread = None
        if self._conn_lock.acquire(timeout=STOP_WAIT):
            try:
                self._drop()
            finally:
                self._conn_lock.release()
