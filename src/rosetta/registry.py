"""Reading the registry: pages of tables, a table's columns at any version, and diffs.

What the API and the web pages show, so both say the same thing.
"""

from __future__ import annotations

import re
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


# --- provenance: how each version was found, and from where its schema applies ----------------

RENAME_TABLE = "RENAME TABLE"
"""The change kind of a table that took another name or schema (``column`` is empty, ``before``
and ``after`` are the qualified names)."""

FOUND_BY = {
    "capture": "found by capture",
    "polling": "found by polling",
    None: "recorded before provenance was kept",
}


def found_by(detected_by: str | None) -> str:
    """How a version was found, in words; a row older than provenance says so."""
    return FOUND_BY.get(detected_by, f"found by {detected_by}")


def provenance_events(provenance: Any) -> list[dict[str, Any]]:
    """The DDL events of a captured version (``provenance.events``), each a dict; none for a
    version found by polling or recorded before provenance was kept, or for events that are not
    objects."""
    if not isinstance(provenance, dict):
        return []
    events = provenance.get("events")
    if not isinstance(events, list):
        return []
    return [e for e in events if isinstance(e, dict)]


def who(event: dict[str, Any]) -> str | None:
    """The role that ran a captured statement: ``current_user``, and the ``session_user`` that
    logged in when it differs (``app_owner (session alice)``)."""
    current, session = event.get("current_user"), event.get("session_user")
    if current and session and session != current:
        return f"{current} (session {session})"
    return str(current or session) if (current or session) else None


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis ends a shortened one), with
    control characters (a terminal's escape sequences) replaced by spaces."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --- the schema as of a time or an LSN -------------------------------------------------------

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})?")
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_at(text: str) -> datetime:
    """An RFC 3339 time with its timezone (``2026-12-02T10:00:00Z``, ``...+01:00``)."""
    if not _RFC3339.fullmatch(text):
        raise InvalidInputError(
            "invalid at: give an RFC 3339 time with a timezone, such as 2026-12-02T10:00:00Z"
        )
    try:
        at = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError("invalid at: no such date or time") from None
    if at.tzinfo is None:
        raise InvalidInputError(
            "invalid at: give its timezone (Z or +hh:mm): a time without one is ambiguous"
        )
    return at


def parse_lsn(text: str) -> str:
    """A WAL position as PostgreSQL's ``pg_lsn`` reads it (``X/Y``, each 1-8 hex digits), as
    PostgreSQL prints it (``0/16B3748``)."""
    found = _LSN.fullmatch(text)
    if not found:
        raise InvalidInputError("invalid lsn: give a WAL position as X/Y in hex, such as 0/16B3748")
    return f"{int(found.group(1), 16):X}/{int(found.group(2), 16):X}"


