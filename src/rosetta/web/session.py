"""The web session: a signed, expiring cookie, the CSRF token derived from it, and flash messages.

The session cookie holds only a random session id. It is signed with ``app.state.session_secret``
(itsdangerous), HttpOnly, SameSite=Lax, Secure on https, and expires after 12 hours. Who is logged
in is not in the cookie: login keeps the session in the store (:func:`rosetta.tokens.start_session`)
and every page looks it up (:mod:`rosetta.web.auth`), so logging out, or revoking the token, ends
the session at once, a copied cookie included. Every POST form carries
``HMAC(session_secret, session id)`` as its CSRF token; a new session id is issued at login, so a
token seen before login is worthless after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from rosetta.tokens import MIN_SESSION_ID_LENGTH, Role, TokenInfo

SESSION_COOKIE = "rosetta_session"
FLASH_COOKIE = "rosetta_flash"
SESSION_MAX_AGE = 12 * 60 * 60
FLASH_MAX_AGE = 120
MAX_FLASH_BYTES = 3600
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Session:
    """A browser's session: its id, and the token it is logged in with once the store has
    confirmed the session is live (None before login, or after logout)."""

    sid: str
    token: TokenInfo | None = None

    @property
    def logged_in(self) -> bool:
        return self.token is not None

    @property
    def user(self) -> str | None:
        return self.token.name if self.token is not None else None

    @property
    def role(self) -> Role | None:
        return self.token.role if self.token is not None else None

    @property
    def is_admin(self) -> bool:
        return self.token is not None and self.token.is_admin


@dataclass
class Flash:
    messages: list[tuple[str, str]] = field(default_factory=list)
    summary: dict[str, Any] | None = None


def _secret(request: Request) -> str:
    return str(request.app.state.session_secret)


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(request), salt=salt)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def load(request: Request) -> Session | None:
    """The request's session, not logged in yet (the store says whether it is), or None when
    there is none or it is forged or expired."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request, "rosetta.session").loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict):
        return None
    sid = data.get("sid")
    if not isinstance(sid, str) or len(sid) < MIN_SESSION_ID_LENGTH:
        return None
    return Session(sid)


def new() -> Session:
    """An anonymous session (its CSRF token protects the login form)."""
    return Session(secrets.token_urlsafe(24))


def save(request: Request, response: Response, session: Session) -> None:
    value = _serializer(request, "rosetta.session").dumps({"sid": session.sid})
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


def csrf_token(request: Request, session: Session) -> str:
    key = _secret(request).encode()
    return hmac.new(key, b"rosetta.csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()


def csrf_ok(request: Request, session: Session | None, supplied: object) -> bool:
    if session is None or not isinstance(supplied, str) or not supplied:
        return False
    return hmac.compare_digest(csrf_token(request, session), supplied)


# --- flash messages ----------------------------------------------------------------------------


def set_flash(
    request: Request,
    response: Response,
    messages: list[tuple[str, str]],
    summary: dict[str, Any] | None = None,
) -> None:
    """Messages (``(level, text)``, level ok/info/error) to show on the next page, once."""
    serializer = _serializer(request, "rosetta.flash")
    payload: dict[str, Any] = {"m": [[level, text[:500]] for level, text in messages]}
    if summary is not None:
        payload["s"] = summary
    value = serializer.dumps(payload)
    if len(value) > MAX_FLASH_BYTES and summary is not None:
        payload["s"] = _counts_only(summary)
        value = serializer.dumps(payload)
    if len(value) > MAX_FLASH_BYTES:
        payload = {"m": [[level, text[:120]] for level, text in messages[:5]]}
        value = serializer.dumps(payload)
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=FLASH_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def _counts_only(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without its lists of table names (they did not fit in a cookie)."""
    slim = {key: value for key, value in summary.items() if key != "names"}
    slim["names"] = {}
    slim["trimmed"] = True
    return slim


def pop_flash(request: Request) -> Flash | None:
    """The flash set by the previous response (the caller clears the cookie)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request, "rosetta.flash").loads(raw, max_age=FLASH_MAX_AGE)
    except BadSignature:
        return Flash()
    if not isinstance(data, dict):
        return Flash()
    messages = [
        (str(m[0]), str(m[1])) for m in data.get("m", []) if isinstance(m, list) and len(m) == 2
    ]
    summary = data.get("s")
    return Flash(messages, summary if isinstance(summary, dict) else None)


def clear_flash(request: Request, response: Response) -> None:
    response.delete_cookie(
        FLASH_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )
