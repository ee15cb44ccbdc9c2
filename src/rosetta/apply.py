"""Writing one sync's decisions into the store, table by table; nothing here reads a source.

Each table is written in its own savepoint, so a table whose write fails is recorded as failed
and the others go on; its webhook event is recorded in the same transaction. What was written
comes back as one :class:`Outcome` per decision, from which the sync builds its summary and log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rosetta.catalog.reader import CatalogTable
from rosetta.errors import RosettaError, first_line
from rosetta.provenance import Provenance
from rosetta.reconcile import Action, Decision, changes_json
from rosetta.schema.diff import INITIAL_LOAD
from rosetta.schema.model import SchemaJson
from rosetta.store.repository import QUERIES, Conn
from rosetta.webhooks import Recorder


@dataclass(frozen=True, slots=True)
class Outcome:
    """One decision and whether it was written: ``error`` is why the table failed."""

    decision: Decision
    error: str | None = None


ProvenanceOf = Callable[[Decision], Provenance]
"""The provenance of the version a decision writes."""


def apply(
    store: Conn,
    source_id: int,
    decisions: Sequence[Decision],
    events: Recorder,
    provenance: ProvenanceOf,
) -> list[Outcome]:
    """Write ``decisions`` (in a transaction the caller holds) and say what came of each.

    Tables that left are marked removed first, and renamed tables take their new names next, all
    in one statement, so that a name freed by one table (removed, or renamed away) is free for
    the table that takes it, two tables swapping names included."""
    removed = [d for d in decisions if d.action == Action.REMOVE]
    if removed:
        store.execute(QUERIES["mark_removed"], {"ids": [d.table_id for d in removed]})
        for d in removed:
            events.record("table.removed", d.schema_name, d.table_name, level="breaking")
    _rename(store, [d for d in decisions if d.renamed_from is not None])
    outcomes: list[Outcome] = []
    for decision in decisions:
        if decision.action in (Action.NONE, Action.REMOVE):
            continue
        if decision.action == Action.FAIL:
            assert decision.error is not None
            _record_failure(store, source_id, decision, decision.error)
            outcomes.append(Outcome(decision, decision.error))
            continue
        try:
            with store.transaction():
                _write(store, source_id, decision, events, provenance)
        except (psycopg.Error, RosettaError) as exc:
            if _store_lost(store):
                raise
            error = first_line(exc)
            _record_failure(store, source_id, decision, error)
            outcomes.append(Outcome(decision, error))
        else:
            outcomes.append(Outcome(decision))
    unchanged = [d for d in decisions if d.action == Action.NONE]
    # In the order of the decisions, which is the order the log reports them in.
    order = {id(d): i for i, d in enumerate(decisions)}
    outcomes.extend(Outcome(d) for d in unchanged + removed)
    outcomes.sort(key=lambda o: order[id(o.decision)])
    return outcomes


def _rename(store: Conn, renamed: list[Decision]) -> None:
    """Give renamed tables their new names in one statement (the live-name constraint is
    checked at its end). Should it fail, each table's own write renames it and fails alone."""
    if not renamed:
        return
    try:
        with store.transaction():
            store.execute(
                QUERIES["rename_tables"],
                {
                    "ids": [d.table_id for d in renamed],
                    "schema_names": [d.schema_name for d in renamed],
                    "table_names": [d.table_name for d in renamed],
                },
            )
    except psycopg.Error:
        if _store_lost(store):
            raise


def _record_failure(store: Conn, source_id: int, decision: Decision, error: str) -> None:
    """Mark the table failed (tracking a new one first), in its own savepoint."""
    table_id = decision.table_id
    try:
        with store.transaction():
            if table_id is None:
                assert decision.table is not None
                params = _table_params(
                    source_id=source_id, table=decision.table, schema=None, fingerprint=None
                )
                inserted = store.execute(QUERIES["insert_table"], params).fetchone()
                assert inserted is not None
                table_id = inserted[0]
            store.execute(QUERIES["set_table_error"], {"id": table_id, "error": error})
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
    *,
    source_id: int | None,
    table: CatalogTable,
    schema: SchemaJson | None,
    fingerprint: str | None,
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
        "row_filter": table.row_filter,
    }


def _write(
    store: Conn, source_id: int, decision: Decision, events: Recorder, provenance: ProvenanceOf
) -> None:
    table = decision.table
    assert table is not None
    origin = provenance(decision)
    if decision.table_id is None:
        _insert(store, source_id, table, decision, events, origin)
    else:
        _update(store, decision.table_id, table, decision, events, origin)


def _insert(
    store: Conn,
    source_id: int,
    table: CatalogTable,
    decision: Decision,
    events: Recorder,
    origin: Provenance,
) -> None:
    schema = decision.new if decision.action == Action.ADD else None
    row = store.execute(
        QUERIES["insert_table"],
        _table_params(
            source_id=source_id, table=table, schema=schema, fingerprint=table.fingerprint
        ),
    ).fetchone()
    assert row is not None
    if decision.action != Action.ADD:
        return
    _insert_history(store, row[0], decision, origin)
    events.record(
        "table.added",
        table.schema_name,
        table.table_name,
        version=1,
        change_type=INITIAL_LOAD,
        level="safe",
        provenance=origin.to_json(),
    )


def _insert_history(store: Conn, table_id: int, decision: Decision, origin: Provenance) -> None:
    store.execute(
        QUERIES["insert_history"],
        {
            "table_id": table_id,
            "version": decision.version,
            "changes_type": decision.changes_type,
            "old": Jsonb(decision.old),
            "new": Jsonb(decision.new),
            "changes": Jsonb(changes_json(decision.changes)),
            "detected_by": str(origin.detected_by),
            "lsn": origin.lsn,
            "changed_at": origin.changed_at,
            "provenance": Jsonb(origin.details) if origin.details is not None else None,
        },
    )


def _update(
    store: Conn,
    table_id: int,
    table: CatalogTable,
    decision: Decision,
    events: Recorder,
    origin: Provenance,
) -> None:
    params = _table_params(source_id=None, table=table, schema=None, fingerprint=table.fingerprint)
    params.update(id=table_id, healed=False)
    _record_row_filter_change(decision, events)
    if decision.action == Action.SKIP:
        store.execute(QUERIES["update_table"], params)
        return
    heal = decision.action == Action.HEAL
    params.update(schema_table=Jsonb(decision.new), healed=heal)
    store.execute(QUERIES["update_table"], params)
    if decision.version is not None and decision.changes_type is not None:
        _insert_history(store, table_id, decision, origin)
    if heal:
        events.record(
            "table.healed",
            decision.schema_name,
            decision.table_name,
            version=decision.version,
            change_type=decision.changes_type,
            changes=decision.changes,
            level=None,
            provenance=origin.to_json() if decision.version is not None else None,
        )
    elif decision.version is not None:
        events.record(
            "schema.changed",
            decision.schema_name,
            decision.table_name,
            version=decision.version,
            change_type=decision.changes_type,
            changes=decision.changes,
            provenance=origin.to_json(),
        )


def _record_row_filter_change(decision: Decision, events: Recorder) -> None:
    """A new row filter changes which rows the pipeline receives, though no column changed:
    adding or changing one can hold back rows a consumer expects (breaking), dropping one only
    lets more through (safe)."""
    if decision.row_filter_change is None:
        return
    before, after = decision.row_filter_change
    events.record(
        "table.row_filter_changed",
        decision.schema_name,
        decision.table_name,
        level="safe" if after is None else "breaking",
        row_filter=(before, after),
    )
