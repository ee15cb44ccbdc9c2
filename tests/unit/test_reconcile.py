"""Pure unit tests of a sync's rules: which tables a plan reads, and what is decided for each."""

from __future__ import annotations

import json
from dataclasses import replace

from rosetta.catalog.reader import CatalogTable, TableKey
from rosetta.reconcile import (
    Action,
    Decision,
    Plan,
    StoredDetails,
    TableStatus,
    Tracked,
    decide,
    plan,
)
from rosetta.schema.diff import (
    DROP_COLUMN,
    INITIAL_LOAD,
    MULTIPLE_CHANGES,
    NEW_COLUMN,
    RENAME_COLUMN,
    RENAME_TABLE,
)
from rosetta.schema.model import SchemaJson
from tests.unit.schema_json import column, columns

ID_NAME = columns(column("id", 1), column("name", 2, "text"))


def table(
    name: str = "orders",
    cols: SchemaJson | None = ID_NAME,
    *,
    fingerprint: str = "f1",
    oid: int = 100,
    read_error: str | None = None,
) -> CatalogTable:
    """A catalog table as the sync reads it; ``cols=None`` when its columns were not read."""
    return CatalogTable(
        "public",
        name,
        oid,
        "r",
        "d",
        True,
        len(cols or {}),
        fingerprint,
        json.dumps(cols) if cols is not None else None,
        read_error,
    )


def tracked(
    name: str = "orders",
    *,
    fingerprint: str | None = "f1",
    status: TableStatus = TableStatus.TRACKED,
    needs_schema: bool = False,
    oid: int | None = 100,
    id: int = 1,
) -> Tracked:
    return Tracked(id, "public", name, fingerprint, status, needs_schema, oid)


def stored(
    schema: SchemaJson | None = ID_NAME,
    last_version: int | None = 1,
    last_schema: SchemaJson | None = ID_NAME,
    *,
    id: int = 1,
) -> StoredDetails:
    return StoredDetails(id, schema, last_version, last_schema)


def catalog(*tables: CatalogTable) -> dict[TableKey, CatalogTable]:
    return {t.key: t for t in tables}


def decide_one(row: Tracked, current: CatalogTable, details: StoredDetails) -> Decision:
    """The decision for one compared table."""
    (decision,) = decide(Plan([], [(row, current)], [], 0), catalog(current), {row.id: details})
    return decision


def test_a_new_table_is_added_with_initial_load() -> None:
    the_plan = plan(catalog(table()), [])
    (decision,) = decide(the_plan, catalog(table()), {})
    assert the_plan.new == [table()]
    assert decision.action == Action.ADD
    assert (decision.version, decision.changes_type, decision.new) == (1, INITIAL_LOAD, ID_NAME)


def test_a_new_table_without_columns_is_skipped() -> None:
    empty = table(cols={})
    (decision,) = decide(plan(catalog(empty), []), catalog(empty), {})
    assert decision.action == Action.SKIP


def test_a_tracked_table_with_a_null_schema_is_compared_and_healed() -> None:
    row = tracked(needs_schema=True)
    the_plan = plan(catalog(table()), [row])
    decision = decide_one(row, table(), stored(None, None, None))
    assert [r for r, _ in the_plan.compare] == [row]
    assert decision.action == Action.HEAL
    assert (decision.version, decision.changes_type) == (1, INITIAL_LOAD)


def test_a_tracked_table_with_an_empty_schema_and_history_heals_without_a_version() -> None:
    decision = decide_one(tracked(needs_schema=True), table(), stored({}, 1, ID_NAME))
    assert decision.action == Action.HEAL
    assert decision.version is None
    assert decision.new == ID_NAME


def test_a_changed_fingerprint_is_compared() -> None:
    the_plan = plan(catalog(table(fingerprint="f2")), [tracked(fingerprint="f1")])
    assert len(the_plan.compare) == 1
    assert the_plan.unchanged == 0


def test_an_unchanged_fingerprint_is_not_read() -> None:
    the_plan = plan(catalog(table()), [tracked()])
    assert the_plan.to_read == []
    assert the_plan.unchanged == 1
    assert decide(the_plan, {}, {}) == []


