"""The REST API over a real store: authentication, sources, health and error handling.

Its fixtures (``app``, ``client``, ``token``, ``api``, ``add_source``) are in ``conftest.py``.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from psycopg import sql

from rosetta import tokens
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.errors import SourceNotFoundError
from rosetta.monitor import Monitor
from rosetta.pg.server import PostgresServer, free_port
from tests.conftest import Recorder, SourceDb
from tests.integration.conftest import make_app, password_of, source_body

# --- authentication ------------------------------------------------------------------------


def test_health_needs_no_token(client: TestClient, token: str) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    response = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["store"] == "ok"
    assert body["monitor"] is None and body["last_heartbeat"] is None


def test_every_other_route_needs_a_valid_token(
    client: TestClient, store: Any, token: str, add_source: Any, source_db: SourceDb
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    client.headers["Authorization"] = f"Bearer {token}"
    source = add_source()
    del client.headers["Authorization"]
    tokens.create_token(store, "to-revoke", tokens.Role.ADMIN)
    revoked = tokens.create_token(store, "revoked", tokens.Role.ADMIN)
    tokens.revoke_token(store, "revoked")
    paths = [
        ("GET", "/api/v1/sources"),
        ("GET", f"/api/v1/sources/{source['id']}"),
        ("POST", "/api/v1/sources"),
        ("DELETE", f"/api/v1/sources/{source['id']}"),
        ("POST", f"/api/v1/sources/{source['id']}/refresh"),
        ("GET", f"/api/v1/sources/{source['id']}/tables"),
        ("GET", "/api/v1/tables/1"),
        ("GET", f"/api/v1/sources/{source['id']}/available-tables"),
        ("POST", f"/api/v1/sources/{source['id']}/slot"),
    ]
    for headers in (
        {},
        {"Authorization": "Bearer rst_wrong"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {revoked}"},
    ):
        for method, path in paths:
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert set(response.json()) == {"detail"}
            assert "shop" not in response.text
    # The source was not deleted by the refused DELETE.
    assert (
        client.get(
            f"/api/v1/sources/{source['id']}", headers={"Authorization": f"Bearer {token}"}
        ).json()["name"]
        == "shop"
    )


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/sources/{source_id}/tables" in spec["paths"]
    properties = spec["components"]["schemas"]["SourceOut"]["properties"]
    assert "password" not in properties and "password_encrypted" not in properties


# --- health --------------------------------------------------------------------------------


def test_health_503_when_the_store_is_not_migrated(
    pg: PostgresServer, box: SecretBox, token: str
) -> None:
    name = f"empty_{free_port()}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with TestClient(make_app(pg.url(name), box)) as client:
            response = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable"}  # no token table to check it
            other = client.get("/api/v1/sources", headers={"Authorization": f"Bearer {token}"})
            assert other.status_code == 503 and other.headers["retry-after"] == "1"
            assert other.json() == {
                "detail": "Rosetta's store is not migrated: run `rosetta db upgrade`."
            }
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_health_503_when_the_store_is_unreachable(box: SecretBox) -> None:
    url = f"postgresql://nobody:secret@127.0.0.1:{free_port()}/nothing"
    with TestClient(make_app(url, box)) as client:
        response = client.get("/api/v1/health")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
        other = client.get("/api/v1/sources")
        assert other.status_code == 503 and other.headers["retry-after"] == "1"
        assert "secret" not in other.text


def test_health_shows_the_monitor(
    store_url: str, box: SecretBox, source_db: SourceDb, register: Any, token: str
) -> None:
    source_db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE t")
    register()
    monitor = Monitor(store_url, box, interval=3600, limits=SourceLimits(connect_timeout=3))
    with TestClient(make_app(store_url, box, monitor)) as client:
        deadline = time.monotonic() + 30
        while monitor.last is None and time.monotonic() < deadline:
            time.sleep(0.05)
        body = client.get("/api/v1/health", headers={"Authorization": f"Bearer {token}"}).json()
        assert body["monitor"]["in_process"] and body["monitor"]["running"]
        assert body["monitor"]["last_cycle_outcome"] == "ok"
        assert body["monitor"]["last_cycle_summary"]["added"] == 1
        assert body["monitor"]["last_cycle_started_at"] is not None
        assert body["last_heartbeat"]["monitor_id"] == monitor.monitor_id
        assert body["last_heartbeat"]["last_cycle_outcome"] == "ok"
        assert body["last_heartbeat"]["running"] is True
    assert monitor.last is not None


# --- sources -------------------------------------------------------------------------------


def test_source_crud_never_shows_the_password(
    api: TestClient,
    recorder: Recorder,
    source_db: SourceDb,
    caplog_rosetta: pytest.LogCaptureFixture,
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    password = password_of(source_db)

    created = api.post("/api/v1/sources", json=source_body(source_db))
    assert created.status_code == 201, created.text
    body = created.json()
    source_id = body["source"]["id"]
    assert created.headers["location"] == f"/api/v1/sources/{source_id}"
    assert body["source"]["has_password"] is True
    assert body["source"]["table_count"] == 1
    assert body["source"]["is_publication_enabled"] is True
    assert body["sync"]["status"] == "ok" and body["sync"]["added"] == ["customers"]

    listed = api.get("/api/v1/sources").json()
    assert [s["name"] for s in listed] == ["shop"] and listed[0]["table_count"] == 1
    one = api.get(f"/api/v1/sources/{source_id}").json()
    assert one["publication_name"] == "rosetta_publication" and one["last_sync_status"] == "ok"

    # PATCH without a password keeps the old one: the renamed source still syncs.
    patched = api.patch(f"/api/v1/sources/{source_id}", json={"name": "shop-eu"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "shop-eu" and patched.json()["has_password"] is True
    refreshed = api.post(f"/api/v1/sources/{source_id}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["status"] == "ok"
    assert refreshed.json()["unchanged"] == 1

    # A wrong new password is refused (the connection is tested) and nothing changes.
    wrong = api.put(f"/api/v1/sources/{source_id}", json={"password": "not-the-password"})
    assert wrong.status_code == 502, wrong.text
    assert "not-the-password" not in wrong.text
    assert api.post(f"/api/v1/sources/{source_id}/refresh").json()["status"] == "ok"

    # PUT with the right password and a slot name; '' clears the slot again.
    put = api.put(
        f"/api/v1/sources/{source_id}",
        json={"password": password, "replication_name": "rosetta_slot"},
    )
    assert put.status_code == 200 and put.json()["replication_name"] == "rosetta_slot"
    cleared = api.patch(f"/api/v1/sources/{source_id}", json={"replication_name": ""})
    assert cleared.json()["replication_name"] is None

    tested = api.post(f"/api/v1/sources/{source_id}/test-connection")
    assert tested.status_code == 200
    assert tested.json() == {
        "ok": True,
        "publication_name": "rosetta_publication",
        "publication_exists": True,
        "replication_name": None,
        "slot_exists": False,
        "wal_level": "logical",
        "logical_replication_ready": True,
    }

    deleted = api.delete(f"/api/v1/sources/{source_id}")
    assert deleted.status_code == 204
    assert api.get(f"/api/v1/sources/{source_id}").status_code == 404
    assert api.get("/api/v1/sources").json() == []

    recorder.assert_absent(password)
    assert password not in caplog_rosetta.text


def test_bad_source_input_is_4xx_with_a_message(
    api: TestClient, recorder: Recorder, source_db: SourceDb, add_source: Any
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    add_source()
    password = password_of(source_db)
    cases: list[tuple[dict[str, Any], int, str]] = [
        (source_body(source_db), 409, "already exists"),
        (source_body(source_db, name="bad name!"), 422, "invalid source name"),
        (source_body(source_db, name="x", port="abc"), 422, "port"),
        (source_body(source_db, name="x", port=70000), 422, "port"),
        (source_body(source_db, name="x", options={"password": "p"}), 422, "is not allowed"),
        (source_body(source_db, name="x", publication_name="p" * 64), 422, "publication"),
        (source_body(source_db, name="x", unknown=1), 422, "unknown"),
        ({"name": "x", "password": password}, 422, "host"),
    ]
    for body, status, text in cases:
        response = api.post("/api/v1/sources", json=body)
        assert response.status_code == status, (body, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and text in detail, detail
    assert (
        api.post(
            "/api/v1/sources", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    recorder.assert_absent(password)


def test_unreachable_source_is_502(
    api: TestClient, store: Any, source_db: SourceDb, recorder: Recorder, add_source: Any
) -> None:
    port = free_port()
    response = api.post("/api/v1/sources", json=source_body(source_db, port=port))
    assert response.status_code == 502
    assert f"cannot connect to 127.0.0.1:{port}/" in response.json()["detail"]
    assert api.get("/api/v1/sources").json() == []

    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = add_source()
    with store.transaction():
        store.execute("UPDATE sources SET port = %s WHERE id = %s", (port, source["id"]))
    tested = api.post(f"/api/v1/sources/{source['id']}/test-connection")
    assert tested.status_code == 502 and "cannot connect" in tested.json()["detail"]
    refreshed = api.post(f"/api/v1/sources/{source['id']}/refresh")
    assert refreshed.status_code == 502
    assert "cannot connect" in refreshed.json()["detail"]
    assert refreshed.json()["sync"]["status"] == "failed"
    assert api.get(f"/api/v1/sources/{source['id']}").json()["last_sync_status"] == "failed"
    assert api.get(f"/api/v1/sources/{source['id']}/available-tables").status_code == 502
    recorder.assert_absent(password_of(source_db))


def test_unknown_ids_are_404(api: TestClient) -> None:
    for method, path in (
        ("GET", "/api/v1/sources/999"),
        ("PATCH", "/api/v1/sources/999"),
        ("DELETE", "/api/v1/sources/999"),
        ("POST", "/api/v1/sources/999/refresh"),
        ("POST", "/api/v1/sources/999/test-connection"),
        ("GET", "/api/v1/sources/999/tables"),
        ("GET", "/api/v1/sources/999/available-tables"),
        ("POST", "/api/v1/sources/999/slot"),
        ("DELETE", "/api/v1/sources/999/publication"),
        ("GET", "/api/v1/tables/999"),
        ("GET", "/api/v1/tables/999/versions"),
        ("GET", "/api/v1/tables/999/versions/1"),
        ("GET", "/api/v1/tables/999/diff"),
        ("GET", "/api/v1/tables/99999999999999999999"),
    ):
        kwargs: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
        response = api.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert "no " in response.json()["detail"]
    assert api.get("/api/v1/sources/abc").status_code == 422


# --- error handling ------------------------------------------------------------------------


def test_errors_are_json_under_api_and_escaped_html_elsewhere(app: FastAPI, token: str) -> None:
    def not_found() -> None:
        raise SourceNotFoundError("no source named '<b>x</b>'")

    def crash() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/page", not_found)
    app.add_api_route("/api/v1/crash", crash)
    app.add_api_route("/crash", crash)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/page")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
        crashed = client.get("/api/v1/crash")
        assert crashed.status_code == 500
        assert crashed.json() == {"detail": "internal error (RuntimeError): see the log"}
        html_crash = client.get("/crash")
        assert html_crash.status_code == 500 and "Traceback" not in html_crash.text
        assert "secret internals" not in crashed.text + html_crash.text
