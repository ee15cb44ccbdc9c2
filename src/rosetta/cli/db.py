"""`rosetta db`: Rosetta's own store."""

from __future__ import annotations

import typer

from rosetta.cli.base import app, context, fail

db_app = typer.Typer(help="Rosetta's own store.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's tables (versioned SQL migrations)."""
    from rosetta.store import db

    ctx = context()
    applied = db.upgrade(ctx.store_url)
    if applied:
        typer.echo(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        typer.echo("The store is up to date.")


@db_app.command("status")
def db_status() -> None:
    """Show the store's migrations: applied and pending."""
    from rosetta.store import db

    ctx = context()
    conn = db.connect(ctx.store_url, autocommit=True, check=False)
    try:
        applied = db.applied_migrations(conn) or set()
    finally:
        conn.close()
    for mid in db.migration_ids():
        typer.echo(f"{'applied' if mid in applied else 'pending'}  {mid}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded store's local PostgreSQL server, if it runs."""
    from rosetta.pg.embedded import EmbeddedStore

    ctx = context()
    if ctx.settings.database_url is not None:
        raise fail("ROSETTA_DATABASE_URL is set: there is no embedded store to stop")
    stopped = EmbeddedStore(ctx.settings.data_dir.resolve()).stop()
    typer.echo("Stopped the embedded store." if stopped else "The embedded store was not running.")
