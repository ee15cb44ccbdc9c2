"""`rosetta fix-schema-versions`: repair history damaged before the unique constraint existed.

Per table, in time order, the history is rebuilt as the chain of distinct schemas it recorded:
empty versions, phantom versions (old = new) and duplicates are dropped, a missing
``INITIAL_LOAD`` is restored at v1, each kept version's old schema and change list are
recomputed from the previous one, and versions are renumbered 1..n. Each table is repaired in
its own transaction. Tables with a NULL or ``{}`` schema are then healed from their source, and
the unique constraint on ``(table_metadata_list_id, version_schema)`` is added if missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from rosetta import sqlfile
from rosetta.errors import ConflictError
from rosetta.schema.diff import INITIAL_LOAD, classify, diff
from rosetta.schema.model import SchemaJson, TableSchema, display_name
from rosetta.store.repository import QUERIES as STORE_QUERIES
from rosetta.store.repository import Conn
from rosetta.uow import map_store_errors

QUERIES = sqlfile.Queries("rosetta.store", "repair.sql")


@dataclass(frozen=True)
class Version:
    """One history row as it should be. ``id`` None: a row to insert."""

    id: int | None
    version: int
    changes_type: str
    old: SchemaJson
    new: SchemaJson
    changes: list[dict[str, Any]]
    created_at: datetime


@dataclass(frozen=True)
class HistoryRow:
    """One stored history row, as ``history_rows`` reads it (in time order)."""

    id: int
    version_schema: int
    changes_type: str
    schema_table_old: SchemaJson | None
    schema_table_new: SchemaJson | None
    changes: list[dict[str, Any]] | None
    created_at: datetime


@dataclass(frozen=True)
class Rebuilt:
    """A table's history as it should be, and what the rebuild dropped or rewrote."""

    versions: tuple[Version, ...] = ()
    rows_before: int = 0
    dropped_empty: int = 0
    dropped_phantom: int = 0
    dropped_duplicate: int = 0
    initial_restored: bool = False
    rewritten: int = 0
    delete_ids: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.delete_ids or self.rewritten or self.initial_restored)

    def describe(self) -> str:
        parts = []
        if self.dropped_empty:
            parts.append(f"{self.dropped_empty} empty")
        if self.dropped_phantom:
            parts.append(f"{self.dropped_phantom} phantom (old = new)")
        if self.dropped_duplicate:
            parts.append(f"{self.dropped_duplicate} duplicate")
        text = f"{self.rows_before} rows -> {len(self.versions)} versions"
        if parts:
            text += f"; dropped {', '.join(parts)}"
        if self.initial_restored:
            text += "; INITIAL_LOAD restored at v1"
        if self.rewritten:
            text += f"; {self.rewritten} renumbered or corrected"
        return text


@dataclass
class TableRepair:
    table_id: int
    source: str
    table: str
    history: Rebuilt = field(default_factory=Rebuilt)
    needs_schema: bool = False

    @property
    def versions(self) -> tuple[Version, ...]:
        return self.history.versions

    @property
    def changed(self) -> bool:
        return self.history.changed

    def describe(self) -> str:
        return f"{self.source}/{self.table}: {self.history.describe()}"


@dataclass
class RepairReport:
    tables: list[TableRepair] = field(default_factory=list)
    constraint_missing: bool = False
    constraint_error: str | None = None

    @property
    def repaired(self) -> list[TableRepair]:
        return [t for t in self.tables if t.changed]


