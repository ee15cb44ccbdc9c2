"""The store's rows as objects, and the functions that read and write them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rosetta import sqlfile
from rosetta.errors import SourceNotFoundError, TableNotFoundError
from rosetta.summary import SyncRun
from rosetta.uow import map_store_errors

Conn = psycopg.Connection[Any]


QUERIES = sqlfile.Queries("rosetta.store", "queries.sql")


@dataclass(frozen=True)
class Source:
    id: int
    name: str
    host: str
    port: int
    database: str
    username: str
    publication_name: str
    replication_name: str | None
    is_publication_enabled: bool
    is_replication_enabled: bool
    created_at: datetime
    updated_at: datetime
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_error: str | None
    connect_options: dict[str, str] = field(default_factory=dict)
    webhook_severity: str = "all"
    password_encrypted: str | None = field(default=None, repr=False)
    table_count: int | None = None
    # Real-time capture (rosetta.capture): installed on the source, and what the reader saw.
    capture_enabled: bool = False
    capture_installed_at: datetime | None = None
    capture_snapshot: str | None = None
    capture_last_event_at: datetime | None = None
    capture_error: str | None = None
    capture_listener_at: datetime | None = None
    # Syncs on the job queue (rosetta.queue): the source's own interval (None: the default),
    # when the scheduler next defers its sync, and who ran the last one.
    sync_interval_seconds: float | None = None
    next_sync_at: datetime | None = None
    last_sync_by: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Source:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in row.items() if k in names})

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"


def _rows(conn: Conn, query: LiteralString, params: dict[str, Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def _row(conn: Conn, query: LiteralString, params: dict[str, Any]) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchone()


# --- sources -------------------------------------------------------------------------------


def _taken(name: str) -> str:
    return f"a source named {name!r} already exists: choose another name"


def insert_source(conn: Conn, values: dict[str, Any]) -> Source:
    params = dict(values, connect_options=Jsonb(values.get("connect_options") or {}))
    with map_store_errors(conflict=_taken(values["name"])), conn.transaction():
        row = _row(conn, QUERIES["insert_source"], params)
    assert row is not None
    return Source.from_row(row)


def update_source(conn: Conn, source_id: int, values: dict[str, Any]) -> Source:
    params = dict(values, id=source_id, connect_options=Jsonb(values.get("connect_options") or {}))
    with map_store_errors(conflict=_taken(values["name"])), conn.transaction():
        row = _row(conn, QUERIES["update_source"], params)
    if row is None:
        raise SourceNotFoundError(f"no source with id {source_id}")
    return Source.from_row(row)


def source_by_name(conn: Conn, name: str) -> Source:
    row = _row(conn, QUERIES["source_by_name"], {"name": name})
    if row is None:
        raise SourceNotFoundError(
            f"no source named {name!r}: `rosetta source list` shows the registered ones"
        )
    return Source.from_row(row)


def source_by_id(conn: Conn, source_id: int) -> Source:
    row = _row(conn, QUERIES["source_by_id"], {"id": source_id})
    if row is None:
        raise SourceNotFoundError(f"no source with id {source_id}")
    return Source.from_row(row)


def list_sources(conn: Conn) -> list[Source]:
    return [Source.from_row(r) for r in _rows(conn, QUERIES["list_sources"], {})]


def delete_source(conn: Conn, source_id: int) -> None:
    """Delete a source with its tables and their history (the one sanctioned history delete)."""
    with conn.transaction():
        conn.execute(QUERIES["allow_history_maintenance"])
        cur = conn.execute(QUERIES["delete_source"], {"id": source_id})
        if cur.rowcount == 0:
            raise SourceNotFoundError(f"no source with id {source_id}")


def set_source_flags(conn: Conn, source_id: int, publication: bool, replication: bool) -> bool:
    """Keep the flags true to the source; True when they changed."""
    cur = conn.execute(
        QUERIES["set_source_flags"],
        {
            "id": source_id,
            "is_publication_enabled": publication,
            "is_replication_enabled": replication,
        },
    )
    return cur.rowcount > 0


def record_sync(
    conn: Conn,
    source_id: int,
    status: str,
    error: str | None,
    summary: dict[str, Any],
    run: SyncRun,
) -> None:
    """The sync's outcome on the source, and its row in ``sync_runs``."""
    conn.execute(
        QUERIES["record_sync"],
        {
            "id": source_id,
            "status": status,
            "error": error,
            "summary": Jsonb(summary),
            "worker": run.worker,
            "reason": run.reason,
            "job_id": run.job_id,
            "attempt": run.attempt,
            "deferred_at": run.deferred_at,
        },
    )


# --- tables and history --------------------------------------------------------------------


def list_tables(conn: Conn, source_id: int) -> list[dict[str, Any]]:
    return _rows(conn, QUERIES["list_tables"], {"source_id": source_id})


def find_table(conn: Conn, source_id: int, name: str) -> dict[str, Any]:
    """A tracked table by ``table``, ``schema.table``, or a name in more than one schema."""
    row = _row(
        conn,
        QUERIES["table_by_name"],
        {"source_id": source_id, "schema_name": "public", "table_name": name},
    )
    if row is None and "." in name:
        schema_name, _, table_name = name.partition(".")
        row = _row(
            conn,
            QUERIES["table_by_name"],
            {"source_id": source_id, "schema_name": schema_name, "table_name": table_name},
        )
    if row is None:
        matches = _rows(conn, QUERIES["tables_named"], {"source_id": source_id, "table_name": name})
        if len(matches) == 1:
            row = matches[0]
        elif len(matches) > 1:
            schemas = ", ".join(f"{m['schema_name']}.{name}" for m in matches)
            raise TableNotFoundError(f"{name!r} is in several schemas: name one of {schemas}")
    if row is None:
        raise TableNotFoundError(
            f"no tracked table {name!r}: `rosetta tables SOURCE` shows the tracked ones"
        )
    return row


def table_by_id(conn: Conn, table_id: int) -> dict[str, Any]:
    row = _row(conn, QUERIES["table_by_id"], {"id": table_id})
    if row is None:
        raise TableNotFoundError(f"no table with id {table_id}")
    return row


def history(conn: Conn, table_id: int) -> list[dict[str, Any]]:
    return _rows(conn, QUERIES["history"], {"table_id": table_id})


def latest_heartbeat(conn: Conn) -> dict[str, Any] | None:
    return _row(conn, QUERIES["latest_heartbeat"], {})
