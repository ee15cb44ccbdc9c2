"""Each user action on a source, written once: the CLI, the API and the web call these.

The adapters parse their input and render the outcome; the rules live here. These functions
take a store connection and never commit or roll back: the entry point that opened the unit of
work ends it (``rosetta.uow``). The exceptions are :func:`sync_after` and :func:`refresh`: the
sync runs its own transaction (or a worker runs it), so the action before it is ended there, by
the unit-of-work module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rosetta import publications, sources, uow
from rosetta.capture import installer
from rosetta.capture.installer import CaptureStatus
from rosetta.catalog.connection import ConnectionParams, SourceLimits, connect, describe
from rosetta.catalog.reader import CatalogSnapshot
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError, RefreshTimeoutError, SourceConnectionError
from rosetta.publications import TableName
from rosetta.queue import client
from rosetta.queue.options import QueueOptions
from rosetta.store import repository
from rosetta.store.repository import QUERIES, Conn, Source
from rosetta.summary import SyncRun, SyncSummary
from rosetta.sync import connection_params, sync_source


@dataclass(frozen=True)
class Registered:
    """A source just registered: what its connection test saw, and its first sync (if run)."""

    source: Source
    state: CatalogSnapshot
    sync: SyncSummary | None


@dataclass(frozen=True)
class Updated:
    source: Source
    tested: bool
    sync: SyncSummary | None


def validate(data: sources.SourceInput) -> None:
    """Raise InvalidInputError naming the first bad field of ``data``."""
    sources.validate_name(data.name)
    data.params.validated()
    sources.validate_identifier(data.publication_name, "publication name")
    if data.replication_name:
        sources.validate_identifier(data.replication_name, "replication slot name")
    sources.validate_webhook_severity(data.webhook_severity)


def sync_after(store: Conn, source_id: int, box: SecretBox, limits: SourceLimits) -> SyncSummary:
    """Sync the source now, as the monitor does: what follows every action on a source.

    An action followed by a sync is two units of work: the sync runs its own transaction
    (under the source's lock), so the action's writes are committed first, by ``uow.end``.
    """
    uow.end(store, ok=True)
    source = repository.source_by_id(store, source_id)
    return sync_source(store, source, box, limits=limits)


def refresh(
    store: Conn,
    box: SecretBox,
    limits: SourceLimits,
    source: Source,
    queue: QueueOptions,
    *,
    full: bool = False,
) -> SyncSummary:
    """Sync the source now (Refresh, from the CLI, the API and the web) and return its summary.

    When a worker is alive (a `rosetta worker`, or the one inside `rosetta monitor` or
    `rosetta serve`), the sync is a job on the queue: deferred, then waited for, so it never
    runs beside a scheduled sync of the source, and the summary says which worker ran it. A job
    of the source already waiting is waited for instead (it starts after this Refresh, so it
    sees everything the user just did), and then, for a full compare, one more. With no worker
    alive the sync runs here, in-process. A worker that does not finish within
    ``queue.refresh_timeout`` is RefreshTimeoutError (the job still runs)."""
    uow.end(store, ok=True)
    if not client.workers_alive(store, queue.stalled_after):
        return sync_source(
            store, source, box, limits=limits, full=full, run=SyncRun.here("refresh")
        )
    job_id, ours = _queue_refresh(store, source, full)
    outcome = client.wait_for(store, job_id, queue.refresh_timeout)
    if outcome.summary is not None and full and not ours:
        job_id, _ = _queue_refresh(store, source, full)
        outcome = client.wait_for(store, job_id, queue.refresh_timeout)
    if outcome.summary is None:
        raise RefreshTimeoutError(f"refresh of source {source.name!r}: {outcome.problem}")
    return outcome.summary


def _queue_refresh(store: Conn, source: Source, full: bool) -> tuple[int, bool]:
    """The job a Refresh waits for: a new one, or the one already waiting (then False)."""
    options = {"full": True} if full else {}
    for _ in range(3):
        job_id = client.defer_sync(store, source.id, "refresh", **options)
        ours = job_id is not None
        if job_id is None:
            job_id = client.waiting_job(store, source.id)
        store.commit()
        if job_id is not None:
            return job_id, ours
    raise RefreshTimeoutError(f"cannot queue a sync of source {source.name!r}: try again")


def register_source(
    store: Conn,
    box: SecretBox,
    limits: SourceLimits,
    data: sources.SourceInput,
    *,
    sync: bool = True,
) -> Registered:
    """Validate, test the connection, store, then sync once.

    An unreachable source is refused (SourceConnectionError) and nothing is stored.
    """
    validate(data)
    state = sources.check_connection(
        data.params, data.publication_name, data.replication_name, limits
    )
    source = sources.add_source(store, box, data)
    summary = sync_after(store, source.id, box, limits) if sync else None
    return Registered(source, state, summary)


def connection_changed(source: Source, params: ConnectionParams) -> bool:
    """Whether ``params`` connect anywhere or anyhow else than ``source`` is stored to:
    another host, port, database, user or option, or a new password."""
    return params.password is not None or (
        (params.host, params.port, params.database, params.username, dict(params.options))
        != (
            source.host,
            source.port,
            source.database,
            source.username,
            dict(source.connect_options or {}),
        )
    )


def check_update(
    source: Source, data: sources.SourceInput, box: SecretBox, limits: SourceLimits
) -> CatalogSnapshot:
    """Test the connection ``data`` describes, with the stored password when none is given
    (and only where that password may go: else PasswordRequiredError)."""
    params = sources.with_stored_password(data.params, source, box)
    return sources.check_connection(params, data.publication_name, data.replication_name, limits)


def tested_input(source: Source, data: sources.SourceInput, box: SecretBox) -> sources.SourceInput:
    """``data`` with the stored password filled in, for a Test of a changed source."""
    return replace(data, params=sources.with_stored_password(data.params, source, box))


def update_source(
    store: Conn,
    box: SecretBox,
    limits: SourceLimits,
    source: Source,
    data: sources.SourceInput,
    *,
    sync: bool = False,
) -> Updated:
    """Validate, test the connection whenever where or how it connects changes, store, and
    sync once if asked."""
    validate(data)
    tested = connection_changed(source, data.params)
    if tested:
        check_update(source, data, box, limits)
    updated = sources.update_source(store, box, source, data)
    summary = sync_after(store, updated.id, box, limits) if sync else None
    if summary is not None:
        updated = repository.source_by_id(store, updated.id)
    return Updated(updated, tested, summary)


def remove_source(store: Conn, source_id: int) -> None:
    """Forget a source with its tables and their history (the source itself is untouched)."""
    repository.delete_source(store, source_id)


# --- the publication and the slot on the source, each change followed by a sync -----------------


def create_publication(
    store: Conn,
    box: SecretBox,
    limits: SourceLimits,
    source: Source,
    tables: Sequence[TableName] = (),
) -> SyncSummary:
    """Create the source's publication for ``tables`` (none: an empty one), then sync."""
    params = connection_params(source, box)
    publications.create_publication(params, source.publication_name, tables, limits)
    return sync_after(store, source.id, box, limits)


def drop_publication(
    store: Conn, box: SecretBox, limits: SourceLimits, source: Source
) -> SyncSummary:
    """Drop the source's publication (its tables stay here, marked removed), then sync."""
    params = connection_params(source, box)
    publications.drop_publication(params, source.publication_name, limits)
    return sync_after(store, source.id, box, limits)


def add_tables(
    store: Conn,
    box: SecretBox,
    limits: SourceLimits,
    source: Source,
    tables: Sequence[TableName],
) -> SyncSummary:
    """Add ``tables`` to the source's publication, one by one, then sync."""
    params = connection_params(source, box)
    for table in tables:
        publications.add_table(params, source.publication_name, table, limits)
    return sync_after(store, source.id, box, limits)


def remove_table(
    store: Conn, box: SecretBox, limits: SourceLimits, source: Source, table: TableName
) -> SyncSummary:
    """Remove ``table`` from the source's publication (its history is kept), then sync."""
    params = connection_params(source, box)
    publications.remove_table(params, source.publication_name, table, limits)
    return sync_after(store, source.id, box, limits)


def slot_of(source: Source) -> str:
    """The source's replication slot name; InvalidInputError when it names none."""
    if not source.replication_name:
        raise InvalidInputError(
            f"source {source.name!r} names no replication slot: set its replication_name first"
        )
    return source.replication_name


def create_slot(store: Conn, box: SecretBox, limits: SourceLimits, source: Source) -> SyncSummary:
    """Create the source's logical replication slot (pgoutput), then sync."""
    slot = slot_of(source)
    publications.create_slot(connection_params(source, box), slot, limits)
    return sync_after(store, source.id, box, limits)


def drop_slot(store: Conn, box: SecretBox, limits: SourceLimits, source: Source) -> SyncSummary:
    """Drop the source's replication slot, then sync."""
    slot = slot_of(source)
    publications.drop_slot(connection_params(source, box), slot, limits)
    return sync_after(store, source.id, box, limits)


# --- real-time capture on the source (rosetta.capture) -------------------------------------------


@dataclass(frozen=True)
class CaptureOutcome:
    """What an install or uninstall did, and the capture's state on the source after it."""

    source: Source
    status: CaptureStatus
    changed: bool
    """Install: False when it was already installed (then upgraded in place). Uninstall: False
    when nothing of it was there."""


def capture_status(
    store: Conn, box: SecretBox, limits: SourceLimits, source: Source
) -> CaptureStatus:
    """The capture's state as the source's catalogs show it now."""
    conn = connect(connection_params(source, box), limits)
    try:
        with uow.map_source_errors(
            SourceConnectionError, f"cannot read the capture's state on {source.name}", describe
        ):
            return installer.status(conn)
    finally:
        conn.close()


def install_capture(
    store: Conn, box: SecretBox, limits: SourceLimits, source: Source
) -> CaptureOutcome:
    """Install (or upgrade in place) the event triggers on the source, then put the source in
    real-time mode in the store from the snapshot read right after the install committed.

    A role that may not create event triggers is refused (CapturePrivilegeError): nothing is
    installed and the source stays on polling."""
    conn = connect(connection_params(source, box), limits)
    try:
        with uow.map_source_errors(
            SourceConnectionError, f"cannot read the capture's state on {source.name}", describe
        ):
            before = installer.status(conn)
        snapshot = installer.install(conn, source.name)
        with uow.map_source_errors(
            SourceConnectionError, f"cannot read the capture's state on {source.name}", describe
        ):
            after = installer.status(conn)
    finally:
        conn.close()
    store.execute(QUERIES["capture_installed"], {"id": source.id, "snapshot": snapshot})
    return CaptureOutcome(repository.source_by_id(store, source.id), after, not before.installed)


def uninstall_capture(
    store: Conn, box: SecretBox, limits: SourceLimits, source: Source
) -> CaptureOutcome:
    """Drop the event triggers, their functions and the events from the source (nothing there
    is fine), and put the source back on polling in the store."""
    conn = connect(connection_params(source, box), limits)
    try:
        removed = installer.uninstall(conn, source.name)
        with uow.map_source_errors(
            SourceConnectionError, f"cannot read the capture's state on {source.name}", describe
        ):
            after = installer.status(conn)
    finally:
        conn.close()
    store.execute(QUERIES["capture_uninstalled"], {"id": source.id})
    return CaptureOutcome(repository.source_by_id(store, source.id), after, removed)
