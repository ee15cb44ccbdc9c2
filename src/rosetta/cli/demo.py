"""``rosetta demo``: a demo source database beside the embedded store, registered, then served."""

from __future__ import annotations

import typer

from rosetta.cli.base import Context, app, context
from rosetta.cli.server import HostOpt, PortOpt, run_server

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


DEMO_ROLE = "rosetta_demo"
DEMO_TABLES = ("customers", "products", "orders", "order_items", "shipments")


def _demo_database(store_url: str) -> tuple[str, str, bool]:
    """Create the demo source database beside the store (once), owned by a role of its own;
    returns the URL Rosetta reads it with, the URL of the store's own user for it (the user plays
    the DBA with it), and whether ``shipments`` is in the publication yet.

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
            shipments = conn.execute(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND tablename = %s",
                (DEMO_PUBLICATION, "shipments"),
            ).fetchone()
    return url, admin_url, shipments is not None


@app.command()
def demo(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
) -> None:
    """Try Rosetta: a demo source database beside the embedded store, registered, then served."""
    import secrets

    from rosetta import services, sources, tokens
    from rosetta.errors import SourceNotFoundError
    from rosetta.store import db, repository

    ctx = context()
    ctx.logging()
    typer.echo("Starting the store (the first start takes a few seconds)...")
    db.upgrade(ctx.store_url)
    demo_url, dba_url, shipments_published = _demo_database(ctx.store_url)
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
        token_name = f"demo-{secrets.token_hex(4)}"
        token = tokens.create_token(store, token_name, tokens.Role.ADMIN)
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

  {_psql_command(ctx, dba_url)} -c '{statement}'

Press Ctrl+C to stop.
"""
    )
    run_server(ctx, host, port, with_monitor=True, with_webhooks=True)
