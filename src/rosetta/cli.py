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
            check = sources.with_stored_password(params, src, box)
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
def refresh(
    name: str,
    as_json: JsonOpt = False,
    full: Annotated[
        bool, typer.Option("--full", help="Compare every table's columns, not only changed ones.")
    ] = False,
) -> None:
    """Sync one source now: find new tables, heal missing schemas, record changes."""
    from rosetta.store import repository
    from rosetta.sync import sync_source

    ctx = _settings_ctx()
    ctx.logging(to_stderr=as_json)
    store = ctx.store()
    try:
        src = repository.source_by_name(store, name)
        store.rollback()
        summary = sync_source(
            store, src, ctx.box(), timeout=ctx.settings.source_connect_timeout, full=full
        )
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

    ctx = _settings_ctx()
    ctx.logging()
    store = ctx.store()
    store.close()
    mon = Monitor(
        ctx.store_url,
        ctx.box(),
        interval=interval or ctx.settings.monitor_interval,
        concurrency=ctx.settings.monitor_concurrency,
        full_every=ctx.settings.monitor_full_every,
        timeout=ctx.settings.source_connect_timeout,
    )
    if once:
        mon.run_cycle()
        return
    from rosetta.webhooks import Dispatcher

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher = Dispatcher(
        ctx.store_url, ctx.box(), base_delay=ctx.settings.webhook_retry_base_seconds
    )
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


# --- repair --------------------------------------------------------------------------------


@app.command("fix-schema-versions")
def fix_schema_versions(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    source: Annotated[str | None, typer.Option(help="Repair one source only.")] = None,
) -> None:
    """Repair damaged history: duplicates, gaps, empty or phantom versions, missing INITIAL_LOAD,
    NULL schemas, and the missing unique constraint."""
    from rosetta import repair
    from rosetta.store import repository

    ctx = _settings_ctx()
    ctx.logging(to_stderr=True)
    store = ctx.store()
    try:
        src = repository.source_by_name(store, source) if source else None
        store.rollback()
        report = repair.plan(store, src.id if src else None)
        label = "Would repair" if dry_run else "Repaired"
        ids = {s.name: s.id for s in repository.list_sources(store)}
        store.rollback()
        for table in report.repaired:
            if not dry_run:
                repair.apply_table(store, ids[table.source], table)
            typer.echo(f"{label} {table.describe()}")
        heal = sorted(
            {t.source for t in report.tables if t.needs_schema or (t.changed and not t.versions)}
        )
        for name in heal:
            tables = [
                t.table
                for t in report.tables
                if t.source == name and (t.needs_schema or (t.changed and not t.versions))
            ]
            if dry_run:
                typer.echo(f"Would heal from source {name}: {', '.join(tables)}")
                continue
            from rosetta.sync import sync_source

            summary = sync_source(
                store,
                repository.source_by_id(store, ids[name]),
                ctx.box(),
                timeout=ctx.settings.source_connect_timeout,
            )
            if summary.error:
                typer.echo(f"Could not heal from source {name}: {summary.error}")
            else:
                healed = summary.healed + [c.table for c in summary.changed]
                typer.echo(f"Healed from source {name}: {', '.join(healed) or 'nothing to do'}")
        if report.constraint_missing:
            if dry_run:
                typer.echo(
                    "Would add the unique constraint on (table_metadata_list_id, version_schema)"
                )
            else:
                repair.add_constraint(store, report)
                if report.constraint_error:
                    typer.echo(f"Could not add the unique constraint: {report.constraint_error}")
                else:
                    typer.echo(
                        "Added the unique constraint on (table_metadata_list_id, version_schema)"
                    )
        unchanged = len(report.tables) - len(report.repaired)
        typer.echo(
            f"{len(report.repaired)} table(s) {'to repair' if dry_run else 'repaired'}, "
            f"{unchanged} already sound."
        )
    finally:
        store.close()


# --- API tokens ----------------------------------------------------------------------------

