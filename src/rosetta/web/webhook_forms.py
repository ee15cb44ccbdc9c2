"""The Webhooks tab's actions: add, test and remove a source's webhooks.

A webhook's secret is write-only, like a source's password: typed into a password field, stored
encrypted, and never put back into a form or shown on any page (pages only say "signed").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form
from starlette.requests import Request
from starlette.responses import Response

from rosetta import webhooks
from rosetta.api.deps import store_briefly
from rosetta.errors import InvalidInputError, RosettaError
from rosetta.store.repository import Conn, Source
from rosetta.web import common
from rosetta.web.auth import PageRoute, admin
from rosetta.web.common import Store
from rosetta.web.render import redirect
from rosetta.web.source_page import confirm, load, owned, render_source

router = APIRouter(route_class=PageRoute)


def _options(request: Request) -> webhooks.Options:
    return webhooks.Options.from_settings(common.settings(request))


def _tab(source_id: int) -> str:
    return f"/sources/{source_id}?tab=webhooks"


def _endpoint(
    request: Request, conn: Conn, source: Source, webhook_id: int
) -> dict[str, Any] | Response:
    """The source's webhook, or the 404 page (also for another source's webhook)."""
    row = owned(
        request, source, "webhook", webhook_id, lambda: webhooks.get_endpoint(conn, webhook_id)
    )
    if isinstance(row, Response):
        return row
    return {"id": row["id"], "url": row["url"]}  # never the secret


@router.post("/sources/{source_id:int}/webhooks")
def add_webhook(
    request: Request,
    conn: Store,
    source_id: int,
    url: Annotated[str, Form(max_length=2000)] = "",
    secret: Annotated[str, Form(max_length=1000)] = "",
    events: Annotated[list[str] | None, Form()] = None,
) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    chosen = events or []
    try:
        if not url.strip():
            raise InvalidInputError("enter the URL to call")
        if not chosen:
            raise InvalidInputError("pick at least one event")
        row = webhooks.add_endpoint(
            conn,
            common.box(request),
            source.id,
            url.strip(),
            secret or None,
            chosen,
            _options(request).policy,
        )
    except RosettaError as exc:
        return render_source(
            request,
            conn,
            source,
            tab="webhooks",
            status_code=422,
            webhook_form={"url": url, "events": [e for e in chosen if e in webhooks.EVENTS]},
            webhook_error=exc.message,
        )
    signed = "signed" if row["signed"] else "unsigned"
    return redirect(
        request, _tab(source.id), [("ok", f"Webhook {row['id']} added ({signed}): {row['url']}")]
    )


@router.post("/sources/{source_id:int}/webhooks/{webhook_id:int}/test")
def test_webhook(request: Request, source_id: int, webhook_id: int) -> Response:
    # No Store for this request: it waits on the endpoint, and must hold no connection meanwhile.
    with store_briefly(request) as conn:
        source = load(request, conn, source_id)
        if isinstance(source, Response):
            return source
        endpoint = _endpoint(request, conn, source, webhook_id)
        if isinstance(endpoint, Response):
            return endpoint
    slots: webhooks.Slots | None = getattr(request.app.state, "webhook_test_slots", None)
    try:
        result = webhooks.send_test(
            lambda: store_briefly(request),
            common.box(request),
            webhook_id,
            _options(request),
            slots,
        )
    except RosettaError as exc:
        return redirect(request, _tab(source.id), [("error", exc.message)])
    if result.ok:
        message = ("ok", f"Test delivery to {endpoint['url']} answered {result.status_code}.")
    else:
        why = result.error or f"HTTP {result.status_code}"
        message = ("error", f"Test delivery to {endpoint['url']} failed: {why}")
    return redirect(request, _tab(source.id), [message])


@router.get("/sources/{source_id:int}/webhooks/{webhook_id:int}/remove")
@admin
def remove_webhook_page(request: Request, conn: Store, source_id: int, webhook_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    endpoint = _endpoint(request, conn, source, webhook_id)
    if isinstance(endpoint, Response):
        return endpoint
    return confirm(
        request,
        source,
        f"Remove webhook {webhook_id} ({endpoint['url']})?",
        f"Rosetta stops calling this URL on schema changes of {source.name}. Its pending "
        "deliveries and its delivery log are deleted with it.",
        f"/sources/{source.id}/webhooks/{webhook_id}/remove",
        "Remove webhook",
        cancel=_tab(source.id),
    )


@router.post("/sources/{source_id:int}/webhooks/{webhook_id:int}/remove")
def remove_webhook(request: Request, conn: Store, source_id: int, webhook_id: int) -> Response:
    source = load(request, conn, source_id)
    if isinstance(source, Response):
        return source
    endpoint = _endpoint(request, conn, source, webhook_id)
    if isinstance(endpoint, Response):
        return endpoint
    webhooks.remove_endpoint(conn, webhook_id)
    return redirect(
        request, _tab(source.id), [("ok", f"Webhook {webhook_id} removed: {endpoint['url']}")]
    )
