"""Webhooks on schema change: endpoints, a durable outbox, and the dispatcher that sends it.

A sync records each event (a new version, a table added, removed or healed) and one delivery
row per interested endpoint in the same transaction as the change itself, so a crash between
recording and sending loses nothing. Dispatchers, in any number of processes, claim due
deliveries with ``FOR UPDATE SKIP LOCKED``, POST them signed with HMAC-SHA256, and retry failures
with exponential backoff. Sending happens in its own thread: a slow endpoint never delays a sync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rosetta import sqlfile
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError, NotFoundError, first_line
from rosetta.schema.diff import Change, severity
from rosetta.schema.model import display_name
from rosetta.store.repository import Conn

log = logging.getLogger("rosetta.webhooks")

EVENTS = ("schema.changed", "table.added", "table.removed", "table.healed")
SIGNATURE_HEADER = "X-Rosetta-Signature"
MAX_ATTEMPTS = 10


def _q(name: str) -> Any:
    return sqlfile.load("rosetta.store", "webhooks.sql")[name]


def validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInputError(f"invalid webhook URL {url!r}: use http:// or https://")
    return url


def validate_events(events: list[str] | None) -> list[str]:
    if not events:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInputError(f"unknown event {unknown[0]!r}: use any of {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


# --- endpoints -----------------------------------------------------------------------------


def add_endpoint(
    conn: Conn,
    box: SecretBox,
    source_id: int,
    url: str,
    secret: str | None,
    events: list[str] | None,
) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _q("insert_endpoint"),
            {
                "source_id": source_id,
                "url": validate_url(url),
                "secret_encrypted": box.encrypt(secret) if secret else None,
                "events": validate_events(events),
            },
        )
        row = cur.fetchone()
    conn.commit()
    assert row is not None
    return row


def list_endpoints(conn: Conn, source_id: int | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_q("list_endpoints"), {"source_id": source_id})
        rows = cur.fetchall()
    conn.rollback()
    return rows


def get_endpoint(conn: Conn, endpoint_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_q("endpoint_by_id"), {"id": endpoint_id})
        row = cur.fetchone()
    conn.rollback()
    if row is None:
        raise NotFoundError(f"no webhook with id {endpoint_id}: `rosetta webhook list` shows them")
    return row


def remove_endpoint(conn: Conn, endpoint_id: int) -> None:
    cur = conn.execute(_q("delete_endpoint"), {"id": endpoint_id})
    conn.commit()
    if cur.rowcount == 0:
        raise NotFoundError(f"no webhook with id {endpoint_id}: `rosetta webhook list` shows them")


def deliveries(
    conn: Conn,
    *,
    source_id: int | None = None,
    endpoint_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _q("list_deliveries"),
            {"source_id": source_id, "endpoint_id": endpoint_id, "limit": limit},
        )
        rows = cur.fetchall()
    conn.rollback()
    return rows


# --- recording (inside the sync's transaction) ---------------------------------------------


class Recorder:
    """Writes events to the outbox of one source during one sync."""

    def __init__(self, conn: Conn, source_id: int, source_name: str) -> None:
        self.conn = conn
        self.source_id = source_id
        self.source_name = source_name
        self.endpoints: list[tuple[int, list[str]]] = [
            (r[0], list(r[1]))
            for r in conn.execute(_q("endpoints_for_source"), {"source_id": source_id})
        ]

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
    ) -> None:
        targets = [eid for eid, events in self.endpoints if event in events]
        if not targets:
            return
        qualified = display_name(schema_name, table_name)
        payload = {
            "event": event,
            "source": self.source_name,
            "table": {"schema": schema_name, "name": table_name, "qualified": qualified},
            "version": version,
            "change_type": change_type,
            "severity": level or (severity(changes) if changes else "safe"),
            "changes": [c.to_json() for c in changes or []],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        row = self.conn.execute(
            _q("insert_event"),
            {
                "source_id": self.source_id,
                "event_type": event,
                "payload": Jsonb(payload),
            },
        ).fetchone()
        assert row is not None
        for endpoint_id in targets:
            self.conn.execute(
                _q("insert_delivery"), {"endpoint_id": endpoint_id, "event_id": row[0]}
            )


# --- sending -------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Attempt(response.status, None)
    except urllib.error.HTTPError as exc:
        return Attempt(exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(None, str(reason)[:300])


def send(
    url: str,
    secret: str | None,
    event: str,
    delivery_id: int,
    payload: dict[str, Any],
    timeout: float,
) -> Attempt:
    body = json.dumps(dict(payload, delivery_id=delivery_id), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "rosetta-webhooks",
        "X-Rosetta-Event": event,
        "X-Rosetta-Delivery": str(delivery_id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return post(url, body, headers, timeout)


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base x 2^(n-1), at most 1 h."""
    return float(min(base * 2 ** max(0, attempts - 1), 3600.0))


