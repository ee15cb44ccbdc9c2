"""A source's tables, each table's schema, its versions and the diff between two of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from rosetta import registry
from rosetta.api.deps import Store, require_token
from rosetta.api.schemas import (
    BIGINT_MAX,
    ChangeOut,
    ColumnOut,
    DiffOut,
    Limit,
    Offset,
    SchemaAsOfOut,
    SourceId,
    TableId,
    TableOut,
    TablesPageOut,
    TableSummaryOut,
    Text,
    VersionNumber,
    VersionOut,
    VersionSummaryOut,
    errors,
)
from rosetta.errors import InvalidInputError, NotFoundError
from rosetta.schema.diff import Change
from rosetta.schema.model import Column
from rosetta.store import repository

router = APIRouter(tags=["tables"], dependencies=[Depends(require_token)])


def _columns(columns: list[Column]) -> list[ColumnOut]:
    # A schema recorded before Rosetta knew what the stream carries lists only carried columns.
    return [ColumnOut.model_validate({**c.to_json(), "carried": c.is_carried}) for c in columns]


def _change_out(change: Change) -> ChangeOut:
    return ChangeOut(
        type=change.kind,
        column=change.column,
        before=change.before,
        after=change.after,
        breaking=change.breaking,
        carried=change.carried,
    )


def _provenance(row: dict[str, Any]) -> dict[str, Any]:
    """The provenance fields of a version's row (all null on rows older than them)."""
    provenance = row.get("provenance")
    return {
        "detected_by": row.get("detected_by"),
        "lsn": row.get("lsn"),
        "changed_at": row.get("changed_at"),
        "provenance": provenance if isinstance(provenance, dict) else None,
    }


def _change(raw: dict[str, Any]) -> ChangeOut:
    try:
        breaking: bool | None = Change.from_json(raw).breaking
    except (KeyError, TypeError, AttributeError):
        breaking = None
    return ChangeOut(
        type=str(raw.get("type")),
        column=str(raw.get("column")),
        before=raw.get("before"),
        after=raw.get("after"),
        breaking=breaking,
        carried=raw.get("carried", True) is not False,
    )


