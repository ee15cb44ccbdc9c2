"""Changing a source's publication and replication slot through the API; each change is
synced at once, so the registry shows it in the same response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conftest import Recorder, SourceDb
from tests.integration.conftest import password_of

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _tables(api: TestClient, source_id: int) -> list[tuple[str, str]]:
    page = api.get(f"/api/v1/sources/{source_id}/tables").json()
    return [(t["name"], t["status"]) for t in page["items"]]


def test_publication_lifecycle(
    api: TestClient, add_source: Any, source_db: SourceDb, recorder: Recorder
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint)")
    source_db.sql("CREATE SCHEMA sales")
    source_db.sql("CREATE TABLE sales.shipments (id bigint PRIMARY KEY)")
    source = add_source()
    sid = source["id"]
    assert source["is_publication_enabled"] is False

    available = api.get(f"/api/v1/sources/{sid}/available-tables").json()
    assert [a["name"] for a in available] == ["customers", "orders", "sales.shipments"]

    created = api.post(
        f"/api/v1/sources/{sid}/publication",
        json={"tables": ["customers", {"schema": "public", "table": "orders"}]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["ok"] and "created publication rosetta_publication" in body["message"]
    assert sorted(body["sync"]["added"]) == ["customers", "orders"]
    assert body["sync"]["publication_exists"] is True
    assert api.get(f"/api/v1/sources/{sid}").json()["is_publication_enabled"] is True
    again = api.post(f"/api/v1/sources/{sid}/publication", json={"tables": []})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]

    available = api.get(f"/api/v1/sources/{sid}/available-tables").json()
    assert available == [
        {"schema_name": "sales", "table_name": "shipments", "name": "sales.shipments"}
    ]
    added = api.post(f"/api/v1/sources/{sid}/publication/tables", json={"table": "sales.shipments"})
    assert added.status_code == 201, added.text
    assert added.json()["sync"]["added"] == ["sales.shipments"]
    assert api.get(f"/api/v1/sources/{sid}/available-tables").json() == []

    missing = api.post(f"/api/v1/sources/{sid}/publication/tables", json={"table": "nope"})
    assert missing.status_code == 409 and "nope" in missing.json()["detail"]
    assert api.post(f"/api/v1/sources/{sid}/publication/tables", json={}).status_code == 422

    removed = api.delete(f"/api/v1/sources/{sid}/publication/tables/public/orders")
    assert removed.status_code == 200, removed.text
    assert removed.json()["sync"]["removed"] == ["orders"]
    assert ("orders", "removed") in _tables(api, sid)
    again_removed = api.delete(f"/api/v1/sources/{sid}/publication/tables/public/orders")
    assert again_removed.status_code == 409

    dropped = api.delete(f"/api/v1/sources/{sid}/publication")
    assert dropped.status_code == 200
    assert dropped.json()["sync"]["status"] == "publication_missing"
    assert api.get(f"/api/v1/sources/{sid}").json()["is_publication_enabled"] is False
    assert api.delete(f"/api/v1/sources/{sid}/publication").status_code == 409
    recorder.assert_absent(password_of(source_db))


def test_hostile_table_added_to_the_publication(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    source_db.sql(f'CREATE TABLE "{hostile}" (id int PRIMARY KEY)')
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    sid = add_source()["id"]
    assert api.get(f"/api/v1/sources/{sid}/available-tables").json()[0]["name"] == hostile
    added = api.post(f"/api/v1/sources/{sid}/publication/tables", json={"table": hostile})
    assert added.status_code == 201 and added.json()["sync"]["added"] == [hostile]
    assert _tables(api, sid) == [(hostile, "tracked")]


def test_create_and_drop_slot(api: TestClient, add_source: Any, source_db: SourceDb) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    no_slot = add_source(name="no-slot")
    response = api.post(f"/api/v1/sources/{no_slot['id']}/slot")
    assert response.status_code == 422 and "names no replication slot" in response.json()["detail"]

    source = add_source(replication_name="rosetta_slot")
    sid = source["id"]
    assert source["is_replication_enabled"] is False
    try:
        created = api.post(f"/api/v1/sources/{sid}/slot")
        assert created.status_code == 201, created.text
        assert created.json()["sync"]["slot_exists"] is True
        assert api.get(f"/api/v1/sources/{sid}").json()["is_replication_enabled"] is True
        tested = api.post(f"/api/v1/sources/{sid}/test-connection").json()
        assert tested["slot_exists"] is True and tested["replication_name"] == "rosetta_slot"
        assert api.post(f"/api/v1/sources/{sid}/slot").status_code == 409
    finally:
        dropped = api.delete(f"/api/v1/sources/{sid}/slot")
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["sync"]["slot_exists"] is False
    assert api.get(f"/api/v1/sources/{sid}").json()["is_replication_enabled"] is False
    assert api.delete(f"/api/v1/sources/{sid}/slot").status_code == 409
