"""The table page: its columns at any version, its version timeline, and the diff of two
versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from rosetta import registry
from rosetta.errors import TableNotFoundError
from rosetta.schema import diff as d
from rosetta.schema.model import Column
from rosetta.store import repository
from rosetta.web.auth import PageRoute
from rosetta.web.common import Store
from rosetta.web.render import render
from rosetta.web.source_forms import not_found

router = APIRouter(route_class=PageRoute)

KIND_CLASS = {
    d.NEW_COLUMN: "add",
    d.DROP_COLUMN: "drop",
    d.RENAME_COLUMN: "rename",
    d.CHANGES_TYPE: "type",
    d.CHANGES_NULLABLE: "nullable",
    d.CHANGES_DEFAULT: "default",
    d.CHANGES_PRIMARY_KEY: "pk",
    d.RENAME_TYPE: "type",
    d.CHANGES_CARRIED: "carried",
    d.CHANGES_REPLICA_IDENTITY: "pk",
}
KIND_LABEL = {
    d.NEW_COLUMN: "added",
    d.DROP_COLUMN: "dropped",
    d.RENAME_COLUMN: "renamed",
    d.CHANGES_TYPE: "type",
    d.CHANGES_NULLABLE: "nullable",
    d.CHANGES_DEFAULT: "default",
    d.CHANGES_PRIMARY_KEY: "primary key",
    d.RENAME_TYPE: "type renamed",
    d.CHANGES_CARRIED: "carried",
    d.CHANGES_REPLICA_IDENTITY: "replica identity",
}
NOT_CARRIED = {
    "generated": "generated",
    "virtual": "virtual generated",
    "column_list": "not in the column list",
}
EVENT_LABELS = {
    "removed": "Removed from the publication",
    "re-added": "Back in the publication",
    "healed": "Missing schema healed",
}
TABLE_KINDS = {"r": "table", "p": "partitioned table", "f": "foreign table"}
REPLICA_IDENTITY = {"d": "default (primary key)", "f": "full", "i": "index", "n": "nothing"}


def replica_identity_text(code: str | None, columns: list[Column]) -> str:
    """The table's replica identity from the facts: its code and which columns form the key."""
    if code == "d":
        keys = [c.column_name for c in columns if c.is_primary_key]
        if not keys:
            return "default — no primary key: UPDATE/DELETE cannot replicate"
        return f"default (primary key: {', '.join(keys)})"
    if code == "i":
        keys = [c.column_name for c in columns if c.in_replica_identity]
        return f"index ({', '.join(keys)})" if keys else "index"
    if code == "n":
        return "nothing — UPDATE/DELETE cannot replicate"
    return REPLICA_IDENTITY.get(code or "", code or "—")


# How many versions the timeline lists before folding the older ones.
TIMELINE_KEEP = 10

Version = Annotated[int | None, Query(ge=0, le=10_000_000)]


def default_text(col: Column) -> str | None:
    if col.generated:
        return f"GENERATED ALWAYS AS ({col.column_default}) {col.generated}"
    if col.identity:
        return f"GENERATED {col.identity} AS IDENTITY"
    return col.column_default


def column_text(raw: Any) -> str:
    """A whole column on one line, for an added or dropped one."""
    if not isinstance(raw, dict):
        return ""
    col = Column.from_json(str(raw.get("column_name", "")), raw)
    parts = [col.full_type, "NULL" if col.is_nullable else "NOT NULL"]
    default = default_text(col)
    if default:
        parts.append(f"DEFAULT {default}")
    if col.is_primary_key:
        parts.append("PRIMARY KEY")
    if not col.is_carried:
        parts.append(f"(not carried: {not_carried_text(col)})")
    return " ".join(parts)


def not_carried_text(col: Column) -> str:
    """Why the replication stream does not carry a column, in words."""
    return NOT_CARRIED.get(col.not_carried or "", col.not_carried or "unknown")


def value_text(kind: str, value: Any) -> str:
    if kind in (d.NEW_COLUMN, d.DROP_COLUMN):
        return column_text(value)
    if kind == d.CHANGES_NULLABLE:
        return "NULL" if value else "NOT NULL"
    if kind == d.CHANGES_PRIMARY_KEY:
        return "in primary key" if value else "not in primary key"
    if kind == d.CHANGES_REPLICA_IDENTITY:
        return "in replica identity" if value else "not in replica identity"
    if kind == d.CHANGES_CARRIED:
        return "carried" if value else "not carried"
    if kind == d.CHANGES_DEFAULT:
        return str(value) if value is not None else "no default"
    return "" if value is None else str(value)


