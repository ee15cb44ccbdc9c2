"""The rules of a sync, as pure functions: what to do with each table of a publication.

``plan`` compares the catalog with the tracking rows by fingerprint alone; ``decide`` then looks
at the stored schema and history of the few tables that need it. Neither does any I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rosetta.catalog.reader import CatalogTable, TableKey
from rosetta.schema.diff import INITIAL_LOAD, Change, classify, diff
from rosetta.schema.model import SchemaJson, TableSchema


@dataclass(frozen=True, slots=True)
class Tracked:
    """A tracking row, as much of it as the plan needs."""

    id: int
    schema_name: str
    table_name: str
    fingerprint: str | None
    status: str
    needs_schema: bool
    oid: int | None = None

    @property
    def key(self) -> TableKey:
        return (self.schema_name, self.table_name)


@dataclass(frozen=True, slots=True)
class Plan:
    new: list[CatalogTable]
    compare: list[tuple[Tracked, CatalogTable]]
    removed: list[Tracked]
    unchanged: int


def plan(
    catalog: Mapping[TableKey, CatalogTable], tracked: Iterable[Tracked], *, full: bool = False
) -> Plan:
    """Sort tables into new, to compare, removed and unchanged. ``full`` compares every table,
    not only those whose fingerprint moved (a safety net for what a fingerprint cannot see, such
    as a renamed type or sequence that a column's type or default names)."""
    new: list[CatalogTable] = []
    compare: list[tuple[Tracked, CatalogTable]] = []
    removed: list[Tracked] = []
    unchanged = 0
    seen: set[TableKey] = set()
    for row in tracked:
        seen.add(row.key)
        table = catalog.get(row.key)
        if table is None:
            if row.status != "removed":
                removed.append(row)
            continue
        has_columns = table.column_count > 0
        if (
            full
            or row.status != "tracked"
            or row.fingerprint != table.fingerprint
            or (row.needs_schema and has_columns)
        ):
            compare.append((row, table))
        else:
            unchanged += 1
    for key, table in catalog.items():
        if key not in seen:
            new.append(table)
    # In name order, so summaries and log lines read the same on every run.
    new.sort(key=lambda t: t.key)
    compare.sort(key=lambda pair: pair[0].key)
    removed.sort(key=lambda r: r.key)
    return Plan(new, compare, removed, unchanged)


Action = Literal["skip", "heal", "version", "initial", "refresh", "none"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to write for one table.

    - ``skip``: the table has no columns; only the catalog facts are kept.
    - ``heal``: the stored schema was NULL or ``{}``; save it, and write ``version`` when set.
    - ``initial``: a schema but no history; write ``INITIAL_LOAD`` v1.
    - ``version``: the schema changed; write ``version`` with ``changes``.
    - ``refresh``: nothing versioned changed; update the tracking row only.
    - ``none``: nothing at all changed (a full compare of an unchanged table).
    """

    action: Action
    version: int | None = None
    changes_type: str | None = None
    old: SchemaJson = field(default_factory=dict)
    new: SchemaJson = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    rejoined: bool = False


def decide(
    tracked: Tracked,
    table: CatalogTable,
    stored_schema: SchemaJson | None,
    last_version: int | None,
    last_schema: SchemaJson | None,
) -> Decision:
    current_json = table.schema_json()
    current = TableSchema.from_json(current_json)
    rejoined = tracked.status == "removed"
    # A new OID under the same name: the table was dropped and created again.
    recreated = tracked.oid is not None and tracked.oid != table.oid
    if current.is_empty:
        return Decision("skip", rejoined=rejoined)
    if not stored_schema:
        if last_version is None:
            return Decision("heal", 1, INITIAL_LOAD, {}, current_json, [], rejoined)
        return _versioned(
            "heal", last_version, last_schema, current, current_json, rejoined, recreated
        )
    if last_version is None:
        return Decision("initial", 1, INITIAL_LOAD, {}, current_json, [], rejoined)
    if (
        tracked.status == "tracked"
        and tracked.fingerprint == table.fingerprint
        and stored_schema == current_json
        and last_schema == current_json
    ):
        return Decision("none")
    return _versioned(
        "version", last_version, last_schema, current, current_json, rejoined, recreated
    )


def _versioned(
    action: Action,
    last_version: int,
    last_schema: SchemaJson | None,
    current: TableSchema,
    current_json: SchemaJson,
    rejoined: bool,
    recreated: bool,
) -> Decision:
    base = last_schema or {}
    changes = diff(TableSchema.from_json(base), current, by_name=recreated)
    if not changes:
        return Decision(
            "heal" if action == "heal" else "refresh", new=current_json, rejoined=rejoined
        )
    return Decision(
        action, last_version + 1, classify(changes), base, current_json, changes, rejoined
    )


def changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]
