"""The outbox: events written in the sync's transaction, and deliveries leased, sent, settled.

A sync records each event and one delivery row per interested endpoint in the same transaction as
the change itself, so a crash between recording and sending loses nothing. A dispatcher leases
due deliveries (``locked_until``) in a short transaction of its own and commits before sending;
the result is recorded in another short one. No transaction is open while an endpoint answers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from rosetta.schema.diff import Change
from rosetta.schema.model import display_name
from rosetta.schema.severity import sends, worst
from rosetta.store.repository import Conn
from rosetta.webhooks.endpoints import QUERIES

MAX_ATTEMPTS = 10
MAX_BACKOFF = 3600.0


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after MAX_ATTEMPTS


class Recorder:
    """Writes events to the outbox of one source during one sync.

    Each event carries a severity (see :func:`event_severity`); a source whose
    ``webhook_severity`` is ``breaking`` records only breaking events, so its endpoints are sent
    nothing for a safe change.
    """

    def __init__(self, conn: Conn, source_id: int, source_name: str) -> None:
        self.conn = conn
        self.source_id = source_id
        self.source_name = source_name
        self.endpoints: list[tuple[int, list[str]]] = [
            (r[0], list(r[1]))
            for r in conn.execute(QUERIES["endpoints_for_source"], {"source_id": source_id})
        ]
        row = conn.execute(QUERIES["source_webhook_severity"], {"source_id": source_id}).fetchone()
        self.threshold = str(row[0]) if row is not None else "all"

    def record(
        self,
        event: str,
        schema_name: str,
        table_name: str,
        *,
        version: int | None = None,
        change_type: str | None = None,
        changes: list[Change] | None = None,
        level: str | None = None,
        row_filter: tuple[str | None, str | None] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        targets = [eid for eid, events in self.endpoints if event in events]
        level = level or event_severity(changes)
        if not targets or not sends(self.threshold, level):
            return
        qualified = display_name(schema_name, table_name)
        payload: dict[str, Any] = {
            "event": event,
            "source": self.source_name,
            "table": {"schema": schema_name, "name": table_name, "qualified": qualified},
            "version": version,
            "change_type": change_type,
            "severity": level,
            "changes": [c.to_json() for c in changes or []],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        if row_filter is not None:
            payload["row_filter"] = {"before": row_filter[0], "after": row_filter[1]}
        if provenance is not None:
            payload["provenance"] = provenance
        row = self.conn.execute(
            QUERIES["insert_event"],
            {
                "source_id": self.source_id,
                "event_type": event,
                "payload": Jsonb(payload),
            },
        ).fetchone()
        assert row is not None
        for endpoint_id in targets:
            self.conn.execute(
                QUERIES["insert_delivery"], {"endpoint_id": endpoint_id, "event_id": row[0]}
            )


def event_severity(changes: list[Change] | None) -> str:
    """The severity of an event recorded without one: its changes' worst (none: ``safe``).

    ``schema.changed`` and ``table.healed`` carry their changes' severity (the model of
    :mod:`rosetta.schema.severity`); the sync names the others' (``rosetta.apply``):
    ``table.added`` is safe (no consumer has read the table yet), ``table.removed`` breaking,
    ``table.row_filter_changed`` breaking when a filter is added or changed, safe when dropped.
    """
    return worst(changes or [])


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this dispatcher, with what sending it needs."""

    id: int
    endpoint_id: int
    attempts: int
    lease: str
    url: str
    secret_encrypted: str | None
    event_type: str
    payload: dict[str, Any]


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base x 2^(n-1), at most 1 h."""
    return float(min(base * 2 ** max(0, attempts - 1), MAX_BACKOFF))


def claim(conn: Conn, limit: int, lease_seconds: float) -> list[Claimed]:
    """Lease the next due delivery of up to ``limit`` idle endpoints, and commit."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Claimed)) as cur:
        cur.execute(
            QUERIES["claim_due"],
            {"limit": limit, "lease_seconds": lease_seconds, "lease": uuid.uuid4().hex},
        )
        return cur.fetchall()


def settle(
    conn: Conn,
    delivery: Claimed,
    status_code: int | None,
    error: str | None,
    base_delay: float,
) -> Status:
    """Record one attempt's result (and its backoff when it failed) in a short transaction."""
    attempts = delivery.attempts + 1
    if error is None:
        status, delay = Status.DELIVERED, 0.0
    else:
        status = Status.FAILED if attempts >= MAX_ATTEMPTS else Status.PENDING
        delay = backoff(attempts, base_delay)
    with conn.transaction():
        conn.execute(
            QUERIES["delivery_result"],
            {
                "id": delivery.id,
                "lease": delivery.lease,
                "status": status.value,
                "status_code": status_code,
                "error": error,
                "delay": delay,
            },
        )
    return status


def lease_left(conn: Conn) -> float | None:
    """Seconds until the first lease of a pending delivery runs out; None when none is leased."""
    with conn.transaction():
        row = conn.execute(QUERIES["lease_left"]).fetchone()
    return float(row[0]) if row is not None and row[0] is not None else None
