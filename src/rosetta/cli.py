"""The ``rosetta`` command.

Each command imports what it needs when it runs, so `rosetta refresh` never loads the web stack.
Every error is one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rosetta.errors import RosettaError, StoreUnavailableError

if TYPE_CHECKING:
    from rosetta.config import Settings
    from rosetta.crypto import SecretBox
    from rosetta.store.repository import Conn

app = typer.Typer(
    help="Rosetta: the schema of every table your PostgreSQL publications carry, and its history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Rosetta's own store.", no_args_is_help=True)
source_app = typer.Typer(help="Register and manage source databases.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(source_app, name="source")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class Context:
    """Settings, the store and the key, made when a command first needs them."""

    def __init__(self) -> None:
        from rosetta.config import Settings

        self.settings: Settings = Settings()
        self._url: str | None = None

    @property
    def store_url(self) -> str:
        if self._url is None:
            from rosetta.runtime import store_url

            self._url = store_url(self.settings)
        return self._url

    def store(self, *, autocommit: bool = False) -> Conn:
        from rosetta.store import db

        return db.connect(self.store_url, autocommit=autocommit)

    def box(self) -> SecretBox:
        from rosetta.runtime import secret_box

        return secret_box(self.settings)

    def logging(self, *, to_stderr: bool = False) -> None:
        from rosetta import logs

        logs.setup(
            self.settings.log_level,
            self.settings.log_file,
            stream_to=sys.stderr if to_stderr else sys.stdout,
        )


def _settings_ctx() -> Context:
    return Context()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _esc(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


# --- db ------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the store's tables (versioned SQL migrations)."""
    from rosetta.store import db

    ctx = _settings_ctx()
    applied = db.upgrade(ctx.store_url)
    if applied:
        typer.echo(f"Applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        typer.echo("The store is up to date.")


@db_app.command("status")
def db_status() -> None:
    """Show the store's migrations: applied and pending."""
    from rosetta.store import db

    ctx = _settings_ctx()
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

    ctx = _settings_ctx()
    if ctx.settings.database_url is not None:
        raise fail("ROSETTA_DATABASE_URL is set: there is no embedded store to stop")
    stopped = EmbeddedStore(ctx.settings.data_dir.resolve()).stop()
    typer.echo("Stopped the embedded store." if stopped else "The embedded store was not running.")


# --- sources -------------------------------------------------------------------------------


def _read_password_stdin() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


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
) -> None:
    """Register a source database (its connection is tested first)."""
    from rosetta import sources

    ctx = _settings_ctx()
    params = sources.parse_dsn(dsn, _read_password_stdin() if password_stdin else None)
    data = sources.SourceInput(name, params, publication, slot)
    sources.validate_name(name)
    state = sources.check_connection(params, publication, slot, ctx.settings.source_connect_timeout)
    box = ctx.box()
    store = ctx.store()
    try:
        source = sources.add_source(store, box, data)
        typer.echo(
            f"Added source {source.name} ({source.address}, publication {source.publication_name})."
        )
        if not state.publication_exists:
            typer.echo(
                f"Warning: publication {publication!r} does not exist on the source yet; "
                "Rosetta will track it once it is created."
            )
        if sync:
            ctx.logging()
            from rosetta.sync import sync_source

            summary = sync_source(store, source, box, timeout=ctx.settings.source_connect_timeout)
            _print_summary(summary)
    finally:
        store.close()


@source_app.command("update")
def source_update(
    name: str,
    dsn: Annotated[str | None, typer.Option(help="New connection URL.")] = None,
    publication: Annotated[str | None, typer.Option(help="New publication.")] = None,
    slot: Annotated[str | None, typer.Option(help="New replication slot ('' for none).")] = None,
    rename: Annotated[str | None, typer.Option(help="New name.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Change a source's connection, publication, slot or name."""
    from rosetta import sources
    from rosetta.catalog.reader import ConnectionParams
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        src = repository.source_by_name(store, name)
        password = _read_password_stdin() if password_stdin else None
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
        )
        box = ctx.box()
        if params.password is not None or dsn is not None:
            check = params
            if check.password is None and src.password_encrypted:
                from rosetta.sync import connection_params

                old = connection_params(src, box)
                check = ConnectionParams(
                    params.host,
                    params.port,
                    params.database,
                    params.username,
                    old.password,
                    params.options,
                )
            sources.check_connection(
                check,
                data.publication_name,
                data.replication_name,
                ctx.settings.source_connect_timeout,
            )
        updated = sources.update_source(store, box, src, data)
        typer.echo(f"Updated source {updated.name}.")
    finally:
        store.close()


@source_app.command("list")
def source_list(as_json: JsonOpt = False) -> None:
    """List the registered sources."""
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store(autocommit=True)
    try:
        rows = repository.list_sources(store)
    finally:
        store.close()
    if as_json:
        _print_json([_source_json(s) for s in rows])
        return
    if not rows:
        typer.echo(
            "No sources yet: add one with `rosetta source add NAME --dsn URL --publication PUB`."
        )
        return
    from rich.table import Table

    table = Table("name", "address", "publication", "slot", "tables", "last sync")
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
            _esc(s.name),
            _esc(s.address),
            _esc(pub),
            _esc(slot),
            str(s.table_count or 0),
            _esc(last),
        )
    _console().print(table)


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
        "is_publication_enabled": s.is_publication_enabled,
        "is_replication_enabled": s.is_replication_enabled,
        "tables": s.table_count,
        "last_sync_at": s.last_sync_at,
        "last_sync_status": s.last_sync_status,
        "last_sync_error": s.last_sync_error,
    }


