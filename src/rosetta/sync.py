"""One sync of one source: read its publication, reconcile, write what changed.

The monitor and every Refresh call :func:`sync_source`. It runs in one store transaction under a
per-source advisory lock, so concurrent syncs of a source (in any process) run one after the
other and each sees what the previous one wrote; every table is applied in its own savepoint, so
one failing table never undoes or stops the others.
"""

from __future__ import annotations

import time
from dataclasses import replace

import psycopg
from psycopg.pq import TransactionStatus

from rosetta import logs
from rosetta.apply import apply_plan
from rosetta.catalog import reader
from rosetta.catalog.connection import ConnectionParams, SourceLimits, connect, describe
from rosetta.catalog.reader import CatalogSnapshot, CatalogTable
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError, first_line
from rosetta.store.repository import Conn, Source, q, record_sync, set_source_flags
from rosetta.summary import SyncSummary
from rosetta.webhooks import Recorder


def connection_params(source: Source, box: SecretBox) -> ConnectionParams:
    password = None
    if source.password_encrypted:
        password = box.decrypt(
            source.password_encrypted, what=f"the password of source {source.name!r}"
        )
    return ConnectionParams(
        source.host,
        source.port,
        source.database,
        source.username,
        password,
        dict(source.connect_options or {}),
    )


class SourceReader:
    """The open connection to a source during one sync; failures become one line (never the
    password)."""

    def __init__(self, params: ConnectionParams, source: Source, limits: SourceLimits) -> None:
        self.source = source
        self.limits = limits
        self.conn = connect(params, limits)

    def _failed(self, exc: psycopg.Error) -> RosettaError:
        return RosettaError(f"cannot read the catalog of {self.source.address}: {describe(exc)}")

    def publication(self) -> CatalogSnapshot:
        """Every table of the publication, by fingerprint (one round trip)."""
        try:
            return reader.read_publication(
                self.conn,
                self.source.publication_name,
                self.source.replication_name,
                columns=False,
            )
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def columns(self, tables: list[CatalogTable]) -> list[CatalogTable]:
        """The columns of the tables that need them (one round trip)."""
        try:
            return reader.read_columns(self.conn, self.source.publication_name, tables)
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
                found.extend(reader.read_columns(self.conn, self.source.publication_name, [table]))
            except psycopg.errors.LockNotAvailable as exc:
                found.append(replace(table, read_error=describe(exc)))
            except psycopg.Error as exc:
                raise self._failed(exc) from None
        return found

    def close(self) -> None:
        self.conn.close()


def sync_source(
    store: Conn,
    source: Source,
    box: SecretBox,
    *,
    limits: SourceLimits | None = None,
    full: bool = False,
) -> SyncSummary:
    """Bring the store in line with the source's publication, now. ``full`` compares every
    table's columns, not only those whose fingerprint changed."""
    started = time.perf_counter()
    summary = SyncSummary(source.name)
    # Every line about what the sync wrote is logged once its transaction has committed.
    pending = logs.after_commit(logs.for_source(source.name))
    # The sync is its own transaction: end whatever the caller's reads left open.
    status = store.info.transaction_status
    if status == TransactionStatus.INTRANS:
        store.commit()
    elif status == TransactionStatus.INERROR:
        store.rollback()
    source_reader: SourceReader | None = None
    try:
        with pending as log, store.transaction():
            store.execute(q("lock_source"), {"id": source.id})
            try:
                source_reader = SourceReader(
                    connection_params(source, box), source, limits or SourceLimits()
                )
                snapshot = source_reader.publication()
            except RosettaError as exc:
                summary.error = exc.message
                log.error("Sync of source %s failed: %s", logs.safe(source.name), exc.message)
                record_sync(store, source.id, "failed", exc.message)
                return summary
            summary.publication_exists = snapshot.publication_exists
            summary.slot_exists = snapshot.slot_exists
            set_source_flags(store, source.id, snapshot.publication_exists, snapshot.slot_exists)
            if not snapshot.publication_exists:
                log.warning(
                    "Publication %s does not exist on source %s: skipping it",
                    logs.safe(source.publication_name),
                    logs.safe(source.name),
                )
                record_sync(
                    store,
                    source.id,
                    "publication_missing",
                    f"publication {source.publication_name!r} does not exist",
                )
                return summary
            events = Recorder(store, source.id, source.name)
            assert source_reader is not None
            try:
                apply_plan(store, source, snapshot, summary, log, events, source_reader, full)
            except RosettaError as exc:  # reading the changed tables' columns failed
                summary.error = exc.message
                log.error("Sync of source %s failed: %s", logs.safe(source.name), exc.message)
                record_sync(store, source.id, "failed", exc.message)
                return summary
            record_sync(
                store,
                source.id,
                summary.status,
                _failure_text(summary.failed) if summary.failed else None,
            )
    except psycopg.OperationalError as exc:
        raise StoreUnavailableError(
            f"Rosetta's store failed during the sync of {source.name!r}: {first_line(exc)}"
        ) from None
    finally:
        if source_reader is not None:
            source_reader.close()
        summary.duration = time.perf_counter() - started
    return summary


def _failure_text(failed: list[tuple[str, str]]) -> str:
    first = f"{failed[0][0]}: {failed[0][1]}"
    return first if len(failed) == 1 else f"{len(failed)} tables failed; first {first}"
