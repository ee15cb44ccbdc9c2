"""The rules of a sync, as pure functions: what to do with each table of a publication.

``plan`` compares the catalog with the tracking rows by fingerprint alone, to choose the few
tables whose columns and stored details must be read; ``decide`` then turns what was read into
one :class:`Decision` per table, in the order the sync writes and reports them. Neither does any
I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from rosetta.catalog.reader import CatalogTable, TableKey
from rosetta.schema.diff import INITIAL_LOAD, RENAME_TABLE, Change, classify, diff
from rosetta.schema.model import SchemaJson, TableSchema, display_name


class TableStatus(StrEnum):
    """A tracking row's status, as stored in ``table_metadata_list.status``."""

    TRACKED = "tracked"
    ERROR = "error"
    REMOVED = "removed"


class SyncStatus(StrEnum):
    """A sync's outcome, as stored in ``sources.last_sync_status``."""

    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    PUBLICATION_MISSING = "publication_missing"


@dataclass(frozen=True, slots=True)
class Tracked:
    """A tracking row, as much of it as the plan needs (the ``tracked_state`` query's row)."""

    id: int
    schema_name: str
    table_name: str
    fingerprint: str | None
    status: TableStatus
    needs_schema: bool
    oid: int | None = None
    row_filter: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", TableStatus(self.status))

    @property
    def key(self) -> TableKey:
        return (self.schema_name, self.table_name)


@dataclass(frozen=True, slots=True)
class StoredDetails:
    """A tracked table's stored schema and latest version (the ``table_details`` query's row)."""

    id: int
    schema_table: SchemaJson | None
    last_version: int | None
    last_schema: SchemaJson | None


@dataclass(frozen=True, slots=True)
class Plan:
    new: list[CatalogTable]
    compare: list[tuple[Tracked, CatalogTable]]
    removed: list[Tracked]
    unchanged: int

    @property
    def to_read(self) -> list[CatalogTable]:
        """The tables whose columns the sync reads from the source."""
        return self.new + [table for _, table in self.compare]


def plan(
    catalog: Mapping[TableKey, CatalogTable], tracked: Iterable[Tracked], *, full: bool = False
) -> Plan:
    """Sort tables into new, to compare, removed and unchanged. ``full`` compares every table,
    not only those whose fingerprint moved (a safety net for what a fingerprint cannot see, such
    as a renamed type or sequence that a column's type or default names).

    A table is its OID: a tracking row first finds its table by OID, wherever the table is now
    named (a rename or ``SET SCHEMA`` keeps the row and its history); a row whose OID is gone
    then finds a table of its name that no row claims by OID (the table was dropped and created
    again: it continues the row). Live rows choose before removed ones, so an old removed row
    never takes a table from the row that tracks it."""
    rows = sorted(tracked, key=lambda r: (r.status == TableStatus.REMOVED, -r.id))
    by_oid = {table.oid: table for table in catalog.values()}
    matched: dict[TableKey, Tracked] = {}
    rest: list[Tracked] = []
    for row in rows:
        table = by_oid.get(row.oid) if row.oid is not None else None
        if table is not None and table.key not in matched:
            matched[table.key] = row
        else:
            rest.append(row)
    removed: list[Tracked] = []
    for row in rest:
        table = catalog.get(row.key)
        if table is not None and table.key not in matched:
            matched[table.key] = row
        elif row.status != TableStatus.REMOVED:
            removed.append(row)
    new: list[CatalogTable] = []
    compare: list[tuple[Tracked, CatalogTable]] = []
    unchanged = 0
    for key, table in catalog.items():
        found = matched.get(key)
        if found is None:
            new.append(table)
        elif (
            full
            or found.status != TableStatus.TRACKED
            or found.key != table.key
            or found.fingerprint != table.fingerprint
            or (found.needs_schema and table.column_count > 0)
        ):
            compare.append((found, table))
        else:
            unchanged += 1
    # In name order, so summaries and log lines read the same on every run.
    new.sort(key=lambda t: t.key)
    compare.sort(key=lambda pair: pair[1].key)
    removed.sort(key=lambda r: r.key)
    return Plan(new, compare, removed, unchanged)


