"""Reading the registry: pages of tables, a table's columns at any version, and diffs.

What the API and the web pages show, so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.rows import dict_row

from rosetta.errors import InvalidInputError, NotFoundError
from rosetta.schema.diff import Change, diff
from rosetta.schema.model import Column, TableSchema, display_name
from rosetta.sqlfile import Queries
from rosetta.store import repository
from rosetta.store.repository import QUERIES, Conn

TIMELINE_QUERIES = Queries("rosetta.store", "timeline.sql")

STATUSES = ("tracked", "removed", "error", "healed", "no_select")
SchemaState = Literal["recorded", "missing", "no_columns"]
SCHEMA_STATES: tuple[SchemaState, ...] = ("recorded", "missing", "no_columns")


@dataclass(frozen=True)
class TablesPage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def tables_page(
    conn: Conn,
    source_id: int,
    *,
    name: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> TablesPage:
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"invalid status {status!r}: use one of {', '.join(STATUSES)}")
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidInputError("invalid page: limit must be 1-1000 and offset >= 0")
    params = {
        "source_id": source_id,
        "q": name or None,
        "status": status,
        "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["tables_page"], params)
        items = cur.fetchall()
    row = conn.execute(QUERIES["tables_count"], params).fetchone()
    for item in items:
        item["name"] = display_name(item["schema_name"], item["table_name"])
        item["badge"] = badge(item)
    with_schema_facts(conn, items)
    return TablesPage(items, int(row[0]) if row else 0, limit, offset)


def source_tables(conn: Conn, source_id: int) -> list[dict[str, Any]]:
    """Every table of a source, with its latest version, row filter and schema state."""
    items = repository.list_tables(conn, source_id)
    for item in items:
        item["name"] = display_name(item["schema_name"], item["table_name"])
    return with_schema_facts(conn, items)


def schema_state(columns: int, latest_version_columns: int | None) -> SchemaState:
    """Whether a table's current schema (of ``columns`` columns) is ``recorded``; ``no_columns``
    when it is empty because every column was dropped (its latest version records ``{}``);
    ``missing`` when it is empty otherwise (no version yet, or a latest version with columns):
    the next sync fills it.

    ``latest_version_columns``: how many columns the table's latest version records, ``None``
    when it has no version."""
    if columns:
        return "recorded"
    if latest_version_columns == 0:
        return "no_columns"
    return "missing"


def with_schema_facts(conn: Conn, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds ``row_filter`` and ``schema_state`` to rows of tables (each with ``id`` and
    ``column_count``, the number of columns of its current schema)."""
    if not items:
        return items
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["table_schema_facts"], {"ids": [i["id"] for i in items]})
        facts = {r["id"]: r for r in cur.fetchall()}
    for item in items:
        fact = facts.get(item["id"], {})
        item["row_filter"] = fact.get("row_filter")
        item["schema_state"] = schema_state(
            int(item["column_count"]), fact.get("latest_version_columns")
        )
    return items


def badge(item: dict[str, Any]) -> str:
    """The one word a table's status is shown as."""
    if item["status"] in ("removed", "error"):
        return str(item["status"])
    if item.get("has_select_privilege") is False:
        return "no SELECT grant"
    if item.get("healed_at") is not None:
        return "healed"
    return "tracked"


def status_counts(conn: Conn, source_id: int) -> dict[str, int]:
    return {
        r[0]: int(r[1]) for r in conn.execute(QUERIES["status_counts"], {"source_id": source_id})
    }


def columns(schema_json: dict[str, Any] | None) -> list[Column]:
    return list(TableSchema.from_json(schema_json).columns)


def table(conn: Conn, table_id: int) -> dict[str, Any]:
    row = repository.table_by_id(conn, table_id)
    row["name"] = display_name(row["schema_name"], row["table_name"])
    row["badge"] = badge(row)
    row["columns"] = columns(row["schema_table"])
    row["versions"] = versions(conn, table_id)
    latest = row["versions"][-1] if row["versions"] else None
    row["version"] = latest["version_schema"] if latest else None
    row["schema_state"] = schema_state(
        len(row["schema_table"] or {}), latest["column_count"] if latest else None
    )
    return row


def versions(conn: Conn, table_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["versions_list"], {"table_id": table_id})
        return cur.fetchall()


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a table's timeline: a version (``version`` set) or an event of the table
    (``event``: removed, re-added or healed), at ``at``."""

    at: datetime
    version: dict[str, Any] | None = None
    event: str | None = None


@dataclass(frozen=True)
class Timeline:
    """A table's versions and events, newest first: ``recent`` holds the latest ``keep``
    versions (and the events since the oldest of them), ``older`` the rest."""

    recent: list[TimelineEntry]
    older: list[TimelineEntry]
    older_versions: int


def table_events(conn: Conn, table_id: int) -> list[dict[str, Any]]:
    """When the table was removed from its publication, came back, or was healed."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(TIMELINE_QUERIES["table_events"], {"table_id": table_id})
        return cur.fetchall()


def timeline(versions: list[dict[str, Any]], events: list[dict[str, Any]], keep: int) -> Timeline:
    """Merge ``versions`` (oldest first) and ``events`` (oldest first) newest first, and split
    them after the latest ``keep`` versions. An event at the same time as a version (a heal that
    wrote one) is listed just above it."""
    entries = [TimelineEntry(v["created_at"], version=v) for v in versions]
    entries += [TimelineEntry(e["created_at"], event=e["event"]) for e in events]
    entries.sort(key=lambda e: (e.at, e.version is None), reverse=True)
    seen = 0
    for i, entry in enumerate(entries):
        if entry.version is not None:
            seen += 1
            if seen > keep:
                return Timeline(entries[:i], entries[i:], len(versions) - keep)
    return Timeline(entries, [], 0)


def version(conn: Conn, table_id: int, number: int) -> dict[str, Any]:
    """Version ``number`` of a table: its schema then, and the changes it brought."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["version_row"], {"table_id": table_id, "version": number})
        row = cur.fetchone()
    if row is None:
        raise NotFoundError(f"table {table_id} has no version {number}")
    row["columns"] = columns(row["schema_table_new"])
    return row


def diff_versions(conn: Conn, table_id: int, older: int, newer: int) -> list[Change]:
    """The typed changes from version ``older`` to version ``newer`` (0 = before v1)."""
    if older < 0 or newer < 0:
        raise InvalidInputError("versions are numbered from 1 (0 means before the first)")
    old = version(conn, table_id, older)["schema_table_new"] if older else {}
    new = version(conn, table_id, newer)["schema_table_new"] if newer else {}
    return diff(TableSchema.from_json(old), TableSchema.from_json(new), initial=not older)
