"""Severity as a user meets it: which changes a source sends webhooks for (its
``webhook_severity``, set from the CLI, the API or the web form alike), and a table's first
version shown as safe."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from rosetta import webhooks
from rosetta.crypto import SecretBox
from tests.conftest import Cli, Receiver, SourceDb
from tests.integration.conftest import source_body
from tests.integration.web_helpers import csrf_of, source_form, table_id


def stored_severity(store: Any, name: str) -> str | None:
    row = store.execute("SELECT webhook_severity FROM sources WHERE name = %s", (name,)).fetchone()
    store.rollback()
    return str(row[0]) if row else None


def outbox(store: Any) -> list[tuple[str, str]]:
    """The events recorded for sending: (event, severity), oldest first."""
    rows = store.execute(
        "SELECT event_type, payload->>'severity' FROM webhook_events ORDER BY id"
    ).fetchall()
    store.rollback()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_a_source_set_to_breaking_is_sent_breaking_changes_only(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
    cli: Cli,
    api: TestClient,
    receiver: Receiver,
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(20), total int)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    shop = register()
    webhooks.add_endpoint(store, box, shop.id, receiver.url, None, None)
    store.commit()
    done = cli("source", "update", "shop", "--webhook-severity", "breaking")
    assert done.returncode == 0, done.stderr
    assert stored_severity(store, "shop") == "breaking"

    sync(shop)  # table.added: safe
    source_db.sql("ALTER TABLE orders ADD COLUMN coupon text")  # nullable: safe
    sync(shop)
    source_db.sql("ALTER TABLE orders ALTER COLUMN note TYPE varchar(200)")  # widened: safe
    source_db.sql("ALTER TABLE orders ALTER COLUMN total TYPE bigint")
    sync(shop)
    assert outbox(store) == []
    assert webhooks.deliver_due(store, box) == (0, 0)
    assert receiver.requests == []

    source_db.sql("ALTER TABLE orders DROP COLUMN coupon")
    sync(shop)
    assert webhooks.deliver_due(store, box) == (1, 0)
    [dropped] = receiver.events()
    assert (dropped["event"], dropped["change_type"], dropped["severity"]) == (
        "schema.changed",
        "DROP COLUMN",
        "breaking",
    )
    assert dropped["version"] == 4

    # Back to every change, from the API: a safe change is sent again.
    back = api.patch(f"/api/v1/sources/{shop.id}", json={"webhook_severity": "all"})
    assert back.status_code == 200, back.text
    assert back.json()["webhook_severity"] == "all"
    source_db.sql("ALTER TABLE orders ADD COLUMN coupon text")
    sync(shop)
    assert webhooks.deliver_due(store, box) == (1, 0)
    added = receiver.events()[-1]
    assert (added["change_type"], added["severity"]) == ("NEW COLUMN", "safe")
    assert outbox(store) == [("schema.changed", "breaking"), ("schema.changed", "safe")]


def test_the_setting_round_trips_through_the_api(
    api: TestClient, source_db: SourceDb, store: Any
) -> None:
    created = api.post(
        "/api/v1/sources?sync=false",
        json=source_body(source_db, webhook_severity="breaking"),
    )
    assert created.status_code == 201, created.text
    source = created.json()["source"]
    assert source["webhook_severity"] == "breaking"
    assert api.get(f"/api/v1/sources/{source['id']}").json()["webhook_severity"] == "breaking"

    # An update that does not name it keeps it.
    renamed = api.patch(f"/api/v1/sources/{source['id']}", json={"name": "shop2"})
    assert renamed.json()["webhook_severity"] == "breaking"
    changed = api.patch(f"/api/v1/sources/{source['id']}", json={"webhook_severity": "all"})
    assert changed.json()["webhook_severity"] == "all"
    assert stored_severity(store, "shop2") == "all"

    bad = api.patch(f"/api/v1/sources/{source['id']}", json={"webhook_severity": "loud"})
    assert bad.status_code == 422
    assert "webhook_severity" in bad.text and "Traceback" not in bad.text
    refused = api.post("/api/v1/sources", json=source_body(source_db, webhook_severity="some"))
    assert refused.status_code == 422
    assert stored_severity(store, "shop2") == "all"
    # A source added without it sends every change.
    plain = api.post("/api/v1/sources?sync=false", json=source_body(source_db, name="plain"))
    assert plain.json()["source"]["webhook_severity"] == "all"


def test_the_setting_round_trips_through_the_cli(cli: Cli, source_db: SourceDb, store: Any) -> None:
    server = source_db.server
    dsn = f"postgresql://{server.superuser}@127.0.0.1:{server.port}/{source_db.name}"
    added = cli(
        "source",
        "add",
        "shop",
        "--dsn",
        dsn,
        "--publication",
        "rosetta_publication",
        "--password-stdin",
        "--no-sync",
        "--webhook-severity",
        "breaking",
        stdin=server.password + "\n",
    )
    assert added.returncode == 0, added.stderr
    assert stored_severity(store, "shop") == "breaking"
    listed = cli("source", "list", "--json")
    assert [s["webhook_severity"] for s in json.loads(listed.stdout)] == ["breaking"]

    bad = cli("source", "update", "shop", "--webhook-severity", "loud")
    assert bad.returncode != 0
    assert bad.stderr.strip() == (
        "Error: invalid webhook severity 'loud': use all or breaking (which changes send webhooks)"
    )
    assert stored_severity(store, "shop") == "breaking"

    refused = cli(
        "source",
        "add",
        "other",
        "--dsn",
        dsn,
        "--publication",
        "rosetta_publication",
        "--webhook-severity",
        "none",
    )
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert "invalid webhook severity 'none'" in refused.stderr
    assert stored_severity(store, "other") is None

    done = cli("source", "update", "shop", "--webhook-severity", "all")
    assert done.returncode == 0, done.stderr
    assert stored_severity(store, "shop") == "all"


def test_the_setting_round_trips_through_the_web_form(
    web: TestClient, source_db: SourceDb, register: Any, store: Any
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    shop = register()
    edit = f"/sources/{shop.id}/edit"
    page = web.get(edit).text
    assert 'name="webhook_severity"' in page
    assert '<option value="all" selected>Every change</option>' in page

    form = {**source_form(source_db), "webhook_severity": "breaking"}
    saved = web.post(edit, data={**form, "csrf": csrf_of(web, edit)})
    assert saved.status_code == 303, saved.text
    assert stored_severity(store, "shop") == "breaking"
    page = web.get(edit).text
    assert '<option value="breaking" selected>Breaking changes only</option>' in page
    tab = web.get(f"/sources/{shop.id}?tab=webhooks").text
    assert "<code>shop</code>: breaking changes only" in tab

    form["webhook_severity"] = "loud"
    bad = web.post(edit, data={**form, "csrf": csrf_of(web, edit)})
    assert bad.status_code == 422
    assert "invalid webhook severity &#39;loud&#39;: use all or breaking" in bad.text
    assert stored_severity(store, "shop") == "breaking"


def test_a_table_s_first_version_is_safe_though_its_columns_are_not_null(
    api: TestClient, web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, code text NOT NULL)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    shop = register()
    sync(shop)
    tid = table_id(store, "orders")
    first = api.get(f"/api/v1/tables/{tid}/diff", params={"from": 0, "to": 1})
    assert first.status_code == 200, first.text
    changes = first.json()["changes"]
    assert [(c["type"], c["column"], c["breaking"]) for c in changes] == [
        ("NEW COLUMN", "id", False),
        ("NEW COLUMN", "code", False),
    ]
    page = web.get(f"/tables/{tid}?v=1&from=0&to=1").text
    diff = page.split('id="diff"')[1]
    assert 'data-change="NEW COLUMN"' in diff and "code" in diff
    assert 'class="breaking"' not in page

    source_db.sql("ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu'")
    source_db.sql("ALTER TABLE orders ALTER COLUMN region DROP DEFAULT")
    sync(shop)
    second = api.get(f"/api/v1/tables/{tid}/diff").json()["changes"]
    assert [(c["type"], c["breaking"]) for c in second] == [("NEW COLUMN", True)]


def test_the_cli_history_shows_each_version_s_severity(
    cli: Cli, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, name varchar(10) NOT NULL)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    shop = register()
    sync(shop)
    source_db.sql("ALTER TABLE orders ALTER COLUMN name TYPE varchar(200)")
    sync(shop)
    source_db.sql("ALTER TABLE orders ALTER COLUMN name TYPE varchar(50)")
    sync(shop)
    shown = cli("history", "shop", "orders")
    assert shown.returncode == 0, shown.stderr
    versions = [line for line in shown.stdout.splitlines() if line.startswith("v")]
    assert [(line.split()[0], line.split()[-1]) for line in versions] == [
        ("v1", "safe"),
        ("v2", "safe"),
        ("v3", "breaking"),
    ]
    as_json = json.loads(cli("history", "shop", "orders", "--json").stdout)
    assert [v["severity"] for v in as_json] == ["safe", "safe", "breaking"]
