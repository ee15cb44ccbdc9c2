"""`rosetta source`: register and manage source databases."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rosetta.cli.base import (
    JsonOpt,
    app,
    console,
    context,
    esc,
    print_json,
    print_summary,
    read_secret_stdin,
)

WebhookSeverityOpt = Annotated[
    str | None,
    typer.Option(
        "--webhook-severity",
        help="Which changes send webhooks: all, or only breaking ones.",
        metavar="all|breaking",
    ),
]

IntervalOpt = Annotated[
    float | None,
    typer.Option(
        "--interval",
        help="Seconds between two scheduled syncs of this source (0: the default, "
        "ROSETTA_MONITOR_INTERVAL).",
        metavar="SECONDS",
    ),
]

source_app = typer.Typer(help="Register and manage source databases.", no_args_is_help=True)
app.add_typer(source_app, name="source")


@source_app.command("add")
def source_add(
    name: Annotated[str, typer.Argument(help="A short name for the source.")],
    dsn: Annotated[str, typer.Option(help="postgresql://user[:password]@host:port/dbname")],
    publication: Annotated[str, typer.Option(help="The publication to track.")],
    slot: Annotated[
        str | None, typer.Option(help="The replication slot the pipeline uses.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    sync: Annotated[bool, typer.Option(help="Sync the publication right away.")] = True,
    webhook_severity: WebhookSeverityOpt = None,
    interval: IntervalOpt = None,
) -> None:
    """Register a source database (its connection is tested first)."""
    from rosetta import services, sources

    ctx = context()
    params = sources.parse_dsn(dsn, read_secret_stdin() if password_stdin else None)
    severity = "all" if webhook_severity is None else webhook_severity
    data = sources.SourceInput(name, params, publication, slot, severity, interval or None)
    services.validate(data)
    box = ctx.box()
    if sync:
        ctx.logging()
    with ctx.unit() as store:
        done = services.register_source(store, box, ctx.limits(), data, sync=sync)
    source = done.source
    typer.echo(
        f"Added source {source.name} ({source.address}, publication {source.publication_name})."
    )
    if not done.state.publication_exists:
        typer.echo(
            f"Warning: publication {publication!r} does not exist on the source yet; "
            "Rosetta will track it once it is created."
        )
    if done.sync is not None:
        print_summary(done.sync)


@source_app.command("update")
def source_update(
    name: str,
    dsn: Annotated[str | None, typer.Option(help="New connection URL.")] = None,
    publication: Annotated[str | None, typer.Option(help="New publication.")] = None,
    slot: Annotated[str | None, typer.Option(help="New replication slot ('' for none).")] = None,
    rename: Annotated[str | None, typer.Option(help="New name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
    webhook_severity: WebhookSeverityOpt = None,
    interval: IntervalOpt = None,
) -> None:
    """Change a source's connection, publication, slot, name, webhook severity or sync
    interval."""
    from rosetta import services, sources
    from rosetta.catalog.reader import ConnectionParams
    from rosetta.store import repository

    ctx = context()
    password = read_secret_stdin() if password_stdin else None
    with ctx.unit() as store:
        src = repository.source_by_name(store, name)
        if dsn is not None:
            params = sources.parse_dsn(dsn, password)
        else:
            params = ConnectionParams(
                src.host, src.port, src.database, src.username, password, dict(src.connect_options)
            )
        data = sources.SourceInput(
            rename or src.name,
            params,
            publication or src.publication_name,
            (slot or None) if slot is not None else src.replication_name,
            webhook_severity if webhook_severity is not None else src.webhook_severity,
            src.sync_interval_seconds if interval is None else (interval or None),
        )
        done = services.update_source(store, ctx.box(), ctx.limits(), src, data)
    typer.echo(f"Updated source {done.source.name}.")


@source_app.command("list")
def source_list(as_json: JsonOpt = False) -> None:
    """List the registered sources."""
    from rosetta.store import repository

    ctx = context()
    store = ctx.store(autocommit=True)
    try:
        rows = repository.list_sources(store)
    finally:
        store.close()
    if as_json:
        print_json([_source_json(s) for s in rows])
        return
    if not rows:
        typer.echo(
            "No sources yet: add one with `rosetta source add NAME --dsn URL --publication PUB`."
        )
        return
    from rich.table import Table

    table = Table("name", "address", "publication", "slot", "tables", "last sync", "by")
    for s in rows:
        pub = f"{s.publication_name} ({'ok' if s.is_publication_enabled else 'missing'})"
        slot = (
            f"{s.replication_name} ({'ok' if s.is_replication_enabled else 'missing'})"
            if s.replication_name
            else "-"
        )
        last = (
            f"{s.last_sync_at:%Y-%m-%d %H:%M:%S} {s.last_sync_status}"
            if s.last_sync_at
            else "never"
        )
        table.add_row(
            esc(s.name),
            esc(s.address),
            esc(pub),
            esc(slot),
            str(s.table_count or 0),
            esc(last),
            esc(s.last_sync_by or "-"),
        )
    console().print(table)


def _source_json(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "host": s.host,
        "port": s.port,
        "database": s.database,
        "username": s.username,
        "publication_name": s.publication_name,
        "replication_name": s.replication_name,
        "webhook_severity": s.webhook_severity,
        "is_publication_enabled": s.is_publication_enabled,
        "is_replication_enabled": s.is_replication_enabled,
        "tables": s.table_count,
        "last_sync_at": s.last_sync_at,
        "last_sync_status": s.last_sync_status,
        "last_sync_error": s.last_sync_error,
        "last_sync_by": s.last_sync_by,
    }


@source_app.command("remove")
def source_remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a source, with its tracked tables and their history (the source is untouched)."""
    from rosetta import services
    from rosetta.store import repository

    ctx = context()
    with ctx.unit() as store:
        src = repository.source_by_name(store, name)
        if not yes and not typer.confirm(
            f"Remove source {name} and the history of its tables from Rosetta?"
        ):
            raise typer.Exit(1)
        services.remove_source(store, src.id)
    typer.echo(f"Removed source {name}.")
