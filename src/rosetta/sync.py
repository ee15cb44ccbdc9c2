"""One sync of one source: read its publication, reconcile, write what changed.

The monitor and every Refresh call :func:`sync_source`. It runs in one store transaction under a
per-source advisory lock, so concurrent syncs of a source (in any process) run one after the
other and each sees what the previous one wrote; every table is applied in its own savepoint, so
one failing table never undoes or stops the others.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from rosetta import logs
from rosetta.catalog import reader
from rosetta.catalog.reader import CatalogSnapshot, CatalogTable, ConnectionParams
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError
from rosetta.reconcile import Decision, Tracked, changes_json, decide, plan
from rosetta.schema.diff import INITIAL_LOAD
from rosetta.schema.model import display_name
from rosetta.store.repository import Conn, Source, q, record_sync, set_source_flags
from rosetta.webhooks import Recorder


@dataclass
class ChangedTable:
    table: str
    version: int
    changes_type: str


@dataclass
class SyncSummary:
    source: str
    added: list[str] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    changed: list[ChangedTable] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    publication_exists: bool = True
    slot_exists: bool = False
    error: str | None = None
    duration: float = 0.0

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if not self.publication_exists:
            return "publication_missing"
        return "partial" if self.failed else "ok"

    @property
    def wrote_anything(self) -> bool:
        return bool(self.added or self.healed or self.changed or self.removed or self.rejoined)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"table": t, "error": e} for t, e in self.failed]
        data["status"] = self.status
        return data


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

    def __init__(self, params: ConnectionParams, source: Source, timeout: int) -> None:
        self.source = source
        self.conn = reader.connect(params, timeout)

    def _failed(self, exc: psycopg.Error) -> RosettaError:
        return RosettaError(
            f"cannot read the catalog of {self.source.address}: {reader.first_line(exc)}"
        )

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
            return reader.read_columns(self.conn, tables)
        except psycopg.Error as exc:
            raise self._failed(exc) from None

    def close(self) -> None:
        self.conn.close()


def sync_source(
    store: Conn, source: Source, box: SecretBox, *, timeout: int = 10, full: bool = False
) -> SyncSummary:
    """Bring the store in line with the source's publication, now. ``full`` compares every
    table's columns, not only those whose fingerprint changed."""
    started = time.perf_counter()
    summary = SyncSummary(source.name)
    log = logs.for_source(source.name)
    # The sync is its own transaction: end whatever the caller's reads left open.
    status = store.info.transaction_status
    if status == TransactionStatus.INTRANS:
        store.commit()
    elif status == TransactionStatus.INERROR:
        store.rollback()
    source_reader: SourceReader | None = None
    try:
        with store.transaction():
            store.execute(q("lock_source"), {"id": source.id})
            try:
                source_reader = SourceReader(connection_params(source, box), source, timeout)
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
                _apply(store, source, snapshot, summary, log, events, source_reader, full)
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
            f"Rosetta's store failed during the sync of {source.name!r}: {reader.first_line(exc)}"
        ) from None
    finally:
        if source_reader is not None:
            source_reader.close()
        summary.duration = time.perf_counter() - started
    return summary


def _failure_text(failed: list[tuple[str, str]]) -> str:
    first = f"{failed[0][0]}: {failed[0][1]}"
    return first if len(failed) == 1 else f"{len(failed)} tables failed; first {first}"


Log = Any  # logging.LoggerAdapter; kept loose to avoid importing logging types everywhere


