"""What routes depend on: a store connection from the app's pool, and the caller's token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.errors import StoreUnavailableError
from rosetta.store import db

Conn = psycopg.Connection[Any]


def _pool(request: Request) -> ConnectionPool[Conn]:
    pool: ConnectionPool[Conn] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise StoreUnavailableError("Rosetta's store is not open (the app is not started)")
    return pool


def get_store(request: Request) -> Iterator[Conn]:
    """A store connection (autocommit off) for one request, rolled back and returned after.

    The first request of an app also checks that the store is migrated (503 if not).
    """
    pool = _pool(request)
    try:
        conn = pool.getconn()
    except PoolTimeout:
        raise StoreUnavailableError(
            "Rosetta's store cannot be reached: check ROSETTA_DATABASE_URL"
        ) from None
    try:
        if not getattr(request.app.state, "store_migrated", False):
            db.ensure_migrated(conn)
            request.app.state.store_migrated = True
        yield conn
    finally:
        try:
            if not conn.closed and not conn.broken:
                conn.rollback()
        except psycopg.Error:
            pass
        pool.putconn(conn)


Store = Annotated[Conn, Depends(get_store)]


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
) -> str:
    """The name of the caller's API token (``Authorization: Bearer <token>``), else 401.

    (``_credentials`` only declares the scheme in the OpenAPI document, for /docs.)
    """
    from rosetta.tokens import verify_token

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("invalid Authorization header: use 'Bearer <token>'")
    name = verify_token(conn, token.strip())
    if name is None:
        raise _unauthorized("invalid or revoked token")
    return name


TokenName = Annotated[str, Depends(require_token)]


def settings(request: Request) -> Settings:
    """The app's settings (the API's routes and the pages share these accessors)."""
    found: Settings = request.app.state.settings
    return found


def box(request: Request) -> SecretBox:
    """The key for source passwords and webhook secrets."""
    found: SecretBox = request.app.state.box
    return found


def timeout(request: Request) -> int:
    """Seconds to wait for a source."""
    return int(settings(request).source_connect_timeout)
