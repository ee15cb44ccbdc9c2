"""API tokens: made once, kept hashed, with a role, revocable, and checked without revealing
anything; the web sessions logged in with them end on logout, expiry or revocation."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from rosetta import tokens
from rosetta.errors import ConflictError, InvalidInputError, NotFoundError
from rosetta.tokens import Role

READ, ADMIN = Role.READ, Role.ADMIN
HOUR = 3600


def test_create_stores_only_the_hash_and_the_role(store: Any) -> None:
    token = tokens.create_token(store, "ci-pipeline", READ)
    assert token.startswith("rst_") and len(token) > 40
    rows = store.execute("SELECT name, token_hash, role FROM api_tokens").fetchall()
    store.rollback()
    assert rows == [("ci-pipeline", hashlib.sha256(token.encode()).hexdigest(), "read")]
    assert token not in str(rows)


def test_the_role_is_listed_and_authenticated(store: Any) -> None:
    reader = tokens.create_token(store, "dashboard", READ)
    admin = tokens.create_token(store, "ops", ADMIN)
    assert {t.name: t.role for t in tokens.list_tokens(store)} == {"dashboard": READ, "ops": ADMIN}
    read_info, admin_info = tokens.authenticate(store, reader), tokens.authenticate(store, admin)
    assert read_info is not None and read_info.role is READ and not read_info.is_admin
    assert admin_info is not None and admin_info.role is ADMIN and admin_info.is_admin


def test_a_role_is_read_or_admin(store: Any) -> None:
    assert tokens.parse_role("Admin") is ADMIN and tokens.parse_role("read") is READ
    with pytest.raises(InvalidInputError, match="use read or admin"):
        tokens.parse_role("owner")
    with pytest.raises(ValueError):
        tokens.create_token(store, "x", "owner")  # type: ignore[arg-type]
    assert tokens.list_tokens(store) == []


def test_verify(store: Any) -> None:
    token = tokens.create_token(store, "alice", READ)
    assert tokens.verify_token(store, token) == "alice"
    assert tokens.verify_token(store, token + "x") is None
    assert tokens.verify_token(store, "rst_" + "a" * 43) is None
    assert tokens.verify_token(store, "") is None
    assert tokens.verify_token(store, "not-a-token") is None
    assert tokens.verify_token(store, "rst_" + "a" * 10_000) is None


def test_names_are_unique_and_valid(store: Any) -> None:
    tokens.create_token(store, "bob", READ)
    with pytest.raises(ConflictError, match="already exists"):
        tokens.create_token(store, "bob", ADMIN)
    for bad in ("", " spaced", "a" * 64, "<script>", "x;y"):
        with pytest.raises(InvalidInputError):
            tokens.create_token(store, bad, READ)
    assert [t.name for t in tokens.list_tokens(store)] == ["bob"]


def test_revoke(store: Any) -> None:
    token = tokens.create_token(store, "carol", ADMIN)
    other = tokens.create_token(store, "dave", READ)
    tokens.revoke_token(store, "carol")
    assert tokens.verify_token(store, token) is None
    assert tokens.verify_token(store, other) == "dave"
    listed = {t.name: t for t in tokens.list_tokens(store)}
    assert not listed["carol"].active and listed["carol"].revoked_at is not None
    assert listed["dave"].active
    tokens.revoke_token(store, "carol")  # revoking twice is harmless
    with pytest.raises(NotFoundError, match="no token named 'nobody'"):
        tokens.revoke_token(store, "nobody")
    # A name stays taken after revocation: a revoked token's name is never reused.
    with pytest.raises(ConflictError):
        tokens.create_token(store, "carol", READ)


def test_last_used_is_recorded_at_most_once_a_minute(store: Any) -> None:
    token = tokens.create_token(store, "erin", READ)
    assert tokens.list_tokens(store)[0].last_used_at is None
    tokens.verify_token(store, token)
    first = tokens.list_tokens(store)[0].last_used_at
    assert first is not None
    tokens.verify_token(store, token)
    assert tokens.list_tokens(store)[0].last_used_at == first
    with store.transaction():
        store.execute("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'")
    stale = tokens.list_tokens(store)[0].last_used_at
    assert stale is not None
    tokens.verify_token(store, token)
    used = tokens.list_tokens(store)[0].last_used_at
    assert used is not None and used > stale


def test_active_token_by_id(store: Any) -> None:
    token = tokens.create_token(store, "frank", READ)
    info = tokens.authenticate(store, token)
    assert info is not None and info.name == "frank"
    assert tokens.active_token(store, info.id) is not None
    tokens.revoke_token(store, "frank")
    assert tokens.active_token(store, info.id) is None
    assert tokens.active_token(store, 999_999) is None


# --- web sessions ------------------------------------------------------------------------------


def _token_id(store: Any, name: str) -> int:
    found = {t.name: t.id for t in tokens.list_tokens(store)}
    store.rollback()  # the test owns the unit of work: end the read, as a command would
    return found[name]


def _session_rows(store: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = store.execute(
        "SELECT id, token_id FROM web_sessions ORDER BY created_at"
    ).fetchall()
    store.rollback()
    return rows


def test_a_session_is_live_until_it_ends(store: Any) -> None:
    tokens.create_token(store, "gina", READ)
    sid = tokens.start_session(store, _token_id(store, "gina"), HOUR)
    live = tokens.session_token(store, sid)
    assert live is not None and live.name == "gina" and live.role is READ
    # Only the session id's hash is kept.
    assert _session_rows(store) == [(hashlib.sha256(sid.encode()).hexdigest(), live.id)]
    assert tokens.session_token(store, sid + "x") is None
    assert tokens.session_token(store, "short") is None
    tokens.end_session(store, sid)
    assert tokens.session_token(store, sid) is None
    assert _session_rows(store) == []


def test_an_expired_session_is_dead_and_pruned_at_the_next_login(store: Any) -> None:
    tokens.create_token(store, "hank", ADMIN)
    token_id = _token_id(store, "hank")
    old = tokens.start_session(store, token_id, HOUR)
    with store.transaction():
        store.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
    assert tokens.session_token(store, old) is None
    new = tokens.start_session(store, token_id, HOUR)
    assert tokens.session_token(store, new) is not None
    assert [row[0] for row in _session_rows(store)] == [hashlib.sha256(new.encode()).hexdigest()]


def test_revoking_a_token_ends_its_sessions_only(store: Any) -> None:
    tokens.create_token(store, "ivy", ADMIN)
    tokens.create_token(store, "jack", READ)
    ivy = [tokens.start_session(store, _token_id(store, "ivy"), HOUR) for _ in range(2)]
    jack = tokens.start_session(store, _token_id(store, "jack"), HOUR)
    tokens.revoke_token(store, "ivy")
    assert [tokens.session_token(store, sid) for sid in ivy] == [None, None]
    assert [row[1] for row in _session_rows(store)] == [_token_id(store, "jack")]
    assert tokens.session_token(store, jack) is not None


def test_deleting_a_token_deletes_its_sessions(store: Any) -> None:
    tokens.create_token(store, "kim", READ)
    tokens.start_session(store, _token_id(store, "kim"), HOUR)
    with store.transaction():
        store.execute("DELETE FROM api_tokens WHERE name = 'kim'")
    assert _session_rows(store) == []


def test_last_seen_moves_at_most_once_a_minute(store: Any) -> None:
    tokens.create_token(store, "lea", READ)
    sid = tokens.start_session(store, _token_id(store, "lea"), HOUR)

    def last_seen() -> Any:
        value = store.execute("SELECT last_seen_at FROM web_sessions").fetchone()[0]
        store.rollback()
        return value

    first = last_seen()
    tokens.session_token(store, sid)
    assert last_seen() == first
    with store.transaction():
        store.execute("UPDATE web_sessions SET last_seen_at = now() - interval '2 minutes'")
    stale = last_seen()
    tokens.session_token(store, sid)
    assert last_seen() > stale
