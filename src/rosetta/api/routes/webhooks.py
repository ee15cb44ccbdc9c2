"""Webhooks of a source: add, list, remove and test endpoints, and read the delivery log.

A webhook's secret is write-only: it is stored encrypted, and responses only say ``signed``.
A Test waits on the endpoint holding no store connection (its token is checked with one borrowed
for a moment), and at most ``ROSETTA_WEBHOOK_CONCURRENCY`` wait at once: one more gets 503.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from rosetta import webhooks
from rosetta.api.deps import (
    ADMIN_ONLY,
    ADMIN_ONLY_BRIEFLY,
    FORBIDDEN,
    Store,
    require_token,
    store_briefly,
)
from rosetta.api.routes import common
from rosetta.api.schemas import DeliveryOut, WebhookCreate, WebhookOut, WebhookTestOut
from rosetta.store import repository
from rosetta.store.repository import Conn

registry = APIRouter(tags=["webhooks"], dependencies=[Depends(require_token)])
sending = APIRouter(tags=["webhooks"])  # its one route checks the token itself, briefly


def _options(request: Request) -> webhooks.Options:
    return webhooks.Options.from_settings(common.settings(request))


def _out(row: dict[str, Any]) -> WebhookOut:
    return WebhookOut(
        id=row["id"],
        source_id=row["source_id"],
        source=row["source"],
        url=row["url"],
        events=list(row["events"]),
        enabled=row["enabled"],
        signed=row["signed"],
        created_at=row["created_at"],
        delivered=row["delivered"],
        pending=row["pending"],
        retrying=row["retrying"],
        failed=row["failed"],
    )


def _endpoints(conn: Conn, source_id: int) -> list[WebhookOut]:
    repository.source_by_id(conn, source_id)  # 404 if unknown
    return [_out(row) for row in webhooks.list_endpoints(conn, source_id)]


@registry.get(
    "/sources/{source_id}/webhooks",
    response_model=list[WebhookOut],
    summary="The source's webhooks, with their delivery counts",
)
def list_webhooks(source_id: int, conn: Store) -> list[WebhookOut]:
    return _endpoints(conn, source_id)


@registry.post(
    "/sources/{source_id}/webhooks",
    response_model=WebhookOut,
    status_code=201,
    summary="Call a URL on the source's schema changes (422 for a bad URL or event)",
    dependencies=ADMIN_ONLY,
    responses=FORBIDDEN,
)
def add_webhook(
    request: Request, source_id: int, body: WebhookCreate, conn: Store, response: Response
) -> WebhookOut:
    repository.source_by_id(conn, source_id)
    secret = body.secret.get_secret_value() if body.secret is not None else None
    row = webhooks.add_endpoint(
        conn,
        common.box(request),
        source_id,
        body.url.strip(),
        secret,
        body.events,
        _options(request).policy,
    )
    response.headers["Location"] = f"/api/v1/sources/{source_id}/webhooks"
    return next(w for w in _endpoints(conn, source_id) if w.id == row["id"])


@registry.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a webhook, with its pending deliveries and its delivery log",
    dependencies=ADMIN_ONLY,
    responses=FORBIDDEN,
)
def remove_webhook(webhook_id: int, conn: Store) -> Response:
    webhooks.remove_endpoint(conn, webhook_id)
    return Response(status_code=204)


@sending.post(
    "/webhooks/{webhook_id}/test",
    response_model=WebhookTestOut,
    summary="POST a test event to the webhook now; its answer (200 even when it failed: see ok)",
    dependencies=ADMIN_ONLY_BRIEFLY,
    responses={
        **FORBIDDEN,
        503: {"description": "As many Tests as ROSETTA_WEBHOOK_CONCURRENCY are waiting already"},
    },
)
def test_webhook(request: Request, webhook_id: int) -> WebhookTestOut:
    slots: webhooks.Slots | None = getattr(request.app.state, "webhook_test_slots", None)
    result = webhooks.send_test(
        lambda: store_briefly(request),
        common.box(request),
        webhook_id,
        _options(request),
        slots,
    )
    return WebhookTestOut(ok=result.ok, status_code=result.status_code, error=result.error)


@registry.get(
    "/sources/{source_id}/webhooks/deliveries",
    response_model=list[DeliveryOut],
    summary="The delivery log of the source's webhooks, newest first",
)
def list_deliveries(
    source_id: int,
    conn: Store,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[DeliveryOut]:
    repository.source_by_id(conn, source_id)
    return [
        DeliveryOut(
            id=row["id"],
            endpoint_id=row["endpoint_id"],
            url=row["url"],
            event=row["event_type"],
            table=row["tbl"],
            version=int(row["version"]) if row["version"] is not None else None,
            status=row["status"],
            attempts=row["attempts"],
            last_status_code=row["last_status_code"],
            last_error=row["last_error"],
            next_attempt_at=row["next_attempt_at"],
            delivered_at=row["delivered_at"],
            created_at=row["created_at"],
        )
        for row in webhooks.deliveries(conn, source_id=source_id, limit=limit)
    ]


router = APIRouter()
router.include_router(registry)
router.include_router(sending)
