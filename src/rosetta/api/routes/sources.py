"""``/api/v1/sources``: register, read, change, test, refresh and forget source databases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from rosetta import services, sources
from rosetta.api.deps import ADMIN_ONLY, FORBIDDEN, Store, require_token
from rosetta.api.routes import common
from rosetta.api.schemas import (
    ConnectionTestOut,
    SourceCreate,
    SourceCreated,
    SourceId,
    SourceOut,
    SourceUpdate,
    SyncFailedOut,
    SyncSummaryOut,
    errors,
)
from rosetta.catalog.reader import ConnectionParams
from rosetta.store import repository

router = APIRouter(tags=["sources"], dependencies=[Depends(require_token)])


@router.get("/sources", response_model=list[SourceOut], summary="List the sources")
def list_sources(conn: Store) -> list[SourceOut]:
    return [common.source_out(conn, s) for s in repository.list_sources(conn)]


@router.post(
    "/sources",
    response_model=SourceCreated,
    status_code=201,
    summary="Register a source (its connection is tested first)",
    dependencies=ADMIN_ONLY,
    responses={
        **errors(409, 422, 502, described={409: "A source of that name exists"}),
        **FORBIDDEN,
    },
)
def create_source(
    request: Request,
    body: SourceCreate,
    conn: Store,
    response: Response,
    sync: Annotated[bool, Query(description="Sync the publication right away.")] = True,
) -> SourceCreated:
    password = body.password.get_secret_value() if body.password is not None else None
    params = ConnectionParams(
        body.host, body.port, body.database, body.username, password, dict(body.options)
    )
    data = sources.SourceInput(
        body.name,
        params,
        body.publication_name,
        body.replication_name,
        body.webhook_severity,
        body.sync_interval_seconds,
    )
    done = services.register_source(
        conn, common.box(request), common.limits(request), data, sync=sync
    )
    response.headers["Location"] = f"/api/v1/sources/{done.source.id}"
    fresh = repository.source_by_id(conn, done.source.id)
    return SourceCreated(
        source=common.source_out(conn, fresh),
        sync=common.summary_out(done.sync) if done.sync is not None else None,
    )


@router.get(
    "/sources/{source_id}", response_model=SourceOut, summary="One source", responses=errors(404)
)
def get_source(source_id: SourceId, conn: Store) -> SourceOut:
    return common.source_out(conn, repository.source_by_id(conn, source_id))


_UPDATE: dict[str, Any] = {
    "response_model": SourceOut,
    "summary": "Change a source (omitted fields, the password too, keep their values)",
    "dependencies": ADMIN_ONLY,
    "responses": {
        **errors(
            404,
            409,
            422,
            502,
            described={
                409: "A source of that name exists",
                502: "The source cannot be reached with the new settings",
            },
        ),
        **FORBIDDEN,
    },
}


@router.put("/sources/{source_id}", operation_id="put_source", **_UPDATE)
@router.patch("/sources/{source_id}", operation_id="patch_source", **_UPDATE)
def update_source(
    request: Request, source_id: SourceId, body: SourceUpdate, conn: Store
) -> SourceOut:
    source = repository.source_by_id(conn, source_id)
    given = body.model_fields_set
    password = body.password.get_secret_value() if body.password is not None else None
    params = ConnectionParams(
        body.host if body.host is not None else source.host,
        body.port if body.port is not None else source.port,
        body.database if body.database is not None else source.database,
        body.username if body.username is not None else source.username,
        password,
        dict(body.options) if body.options is not None else dict(source.connect_options or {}),
    )
    slot = source.replication_name
    if "replication_name" in given:
        slot = body.replication_name or None
    data = sources.SourceInput(
        body.name if body.name is not None else source.name,
        params,
        body.publication_name if body.publication_name is not None else source.publication_name,
        slot,
        body.webhook_severity or source.webhook_severity,
        body.sync_interval_seconds
        if "sync_interval_seconds" in given
        else source.sync_interval_seconds,
    )
    done = services.update_source(conn, common.box(request), common.limits(request), source, data)
    return common.source_out(conn, done.source)


@router.delete(
    "/sources/{source_id}",
    status_code=204,
    response_class=Response,
    summary="Forget a source with its tables and their history (the source is untouched)",
    dependencies=ADMIN_ONLY,
    responses={**errors(404), **FORBIDDEN},
)
def delete_source(source_id: SourceId, conn: Store) -> Response:
    services.remove_source(conn, source_id)
    return Response(status_code=204)


@router.post(
    "/sources/{source_id}/test-connection",
    response_model=ConnectionTestOut,
    summary="Connect to the source: publication, slot and wal_level",
    dependencies=ADMIN_ONLY,
    responses={**errors(404, 502), **FORBIDDEN},
)
def test_connection(request: Request, source_id: SourceId, conn: Store) -> ConnectionTestOut:
    source, params = common.source_params(request, conn, source_id)
    state = sources.check_connection(
        params, source.publication_name, source.replication_name, common.limits(request)
    )
    return ConnectionTestOut(
        ok=True,
        publication_name=source.publication_name,
        publication_exists=state.publication_exists,
        replication_name=source.replication_name,
        slot_exists=state.slot_exists,
        wal_level=state.wal_level,
        logical_replication_ready=state.wal_level == "logical",
    )


@router.post(
    "/sources/{source_id}/refresh",
    response_model=SyncSummaryOut,
    summary="Sync the source now: new tables, healed schemas, changes, removals",
    dependencies=ADMIN_ONLY,
    responses={
        **errors(404),
        502: {"model": SyncFailedOut, "description": "The sync failed: the source cannot be read"},
        **FORBIDDEN,
    },
)
def refresh(request: Request, source_id: SourceId, conn: Store) -> SyncSummaryOut | JSONResponse:
    """Sync the source now. When a worker runs (a `rosetta worker`, or the monitor inside
    `rosetta serve`), the sync is a job on the queue and this waits for it (up to
    ROSETTA_REFRESH_TIMEOUT: then 504); with none, it runs in this server. ``synced_by`` and
    ``job_id`` say which."""
    source = repository.source_by_id(conn, source_id)
    summary = common.refresh(request, conn, source)
    out = common.summary_out(summary)
    if summary.error is not None:
        return JSONResponse(
            {"detail": summary.error, "sync": out.model_dump(mode="json")}, status_code=502
        )
    return out
