"""The API's read side: pages of tables, a table's schema, its versions and diffs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conftest import SourceDb

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _setup(source_db: SourceDb, count: int = 5) -> None:
    for i in range(count):
        source_db.sql(f"CREATE TABLE item_{i} (id bigint PRIMARY KEY, v{i} text)")
    source_db.sql("CREATE SCHEMA sales")
    source_db.sql("CREATE TABLE sales.orders (id bigint PRIMARY KEY, total numeric(12,2))")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR ALL TABLES")


def test_tables_page_filter_and_pagination(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    _setup(source_db)
    source = add_source()
    url = f"/api/v1/sources/{source['id']}/tables"

    page = api.get(url).json()
    assert page["total"] == 6 and page["limit"] == 50 and page["offset"] == 0
    names = [t["name"] for t in page["items"]]
    assert names == ["item_0", "item_1", "item_2", "item_3", "item_4", "sales.orders"]
    first = page["items"][0]
    assert first["schema_name"] == "public" and first["table_name"] == "item_0"
    assert first["version"] == 1 and first["column_count"] == 2
    assert first["status"] == "tracked" and first["badge"] == "tracked"
    assert first["last_change_type"] == "INITIAL_LOAD" and first["last_change_at"]

    second = api.get(url, params={"limit": 2, "offset": 2}).json()
    assert [t["name"] for t in second["items"]] == ["item_2", "item_3"]
    assert second["total"] == 6

    assert [t["name"] for t in api.get(url, params={"name": "ORDERS"}).json()["items"]] == [
        "sales.orders"
    ]
    assert api.get(url, params={"name": "sales."}).json()["total"] == 1
    assert api.get(url, params={"name": "nothing"}).json() == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }

    source_db.sql("ALTER PUBLICATION rosetta_publication RENAME TO old_publication")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE item_0, item_1")
    refreshed = api.post(f"/api/v1/sources/{source['id']}/refresh").json()
    assert sorted(refreshed["removed"]) == ["item_2", "item_3", "item_4", "sales.orders"]
    removed = api.get(url, params={"status": "removed"}).json()
    assert removed["total"] == 4 and {t["badge"] for t in removed["items"]} == {"removed"}
    assert api.get(url, params={"status": "tracked"}).json()["total"] == 2

    for params, text in (
        ({"status": "bogus"}, "invalid status"),
        ({"limit": 0}, "invalid page"),
        ({"limit": 1001}, "invalid page"),
        ({"offset": -1}, "invalid page"),
        ({"limit": "x"}, "limit"),
    ):
        response = api.get(url, params=params)
        assert response.status_code == 422, (params, response.text)
        assert text in response.json()["detail"]


def test_table_versions_and_diff_after_alter_table(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    source_db.sql(
        "CREATE TABLE customers (id bigint PRIMARY KEY, name varchar(10) NOT NULL, "
        "email text, created_at timestamptz DEFAULT now())"
    )
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    source = add_source()
    table_id = api.get(f"/api/v1/sources/{source['id']}/tables").json()["items"][0]["id"]

    table = api.get(f"/api/v1/tables/{table_id}").json()
    assert table["name"] == "customers" and table["version"] == 1
    assert table["source_id"] == source["id"]
    assert [c["column_name"] for c in table["columns"]] == ["id", "name", "email", "created_at"]
    assert [c["ordinal_position"] for c in table["columns"]] == [1, 2, 3, 4]
    assert table["columns"][0]["is_primary_key"] is True
    assert table["columns"][1]["full_type"] == "character varying(10)"
    assert table["columns"][3]["column_default"] == "now()"

    source_db.sql("ALTER TABLE customers ALTER COLUMN name TYPE varchar(200)")
    source_db.sql("ALTER TABLE customers ADD COLUMN country char(2)")
    refreshed = api.post(f"/api/v1/sources/{source['id']}/refresh").json()
    assert refreshed["changed"] == [
        {"table": "customers", "version": 2, "changes_type": "MULTIPLE CHANGES"}
    ]

    versions = api.get(f"/api/v1/tables/{table_id}/versions").json()
    assert [(v["version"], v["changes_type"]) for v in versions] == [
        (1, "INITIAL_LOAD"),
        (2, "MULTIPLE CHANGES"),
    ]
    assert versions[1]["column_count"] == 5 and versions[1]["change_count"] == 2

    v1 = api.get(f"/api/v1/tables/{table_id}/versions/1").json()
    assert v1["version"] == 1 and len(v1["columns"]) == 4
    assert v1["columns"][1]["full_type"] == "character varying(10)"
    v2 = api.get(f"/api/v1/tables/{table_id}/versions/2").json()
    assert {(c["type"], c["column"]) for c in v2["changes"]} == {
        ("CHANGES TYPE", "name"),
        ("NEW COLUMN", "country"),
    }
    assert [c["column_name"] for c in v2["columns"]][-1] == "country"

    for n in (0, 3, -1, 10**12):
        response = api.get(f"/api/v1/tables/{table_id}/versions/{n}")
        assert response.status_code == 404, (n, response.text)
        assert "has no version" in response.json()["detail"]

    diff = api.get(f"/api/v1/tables/{table_id}/diff", params={"from": 1, "to": 2}).json()
    assert diff["from"] == 1 and diff["to"] == 2 and diff["table_id"] == table_id
    by_column = {c["column"]: c for c in diff["changes"]}
    assert by_column["name"]["type"] == "CHANGES TYPE"
    assert by_column["name"]["before"] == "character varying(10)"
    assert by_column["name"]["after"] == "character varying(200)"
    assert by_column["country"]["type"] == "NEW COLUMN"
    assert by_column["country"]["breaking"] is False
    assert api.get(f"/api/v1/tables/{table_id}/diff").json()["changes"] == diff["changes"]

    from_nothing = api.get(f"/api/v1/tables/{table_id}/diff", params={"from": 0, "to": 1})
    assert [c["type"] for c in from_nothing.json()["changes"]] == ["NEW COLUMN"] * 4
    backwards = api.get(f"/api/v1/tables/{table_id}/diff", params={"from": 2, "to": 1}).json()
    assert {c["column"] for c in backwards["changes"]} == {"name", "country"}

    assert api.get(f"/api/v1/tables/{table_id}/diff", params={"to": 9}).status_code == 404
    bad = api.get(f"/api/v1/tables/{table_id}/diff", params={"from": -1, "to": 1})
    assert bad.status_code == 422


def test_hostile_table_name_round_trips_as_plain_json(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    source_db.sql(f'CREATE TABLE "{hostile}" ("<b>col</b>" int PRIMARY KEY)')
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR ALL TABLES")
    source = add_source()
    page = api.get(f"/api/v1/sources/{source['id']}/tables")
    assert page.headers["content-type"] == "application/json"
    item = page.json()["items"][0]
    assert item["table_name"] == hostile and item["name"] == hostile
    table = api.get(f"/api/v1/tables/{item['id']}").json()
    assert table["columns"][0]["column_name"] == "<b>col</b>"
    found = api.get(f"/api/v1/sources/{source['id']}/tables", params={"name": "onerror"})
    assert found.json()["total"] == 1
