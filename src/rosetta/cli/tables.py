"""Reading what syncs recorded: `rosetta tables`, `show`, `history`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rosetta.cli.base import JsonOpt, app, console, context, esc, print_json

STATE_TEXT = {
    "no_columns": "no columns",
    "missing": "schema missing",
}


def _state_line(state: str, version: int | None) -> str | None:
    """The schema state in words, None when the schema is recorded."""
    if state == "no_columns":
        return f"no columns: all were dropped in v{version}"
    if state == "missing":
        return "schema missing: it is filled at the next sync"
    return None


@app.command()
def tables(name: str, as_json: JsonOpt = False) -> None:
    """The tables of a source: version, column count, status and row filter of each."""
    from rosetta import registry
    from rosetta.store import repository

    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        rows = registry.source_tables(store, src.id)
    finally:
        store.close()
    if as_json:
        print_json(
            [
                {
                    "id": r["id"],
                    "schema": r["schema_name"],
                    "table": r["table_name"],
                    "version": r["version"],
                    "columns": r["column_count"],
                    "status": r["status"],
                    "error": r["last_error"],
                    "has_select_privilege": r["has_select_privilege"],
                    "last_change_type": r["last_change_type"],
                    "last_change_at": r["last_change_at"],
                    "row_filter": r["row_filter"],
                    "schema_state": r["schema_state"],
                }
                for r in rows
            ]
        )
        return
    if not rows:
        typer.echo(f"Source {name} tracks no tables yet.")
        return
    from rich.table import Table

    filtered = any(r["row_filter"] for r in rows)
    table = Table("table", "version", "columns", "status", "last change")
    if filtered:
        table.add_column("row filter")
    for r in rows:
        status = r["status"]
        if r["status"] == "error" and r["last_error"]:
            status = f"error: {r['last_error']}"
        elif r["has_select_privilege"] is False:
            status += " (no SELECT grant)"
        if r["schema_state"] in STATE_TEXT:
            status += f" ({STATE_TEXT[r['schema_state']]})"
        last = (
            f"{r['last_change_type']} {r['last_change_at']:%Y-%m-%d %H:%M:%S}"
            if r["last_change_at"]
            else "-"
        )
        cells = [
            esc(r["name"]),
            str(r["version"] or "-"),
            str(r["column_count"]),
            esc(status),
            last,
        ]
        if filtered:
            cells.append(esc(r["row_filter"] or "-"))
        table.add_row(*cells)
    console().print(table)


@app.command()
def show(name: str, table: str, as_json: JsonOpt = False) -> None:
    """One table's current columns: type, key, and whether the replication stream carries each."""
    from rosetta import registry
    from rosetta.store import repository

    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        row = registry.table(store, repository.find_table(store, src.id, table)["id"])
    finally:
        store.close()
    columns = [{**c.to_json(), "carried": c.is_carried} for c in row["columns"]]
    if as_json:
        print_json(
            {
                "id": row["id"],
                "schema": row["schema_name"],
                "table": row["table_name"],
                "status": row["status"],
                "version": row["version"],
                "replica_identity": row["replica_identity"],
                "row_filter": row["row_filter"],
                "schema_state": row["schema_state"],
                "columns": columns,
            }
        )
        return
    out = console()
    version = f"v{row['version']}" if row["version"] else "no version"
    out.print(f"Table {esc(row['name'])} of source {esc(name)}: {esc(row['badge'])}, {version}")
    if row["row_filter"]:
        out.print(f"  row filter: WHERE {esc(row['row_filter'])}")
    state = _state_line(row["schema_state"], row["version"])
    if state:
        out.print(f"  {state}")
    if columns:
        out.print(_grid(columns))


def _grid(columns: list[dict[str, Any]]) -> Any:
    """A schema's columns as a table: position, name, type, nullability, default, key, carried."""
    from rich.table import Table

    grid = Table("#", "column", "type", "nullable", "default", "key", "carried")
    for c in columns:
        key = [
            k
            for k, on in (("PK", c["is_primary_key"]), ("replica", c["in_replica_identity"]))
            if on
        ]
        grid.add_row(
            str(c["ordinal_position"]),
            esc(c["column_name"]),
            esc(c["full_type"]),
            "NULL" if c["is_nullable"] else "NOT NULL",
            esc(_default(c) or "-"),
            ", ".join(key) or "-",
            "yes" if c["carried"] else f"no ({_reason(c['not_carried'])})",
        )
    return grid


def _default(c: dict[str, Any]) -> str | None:
    if c["generated"]:
        return f"GENERATED ALWAYS AS ({c['column_default']}) {c['generated']}"
    if c["identity"]:
        return f"GENERATED {c['identity']} AS IDENTITY"
    return c["column_default"]  # type: ignore[no-any-return]


def _reason(not_carried: str | None) -> str:
    return (not_carried or "unknown").replace("_", " ")


