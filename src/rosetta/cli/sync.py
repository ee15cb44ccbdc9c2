"""Syncing: `rosetta refresh` and `monitor` (reading the results: cli/tables.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from rosetta.cli.base import JsonOpt, app, context, fail, print_json, print_summary


@app.command()
def refresh(
    name: str,
    as_json: JsonOpt = False,
    full: Annotated[
        bool, typer.Option("--full", help="Compare every table's columns, not only changed ones.")
    ] = False,
) -> None:
    """Sync one source now: find new tables, heal missing schemas, record changes. When a
    worker runs (`rosetta worker`, `monitor` or `serve`), the sync is a job it runs and this
    waits for; with none, it runs here."""
    from rosetta import services
    from rosetta.errors import PublicationMissingError
    from rosetta.store import repository

    ctx = context()
    ctx.logging(to_stderr=as_json)
    with ctx.unit() as store:
        src = repository.source_by_name(store, name)
        summary = services.refresh(store, ctx.box(), ctx.limits(), src, ctx.queue(), full=full)
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
    """Watch every source: sync each one every interval (default 60 s), in this process (a
    scheduler and a worker; with --once, one cycle now); `rosetta worker`s may share the work."""
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
        queue=ctx.queue(),
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


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=64,
            help="Syncs run at once (default ROSETTA_WORKER_CONCURRENCY, 4).",
        ),
    ] = None,
    no_schedule: Annotated[
        bool,
        typer.Option(
            "--no-schedule",
            help="Only run sync jobs; leave deferring them to the workers that run the "
            "scheduler (by default every worker does: each source is still deferred once per "
            "interval).",
        ),
    ] = False,
) -> None:
    """Run sync jobs from the queue in the store, with any number of other workers on any
    number of machines (each source synced once per interval, by one of them)."""
    import signal

    from rosetta.queue.worker import Worker

    ctx = context()
    ctx.logging()
    ctx.store().close()  # fail fast, in one line, if the store is unreachable or not migrated
    options = ctx.queue(concurrency=concurrency, schedule=not no_schedule)
    runner = Worker(ctx.store_url, ctx.box(), ctx.limits(), options)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.stop(timeout=0))
    runner.run()
