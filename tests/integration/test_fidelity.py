"""What Rosetta records is what the replication stream carries, on every supported PostgreSQL:
generated and listed-out columns, tables without columns, renamed types and row filters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rosetta import sources, webhooks
from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer
from rosetta.pg.versions import SUPPORTED_MAJORS
from rosetta.store import db
from rosetta.summary import ChangedTable
from rosetta.sync import sync_source
from tests.conftest import requires_pg
from tests.integration.test_sync import PUB, history, select, tracked

pytestmark = pytest.mark.pg_matrix


def carried(schema: dict[str, Any]) -> dict[str, tuple[bool, str | None]]:
    """Each column's (carried, why not), by name, in order."""
    ordered = sorted(schema.values(), key=lambda c: c["attnum"])
    return {c["column_name"]: (c["carried"], c["not_carried"]) for c in ordered}


def events(store: Any, kind: str) -> list[dict[str, Any]]:
    rows = select(
        store, "SELECT payload FROM webhook_events WHERE event_type = %s ORDER BY id", (kind,)
    )
    return [r["payload"] for r in rows]


def subscribe(store: Any, box: SecretBox, source: Any) -> None:
    """A webhook endpoint taking every event (nothing listens: only the outbox is read)."""
    webhooks.add_endpoint(store, box, source.id, "http://127.0.0.1:9/hook", None, None)
    store.commit()


# --- generated columns ----------------------------------------------------------------------


def test_a_generated_column_is_recorded_but_not_carried(
    source_db: Any, store: Any, box: SecretBox, register: Any, sync: Any
) -> None:
    """pgoutput never sends a stored generated column (unless PostgreSQL 18 is told to): it is
    recorded, marked not carried, and adding one is a safe version that breaks nothing."""
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, a int)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    subscribe(store, box, source)
    sync(source)
    source_db.sql("ALTER TABLE orders ADD COLUMN ts bigint GENERATED ALWAYS AS (a * 2) STORED")
    assert sync(source).changed == [ChangedTable("orders", 2, "NEW COLUMN")]
    schema = tracked(store, "orders")["schema_table"]
    assert carried(schema) == {"id": (True, None), "a": (True, None), "ts": (False, "generated")}
    assert schema["ts"]["generated"] == "STORED"
    [change] = history(store, "orders")[-1]["changes"]
    assert change["carried"] is False
    [event] = events(store, "schema.changed")
    assert event["severity"] == "safe"
    # Nothing moves on the next sync, on any version.
    assert sync(source).unchanged == 1


def test_publish_generated_columns_is_a_version_without_ddl(
    source_db: Any, store: Any, register: Any, sync: Any
) -> None:
    requires_pg(source_db, 18, "publish_generated_columns")
    source_db.sql(
        "CREATE TABLE orders (id bigint PRIMARY KEY, a int,"
        " s int GENERATED ALWAYS AS (a + 1) STORED, v int GENERATED ALWAYS AS (a + 2) VIRTUAL)"
    )
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    assert carried(tracked(store, "orders")["schema_table"]) == {
        "id": (True, None),
        "a": (True, None),
        "s": (False, "generated"),
        "v": (False, "virtual"),
    }
    source_db.sql(f"ALTER PUBLICATION {PUB} SET (publish_generated_columns = stored)")
    assert sync(source).changed == [ChangedTable("orders", 2, "CHANGES CARRIED")]
    [change] = history(store, "orders")[-1]["changes"]
    assert (change["column"], change["before"], change["after"]) == ("s", False, True)
    # A virtual column is never published.
    assert carried(tracked(store, "orders")["schema_table"])["v"] == (False, "virtual")


def test_narrowing_a_column_list_is_a_breaking_version(
    source_db: Any, store: Any, box: SecretBox, register: Any, sync: Any
) -> None:
    requires_pg(source_db, 15, "a publication's column list")
    source_db.sql("CREATE TABLE people (id bigint PRIMARY KEY, email text, phone text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE people")
    source = register()
    subscribe(store, box, source)
    sync(source)
    source_db.sql(f"ALTER PUBLICATION {PUB} SET TABLE people (id, email)")
    assert sync(source).changed == [ChangedTable("people", 2, "CHANGES CARRIED")]
    assert carried(tracked(store, "people")["schema_table"])["phone"] == (False, "column_list")
    [event] = events(store, "schema.changed")
    assert event["severity"] == "breaking"


