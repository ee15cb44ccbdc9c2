"""The open connection to a source during one sync: every read a sync makes of the source.

Failures become one :class:`RosettaError` line (never the password). A table whose columns stay
locked comes back with ``read_error`` set instead of failing the whole read.
"""

from __future__ import annotations

import time
from dataclasses import replace
from types import TracebackType

import psycopg

from rosetta.capture.events import CaptureBroken, EventBatch, prune, read_events
from rosetta.catalog import reader
from rosetta.catalog.connection import ConnectionParams, SourceLimits, connect, describe
from rosetta.catalog.connection_cache import Lease, SourceConnections
from rosetta.catalog.reader import CatalogSnapshot, CatalogTable
from rosetta.errors import RosettaError


class SourceReader:
    """Reads one source's publication (``publication``, ``slot``) over one connection: a new
    one, or one of ``connections`` opened with the same parameters (given back on close)."""

    def __init__(
        self,
        params: ConnectionParams,
        *,
        address: str,
        publication: str,
        slot: str | None,
        limits: SourceLimits,
        connections: SourceConnections | None = None,
    ) -> None:
        self.address = address
        self.publication_name = publication
        self.slot = slot
        self.limits = limits
        self.connections = connections
        self.failed = False
        self.lease: Lease | None = None
        if connections is None:
            self.conn = connect(params, limits)
        else:
            self.lease = connections.take(params, limits)
            self.conn = self.lease.conn

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _failed(self, exc: psycopg.Error) -> RosettaError:
        self.failed = True  # never hand this connection to another sync
        return RosettaError(f"cannot read the catalog of {self.address}: {describe(exc)}")

    def begin_snapshot(self) -> None:
        """Read what follows in one snapshot (a repeatable-read, read-only transaction): the
        captured events and the catalog they changed, as of the same moment."""
        try:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def end_snapshot(self) -> None:
        try:
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.conn.execute("ROLLBACK")
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def events(self, seen: str | None) -> EventBatch | CaptureBroken:
        """The captured events committed since the snapshot ``seen``."""
        try:
            with self.conn.transaction():
                return read_events(self.conn, seen)
        except psycopg.errors.InsufficientPrivilege as exc:
            return CaptureBroken(f"the capture's events cannot be read: {describe(exc)}")
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def prune_events(self, days: int) -> None:
        """Delete captured events older than ``days``; a failure only means they stay."""
        try:
            with self.conn.transaction():
                prune(self.conn, days)
        except psycopg.Error:
            self.failed = True

    def publication(self, oids: list[int] | None = None) -> CatalogSnapshot:
        """Every table of the publication (with ``oids``, those of them alone), by
        fingerprint (one round trip)."""
        try:
            return reader.read_publication(
                self.conn, self.publication_name, self.slot, columns=False, oids=oids
            )
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def columns(self, tables: list[CatalogTable]) -> list[CatalogTable]:
        """The columns of the tables that need them (one round trip)."""
        try:
            with self.conn.transaction():
                return reader.read_columns(self.conn, self.publication_name, tables)
        except psycopg.errors.LockNotAvailable:
            return self._columns_one_by_one(tables)
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def _columns_one_by_one(self, tables: list[CatalogTable]) -> list[CatalogTable]:
        """After a lock timeout, each table alone: only the locked ones fail (with the
        reason), the others are read. Bounded by one statement timeout in all."""
        found: list[CatalogTable] = []
        deadline = time.monotonic() + self.limits.statement_timeout
        for table in tables:
            if time.monotonic() > deadline:
                found.append(
                    replace(table, read_error="not read: the source's tables stayed locked")
                )
                continue
            try:
                with self.conn.transaction():
                    found.extend(reader.read_columns(self.conn, self.publication_name, [table]))
            except psycopg.errors.LockNotAvailable as exc:
                found.append(replace(table, read_error=describe(exc)))
            except psycopg.Error as exc:
                raise self._failed(exc) from None
        return found

    def close(self) -> None:
        """Close the connection, or give it back to ``connections`` (reset) for another sync
        with the same parameters, unless a read on it failed."""
        lease, self.lease = self.lease, None
        if self.connections is None:
            self.conn.close()
        elif lease is not None:  # once: the connection may already serve another sync
            self.connections.give_back(lease, reusable=not self.failed)
