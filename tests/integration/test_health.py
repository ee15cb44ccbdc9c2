"""GET /api/v1/health: up or down for anyone, the details for a valid token; an outage seen
within about a second, other requests refused at once meanwhile, and logged once each way."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from rosetta import __version__, tokens
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.monitor import Monitor
from rosetta.pg.server import PostgresServer
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import db
from tests.integration.conftest import make_app
from tests.live_server import serving

HEALTH = "/api/v1/health"
CLIENT_TIMEOUT = 3.0  # no health answer may take longer, even with the store gone
DETECTION_WAIT = 15.0  # generous: the watch looks every 0.25 s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def poll(
    client: httpx.Client, until: Callable[[httpx.Response], bool], **kwargs: Any
) -> httpx.Response:
    deadline = time.monotonic() + DETECTION_WAIT
    while True:
        response = client.get(HEALTH, **kwargs)
        if until(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_without_a_valid_token_health_says_only_up_or_down(
    store_url: str, box: SecretBox, token: str
) -> None:
    monitor = Monitor(store_url, box, interval=3600, limits=SourceLimits(connect_timeout=3))
    with TestClient(make_app(store_url, box, monitor)) as client:
        for headers in (
            {},
            bearer("rst_not-a-token"),
            bearer(token + "x"),
            {"Authorization": f"Basic {token}"},
            {"Authorization": "Bearer"},
        ):
            response = client.get(HEALTH, headers=headers)
            assert response.status_code == 200, headers  # a bad token is not a 401 here
            assert response.json() == {"status": "ok"}
            assert socket.gethostname() not in response.text
            assert str(os.getpid()) not in response.text
        full = client.get(HEALTH, headers=bearer(token))
        assert full.status_code == 200
        body = full.json()
        assert body["status"] == "ok" and body["store"] == "ok"
        assert body["version"] == __version__
        assert body["monitor"]["monitor_id"] == monitor.monitor_id


def test_the_openapi_document_shows_both_answers(store_url: str, box: SecretBox) -> None:
    with TestClient(make_app(store_url, box)) as client:
        spec = client.get("/openapi.json").json()
    responses = spec["paths"][HEALTH]["get"]["responses"]
    for code in ("200", "503"):
        schema = responses[code]["content"]["application/json"]["schema"]
        refs = {option["$ref"].rsplit("/", 1)[-1] for option in schema["anyOf"]}
        assert refs == {"HealthOut", "HealthStatusOut"}
    assert spec["components"]["schemas"]["HealthStatusOut"]["required"] == ["status"]


def _allow_connections(pg: PostgresServer, dbname: str, allowed: bool) -> None:
    """Open or close the store's database to new connections; closing also ends the open
    ones: to the app, the store is gone."""
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.Literal(allowed)
            )
        )
        if not allowed:
            conn.execute(
                b"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                b"WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )


def test_an_outage_is_answered_at_once_and_logged_once_each_way(
    pg: PostgresServer,
    store_url: str,
    box: SecretBox,
    token: str,
    caplog_rosetta: Any,
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(store_url)["dbname"]
    assert isinstance(dbname, str)
    with (
        serving(make_app(store_url, box)) as base,
        httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert client.get(HEALTH).status_code == 200
        assert client.get("/api/v1/sources", headers=bearer(token)).status_code == 200
        _allow_connections(pg, dbname, False)
        try:
            down = poll(client, lambda r: r.status_code == 503)
            assert down.status_code == 503 and down.json() == {"status": "unavailable"}
            for _ in range(5):
                assert client.get(HEALTH, headers=bearer(token)).status_code == 503
                refused = client.get("/api/v1/sources", headers=bearer(token))
                assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
                assert refused.json() == {
                    "detail": "Rosetta's store cannot be reached: check ROSETTA_DATABASE_URL"
                }
                page = client.get("/sources")
                assert page.status_code == 503 and page.headers["retry-after"] == "1"
                assert "Error 503" in page.text
        finally:
            _allow_connections(pg, dbname, True)
        up = poll(client, lambda r: r.status_code == 200)
        assert up.json() == {"status": "ok"}
        assert client.get("/api/v1/sources", headers=bearer(token)).status_code == 200
    messages = [record.getMessage() for record in caplog_rosetta.records]
    down_lines = [m for m in messages if m.startswith("Rosetta's store is unreachable")]
    assert len(down_lines) == 1, messages
    assert messages.count("Rosetta's store is reachable again") == 1


def test_health_is_503_soon_after_the_store_stops(box: SecretBox) -> None:
    throwaway = ThrowawayPostgres()
    server = throwaway.start()
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(b"CREATE DATABASE store")
        url = server.url("store")
        db.upgrade(url)
        with db.connect(url) as conn:
            token = tokens.create_token(conn, "probe", tokens.Role.READ)
        with (
            serving(make_app(url, box)) as base,
            httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT) as client,
        ):
            assert client.get(HEALTH).json() == {"status": "ok"}
            assert client.get(HEALTH, headers=bearer(token)).json()["store"] == "ok"
            throwaway.stop()
            down = poll(client, lambda r: r.status_code == 503)
            assert down.status_code == 503 and down.json() == {"status": "unavailable"}
            with_token = client.get(HEALTH, headers=bearer(token))  # cannot be checked now
            assert with_token.status_code == 503 and with_token.json() == {"status": "unavailable"}
            refused = client.get("/api/v1/sources", headers=bearer(token))
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    finally:
        throwaway.stop()
