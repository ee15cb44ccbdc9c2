"""Webhooks carry how each version was found: a change captured from the source's DDL names its
statement, who ran it and its LSN; a change found by polling says so, with the LSN read then.
Real syncs of a real source, with capture installed by its own event triggers, delivered to a
local endpoint."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from rosetta import services, webhooks
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from tests.conftest import Receiver, SourceDb


@pytest.fixture
def shop(store: Any, box: SecretBox, source_db: SourceDb, register: Any) -> Any:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return register()


def ddl(source_db: SourceDb, statement: str, application: str) -> None:
    with psycopg.connect(source_db.url, autocommit=True, application_name=application) as conn:
        conn.execute(statement.encode())  # the test's own DDL


def test_a_captured_change_is_sent_with_its_statement_and_lsn(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    shop: Any,
    sync: Any,
    receiver: Receiver,
) -> None:
    webhooks.add_endpoint(store, box, shop.id, receiver.url, None, ["schema.changed"])
    store.commit()
    sync(shop)
    # Polling first: the catalog compared, the LSN read at detection, no statement.
    source_db.sql("ALTER TABLE orders ADD COLUMN region text")
    sync(shop)
    services.install_capture(store, box, SourceLimits(), shop)
    store.commit()
    statement = "ALTER TABLE orders ALTER COLUMN note SET NOT NULL, ADD COLUMN coupon text"
    ddl(source_db, statement, application="migrations")
    sync(shop)
    assert webhooks.deliver_due(store, box) == (2, 0)

    polled, captured = receiver.events()
    assert (polled["version"], polled["change_type"]) == (2, "NEW COLUMN")
    assert polled["provenance"]["detected_by"] == "polling"
    assert polled["provenance"]["lsn"]
    assert "events" not in polled["provenance"]

    assert (captured["event"], captured["version"]) == ("schema.changed", 3)
    assert captured["severity"] == "breaking"  # NOT NULL added
    provenance = captured["provenance"]
    assert provenance["detected_by"] == "capture"
    assert isinstance(provenance["commit_time_exact"], bool)
    assert provenance["changed_at"]
    [event] = provenance["events"]
    assert event["statement"] == statement
    assert event["command_tag"] == "ALTER TABLE"
    assert event["application_name"] == "migrations"
    assert event["session_user"] == event["current_user"] == source_db.conn.info.user
    assert event["backend_pid"] > 0 and int(event["xid"]) > 0
    assert provenance["lsn"] == event["lsn"]

    # What was sent is what the store recorded of the version.
    [[lsn, detected_by]] = store.execute(
        "SELECT h.lsn::text, h.detected_by FROM history_schema_evolution h "
        "JOIN table_metadata_list t ON t.id = h.table_metadata_list_id "
        "WHERE t.table_name = 'orders' AND h.version_schema = 3"
    ).fetchall()
    store.rollback()
    assert (lsn, detected_by) == (provenance["lsn"], "capture")
    [[polled_lsn]] = store.execute(
        "SELECT h.lsn::text FROM history_schema_evolution h "
        "JOIN table_metadata_list t ON t.id = h.table_metadata_list_id "
        "WHERE t.table_name = 'orders' AND h.version_schema = 2"
    ).fetchall()
    store.rollback()
    assert polled["provenance"]["lsn"] == polled_lsn
    log = webhooks.deliveries(store, source_id=shop.id)
    assert {d["status"] for d in log} == {"delivered"}


def test_a_table_added_by_captured_ddl_is_sent_with_its_statement(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    shop: Any,
    sync: Any,
    receiver: Receiver,
) -> None:
    sync(shop)
    services.install_capture(store, box, SourceLimits(), shop)
    webhooks.add_endpoint(store, box, shop.id, receiver.url, None, ["table.added"])
    store.commit()
    statement = (
        "CREATE TABLE shipments (id bigint PRIMARY KEY, carrier text);"
        "ALTER PUBLICATION rosetta_publication ADD TABLE shipments"
    )
    ddl(source_db, statement, application="deploy")
    sync(shop)
    assert webhooks.deliver_due(store, box) == (1, 0)
    [added] = receiver.events()
    assert (added["event"], added["table"]["name"], added["version"]) == (
        "table.added",
        "shipments",
        1,
    )
    provenance = added["provenance"]
    assert provenance["detected_by"] == "capture"
    assert provenance["events"], provenance
    assert {e["statement"] for e in provenance["events"]} == {statement}
    assert {e["application_name"] for e in provenance["events"]} == {"deploy"}
    assert provenance["lsn"] in {e["lsn"] for e in provenance["events"]}
