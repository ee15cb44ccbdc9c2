"""``GET /api/v1/health``: is the store usable, and what is the monitor doing. No token needed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from rosetta import __version__
from rosetta.api.schemas import HealthOut, MonitorOut
from rosetta.errors import first_line
from rosetta.monitor import Monitor
from rosetta.store import db, repository

router = APIRouter(tags=["health"])

HEALTH_POOL_TIMEOUT = 5.0


def _in_process(monitor: Monitor | None, thread: threading.Thread | None) -> MonitorOut | None:
    if monitor is None:
        return None
    last = monitor.last
    return MonitorOut(
        in_process=True,
        running=thread is not None and thread.is_alive(),
        running_since=monitor.running_since,
        last_cycle_started_at=monitor.cycle_started_at,
        last_cycle_duration=round(last.duration, 4) if last is not None else None,
        last_cycle_outcome=last.outcome if last is not None else None,
        last_cycle_summary=last.to_json() if last is not None else None,
        monitor_id=monitor.monitor_id,
    )


def _heartbeat(row: dict[str, Any] | None) -> MonitorOut | None:
    if row is None:
        return None
    started = row.get("last_cycle_started_at")
    interval = float(row.get("interval_seconds") or 60.0)
    # A monitor whose last cycle began within a few intervals is taken to be running.
    running = bool(
        started is not None
        and (datetime.now(UTC) - started).total_seconds() < max(3 * interval, interval + 120)
    )
    return MonitorOut(
        in_process=False,
        running=running,
        running_since=row.get("started_at"),
        last_cycle_started_at=started,
        last_cycle_duration=row.get("last_cycle_duration_seconds"),
        last_cycle_outcome=row.get("last_cycle_outcome"),
        last_cycle_summary=row.get("last_cycle_summary"),
        monitor_id=row.get("monitor_id"),
    )


@router.get(
    "/health",
    response_model=HealthOut,
    summary="200 while the store is reachable and migrated, else 503; the monitor's state",
    responses={503: {"model": HealthOut, "description": "The store is not usable"}},
)
def health(request: Request) -> HealthOut | JSONResponse:
    monitor = _in_process(request.app.state.monitor, request.app.state.monitor_thread)
    pool: ConnectionPool[psycopg.Connection[Any]] | None = request.app.state.pool
    store, detail, heartbeat = "ok", None, None
    if pool is None:
        store, detail = "unreachable", "the store's connection pool is not open"
    else:
        try:
            with pool.connection(timeout=HEALTH_POOL_TIMEOUT) as conn:
                applied = db.applied_migrations(conn)
                if applied is None or not set(db.migration_ids()) <= applied:
                    store, detail = (
                        "not_migrated",
                        "the store is not migrated: run `rosetta db upgrade`",
                    )
                else:
                    heartbeat = _heartbeat(repository.latest_heartbeat(conn))
        except PoolTimeout:
            store, detail = "unreachable", "Rosetta's store cannot be reached"
        except psycopg.Error as exc:
            store, detail = "unreachable", f"Rosetta's store failed: {first_line(exc)}"
    body = HealthOut(
        status="ok" if store == "ok" else "unavailable",
        version=__version__,
        store=store,
        detail=detail,
        monitor=monitor,
        last_heartbeat=heartbeat,
    )
    if store != "ok":
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return body
