"""``/api/v1/sources/{id}/capture``: real-time capture on a source (status, install, uninstall)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from rosetta import services
from rosetta.api.deps import ADMIN_ONLY, FORBIDDEN, Store, require_token
from rosetta.api.routes import common
from rosetta.api.schemas import CaptureActionOut, CaptureStatusOut, SourceId, errors
from rosetta.capture.installer import CaptureStatus
from rosetta.store import repository
from rosetta.store.repository import Source

router = APIRouter(tags=["capture"], dependencies=[Depends(require_token)])

CHANGE_ERRORS = errors(
    404,
    409,
    502,
    described={
        409: "The source refused: its role may not create or drop event triggers",
        502: "The source cannot be reached",
    },
)


def status_out(source: Source, status: CaptureStatus) -> CaptureStatusOut:
    return CaptureStatusOut(
        source_id=source.id,
        mode="realtime" if source.capture_enabled and status.working else "polling",
        capture_enabled=source.capture_enabled,
        capture_installed_at=source.capture_installed_at,
        capture_last_event_at=source.capture_last_event_at,
        capture_error=source.capture_error,
        installed=status.installed,
        triggers_enabled=status.triggers_enabled,
        may_install=status.may_install,
        role=status.role,
        listener_connected=status.listener_connected,
        event_count=status.event_count,
        events_table_bytes=status.table_bytes,
        last_event_at=status.last_event_at,
    )


@router.get(
    "/sources/{source_id}/capture",
    response_model=CaptureStatusOut,
    summary="Real-time capture on the source: mode, triggers, listener, events",
    responses=errors(404, 502),
)
def get_capture(request: Request, source_id: SourceId, conn: Store) -> CaptureStatusOut:
    source = repository.source_by_id(conn, source_id)
    status = services.capture_status(conn, common.box(request), common.limits(request), source)
    return status_out(source, status)


@router.post(
    "/sources/{source_id}/capture",
    response_model=CaptureActionOut,
    summary="Install (or upgrade) real-time capture on the source (needs a superuser there)",
    dependencies=ADMIN_ONLY,
    responses={**CHANGE_ERRORS, **FORBIDDEN},
)
def install_capture(request: Request, source_id: SourceId, conn: Store) -> CaptureActionOut:
    source = repository.source_by_id(conn, source_id)
    done = services.install_capture(conn, common.box(request), common.limits(request), source)
    verb = "Installed" if done.changed else "Reinstalled"
    return CaptureActionOut(
        message=f"{verb} real-time capture on {source.name}.",
        changed=done.changed,
        status=status_out(done.source, done.status),
    )


@router.delete(
    "/sources/{source_id}/capture",
    response_model=CaptureActionOut,
    summary="Uninstall real-time capture from the source (back to polling)",
    dependencies=ADMIN_ONLY,
    responses={**CHANGE_ERRORS, **FORBIDDEN},
)
def uninstall_capture(request: Request, source_id: SourceId, conn: Store) -> CaptureActionOut:
    source = repository.source_by_id(conn, source_id)
    done = services.uninstall_capture(conn, common.box(request), common.limits(request), source)
    message = (
        f"Uninstalled real-time capture from {source.name}."
        if done.changed
        else f"Capture was not installed on {source.name}."
    )
    return CaptureActionOut(
        message=message, changed=done.changed, status=status_out(done.source, done.status)
    )