def rebuild(rows: Sequence[HistoryRow]) -> Rebuilt:
    """The versions a table's history ``rows`` (in time order) should be. Pure."""
    dropped_empty = dropped_phantom = dropped_duplicate = rewritten = 0
    initial_restored = False
    delete_ids: list[int] = []
    prev: SchemaJson = {}
    kept: list[Version] = []
    seen_versions: set[int] = set()
    for row in rows:
        new: SchemaJson = row.schema_table_new or {}
        old: SchemaJson = row.schema_table_old or {}
        number = row.version_schema
        duplicate = number in seen_versions
        seen_versions.add(number)
        if not new:
            dropped_empty += 1
            delete_ids.append(row.id)
            continue
        if not kept and old and row.changes_type != INITIAL_LOAD and old != new:
            # The first recorded row is a change: its starting point is the lost INITIAL_LOAD.
            kept.append(Version(None, 1, INITIAL_LOAD, {}, old, [], row.created_at))
            initial_restored = True
            prev = old
        if kept:
            changes = diff(TableSchema.from_json(prev), TableSchema.from_json(new))
            if not changes:
                if duplicate:
                    dropped_duplicate += 1
                else:
                    dropped_phantom += 1
                delete_ids.append(row.id)
                continue
            version = Version(
                row.id,
                len(kept) + 1,
                classify(changes),
                prev,
                new,
                [c.to_json() for c in changes],
                row.created_at,
            )
        else:
            version = Version(row.id, 1, INITIAL_LOAD, {}, new, [], row.created_at)
        kept.append(version)
        prev = new
        if (
            row.version_schema != version.version
            or row.changes_type != version.changes_type
            or (row.schema_table_old or {}) != version.old
            or row.schema_table_new != version.new
            or (row.changes or []) != version.changes
        ):
            rewritten += 1
    return Rebuilt(
        tuple(kept),
        len(rows),
        dropped_empty,
        dropped_phantom,
        dropped_duplicate,
        initial_restored,
        rewritten,
        tuple(delete_ids),
    )


def history_rows(conn: Conn, table_id: int) -> list[HistoryRow]:
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        cur.execute(QUERIES["history_rows"], {"table_id": table_id})
        return cur.fetchall()


def plan(conn: Conn, source_id: int | None = None) -> RepairReport:
    """What a repair would change; touches nothing."""
    report = RepairReport()
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["repair_tables"], {"source_id": source_id})
        tables = cur.fetchall()
        for t in tables:
            repair = TableRepair(
                t["id"],
                t["source_name"],
                display_name(t["schema_name"], t["table_name"]),
                needs_schema=t["needs_schema"],
            )
            repair.history = rebuild(history_rows(conn, t["id"]))
            report.tables.append(repair)
    row = conn.execute(QUERIES["has_version_constraint"]).fetchone()
    report.constraint_missing = not (row and row[0])
    return report


def apply_table(conn: Conn, source_id: int, repair: TableRepair) -> None:
    """Rewrite one table's history in one transaction, under the source's lock.

    The history is planned again under the lock: when a sync changed it since ``repair`` was
    planned, ``repair`` is updated in place to the repair of the history as it is now, and that
    is what is written (so the report, and the healing that follows, describe what was done).
    """
    with conn.transaction():
        conn.execute(STORE_QUERIES["lock_source"], {"id": source_id})
        fresh = rebuild(history_rows(conn, repair.table_id))
        if fresh.versions != repair.versions or fresh.delete_ids != repair.history.delete_ids:
            repair.history = fresh
        conn.execute(STORE_QUERIES["allow_history_maintenance"])
        for row_id in repair.history.delete_ids:
            conn.execute(QUERIES["delete_history_row"], {"id": row_id})
        for v in repair.versions:
            if v.id is not None:
                conn.execute(QUERIES["park_history_row"], {"id": v.id})
        for v in repair.versions:
            params = {
                "version": v.version,
                "changes_type": v.changes_type,
                "old": Jsonb(v.old),
                "new": Jsonb(v.new),
                "changes": Jsonb(v.changes),
            }
            if v.id is None:
                conn.execute(
                    QUERIES["insert_repaired_row"],
                    dict(params, table_id=repair.table_id, created_at=v.created_at),
                )
            else:
                conn.execute(QUERIES["rewrite_history_row"], dict(params, id=v.id))
        conn.execute(QUERIES["forget_fingerprint"], {"id": repair.table_id})


def add_constraint(conn: Conn, report: RepairReport) -> None:
    duplicates = (
        "duplicate versions remain in tables not repaired in this run: run "
        "`rosetta fix-schema-versions` without --source"
    )
    try:
        with map_store_errors(conflict=duplicates), conn.transaction():
            conn.execute(QUERIES["add_version_constraint"])
    except ConflictError as exc:
        report.constraint_error = exc.message
