"""`rosetta capture`: install, inspect and uninstall real-time capture on a source."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from rosetta.cli.base import app, context

if TYPE_CHECKING:
    from rosetta.capture.installer import CaptureStatus
    from rosetta.store.repository import Source

capture_app = typer.Typer(
    help="Real-time capture: event triggers on the source record each DDL as it commits.",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")

SourceArg = Annotated[str, typer.Argument(help="The source's name.")]


@capture_app.command("install")
def capture_install(name: SourceArg) -> None:
    """Install (or upgrade) Rosetta's event triggers on the source (needs a superuser)."""
    from rosetta import services
    from rosetta.store import repository

    ctx = context()
    with ctx.unit() as store:
        source = repository.source_by_name(store, name)
        done = services.install_capture(store, ctx.box(), ctx.limits(), source)
    verb = "Installed" if done.changed else "Reinstalled"
    typer.echo(
        f"{verb} real-time capture on {name}: DDL is recorded in rosetta_capture.ddl_events."
    )
    if not done.status.listener_connected:
        typer.echo(
            "No listener is connected yet: start `rosetta monitor` or `rosetta serve` "
            "(until then the source is read by polling)."
        )


@capture_app.command("uninstall")
def capture_uninstall(name: SourceArg) -> None:
    """Drop Rosetta's event triggers and recorded events from the source (back to polling)."""
    from rosetta import services
    from rosetta.store import repository

    ctx = context()
    with ctx.unit() as store:
        source = repository.source_by_name(store, name)
        done = services.uninstall_capture(store, ctx.box(), ctx.limits(), source)
    if done.changed:
        typer.echo(f"Uninstalled real-time capture from {name}: it is on polling.")
    else:
        typer.echo(f"Capture was not installed on {name}: nothing to uninstall; it is on polling.")


@capture_app.command("status")
def capture_status(name: SourceArg) -> None:
    """Show whether the source is in real-time mode or on polling, and the capture's state."""
    from rosetta import services
    from rosetta.store import repository

    ctx = context()
    with ctx.unit() as store:
        source = repository.source_by_name(store, name)
        status = services.capture_status(store, ctx.box(), ctx.limits(), source)
    interval = source.sync_interval_seconds or ctx.settings.monitor_interval
    for line in status_lines(source, status, interval):
        typer.echo(line)


def status_lines(source: Source, status: CaptureStatus, interval: float) -> list[str]:
    mode = (
        "real-time (capture)"
        if source.capture_enabled and status.working
        else f"polling every {interval:g} s"
    )
    lines = [f"Source {source.name}: {mode}"]
    if status.installed:
        state = "enabled" if status.triggers_enabled else "DISABLED"
        lines.append(f"  triggers: installed, {state}")
    elif status.present:
        lines.append("  triggers: partly installed: re-run `rosetta capture install`")
    else:
        lines.append(
            "  triggers: not installed"
            + ("" if status.may_install else f' (role "{status.role}" may not install them)')
        )
    if source.capture_enabled and not status.working:
        lines.append(
            f"  capture is on in Rosetta but not working on the source: "
            f"re-run `rosetta capture install {source.name}`"
        )
    if status.present:
        lines.append(f"  listener: {'connected' if status.listener_connected else 'not connected'}")
    if status.event_count is not None:
        size = (status.table_bytes or 0) / 1024
        lines.append(f"  events: {status.event_count} ({size:.0f} KiB)")
        lines.append(f"  last event: {_age(status.last_event_at)}")
    if source.capture_error:
        lines.append(f"  error: {source.capture_error}")
    return lines


def _age(at: datetime | None) -> str:
    if at is None:
        return "none yet"
    seconds = max(0, int((datetime.now(UTC) - at).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