def deliver_due(
    conn: Conn,
    box: SecretBox,
    *,
    limit: int = 20,
    timeout: float = 10.0,
    base_delay: float = 5.0,
) -> tuple[int, int]:
    """Send up to ``limit`` due deliveries; returns (delivered, failed attempts).

    Each delivery is claimed and settled in one transaction, so two dispatchers never send the
    same delivery at once, and a crash before the result is stored means it is sent again.
    """
    delivered = failed = 0
    for _ in range(limit):
        with conn.transaction():
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(_q("claim_due"), {"limit": 1})
                row = cur.fetchone()
            if row is None:
                break
            secret = (
                box.decrypt(row["secret_encrypted"], what="a webhook secret")
                if row["secret_encrypted"]
                else None
            )
            result = send(row["url"], secret, row["event_type"], row["id"], row["payload"], timeout)
            attempts = row["attempts"] + 1
            if result.ok:
                status, delay = "delivered", 0.0
                delivered += 1
            else:
                status = "failed" if attempts >= MAX_ATTEMPTS else "pending"
                delay = backoff(attempts, base_delay)
                failed += 1
                log.warning(
                    "Webhook delivery %d to %s failed (attempt %d): %s",
                    row["id"],
                    row["url"],
                    attempts,
                    result.error,
                )
            conn.execute(
                _q("delivery_result"),
                {
                    "id": row["id"],
                    "status": status,
                    "status_code": result.status_code,
                    "error": result.error,
                    "delay": delay,
                },
            )
    return delivered, failed


def send_test(conn: Conn, box: SecretBox, endpoint_id: int, timeout: float = 10.0) -> Attempt:
    """POST a test event to one endpoint now (not through the outbox)."""
    endpoint = get_endpoint(conn, endpoint_id)
    secret = (
        box.decrypt(endpoint["secret_encrypted"], what="a webhook secret")
        if endpoint["secret_encrypted"]
        else None
    )
    payload = {
        "event": "test",
        "source": endpoint["source"],
        "table": None,
        "version": None,
        "change_type": None,
        "severity": "safe",
        "changes": [],
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    return send(endpoint["url"], secret, "test", 0, payload, timeout)


class Dispatcher:
    """Sends due deliveries every ``poll`` seconds in a thread of its own."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        *,
        poll: float = 2.0,
        base_delay: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        self.store_url = store_url
        self.box = box
        self.poll = poll
        self.base_delay = base_delay
        self.timeout = timeout
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        from rosetta.store import db

        conn: Conn | None = None
        while not self.stop_event.is_set():
            try:
                if conn is None or conn.closed:
                    conn = db.connect(self.store_url, check=False)
                while not self.stop_event.is_set():
                    sent, failed = deliver_due(
                        conn, self.box, timeout=self.timeout, base_delay=self.base_delay
                    )
                    if sent + failed == 0:
                        break
            except Exception as exc:  # keep the dispatcher alive
                log.error("Webhook dispatcher error: %s", first_line(exc))
                if conn is not None:
                    conn.close()
                conn = None
            self.stop_event.wait(self.poll)
        if conn is not None:
            conn.close()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="rosetta-webhooks", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)


def wait_idle(conn: Conn, box: SecretBox, seconds: float) -> None:
    """Deliver until nothing is due or ``seconds`` pass (for `rosetta webhook deliver`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent, failed = deliver_due(conn, box)
        if sent + failed == 0:
            return
