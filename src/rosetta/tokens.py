"""API tokens: made once, shown once, stored only as a SHA-256 hash.

A token is ``rst_`` followed by 43 URL-safe random characters. Looking one up by its hash means a
guess never compares against a stored token byte by byte.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from rosetta.errors import ConflictError, InvalidInputError, NotFoundError
from rosetta.store.repository import Conn, q

PREFIX = "rst_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid token name {name!r}: use 1-63 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def create_token(conn: Conn, name: str) -> str:
    """Make a token named ``name``; returns its plaintext, which is never stored."""
    validate_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with conn.transaction():
            conn.execute(q("insert_token"), {"name": name, "token_hash": hash_token(token)})
    except psycopg.errors.UniqueViolation:
        raise ConflictError(f"a token named {name!r} already exists: choose another name") from None
    return token


def list_tokens(conn: Conn) -> list[TokenInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q("list_tokens"))
        rows = cur.fetchall()
    if not conn.autocommit:
        conn.rollback()
    return [TokenInfo(**row) for row in rows]


def revoke_token(conn: Conn, name: str) -> None:
    """Revoke the token named ``name``; it stops working at once."""
    with conn.transaction():
        revoked = conn.execute(q("revoke_token"), {"name": name}).fetchone()
        if revoked is None:
            exists = conn.execute(q("token_by_name"), {"name": name}).fetchone()
            if exists is None:
                raise NotFoundError(
                    f"no token named {name!r}: `rosetta token list` shows the tokens"
                )


def authenticate(conn: Conn, token: str) -> TokenInfo | None:
    """The token if it is valid and not revoked, else None.

    Records the time of use, at most once a minute per token.
    """
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(q("verify_token"), {"token_hash": hash_token(token)})
            row = cur.fetchone()
        if row is None:
            return None
        stale = row.pop("stale")
        if stale:
            conn.execute(q("touch_token"), {"id": row["id"]})
    return TokenInfo(**row)


def verify_token(conn: Conn, token: str) -> str | None:
    """The name of the token if it is valid and not revoked, else None."""
    info = authenticate(conn, token)
    return info.name if info is not None else None


def active_token(conn: Conn, token_id: int) -> TokenInfo | None:
    """The token with id ``token_id`` if it exists and is not revoked (for web sessions)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(q("token_by_id"), {"id": token_id})
        row = cur.fetchone()
    if not conn.autocommit:
        conn.rollback()
    if row is None or row["revoked_at"] is not None:
        return None
    return TokenInfo(**row)
