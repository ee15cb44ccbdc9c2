"""The web server and its tokens: `rosetta serve`, `rosetta token`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rosetta.cli.base import Context, JsonOpt, app, console, context, esc, fail, print_json

if TYPE_CHECKING:
    import socket

token_app = typer.Typer(help="API tokens for the REST API and the web UI.", no_args_is_help=True)
app.add_typer(token_app, name="token")

ROLES = ("read", "admin")  # rosetta.tokens.Role, not imported until a command runs


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="Who or what the token is for, e.g. ci-pipeline.")],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            metavar="|".join(ROLES),
            help="read: read sources, tables, schemas, history, webhooks and metrics. "
            "admin: also register, change and delete sources, act on publications and slots, "
            "manage webhooks.",
            show_default=True,
        ),
    ] = "read",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the token (for scripts).")
    ] = False,
) -> None:
    """Make an API token. It is shown once: only its hash is kept."""
    from rosetta import tokens

    chosen = tokens.parse_role(role)
    ctx = context()
    store = ctx.store()
    try:
        token = tokens.create_token(store, name, chosen)
    finally:
        store.close()
    if quiet:
        typer.echo(token)
        return
    typer.echo(f"Created {chosen} API token {name}. Copy it now: it is not shown again.\n")
    typer.echo(f"    {token}\n")
    typer.echo("Use it as a bearer token, or paste it on the web UI's login page:")
    typer.echo(f'    curl -H "Authorization: Bearer {token}" http://127.0.0.1:8000/api/v1/sources')
    typer.echo(f"Revoke it with: rosetta token revoke {name}")


@token_app.command("list")
def token_list(as_json: JsonOpt = False) -> None:
    """List the API tokens (names and use, never the tokens)."""
    from rosetta import tokens

    ctx = context()
    with ctx.unit() as store:
        rows = tokens.list_tokens(store)
    if as_json:
        print_json(
            [
                {
                    "name": t.name,
                    "role": t.role.value,
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

    table = Table("name", "role", "created", "last used", "state")
    for t in rows:
        table.add_row(
            esc(t.name),
            t.role.value,
            f"{t.created_at:%Y-%m-%d %H:%M:%S}",
            f"{t.last_used_at:%Y-%m-%d %H:%M:%S}" if t.last_used_at else "never",
            f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}" if t.revoked_at else "active",
        )
    console().print(table)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke an API token: it stops working at once, and its web sessions end."""
    from rosetta import tokens

    ctx = context()
    store = ctx.store()
    try:
        tokens.revoke_token(store, name)
    finally:
        store.close()
    typer.echo(f"Revoked API token {name}.")


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


def bind_listener(host: str, port: int) -> socket.socket:
    """The web server's listening socket, bound before anything else starts or is printed: a
    taken port, or an address this machine does not have, is one line with the fix."""
    import errno
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise fail(
            f"cannot listen on {host!r}: no such address; choose another with --host"
        ) from None
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise fail(
                f"port {port} on {host} is already in use: choose another with --port "
                f"(e.g. --port {port + 1 if port < 65535 else 8080})"
            ) from None
        if error.errno == errno.EACCES:
            raise fail(
                f"port {port} needs privileges this user does not have: "
                "choose one above 1023 with --port"
            ) from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise fail(
                f"cannot listen on {host}: this machine has no such address; "
                "choose another with --host"
            ) from None
        raise fail(
            f"cannot listen on {host} port {port}: {error.strerror or error}; "
            "choose another with --host or --port"
        ) from None


def run_server(
    ctx: Context,
    host: str,
    port: int,
    *,
    with_monitor: bool,
    with_webhooks: bool = True,
    listener: socket.socket | None = None,
) -> None:
    """Run the API and the web UI (and the monitor, and the webhook dispatcher) until
    interrupted, on ``listener`` (bound here from ``host`` and ``port`` if not given). Imports
    the web stack."""
    import logging

    import uvicorn

    from rosetta.api.app import create_app
    from rosetta.monitor import Monitor

    if listener is None:
        listener = bind_listener(host, port)
    with listener:
        box = ctx.box()
        ctx.store().close()  # fail fast, in one line, if the store is unreachable or not migrated
        monitor = (
            Monitor(
                ctx.store_url,
                box,
                interval=ctx.settings.monitor_interval,
                concurrency=ctx.settings.monitor_concurrency,
                limits=ctx.limits(),
                full_every=ctx.settings.monitor_full_every,
                queue=ctx.queue(),
            )
            if with_monitor
            else None
        )
        web = create_app(
            ctx.settings, ctx.store_url, box, monitor=monitor, dispatch_webhooks=with_webhooks
        )
        config = uvicorn.Config(web, host=host, port=port, log_level=ctx.settings.log_level.lower())
        server = uvicorn.Server(config)
        shown = f"[{host}]" if ":" in host else host
        logging.getLogger("uvicorn.error").info(
            "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port
        )
        server.run(sockets=[listener])
        if not server.started:
            raise typer.Exit(3)  # uvicorn's own exit code when the app does not start


@app.command()
def serve(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    no_monitor: NoMonitorOpt = False,
    no_webhooks: NoWebhooksOpt = False,
) -> None:
    """Serve the REST API (/api/v1, docs at /docs, /metrics) and the web UI, with the schema
    monitor and the webhook dispatcher."""
    ctx = context()
    ctx.logging()
    run_server(ctx, host, port, with_monitor=not no_monitor, with_webhooks=not no_webhooks)
