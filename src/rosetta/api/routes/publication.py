"""Changing a source's publication and replication slot; each change is followed by a sync, so
the registry shows it at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from rosetta import publications, services
from rosetta.api.deps import ADMIN_ONLY, FORBIDDEN, Store, require_token
from rosetta.api.routes import common
from rosetta.api.schemas import (
    ActionOut,
    AvailableTableOut,
    PathIdentifier,
    PublicationCreate,
    PublicationTableAdd,
    SourceId,
    TableRef,
    errors,
)
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError
from rosetta.publications import TableName
from rosetta.schema.model import display_name
from rosetta.sources import validate_identifier
from rosetta.store import repository
from rosetta.summary import SyncSummary

router = APIRouter(tags=["publication"], dependencies=[Depends(require_token)])

SOURCE_ERRORS = errors(
    404, 409, 502, described={409: "The source refused the change, or it has no publication"}
)


def _table_name(schema: str | None, table: str) -> TableName:
    """A table from ``schema`` and ``table``, or from ``"schema.table"`` / ``"table"`` (public)."""
    if schema is None:
        schema, dot, name = table.partition(".")
        if not dot:
            schema, name = "public", table
        table = name
    return (validate_identifier(schema, "schema name"), validate_identifier(table, "table name"))


def _ref(item: str | TableRef) -> TableName:
    if isinstance(item, TableRef):
        return _table_name(item.schema_name, item.table)
    return _table_name(None, item)


def _done(message: str, summary: SyncSummary) -> ActionOut:
    return ActionOut(message=message, sync=common.summary_out(summary))


def _env(request: Request) -> tuple[SecretBox, SourceLimits]:
    return common.box(request), common.limits(request)


@router.get(
    "/sources/{source_id}/available-tables",
    response_model=list[AvailableTableOut],
    summary="Tables of the source that its publication does not carry (admin: it reads the "
    "source's catalog, to choose a table to add)",
    dependencies=ADMIN_ONLY,
    responses={**errors(404, 502), **FORBIDDEN},
)
def available_tables(request: Request, source_id: SourceId, conn: Store) -> list[AvailableTableOut]:
    source, params = common.source_params(request, conn, source_id)
    found = publications.available_tables(params, source.publication_name, common.limits(request))
    return [
        AvailableTableOut(schema_name=s, table_name=t, name=display_name(s, t)) for s, t in found
    ]


@router.post(
    "/sources/{source_id}/publication",
    response_model=ActionOut,
    status_code=201,
    summary="Create the source's publication for the given tables",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def create_publication(
    request: Request, source_id: SourceId, body: PublicationCreate, conn: Store
) -> ActionOut:
    tables = [_ref(item) for item in body.tables]
    source = repository.source_by_id(conn, source_id)
    summary = services.create_publication(conn, *_env(request), source, tables)
    return _done(
        f"created publication {source.publication_name} with {len(tables)} table(s)", summary
    )


@router.delete(
    "/sources/{source_id}/publication",
    response_model=ActionOut,
    summary="Drop the source's publication (its tables are kept here, marked removed)",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def drop_publication(request: Request, source_id: SourceId, conn: Store) -> ActionOut:
    source = repository.source_by_id(conn, source_id)
    summary = services.drop_publication(conn, *_env(request), source)
    return _done(f"dropped publication {source.publication_name}", summary)


@router.post(
    "/sources/{source_id}/publication/tables",
    response_model=ActionOut,
    status_code=201,
    summary="Add one table to the source's publication",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def add_table(
    request: Request, source_id: SourceId, body: PublicationTableAdd, conn: Store
) -> ActionOut:
    if not body.table:
        raise InvalidInputError('give the table as {"table": "schema.table"}')
    table = _table_name(body.schema_name, body.table)
    source = repository.source_by_id(conn, source_id)
    summary = services.add_tables(conn, *_env(request), source, [table])
    return _done(f"added {display_name(*table)} to publication {source.publication_name}", summary)


@router.delete(
    "/sources/{source_id}/publication/tables/{schema}/{table}",
    response_model=ActionOut,
    summary="Remove one table from the source's publication (its history is kept)",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def remove_table(
    request: Request,
    source_id: SourceId,
    schema: PathIdentifier,
    table: PathIdentifier,
    conn: Store,
) -> ActionOut:
    name = _table_name(schema, table)
    source = repository.source_by_id(conn, source_id)
    summary = services.remove_table(conn, *_env(request), source, name)
    return _done(
        f"removed {display_name(*name)} from publication {source.publication_name}", summary
    )


@router.post(
    "/sources/{source_id}/slot",
    response_model=ActionOut,
    status_code=201,
    summary="Create the source's logical replication slot (pgoutput)",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def create_slot(request: Request, source_id: SourceId, conn: Store) -> ActionOut:
    source = repository.source_by_id(conn, source_id)
    summary = services.create_slot(conn, *_env(request), source)
    return _done(f"created replication slot {services.slot_of(source)}", summary)


@router.delete(
    "/sources/{source_id}/slot",
    response_model=ActionOut,
    summary="Drop the source's replication slot",
    dependencies=ADMIN_ONLY,
    responses={**SOURCE_ERRORS, **FORBIDDEN},
)
def drop_slot(request: Request, source_id: SourceId, conn: Store) -> ActionOut:
    source = repository.source_by_id(conn, source_id)
    summary = services.drop_slot(conn, *_env(request), source)
    return _done(f"dropped replication slot {services.slot_of(source)}", summary)