def test_a_new_column_is_a_new_version() -> None:
    wider = columns(column("id", 1), column("name", 2, "text"), column("note", 3, "text"))
    decision = decide_one(tracked(fingerprint="f1"), table(cols=wider, fingerprint="f2"), stored())
    assert decision.action == Action.VERSION
    assert (decision.version, decision.changes_type) == (2, NEW_COLUMN)
    assert (decision.old, decision.new) == (ID_NAME, wider)


def test_a_table_that_left_the_publication_is_removed() -> None:
    row = tracked()
    the_plan = plan({}, [row])
    (decision,) = decide(the_plan, {}, {})
    assert decision.action == Action.REMOVE
    assert decision.table_id == row.id


def test_a_table_already_removed_is_left_alone() -> None:
    the_plan = plan({}, [tracked(status=TableStatus.REMOVED)])
    assert the_plan.removed == []


def test_a_table_back_in_the_publication_is_rejoined() -> None:
    row = tracked(status=TableStatus.REMOVED)
    the_plan = plan(catalog(table()), [row])
    decision = decide_one(row, table(), stored())
    assert len(the_plan.compare) == 1
    assert decision.rejoined
    assert decision.action == Action.REFRESH


def test_a_tracked_table_whose_columns_are_gone_is_a_version_without_columns() -> None:
    decision = decide_one(tracked(fingerprint="f1"), table(cols={}, fingerprint="f2"), stored())
    assert decision.action == Action.VERSION
    assert decision.new == {} and decision.version == 2
    assert [c.kind for c in decision.changes] == ["DROP COLUMN", "DROP COLUMN"]


def test_a_table_without_columns_that_gains_one_is_a_new_column_not_a_heal() -> None:
    gone = stored({}, 2, {})
    decision = decide_one(tracked(fingerprint="f1", needs_schema=True), table(), gone)
    assert decision.action == Action.VERSION
    assert decision.version == 3 and decision.changes_type == "NEW COLUMN"
    assert {c.kind for c in decision.changes} == {"NEW COLUMN"}
    # Still without columns: nothing to write beyond the catalog facts.
    empty = decide_one(tracked(fingerprint="f1", needs_schema=True), table(cols={}), gone)
    assert empty.action == Action.SKIP


def test_a_full_compare_reads_every_table() -> None:
    the_plan = plan(catalog(table()), [tracked()], full=True)
    assert the_plan.to_read == [table()]


def test_a_full_compare_of_an_unchanged_table_writes_nothing() -> None:
    assert decide_one(tracked(), table(), stored()).action == Action.NONE


def test_a_table_recreated_with_a_new_oid_is_compared_by_column_name() -> None:
    # The same columns under new attnums: by attnum it would read as a rename.
    renumbered = columns(column("id", 1), column("name", 3, "text"))
    decision = decide_one(tracked(oid=100), table(cols=renumbered, oid=200), stored())
    assert decision.action == Action.REFRESH
    same_oid = decide_one(
        tracked(oid=100),
        table(cols=columns(column("id", 1), column("label", 2, "text")), fingerprint="f2"),
        stored(),
    )
    assert same_oid.changes_type == RENAME_COLUMN


def test_a_recreated_table_without_a_column_drops_it_by_name() -> None:
    decision = decide_one(tracked(oid=100), table(cols=columns(column("id", 1)), oid=200), stored())
    assert (decision.action, decision.changes_type) == (Action.VERSION, DROP_COLUMN)


def test_a_locked_table_fails_with_its_reason() -> None:
    locked = replace(table(cols=None), read_error="canceling statement due to lock timeout")
    decision = decide_one(tracked(fingerprint="f0"), locked, stored())
    assert decision.action == Action.FAIL
    assert decision.error == "canceling statement due to lock timeout"


def test_a_locked_new_table_fails_with_its_reason() -> None:
    locked = table(cols=None, read_error="lock timeout")
    (decision,) = decide(plan(catalog(locked), []), catalog(locked), {})
    assert (decision.action, decision.error) == (Action.FAIL, "lock timeout")


def test_decisions_come_new_then_compared_then_removed() -> None:
    current = catalog(table("b_new", oid=2), table("a_changed", fingerprint="f2"))
    rows = [tracked("a_changed", id=1), tracked("c_gone", id=2, oid=3)]
    the_plan = plan(current, rows)
    decisions = decide(the_plan, current, {1: stored(id=1)})
    assert [(d.table_name, d.action) for d in decisions] == [
        ("b_new", Action.ADD),
        ("a_changed", Action.REFRESH),
        ("c_gone", Action.REMOVE),
    ]


