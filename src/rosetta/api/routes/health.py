"""``GET /api/v1/health``: is the store usable? No token needed.

Without a token (or with one that is not valid) the answer is only ``{"status": "ok"}`` (200)
or ``{"status": "unavailable"}`` (503). A valid token also gets the version, the store's state
and what the monitors are doing. The answer comes from the store watch (api/store_watch.py),
which has a connection of its own, so health never waits behind other requests for the pool;
checking a token on that connection takes at most ``TOKEN_CHECK_WAIT`` seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import anyio
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rosetta import __version__
from rosetta.api.deps import queue_options
from rosetta.api.schemas import HealthOut, HealthStatusOut, MonitorOut, QueueOut, WorkerOut
from rosetta.api.store_watch import StoreState, StoreWatch
from rosetta.liveness import monitor_alive
from rosetta.monitor import Monitor
from rosetta.queue import SYNC_QUEUE, state
from rosetta.store import repository
from rosetta.tokens import authenticate

router = APIRouter(tags=["health"])

TOKEN_CHECK_WAIT = 1.0
NOT_STARTED = StoreState("unreachable", "the app is not started", 0.0)


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
    running = monitor_alive(started, interval)
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


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class _Checked:
    """The token is valid; the latest heartbeat of any monitor sharing the store, and the sync
    queue's workers and depth (None when the store is not usable)."""

    heartbeat: dict[str, Any] | None
    workers: list[WorkerOut] | None = None
    queue: QueueOut | None = None


def _worker_out(w: state.QueueWorker) -> WorkerOut:
    return WorkerOut(
        name=w.label,
        hostname=w.hostname,
        pid=w.pid,
        concurrency=w.concurrency,
        last_heartbeat=w.last_heartbeat,
        alive=w.alive,
        running=w.running,
    )


def _queue(conn: psycopg.Connection[Any], stalled_after: float) -> _Checked:
    """The queue's part of the answer (on the watch's autocommit connection)."""
    workers = [_worker_out(w) for w in state.queue_workers(conn, stalled_after)]
    waiting = state.waiting_jobs(conn)
    jobs = state.queue_depth(conn).get(SYNC_QUEUE, {})
    return _Checked(
        None,
        workers,
        QueueOut(
            waiting=waiting.jobs, oldest_waiting_seconds=round(waiting.oldest_seconds, 3), jobs=jobs
        ),
    )


def _check_token(watch: StoreWatch, token: str, stalled_after: float | None) -> _Checked | None:
    """On the watch's connection; None if the token is not valid or could not be checked.
    ``stalled_after`` None: the store is not usable, leave the queue out."""

    def work(conn: psycopg.Connection[Any]) -> _Checked | None:
        if authenticate(conn, token) is None:
            return None
        heartbeat = repository.latest_heartbeat(conn)
        if stalled_after is None:
            return _Checked(heartbeat)
        try:
            queue = _queue(conn, stalled_after)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            return _Checked(heartbeat)  # a store between migrations: the rest still stands
        return replace(queue, heartbeat=heartbeat)

    try:
        return watch.run(work, timeout=TOKEN_CHECK_WAIT)
    except psycopg.Error:
        return None


async def _full_body(request: Request, watch: StoreWatch, token: str) -> HealthOut | None:
    """The whole answer if ``token`` is valid; None if it is not, or was not checked within
    ``TOKEN_CHECK_WAIT`` (the thread of a check that hangs is left to end on its own)."""
    checked: _Checked | None = None
    stalled_after = queue_options(request).stalled_after if watch.state.ok else None
    with anyio.move_on_after(TOKEN_CHECK_WAIT):
        checked = await anyio.to_thread.run_sync(
            _check_token,
            watch,
            token,
            stalled_after,
            abandon_on_cancel=True,
            limiter=request.app.state.health_checks,
        )
    if checked is None:
        return None
    state = watch.state
    return HealthOut(
        status="ok" if state.ok else "unavailable",
        version=__version__,
        store=state.store,
        detail=state.detail,
        monitor=_in_process(request.app.state.monitor, request.app.state.monitor_thread),
        last_heartbeat=_heartbeat(checked.heartbeat),
        workers=checked.workers,
        queue=checked.queue,
    )


@router.get(
    "/health",
    response_model=HealthOut | HealthStatusOut,
    summary="200 while the store is reachable and migrated, else 503",
    description="Without a token: only `status`. With a valid `Authorization: Bearer` token, "
    "also the version, the store's state, the monitors' last cycles, the sync queue's workers "
    "and depth (an invalid token gets the short answer, not 401). Never waits behind other "
    "requests; at most about a second.",
    responses={
        503: {"model": HealthOut | HealthStatusOut, "description": "The store is not usable"}
    },
)
async def health(request: Request) -> JSONResponse:
    watch: StoreWatch | None = request.app.state.store_watch
    token = _bearer(request)
    if watch is not None and token is not None and watch.reachable:
        full = await _full_body(request, watch, token)
        if full is not None:
            code = 200 if full.status == "ok" else 503
            return JSONResponse(full.model_dump(mode="json"), status_code=code)
    state = watch.state if watch is not None else NOT_STARTED
    short = HealthStatusOut(status="ok" if state.ok else "unavailable")
    return JSONResponse(short.model_dump(mode="json"), status_code=200 if state.ok else 503)