@source_app.command("remove")
def source_remove(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Forget a source, with its tracked tables and their history (the source is untouched)."""
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        src = repository.source_by_name(store, name)
        if not yes and not typer.confirm(
            f"Remove source {name} and the history of its tables from Rosetta?"
        ):
            raise typer.Exit(1)
        repository.delete_source(store, src.id)
        store.commit()
    finally:
        store.close()
    typer.echo(f"Removed source {name}.")


# --- sync ----------------------------------------------------------------------------------


def _print_summary(summary: Any) -> None:
    typer.echo(f"Source {summary.source}: {summary.status} in {summary.duration:.2f}s")
    if summary.error:
        typer.echo(f"  error: {summary.error}")
        return
    for label, items in (
        ("added", summary.added),
        ("healed", summary.healed),
        ("removed", summary.removed),
        ("rejoined", summary.rejoined),
        ("skipped (no columns)", summary.skipped),
    ):
        if items:
            typer.echo(
                f"  {label}: {len(items)}: {', '.join(items[:20])}"
                + (" ..." if len(items) > 20 else "")
            )
    if summary.changed:
        shown = ", ".join(
            f"{c.table} v{c.version} ({c.changes_type})" for c in summary.changed[:20]
        )
        typer.echo(
            f"  changed: {len(summary.changed)}: {shown}"
            + (" ..." if len(summary.changed) > 20 else "")
        )
    for table, error in summary.failed:
        typer.echo(f"  failed: {table}: {error}")
    typer.echo(f"  unchanged: {summary.unchanged}")


@app.command()
def refresh(name: str, as_json: JsonOpt = False) -> None:
    """Sync one source now: find new tables, heal missing schemas, record changes."""
    from rosetta.store import repository
    from rosetta.sync import sync_source

    ctx = _settings_ctx()
    ctx.logging(to_stderr=as_json)
    store = ctx.store()
    try:
        src = repository.source_by_name(store, name)
        store.rollback()
        summary = sync_source(store, src, ctx.box(), timeout=ctx.settings.source_connect_timeout)
    finally:
        store.close()
    if as_json:
        _print_json(summary.to_json())
    elif not summary.error:
        _print_summary(summary)
    if summary.error:
        raise fail(f"sync of source {name!r} failed: {summary.error}", 5)
    if not summary.publication_exists:
        raise fail(
            f"publication {src.publication_name!r} does not exist on source {name!r}: create it "
            f"(CREATE PUBLICATION ...) or fix it with `rosetta source update {name} "
            "--publication NAME`",
            6,
        )
    if summary.failed:
        raise typer.Exit(7)


@app.command()
def monitor(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between cycles [env: ROSETTA_MONITOR_INTERVAL]")
    ] = None,
) -> None:
    """Watch every source: a sync cycle every interval (default 60 s)."""
    import signal
    import threading

    from rosetta.monitor import Monitor

    ctx = _settings_ctx()
    ctx.logging()
    store = ctx.store()
    store.close()
    mon = Monitor(
        ctx.store_url,
        ctx.box(),
        interval=interval or ctx.settings.monitor_interval,
        concurrency=ctx.settings.monitor_concurrency,
        timeout=ctx.settings.source_connect_timeout,
    )
    if once:
        mon.run_cycle()
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    mon.run_forever(stop)


# --- reading -------------------------------------------------------------------------------


@app.command()
def tables(name: str, as_json: JsonOpt = False) -> None:
    """The tables of a source: version, column count and status of each."""
    from rosetta.schema.model import display_name
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        rows = repository.list_tables(store, src.id)
    finally:
        store.close()
    if as_json:
        _print_json(
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
            _esc(display_name(r["schema_name"], r["table_name"])),
            str(r["version"] or "-"),
            str(r["column_count"]),
            _esc(status),
            last,
        )
    _console().print(table)


@app.command()
def history(name: str, table: str, as_json: JsonOpt = False) -> None:
    """The versions of one table's schema: change type, time, and each change."""
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store(autocommit=True)
    try:
        src = repository.source_by_name(store, name)
        row = repository.find_table(store, src.id, table)
        versions = repository.history(store, row["id"])
    finally:
        store.close()
    if as_json:
        _print_json(
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


# --- entry point ---------------------------------------------------------------------------


def main() -> None:
    try:
        app()
    except RosettaError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            err = StoreUnavailableError(f"the store failed: {str(exc).strip().splitlines()[-1]}")
            typer.echo(f"Error: {err.message}", err=True)
            sys.exit(err.exit_code)
        logging.getLogger("rosetta").debug("unexpected error", exc_info=True)
        typer.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(70)
