"""Syncing and reading: `rosetta refresh`, `monitor`, `tables`, `history`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rosetta.cli.base import JsonOpt, app, console, context, esc, fail, print_json, print_summary


@app.command()
def refresh(
    name: str,
    as_json: JsonOpt = False,
    full: Annotated[
        bool, typer.Option("--full", help="Compare every table's columns, not only changed ones.")
    ] = False,
) -> None:
    """Sync one source now: find new tables, heal missing schemas, record changes."""
    from rosetta.errors import PublicationMissingError
    from rosetta.store import repository
    from rosetta.sync import sync_source

    ctx = context()
    ctx.logging(to_stderr=as_json)
    with ctx.unit() as store:
        src = repository.source_by_name(store, name)
        summary = sync_source(store, src, ctx.box(), limits=ctx.limits(), full=full)
    if as_json:
        print_json(summary.to_json())
    elif not summary.error:
        print_summary(summary)
    if summary.error:
        raise fail(f"sync of source {name!r} failed: {summary.error}", 5)
    if not summary.publication_exists:
        raise PublicationMissingError(
            f"publication {src.publication_name!r} does not exist on source {name!r}: create it "
            f"(CREATE PUBLICATION ...) or fix it with `rosetta source update {name} "
            "--publication NAME`"
        )
    if summary.failed:
        raise typer.Exit(7)


@app.command()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between cycles (default 60).", envvar="ROSETTA_MONITOR_INTERVAL"
        ),
    ] = None,
) -> None:
    """Watch every source: a sync cycle every interval (default 60 s)."""
    import signal
    import threading

    from rosetta.monitor import Monitor

    ctx = context()
    ctx.logging()
    store = ctx.store()
    store.close()
    mon = Monitor(
        ctx.store_url,
        ctx.box(),
        interval=interval or ctx.settings.monitor_interval,
        concurrency=ctx.settings.monitor_concurrency,
        full_every=ctx.settings.monitor_full_every,
        limits=ctx.limits(),
    )
    if once:
        mon.run_cycle()
        return
    from rosetta.webhooks import Dispatcher, Options

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher = Dispatcher(ctx.store_url, ctx.box(), Options.from_settings(ctx.settings))
    dispatcher.start()
    try:
        mon.run_forever(stop)
    finally:
        dispatcher.stop()


# --- reading -------------------------------------------------------------------------------


@app.command()
def tables(name: str, as_json: JsonOpt = False) -> None:
    """The tables of a source: version, column count and status of each."""
    from rosetta.schema.model import display_name
    from rosetta.store import repository

    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        rows = repository.list_tables(store, src.id)
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
                }
                for r in rows
            ]
        )
        return
    if not rows:
        typer.echo(f"Source {name} tracks no tables yet.")
        return
    from rich.table import Table

    table = Table("table", "version", "columns", "status", "last change")
    for r in rows:
        status = r["status"]
        if r["status"] == "error" and r["last_error"]:
            status = f"error: {r['last_error']}"
        elif r["has_select_privilege"] is False:
            status += " (no SELECT grant)"
        last = (
            f"{r['last_change_type']} {r['last_change_at']:%Y-%m-%d %H:%M:%S}"
            if r["last_change_at"]
            else "-"
        )
        table.add_row(
            esc(display_name(r["schema_name"], r["table_name"])),
            str(r["version"] or "-"),
            str(r["column_count"]),
            esc(status),
            last,
        )
    console().print(table)


@app.command()
def history(name: str, table: str, as_json: JsonOpt = False) -> None:
    """The versions of one table's schema: change type, time, and each change."""
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
                    "schema": v["schema_table_new"],
                }
                for v in versions
            ]
        )
        return
    if not versions:
        typer.echo("No versions recorded yet.")
        return
    for v in versions:
        cols = len(v["schema_table_new"] or {})
        typer.echo(
            f"v{v['version_schema']}  {v['created_at']:%Y-%m-%d %H:%M:%S}  "
            f"{v['changes_type']}  ({cols} columns)"
        )
        for change in v["changes"] or []:
            typer.echo(f"    {_change_line(change)}")


def _change_line(change: dict[str, Any]) -> str:
    kind, column = change.get("type"), change.get("column")
    before, after = change.get("before"), change.get("after")
    if kind == "NEW COLUMN":
        return f"+ {column} {(after or {}).get('full_type', '')}"
    if kind == "DROP COLUMN":
        return f"- {column} {(before or {}).get('full_type', '')}"
    if kind == "RENAME COLUMN":
        return f"~ {before} renamed to {after}"
    return f"~ {column}: {str(kind).lower()} {before!r} -> {after!r}"
