"""When a schema monitor is taken to be alive: one rule for ``rosetta doctor``, ``/health``
and the metrics.

A monitor is alive while its last cycle began within ``max(3 intervals, interval + 120 s)``:
three intervals tolerate a missed cycle or two, and the 120 s grace keeps a short interval
(say 10 s) from calling a monitor dead because one cycle waited on a slow source.
"""

from __future__ import annotations

from datetime import UTC, datetime

ALIVE_INTERVALS = 3
ALIVE_GRACE_SECONDS = 120.0


def alive_window(interval: float) -> float:
    """How long after its last cycle began a monitor still counts as alive, in seconds."""
    return max(ALIVE_INTERVALS * interval, interval + ALIVE_GRACE_SECONDS)


def monitor_alive(
    last_cycle_started_at: datetime | None, interval: float, now: datetime | None = None
) -> bool:
    """Whether a monitor whose last cycle began at ``last_cycle_started_at`` is alive."""
    if last_cycle_started_at is None:
        return False
    age = ((now or datetime.now(UTC)) - last_cycle_started_at).total_seconds()
    return age <= alive_window(interval)


SQL_PARAMS = {"alive_intervals": ALIVE_INTERVALS, "alive_grace": ALIVE_GRACE_SECONDS}
"""The rule's numbers, for the SQL that applies it (``store/metrics.sql`` monitor_metrics)."""
