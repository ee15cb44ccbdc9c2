"""One sync of one source: read, decide, write.

The monitor and every Refresh call :func:`sync_source`. It runs in one store transaction under a
per-source advisory lock, so concurrent syncs of a source (in any process) run one after the
other and each sees what the previous one wrote. It first reads everything it needs (the
publication's fingerprints, the tracking rows, the columns and stored details of the tables
that moved), then lets the pure rules of :mod:`rosetta.reconcile` decide, then hands the
decisions to :mod:`rosetta.apply`, which writes each table in its own savepoint, so one failing
table never undoes or stops the others. The summary and the log lines are built from what was
written; the log lines are emitted once the transaction has committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from psycopg.pq import TransactionStatus
from psycopg.rows import class_row

from rosetta import logs, reconcile
from rosetta.apply import apply
from rosetta.capture.events import EventBatch
from rosetta.catalog.connection import ConnectionParams, SourceLimits
from rosetta.catalog.connection_cache import SourceConnections
from rosetta.catalog.reader import CatalogTable, TableKey
from rosetta.catalog.source_reader import SourceReader
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError
from rosetta.provenance import Provenance, polled
from rosetta.reconcile import StoredDetails, Tracked
from rosetta.store.repository import QUERIES, Conn, Source, record_sync, set_source_flags
from rosetta.summary import SyncRun, SyncSummary
from rosetta.uow import map_store_errors
from rosetta.webhooks import Recorder


class OpenWritesError(RosettaError):
    """A sync needs a store connection without uncommitted writes: commit or roll them back
    first."""

    http_status = 500


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


def open_reader(
    source: Source,
    box: SecretBox,
    limits: SourceLimits,
    connections: SourceConnections | None = None,
) -> SourceReader:
    """A reader of the source on a new connection, or on one of ``connections`` (a worker's
    idle connections) opened with exactly the source's parameters."""
    return SourceReader(
        connection_params(source, box),
        address=source.address,
        publication=source.publication_name,
        slot=source.replication_name,
        limits=limits,
        connections=connections,
    )


def sync_source(
    store: Conn,
    source: Source,
    box: SecretBox,
    *,
    limits: SourceLimits | None = None,
    full: bool = False,
    woken: bool = False,
    run: SyncRun | None = None,
    connections: SourceConnections | None = None,
) -> SyncSummary:
    """Bring the store in line with the source's publication, now. ``full`` compares every
    table's columns, not only those whose fingerprint changed. ``woken``: the sync answers a
    notification of captured DDL, and reads only the tables the new events name (unless one of
    them concerns the whole publication).

    The sync is its own transaction: a read-only transaction the caller left open (or a failed
    one) is rolled back first; uncommitted writes raise :class:`OpenWritesError` instead of
    being committed or lost.

    ``run`` says who runs the sync and why (a job on the queue, or this process), for the
    ``sync_runs`` row written with its outcome. ``connections``: a worker's idle source
    connections, to reuse one opened with the same parameters instead of opening one."""
    started = time.perf_counter()
    run = run or SyncRun.here()
    summary = SyncSummary(source.name, synced_by=run.worker, job_id=run.job_id)
    limits = limits or SourceLimits()
    _end_read_transaction(store)
    # Every line about what the sync wrote is logged once its transaction has committed.
    pending = logs.after_commit(logs.for_source(source.name))
    source_reader: SourceReader | None = None
    try:
        with (
            map_store_errors(during=f"the sync of {source.name!r}"),
            pending as log,
            store.transaction(),
        ):
            store.execute(QUERIES["lock_source"], {"id": source.id})
            capture = _capture_state(store, source.id)
            batch: EventBatch | None = None
            try:
                source_reader = open_reader(source, box, limits, connections)
                if capture.enabled:
                    source_reader.begin_snapshot()
                    batch = _events(store, source, source_reader, capture, log)
                oids = None
                if woken and batch is not None and not full:
                    if not batch.whole_publication(source.publication_name):
                        oids = batch.oids()
                snapshot = source_reader.publication(oids)
            except RosettaError as exc:
                return _failed(store, source, summary, log, exc, run, started)
            summary.publication_exists = snapshot.publication_exists
            summary.slot_exists = snapshot.slot_exists
            set_source_flags(store, source.id, snapshot.publication_exists, snapshot.slot_exists)
            if not snapshot.publication_exists:
                log.warning(
                    "Publication %s does not exist on source %s: skipping it",
                    logs.safe(source.publication_name),
                    logs.safe(source.name),
                )
                missing = f"publication {source.publication_name!r} does not exist"
                _record(store, source, summary, missing, run, started)
                return summary
            # Read.
            tracked = _tracked(store, source.id, oids, snapshot.tables)
            the_plan = reconcile.plan(snapshot.tables, tracked, full=full)
            try:
                # Only the new and the changed tables' columns are read from the source.
                read = _by_key(source_reader.columns(the_plan.to_read))
                source_reader.end_snapshot()
            except RosettaError as exc:
                return _failed(store, source, summary, log, exc, run, started)
            details = _details(store, [row.id for row, _ in the_plan.compare])
            # Decide, then write.
            decisions = reconcile.decide(the_plan, read, details)
            events = Recorder(store, source.id, source.name)
            polling = polled(snapshot.lsn)

            def provenance(decision: reconcile.Decision) -> Provenance:
                found = None
                if batch is not None:
                    table, row = decision.table, decision.tracked
                    found = batch.provenance(
                        [table.oid if table else None, row.oid if row else None]
                    )
                return found or polling

            outcomes = apply(store, source.id, decisions, events, provenance)
            summary.unchanged = the_plan.unchanged
            summary.report(outcomes, log)
            if batch is not None:
                _record_capture(store, source.id, batch.snapshot, batch.last_event_at, None)
                summary.captured_events = len(batch.events)
            _record(store, source, summary, summary.failure_text(), run, started)
        if capture.enabled and not woken and source_reader is not None:
            source_reader.prune_events(limits.capture_retention_days)
    finally:
        if source_reader is not None:
            source_reader.close()
        summary.duration = time.perf_counter() - started
    return summary


