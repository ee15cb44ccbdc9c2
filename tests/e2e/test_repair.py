"""`rosetta fix-schema-versions` on a store damaged by hand, as older versions left them."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli


def col(name: str, data_type: str = "BIGINT") -> dict[str, Any]:
    return {"column_name": name, "data_type": data_type}


def schema(*names: str) -> str:
    return json.dumps({n: col(n, "TEXT" if n != "id" else "BIGINT") for n in names})


def history_of(store: Any, table: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = store.execute(
        "SELECT h.version_schema, h.changes_type, h.schema_table_old, h.schema_table_new, h.id "
        "FROM history_schema_evolution h JOIN table_metadata_list t "
        "ON t.id = h.table_metadata_list_id WHERE t.table_name = %s "
        "ORDER BY h.version_schema, h.id",
        (table,),
    ).fetchall()
    store.rollback()
    return rows


def damage(store: Any, source_id: int) -> None:
    """The kinds of damage the document's cleanup script exists for."""
    store.execute(
        "ALTER TABLE history_schema_evolution DROP CONSTRAINT unique_table_version_schema"
    )

    def table(name: str, schema_table: str | None) -> int:
        row = store.execute(
            "INSERT INTO table_metadata_list (source_id, schema_name, table_name, schema_table) "
            "VALUES (%s, 'public', %s, %s) RETURNING id",
            (source_id, name, schema_table),
        ).fetchone()
        return int(row[0])

    def version(table_id: int, n: int, kind: str, old: str, new: str, minute: int) -> None:
        store.execute(
            "INSERT INTO history_schema_evolution (table_metadata_list_id, version_schema, "
            "changes_type, schema_table_old, schema_table_new, created_at) "
            "VALUES (%s, %s, %s, %s, %s, now() - make_interval(mins => %s))",
            (table_id, n, kind, old, new, 100 - minute),
        )

    # "version 9", every version empty, schema NULL
    orders = table("orders", None)
    for n in range(1, 10):
        version(orders, n, "CHANGES TYPE", "{}", "{}", n)
    # duplicates, a phantom version and a gap
    customers = table("customers", schema("id", "name", "email"))
    version(customers, 1, "INITIAL_LOAD", "{}", schema("id"), 1)
    version(customers, 2, "NEW COLUMN", schema("id"), schema("id", "name"), 2)
    version(customers, 2, "NEW COLUMN", schema("id"), schema("id", "name"), 3)
    version(customers, 3, "CHANGES TYPE", schema("id", "name"), schema("id", "name"), 4)
    version(customers, 5, "NEW COLUMN", schema("id", "name"), schema("id", "name", "email"), 5)
    # INITIAL_LOAD missing
    products = table("products", schema("id", "price"))
    version(products, 2, "NEW COLUMN", schema("id"), schema("id", "price"), 1)
    # INITIAL_LOAD not at v1
    carts = table("carts", schema("id"))
    version(carts, 1, "NEW COLUMN", "{}", schema("id"), 1)
    version(carts, 2, "INITIAL_LOAD", "{}", schema("id"), 2)
    # a schema of {} with sound history
    store.execute(
        "INSERT INTO table_metadata_list (source_id, schema_name, table_name, "
        "schema_table) VALUES (%s, 'public', 'empty_schema', '{}')",
        (source_id,),
    )
    store.commit()


def test_fix_schema_versions(cli: Cli, store: Any, source_db: Any, register: Any) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("CREATE TABLE empty_schema (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders, empty_schema")
    source = register()
    damage(store, source.id)
    before = {t: history_of(store, t) for t in ("orders", "customers", "products", "carts")}

    dry = cli("fix-schema-versions", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Would repair shop/orders: 9 rows -> 0 versions; dropped 9 empty" in dry.stdout
    assert "Would heal from source shop: " in dry.stdout
    assert "Would add the unique constraint" in dry.stdout
    assert {t: history_of(store, t) for t in before} == before

    fixed = cli("fix-schema-versions")
    assert fixed.returncode == 0, fixed.stderr
    assert (
        "Repaired shop/customers: 5 rows -> 3 versions; dropped 1 phantom (old = new), "
        "1 duplicate" in fixed.stdout
    )
    assert "Added the unique constraint" in fixed.stdout

    orders = history_of(store, "orders")
    assert [(v, k) for v, k, *_ in orders] == [(1, "INITIAL_LOAD")], fixed.stdout
    assert set(orders[0][3]) == {"id", "total"}
    customers = history_of(store, "customers")
    assert [(v, k) for v, k, *_ in customers] == [
        (1, "INITIAL_LOAD"),
        (2, "NEW COLUMN"),
        (3, "NEW COLUMN"),
    ]
    assert set(customers[2][2]) == {"id", "name"} and set(customers[2][3]) == {
        "id",
        "name",
        "email",
    }
    products = history_of(store, "products")
    assert [(v, k, set(new)) for v, k, _, new, _ in products] == [
        (1, "INITIAL_LOAD", {"id"}),
        (2, "NEW COLUMN", {"id", "price"}),
    ]
    assert [(v, k) for v, k, *_ in history_of(store, "carts")] == [(1, "INITIAL_LOAD")]
    assert [(v, k) for v, k, *_ in history_of(store, "empty_schema")] == [(1, "INITIAL_LOAD")]
    row = store.execute(
        "SELECT count(*) FROM pg_constraint WHERE conname = 'unique_table_version_schema'"
    ).fetchone()
    assert row[0] == 1
    store.rollback()

    after = {t: history_of(store, t) for t in before}
    again = cli("fix-schema-versions")
    assert again.returncode == 0
    assert "0 table(s) repaired" in again.stdout
    assert {t: history_of(store, t) for t in before} == after
