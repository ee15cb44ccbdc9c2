"""The web UI's routes: login and logout, the sources list, and (from the modules it includes)
the source forms, the source page with its webhooks, the Diagnose page and the table page.

Every page needs a login (an API token, ``rosetta token create NAME``); every POST needs the
session's CSRF token, and every action a token whose role is admin. See :mod:`rosetta.web.auth`
and :mod:`rosetta.web.session`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from starlette.requests import Request
from starlette.responses import Response

from rosetta import tokens
from rosetta.queue import state
from rosetta.store import repository
from rosetta.web import doctor_page, session, source_forms, source_page, table_page, webhook_forms
from rosetta.web.auth import PageRoute, any_role, public, safe_next
from rosetta.web.common import Store, queue_options
from rosetta.web.render import current, redirect, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/login")
@public
def login_page(request: Request, next_: Annotated[str, Query(alias="next")] = "/") -> Response:
    sess = current(request)
    if sess is not None and sess.logged_in:
        return redirect(request, safe_next(next_))
    anonymous = sess if sess is not None and not sess.logged_in else session.new()
    request.state.session = anonymous
    response = render(request, "login.html", next=safe_next(next_), error=None)
    if anonymous is not sess:
        session.save(request, response, anonymous)
    return response


@router.post("/login")
@public
def login(
    request: Request,
    conn: Store,
    token: Annotated[str, Form()] = "",
    next_: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    info = tokens.authenticate(conn, token.strip()) if token.strip() else None
    if info is None:
        return render(
            request, "login.html", status_code=401, next=safe_next(next_), error="Invalid token"
        )
    previous = current(request)
    if previous is not None:
        tokens.end_session(conn, previous.sid)  # a new session id at each login
    sid = tokens.start_session(conn, info.id, session.SESSION_MAX_AGE)
    response = redirect(request, safe_next(next_))
    session.save(request, response, session.Session(sid, info))
    return response


@router.post("/logout")
@any_role
def logout(request: Request, conn: Store) -> Response:
    """End the session in the store, not only in this browser: a copied cookie stops working."""
    sess = current(request)
    if sess is not None:
        tokens.end_session(conn, sess.sid)
    response = redirect(request, "/login", [("info", "You are logged out.")])
    session.clear(request, response)
    return response


@router.get("/")
def sources_list(request: Request, conn: Store) -> Response:
    all_sources = repository.list_sources(conn)
    heartbeat = repository.latest_heartbeat(conn)
    stalled_after = queue_options(request).stalled_after
    return render(
        request,
        "sources.html",
        crumbs=[("Sources", None)],
        sources=all_sources,
        heartbeat=heartbeat,
        workers=state.queue_workers(conn, stalled_after),
    )


router.include_router(source_forms.router)
router.include_router(source_page.router)
router.include_router(webhook_forms.router)
router.include_router(doctor_page.router)
router.include_router(table_page.router)
