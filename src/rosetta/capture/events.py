"""Reading a source's captured DDL events, and what a sync makes of them.

A sync of a captured source reads, in the same snapshot as the catalog, the events of every
transaction that committed since the snapshot of the previous read (``sources.capture_snapshot``):
each event is read by exactly one sync whatever order transactions commit in, and the schema it
reads is the schema those events left. The events name the tables to read (so a sync woken by a
notification reads only those) and become the provenance of the versions they made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row

from rosetta import sqlfile
from rosetta.provenance import DetectedBy, Provenance

QUERIES = sqlfile.Queries("rosetta.capture", "reading.sql")

MAX_EVENTS = 5000
"""At most this many events are read by one sync; beyond, the sync reads the whole publication
(their provenance is the first ones')."""

MAX_EVENTS_PER_VERSION = 50
"""A version keeps at most this many of its events (the latest) in its provenance."""


@dataclass(frozen=True, slots=True)
class CaptureEvent:
    """One row of ``rosetta_capture.ddl_events`` (see ``install.sql``)."""

    id: int
    xid: str
    event_time: datetime
    lsn: str
    command_tag: str
    object_type: str
    object_identity: str | None
    table_oid: int | None
    schema_name: str | None
    table_name: str | None
    publication_name: str | None
    statement: str | None
    session_user_name: str | None
    current_user_name: str | None
    application_name: str | None
    client_addr: str | None
    backend_pid: int | None
    commit_time: datetime | None

    def to_json(self) -> dict[str, Any]:
        """As a version's provenance keeps it."""
        return {
            "id": self.id,
            "command_tag": self.command_tag,
            "object_type": self.object_type,
            "object_identity": self.object_identity,
            "statement": self.statement,
            "session_user": self.session_user_name,
            "current_user": self.current_user_name,
            "application_name": self.application_name,
            "client_addr": self.client_addr,
            "backend_pid": self.backend_pid,
            "xid": self.xid,
            "time": self.event_time.isoformat(),
            "lsn": self.lsn,
        }

    def concerns_publication(self, publication: str) -> bool:
        """A publication-wide command (no one table named) on ``publication``, or on one whose
        name the event does not say."""
        return self.object_type.startswith("publication") and self.publication_name in (
            None,
            publication,
        )


@dataclass(frozen=True, slots=True)
class EventBatch:
    """The events a sync read, and the snapshot to read the next ones from."""

    events: list[CaptureEvent]
    snapshot: str
    commit_times: bool
    overflow: bool = False

    def whole_publication(self, publication: str) -> bool:
        """Whether the sync must read the whole publication: too many events, or one that
        names no table (a publication-wide change, a dropped index that may have been a key)."""
        return self.overflow or any(
            e.table_oid is None
            and (e.concerns_publication(publication) or not e.object_type.startswith("publication"))
            for e in self.events
        )

    def oids(self) -> list[int]:
        """The tables the events name, in the order first named."""
        return list(dict.fromkeys(e.table_oid for e in self.events if e.table_oid is not None))

    @property
    def last_event_at(self) -> datetime | None:
        return max((e.event_time for e in self.events), default=None)

    def provenance(self, oids: Iterable[int | None]) -> Provenance | None:
        """The provenance of a version of the table with these OIDs (a table dropped and made
        again has two), from the events that name it; None when none does."""
        wanted = {oid for oid in oids if oid is not None}
        mine = [e for e in self.events if e.table_oid in wanted]
        if not mine:
            return None
        last = mine[-1]
        changed_at = last.commit_time if self.commit_times and last.commit_time else None
        return Provenance(
            DetectedBy.CAPTURE,
            last.lsn,
            changed_at or last.event_time,
            {
                "events": [e.to_json() for e in mine[-MAX_EVENTS_PER_VERSION:]],
                "commit_time_exact": changed_at is not None,
            },
        )


@dataclass(frozen=True, slots=True)
class CaptureBroken:
    """The capture cannot be read on the source: ``reason`` says why, in one line."""

    reason: str


def read_events(conn: psycopg.Connection[Any], seen: str | None) -> EventBatch | CaptureBroken:
    """The events committed since the snapshot ``seen`` (in the connection's open transaction,
    before the catalog is read in it)."""
    with conn.cursor(row_factory=dict_row) as cur:
        state = cur.execute(QUERIES["capture_state"]).fetchone()
    assert state is not None
    if not state["events_readable"]:
        return CaptureBroken(
            "the capture's events table is missing or unreadable on the source: "
            "`rosetta capture install SOURCE` puts it back; polling meanwhile"
        )
    if state["triggers_enabled"] < 2:
        return CaptureBroken(
            "the capture's event triggers are missing or disabled on the source: "
            "`rosetta capture install SOURCE` puts them back; polling meanwhile"
        )
    params = {"seen": seen, "commit_times": state["commit_times"], "limit": MAX_EVENTS + 1}
    with conn.cursor(row_factory=class_row(CaptureEvent)) as cur:
        events = cur.execute(QUERIES["new_events"], params).fetchall()
    overflow = len(events) > MAX_EVENTS
    return EventBatch(events[:MAX_EVENTS], state["snapshot"], state["commit_times"], overflow)


def prune(conn: psycopg.Connection[Any], days: int) -> int:
    """Delete events older than ``days`` (a bounded batch); how many went."""
    return conn.execute(QUERIES["prune_events"], {"days": days}).rowcount
