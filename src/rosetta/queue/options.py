"""The settings of a worker and of the scheduler, from :class:`rosetta.config.Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueOptions:
    concurrency: int = 4
    """Sync jobs one worker runs at once."""
    heartbeat: float = 10.0
    """Seconds between a worker's heartbeats."""
    retries: int = 2
    """Times a failed sync job is retried."""
    retention_hours: float = 24.0
    """Hours ``sync_runs`` rows and failed jobs are kept."""
    default_interval: float = 60.0
    """A source's interval when it has none of its own."""
    refresh_timeout: float = 120.0
    """Seconds a Refresh waits for its job."""
    schedule: bool = True
    """Whether the worker also runs the scheduler's ticks."""
    tick: int = 1
    """Seconds between two ticks of the scheduler (a divisor of 60)."""
    full_every: int = 60
    """Every Nth interval of a source, its scheduled sync compares every table's columns (0:
    never); sources take their turns at different intervals."""

    @property
    def stalled_after(self) -> float:
        """Seconds without a heartbeat after which a worker is dead."""
        return 3 * self.heartbeat

    @property
    def store_connections(self) -> int:
        """The most store connections one worker holds: one per running sync and one for the
        scheduler's tick, procrastinate's pool (fetching and finishing jobs, the heartbeat),
        and its LISTEN connection."""
        return self.concurrency + 1 + QUEUE_POOL + 1

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> QueueOptions:
        values: dict[str, Any] = {
            "concurrency": int(settings.worker_concurrency),
            "heartbeat": float(settings.worker_heartbeat_seconds),
            "retries": int(settings.sync_retries),
            "retention_hours": float(settings.sync_runs_retention_hours),
            "default_interval": float(settings.monitor_interval),
            "refresh_timeout": float(settings.refresh_timeout),
            "full_every": int(settings.monitor_full_every),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


QUEUE_POOL = 3
"""Store connections of procrastinate's own pool in a worker."""
