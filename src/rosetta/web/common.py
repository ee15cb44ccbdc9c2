"""What several pages share: the app's settings and key, the request's store, and running a sync."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from rosetta import services
from rosetta.api.deps import Store as Store
from rosetta.api.deps import box as box
from rosetta.api.deps import limits as limits
from rosetta.api.deps import queue_options as queue_options
from rosetta.api.deps import settings as settings
from rosetta.catalog.connection import ConnectionParams, SourceLimits
from rosetta.store.repository import Conn, Source
from rosetta.summary import SyncSummary
from rosetta.sync import connection_params

SUMMARY_LISTS = ("added", "healed", "changed", "removed", "rejoined", "skipped", "failed")
SUMMARY_SAMPLE = 5
STATUS_CHECK_TIMEOUT = 3


def quick_limits(request: Request) -> SourceLimits:
    """For a page that only shows a status: do not hang the page on a dead source."""
    return limits(request).quicker(STATUS_CHECK_TIMEOUT)


def params_of(request: Request, source: Source) -> ConnectionParams:
    """Where the source lives, with its decrypted password (raises SecretKeyError)."""
    return connection_params(source, box(request))


def refresh(request: Request, conn: Conn, source: Source) -> SyncSummary:
    """Refresh: the sync on a worker when one runs, else here (``services.refresh``)."""
    return services.refresh(conn, box(request), limits(request), source, queue_options(request))


def summary_payload(summary: SyncSummary) -> dict[str, Any]:
    """A sync's summary, small enough for a flash cookie: counts, and a few names of each."""
    counts: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for key in SUMMARY_LISTS:
        items: list[Any] = getattr(summary, key)
        counts[key] = len(items)
        if key == "changed":
            shown = [f"{c.table} → v{c.version} ({c.changes_type})" for c in items]
        elif key == "failed":
            shown = [f"{table}: {error}" for table, error in items]
        else:
            shown = [str(item) for item in items]
        names[key] = [text[:120] for text in shown[:SUMMARY_SAMPLE]]
    return {
        "source": summary.source[:80],
        "status": summary.status,
        "error": (summary.error or "")[:300] or None,
        "duration": round(summary.duration, 4),
        "unchanged": summary.unchanged,
        "counts": counts,
        "names": names,
        # Which worker ran it, when a job on the queue did (None: this server did).
        "worker": (summary.synced_by or "")[:120] if summary.job_id is not None else None,
    }


def sync_messages(summary: SyncSummary, done: str | None = None) -> list[tuple[str, str]]:
    """Flash lines for an action followed by a sync. A failed sync's error is not one of them:
    the sync summary shown with them says it (once on the page)."""
    return [("ok", done)] if done else []