token_app = typer.Typer(help="API tokens for the REST API and the web UI.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for, e.g. ci-pipeline.")],
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the token (for scripts).")
    ] = False,
) -> None:
    """Make an API token. It is shown once: only its hash is kept."""
    from rosetta import tokens

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        token = tokens.create_token(store, name)
    finally:
        store.close()
    if quiet:
        typer.echo(token)
        return
    typer.echo(f"Created API token {name}. Copy it now: it is not shown again.\n")
    typer.echo(f"    {token}\n")
    typer.echo("Use it as a bearer token, or paste it on the web UI's login page:")
    typer.echo(f'    curl -H "Authorization: Bearer {token}" http://127.0.0.1:8000/api/v1/sources')
    typer.echo(f"Revoke it with: rosetta token revoke {name}")


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List the API tokens (names and use, never the tokens)."""
    from rosetta import tokens

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        rows = tokens.list_tokens(store)
    finally:
        store.close()
    if as_json:
        _print_json(
            [
                {
                    "name": t.name,
                    "created_at": t.created_at,
                    "last_used_at": t.last_used_at,
                    "revoked_at": t.revoked_at,
                    "active": t.active,
                }
                for t in rows
            ]
        )
        return
    if not rows:
        typer.echo("No API tokens yet: make one with `rosetta token create NAME`.")
        return
    from rich.table import Table

    table = Table("name", "created", "last used", "state")
    for t in rows:
        table.add_row(
            _esc(t.name),
            f"{t.created_at:%Y-%m-%d %H:%M:%S}",
            f"{t.last_used_at:%Y-%m-%d %H:%M:%S}" if t.last_used_at else "never",
            f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}" if t.revoked_at else "active",
        )
    _console().print(table)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke an API token: it stops working at once."""
    from rosetta import tokens

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        tokens.revoke_token(store, name)
    finally:
        store.close()
    typer.echo(f"Revoked API token {name}.")


# --- the web server ------------------------------------------------------------------------

HostOpt = Annotated[
    str, typer.Option(envvar="ROSETTA_HOST", help="Address to listen on.", show_default=True)
]
PortOpt = Annotated[
    int,
    typer.Option(
        envvar="ROSETTA_PORT", min=1, max=65535, help="Port to listen on.", show_default=True
    ),
]
NoMonitorOpt = Annotated[
    bool,
    typer.Option("--no-monitor", help="Do not run the schema monitor inside the server."),
]
NoWebhooksOpt = Annotated[
    bool,
    typer.Option(
        "--no-webhooks",
        help="Do not send webhooks from the server (a `rosetta monitor` elsewhere still can).",
    ),
]


def _serve(
    ctx: Context, host: str, port: int, *, with_monitor: bool, with_webhooks: bool = True
) -> None:
    """Run the API and the web UI (and the monitor, and the webhook dispatcher) until
    interrupted. Imports the web stack."""
    import uvicorn

    from rosetta.api.app import create_app
    from rosetta.monitor import Monitor

    box = ctx.box()
    ctx.store().close()  # fail fast, in one line, if the store is unreachable or not migrated
    monitor = (
        Monitor(
            ctx.store_url,
            box,
            interval=ctx.settings.monitor_interval,
            concurrency=ctx.settings.monitor_concurrency,
            timeout=ctx.settings.source_connect_timeout,
            full_every=ctx.settings.monitor_full_every,
        )
        if with_monitor
        else None
    )
    web = create_app(
        ctx.settings, ctx.store_url, box, monitor=monitor, dispatch_webhooks=with_webhooks
    )
    uvicorn.run(web, host=host, port=port, log_level=ctx.settings.log_level.lower())


@app.command()
def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    no_monitor: NoMonitorOpt = False,
    no_webhooks: NoWebhooksOpt = False,
) -> None:
    """Serve the REST API (/api/v1, docs at /docs, /metrics) and the web UI, with the schema
    monitor and the webhook dispatcher."""
    ctx = _settings_ctx()
    ctx.logging()
    _serve(ctx, host, port, with_monitor=not no_monitor, with_webhooks=not no_webhooks)


