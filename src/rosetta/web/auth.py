"""Login required on every page, and a CSRF check on every POST: one route class does both.

A page route (``PageRoute``) runs, before its endpoint: the session check (a signed, unexpired
cookie of a logged-in user whose API token is still active; else 303 to ``/login?next=...``)
and, for POST, the CSRF check (else 403). Endpoints marked :func:`public` (the login page) skip
the login check but not the CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import psycopg
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rosetta.errors import StoreNotMigratedError
from rosetta.store.repository import q
from rosetta.web import session
from rosetta.web.render import render, secure

F = TypeVar("F", bound=Callable[..., Any])


def public(endpoint: F) -> F:
    """Mark a page that needs no login (it still needs a CSRF token on POST)."""
    endpoint._rosetta_public = True  # type: ignore[attr-defined]
    return endpoint


def safe_next(value: str | None) -> str:
    """A relative path to go back to after login; anything else (another site) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(ch) < 0x20 for ch in value):
        return "/"
    return value


def login_redirect(request: Request) -> RedirectResponse:
    target = "/login"
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(here, safe="")
    return RedirectResponse(target, status_code=303)


def token_active(request: Request, sess: session.Session) -> bool:
    """Is the API token this session logged in with still there, and not revoked?"""
    pool = getattr(request.app.state, "pool", None)
    if pool is None:
        return True  # the store dependency answers 503 for the page itself
    with pool.connection() as conn:
        try:
            row = conn.execute(q("token_by_name"), {"name": sess.user}).fetchone()
        except psycopg.errors.UndefinedTable:
            raise StoreNotMigratedError() from None
    return row is not None and row[0] == sess.token_id and row[4] is None


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        is_public = bool(getattr(self.endpoint, "_rosetta_public", False))

        async def guarded(request: Request) -> Response:
            sess = session.load(request)
            if not is_public and (
                sess is None
                or not sess.logged_in
                or not await run_in_threadpool(token_active, request, sess)
            ):
                return secure(login_redirect(request))
            request.state.session = sess
            if request.method == "POST":
                form = await request.form()
                if not session.csrf_ok(request, sess, form.get(session.CSRF_FIELD)):
                    return secure(forbidden(request))
            return secure(await handler(request))

        return guarded


def forbidden(request: Request) -> Response:
    return render(
        request,
        "error.html",
        status_code=403,
        title="Form expired",
        message="This form has expired or did not come from this Rosetta page. "
        "Go back, reload the page and try again.",
    )
