"""Web sessions that really end: the cookie carries only a session id, the store says whether the
session is live, and logout, expiry and `rosetta token revoke` end it at once, for a copied cookie
too."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from rosetta import tokens
from rosetta.web import session
from tests.conftest import Cli
from tests.integration.web_helpers import csrf_of, log_in


def cookie(client: TestClient) -> str:
    value = client.cookies.get(session.SESSION_COOKIE)
    assert value, "no session cookie"
    return value


def browser(app: FastAPI, copied: str | None = None) -> TestClient:
    """Another browser (on the app the ``client`` fixture runs), with a copy of a cookie."""
    other = TestClient(app, follow_redirects=False)  # no `with`: the app is already started
    if copied is not None:
        other.cookies.set(session.SESSION_COOKIE, copied)
    return other


def log_in_again(client: TestClient, token: str) -> Any:
    """The login form posted from a logged-in page (the login page itself redirects)."""
    return client.post("/login", data={"token": token, "next": "/", "csrf": csrf_of(client, "/")})


def goes_to_login(response: Any) -> bool:
    return bool(response.status_code == 303 and response.headers["location"] == "/login")


def session_rows(store: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = store.execute(
        "SELECT s.id, t.name, s.expires_at - s.created_at FROM web_sessions s "
        "JOIN api_tokens t ON t.id = s.token_id"
    ).fetchall()
    store.rollback()
    return rows


def test_the_cookie_carries_only_the_session_id(
    web_app: FastAPI, web: TestClient, store: Any
) -> None:
    data = URLSafeTimedSerializer(web_app.state.session_secret, salt="rosetta.session").loads(
        cookie(web)
    )
    assert set(data) == {"sid"}
    [(stored, name, lifetime)] = session_rows(store)
    assert stored == hashlib.sha256(data["sid"].encode()).hexdigest() and name == "web-tester"
    assert lifetime.total_seconds() == session.SESSION_MAX_AGE


def test_a_signed_cookie_is_not_enough_without_its_session(
    web_app: FastAPI, web: TestClient
) -> None:
    forged = URLSafeTimedSerializer(web_app.state.session_secret, salt="rosetta.session").dumps(
        {"sid": "a-session-id-the-store-never-saw", "user": "web-tester", "tid": 1}
    )
    assert goes_to_login(browser(web_app, forged).get("/"))


def test_after_logout_the_old_cookie_goes_to_login(
    web_app: FastAPI, web: TestClient, store: Any
) -> None:
    copied = cookie(web)
    other = browser(web_app, copied)
    assert other.get("/").status_code == 200  # the copy works while the session lives
    logout = web.post("/logout", data={"csrf": csrf_of(web, "/")})
    assert goes_to_login(logout)
    assert goes_to_login(other.get("/"))
    assert goes_to_login(other.post("/sources/new", data={"csrf": "x", "name": "x"}))
    assert session_rows(store) == []


def test_logout_ends_only_its_own_session(
    web_app: FastAPI, web: TestClient, web_token: str
) -> None:
    second = browser(web_app)
    assert log_in(second, web_token).status_code == 303
    assert web.post("/logout", data={"csrf": csrf_of(web, "/")}).status_code == 303
    assert second.get("/").status_code == 200


def test_token_revoke_logs_out_its_web_sessions(
    web_app: FastAPI, web: TestClient, cli: Cli, store: Any
) -> None:
    other_token = tokens.create_token(store, "other", tokens.Role.READ)
    other = browser(web_app)
    assert log_in(other, other_token).status_code == 303
    assert web.get("/").status_code == 200
    revoked = cli("token", "revoke", "web-tester")
    assert revoked.returncode == 0, revoked.stderr
    assert goes_to_login(web.get("/"))
    assert web.get("/login").status_code == 200  # the login form, to log in with another token
    assert other.get("/").status_code == 200
    assert [name for _, name, _ in session_rows(store)] == ["other"]


def test_an_expired_session_goes_to_login_and_is_pruned_at_the_next_login(
    web_app: FastAPI, web: TestClient, store: Any, web_token: str
) -> None:
    with store.transaction():
        store.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    assert goes_to_login(web.get("/"))
    assert log_in(web, web_token).status_code == 303
    assert web.get("/").status_code == 200
    assert len(session_rows(store)) == 1


def test_logging_in_again_replaces_the_session(
    web_app: FastAPI, web: TestClient, store: Any, web_token: str
) -> None:
    first = cookie(web)
    assert log_in_again(web, web_token).status_code == 303
    assert cookie(web) != first
    assert len(session_rows(store)) == 1
    assert goes_to_login(browser(web_app, first).get("/"))
    assert web.get("/").status_code == 200
