"""What one sync did: the summary the CLI prints, the API returns and the monitor adds up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ChangedTable:
    table: str
    version: int
    changes_type: str


@dataclass
class SyncSummary:
    source: str
    added: list[str] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)
    changed: list[ChangedTable] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    publication_exists: bool = True
    slot_exists: bool = False
    error: str | None = None
    duration: float = 0.0

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if not self.publication_exists:
            return "publication_missing"
        return "partial" if self.failed else "ok"

    @property
    def wrote_anything(self) -> bool:
        return bool(self.added or self.healed or self.changed or self.removed or self.rejoined)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [{"table": t, "error": e} for t, e in self.failed]
        data["status"] = self.status
        return data