def test_a_new_row_filter_is_reported_beside_the_columns() -> None:
    filtered = replace(table(fingerprint="f2"), row_filter="(region = 'eu'::text)")
    decision = decide_one(tracked(), filtered, stored(with_carried()))
    assert decision.action == Action.REFRESH
    assert decision.row_filter_change == (None, "(region = 'eu'::text)")
    assert decision.new == filtered.schema_json()
    same = decide_one(
        replace(tracked(), row_filter="(region = 'eu'::text)"), filtered, stored(with_carried())
    )
    assert same.row_filter_change is None


def test_a_row_filter_first_read_from_a_schema_stored_before_filters_is_not_a_change() -> None:
    filtered = replace(table(fingerprint="f2"), row_filter="(region = 'eu'::text)")
    assert decide_one(tracked(), filtered, stored()).row_filter_change is None


def with_carried() -> SchemaJson:
    """``ID_NAME`` as the reader stores it now, saying what the stream carries."""
    return {name: {**col, "carried": True} for name, col in ID_NAME.items()}


# --- a table is its OID ------------------------------------------------------------------------


def test_a_renamed_table_keeps_its_row_and_records_the_rename() -> None:
    current = catalog(table("purchases", fingerprint="f1"))
    rows = [tracked("orders", oid=100)]
    the_plan = plan(current, rows)
    assert the_plan.new == [] and the_plan.removed == []
    three = stored(with_carried(), 3, with_carried())
    [decision] = decide(the_plan, current, {1: three})
    assert (decision.action, decision.table_name) == (Action.VERSION, "purchases")
    assert decision.renamed_from == ("public", "orders")
    assert (decision.version, decision.changes_type) == (4, RENAME_TABLE)
    assert [c.to_json() for c in decision.changes] == [
        {"type": RENAME_TABLE, "column": "", "before": "public.orders", "after": "public.purchases"}
    ]


def test_a_rename_with_a_column_change_is_one_version_of_both() -> None:
    renamed = table(
        "purchases", columns(column("id", 1), column("name", 2, "text"), column("note", 3, "text"))
    )
    [decision] = decide(plan(catalog(renamed), [tracked()]), catalog(renamed), {1: stored()})
    assert decision.changes_type == MULTIPLE_CHANGES
    assert [c.kind for c in decision.changes] == [RENAME_TABLE, NEW_COLUMN]


def test_a_table_dropped_and_created_again_under_its_name_continues_its_row() -> None:
    current = catalog(table("orders", oid=200, fingerprint="f9"))
    the_plan = plan(current, [tracked("orders", oid=100)])
    assert [(row.id, t.oid) for row, t in the_plan.compare] == [(1, 200)]
    assert the_plan.new == [] and the_plan.removed == []


def test_a_rename_onto_a_dropped_tables_name_removes_that_one() -> None:
    # DROP TABLE purchases; ALTER TABLE orders RENAME TO purchases;
    current = catalog(table("purchases", oid=100))
    rows = [tracked("orders", oid=100, id=1), tracked("purchases", oid=200, id=2)]
    the_plan = plan(current, rows)
    assert [(row.id, t.table_name) for row, t in the_plan.compare] == [(1, "purchases")]
    assert [row.id for row in the_plan.removed] == [2]


def test_two_tables_swapping_names_each_keep_their_row() -> None:
    current = catalog(table("a", oid=200), table("b", oid=100))
    rows = [tracked("a", oid=100, id=1), tracked("b", oid=200, id=2)]
    the_plan = plan(current, rows)
    assert sorted((row.id, t.table_name) for row, t in the_plan.compare) == [(1, "b"), (2, "a")]


def test_a_removed_row_never_takes_a_table_from_its_live_row() -> None:
    # An old row left behind (removed) holding the same OID as the live one.
    current = catalog(table("purchases", oid=100))
    rows = [
        tracked("orders", oid=100, id=1, status=TableStatus.REMOVED),
        tracked("purchases", oid=100, id=2),
    ]
    the_plan = plan(current, rows)
    assert the_plan.unchanged == 1 and the_plan.compare == [] and the_plan.removed == []
