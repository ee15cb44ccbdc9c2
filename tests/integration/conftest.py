"""Fixtures of the REST API tests (an app over the test's store, a client, a token) and of the
web UI tests (``web_app``, ``web_client``, ``web_token``, and ``web``: a client logged in)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rosetta import sources, tokens
from rosetta.api.app import create_app
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.monitor import Monitor
from tests.conftest import TEST_KEY, Recorder, SourceDb
from tests.integration.web_helpers import log_in


def make_app(store_url: str, box: SecretBox, monitor: Monitor | None = None) -> FastAPI:
    settings = Settings(
        database_url=store_url, secret_key=TEST_KEY, log_file=None, source_connect_timeout=3
    )
    return create_app(settings, store_url, box, monitor=monitor)


@pytest.fixture
def app(store_url: str, box: SecretBox) -> FastAPI:
    return make_app(store_url, box)


@pytest.fixture
def client(app: FastAPI, recorder: Recorder) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        test_client.event_hooks["response"].append(recorder)
        yield test_client


@pytest.fixture
def token(store: Any) -> str:
    """An admin token: the API tests register sources and act on them."""
    return tokens.create_token(store, "tester", tokens.Role.ADMIN)


@pytest.fixture
def read_token(store: Any) -> str:
    return tokens.create_token(store, "reader", tokens.Role.READ)


@pytest.fixture
def api(client: TestClient, token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def source_body(source_db: SourceDb, **changes: Any) -> dict[str, Any]:
    params = sources.parse_dsn(source_db.url)
    body: dict[str, Any] = {
        "name": "shop",
        "host": params.host,
        "port": params.port,
        "database": params.database,
        "username": params.username,
        "password": params.password,
        "publication_name": "rosetta_publication",
    }
    body.update(changes)
    return body


@pytest.fixture
def add_source(api: TestClient, source_db: SourceDb) -> Callable[..., dict[str, Any]]:
    """Register ``source_db`` through the API; returns the created source's JSON."""

    def _add(**changes: Any) -> dict[str, Any]:
        response = api.post("/api/v1/sources", json=source_body(source_db, **changes))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()["source"]
        return created

    return _add


def password_of(source_db: SourceDb) -> str:
    password = sources.parse_dsn(source_db.url).password
    assert password
    return password


# --- the web UI: a browser-like client that does not follow redirects, logged in by a form -----


@pytest.fixture
def web_app(store_url: str, box: SecretBox) -> FastAPI:
    return make_app(store_url, box)


@pytest.fixture
def web_client(web_app: FastAPI, recorder: Recorder) -> Iterator[TestClient]:
    with TestClient(web_app, follow_redirects=False) as test_client:
        test_client.event_hooks["response"].append(recorder)
        yield test_client


@pytest.fixture
def web_token(store: Any) -> str:
    return tokens.create_token(store, "web-tester", tokens.Role.ADMIN)


@pytest.fixture
def web(web_client: TestClient, web_token: str) -> TestClient:
    """``web_client`` logged in with ``web_token`` (an admin)."""
    response = log_in(web_client, web_token)
    assert response.status_code == 303
    return web_client
