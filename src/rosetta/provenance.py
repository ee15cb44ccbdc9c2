"""Where a version came from: found by capture (the source's DDL events name the statement, who
ran it, its transaction and WAL position) or by polling (the catalog compared, at most one
interval late, with the WAL position read at detection as an upper bound)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class DetectedBy(StrEnum):
    """How a version was found (``history_schema_evolution.detected_by``)."""

    CAPTURE = "capture"
    POLLING = "polling"


@dataclass(frozen=True, slots=True)
class Provenance:
    """What the store records of a version's origin. ``lsn``: from where the new schema applies
    (capture: the WAL insert position at the DDL statement; polling: the position read at
    detection). ``changed_at``: when (capture: the commit time, or the statement's time when the
    source does not track commit timestamps; polling: None, the store's time of writing).
    ``details``: capture's events, as stored in ``provenance``."""

    detected_by: DetectedBy
    lsn: str | None
    changed_at: datetime | None = None
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """As webhooks carry it."""
        raw: dict[str, Any] = {
            "detected_by": str(self.detected_by),
            "lsn": self.lsn,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }
        if self.details is not None:
            raw.update(self.details)
        return raw


def polled(lsn: str | None) -> Provenance:
    return Provenance(DetectedBy.POLLING, lsn)