def test_the_same_table_is_recorded_alike_on_every_version(
    pg_of: Callable[[int], PostgresServer], store_url: str, box: SecretBox
) -> None:
    """A source upgraded from one major to the next gets no version from the upgrade alone: the
    same DDL gives the same stored schema on 14 to 18 (type OIDs of the source's own types
    aside, which a dump and restore changes anyway)."""
    ddl = [
        "CREATE TYPE mood AS ENUM ('ok', 'meh')",
        "CREATE DOMAIN positive AS int CHECK (VALUE > 0)",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        ' "Qty" numeric(8,3) NOT NULL DEFAULT 0, m mood, p positive, tags text[],'
        " code varchar(12), total bigint GENERATED ALWAYS AS (id * 2) STORED)",
        "CREATE TABLE only_generated (g int GENERATED ALWAYS AS (1) STORED)",
        "CREATE TABLE keyed (a int NOT NULL, b text)",
        "CREATE UNIQUE INDEX keyed_a ON keyed (a)",
        "ALTER TABLE keyed REPLICA IDENTITY USING INDEX keyed_a",
        f"CREATE PUBLICATION {PUB} FOR ALL TABLES",
    ]
    recorded: dict[int, dict[str, Any]] = {}
    for major in SUPPORTED_MAJORS:
        server = pg_of(major)
        name = f"same_{major}_{id(recorded)}"
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            with psycopg.connect(server.url(name), autocommit=True) as conn:
                for statement in ddl:
                    conn.execute(statement.encode())
            with db.connect(store_url) as store:
                source = sources.add_source(
                    store,
                    box,
                    sources.SourceInput(
                        f"v{major}", sources.parse_dsn(server.url(name)), PUB, None
                    ),
                )
                store.commit()
                summary = sync_source(store, source, box)
                assert sorted(summary.added) == ["keyed", "only_generated", "orders"]
                rows = store.execute(
                    "SELECT table_name, schema_table FROM table_metadata_list WHERE source_id = %s",
                    (source.id,),
                ).fetchall()
                recorded[major] = {
                    table: {
                        column: {k: v for k, v in facts.items() if k != "type_oid"}
                        for column, facts in schema.items()
                    }
                    for table, schema in rows
                }
        finally:
            with psycopg.connect(server.url(), autocommit=True) as admin:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    first = recorded[SUPPORTED_MAJORS[0]]
    for major in SUPPORTED_MAJORS[1:]:
        assert recorded[major] == first, f"PostgreSQL {major} records another schema"
    assert carried(first["only_generated"]) == {"g": (False, "generated")}
    assert [c for c, f in first["keyed"].items() if f["in_replica_identity"]] == ["a"]


# --- tables without columns -----------------------------------------------------------------


def test_a_table_that_loses_its_last_column_shows_none(
    source_db: Any, store: Any, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    source_db.sql("CREATE TABLE t (id int, note text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    sync(source)
    source_db.sql("ALTER TABLE t DROP COLUMN id, DROP COLUMN note")
    assert sync(source).changed == [ChangedTable("t", 2, "DROP COLUMN")]
    row = tracked(store, "t")
    assert row["status"] == "tracked" and row["schema_table"] == {}
    assert history(store, "t")[-1]["schema_table_new"] == {}
    # Not a missing schema: nothing to heal, nothing written on the next syncs.
    again = sync(source)
    assert again.healed == [] and again.changed == [] and again.skipped == []
    assert "Fixed table" not in caplog_rosetta.text
    # A column added back is a new column, not a heal.
    source_db.sql("ALTER TABLE t ADD COLUMN id bigint")
    back = sync(source)
    assert back.changed == [ChangedTable("t", 3, "NEW COLUMN")] and back.healed == []
    assert list(tracked(store, "t")["schema_table"]) == ["id"]


# --- renamed types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rename",
    ["ALTER SCHEMA types RENAME TO t2", "ALTER TYPE types.mood RENAME TO feeling"],
    ids=["schema", "type"],
)
def test_a_renamed_type_is_found_by_the_next_sync_and_is_safe(
    source_db: Any, store: Any, box: SecretBox, register: Any, sync: Any, rename: str
) -> None:
    source_db.sql("CREATE SCHEMA types")
    source_db.sql("CREATE TYPE types.mood AS ENUM ('ok', 'meh')")
    source_db.sql("CREATE TABLE people (id bigint PRIMARY KEY, mood types.mood, old types.mood[])")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR ALL TABLES")
    source = register()
    subscribe(store, box, source)
    sync(source)
    source_db.sql(rename)
    summary = sync(source)  # an ordinary sync, not a full compare
    assert summary.changed == [ChangedTable("people", 2, "RENAME TYPE")]
    changes = history(store, "people")[-1]["changes"]
    assert [c["type"] for c in changes] == ["RENAME TYPE", "RENAME TYPE"]
    assert changes[0]["before"] == "types.mood"
    assert changes[0]["after"] in ("t2.mood", "types.feeling")
    assert changes[1]["after"] == changes[0]["after"] + "[]"
    [event] = events(store, "schema.changed")
    assert event["severity"] == "safe"


# --- row filters ----------------------------------------------------------------------------


def test_a_row_filter_is_recorded_and_its_change_reported(
    source_db: Any, store: Any, box: SecretBox, register: Any, sync: Any, caplog_rosetta: Any
) -> None:
    requires_pg(source_db, 15, "a publication's row filter")
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, region text)")
    source_db.sql(f"CREATE PUBLICATION {PUB} FOR TABLE orders WHERE (region = 'eu')")
    source = register()
    subscribe(store, box, source)
    sync(source)
    assert tracked(store, "orders")["row_filter"] == "(region = 'eu'::text)"

    source_db.sql(f"ALTER PUBLICATION {PUB} SET TABLE orders WHERE (region = 'us')")
    summary = sync(source)
    assert summary.row_filters_changed == ["orders"] and summary.changed == []
    assert tracked(store, "orders")["row_filter"] == "(region = 'us'::text)"
    assert len(history(store, "orders")) == 1  # not a column change: no version
    assert (
        "Row filter of table orders changed: (region = 'eu'::text) -> (region = 'us'::text)"
        in caplog_rosetta.text
    )
    [event] = events(store, "table.row_filter_changed")
    assert event["row_filter"] == {
        "before": "(region = 'eu'::text)",
        "after": "(region = 'us'::text)",
    }
    assert event["severity"] == "breaking"

    source_db.sql(f"ALTER PUBLICATION {PUB} SET TABLE orders")
    assert sync(source).row_filters_changed == ["orders"]
    assert tracked(store, "orders")["row_filter"] is None
    assert events(store, "table.row_filter_changed")[-1]["severity"] == "safe"
    assert sync(source).unchanged == 1