DEMO_DATABASE = "rosetta_demo"
DEMO_SOURCE = "demo"
DEMO_PUBLICATION = "rosetta_publication"
DEMO_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(255) NOT NULL UNIQUE,
    full_name varchar(200) NOT NULL,
    country char(2),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS products (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku varchar(32) NOT NULL UNIQUE,
    name varchar(200) NOT NULL,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status varchar(20) NOT NULL DEFAULT 'pending',
    total numeric(12, 2) NOT NULL DEFAULT 0,
    placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS order_items (
    order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no integer NOT NULL,
    product_id bigint NOT NULL REFERENCES products (id),
    quantity integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    unit_price numeric(10, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE IF NOT EXISTS shipments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    carrier varchar(50) NOT NULL,
    tracking_number varchar(64),
    shipped_at timestamptz,
    delivered_at timestamptz
);
"""


def _psql_command(ctx: Context, url: str) -> str:
    """A psql command for the demo database that does not show its password: the embedded
    store's password goes to a pgpass file beside it (mode 0600)."""
    import os

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    password = parts.pop("password", None)
    shown = make_conninfo("", **{k: v for k, v in parts.items() if v is not None})
    if password is None:
        return f'psql "{shown}"'
    if ctx.settings.database_url is not None:
        return f'psql "{shown}"'  # psql asks for the password

    def field(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    pgpass = ctx.settings.data_dir.resolve() / "pgpass"
    fields = (parts.get("host"), parts.get("port"), "*", parts.get("user"), password)
    fd = os.open(pgpass, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(":".join("*" if f == "*" else field(f) for f in fields) + "\n")
    return f'PGPASSFILE={pgpass} psql "{shown}"'


def _demo_database(store_url: str) -> tuple[str, bool]:
    """Create the demo source database beside the store (once); returns its URL, and whether
    ``shipments`` is in the publication yet."""
    from urllib.parse import quote

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    from rosetta.errors import SourceActionError

    parts = conninfo_to_dict(store_url)
    user = quote(str(parts.get("user") or ""), safe="")
    secret = parts.get("password")
    auth = f"{user}:{quote(str(secret), safe='')}" if secret else user
    host = quote(str(parts.get("host") or "127.0.0.1"), safe="")
    url = f"postgresql://{auth}@{host}:{parts.get('port') or 5432}/{DEMO_DATABASE}"
    try:
        with psycopg.connect(store_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DEMO_SCHEMA)
            has_pub = conn.execute(
                "SELECT 1 FROM pg_publication WHERE pubname = %s", (DEMO_PUBLICATION,)
            ).fetchone()
            if not has_pub:
                conn.execute(
                    sql.SQL("CREATE PUBLICATION {} FOR TABLE customers, orders, products").format(
                        sql.Identifier(DEMO_PUBLICATION)
                    )
                )
            if conn.execute("SELECT count(*) FROM customers").fetchone() == (0,):
                conn.execute(
                    "INSERT INTO customers (email, full_name, country) VALUES "
                    "('ada@example.com', 'Ada Lovelace', 'GB'), "
                    "('grace@example.com', 'Grace Hopper', 'US')"
                )
                conn.execute(
                    "INSERT INTO products (sku, name, price) VALUES "
                    "('TEA-001', 'Earl Grey, 100 g', 6.50), ('MUG-002', 'Mug', 12.00)"
                )
            shipments = conn.execute(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND tablename = %s",
                (DEMO_PUBLICATION, "shipments"),
            ).fetchone()
    except psycopg.Error as exc:
        from rosetta.catalog.reader import first_line

        raise SourceActionError(
            f"cannot create the demo database {DEMO_DATABASE}: {first_line(exc)}"
        ) from None
    return url, shipments is not None


@app.command()
def demo(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
) -> None:
    """Try Rosetta: a demo source database beside the embedded store, registered, then served."""
    import secrets

    from rosetta import sources, tokens
    from rosetta.errors import SourceNotFoundError
    from rosetta.store import db, repository
    from rosetta.sync import sync_source

    ctx = _settings_ctx()
    ctx.logging()
    typer.echo("Starting the store (the first start takes a few seconds)...")
    db.upgrade(ctx.store_url)
    demo_url, shipments_published = _demo_database(ctx.store_url)
    box = ctx.box()
    store = ctx.store()
    try:
        try:
            source = repository.source_by_name(store, DEMO_SOURCE)
            store.rollback()
        except SourceNotFoundError:
            store.rollback()
            params = sources.parse_dsn(demo_url)
            source = sources.add_source(
                store, box, sources.SourceInput(DEMO_SOURCE, params, DEMO_PUBLICATION)
            )
        sync_source(store, source, box, timeout=ctx.settings.source_connect_timeout)
        token_name = f"demo-{secrets.token_hex(4)}"
        token = tokens.create_token(store, token_name)
    finally:
        store.close()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    if shipments_published:
        what = "change a table"
        statement = "ALTER TABLE customers ADD COLUMN phone varchar(30);"
    else:
        what = "add a table to the publication"
        statement = f"ALTER PUBLICATION {DEMO_PUBLICATION} ADD TABLE shipments;"
    typer.echo(
        f"""
Rosetta is ready. Source '{DEMO_SOURCE}' tracks publication {DEMO_PUBLICATION} of the demo
database {DEMO_DATABASE}.

  Web UI:    http://{shown}:{port}/      (log in with the token below)
  API docs:  http://{shown}:{port}/docs
  API token: {token}      (named {token_name}; shown once)

  curl -H "Authorization: Bearer {token}" http://{shown}:{port}/api/v1/sources

Try it: {what}, then wait for the monitor (up to {ctx.settings.monitor_interval:g} s) or
press Refresh on the source's page:

  {_psql_command(ctx, demo_url)} -c '{statement}'

Press Ctrl+C to stop.
"""
    )
    _serve(ctx, host, port, with_monitor=True, with_webhooks=True)


@app.command()
def doctor(
    source: Annotated[str | None, typer.Argument(help="Check one source.")] = None,
    table: Annotated[str | None, typer.Argument(help="Check one table of it.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show passing table checks too.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Diagnose the store, the monitor, sources and tables; each problem with its fix."""
    from rosetta import doctor as doc
    from rosetta.store import db, repository

    ctx = _settings_ctx()
    diag = doc.Diagnosis()
    try:
        store = db.connect(ctx.store_url, check=False)
    except RosettaError as exc:
        diag.add("store", doc.FAIL, exc.message, "check ROSETTA_DATABASE_URL")
        store = None
    if store is not None:
        try:
            src = None
            if source:
                try:
                    db.ensure_migrated(store)
                except RosettaError:
                    pass  # the store check reports it
                else:
                    src = repository.source_by_name(store, source)  # unknown: one-line error
                store.rollback()
            doc.diagnose(
                store, ctx.box(), src, table, timeout=ctx.settings.source_connect_timeout, diag=diag
            )
        finally:
            store.close()
    if as_json:
        _print_json(diag.to_json())
    else:
        subject = None
        hidden = 0
        for check in diag.checks:
            is_table = "/" in check.subject
            if check.status == doc.PASS and is_table and not (verbose or table):
                hidden += 1
                continue
            if check.subject != subject:
                subject = check.subject
                if subject:
                    typer.echo(subject)
            typer.echo(f"  {check.status}  {check.name:<17} {check.detail}")
            if check.fix:
                typer.echo(f"        fix: {check.fix}")
        counts = diag.counts()
        extra = f" ({hidden} passing table checks hidden; -v shows them)" if hidden else ""
        typer.echo(
            f"{counts['PASS']} passed, {counts['WARN']} warning(s), {counts['FAIL']} failed{extra}"
        )
    if diag.failed:
        raise typer.Exit(1)


# --- webhooks ------------------------------------------------------------------------------

webhook_app = typer.Typer(help="Webhooks called on schema changes.", no_args_is_help=True)
app.add_typer(webhook_app, name="webhook")


@webhook_app.command("add")
def webhook_add(
    source: str,
    url: str,
    event: Annotated[
        list[str] | None,
        typer.Option(
            "--event",
            help="schema.changed, table.added, table.removed, table.healed (repeat; default all)",
        ),
    ] = None,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read an HMAC-SHA256 signing secret from stdin.")
    ] = False,
) -> None:
    """Call URL with a JSON body on every schema change of SOURCE."""
    from rosetta import webhooks
    from rosetta.store import repository

    ctx = _settings_ctx()
    secret = _read_password_stdin() if secret_stdin else None
    store = ctx.store()
    try:
        src = repository.source_by_name(store, source)
        row = webhooks.add_endpoint(store, ctx.box(), src.id, url, secret, event)
    finally:
        store.close()
    signed = "signed" if secret else "unsigned"
    typer.echo(
        f"Added webhook {row['id']} for {source}: {url} ({signed}; events: "
        f"{', '.join(row['events'])})"
    )


@webhook_app.command("list")
def webhook_list(
    source: Annotated[str | None, typer.Argument(help="One source only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List webhooks, with their delivery counts."""
    from rosetta import webhooks
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        src_id = repository.source_by_name(store, source).id if source else None
        rows = webhooks.list_endpoints(store, src_id)
    finally:
        store.close()
    if as_json:
        _print_json(rows)
        return
    if not rows:
        typer.echo("No webhooks: add one with `rosetta webhook add SOURCE URL`.")
        return
    for r in rows:
        typer.echo(
            f"{r['id']:>4}  {r['source']}  {r['url']}  events: {', '.join(r['events'])}  "
            f"{'signed' if r['signed'] else 'unsigned'}  delivered {r['delivered']}, "
            f"pending {r['pending']}, failed {r['failed']}"
        )


@webhook_app.command("remove")
def webhook_remove(endpoint_id: int) -> None:
    """Remove a webhook (its pending deliveries go with it)."""
    from rosetta import webhooks

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        webhooks.remove_endpoint(store, endpoint_id)
    finally:
        store.close()
    typer.echo(f"Removed webhook {endpoint_id}.")


@webhook_app.command("test")
def webhook_test(endpoint_id: int) -> None:
    """Send a test event to a webhook now."""
    from rosetta import webhooks

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        result = webhooks.send_test(store, ctx.box(), endpoint_id)
    finally:
        store.close()
    if not result.ok:
        raise fail(f"the test delivery failed: {result.error or result.status_code}", 9)
    typer.echo(f"Test delivery answered {result.status_code}.")


@webhook_app.command("deliveries")
def webhook_deliveries(
    source: Annotated[str | None, typer.Argument(help="One source only.")] = None,
    endpoint: Annotated[int | None, typer.Option(help="One webhook's deliveries.")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """The delivery log: newest first, with status codes."""
    from rosetta import webhooks
    from rosetta.store import repository

    ctx = _settings_ctx()
    store = ctx.store()
    try:
        src_id = repository.source_by_name(store, source).id if source else None
        rows = webhooks.deliveries(store, source_id=src_id, endpoint_id=endpoint, limit=limit)
    finally:
        store.close()
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        code = r["last_status_code"] or "-"
        typer.echo(
            f"{r['id']:>6}  {r['created_at']:%Y-%m-%d %H:%M:%S}  {r['event_type']:<15} "
            f"{r['tbl'] or '-'} v{r['version'] or '-'}  {r['status']} ({code}, "
            f"{r['attempts']} attempts){'  ' + r['last_error'] if r['last_error'] else ''}"
        )


@webhook_app.command("deliver")
def webhook_deliver(
    wait: Annotated[float, typer.Option(help="Give up after this many seconds.")] = 30.0,
) -> None:
    """Send the due deliveries of the outbox now (the monitor and serve do it continuously)."""
    from rosetta import webhooks

    ctx = _settings_ctx()
    ctx.logging()
    store = ctx.store()
    try:
        webhooks.wait_idle(store, ctx.box(), wait)
    finally:
        store.close()


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
