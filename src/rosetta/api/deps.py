"""What routes depend on: a store connection from the app's pool, the caller's token, and (for
the routes that change something) an admin token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from rosetta.catalog.connection import SourceLimits
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.errors import StoreUnavailableError
from rosetta.queue.options import QueueOptions
from rosetta.store import db
from rosetta.tokens import TokenInfo, authenticate, not_allowed
from rosetta.uow import end, unit_of_work

if TYPE_CHECKING:
    from rosetta.api.store_watch import StoreWatch

Conn = psycopg.Connection[Any]


def _pool(request: Request) -> ConnectionPool[Conn]:
    pool: ConnectionPool[Conn] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise StoreUnavailableError("Rosetta's store is not open (the app is not started)")
    return pool


CHECKOUT_SLICE = 0.25  # seconds between looks at the store watch while the pool is empty


def _checkout(request: Request, pool: ConnectionPool[Conn]) -> Conn:
    """A connection from the pool. The admission gate (api/admission.py) lets in no more
    requests than the pool has connections, so this waits only for the pool to open one; and
    it stops waiting as soon as the store watch finds the store unreachable (503)."""
    watch: StoreWatch | None = getattr(request.app.state, "store_watch", None)
    deadline = time.monotonic() + pool.timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or (watch is not None and not watch.reachable):
            raise StoreUnavailableError()
        try:
            return pool.getconn(timeout=min(CHECKOUT_SLICE, left))
        except PoolTimeout:
            continue


def get_store(request: Request) -> Iterator[Conn]:
    """A store connection (autocommit off) for one request: the request's unit of work,
    committed when the route returns, rolled back when it raises (``rosetta.uow``).

    The first request of an app also checks that the store is migrated (503 if not).
    """
    pool = _pool(request)
    conn = _checkout(request, pool)
    try:
        if not getattr(request.app.state, "store_migrated", False):
            db.ensure_migrated(conn)
            request.app.state.store_migrated = True
        with unit_of_work(conn):
            yield conn
    finally:
        end(conn, ok=False)
        pool.putconn(conn)


Store = Annotated[Conn, Depends(get_store, scope="function")]
"""The request's store connection; its transaction ends when the route returns, before the
response is sent (``scope="function"``), so a client never reads before the commit."""


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


_bearer = HTTPBearer(
    auto_error=False,
    description="An API token: `rosetta token create NAME` makes one.",
)


def require_token(
    request: Request,
    conn: Store,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> TokenInfo:
    """The caller's API token (``Authorization: Bearer <token>``), with its role; else 401.

    (``_credentials`` only declares the scheme in the OpenAPI document, for /docs.)
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("invalid Authorization header: use 'Bearer <token>'")
    info = authenticate(conn, token.strip())
    if info is None:
        raise _unauthorized("invalid or revoked token")
    return info


Token = Annotated[TokenInfo, Depends(require_token)]


def require_admin(request: Request, token: Token) -> TokenInfo:
    """The caller's token if its role is admin; else 403 (ForbiddenError), in one line."""
    if not token.is_admin:
        raise not_allowed(token.role, f"{request.method} {request.url.path}")
    return token


ADMIN_ONLY = [Depends(require_admin)]
"""The dependencies of a route that writes or acts on a source or the network."""

FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "The token's role is read: this needs an admin token"}
}
"""The response a read token gets from an ADMIN_ONLY route, for the OpenAPI document."""


def store_briefly(request: Request) -> AbstractContextManager[Conn]:
    """``with store_briefly(request) as conn:`` a store connection for a moment, as ``Store``
    gives one, for a route that then waits on something else (a webhook's endpoint) and must
    not hold a connection meanwhile."""
    return contextmanager(get_store)(request)


def require_admin_briefly(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> TokenInfo:
    """``require_admin`` with a connection borrowed for the check only, not for the request."""
    with store_briefly(request) as conn:
        token = require_token(request, conn)
    return require_admin(request, token)


ADMIN_ONLY_BRIEFLY = [Depends(require_admin_briefly)]
"""ADMIN_ONLY for a route whose Store-less wait must hold no store connection."""


def settings(request: Request) -> Settings:
    """The app's settings (the API's routes and the pages share these accessors)."""
    found: Settings = request.app.state.settings
    return found


def box(request: Request) -> SecretBox:
    """The key for source passwords and webhook secrets."""
    found: SecretBox = request.app.state.box
    return found


def limits(request: Request) -> SourceLimits:
    """Time limits and the network policy of every source connection."""
    found: SourceLimits = request.app.state.limits
    return found


def queue_options(request: Request) -> QueueOptions:
    """How a Refresh finds a worker and how long it waits for one (rosetta.queue)."""
    return QueueOptions.from_settings(settings(request))