@app.command()
def history(name: str, table: str, as_json: JsonOpt = False) -> None:
    """The versions of one table's schema: change type, time, severity, how each was found
    (capture, polling), from which LSN, who ran the DDL, and each change."""
    from rosetta.schema import severity
    from rosetta.store import repository

    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        row = repository.find_table(store, src.id, table)
        versions = repository.history(store, row["id"])
    finally:
        store.close()
    if as_json:
        print_json(
            [
                {
                    "version": v["version_schema"],
                    "changes_type": v["changes_type"],
                    "created_at": v["created_at"],
                    "changes": v["changes"],
                    "severity": severity.of_stored(v["changes"]),
                    "schema": v["schema_table_new"],
                    "detected_by": v["detected_by"],
                    "lsn": v["lsn"],
                    "changed_at": v["changed_at"],
                    "provenance": v["provenance"],
                }
                for v in versions
            ]
        )
        return
    if not versions:
        typer.echo("No versions recorded yet.")
        return
    if row.get("row_filter"):
        typer.echo(f"Row filter: WHERE {row['row_filter']}")
    for v in versions:
        cols = len(v["schema_table_new"] or {})
        counted = f"{cols} columns" if cols else "no columns"
        typer.echo(
            f"v{v['version_schema']}  {v['created_at']:%Y-%m-%d %H:%M:%S}  "
            f"{v['changes_type']}  ({counted})  {severity.of_stored(v['changes']) or ''}".rstrip()
        )
        for line in provenance_lines(v):
            typer.echo(f"    {line}")
        for change in v["changes"] or []:
            typer.echo(f"    {_change_line(change)}")


STATEMENT_CHARS = 160


def provenance_lines(v: dict[str, Any]) -> list[str]:
    """How a version was found, from which LSN and when; for a captured one, each DDL event: who
    ran it, from which application and client, in which transaction, and its statement (on one
    line, shortened)."""
    from rosetta import registry

    head = [registry.found_by(v["detected_by"])]
    if v["detected_by"] is not None or v["lsn"]:
        head.append(f"LSN {v['lsn']}" if v["lsn"] else "LSN not recorded")
    if v["changed_at"] is not None:
        head.append(f"at {v['changed_at'].isoformat(sep=' ', timespec='milliseconds')}")
    lines = [" · ".join(head)]
    for event in registry.provenance_events(v["provenance"]):
        facts = [f"by {registry.who(event) or 'an unknown role'}"]
        if event.get("application_name"):
            facts.append(f"app {event['application_name']}")
        facts.append(f"from {event['client_addr'] or 'a local socket'}")
        if event.get("backend_pid") is not None:
            facts.append(f"pid {event['backend_pid']}")
        if event.get("xid") is not None:
            facts.append(f"xid {event['xid']}")
        lines.append(registry.one_line(", ".join(str(f) for f in facts)))
        statement = event.get("statement")
        lines.append(
            "  " + registry.one_line(str(statement), STATEMENT_CHARS)
            if statement
            else "  (statement withheld: it may hold a secret)"
        )
    return lines


def _change_line(change: dict[str, Any]) -> str:
    kind, column = change.get("type"), change.get("column")
    before, after = change.get("before"), change.get("after")
    if kind == "NEW COLUMN":
        line = f"+ {column} {(after or {}).get('full_type', '')}"
    elif kind == "DROP COLUMN":
        line = f"- {column} {(before or {}).get('full_type', '')}"
    elif kind == "RENAME COLUMN":
        line = f"~ {before} renamed to {after}"
    elif kind == "RENAME TABLE":
        line = f"~ table renamed {before} -> {after}"
    elif kind == "RENAME TYPE":
        line = f"~ {column}: type renamed {before} -> {after}"
    elif kind == "CHANGES CARRIED":
        line = f"~ {column}: " + (
            "now carried by the stream" if after else "no longer carried by the stream"
        )
    elif kind == "CHANGES REPLICA IDENTITY":
        line = f"~ {column}: " + (
            "joins the replica identity" if after else "leaves the replica identity"
        )
    else:
        line = f"~ {column}: {str(kind).lower()} {before!r} -> {after!r}"
    if change.get("carried") is False:
        line += "  (not carried)"
    return line


@app.command()
def schema(
    name: str,
    table: str,
    at: Annotated[
        str | None,
        typer.Option(help="An RFC 3339 time with its timezone: 2026-12-02T10:00:00Z."),
    ] = None,
    lsn: Annotated[
        str | None, typer.Option(help="A WAL position of the source, X/Y: 0/16B3748.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One table's columns as of a time (--at) or a WAL position (--lsn): the version then in
    force, and how exact that answer is."""
    from rosetta import registry
    from rosetta.schema.model import display_name
    from rosetta.store import repository

    when = registry.parse_at(at) if at is not None else None
    position = registry.parse_lsn(lsn) if lsn is not None else None
    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        row = repository.find_table(store, src.id, table)
        answer, version = registry.schema_as_of(store, row["id"], at=when, lsn=position)
    finally:
        store.close()
    columns = [{**c.to_json(), "carried": c.is_carried} for c in version["columns"]]
    if as_json:
        print_json(
            {
                "id": row["id"],
                "schema": row["schema_name"],
                "table": row["table_name"],
                "at": when,
                "lsn": position,
                "version": answer.number,
                "changes_type": version["changes_type"],
                "exact": answer.exact,
                "exactness": answer.exactness,
                "next_version": answer.next_version,
                "detected_by": version["detected_by"],
                "version_lsn": version["lsn"],
                "changed_at": version["changed_at"],
                "created_at": version["created_at"],
                "columns": columns,
            }
        )
        return
    out = console()
    asked = f"at {when.isoformat()}" if when is not None else f"at LSN {position}"
    out.print(
        f"Table {esc(display_name(row['schema_name'], row['table_name']))} of source "
        f"{esc(name)} {asked}: v{answer.number} ({esc(version['changes_type'])})"
    )
    out.print(f"  {'exact' if answer.exact else 'approximate'}: {esc(answer.exactness)}")
    for line in provenance_lines(version):
        out.print(f"  {esc(line)}")
    if columns:
        out.print(_grid(columns))
    else:
        out.print(f"  no columns at v{answer.number}")
