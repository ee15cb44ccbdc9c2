"""Webhook endpoints of a source: what is accepted as a URL and a secret, and the store's rows.

A URL is refused when it is added, in one line, rather than failing at every delivery: it must be
plain ``http://`` or ``https://`` text a request line can carry (no control characters, spaces or
non-ASCII), with a host and no user name or password (secrets belong in the signing secret), and
its host must be one the network policy (``ROSETTA_WEBHOOK_NETWORKS``) does not refuse outright.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, urlsplit

from psycopg.rows import dict_row

from rosetta import netpolicy, sqlfile
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError, NotFoundError
from rosetta.netpolicy import NetworkPolicy
from rosetta.store.repository import Conn

EVENTS = (
    "schema.changed",
    "table.added",
    "table.removed",
    "table.healed",
    "table.row_filter_changed",
)
SCHEMES = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2000
MAX_SECRET_BYTES = 1000


QUERIES = sqlfile.Queries("rosetta.store", "webhooks.sql")


def _shown(text: str) -> str:
    """``text`` quoted for an error line: cut short, control characters escaped."""
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _bad_url(url: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"invalid webhook URL {_shown(url)}: {why}")


def split_url(url: str) -> tuple[SplitResult, str, int]:
    """The parts, host and port of a webhook URL, or InvalidInputError in one line."""
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInputError(f"invalid webhook URL: longer than {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        raise _bad_url(
            url,
            "it holds spaces, control or non-ASCII characters (percent-encode them, and use the "
            "ASCII form of a host name)",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url(url, "its host or port cannot be read") from None
    if parts.scheme not in SCHEMES:
        raise _bad_url(url, "use http:// or https://")
    if "@" in parts.netloc:
        raise _bad_url(
            url,
            "it holds a user name or password: remove them (a secret belongs in the webhook's "
            "signing secret)",
        )
    host = parts.hostname
    if not host:
        raise _bad_url(url, "it has no host")
    if port == 0:
        raise _bad_url(url, "port 0 cannot be called")
    return parts, host, port or SCHEMES[parts.scheme]


def validate_url(url: str, policy: NetworkPolicy | None = None) -> str:
    """``url`` if Rosetta can call it: well-formed, and not refused by ``policy`` without a
    lookup (a literal address outside it: NetworkNotAllowedError, HTTP 403)."""
    _, host, _ = split_url(url)
    try:
        (policy or netpolicy.for_webhooks(netpolicy.ANY)).check_host(host)
    except InvalidInputError as exc:
        if type(exc) is InvalidInputError:  # a host that is no name or address
            raise _bad_url(url, "its host is not a host name or an IP address") from None
        raise
    return url


def validate_secret(secret: str | None) -> str | None:
    """The signing secret, or None for none; refused when it cannot sign (not UTF-8, NUL)."""
    if not secret:
        return None
    try:
        encoded = secret.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError("invalid webhook secret: it is not valid text (UTF-8)") from None
    if "\x00" in secret:
        raise InvalidInputError("invalid webhook secret: it holds a NUL character")
    if len(encoded) > MAX_SECRET_BYTES:
        raise InvalidInputError(f"invalid webhook secret: longer than {MAX_SECRET_BYTES} bytes")
    return secret


def validate_events(events: list[str] | None) -> list[str]:
    if not events:
        return list(EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise InvalidInputError(
            f"unknown event {_shown(unknown[0])}: use any of {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(events))


def add_endpoint(
    conn: Conn,
    box: SecretBox,
    source_id: int,
    url: str,
    secret: str | None,
    events: list[str] | None,
    policy: NetworkPolicy | None = None,
) -> dict[str, Any]:
    checked_url = validate_url(url, policy)
    checked_secret = validate_secret(secret)
    checked_events = validate_events(events)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            QUERIES["insert_endpoint"],
            {
                "source_id": source_id,
                "url": checked_url,
                "secret_encrypted": box.encrypt(checked_secret) if checked_secret else None,
                "events": checked_events,
            },
        )
        row = cur.fetchone()
    assert row is not None
    return row


def list_endpoints(conn: Conn, source_id: int | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["list_endpoints"], {"source_id": source_id})
        rows = cur.fetchall()
    return rows


def _no_such(endpoint_id: int) -> NotFoundError:
    return NotFoundError(f"no webhook with id {endpoint_id}: `rosetta webhook list` shows them")


def get_endpoint(conn: Conn, endpoint_id: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["endpoint_by_id"], {"id": endpoint_id})
        row = cur.fetchone()
    if row is None:
        raise _no_such(endpoint_id)
    return row


def remove_endpoint(conn: Conn, endpoint_id: int) -> None:
    cur = conn.execute(QUERIES["delete_endpoint"], {"id": endpoint_id})
    if cur.rowcount == 0:
        raise _no_such(endpoint_id)


def deliveries(
    conn: Conn,
    *,
    source_id: int | None = None,
    endpoint_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            QUERIES["list_deliveries"],
            {"source_id": source_id, "endpoint_id": endpoint_id, "limit": limit},
        )
        rows = cur.fetchall()
    return rows
