"""``GET /metrics``: Prometheus text format, read from the store; the API's bearer token needed.

Prometheus sends one with ``authorization: {type: Bearer, credentials: <token>}`` in its scrape
config. Not in the OpenAPI document: it is not JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from rosetta import metrics
from rosetta.api.deps import Store, require_token

router = APIRouter(include_in_schema=False, dependencies=[Depends(require_token)])


@router.get("/metrics")
def scrape(conn: Store) -> Response:
    return Response(metrics.render(conn), media_type=metrics.CONTENT_TYPE)
