"""API tokens: made once, kept hashed, revocable, and checked without revealing anything."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from rosetta import tokens
from rosetta.errors import ConflictError, InvalidInputError, NotFoundError


def test_create_stores_only_the_hash(store: Any) -> None:
    token = tokens.create_token(store, "ci-pipeline")
    assert token.startswith("rst_") and len(token) > 40
    rows = store.execute("SELECT name, token_hash FROM api_tokens").fetchall()
    store.rollback()
    assert rows == [("ci-pipeline", hashlib.sha256(token.encode()).hexdigest())]
    assert token not in str(rows)


def test_verify(store: Any) -> None:
    token = tokens.create_token(store, "alice")
    assert tokens.verify_token(store, token) == "alice"
    assert tokens.verify_token(store, token + "x") is None
    assert tokens.verify_token(store, "rst_" + "a" * 43) is None
    assert tokens.verify_token(store, "") is None
    assert tokens.verify_token(store, "not-a-token") is None
    assert tokens.verify_token(store, "rst_" + "a" * 10_000) is None


def test_names_are_unique_and_valid(store: Any) -> None:
    tokens.create_token(store, "bob")
    with pytest.raises(ConflictError, match="already exists"):
        tokens.create_token(store, "bob")
    for bad in ("", " spaced", "a" * 64, "<script>", "x;y"):
        with pytest.raises(InvalidInputError):
            tokens.create_token(store, bad)
    assert [t.name for t in tokens.list_tokens(store)] == ["bob"]


def test_revoke(store: Any) -> None:
    token = tokens.create_token(store, "carol")
    other = tokens.create_token(store, "dave")
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
        tokens.create_token(store, "carol")


def test_last_used_is_recorded_at_most_once_a_minute(store: Any) -> None:
    token = tokens.create_token(store, "erin")
    assert tokens.list_tokens(store)[0].last_used_at is None
    tokens.verify_token(store, token)
    first = tokens.list_tokens(store)[0].last_used_at
    assert first is not None
    tokens.verify_token(store, token)
    assert tokens.list_tokens(store)[0].last_used_at == first
    with store.transaction():
        store.execute("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'")
    stale = tokens.list_tokens(store)[0].last_used_at
    tokens.verify_token(store, token)
    assert tokens.list_tokens(store)[0].last_used_at > stale


def test_active_token_by_id(store: Any) -> None:
    token = tokens.create_token(store, "frank")
    info = tokens.authenticate(store, token)
    assert info is not None and info.name == "frank"
    assert tokens.active_token(store, info.id) is not None
    tokens.revoke_token(store, "frank")
    assert tokens.active_token(store, info.id) is None
    assert tokens.active_token(store, 999_999) is None
