"""``GET /api/v1/sources/{id}/doctor``: `rosetta doctor` for one source (or one of its tables)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from rosetta import doctor
from rosetta.api.deps import Store, require_token
from rosetta.api.routes import common
from rosetta.api.schemas import DiagnosisOut, SourceId, Text, errors
from rosetta.store import repository

router = APIRouter(tags=["doctor"], dependencies=[Depends(require_token)])


@router.get(
    "/sources/{source_id}/doctor",
    response_model=DiagnosisOut,
    summary="Diagnose the store, the monitor, the source and its tables (200 even when a check "
    "fails: see ok)",
    responses=errors(404),
)
def diagnose(
    request: Request,
    source_id: SourceId,
    conn: Store,
    table: Annotated[
        Text | None,
        Query(
            min_length=1,
            max_length=300,
            description='Check one table only: "schema.table", or "table" for public.',
        ),
    ] = None,
) -> DiagnosisOut:
    source = repository.source_by_id(conn, source_id)
    diag = doctor.diagnose(
        conn,
        common.box(request),
        source,
        table,
        limits=common.limits(request),
        stalled_after=common.queue_options(request).stalled_after,
    )
    return DiagnosisOut.model_validate(diag.to_json())
