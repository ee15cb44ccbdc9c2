"""What every command shares: the app, the settings and store of a run, and output helpers.

Commands import what they need when they run, so `rosetta refresh` never loads the web stack.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rosetta.catalog.connection import SourceLimits
    from rosetta.config import Settings
    from rosetta.crypto import SecretBox
    from rosetta.queue.options import QueueOptions
    from rosetta.store.repository import Conn

app = typer.Typer(
    help="Rosetta: the schema of every table your PostgreSQL publications carry, and its history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class Context:
    """Settings, the store and the key, made when a command first needs them."""

    def __init__(self) -> None:
        from rosetta.config import Settings

        self.settings: Settings = Settings()
        self._url: str | None = None
        self.started_store = False
        """Whether this run started the embedded store's PostgreSQL server."""
        self.announce_start = True
        """Say on stderr, in one line, that the embedded store was started and keeps running."""

    @property
    def store_url(self) -> str:
        if self._url is None:
            if self.settings.database_url is not None:
                self._url = self.settings.database_url.get_secret_value()
            else:
                from rosetta.pg.embedded import EmbeddedStore

                embedded = EmbeddedStore(self.settings.data_dir.resolve())
                self._url = embedded.ensure_running()
                self.started_store = embedded.started
                if self.started_store and self.announce_start:
                    typer.echo(
                        f"Started the embedded store's PostgreSQL server ({embedded.data_dir}); "
                        "it keeps running after this command: `rosetta db stop` stops it.",
                        err=True,
                    )
        return self._url

    def store(self, *, autocommit: bool = False) -> Conn:
        from rosetta.store import db

        return db.connect(self.store_url, autocommit=autocommit)

    @contextmanager
    def unit(self) -> Iterator[Conn]:
        """``with ctx.unit() as store:`` the command's unit of work: committed when the block
        returns, rolled back when it raises, closed after (``rosetta.uow``)."""
        from rosetta.uow import unit_of_work

        store = self.store()
        try:
            with unit_of_work(store):
                yield store
        finally:
            store.close()

    def box(self) -> SecretBox:
        from rosetta.runtime import secret_box

        return secret_box(self.settings)

    def limits(self) -> SourceLimits:
        """Time limits and the network policy of every source connection."""
        from rosetta.catalog.connection import SourceLimits

        return SourceLimits.from_settings(self.settings)

    def queue(self, **overrides: Any) -> QueueOptions:
        """How workers, the scheduler and a Refresh use the job queue (``overrides``: a
        command's own options, None for the setting)."""
        from rosetta.queue.options import QueueOptions

        return QueueOptions.from_settings(self.settings, **overrides)

    def logging(self, *, to_stderr: bool = False) -> None:
        from rosetta import logs

        logs.setup(
            self.settings.log_level,
            self.settings.log_file,
            stream_to=sys.stderr if to_stderr else sys.stdout,
        )


def context() -> Context:
    return Context()


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def esc(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def read_secret_stdin() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def print_summary(summary: Any) -> None:
    where = (
        f" on worker {summary.synced_by} (job {summary.job_id})"
        if getattr(summary, "job_id", None) is not None
        else ""
    )
    typer.echo(f"Source {summary.source}: {summary.status} in {summary.duration:.2f}s{where}")
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
    for table in summary.row_filters_changed:
        typer.echo(f"  row filter changed: {table}")
    for table, error in summary.failed:
        typer.echo(f"  failed: {table}: {error}")
    typer.echo(f"  unchanged: {summary.unchanged}")
