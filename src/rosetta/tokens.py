"""API tokens and the web sessions logged in with them.

A token is ``rst_`` followed by 43 URL-safe random characters, made once, shown once, stored only
as a SHA-256 hash: looking one up by its hash means a guess never compares against a stored token
byte by byte. Each token has a :class:`Role`: ``read`` reads the registry, ``admin`` also changes
it and acts on sources and webhooks.

A web session is a row of ``web_sessions`` keyed by the SHA-256 of a random session id (the
browser's signed cookie carries the id). It lives until it expires, its user logs out, or its token
is revoked: each ends it at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg.rows import dict_row

from rosetta.errors import ForbiddenError, InvalidInputError, NotFoundError
from rosetta.store.repository import QUERIES, Conn
from rosetta.uow import map_store_errors

PREFIX = "rst_"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")
MAX_TOKEN_LENGTH = 200
MIN_SESSION_ID_LENGTH = 16


class Role(StrEnum):
    """What a token may do. ``read``: everything a pipeline or a dashboard reads. ``admin``:
    also register, change and forget sources, act on publications and slots, manage webhooks."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TokenInfo:
        return cls(
            id=row["id"],
            name=row["name"],
            role=Role(row["role"]),
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
        )

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def not_allowed(role: Role, action: str) -> ForbiddenError:
    """The error for a token whose role may not do ``action`` (one line, with the way out)."""
    return ForbiddenError(
        f"this token's role is {role}: an admin token can {action} "
        "(`rosetta token create NAME --role admin` makes one)"
    )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid token name {name!r}: use 1-63 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"invalid role {value!r}: use {' or '.join(r.value for r in Role)}"
        ) from None


def create_token(conn: Conn, name: str, role: Role) -> str:
    """Make a token named ``name`` with ``role``; returns its plaintext, which is never stored."""
    validate_name(name)
    token = PREFIX + secrets.token_urlsafe(32)
    taken = f"a token named {name!r} already exists: choose another name"
    with map_store_errors(conflict=taken), conn.transaction():
        conn.execute(
            QUERIES["insert_token"],
            {"name": name, "token_hash": hash_token(token), "role": Role(role).value},
        )
    return token


def _token(conn: Conn, query: str, params: dict[str, Any]) -> TokenInfo | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES[query], params)
        row = cur.fetchone()
    return TokenInfo.from_row(row) if row is not None else None


def list_tokens(conn: Conn) -> list[TokenInfo]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(QUERIES["list_tokens"])
        rows = cur.fetchall()
    return [TokenInfo.from_row(row) for row in rows]


def revoke_token(conn: Conn, name: str) -> None:
    """Revoke the token named ``name``: it stops working, and its web sessions end, at once."""
    with conn.transaction():
        revoked = conn.execute(QUERIES["revoke_token"], {"name": name}).fetchone()
        if revoked is None:
            if _token(conn, "token_by_name", {"name": name}) is None:
                raise NotFoundError(
                    f"no token named {name!r}: `rosetta token list` shows the tokens"
                )
            return
        conn.execute(QUERIES["delete_token_sessions"], {"token_id": revoked[0]})


def authenticate(conn: Conn, token: str) -> TokenInfo | None:
    """The token if it is valid and not revoked, else None.

    Records the time of use, at most once a minute per token.
    """
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        return None
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(QUERIES["verify_token"], {"token_hash": hash_token(token)})
            row = cur.fetchone()
        if row is None:
            return None
        if row["stale"]:
            conn.execute(QUERIES["touch_token"], {"id": row["id"]})
    return TokenInfo.from_row(row)


def verify_token(conn: Conn, token: str) -> str | None:
    """The name of the token if it is valid and not revoked, else None."""
    info = authenticate(conn, token)
    return info.name if info is not None else None


def active_token(conn: Conn, token_id: int) -> TokenInfo | None:
    """The token with id ``token_id`` if it exists and is not revoked."""
    info = _token(conn, "token_by_id", {"id": token_id})
    return info if info is not None and info.active else None


# --- web sessions ------------------------------------------------------------------------------


def start_session(conn: Conn, token_id: int, max_age: int) -> str:
    """A new web session of the token, valid for ``max_age`` seconds; returns its id (for the
    cookie: the store keeps only its hash). Expired sessions are pruned on the way."""
    session_id = secrets.token_urlsafe(24)
    with conn.transaction():
        conn.execute(QUERIES["prune_web_sessions"])
        conn.execute(
            QUERIES["insert_web_session"],
            {"session_hash": hash_token(session_id), "token_id": token_id, "max_age": max_age},
        )
    return session_id


def session_token(conn: Conn, session_id: str) -> TokenInfo | None:
    """The token of the web session ``session_id`` if the session is live (not ended, not
    expired) and its token active; else None."""
    if len(session_id) < MIN_SESSION_ID_LENGTH or len(session_id) > MAX_TOKEN_LENGTH:
        return None
    with conn.transaction():
        return _token(conn, "web_session_token", {"session_hash": hash_token(session_id)})


def end_session(conn: Conn, session_id: str) -> None:
    """End the web session ``session_id`` (logout): its cookie stops working at once."""
    with conn.transaction():
        conn.execute(QUERIES["delete_web_session"], {"session_hash": hash_token(session_id)})
