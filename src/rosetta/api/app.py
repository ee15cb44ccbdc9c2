"""The app factory: the REST API under ``/api/v1``, the web UI, and their shared state.

Nothing is made at import time: :func:`create_app` gets the settings, the store's URL and the key,
and the lifespan opens the store's connection pool and runs, when asked, the monitor and the
webhook dispatcher in background threads.
"""

from __future__ import annotations

import html
import importlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rosetta import __version__, runtime
from rosetta.api.admission import Admission, Gate
from rosetta.api.body_limit import BodyLimit
from rosetta.api.openapi import document_errors
from rosetta.api.schemas import errors
from rosetta.api.store_watch import StoreWatch
from rosetta.catalog.connection import SourceLimits
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError, first_line
from rosetta.monitor import Monitor
from rosetta.webhooks import Dispatcher, Slots
from rosetta.webhooks import Options as WebhookOptions

log = logging.getLogger("rosetta.api")

API_PREFIX = "/api"
POOL_MAX_SIZE = 8  # also the most requests served at once (api/admission.py): below anyio's 40
POOL_TIMEOUT = 5.0  # only to open a connection: the gate keeps requests from queueing in the pool
ADMISSION_WAIT = 5.0  # the longest a request waits for its turn before 503 + Retry-After
RETRY_AFTER = "1"  # seconds, in every 503
MONITOR_STOP_WAIT = 15.0
MAX_DETAIL = 1000  # characters of an error's one line
# What any route of /api/v1 but the health check may answer: a body that is not JSON or a key
# that cannot decrypt a stored password (400), no token (401), a read token (403), a body too
# large (413), the store down or the server busy (503).
API_ERRORS = errors(400, 401, 403, 413, 503)


