"""`rosetta webhook`: webhooks called on schema changes."""

from __future__ import annotations

from typing import Annotated

import typer

from rosetta.cli.base import JsonOpt, app, context, fail, print_json, read_secret_stdin

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

    ctx = context()
    try:
        secret = read_secret_stdin() if secret_stdin else None
    except UnicodeDecodeError:
        raise fail("the secret on stdin is not UTF-8 text", 2) from None
    options = webhooks.Options.from_settings(ctx.settings)
    webhooks.validate_url(url, options.policy)  # before the store: a bad URL is refused anyway
    with ctx.unit() as store:
        src = repository.source_by_name(store, source)
        row = webhooks.add_endpoint(store, ctx.box(), src.id, url, secret, event, options.policy)
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

    ctx = context()
    with ctx.unit() as store:
        src_id = repository.source_by_name(store, source).id if source else None
        rows = webhooks.list_endpoints(store, src_id)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("No webhooks: add one with `rosetta webhook add SOURCE URL`.")
        return
    for r in rows:
        retrying = f" ({r['retrying']} retrying)" if r.get("retrying") else ""
        typer.echo(
            f"{r['id']:>4}  {r['source']}  {r['url']}  events: {', '.join(r['events'])}  "
            f"{'signed' if r['signed'] else 'unsigned'}  delivered {r['delivered']}, "
            f"pending {r['pending']}{retrying}, failed {r['failed']}"
        )


@webhook_app.command("remove")
def webhook_remove(endpoint_id: int) -> None:
    """Remove a webhook (its pending deliveries go with it)."""
    from rosetta import webhooks

    ctx = context()
    with ctx.unit() as store:
        webhooks.remove_endpoint(store, endpoint_id)
    typer.echo(f"Removed webhook {endpoint_id}.")


@webhook_app.command("test")
def webhook_test(endpoint_id: int) -> None:
    """Send a test event to a webhook now."""
    from contextlib import closing

    from rosetta import webhooks

    ctx = context()
    result = webhooks.send_test(
        lambda: closing(ctx.store()),  # read the webhook, close, then send
        ctx.box(),
        endpoint_id,
        webhooks.Options.from_settings(ctx.settings),
    )
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

    ctx = context()
    with ctx.unit() as store:
        src_id = repository.source_by_name(store, source).id if source else None
        rows = webhooks.deliveries(store, source_id=src_id, endpoint_id=endpoint, limit=limit)
    if as_json:
        print_json(rows)
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
    wait: Annotated[
        float,
        typer.Option(
            help="Start no more deliveries after this many seconds (those under way still end "
            "within ROSETTA_WEBHOOK_TIMEOUT)."
        ),
    ] = 30.0,
) -> None:
    """Send the due deliveries of the outbox now (the monitor and serve do it continuously)."""
    from rosetta import webhooks

    ctx = context()
    ctx.logging()
    store = ctx.store()
    try:
        delivered, failed = webhooks.wait_idle(
            store, ctx.box(), wait, webhooks.Options.from_settings(ctx.settings)
        )
    finally:
        store.close()
    retried = (
        f"; {failed} attempts failed (`rosetta webhook deliveries` says why)" if failed else ""
    )
    typer.echo(f"Delivered {delivered}{retried}.")
