from __future__ import annotations

from typing import Any


def test_quick_test_of_the_document(source_db: Any, store: Any, register: Any, sync: Any,
                                    caplog_rosetta: Any) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = register()
    source_db.sql(
        "CREATE TABLE test_table (id bigint PRIMARY KEY, name varchar(10), price numeric(10,2),"
        " tags integer[], created_at timestamptz DEFAULT now())"
    )
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLE test_table")
    summary = sync(source)
    assert summary.added == ["test_table"]
    assert "Added new table tracking with schema: test_table (5 columns)" in caplog_rosetta.text
    rows = store.execute("""
SELECT 
    t.table_name,
    t.schema_table IS NOT NULL as has_schema,
    h.version_schema,
    h.changes_type
FROM table_metadata_list t
LEFT JOIN history_schema_evolution h ON h.table_metadata_list_id = t.id
WHERE t.table_name = 'test_table';
""").fetchall()
    assert rows == [("test_table", True, 1, "INITIAL_LOAD")]
    again = sync(source)
    assert again.unchanged == 1 and not again.wrote_anything
    source_db.sql("ALTER TABLE test_table ALTER COLUMN name TYPE varchar(200)")
    changed = sync(source)
    assert [(c.version, c.changes_type) for c in changed.changed] == [(2, "CHANGES TYPE")]
