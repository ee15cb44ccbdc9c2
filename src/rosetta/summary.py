"""What one sync did: the summary the CLI prints, the API returns and the monitor adds up, and
the log lines that report it (the user's document's wording)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rosetta import logs
from rosetta.reconcile import Action, SyncStatus
from rosetta.schema.diff import INITIAL_LOAD

if TYPE_CHECKING:
    from rosetta.apply import Outcome


@dataclass
class ChangedTable:
    table: str
    version: int
    changes_type: str


@dataclass(frozen=True)
class SyncRun:
    """Who runs a sync, and why: written with the sync's outcome (``sync_runs``,
    ``sources.last_sync_by``)."""

    worker: str
    reason: str = "in-process"
    """schedule, refresh or capture for a job on the queue; in-process otherwise."""
    job_id: int | None = None
    attempt: int = 0
    deferred_at: datetime | None = None

    @classmethod
    def here(cls, reason: str = "in-process") -> SyncRun:
        """A sync run by this process, not by a job."""
        return cls(process_name(), reason)


def process_name() -> str:
    """This process, as the store names who synced: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class SyncSummary:
    source: str
    added: list[str] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    changed: list[ChangedTable] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    row_filters_changed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    publication_exists: bool = True
    slot_exists: bool = False
    error: str | None = None
    duration: float = 0.0
    captured_events: int = 0
    synced_by: str | None = None
    """The worker or process that ran the sync (``host:pid``)."""
    job_id: int | None = None
    """The queue's job it ran as; None for a sync run in-process."""

    @property
    def status(self) -> SyncStatus:
        if self.error is not None:
            return SyncStatus.FAILED
        if not self.publication_exists:
            return SyncStatus.PUBLICATION_MISSING
        return SyncStatus.PARTIAL if self.failed else SyncStatus.OK

    @property
    def wrote_anything(self) -> bool:
        return bool(
            self.added
            or self.healed
            or self.changed
            or self.removed
            or self.rejoined
            or self.row_filters_changed
        )

    def failure_text(self) -> str | None:
        """The sync's error as stored on the source: the first failed table, and how many."""
        if not self.failed:
            return None
        first = f"{self.failed[0][0]}: {self.failed[0][1]}"
        return (
            first if len(self.failed) == 1 else f"{len(self.failed)} tables failed; first {first}"
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"table": t, "error": e} for t, e in self.failed]
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SyncSummary:
        """The summary :meth:`to_json` wrote (a sync run by a worker, read back by a Refresh)."""
        return cls(
            source=data["source"],
            added=list(data.get("added", [])),
            healed=list(data.get("healed", [])),
            changed=[ChangedTable(**c) for c in data.get("changed", [])],
            removed=list(data.get("removed", [])),
            rejoined=list(data.get("rejoined", [])),
            skipped=list(data.get("skipped", [])),
            row_filters_changed=list(data.get("row_filters_changed", [])),
            failed=[(f["table"], f["error"]) for f in data.get("failed", [])],
            unchanged=int(data.get("unchanged", 0)),
            publication_exists=bool(data.get("publication_exists", True)),
            slot_exists=bool(data.get("slot_exists", False)),
            error=data.get("error"),
            duration=float(data.get("duration", 0.0)),
            captured_events=int(data.get("captured_events", 0)),
            synced_by=data.get("synced_by"),
            job_id=data.get("job_id"),
        )

    def report(self, outcomes: Iterable[Outcome], log: logs.Pending) -> None:
        """Add what the sync wrote to the summary, with one log line per fact."""
        for outcome in outcomes:
            _report(self, outcome, log)


def _report(summary: SyncSummary, outcome: Outcome, log: logs.Pending) -> None:
    d = outcome.decision
    name = d.name
    shown = logs.safe(name)
    if d.action == Action.NONE:
        summary.unchanged += 1
        return
    if d.action == Action.REMOVE:
        summary.removed.append(name)
        log.info("Table %s left the publication: marked removed, history kept", shown)
        return
    if d.action != Action.FAIL:
        # Said before the write, as the write itself may still fail.
        if d.rejoined:
            summary.rejoined.append(name)
            log.info("Table %s is back in the publication", shown)
        if d.action == Action.HEAL:
            log.info("Found table %s without schema, fetching now...", shown)
    if outcome.error is not None:
        summary.failed.append((name, outcome.error))
        log.error("Failed to fetch schema for existing table %s: %s", shown, outcome.error)
        return
    if d.row_filter_change is not None:
        summary.row_filters_changed.append(name)
        before, after = d.row_filter_change
        log.info(
            "Row filter of table %s changed: %s -> %s",
            shown,
            logs.safe(before or "none"),
            logs.safe(after or "none"),
        )
    columns = len(d.new)
    if d.action == Action.ADD:
        summary.added.append(name)
        log.info("Added new table tracking with schema: %s (%d columns)", shown, columns)
    elif d.action == Action.SKIP:
        summary.skipped.append(name)
        log.warning(
            "Skipping table %s: No schema columns found. Table may be empty or inaccessible.",
            shown,
        )
    elif d.action == Action.HEAL:
        summary.healed.append(name)
        if d.changes_type == INITIAL_LOAD:
            log.info(
                "Fixed table %s: Added schema and INITIAL_LOAD history (%d columns)", shown, columns
            )
        elif d.version is not None:
            log.info(
                "Fixed table %s: Added schema (%d columns) as version %d (%s)",
                shown,
                columns,
                d.version,
                d.changes_type,
            )
        else:
            log.info("Fixed table %s: Added schema (%d columns); history unchanged", shown, columns)
    elif d.action == Action.INITIAL:
        summary.changed.append(ChangedTable(name, 1, INITIAL_LOAD))
        log.info("Added INITIAL_LOAD history for table %s (%d columns)", shown, columns)
    elif d.action == Action.VERSION:
        assert d.version is not None and d.changes_type is not None
        summary.changed.append(ChangedTable(name, d.version, d.changes_type))
        log.info(
            "Schema change in table %s: version %d (%s): %s",
            shown,
            d.version,
            d.changes_type,
            logs.safe("; ".join(_describe(c.to_json()) for c in d.changes)),
        )


def _describe(change: dict[str, Any]) -> str:
    kind, column = change["type"], change["column"]
    before, after = change["before"], change["after"]
    if kind == "NEW COLUMN":
        return f"+{column} {after.get('full_type', '')}".rstrip()
    if kind == "DROP COLUMN":
        return f"-{column}"
    return f"{column} {kind.lower()} {before!r} -> {after!r}"
