"""What the pipeline carries, as the API and the table page show it: columns the stream does not
carry (generated, outside the column list) and why, the key flag, the row filter, and a table
whose columns were all dropped (no columns) or whose schema is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conftest import SourceDb
from tests.integration.web_helpers import HOSTILE, table_id

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _publish(source_db: SourceDb) -> None:
    source_db.sql(
        "CREATE TABLE t (id int PRIMARY KEY, a int, "
        "g int GENERATED ALWAYS AS (a * 2) STORED, secret text)"
    )
    source_db.sql("CREATE TABLE gone (id int, x int)")
    source_db.sql("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    source_db.sql(
        "CREATE PUBLICATION rosetta_publication FOR TABLE t (id, a) WHERE (a > 0), gone, "
        f"notes WHERE (body <> '{HOSTILE}')"
    )


def _drop_every_column(source_db: SourceDb) -> None:
    source_db.sql("ALTER TABLE gone DROP COLUMN id, DROP COLUMN x")


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item.get("name") or item["column_name"]: item for item in items}


def test_api_shows_carried_columns_the_key_flag_and_the_row_filter(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    _publish(source_db)
    source = add_source()
    tables = _by_name(api.get(f"/api/v1/sources/{source['id']}/tables").json()["items"])
    assert tables["t"]["row_filter"] == "(a > 0)"
    assert tables["t"]["schema_state"] == "recorded"
    assert tables["gone"]["row_filter"] is None
    assert tables["notes"]["row_filter"] == f"(body <> '{HOSTILE}'::text)"

    table = api.get(f"/api/v1/tables/{tables['t']['id']}").json()
    assert table["row_filter"] == "(a > 0)" and table["schema_state"] == "recorded"
    columns = _by_name(table["columns"])
    assert list(columns) == ["id", "a", "g", "secret"]
    assert columns["id"]["carried"] is True and columns["id"]["not_carried"] is None
    assert columns["id"]["in_replica_identity"] is True
    assert columns["id"]["type_oid"] == 23
    assert columns["a"]["carried"] is True and columns["a"]["in_replica_identity"] is False
    assert columns["g"]["carried"] is False and columns["g"]["not_carried"] == "generated"
    assert columns["g"]["generated"] == "STORED"
    assert columns["secret"]["carried"] is False
    assert columns["secret"]["not_carried"] == "column_list"

    version = api.get(f"/api/v1/tables/{tables['t']['id']}/versions/1").json()
    assert _by_name(version["columns"])["g"]["not_carried"] == "generated"


def test_api_says_no_columns_for_a_table_whose_columns_were_all_dropped(
    api: TestClient, add_source: Any, source_db: SourceDb, store: Any
) -> None:
    _publish(source_db)
    source = add_source()
    _drop_every_column(source_db)
    assert api.post(f"/api/v1/sources/{source['id']}/refresh").status_code == 200
    url = f"/api/v1/sources/{source['id']}/tables"
    gone = _by_name(api.get(url).json()["items"])["gone"]
    assert gone["schema_state"] == "no_columns" and gone["column_count"] == 0
    assert gone["version"] == 2
    table = api.get(f"/api/v1/tables/{gone['id']}").json()
    assert table["schema_state"] == "no_columns" and table["columns"] == []
    versions = api.get(f"/api/v1/tables/{gone['id']}/versions").json()
    assert [v["column_count"] for v in versions] == [2, 0]
    diff = api.get(f"/api/v1/tables/{gone['id']}/diff").json()
    assert {(c["type"], c["column"]) for c in diff["changes"]} == {
        ("DROP COLUMN", "id"),
        ("DROP COLUMN", "x"),
    }

    # A schema lost from the store (not dropped on the source) is missing: the next sync fills it.
    t_id = table_id(store, "t")
    store.execute("UPDATE table_metadata_list SET schema_table = '{}' WHERE id = %s", (t_id,))
    store.commit()
    assert api.get(f"/api/v1/tables/{t_id}").json()["schema_state"] == "missing"
    assert _by_name(api.get(url).json()["items"])["t"]["schema_state"] == "missing"
    assert api.post(f"/api/v1/sources/{source['id']}/refresh").status_code == 200
    assert api.get(f"/api/v1/tables/{t_id}").json()["schema_state"] == "recorded"
    assert _by_name(api.get(url).json()["items"])["gone"]["schema_state"] == "no_columns"


def test_api_marks_a_change_to_a_column_the_stream_does_not_carry(
    api: TestClient, add_source: Any, source_db: SourceDb
) -> None:
    _publish(source_db)
    source = add_source()
    source_db.sql("ALTER TABLE t ALTER COLUMN secret TYPE varchar(20)")
    source_db.sql("ALTER PUBLICATION rosetta_publication SET TABLE t (id) WHERE (id > 0), gone")
    assert api.post(f"/api/v1/sources/{source['id']}/refresh").status_code == 200
    tables = _by_name(api.get(f"/api/v1/sources/{source['id']}/tables").json()["items"])
    assert tables["t"]["row_filter"] == "(id > 0)"
    diff = api.get(f"/api/v1/tables/{tables['t']['id']}/diff").json()
    changes = {(c["type"], c["column"]): c for c in diff["changes"]}
    secret = changes[("CHANGES TYPE", "secret")]
    assert secret["carried"] is False and secret["breaking"] is False
    carried = changes[("CHANGES CARRIED", "a")]
    assert (carried["before"], carried["after"], carried["breaking"]) == (True, False, True)
    assert carried["carried"] is True


def test_table_page_shows_what_the_stream_carries(
    web: TestClient, register: Any, sync: Any, source_db: SourceDb, store: Any
) -> None:
    _publish(source_db)
    source = register()
    sync(source)

    page = web.get(f"/tables/{table_id(store, 't')}")
    assert page.status_code == 200
    assert "Row filter" in page.text and "WHERE (a &gt; 0)" in page.text
    assert "not carried: generated" in page.text
    assert "not carried: not in the column list" in page.text
    assert 'data-not-carried="generated"' in page.text
    assert 'data-not-carried="column_list"' in page.text
    assert "replica key" in page.text
    assert "GENERATED ALWAYS AS ((a * 2)) STORED" in page.text

    listing = web.get(f"/sources/{source.id}")
    assert "WHERE <code>(a &gt; 0)</code>" in listing.text and HOSTILE not in listing.text

    notes = web.get(f"/tables/{table_id(store, 'notes')}")
    assert HOSTILE not in notes.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in notes.text

    _drop_every_column(source_db)
    sync(source)
    gone = web.get(f"/tables/{table_id(store, 'gone')}")
    assert gone.status_code == 200
    assert "No columns: all were dropped in" in gone.text
    assert '<span class="vtag">v2</span>' in gone.text
    assert "Schema missing" not in gone.text
    assert ">no columns</span>" in web.get(f"/sources/{source.id}").text
    assert gone.text.count("chip chip-drop") >= 2  # the dropped columns, struck through
    first = web.get(f"/tables/{table_id(store, 'gone')}?v=1")
    assert "No columns" not in first.text and "x" in first.text

    t_id = table_id(store, "t")
    store.execute("UPDATE table_metadata_list SET schema_table = '{}' WHERE id = %s", (t_id,))
    store.commit()
    missing = web.get(f"/tables/{t_id}")
    assert "Schema missing — it is filled at the next sync" in missing.text
    assert "No columns" not in missing.text


def test_table_page_renders_the_new_change_kinds(
    web: TestClient, register: Any, sync: Any, source_db: SourceDb, store: Any
) -> None:
    _publish(source_db)
    source = register()
    sync(source)
    source_db.sql("ALTER PUBLICATION rosetta_publication SET TABLE t (id) WHERE (a > 0), gone")
    source_db.sql("ALTER TABLE t ALTER COLUMN secret TYPE varchar(20)")
    sync(source)
    page = web.get(f"/tables/{table_id(store, 't')}")
    assert 'data-change="CHANGES CARRIED"' in page.text
    assert ">carried</span>" in page.text and ">not carried</code>" in page.text
    assert "breaking" in page.text
    assert 'data-change="CHANGES TYPE"' in page.text
    assert "the change never reaches the pipeline" in page.text