class Action(StrEnum):
    """What to write for one table.

    - ``add``: a new table; track it with ``INITIAL_LOAD`` v1.
    - ``skip``: the table has no columns and none were ever recorded; only the catalog facts are
      kept (a new one is tracked). A tracked table that loses its last column is a ``version``
      whose schema is ``{}``: it is then "without columns", not "missing a schema".
    - ``heal``: the stored schema was NULL or ``{}`` (and not because the table's latest version
      says it lost its columns); save it, and write ``version`` when set.
    - ``initial``: a schema but no history; write ``INITIAL_LOAD`` v1.
    - ``version``: the schema changed; write ``version`` with ``changes``.
    - ``refresh``: nothing versioned changed; update the tracking row only.
    - ``none``: nothing at all changed (a full compare of an unchanged table).
    - ``fail``: the table's columns could not be read (``error`` says why); mark it failed.
    - ``remove``: the table left the publication; mark it removed, history kept.
    """

    ADD = "add"
    SKIP = "skip"
    HEAL = "heal"
    INITIAL = "initial"
    VERSION = "version"
    REFRESH = "refresh"
    NONE = "none"
    FAIL = "fail"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write for one table: ``table`` is the catalog's (absent for ``remove``),
    ``tracked`` the tracking row (absent for a new table)."""

    action: Action
    schema_name: str
    table_name: str
    table: CatalogTable | None = None
    tracked: Tracked | None = None
    version: int | None = None
    changes_type: str | None = None
    old: SchemaJson = field(default_factory=dict)
    new: SchemaJson = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    rejoined: bool = False
    error: str | None = None
    row_filter_change: tuple[str | None, str | None] | None = None
    renamed_from: TableKey | None = None

    @property
    def name(self) -> str:
        return display_name(self.schema_name, self.table_name)

    @property
    def table_id(self) -> int | None:
        return self.tracked.id if self.tracked is not None else None


def decide(
    the_plan: Plan,
    read: Mapping[TableKey, CatalogTable],
    details: Mapping[int, StoredDetails],
) -> list[Decision]:
    """One decision per new, compared and removed table, in that order. ``read`` holds the
    plan's tables with their columns (or their ``read_error``); ``details`` the stored schema
    and latest version of each compared table, by tracking row id."""
    decisions = [decide_new(read[t.key]) for t in the_plan.new]
    for row, table in the_plan.compare:
        decisions.append(decide_tracked(row, read[table.key], details[row.id]))
    decisions.extend(
        Decision(Action.REMOVE, row.schema_name, row.table_name, tracked=row)
        for row in the_plan.removed
    )
    return decisions


def decide_new(table: CatalogTable) -> Decision:
    """A table the store does not track yet."""
    name = (table.schema_name, table.table_name)
    if table.read_error is not None:
        return Decision(Action.FAIL, *name, table=table, error=table.read_error)
    current = table.schema_json()
    if not current:
        return Decision(Action.SKIP, *name, table=table)
    return Decision(
        Action.ADD, *name, table=table, version=1, changes_type=INITIAL_LOAD, new=current
    )


def decide_tracked(tracked: Tracked, table: CatalogTable, stored: StoredDetails) -> Decision:
    """A tracked table whose fingerprint moved (or any, in a full compare)."""
    decision = _renamed(_decide_columns(tracked, table, stored), tracked, table, stored)
    if decision.action == Action.FAIL or tracked.row_filter == table.row_filter:
        return decision
    # A schema stored before Rosetta read row filters had none recorded: the first read records
    # the filter without calling it a change.
    if stored.schema_table and not TableSchema.from_json(stored.schema_table).knows_carried:
        return decision
    if decision.action == Action.NONE:
        decision = replace(decision, action=Action.REFRESH, new=table.schema_json())
    return replace(decision, row_filter_change=(tracked.row_filter, table.row_filter))


def _renamed(
    decision: Decision, tracked: Tracked, table: CatalogTable, stored: StoredDetails
) -> Decision:
    """``decision`` for a table found by its OID under another name (``ALTER TABLE ... RENAME
    TO`` or ``SET SCHEMA``): the row takes the new name, and a table with a history records the
    rename as a version (with whatever its columns did meanwhile). A table that failed keeps
    its row's name until it is read."""
    if tracked.key == table.key or decision.action == Action.FAIL:
        return decision
    renamed = replace(
        decision,
        schema_name=table.schema_name,
        table_name=table.table_name,
        renamed_from=tracked.key,
    )
    last_version = stored.last_version
    if last_version is None or decision.changes_type == INITIAL_LOAD:
        return renamed
    rename = Change(
        RENAME_TABLE,
        "",
        f"{tracked.schema_name}.{tracked.table_name}",
        f"{table.schema_name}.{table.table_name}",
    )
    changes = [rename, *decision.changes]
    if decision.version is not None:
        return replace(renamed, changes=changes, changes_type=classify(changes))
    return replace(
        renamed,
        action=Action.HEAL if decision.action == Action.HEAL else Action.VERSION,
        version=last_version + 1,
        changes_type=RENAME_TABLE,
        old=stored.last_schema or {},
        new=table.schema_json(),
        changes=[rename],
    )


