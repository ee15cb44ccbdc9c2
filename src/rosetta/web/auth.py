"""Login required on every page, a CSRF check on every POST, an admin token for every action: one
route class does all three.

A page route (``PageRoute``) runs, before its endpoint:

- the session check: a signed, unexpired cookie whose session is live in the store (not logged
  out, not expired, its API token not revoked), else 303 to ``/login?next=...``;
- for POST, the CSRF check (else 403);
- the role check: every POST is an admin action, and so is every page marked :func:`admin` (the
  forms that lead to one); a read session gets the 403 page. A POST any role may send (logout) is
  marked :func:`any_role`.

Endpoints marked :func:`public` (the login page) skip the login and role checks but not the CSRF
check.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rosetta import tokens
from rosetta.uow import map_store_errors
from rosetta.web import session
from rosetta.web.render import current, render, secure

F = TypeVar("F", bound=Callable[..., Any])


def public(endpoint: F) -> F:
    """Mark a page that needs no login (it still needs a CSRF token on POST)."""
    endpoint._rosetta_public = True  # type: ignore[attr-defined]
    return endpoint


def admin(endpoint: F) -> F:
    """Mark a page (a GET) that only an admin session may see: a form for an admin action."""
    endpoint._rosetta_admin = True  # type: ignore[attr-defined]
    return endpoint


def any_role(endpoint: F) -> F:
    """Mark a POST that a read session may send too (logging out)."""
    endpoint._rosetta_any_role = True  # type: ignore[attr-defined]
    return endpoint


def can_admin(request: Request) -> bool:
    """Is the request's session logged in with an admin token?"""
    sess = current(request)
    return sess is not None and sess.is_admin


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


def live(request: Request, sess: session.Session) -> session.Session:
    """The session with the token it is logged in with, if the store has it live; else the
    session as an anonymous one."""
    pool = getattr(request.app.state, "pool", None)
    if pool is None:
        return sess  # the store dependency answers 503 for the page itself
    with pool.connection() as conn, map_store_errors(unmigrated=True):
        token = tokens.session_token(conn, sess.sid)
    return replace(sess, token=token)


def needs_admin(route: APIRoute) -> bool:
    """Is the route an admin action: a POST (unless marked any_role or public) or a page marked
    admin?"""
    endpoint = route.endpoint
    if getattr(endpoint, "_rosetta_public", False):
        return False
    if getattr(endpoint, "_rosetta_admin", False):
        return True
    posts = "POST" in (route.methods or set())
    return posts and not getattr(endpoint, "_rosetta_any_role", False)


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        is_public = bool(getattr(self.endpoint, "_rosetta_public", False))
        admin_only = needs_admin(self)

        async def guarded(request: Request) -> Response:
            sess = session.load(request)
            if sess is not None:
                sess = await run_in_threadpool(live, request, sess)
            if not is_public and (sess is None or not sess.logged_in):
                return secure(login_redirect(request))
            request.state.session = sess
            if request.method == "POST":
                form = await request.form()
                if not session.csrf_ok(request, sess, form.get(session.CSRF_FIELD)):
                    return secure(forbidden(request))
            if admin_only and (sess is None or not sess.is_admin):
                return secure(not_allowed(request, sess))
            return secure(await handler(request))

        return guarded


def forbidden(request: Request) -> Response:
    return render(
        request,
        "error.html",
        status_code=403,
        status=403,
        title="Form expired",
        message="This form has expired or did not come from this Rosetta page. "
        "Go back, reload the page and try again.",
    )


def not_allowed(request: Request, sess: session.Session | None) -> Response:
    """The 403 page for a read session asking for an admin action."""
    role = sess.role if sess is not None and sess.role is not None else tokens.Role.READ
    error = tokens.not_allowed(role, "do this")
    return render(
        request,
        "error.html",
        status_code=error.http_status,
        status=error.http_status,
        title="Not allowed",
        message=error.message[:1].upper() + error.message[1:],
    )