def create_app(
    settings: Settings,
    store_url: str,
    box: SecretBox,
    *,
    monitor: Monitor | None = None,
    dispatch_webhooks: bool = False,
) -> FastAPI:
    """The Rosetta web app. With ``monitor``, it runs in a background thread while the app runs;
    with ``dispatch_webhooks``, so does a webhook :class:`Dispatcher` sending the outbox."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            store_url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            timeout=POOL_TIMEOUT,
            open=False,
            check=ConnectionPool.check_connection,
            kwargs={"application_name": "rosetta-api", "connect_timeout": 10},
            name="rosetta-store",
        )
        pool.open(wait=False)
        app.state.pool = pool
        app.state.store_migrated = False
        watch = StoreWatch(store_url)
        await anyio.to_thread.run_sync(watch.check)  # an answer before the first request
        watch.start()
        app.state.store_watch = watch
        app.state.gate = Gate(POOL_MAX_SIZE, ADMISSION_WAIT, lambda: watch.reachable)
        app.state.health_checks = anyio.CapacityLimiter(1)  # a token checked on the watch's conn
        stop = threading.Event()
        thread: threading.Thread | None = None
        if monitor is not None:
            thread = threading.Thread(
                target=_run_monitor, args=(monitor, stop), name="rosetta-monitor", daemon=True
            )
            thread.start()
        app.state.monitor_thread = thread
        dispatcher: Dispatcher | None = None
        if dispatch_webhooks:
            dispatcher = Dispatcher(store_url, box, WebhookOptions.from_settings(settings))
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            stop.set()
            if dispatcher is not None:
                dispatcher.stop_event.set()  # both stop at once, then each is waited for
            if thread is not None:
                thread.join(MONITOR_STOP_WAIT)
            if dispatcher is not None:
                dispatcher.stop(MONITOR_STOP_WAIT)
            app.state.dispatcher = None
            app.state.gate = None
            watch.stop()
            app.state.store_watch = None
            pool.close()
            app.state.pool = None

    app = FastAPI(
        title="Rosetta",
        version=__version__,
        description="The schema of every table your PostgreSQL publications carry, and its "
        "history. Every route except `GET /api/v1/health` needs `Authorization: Bearer <token>` "
        "(make one with `rosetta token create NAME`). A read token reads; the routes that change "
        "something, or act on a source or the network, answer 403 to it and need an admin token "
        "(`rosetta token create NAME --role admin`).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store_url = store_url
    app.state.box = box
    app.state.webhook_test_slots = Slots(settings.webhook_concurrency)
    app.state.limits = SourceLimits.from_settings(settings)
    app.state.monitor = monitor
    app.state.session_secret = runtime.session_secret(settings)
    app.state.pool = None
    app.state.store_watch = None
    app.state.gate = None
    app.state.monitor_thread = None
    app.state.dispatcher = None
    app.state.store_migrated = False

    _install_error_handlers(app)
    document_errors(app)
    # The last added runs first: the body's size is checked before anything else.
    app.add_middleware(
        Admission,
        gate=lambda: app.state.gate,
        exempt=_needs_no_store,
        outbound=_may_reach_out,
        render=error_response,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, render=error_response)

    from rosetta.api.routes import (
        capture,
        doctor,
        health,
        metrics,
        publication,
        sources,
        tables,
        webhooks,
    )

    app.include_router(health.router, prefix="/api/v1", responses=errors(403, 413))
    for module in (sources, tables, publication, doctor, capture):
        app.include_router(module.router, prefix="/api/v1", responses=API_ERRORS)
    # Every webhook route looks up the source or the webhook of its path.
    app.include_router(webhooks.router, prefix="/api/v1", responses={**API_ERRORS, **errors(404)})
    app.include_router(metrics.router)

    try:
        pages = importlib.import_module("rosetta.web.pages")
    except ImportError as exc:
        if exc.name in ("rosetta.web", "rosetta.web.pages"):
            log.debug("rosetta.web.pages is not available: serving the API only")
        else:
            log.warning("The web UI is not served: cannot import rosetta.web.pages: %s", exc)
    else:
        app.include_router(pages.router)

    static = Path(__file__).resolve().parent.parent / "web" / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    return app


def _run_monitor(monitor: Monitor, stop: threading.Event) -> None:
    try:
        monitor.run_forever(stop)
    except Exception:
        log.exception("The schema monitor stopped on an unexpected error")


def _needs_no_store(path: str) -> bool:
    """Paths the admission gate lets through: the health check (it has a connection of its
    own) and static files."""
    return path == "/api/v1/health" or path.startswith("/static/")


# The reads that contact a source: the API's available tables, capture status and Diagnose, and
# the web's source page (its live status and available tables) and Diagnose page.
_OUTBOUND_READS = re.compile(
    r"^(/api/v1)?/sources/\d+/(available-tables|capture|doctor)/?$|^/sources/\d+/?$"
)


def _may_reach_out(method: str, path: str) -> bool:
    """Requests that may wait on a source or a webhook endpoint: every change (a refresh, a
    connection test, a publication action, a webhook Test...) and the reads above."""
    return method not in ("GET", "HEAD", "OPTIONS") or bool(_OUTBOUND_READS.match(path))


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def one_line(message: str, limit: int = MAX_DETAIL) -> str:
    """``message`` as one printable line that encodes as UTF-8, at most ``limit`` characters: a
    message may quote input, with its line breaks, NULs or lone surrogates."""
    text = " ".join(message.split())
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_response(request: Request, status: int, message: str) -> Response:
    """JSON ``{"detail": message}`` (:class:`~rosetta.api.schemas.ErrorOut`) under /api, else a
    small HTML page; one line, never a traceback. A 503 says when to try again
    (``Retry-After``)."""
    message = one_line(message) or "error"
    headers = {"Retry-After": RETRY_AFTER} if status == 503 else None
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    styled = _error_page(request, status, message)
    if styled is not None:
        styled.headers.update(headers or {})
        return styled
    text = html.escape(message)
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Rosetta: error {status}</title></head><body><h1>Error {status}</h1>"
        f'<p>{text}</p><p><a href="/">Back to Rosetta</a></p></body></html>'
    )
    return HTMLResponse(page, status_code=status, headers=headers)


ERROR_TITLES = {
    400: "Bad request",
    401: "Not logged in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid request",
    500: "Internal error",
    503: "Service unavailable",
}


def _error_page(request: Request, status: int, message: str) -> Response | None:
    """The web UI's error page (its layout, the message as escaped text), or None when the web UI
    is not installed or its page cannot be made: then the plain page."""
    try:
        from rosetta.web.render import render, secure
    except ImportError:
        return None
    title = ERROR_TITLES.get(status, "Error")
    try:
        page = render(
            request, "error.html", status_code=status, title=title, status=status, message=message
        )
    except Exception:
        log.exception("Cannot render the error page for %s %s", request.method, request.url.path)
        return None
    return secure(page)


def _page_validation_message(exc: RequestValidationError) -> str:
    """For a web page, one line: which query parameter, part of the address or form field is
    wrong, and why; never the input itself."""
    where = {"query": "query parameter", "path": "address part", "body": "form field"}
    for error in exc.errors():
        loc = error.get("loc", ())
        kind = str(loc[0]) if loc else ""
        name = ".".join(str(p)[:40] for p in loc[1:] if not _is_tag(p))
        reason = str(error.get("msg", "invalid value"))
        reason = reason[:1].lower() + reason[1:]
        if not name:
            return f"The request is not valid: {reason}."
        return f"The {where.get(kind, 'value')} {name!r} is not valid: {reason}."
    return "The request is not valid."


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming each bad field; never the input itself (it may hold a password).

    A value that may take several forms fails once per form: of those errors, the one that went
    deepest into the value says the most.
    """
    found: list[tuple[tuple[str, ...], str]] = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return "invalid request: the body is not valid JSON"
        loc = tuple(str(p)[:40] for p in error.get("loc", ()) if not _is_tag(p))
        found.append((loc, str(error.get("msg", "invalid value"))))
    parts: dict[str, str] = {}
    for loc, msg in found:
        deeper = any(len(other) > len(loc) and other[: len(loc)] == loc for other, _ in found)
        if not deeper:
            parts.setdefault(".".join(loc), msg)
    text = "; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in list(parts.items())[:5])
    return "invalid request: " + (text or "malformed input")


def _is_tag(part: object) -> bool:
    """Is ``part`` of an error's location not a field but a name pydantic gives: "body", the
    form of a value that failed ("function-after[...]", "TableRef"), a dict's "[key]"?"""
    return isinstance(part, str) and (
        part == "body" or "[" in part or "(" in part or part[:1].isupper()
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def on_rosetta_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RosettaError)
        return error_response(request, exc.http_status, exc.message)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _is_api(request):
            return error_response(request, 422, _validation_message(exc))
        return error_response(request, 422, _page_validation_message(exc))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, psycopg.OperationalError):
            err = StoreUnavailableError("Rosetta's store failed during the request: try again")
            log.error(
                "%s %s: the store failed: %s", request.method, request.url.path, first_line(exc)
            )
            return error_response(request, err.http_status, err.message)
        log.exception("Unexpected error in %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error ({type(exc).__name__}): see the log")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code < 400:
            return await http_exception_handler(request, exc)
        response = error_response(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RosettaError, on_rosetta_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
