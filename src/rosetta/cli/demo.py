"""``rosetta demo``: a demo source database beside the embedded store, registered, then served."""

from __future__ import annotations

import re
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from rosetta.cli.base import Context, app, context
from rosetta.cli.server import HostOpt, PortOpt, bind_listener, run_server

if TYPE_CHECKING:
    import socket

    import psycopg

    from rosetta.pg.embedded import EmbeddedStore

DEMO_DATABASE = "rosetta_demo"
DEMO_SOURCE = "demo"
DEMO_PUBLICATION = "rosetta_publication"
DEMO_TOKEN_RE = re.compile(r"^demo-[0-9a-f]{8}$")
"""The names of the demo's tokens: each start revokes the earlier ones."""
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


DEMO_ROLE = "rosetta_demo"
DEMO_TABLES = ("customers", "products", "orders", "order_items", "shipments")


def _demo_database(store_url: str) -> tuple[str, str, Suggestion]:
    """Create the demo source database beside the store (once), owned by a role of its own;
    returns the URL Rosetta reads it with, the URL of the store's own user for it (the user plays
    the DBA with it), and the change to suggest (:func:`_suggestion`).

    The demo source never uses the store's superuser: its role may log in, owns the demo's
    tables and publication (so that it, and the printed psql command, may change them), and
    holds nothing else — no superuser, no replication, no other database. Its password is new
    at every start.
    """
    import secrets
    from urllib.parse import quote

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from rosetta.errors import SourceActionError
    from rosetta.uow import map_source_errors

    parts = conninfo_to_dict(store_url)
    role_password = secrets.token_urlsafe(24)
    host = quote(str(parts.get("host") or "127.0.0.1"), safe="")
    where = f"{host}:{parts.get('port') or 5432}/{DEMO_DATABASE}"
    url = f"postgresql://{DEMO_ROLE}:{quote(role_password, safe='')}@{where}"
    admin_url = make_conninfo(store_url, dbname=DEMO_DATABASE)
    role, database = sql.Identifier(DEMO_ROLE), sql.Identifier(DEMO_DATABASE)
    with map_source_errors(SourceActionError, f"cannot create the demo database {DEMO_DATABASE}"):
        with psycopg.connect(store_url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(database))
            has_role = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (DEMO_ROLE,)
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                    "NOBYPASSRLS PASSWORD {}"
                ).format(
                    sql.SQL("ALTER" if has_role else "CREATE"), role, sql.Literal(role_password)
                )
            )
            conn.execute(
                sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(database, role)
            )
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(DEMO_SCHEMA)
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
            for table in DEMO_TABLES:
                conn.execute(
                    sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), role)
                )
            has_pub = conn.execute(
                "SELECT 1 FROM pg_publication WHERE pubname = %s", (DEMO_PUBLICATION,)
            ).fetchone()
            if not has_pub:
                conn.execute(
                    sql.SQL("CREATE PUBLICATION {} FOR TABLE customers, orders, products").format(
                        sql.Identifier(DEMO_PUBLICATION)
                    )
                )
            conn.execute(
                sql.SQL("ALTER PUBLICATION {} OWNER TO {}").format(
                    sql.Identifier(DEMO_PUBLICATION), role
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
            suggestion = _suggestion(conn)
    return url, admin_url, suggestion


class Suggestion(NamedTuple):
    what: str
    statement: str


def _suggestion(conn: psycopg.Connection[Any]) -> Suggestion:
    """The change the demo suggests, chosen from the demo database's current state, as a
    statement that succeeds however often it runs: first ``shipments`` joins the publication
    (``SET TABLE`` with the current members and it), then ``customers.phone`` is added, dropped,
    added again at each start (``IF NOT EXISTS``, ``IF EXISTS``). Names are quoted by the server
    (``quote_ident``) wherever they need it."""
    members = [
        str(row[0])
        for row in conn.execute(
            "SELECT CASE WHEN schemaname = 'public' THEN quote_ident(tablename) "
            "ELSE quote_ident(schemaname) || '.' || quote_ident(tablename) END "
            "FROM pg_publication_tables WHERE pubname = %s ORDER BY schemaname, tablename",
            (DEMO_PUBLICATION,),
        )
    ]
    if "shipments" not in members:
        tables = ", ".join([*members, "shipments"])
        return Suggestion(
            "add a table to the publication",
            f"ALTER PUBLICATION {DEMO_PUBLICATION} SET TABLE {tables};",
        )
    has_phone = conn.execute(
        "SELECT 1 FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = 'customers' AND column_name = 'phone'"
    ).fetchone()
    if has_phone is None:
        return Suggestion(
            "add a column", "ALTER TABLE customers ADD COLUMN IF NOT EXISTS phone varchar(30);"
        )
    return Suggestion("drop a column", "ALTER TABLE customers DROP COLUMN IF EXISTS phone;")


class _Terminated(BaseException):
    """SIGTERM, raised where the demo runs so that it stops what it started."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


@app.command()
def demo(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
) -> None:
    """Try Rosetta: a demo source database beside the embedded store, registered, then served.
    Ctrl+C stops it, and the embedded store's server too if the demo started it."""
    from rosetta.pg.embedded import EmbeddedStore

    listener = bind_listener(host, port)  # before anything is printed or started
    ctx = context()
    ctx.announce_start = False  # the demo says it at exit instead
    embedded = (
        EmbeddedStore(ctx.settings.data_dir.resolve())
        if ctx.settings.database_url is None
        else None
    )
    ran_before = embedded is not None and embedded.has_live_server()
    signal.signal(signal.SIGTERM, _terminated)
    stopped_by: signal.Signals | None = None
    try:
        with listener:
            _run_demo(ctx, host, port, listener)
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    except _Terminated:
        stopped_by = signal.SIGTERM
    finally:
        # A second Ctrl+C (or a service manager's SIGTERM) must not cut the clean stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        typer.echo(_stop(embedded, ran_before))
    if stopped_by is not None:
        # End as the signal ends a program (as `rosetta serve` does), so a shell or a service
        # manager sees what stopped it.
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(stopped_by, signal.SIG_DFL)
        signal.raise_signal(stopped_by)


def _stop(embedded: EmbeddedStore | None, ran_before: bool) -> str:
    """Stop what the demo started; one line saying what was stopped and what keeps running."""
    if embedded is None:
        return "Demo stopped; the store at ROSETTA_DATABASE_URL keeps running."
    if ran_before:
        return (
            "Demo stopped; the embedded store's PostgreSQL server was running before the demo, "
            "so it keeps running: `rosetta db stop` stops it."
        )
    if embedded.stop():
        started = embedded.pgdata
        return f"Demo stopped, and with it the embedded PostgreSQL server it started ({started})."
    return "Demo stopped; no embedded PostgreSQL server was left to stop."


def _run_demo(ctx: Context, host: str, port: int, listener: socket.socket) -> None:
    import secrets
    import shlex

    from rosetta import services, sources, tokens
    from rosetta.errors import SourceNotFoundError
    from rosetta.store import db, repository

    ctx.logging()
    typer.echo("Starting the store (the first start takes a few seconds)...")
    db.upgrade(ctx.store_url)
    demo_url, dba_url, suggestion = _demo_database(ctx.store_url)
    box = ctx.box()
    with ctx.unit() as store:
        demo_input = sources.SourceInput(DEMO_SOURCE, sources.parse_dsn(demo_url), DEMO_PUBLICATION)
        try:
            existing = repository.source_by_name(store, DEMO_SOURCE)
            # The demo role's password is new at every start (and a source registered by an
            # older demo with the store's superuser moves to the demo role).
            source = sources.update_source(store, box, existing, demo_input)
        except SourceNotFoundError:
            source = sources.add_source(store, box, demo_input)
        services.sync_after(store, source.id, box, ctx.limits())  # commits the source first
        # Exactly one demo token is live: each start revokes the ones it printed before.
        revoked = 0
        for earlier in tokens.list_tokens(store):
            if earlier.active and DEMO_TOKEN_RE.match(earlier.name):
                tokens.revoke_token(store, earlier.name)
                revoked += 1
        token_name = f"demo-{secrets.token_hex(4)}"
        token = tokens.create_token(store, token_name, tokens.Role.ADMIN)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    earlier_note = (
        "; the earlier demo token is revoked"
        if revoked == 1
        else f"; the {revoked} earlier demo tokens are revoked"
        if revoked
        else ""
    )
    store_note = (
        "Ctrl+C stops the demo and the embedded store's PostgreSQL server it started."
        if ctx.settings.database_url is None and ctx.started_store
        else "Ctrl+C stops the demo."
    )
    typer.echo(
        f"""
Rosetta is ready. Source '{DEMO_SOURCE}' tracks publication {DEMO_PUBLICATION} of the demo
database {DEMO_DATABASE}.

  Web UI:    http://{shown}:{port}/      (log in with the token below)
  API docs:  http://{shown}:{port}/docs
  API token: {token}      (named {token_name}; shown once{earlier_note})

  curl -H "Authorization: Bearer {token}" http://{shown}:{port}/api/v1/sources

Try it: {suggestion.what}, then wait for the monitor (up to {ctx.settings.monitor_interval:g} s) or
press Refresh on the source's page:

  {_psql_command(ctx, dba_url)} -c {shlex.quote(suggestion.statement)}

{store_note}
"""
    )
    run_server(ctx, host, port, with_monitor=True, with_webhooks=True, listener=listener)