@router.get(
    "/sources/{source_id}/tables",
    response_model=TablesPageOut,
    summary="One page of a source's tables, filtered by name and status",
    responses=errors(404, 422),
)
def list_tables(
    source_id: SourceId,
    conn: Store,
    name: Annotated[
        Text | None, Query(max_length=300, description="Part of schema.table, any case.")
    ] = None,
    status: Annotated[
        Text | None,
        Query(
            description="Only the tables with this status.",
            json_schema_extra={"enum": list(registry.STATUSES)},
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TablesPageOut:
    repository.source_by_id(conn, source_id)
    page = registry.tables_page(
        conn, source_id, name=name or None, status=status or None, limit=limit, offset=offset
    )
    return TablesPageOut(
        items=[TableSummaryOut.model_validate(item) for item in page.items],
        total=page.total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get(
    "/tables/{table_id}",
    response_model=TableOut,
    summary="A table's current schema",
    responses=errors(404, 422),
)
def get_table(table_id: TableId, conn: Store) -> TableOut:
    row = registry.table(conn, table_id)
    return TableOut(
        id=row["id"],
        source_id=row["source_id"],
        schema_name=row["schema_name"],
        table_name=row["table_name"],
        name=row["name"],
        status=row["status"],
        badge=row["badge"],
        version=row["version"],
        last_error=row["last_error"],
        table_kind=row["table_kind"],
        replica_identity=row["replica_identity"],
        has_select_privilege=row["has_select_privilege"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        healed_at=row["healed_at"],
        removed_at=row["removed_at"],
        row_filter=row["row_filter"],
        schema_state=row["schema_state"],
        columns=_columns(row["columns"]),
    )


@router.get(
    "/tables/{table_id}/versions",
    response_model=list[VersionSummaryOut],
    summary="Every version of a table's schema",
    responses=errors(404, 422),
)
def list_versions(table_id: TableId, conn: Store) -> list[VersionSummaryOut]:
    repository.table_by_id(conn, table_id)
    return [
        VersionSummaryOut(
            version=v["version_schema"],
            changes_type=v["changes_type"],
            created_at=v["created_at"],
            change_count=v["change_count"],
            column_count=v["column_count"],
            **_provenance(v),
        )
        for v in registry.versions(conn, table_id)
    ]


@router.get(
    "/tables/{table_id}/versions/{number}",
    response_model=VersionOut,
    summary="A table's schema as of one version, and the changes that version brought",
    responses=errors(404, 422),
)
def get_version(table_id: TableId, number: VersionNumber, conn: Store) -> VersionOut:
    repository.table_by_id(conn, table_id)
    row = registry.version(conn, table_id, number)
    return VersionOut(
        table_id=table_id,
        version=row["version_schema"],
        changes_type=row["changes_type"],
        created_at=row["created_at"],
        columns=_columns(row["columns"]),
        changes=[_change(c) for c in row["changes"] or []],
        **_provenance(row),
    )


@router.get(
    "/tables/{table_id}/schema",
    response_model=SchemaAsOfOut,
    summary="A table's schema as of a time or a WAL position (LSN): the version then in force",
    description="Give exactly one of `at` and `lsn`. A time or LSN before the table's first "
    "version, or an LSN that falls among versions recorded before Rosetta kept LSNs, is a 404 "
    "saying why. `exact` and `exactness` say how exact the answer is: exact to the DDL "
    "statement when the next version was captured, bounded by the polling interval when it was "
    "found by polling.",
    responses=errors(404, 422),
)
def schema_as_of(
    table_id: TableId,
    conn: Store,
    at: Annotated[
        Text | None,
        Query(
            max_length=64,
            description="An RFC 3339 time with its timezone: 2026-12-02T10:00:00Z.",
        ),
    ] = None,
    lsn: Annotated[
        Text | None,
        Query(max_length=32, description="A WAL position as X/Y in hex: 0/16B3748."),
    ] = None,
) -> SchemaAsOfOut:
    when = registry.parse_at(at) if at is not None else None
    answer, row = registry.schema_as_of(conn, table_id, at=when, lsn=lsn)
    return SchemaAsOfOut(
        table_id=table_id,
        version=row["version_schema"],
        changes_type=row["changes_type"],
        created_at=row["created_at"],
        columns=_columns(row["columns"]),
        changes=[_change(c) for c in row["changes"] or []],
        **_provenance(row),
        at=when,
        asked_lsn=registry.parse_lsn(lsn) if lsn is not None else None,
        exact=answer.exact,
        exactness=answer.exactness,
        next_version=answer.next_version,
    )


@router.get(
    "/tables/{table_id}/diff",
    response_model=DiffOut,
    response_model_by_alias=True,
    summary="The typed changes between two versions (0 means before the first)",
    responses=errors(404, 422),
)
def diff(
    table_id: TableId,
    conn: Store,
    from_version: Annotated[
        int | None,
        Query(alias="from", ge=0, le=BIGINT_MAX, description="Default: the version before `to`."),
    ] = None,
    to_version: Annotated[
        int | None, Query(alias="to", ge=0, le=BIGINT_MAX, description="Default: the latest.")
    ] = None,
) -> DiffOut:
    repository.table_by_id(conn, table_id)
    if to_version is None:
        numbers = [v["version_schema"] for v in registry.versions(conn, table_id)]
        if not numbers:
            raise NotFoundError(f"table {table_id} has no versions yet")
        to_version = numbers[-1]
    if from_version is None:
        from_version = max(0, to_version - 1)
    if from_version < 0 or to_version < 0:
        raise InvalidInputError("versions are numbered from 1 (0 means before the first)")
    changes = registry.diff_versions(conn, table_id, from_version, to_version)
    return DiffOut(
        table_id=table_id,
        from_version=from_version,
        to_version=to_version,
        changes=[_change_out(c) for c in changes],
    )
