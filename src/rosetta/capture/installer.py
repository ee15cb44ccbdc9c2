"""Install, inspect and uninstall Rosetta's capture on a source database.

These functions take an open connection to the source (``rosetta.catalog.connection.connect``:
autocommit, with the source's time limits) and run Rosetta's own SQL from ``install.sql`` and
``queries.sql``; no name is ever formatted into SQL text. The install and the uninstall each run
in one transaction on the source: they either complete or leave it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from rosetta import sqlfile
from rosetta.capture import EVENT_TRIGGERS, LISTENER_APPLICATION_NAME, SCHEMA
from rosetta.catalog.connection import describe
from rosetta.errors import CapturePrivilegeError, SourceActionError
from rosetta.uow import map_source_errors

Conn = psycopg.Connection[Any]

INSTALL = sqlfile.Queries("rosetta.capture", "install.sql")
QUERIES = sqlfile.Queries("rosetta.capture", "queries.sql")


@dataclass(frozen=True)
class CaptureStatus:
    """Rosetta's capture on a source, as the source's catalogs show it now."""

    schema_exists: bool
    triggers_present: int
    """How many of Rosetta's two event triggers exist."""
    triggers_enabled: bool
    """Both exist and neither is disabled (``pg_event_trigger.evtenabled <> 'D'``)."""
    may_install: bool
    """The connected role may create event triggers (a superuser or a managed admin role)."""
    role: str
    listener_connected: bool
    """A session of this database has the listener's application_name."""
    event_count: int | None = None
    """None when the events table is missing or the role may not read it."""
    table_bytes: int | None = None
    last_event_at: datetime | None = None

    @property
    def installed(self) -> bool:
        """The schema and both event triggers are there (enabled or not)."""
        return self.schema_exists and self.triggers_present == len(EVENT_TRIGGERS)

    @property
    def present(self) -> bool:
        """Any part of the capture is there (a half-removed one too)."""
        return self.schema_exists or self.triggers_present > 0

    @property
    def working(self) -> bool:
        """Installed with both triggers enabled: DDL is being recorded."""
        return self.installed and self.triggers_enabled


def status(conn: Conn) -> CaptureStatus:
    """Read the capture's state: one round trip, two when the events table is readable."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            QUERIES["status"],
            {
                "schema": SCHEMA,
                "triggers": list(EVENT_TRIGGERS),
                "listener": LISTENER_APPLICATION_NAME,
            },
        )
        row = cur.fetchone()
        assert row is not None
        events: dict[str, Any] = {}
        if row["table_exists"] and row["can_read"]:
            cur.execute(QUERIES["events"])
            events = cur.fetchone() or {}
    return CaptureStatus(
        schema_exists=bool(row["schema_exists"]),
        triggers_present=int(row["triggers"]),
        triggers_enabled=int(row["triggers_enabled"]) == len(EVENT_TRIGGERS),
        may_install=bool(row["may_install"]),
        role=str(row["role_name"]),
        listener_connected=bool(row["listener_connected"]),
        event_count=events.get("event_count"),
        table_bytes=events.get("table_bytes"),
        last_event_at=events.get("last_event_at"),
    )


def _refused(source_name: str, doing: str, role: str) -> CapturePrivilegeError:
    what = "creating" if doing == "install" else "dropping"
    return CapturePrivilegeError(
        f"cannot {doing} capture on {source_name}: {what} event triggers needs a superuser "
        f'(role "{role}" is not): ask a superuser to run `rosetta capture {doing}`'
        + (", or stay on polling" if doing == "install" else "")
    )


def _current_role(conn: Conn) -> str:
    try:
        row = conn.execute("SELECT current_user").fetchone()
    except psycopg.Error:
        return conn.info.user
    return str(row[0]) if row else conn.info.user


def install(conn: Conn, source_name: str) -> str:
    """Install (or upgrade in place) the capture in one transaction on the source; return the
    source's snapshot read right after it committed (``pg_current_snapshot()::text``).

    A role that may not create event triggers gets :class:`CapturePrivilegeError` and the source
    is left as it was."""
    try:
        with conn.transaction():
            conn.execute(INSTALL["install"])
    except psycopg.errors.InsufficientPrivilege:
        raise _refused(source_name, "install", _current_role(conn)) from None
    except psycopg.Error as exc:
        raise SourceActionError(
            f"cannot install capture on {source_name}: {describe(exc)}"
        ) from None
    with map_source_errors(
        SourceActionError, f"cannot read the snapshot of {source_name} after the install", describe
    ):
        row = conn.execute(QUERIES["snapshot"]).fetchone()
    assert row is not None
    return str(row[0])


def uninstall(conn: Conn, source_name: str) -> bool:
    """Drop the event triggers, the functions and the schema with its events, in one
    transaction; False (and nothing done) when no part of the capture is there."""
    with map_source_errors(
        SourceActionError, f"cannot read the capture's state on {source_name}", describe
    ):
        before = status(conn)
    if not before.present:
        return False
    try:
        with conn.transaction():
            conn.execute(QUERIES["uninstall"])
    except psycopg.errors.InsufficientPrivilege:
        raise _refused(source_name, "uninstall", before.role) from None
    except psycopg.Error as exc:
        raise SourceActionError(
            f"cannot uninstall capture on {source_name}: {describe(exc)}"
        ) from None
    return True