def lsn_value(lsn: str) -> int:
    """An LSN (``X/Y``) as the 64-bit number it names, to compare two of them."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class AsOf:
    """The version in force at a time or an LSN, and how exact that answer is."""

    number: int
    exact: bool
    exactness: str
    """How exact the answer is, in one sentence."""
    next_version: int | None


def version_start(point: dict[str, Any]) -> datetime:
    """When a version's schema applies from: its ``changed_at``, else (a row older than
    provenance) when Rosetta recorded it."""
    start: datetime = point["changed_at"] or point["created_at"]
    return start


def pick_as_of(
    points: list[dict[str, Any]], name: str, *, at: datetime | None, lsn: str | None
) -> AsOf:
    """Which of a table's versions (``points``: rows of ``version_points``, oldest first) was in
    force at the time ``at`` or the LSN ``lsn``. At a time: the latest version that started at
    or before it. At an LSN: the latest version whose LSN is at or before it, when that can be
    told: a version recorded without an LSN (before provenance was kept) cannot be placed, so an
    LSN that falls where one may start has no answer (ask by time)."""
    if not points:
        raise NotFoundError(f"table {name} has no versions yet")
    if at is not None:
        chosen = [i for i, p in enumerate(points) if version_start(p) <= at]
        if not chosen:
            first = points[0]
            raise NotFoundError(
                f"table {name} was not tracked yet at {at.isoformat()}: its first version "
                f"v{first['version_schema']} applies from {version_start(first).isoformat()}"
            )
        index = chosen[-1]
    else:
        assert lsn is not None
        index = _pick_by_lsn(points, name, lsn)
    point = points[index]
    following = points[index + 1] if index + 1 < len(points) else None
    exact, sentence = _exactness(point, following, by_lsn=lsn is not None)
    return AsOf(
        int(point["version_schema"]),
        exact,
        sentence,
        int(following["version_schema"]) if following else None,
    )


def _pick_by_lsn(points: list[dict[str, Any]], name: str, lsn: str) -> int:
    wanted = lsn_value(lsn)
    chosen = [i for i, p in enumerate(points) if p["lsn"] and lsn_value(p["lsn"]) <= wanted]
    if chosen:
        index = chosen[-1]
        after = points[index + 1] if index + 1 < len(points) else None
        if after is not None and not after["lsn"]:
            raise NotFoundError(
                f"table {name}: v{after['version_schema']} has no LSN recorded, so whether it "
                f"applied at {lsn} cannot be told: ask by time (at) instead"
            )
        return index
    first = points[0]
    if first["lsn"]:
        raise NotFoundError(
            f"table {name} was not tracked yet at LSN {lsn}: its first version "
            f"v{first['version_schema']} applies from LSN {first['lsn']}"
        )
    unplaced = [p for p in points if not p["lsn"]]
    last = unplaced[-1]["version_schema"] if unplaced else first["version_schema"]
    span = f"v{first['version_schema']}" + (
        f" to v{last}" if last != first["version_schema"] else ""
    )
    raise NotFoundError(
        f"table {name}: {span} were recorded before Rosetta kept LSNs, so the schema at LSN "
        f"{lsn} cannot be told: ask by time (at) instead"
    )


def _exactness(
    point: dict[str, Any], following: dict[str, Any] | None, *, by_lsn: bool
) -> tuple[bool, str]:
    """Whether the answer is exact: it is unless the next version's start is an upper bound
    (found by polling, or recorded before provenance was kept), so that it may already have
    applied."""
    n = point["version_schema"]
    if following is None:
        return True, f"v{n} is the latest version recorded"
    m, how = following["version_schema"], following["detected_by"]
    where = f"LSN {following['lsn']}" if by_lsn else f"{version_start(following).isoformat()}"
    if how == "capture":
        if not by_lsn and following.get("commit_time_exact") is False:
            return True, (
                f"exact to the DDL statement's time: v{m} applies from {where} (the source "
                "does not track commit timestamps)"
            )
        return True, f"v{m} applies from {where}, captured from the DDL"
    if how == "polling":
        return False, (
            f"bounded by the polling interval: v{m} was found by polling at {where}, so its "
            "change may have happened up to one interval before"
        )
    return False, (
        f"bounded by the polling interval: v{m} was recorded at {where} before provenance was "
        "kept, so its change may have happened up to one interval before"
    )


def version_points(conn: Conn, table_id: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["version_points"], {"table_id": table_id})
        return cur.fetchall()


def schema_as_of(
    conn: Conn, table_id: int, *, at: datetime | None = None, lsn: str | None = None
) -> tuple[AsOf, dict[str, Any]]:
    """The version of a table in force at the time ``at`` or the LSN ``lsn`` (exactly one): how
    exact that is, and the version's row (its columns and provenance). A time must carry its
    timezone; a table that was not tracked yet then, or an LSN that cannot be placed among
    versions recorded without one, is a :class:`NotFoundError` saying why."""
    if (at is None) == (lsn is None):
        raise InvalidInputError("give exactly one of at (a time) or lsn (a WAL position)")
    if at is not None and at.tzinfo is None:
        raise InvalidInputError(
            "invalid at: give its timezone (Z or +hh:mm): a time without one is ambiguous"
        )
    if lsn is not None:
        lsn = parse_lsn(lsn)
    row = repository.table_by_id(conn, table_id)
    name = display_name(row["schema_name"], row["table_name"])
    answer = pick_as_of(version_points(conn, table_id), name, at=at, lsn=lsn)
    return answer, version(conn, table_id, answer.number)
