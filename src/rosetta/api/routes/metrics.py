"""``GET /metrics``: Prometheus text format, read from the store; the API's bearer token needed.

Prometheus sends one with ``authorization: {type: Bearer, credentials: <token>}`` in its scrape
config. Not in the OpenAPI document: it is not JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from rosetta import metrics
from rosetta.api.deps import Store, queue_options, require_token

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])


@router.get("/metrics")
def scrape(request: Request, conn: Store) -> Response:
    stalled_after = queue_options(request).stalled_after
    return Response(metrics.render(conn, stalled_after), media_type=metrics.CONTENT_TYPE)
