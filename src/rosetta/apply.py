"""Writing one sync's decisions into the store, table by table.

Each table is applied in its own savepoint, so a failing table is recorded and the others go
on; each write comes with its log line (the user's document's wording) and its webhook event,
recorded in the same transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from rosetta import logs
from rosetta.catalog.reader import CatalogSnapshot, CatalogTable
from rosetta.errors import RosettaError, first_line
from rosetta.reconcile import Decision, Tracked, changes_json, decide, plan
from rosetta.schema.diff import INITIAL_LOAD
from rosetta.schema.model import display_name
from rosetta.store.repository import Conn, Source, q
from rosetta.summary import ChangedTable, SyncSummary
from rosetta.webhooks import Recorder

if TYPE_CHECKING:
    from rosetta.sync import SourceReader


Log = Any  # logging.LoggerAdapter; kept loose to avoid importing logging types everywhere


def apply_plan(
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
        error = first_line(exc)
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