@dataclass(frozen=True, slots=True)
class _Capture:
    enabled: bool
    snapshot: str | None
    error: str | None


def _capture_state(store: Conn, source_id: int) -> _Capture:
    row = store.execute(QUERIES["source_capture"], {"id": source_id}).fetchone()
    return _Capture(False, None, None) if row is None else _Capture(*row)


def _events(
    store: Conn, source: Source, source_reader: SourceReader, capture: _Capture, log: logs.Pending
) -> EventBatch | None:
    """The new captured events; None when the capture is broken (said once, and stored)."""
    got = source_reader.events(capture.snapshot)
    if isinstance(got, EventBatch):
        return got
    if got.reason != capture.error:
        log.warning("Capture on source %s: %s", logs.safe(source.name), got.reason)
    _record_capture(store, source.id, None, None, got.reason)
    return None


def _record_capture(
    store: Conn,
    source_id: int,
    snapshot: str | None,
    last_event_at: datetime | None,
    error: str | None,
) -> None:
    store.execute(
        QUERIES["record_capture"],
        {"id": source_id, "snapshot": snapshot, "last_event_at": last_event_at, "error": error},
    )


def _end_read_transaction(store: Conn) -> None:
    status = store.info.transaction_status
    if status == TransactionStatus.INERROR:
        store.rollback()
    elif status == TransactionStatus.INTRANS:
        row = store.execute("SELECT txid_current_if_assigned() IS NOT NULL").fetchone()
        if row is not None and row[0]:
            raise OpenWritesError()
        store.rollback()


def _failed(
    store: Conn,
    source: Source,
    summary: SyncSummary,
    log: logs.Pending,
    exc: RosettaError,
    run: SyncRun,
    started: float,
) -> SyncSummary:
    summary.error = exc.message
    log.error("Sync of source %s failed: %s", logs.safe(source.name), exc.message)
    _record(store, source, summary, exc.message, run, started)
    return summary


def _record(
    store: Conn,
    source: Source,
    summary: SyncSummary,
    error: str | None,
    run: SyncRun,
    started: float,
) -> None:
    """The sync's outcome on the source (its status is the summary's) and its ``sync_runs``
    row, with the summary as it stands (its duration so far)."""
    summary.duration = time.perf_counter() - started
    record_sync(store, source.id, summary.status, error, summary.to_json(), run)


def _tracked(
    store: Conn,
    source_id: int,
    oids: list[int] | None,
    tables: dict[TableKey, CatalogTable],
) -> list[Tracked]:
    """Every tracking row of the source; with ``oids``, those of the tables with these OIDs
    and of the names ``tables`` have now."""
    with store.cursor(row_factory=class_row(Tracked)) as cur:
        if oids is None:
            return cur.execute(QUERIES["tracked_state"], {"source_id": source_id}).fetchall()
        params = {
            "source_id": source_id,
            "oids": oids,
            "schema_names": [key[0] for key in tables],
            "table_names": [key[1] for key in tables],
        }
        return cur.execute(QUERIES["tracked_state_named"], params).fetchall()


def _details(store: Conn, ids: list[int]) -> dict[int, StoredDetails]:
    if not ids:
        return {}
    with store.cursor(row_factory=class_row(StoredDetails)) as cur:
        rows = cur.execute(QUERIES["table_details"], {"ids": ids}).fetchall()
    return {row.id: row for row in rows}


def _by_key(tables: list[CatalogTable]) -> dict[TableKey, CatalogTable]:
    return {table.key: table for table in tables}
