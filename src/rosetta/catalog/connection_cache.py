"""A worker's idle source connections, reused by its next syncs of sources that connect to the
same place, as the same user, with the same password and options.

A new connection to a source costs more than a warm sync of a small publication: the TCP and
TLS handshakes, password authentication (SCRAM), a new backend, and the catalog caches that
backend has yet to fill. Sources often share a database (one publication each), so a worker
hands the connection one sync has finished with to the next sync of the same database.

- A connection is reused only for exactly the parameters it was opened with: host, port,
  database, user, password and every option, and the same limits (a digest of the password,
  keyed per cache, stands in for it). One source's credentials never serve another's.
- A connection given back is reset: its transaction rolled back (so it holds no snapshot while
  it waits), then what ``DISCARD ALL`` does but for the prepared statements (:data:`RESET`).
  psycopg prepares the catalog queries a connection runs often, and tracks them; ``DISCARD
  ALL`` would drop them behind its back (psycopg notices only the first ``DISCARD ALL`` of a
  connection: the next statement it prepared then fails). Taken again, its time limits are set
  anew; that round trip is also the check that it is alive, and a dead one is replaced by a
  new connection.
- A connection whose sync failed on the source, or that is broken or in a transaction it cannot
  end, is closed, never kept.
- At most ``max_idle`` connections wait (the least recently used goes first), none longer than
  ``max_idle_seconds``, and none is reused once older than ``max_age_seconds`` (a changed DNS
  name, role or password takes effect). :meth:`SourceConnections.close` closes them all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from rosetta.catalog.connection import ConnectionParams, SourceLimits, connect, set_limits

Key = tuple[Hashable, ...]

RESET = (
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; UNLISTEN *; "
    "SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES"
)
"""``DISCARD ALL`` but ``DEALLOCATE ALL`` and ``DISCARD PLANS``: one round trip."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A connection taken from the cache (or opened for it), to give back with
    :meth:`SourceConnections.give_back`."""

    conn: psycopg.Connection[Any]
    key: Key
    opened_at: float


@dataclass(frozen=True, slots=True)
class _Idle:
    lease: Lease
    since: float


class SourceConnections:
    """The idle source connections of one process (thread-safe)."""

    def __init__(
        self,
        max_idle: int = 4,
        *,
        max_idle_seconds: float = 120.0,
        max_age_seconds: float = 600.0,
    ) -> None:
        self.max_idle = max(0, max_idle)
        self.max_idle_seconds = max_idle_seconds
        self.max_age_seconds = max_age_seconds
        self._salt = secrets.token_bytes(16)
        self._idle: list[_Idle] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0
        """Connections opened (not reused) so far."""
        self.reused = 0
        """Connections taken from the cache so far."""

    def key(self, params: ConnectionParams, limits: SourceLimits) -> Key:
        """Everything that decides where and as whom a connection connects, and its limits."""
        secret = None
        if params.password is not None:
            secret = hmac.new(self._salt, params.password.encode(), hashlib.sha256).digest()
        return (
            params.host,
            params.port,
            params.database,
            params.username,
            secret,
            tuple(sorted(params.options.items())),
            limits,
        )

    def take(self, params: ConnectionParams, limits: SourceLimits) -> Lease:
        """An idle connection opened with exactly these parameters, its limits set again; else
        a new one (:func:`rosetta.catalog.connection.connect`, whose errors it raises)."""
        key = self.key(params, limits)
        while True:
            found = self._take_idle(key)
            if found is None:
                break
            try:
                set_limits(found.conn, limits)
            except psycopg.Error:
                found.conn.close()  # gone while it waited: open a new one
                continue
            self.reused += 1
            return found
        conn = connect(params, limits)
        self.opened += 1
        return Lease(conn, key, time.monotonic())

    def give_back(self, lease: Lease, *, reusable: bool = True) -> None:
        """Reset the connection and keep it for the next sync with its key; close it instead
        when it is not ``reusable`` (its sync failed on the source), broken, too old, or cannot
        be reset."""
        conn = lease.conn
        now = time.monotonic()
        if (
            self._closed
            or not reusable
            or self.max_idle == 0
            or conn.closed
            or conn.broken
            or now - lease.opened_at > self.max_age_seconds
        ):
            conn.close()
            return
        try:
            if conn.info.transaction_status != TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            conn.execute(RESET)
        except psycopg.Error:
            conn.close()
            return
        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.close()
            return
        evicted: list[_Idle] = []
        with self._lock:
            if self._closed:
                evicted.append(_Idle(lease, now))
            else:
                self._idle.append(_Idle(lease, now))
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.pop(0))
        for idle in evicted:
            idle.lease.conn.close()

    def _take_idle(self, key: Key) -> Lease | None:
        """The most recently given back idle connection with ``key``; closes the expired."""
        now = time.monotonic()
        expired: list[_Idle] = []
        found: Lease | None = None
        with self._lock:
            keep: list[_Idle] = []
            for idle in self._idle:
                if (
                    now - idle.since > self.max_idle_seconds
                    or now - idle.lease.opened_at > self.max_age_seconds
                ):
                    expired.append(idle)
                else:
                    keep.append(idle)
            for i in range(len(keep) - 1, -1, -1):
                if keep[i].lease.key == key:
                    found = keep.pop(i).lease
                    break
            self._idle = keep
        for idle in expired:
            idle.lease.conn.close()
        return found

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        """Close every idle connection; connections given back later are closed too."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for entry in idle:
            entry.lease.conn.close()
