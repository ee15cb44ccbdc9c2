"""The API's operations routes: the doctor, webhooks and their delivery log, and /metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rosetta import metrics, webhooks
from rosetta.api.app import create_app
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from tests.conftest import TEST_KEY, Receiver, Recorder, SourceDb
from tests.integration.conftest import source_body

SECRET = "whsec-api-never-shown"


def _shop(source_db: SourceDb, add_source: Any) -> dict[str, Any]:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("CREATE TABLE events (at timestamptz, payload jsonb)")  # no primary key
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders, events")
    created: dict[str, Any] = add_source()
    return created


def _checks(body: dict[str, Any], name: str, subject: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        c for c in body["checks"] if c["name"] == name and c["subject"] == subject
    ]
    assert len(found) == 1, (name, subject, body["checks"])
    return found[0]


# --- the doctor --------------------------------------------------------------------------------


def test_doctor_reports_pass_and_fail_with_200(
    api: TestClient, client: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    source = _shop(source_db, add_source)
    path = f"/api/v1/sources/{source['id']}/doctor"

    response = api.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False and body["counts"]["FAIL"] >= 1
    assert sum(body["counts"].values()) == len(body["checks"])
    assert _checks(body, "store", "")["status"] == "PASS"
    assert _checks(body, "monitor", "")["status"] == "WARN"
    assert _checks(body, "connection", "shop")["status"] == "PASS"
    assert _checks(body, "replica identity", "shop/orders") == {
        "name": "replica identity",
        "status": "PASS",
        "detail": "replica identity DEFAULT (primary key)",
        "fix": None,
        "subject": "shop/orders",
    }
    events = _checks(body, "replica identity", "shop/events")
    assert events["status"] == "FAIL"
    assert events["fix"] == (
        "ALTER TABLE events ADD PRIMARY KEY (...); or ALTER TABLE events REPLICA IDENTITY FULL;"
    )

    one = api.get(path, params={"table": "public.orders"}).json()
    assert one["ok"] is True and one["counts"]["FAIL"] == 0
    assert {c["subject"] for c in one["checks"]} == {"", "shop", "shop/orders"}
    missing = api.get(path, params={"table": "ghost"}).json()
    assert _checks(missing, "table exists", "shop/ghost")["status"] == "FAIL"

    source_db.sql("DROP PUBLICATION rosetta_publication")
    gone = api.get(path).json()
    assert gone["ok"] is False and _checks(gone, "publication", "shop")["status"] == "FAIL"

    unknown = api.get("/api/v1/sources/987654/doctor")
    assert unknown.status_code == 404 and "no source" in unknown.json()["detail"].lower()
    del client.headers["Authorization"]
    assert client.get(path).status_code == 401


# --- webhooks ----------------------------------------------------------------------------------


def test_webhook_crud_and_test_never_show_the_secret(
    api: TestClient,
    recorder: Recorder,
    add_source: Any,
    source_db: SourceDb,
    receiver: Receiver,
) -> None:
    source = _shop(source_db, add_source)
    hooks = f"/api/v1/sources/{source['id']}/webhooks"
    assert api.get(hooks).json() == []

    created = api.post(
        hooks, json={"url": receiver.url, "secret": SECRET, "events": ["schema.changed"]}
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["signed"] is True and hook["events"] == ["schema.changed"]
    assert hook["url"] == receiver.url and hook["source"] == "shop"
    assert (hook["delivered"], hook["pending"], hook["failed"]) == (0, 0, 0)
    assert "secret" not in hook and "secret_encrypted" not in hook
    plain = api.post(hooks, json={"url": receiver.url}).json()
    assert plain["signed"] is False and plain["events"] == list(webhooks.EVENTS)
    listed = api.get(hooks).json()
    assert [w["id"] for w in listed] == [hook["id"], plain["id"]]
    assert all(set(w) == set(hook) for w in listed)

    for bad, message in (
        ({"url": "ftp://example.com/x", "secret": SECRET}, "invalid webhook URL"),
        ({"url": "not a url"}, "invalid webhook URL"),
        ({"url": receiver.url, "events": ["table.exploded"]}, "unknown event 'table.exploded'"),
        ({"url": receiver.url, "secret": SECRET, "extra": 1}, "extra: Extra inputs"),
        ({"secret": SECRET}, "url: Field required"),
    ):
        refused = api.post(hooks, json=bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert message in refused.json()["detail"], refused.text
    assert api.post("/api/v1/sources/987654/webhooks", json={"url": receiver.url}).status_code == (
        404
    )
    assert api.get("/api/v1/sources/987654/webhooks").status_code == 404
    assert len(api.get(hooks).json()) == 2

    # Test: a signed POST to the endpoint now, and its answer.
    tested = api.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert tested.status_code == 200
    assert tested.json() == {"ok": True, "status_code": 200, "error": None}
    [request] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Rosetta-Signature"] == expected
    assert json.loads(request["body"])["event"] == "test"
    receiver.statuses = [500]
    failed = api.post(f"/api/v1/webhooks/{hook['id']}/test").json()
    assert failed == {"ok": False, "status_code": 500, "error": "HTTP 500"}
    dead = api.post(hooks, json={"url": f"http://127.0.0.1:{free_port()}/hook"}).json()
    unreachable = api.post(f"/api/v1/webhooks/{dead['id']}/test").json()
    assert unreachable["ok"] is False and unreachable["status_code"] is None
    assert "refused" in unreachable["error"].lower()

    # Remove.
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 404
    assert api.post(f"/api/v1/webhooks/{hook['id']}/test").status_code == 404
    assert [w["id"] for w in api.get(hooks).json()] == [plain["id"], dead["id"]]

    spec = api.get("/openapi.json").json()
    assert "/api/v1/sources/{source_id}/webhooks" in spec["paths"]
    assert "/metrics" not in spec["paths"]
    assert "secret" not in spec["components"]["schemas"]["WebhookOut"]["properties"]
    recorder.assert_absent(SECRET)


def test_delivery_log_after_a_sync(
    api: TestClient,
    store: Any,
    box: SecretBox,
    add_source: Any,
    source_db: SourceDb,
    receiver: Receiver,
) -> None:
    source = _shop(source_db, add_source)
    hooks = f"/api/v1/sources/{source['id']}/webhooks"
    hook = api.post(hooks, json={"url": receiver.url, "secret": SECRET}).json()
    dead = api.post(
        hooks, json={"url": f"http://127.0.0.1:{free_port()}/", "events": ["schema.changed"]}
    ).json()
    assert api.get(f"{hooks}/deliveries").json() == []

    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    assert api.post(f"/api/v1/sources/{source['id']}/refresh").status_code == 200
    pending = api.get(f"{hooks}/deliveries").json()
    assert [(d["event"], d["status"], d["attempts"]) for d in pending] == [
        ("schema.changed", "pending", 0),
        ("schema.changed", "pending", 0),
    ]
    assert receiver.requests == []  # this app runs no dispatcher: the outbox waits

    assert webhooks.deliver_due(store, box, timeout=5) == (1, 1)
    log = api.get(f"{hooks}/deliveries").json()
    by_endpoint = {d["endpoint_id"]: d for d in log}
    ok = by_endpoint[hook["id"]]
    assert (ok["event"], ok["table"], ok["version"]) == ("schema.changed", "orders", 2)
    assert (ok["status"], ok["last_status_code"], ok["attempts"]) == ("delivered", 200, 1)
    assert ok["delivered_at"] is not None and ok["last_error"] is None
    bad = by_endpoint[dead["id"]]
    assert (bad["status"], bad["last_status_code"], bad["attempts"]) == ("pending", None, 1)
    assert "refused" in bad["last_error"].lower()
    assert [d["id"] for d in log] == sorted((d["id"] for d in log), reverse=True)
    counts = {w["id"]: (w["delivered"], w["pending"]) for w in api.get(hooks).json()}
    assert counts == {hook["id"]: (1, 0), dead["id"]: (0, 1)}

    assert len(api.get(f"{hooks}/deliveries", params={"limit": 1}).json()) == 1
    assert api.get(f"{hooks}/deliveries", params={"limit": 0}).status_code == 422
    assert api.get("/api/v1/sources/987654/webhooks/deliveries").status_code == 404
    [event] = receiver.events()
    assert event["event"] == "schema.changed" and event["changes"][0]["column"] == "note"


def test_the_served_app_dispatches_webhooks(
    store_url: str, box: SecretBox, token: str, source_db: SourceDb, receiver: Receiver
) -> None:
    """With ``dispatch_webhooks`` (what `rosetta serve` passes), the app sends its outbox."""
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    settings = Settings(
        database_url=store_url, secret_key=TEST_KEY, log_file=None, source_connect_timeout=3
    )
    app = create_app(settings, store_url, box, dispatch_webhooks=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as served:
        dispatcher = app.state.dispatcher
        assert dispatcher is not None and dispatcher.thread.is_alive()
        created = served.post(
            "/api/v1/sources",
            params={"sync": "false"},
            json=source_body(source_db),
        ).json()["source"]
        served.post(f"/api/v1/sources/{created['id']}/webhooks", json={"url": receiver.url})
        assert served.post(f"/api/v1/sources/{created['id']}/refresh").status_code == 200
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e["event"] for e in receiver.events()] == ["table.added"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            [delivery] = served.get(f"/api/v1/sources/{created['id']}/webhooks/deliveries").json()
            if delivery["status"] == "delivered":
                break
            time.sleep(0.05)
        assert delivery["status"] == "delivered"
    assert app.state.dispatcher is None
    assert not dispatcher.thread.is_alive()


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_need_the_token(
    client: TestClient, token: str, add_source: Any, source_db: SourceDb
) -> None:
    _shop(source_db, add_source)
    del client.headers["Authorization"]
    for headers in ({}, {"Authorization": "Bearer rst_wrong"}, {"Authorization": f"Basic {token}"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "rosetta_tables" not in refused.text and "shop" not in refused.text

    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"] == metrics.CONTENT_TYPE
    assert "rosetta_tables" in scraped.text
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert values[("rosetta_tables", (("source", "shop"), ("status", "tracked")))] == 2
    assert values[("rosetta_source_up", (("source", "shop"),))] == 1
