"""Helpers the API's routes share: a source as JSON, its connection, a sync after a change."""

from __future__ import annotations

from fastapi import Request

from rosetta import services
from rosetta.api.deps import box as box
from rosetta.api.deps import limits as limits
from rosetta.api.deps import queue_options as queue_options
from rosetta.api.deps import settings as settings
from rosetta.api.schemas import SourceOut, SyncSummaryOut
from rosetta.catalog.reader import ConnectionParams
from rosetta.store import repository
from rosetta.store.repository import QUERIES, Conn, Source
from rosetta.summary import SyncSummary
from rosetta.sync import connection_params


def source_out(conn: Conn, source: Source) -> SourceOut:
    count = source.table_count
    if count is None:
        row = conn.execute(QUERIES["source_table_count"], {"id": source.id}).fetchone()
        count = int(row[0]) if row else 0
    return SourceOut(
        id=source.id,
        name=source.name,
        host=source.host,
        port=source.port,
        database=source.database,
        username=source.username,
        has_password=source.password_encrypted is not None,
        options=dict(source.connect_options or {}),
        publication_name=source.publication_name,
        replication_name=source.replication_name,
        is_publication_enabled=source.is_publication_enabled,
        is_replication_enabled=source.is_replication_enabled,
        webhook_severity=source.webhook_severity,
        table_count=count,
        created_at=source.created_at,
        updated_at=source.updated_at,
        last_sync_at=source.last_sync_at,
        last_sync_status=source.last_sync_status,
        last_sync_error=source.last_sync_error,
        last_sync_by=source.last_sync_by,
        sync_interval_seconds=source.sync_interval_seconds,
        next_sync_at=source.next_sync_at,
    )


def source_params(request: Request, conn: Conn, source_id: int) -> tuple[Source, ConnectionParams]:
    """The source (404 if unknown) and its decrypted connection parameters."""
    source = repository.source_by_id(conn, source_id)
    return source, connection_params(source, box(request))


def refresh(request: Request, conn: Conn, source: Source, *, full: bool = False) -> SyncSummary:
    """Refresh: the sync on a worker when one runs, else here (``services.refresh``)."""
    return services.refresh(
        conn, box(request), limits(request), source, queue_options(request), full=full
    )


def summary_out(summary: SyncSummary) -> SyncSummaryOut:
    return SyncSummaryOut.model_validate(summary.to_json())
