"""Real-time capture: Rosetta's event triggers on a source, and the names its reader relies on.

``rosetta capture install SOURCE`` puts, into the source database, a schema of Rosetta's own
(:data:`SCHEMA`) holding an append-only table of DDL events and two event triggers that fill it;
each statement that records events notifies :data:`CHANNEL` when it commits. The listener that
waits on that channel connects with :data:`LISTENER_APPLICATION_NAME`, which is how the status
(and doctor) tell that one is connected.
"""

from __future__ import annotations

CHANNEL = "rosetta_capture"
"""The NOTIFY channel: its payload is the first event id the statement recorded."""

SCHEMA = "rosetta_capture"
"""The source-side schema holding the events table and the trigger functions."""

LISTENER_APPLICATION_NAME = "rosetta capture listener"
"""The application_name of the LISTEN connection (``pg_stat_activity`` shows it)."""

EVENT_TRIGGERS = ("rosetta_capture_ddl", "rosetta_capture_drop")
"""The event triggers install creates: on ``ddl_command_end`` and on ``sql_drop``."""