def _decide_columns(tracked: Tracked, table: CatalogTable, stored: StoredDetails) -> Decision:
    name = (tracked.schema_name, tracked.table_name)
    rejoined = tracked.status == TableStatus.REMOVED
    if table.read_error is not None:
        return Decision(
            Action.FAIL, *name, table, tracked, rejoined=rejoined, error=table.read_error
        )
    current_json = table.schema_json()
    current = TableSchema.from_json(current_json)
    # A new OID under the same name: the table was dropped and created again.
    recreated = tracked.oid is not None and tracked.oid != table.oid
    last_version, last_schema = stored.last_version, stored.last_schema
    # The latest version recorded that the table has no columns left (not a missing schema).
    lost_columns = last_version is not None and last_schema is not None and not last_schema
    if current.is_empty:
        if last_version is None or lost_columns:
            if stored.schema_table:
                # Columns saved without a history, all gone: the schema is missing again.
                return Decision(Action.REFRESH, *name, table, tracked, rejoined=rejoined)
            return Decision(Action.SKIP, *name, table, tracked, rejoined=rejoined)
        # The table lost its last column: a version whose schema is {} says so.
        return _versioned(
            Action.VERSION, tracked, table, last_version, last_schema, {}, rejoined, recreated
        )
    if not stored.schema_table and not lost_columns:
        if last_version is None:
            return Decision(
                Action.HEAL, *name, table, tracked, 1, INITIAL_LOAD, {}, current_json, [], rejoined
            )
        return _versioned(
            Action.HEAL,
            tracked,
            table,
            last_version,
            last_schema,
            current_json,
            rejoined,
            recreated,
        )
    if last_version is None:
        return Decision(
            Action.INITIAL, *name, table, tracked, 1, INITIAL_LOAD, {}, current_json, [], rejoined
        )
    if (
        tracked.status == TableStatus.TRACKED
        and tracked.fingerprint == table.fingerprint
        and stored.schema_table == current_json
        and last_schema == current_json
    ):
        return Decision(Action.NONE, *name, table, tracked)
    return _versioned(
        Action.VERSION, tracked, table, last_version, last_schema, current_json, rejoined, recreated
    )


def _versioned(
    action: Action,
    tracked: Tracked,
    table: CatalogTable,
    last_version: int,
    last_schema: SchemaJson | None,
    current_json: SchemaJson,
    rejoined: bool,
    recreated: bool,
) -> Decision:
    name = (tracked.schema_name, tracked.table_name)
    base = last_schema or {}
    changes = diff(
        TableSchema.from_json(base), TableSchema.from_json(current_json), by_name=recreated
    )
    if not changes:
        return Decision(
            Action.HEAL if action == Action.HEAL else Action.REFRESH,
            *name,
            table,
            tracked,
            new=current_json,
            rejoined=rejoined,
        )
    return Decision(
        action,
        *name,
        table,
        tracked,
        last_version + 1,
        classify(changes),
        base,
        current_json,
        changes,
        rejoined,
    )


def changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]
