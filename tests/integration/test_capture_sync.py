"""Syncs of a captured source on real PostgreSQL: versions with the DDL's provenance, renames
keeping their history, exactly the versions a committed transaction needs, and polling when the
capture breaks."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from rosetta import services
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.store import repository
from rosetta.summary import SyncSummary
from rosetta.sync import sync_source
from tests.conftest import SourceDb

PUB = "rosetta_publication"
HOSTILE = "we\"ird name\nwith 'quotes' and_a_very_long_tail_xxxxxxxxxxxxxxxxxxxxxxxx"[:63]


def rows(store: Any, query: str, params: Any = None) -> list[dict[str, Any]]:
    with store.cursor(row_factory=dict_row) as cur:
        cur.execute(query.encode(), params)
        out = cur.fetchall() if cur.description else []
    store.commit()
    return out


def versions(store: Any, table: str, schema: str = "public") -> list[dict[str, Any]]:
    return rows(
        store,
        "SELECT h.* FROM history_schema_evolution h JOIN table_metadata_list t "
        "ON t.id = h.table_metadata_list_id WHERE t.schema_name = %s AND t.table_name = %s "
        "ORDER BY h.version_schema",
        (schema, table),
    )


@pytest.fixture
def captured(store: Any, box: SecretBox, source_db: SourceDb, register: Any, sync: Any) -> Any:
    """A source with two published tables, synced, then with capture installed."""
    source_db.conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, total numeric);"
        "CREATE TABLE items (id int PRIMARY KEY, sku text);"
        f"CREATE PUBLICATION {PUB} FOR TABLE orders, items"
    )
    source = register()
    sync(source)
    services.install_capture(store, box, SourceLimits(), source)
    store.commit()
    return repository.source_by_id(store, source.id)


def woken(store: Any, box: SecretBox, source: Any) -> SyncSummary:
    """The sync the listener runs when a notification arrives."""
    fresh = repository.source_by_id(store, source.id)
    store.rollback()
    return sync_source(store, fresh, box, woken=True)


def ddl(source_db: SourceDb, statement: str, application: str = "psql") -> None:
    with psycopg.connect(source_db.url, autocommit=True, application_name=application) as conn:
        conn.execute(statement.encode())


def test_a_captured_change_records_who_made_it_the_statement_and_the_lsn(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    owner = f"app_owner_{source_db.name}"  # roles are the whole server's
    source_db.conn.execute(
        sql.SQL(
            "CREATE ROLE {0}; GRANT ALL ON SCHEMA public TO {0}; ALTER TABLE orders OWNER TO {0}"
        ).format(sql.Identifier(owner))
    )
    woken(store, box, captured)  # ALTER TABLE ... OWNER TO: an event, no version
    statement = f"SET ROLE {owner}; ALTER TABLE orders ADD COLUMN note text"
    ddl(source_db, statement, application="migrations")
    summary = woken(store, box, captured)
    assert summary.captured_events == 1
    latest = versions(store, "orders")[-1]
    assert (latest["version_schema"], latest["changes_type"]) == (2, "NEW COLUMN")
    assert latest["detected_by"] == "capture"
    [event] = latest["provenance"]["events"]
    assert event["statement"] == statement
    assert event["command_tag"] == "ALTER TABLE"
    assert event["current_user"] == owner
    assert event["session_user"] == source_db.conn.info.user
    assert event["application_name"] == "migrations"
    assert event["backend_pid"] > 0 and int(event["xid"]) > 0
    assert str(latest["lsn"]) == event["lsn"]
    assert latest["changed_at"] is not None
    # Read once: the next sync finds nothing new.
    assert woken(store, box, captured).captured_events == 0
    assert len(versions(store, "orders")) == 2


def test_a_sync_woken_by_ddl_reads_only_the_tables_its_events_name(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    for i in range(20):
        source_db.conn.execute(
            f"CREATE TABLE t{i} (id int); ALTER PUBLICATION {PUB} ADD TABLE t{i}"
        )
    assert woken(store, box, captured).added == [f"t{i}" for i in sorted(range(20), key=str)]
    ddl(source_db, "ALTER TABLE t7 ADD COLUMN c int")
    summary = woken(store, box, captured)
    assert [c.table for c in summary.changed] == ["t7"]
    # The 21 other tables were never compared, not even by fingerprint.
    assert summary.unchanged == 0
    # DDL on a table outside the publication costs nothing to the sync.
    source_db.conn.execute("CREATE TABLE outside (id int)")
    ddl(source_db, "ALTER TABLE outside ADD COLUMN c int")
    quiet = woken(store, box, captured)
    assert (quiet.changed, quiet.added, quiet.unchanged) == ([], [], 0)


def test_a_rolled_back_ddl_leaves_no_version_and_no_event(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    with psycopg.connect(source_db.url) as conn:
        conn.execute("ALTER TABLE orders ADD COLUMN gone int")
        conn.rollback()
    assert woken(store, box, captured).captured_events == 0
    assert [v["version_schema"] for v in versions(store, "orders")] == [1]


def test_one_transaction_changing_two_tables_gives_each_one_version(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    with psycopg.connect(source_db.url) as conn:
        conn.execute("ALTER TABLE orders ADD COLUMN a int")
        conn.execute("ALTER TABLE orders ADD COLUMN b int")
        conn.execute("ALTER TABLE items DROP COLUMN sku")
    woken(store, box, captured)
    orders, items = versions(store, "orders"), versions(store, "items")
    assert [(v["version_schema"], v["changes_type"]) for v in orders] == [
        (1, "INITIAL_LOAD"),
        (2, "NEW COLUMN"),
    ]
    assert len(orders[-1]["provenance"]["events"]) == 2
    assert [(v["version_schema"], v["changes_type"]) for v in items][-1] == (2, "DROP COLUMN")
    # One transaction: one xid for all three statements.
    xids = {e["xid"] for v in (orders[-1], items[-1]) for e in v["provenance"]["events"]}
    assert len(xids) == 1


def test_a_table_created_and_published_in_one_transaction_is_added_once(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    with psycopg.connect(source_db.url) as conn:
        conn.execute("CREATE TABLE shipments (id int PRIMARY KEY)")
        conn.execute(f"ALTER PUBLICATION {PUB} ADD TABLE shipments")
        conn.execute("ALTER TABLE shipments ADD COLUMN carrier text")
    summary = woken(store, box, captured)
    assert summary.added == ["shipments"]
    [v1] = versions(store, "shipments")
    assert v1["changes_type"] == "INITIAL_LOAD" and "carrier" in v1["schema_table_new"]
    assert v1["detected_by"] == "capture"


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE orders RENAME TO purchases",
        "CREATE SCHEMA sales; ALTER TABLE orders SET SCHEMA sales",
    ],
)
@pytest.mark.parametrize("how", ["capture", "polling"])
def test_a_renamed_table_keeps_its_row_and_history(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    captured: Any,
    sync: Any,
    statement: str,
    how: str,
) -> None:
    before = rows(store, "SELECT id FROM table_metadata_list WHERE table_name = 'orders'")
    if how == "polling":
        services.uninstall_capture(store, box, SourceLimits(), captured)
        store.commit()
    ddl(source_db, statement)
    if how == "capture":
        woken(store, box, captured)
    else:
        sync(captured)
    schema, name = ("sales", "orders") if "SET SCHEMA" in statement else ("public", "purchases")
    after = rows(
        store,
        "SELECT id, status FROM table_metadata_list WHERE schema_name = %s AND table_name = %s",
        (schema, name),
    )
    assert after == [{"id": before[0]["id"], "status": "tracked"}]
    history = versions(store, name, schema)
    assert [(v["version_schema"], v["changes_type"]) for v in history] == [
        (1, "INITIAL_LOAD"),
        (2, "RENAME TABLE"),
    ]
    assert history[1]["changes"] == [
        {
            "type": "RENAME TABLE",
            "column": "",
            "before": "public.orders",
            "after": f"{schema}.{name}",
        }
    ]
    assert history[1]["detected_by"] == how
    assert rows(
        store, "SELECT count(*) AS n FROM table_metadata_list WHERE status = 'removed'"
    ) == [{"n": 0}]


def test_a_table_dropped_and_created_again_continues_its_row(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    ddl(
        source_db,
        "DROP TABLE items; CREATE TABLE items (id int PRIMARY KEY, sku text, n int);"
        f"ALTER PUBLICATION {PUB} ADD TABLE items",
    )
    woken(store, box, captured)
    history = versions(store, "items")
    assert [(v["version_schema"], v["changes_type"]) for v in history] == [
        (1, "INITIAL_LOAD"),
        (2, "NEW COLUMN"),
    ]


def test_hostile_names_through_capture(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    name = sql.Identifier(HOSTILE)
    source_db.conn.execute(
        sql.SQL("CREATE TABLE {} (id int PRIMARY KEY); ALTER PUBLICATION {} ADD TABLE {}").format(
            name, sql.Identifier(PUB), name
        )
    )
    assert woken(store, box, captured).added == [HOSTILE]
    ddl(
        source_db,
        sql.SQL("ALTER TABLE {} RENAME TO {}")
        .format(name, sql.Identifier(HOSTILE[:-1] + "2"))
        .as_string(source_db.conn),
    )
    woken(store, box, captured)
    history = versions(store, HOSTILE[:-1] + "2")
    assert history[-1]["changes_type"] == "RENAME TABLE"
    assert history[-1]["provenance"]["events"][0]["command_tag"] == "ALTER TABLE"


def test_a_broken_capture_falls_back_to_polling_and_says_so(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    captured: Any,
    caplog_rosetta: pytest.LogCaptureFixture,
) -> None:
    source_db.conn.execute("DROP SCHEMA rosetta_capture CASCADE")
    ddl(source_db, "ALTER TABLE orders ADD COLUMN late int")
    summary = woken(store, box, captured)
    assert [c.table for c in summary.changed] == ["orders"]
    assert versions(store, "orders")[-1]["detected_by"] == "polling"
    [state] = rows(store, "SELECT capture_error FROM sources WHERE id = %s", (captured.id,))
    assert "events table is missing" in state["capture_error"]
    assert "rosetta capture install" in caplog_rosetta.text
    # Installing again heals it.
    services.install_capture(store, box, SourceLimits(), captured)
    store.commit()
    ddl(source_db, "ALTER TABLE orders DROP COLUMN late")
    woken(store, box, captured)
    assert versions(store, "orders")[-1]["detected_by"] == "capture"
    [state] = rows(store, "SELECT capture_error FROM sources WHERE id = %s", (captured.id,))
    assert state["capture_error"] is None


def test_a_polling_sync_of_a_captured_source_keeps_the_provenance(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any, sync: Any
) -> None:
    ddl(source_db, "ALTER TABLE items ADD COLUMN qty int")
    sync(captured)
    latest = versions(store, "items")[-1]
    assert latest["detected_by"] == "capture"
    assert latest["provenance"]["events"][0]["statement"] == "ALTER TABLE items ADD COLUMN qty int"


def test_one_statement_dropping_two_tables_removes_both(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    ddl(source_db, "DROP TABLE orders, items")
    summary = woken(store, box, captured)
    assert sorted(summary.removed) == ["items", "orders"]
    assert [v["version_schema"] for v in versions(store, "orders")] == [1]


def test_disabled_triggers_fall_back_to_polling(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    source_db.conn.execute("ALTER EVENT TRIGGER rosetta_capture_ddl DISABLE")
    ddl(source_db, "ALTER TABLE items ADD COLUMN unseen int")
    woken(store, box, captured)
    assert versions(store, "items")[-1]["detected_by"] == "polling"
    [state] = rows(store, "SELECT capture_error FROM sources WHERE id = %s", (captured.id,))
    assert "event triggers are missing or disabled" in state["capture_error"]


def test_a_polling_sync_prunes_events_past_the_retention(
    store: Any, box: SecretBox, source_db: SourceDb, captured: Any
) -> None:
    ddl(source_db, "ALTER TABLE items ADD COLUMN old int")
    ddl(source_db, "ALTER TABLE items ADD COLUMN recent int")
    source_db.conn.execute(
        "UPDATE rosetta_capture.ddl_events SET event_time = now() - interval '40 days' "
        "WHERE statement LIKE '%old int'"
    )
    fresh = repository.source_by_id(store, captured.id)
    store.rollback()
    sync_source(store, fresh, box, limits=SourceLimits(capture_retention_days=30))
    left = source_db.conn.execute("SELECT statement FROM rosetta_capture.ddl_events").fetchall()
    assert left == [("ALTER TABLE items ADD COLUMN recent int",)]