def _apply(
    store: Conn,
    source: Source,
    snapshot: CatalogSnapshot,
    summary: SyncSummary,
    log: Log,
    events: Recorder,
    source_reader: SourceReader,
    full: bool = False,
) -> None:
    tracked = [
        Tracked(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
        for r in store.execute(q("tracked_state"), {"source_id": source.id})
    ]
    the_plan = plan(snapshot.tables, tracked, full=full)
    summary.unchanged = the_plan.unchanged
    # Only the new and the changed tables' columns are read from the source.
    loaded = {
        t.key: t for t in source_reader.columns(the_plan.new + [t for _, t in the_plan.compare])
    }
    new = [loaded[t.key] for t in the_plan.new]
    compare = [(row, loaded[t.key]) for row, t in the_plan.compare]

    for table in new:
        _guarded(
            store,
            source.id,
            table,
            None,
            summary,
            log,
            lambda t=table: _add(store, source, t, summary, log, events),
        )

    if compare:
        ids = [row.id for row, _ in compare]
        details = {r[0]: r for r in store.execute(q("table_details"), {"ids": ids})}
        for row, table in compare:
            _, stored, last_version, last_schema = details[row.id]
            _guarded(
                store,
                source.id,
                table,
                row.id,
                summary,
                log,
                lambda row=row, table=table, stored=stored, lv=last_version, ls=last_schema: (
                    _update(
                        store,
                        row,
                        table,
                        decide(row, table, stored, lv, ls),
                        summary,
                        log,
                        events,
                    )
                ),
            )

    if the_plan.removed:
        store.execute(q("mark_removed"), {"ids": [r.id for r in the_plan.removed]})
        for row in the_plan.removed:
            name = logs.safe(display_name(row.schema_name, row.table_name))
            summary.removed.append(display_name(row.schema_name, row.table_name))
            log.info("Table %s left the publication: marked removed, history kept", name)
            events.record("table.removed", row.schema_name, row.table_name, level="breaking")


def _guarded(
    store: Conn,
    source_id: int,
    table: CatalogTable,
    table_id: int | None,
    summary: SyncSummary,
    log: Log,
    work: Any,
) -> None:
    """Run ``work`` for one table in a savepoint; on failure record it and carry on."""
    name = display_name(table.schema_name, table.table_name)
    try:
        with store.transaction():
            work()
    except (psycopg.Error, RosettaError, ValueError, KeyError, TypeError) as exc:
        if _store_lost(store):
            raise
        error = reader.first_line(exc)
        summary.failed.append((name, error))
        log.error("Failed to fetch schema for existing table %s: %s", logs.safe(name), error)
        try:
            with store.transaction():
                if table_id is None:
                    params = _table_params(
                        source_id=source_id, table=table, schema=None, fingerprint=None
                    )
                    inserted = store.execute(q("insert_table"), params).fetchone()
                    assert inserted is not None
                    table_id = inserted[0]
                store.execute(q("set_table_error"), {"id": table_id, "error": error})
        except psycopg.Error:
            if _store_lost(store):
                raise


def _store_lost(store: Conn) -> bool:
    """Whether the store connection itself is gone (then the whole sync stops).

    Any other error, an OperationalError such as a lock or statement timeout included, is the
    table's own: its savepoint is rolled back and the other tables carry on.
    """
    return store.closed or store.broken


def _table_params(
    *, source_id: int | None, table: CatalogTable, schema: Any, fingerprint: str | None
) -> dict[str, Any]:
    return {
        "source_id": source_id,
        "schema_name": table.schema_name,
        "table_name": table.table_name,
        "schema_table": Jsonb(schema) if schema is not None else None,
        "fingerprint": fingerprint,
        "oid": table.oid,
        "kind": table.kind,
        "replica_identity": table.replica_identity,
        "can_select": table.can_select,
    }


def _add(
    store: Conn,
    source: Source,
    table: CatalogTable,
    summary: SyncSummary,
    log: Log,
    events: Recorder,
) -> None:
    name = display_name(table.schema_name, table.table_name)
    schema = table.schema_json()
    if not schema:
        store.execute(
            q("insert_table"),
            _table_params(
                source_id=source.id, table=table, schema=None, fingerprint=table.fingerprint
            ),
        )
        summary.skipped.append(name)
        _log_skip(log, name)
        return
    row = store.execute(
        q("insert_table"),
        _table_params(
            source_id=source.id,
            table=table,
            schema=schema,
            fingerprint=table.fingerprint,
        ),
    ).fetchone()
    assert row is not None
    _insert_history(store, row[0], 1, INITIAL_LOAD, {}, schema, [])
    events.record(
        "table.added",
        table.schema_name,
        table.table_name,
        version=1,
        change_type=INITIAL_LOAD,
        level="safe",
    )
    summary.added.append(name)
    log.info("Added new table tracking with schema: %s (%d columns)", logs.safe(name), len(schema))


def _log_skip(log: Log, name: str) -> None:
    log.warning(
        "Skipping table %s: No schema columns found. Table may be empty or inaccessible.",
        logs.safe(name),
    )


def _insert_history(
    store: Conn,
    table_id: int,
    version: int,
    changes_type: str,
    old: Any,
    new: Any,
    changes: list[dict[str, Any]],
) -> None:
    store.execute(
        q("insert_history"),
        {
            "table_id": table_id,
            "version": version,
            "changes_type": changes_type,
            "old": Jsonb(old),
            "new": Jsonb(new),
            "changes": Jsonb(changes),
        },
    )


def _update(
    store: Conn,
    row: Tracked,
    table: CatalogTable,
    decision: Decision,
    summary: SyncSummary,
    log: Log,
    events: Recorder,
) -> None:
    if decision.action == "none":
        summary.unchanged += 1
        return
    name = display_name(row.schema_name, row.table_name)
    shown = logs.safe(name)
    if decision.rejoined:
        summary.rejoined.append(name)
        log.info("Table %s is back in the publication", shown)
    params = _table_params(source_id=None, table=table, schema=None, fingerprint=table.fingerprint)
    params.update(id=row.id, healed=False)

    if decision.action == "skip":
        store.execute(q("update_table"), params)
        summary.skipped.append(name)
        _log_skip(log, name)
        return
    if decision.action == "heal":
        log.info("Found table %s without schema, fetching now...", shown)
    params.update(schema_table=Jsonb(decision.new), healed=decision.action == "heal")
    store.execute(q("update_table"), params)
    if decision.version is not None and decision.changes_type is not None:
        _insert_history(
            store,
            row.id,
            decision.version,
            decision.changes_type,
            decision.old,
            decision.new,
            changes_json(decision.changes),
        )
    if decision.action == "heal":
        events.record(
            "table.healed",
            row.schema_name,
            row.table_name,
            version=decision.version,
            change_type=decision.changes_type,
            changes=decision.changes,
            level=None,
        )
    elif decision.version is not None:
        events.record(
            "schema.changed",
            row.schema_name,
            row.table_name,
            version=decision.version,
            change_type=decision.changes_type,
            changes=decision.changes,
        )
    columns = len(decision.new)
    if decision.action == "heal":
        summary.healed.append(name)
        if decision.changes_type == INITIAL_LOAD:
            log.info(
                "Fixed table %s: Added schema and INITIAL_LOAD history (%d columns)", shown, columns
            )
        elif decision.version is not None:
            log.info(
                "Fixed table %s: Added schema (%d columns) as version %d (%s)",
                shown,
                columns,
                decision.version,
                decision.changes_type,
            )
        else:
            log.info("Fixed table %s: Added schema (%d columns); history unchanged", shown, columns)
    elif decision.action == "initial":
        summary.changed.append(ChangedTable(name, 1, INITIAL_LOAD))
        log.info("Added INITIAL_LOAD history for table %s (%d columns)", shown, columns)
    elif decision.action == "version":
        assert decision.version is not None and decision.changes_type is not None
        summary.changed.append(ChangedTable(name, decision.version, decision.changes_type))
        log.info(
            "Schema change in table %s: version %d (%s): %s",
            shown,
            decision.version,
            decision.changes_type,
            logs.safe("; ".join(_describe(c.to_json()) for c in decision.changes)),
        )


def _describe(change: dict[str, Any]) -> str:
    kind, column = change["type"], change["column"]
    before, after = change["before"], change["after"]
    if kind == "NEW COLUMN":
        return f"+{column} {after.get('full_type', '')}".rstrip()
    if kind == "DROP COLUMN":
        return f"-{column}"
    return f"{column} {kind.lower()} {before!r} -> {after!r}"