def described(changes: list[d.Change]) -> list[dict[str, Any]]:
    return [
        {
            "kind": c.kind,
            "label": KIND_LABEL.get(c.kind, c.kind.lower()),
            "css": KIND_CLASS.get(c.kind, "other"),
            "column": c.column,
            "before": value_text(c.kind, c.before),
            "after": value_text(c.kind, c.after),
            "breaking": c.breaking,
            "carried": c.carried,
        }
        for c in changes
    ]


def table_renames(versions: list[dict[str, Any]], older: int, newer: int) -> list[dict[str, Any]]:
    """The renames of the table itself (``RENAME TABLE``, recorded in the versions between
    ``older`` and ``newer``): a diff of the schemas cannot show them, the columns being the
    same. Backwards (``older`` > ``newer``), each is undone."""
    low, high = sorted((older, newer))
    found = []
    for ver in versions:
        raw = ver.get("table_rename")
        if not isinstance(raw, dict) or not low < ver["version_schema"] <= high:
            continue
        before, after = str(raw.get("before") or ""), str(raw.get("after") or "")
        if older > newer:
            before, after = after, before
        change = d.Change(registry.RENAME_TABLE, "", before, after)
        found.append(
            {
                "kind": registry.RENAME_TABLE,
                "label": "table renamed",
                "css": "rename",
                "column": "",
                "before": before,
                "after": after,
                "breaking": change.breaking,
                "carried": True,
            }
        )
    return found if older <= newer else found[::-1]


def _before(numbers: list[int], number: int) -> int:
    """The version before ``number`` (0 when it is the first)."""
    earlier = [n for n in numbers if n < number]
    return earlier[-1] if earlier else 0


@router.get("/tables/{table_id:int}")
def table_detail(
    request: Request,
    conn: Store,
    table_id: int,
    v: Version = None,
    from_: Annotated[int | None, Query(alias="from", ge=0, le=10_000_000)] = None,
    to: Version = None,
) -> Response:
    try:
        row = registry.table(conn, table_id)
    except TableNotFoundError:
        return not_found(request, f"There is no table with id {table_id}.")
    source = repository.source_by_id(conn, row["source_id"])
    versions: list[dict[str, Any]] = row["versions"]
    numbers = [int(ver["version_schema"]) for ver in versions]
    latest: int | None = row["version"]

    if v is not None and v not in numbers:
        return not_found(
            request,
            f"Table {row['name']} has no version {v}: its versions are v{numbers[0]} to v{latest}."
            if numbers
            else f"Table {row['name']} has no recorded version yet.",
        )
    shown = v if v is not None else latest
    marks: dict[str, list[dict[str, Any]]] = {}
    shown_row: dict[str, Any] | None = None
    if shown is not None:
        shown_row = registry.version(conn, table_id, shown)
        columns: list[Column] = shown_row["columns"]
        if shown != numbers[0]:
            for change in described(
                registry.diff_versions(conn, table_id, _before(numbers, shown), shown)
            ):
                marks.setdefault(change["column"], []).append(change)
    else:
        columns = row["columns"]

    diff_to = diff_from = None
    changes: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    if shown is not None:
        # The version shown is compared with the one before it, unless ?from= / ?to= say otherwise.
        diff_to = to if to in numbers else shown
        diff_from = from_ if from_ is not None and (from_ in numbers or from_ == 0) else None
        if diff_from is None:
            diff_from = _before(numbers, diff_to)
        changes = table_renames(versions, diff_from, diff_to) + described(
            registry.diff_versions(conn, table_id, diff_from, diff_to)
        )
        dropped = [m for ms in marks.values() for m in ms if m["css"] == "drop"]

    line = registry.timeline(versions, registry.table_events(conn, table_id), TIMELINE_KEEP)
    return render(
        request,
        "table.html",
        crumbs=[("Sources", "/"), (source.name, f"/sources/{source.id}"), (row["name"], None)],
        source=source,
        table=row,
        table_kind=TABLE_KINDS.get(row.get("table_kind") or "", row.get("table_kind") or "—"),
        replica_identity=replica_identity_text(row.get("replica_identity"), row["columns"]),
        timeline=line,
        event_labels=EVENT_LABELS,
        older_open=any(e.version and e.version["version_schema"] == shown for e in line.older),
        numbers=numbers,
        shown=shown,
        shown_row=shown_row,
        columns=columns,
        default_text=default_text,
        not_carried_text=not_carried_text,
        schema_state=row["schema_state"],
        marks=marks,
        dropped=dropped,
        diff_from=diff_from,
        diff_to=diff_to,
        changes=changes,
        kind_class=KIND_CLASS,
        found_by=registry.found_by,
        provenance_events=registry.provenance_events,
        who=registry.who,
    )
