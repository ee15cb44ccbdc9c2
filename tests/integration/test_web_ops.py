"""The web UI's operations: the Diagnose page and the Webhooks tab of a source."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from rosetta import sources, webhooks
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from tests.conftest import Receiver, Recorder, SourceDb
from tests.integration.web_helpers import (
    HOSTILE,
    csrf_of,
    post,
    tracked_source,
)

SECRET = "whsec-web-never-shown"


def flashes(page: Any) -> list[str]:
    return re.findall(r'<div class="flash flash-\w+" role="status">([^<]*)</div>', page.text)


def follow(web: TestClient, response: Any) -> Any:
    assert response.status_code == 303, response.text
    return web.get(response.headers["location"])


# --- the Diagnose page -------------------------------------------------------------------------


@pytest.fixture
def reader(source_db: SourceDb) -> Iterator[str]:
    """A login role of the source server, with no privilege on any table yet."""
    role = f"web_reader_{os.getpid()}"

    def run(statement: sql.Composable) -> None:
        source_db.sql(statement.as_string(source_db.conn))

    run(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-reader'").format(sql.Identifier(role)))
    try:
        yield role
    finally:
        run(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        run(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_diagnose_shows_each_check_with_its_escaped_fix(
    web: TestClient,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    sync: Any,
    reader: str,
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql(f'CREATE TABLE "{HOSTILE}" (at timestamptz, "<b>x</b>" text)')  # no key
    source_db.sql(f'CREATE PUBLICATION rosetta_publication FOR TABLE orders, "{HOSTILE}"')
    source_db.sql(f"GRANT SELECT ON orders TO {reader}")  # not on the hostile table
    url = source_db.server.url(source_db.name, user=reader, password="pw-reader")
    source = sources.add_source(
        store, box, sources.SourceInput("shop", sources.parse_dsn(url), "rosetta_publication")
    )
    store.commit()
    sync(source)

    source_page = web.get(f"/sources/{source.id}")
    assert f'href="/sources/{source.id}/doctor"' in source_page.text
    assert "Diagnose</a>" in source_page.text
    page = web.get(f"/sources/{source.id}/doctor")
    assert page.status_code == 200
    text = page.text
    assert "<img src=x" not in text and "<b>x" not in text
    assert 'class="badge badge-bad">FAIL</span>' in text
    assert 'class="badge badge-warn">WARN</span>' in text  # no monitor, no slot
    assert 'class="badge badge-ok">PASS</span>' in text
    escaped = "&#34;&lt;img src=x onerror=alert(1)&gt;&#34;"
    assert f"<code>GRANT SELECT ON TABLE {escaped} TO {reader};</code>" in text
    assert (
        f"<code>ALTER TABLE {escaped} ADD PRIMARY KEY (...); or ALTER TABLE {escaped} "
        "REPLICA IDENTITY FULL;</code>"
    ) in text
    assert f"{reader} lacks SELECT on &lt;img src=x onerror=alert(1)&gt;" in text
    assert "rosetta monitor" in text  # the monitor's fix, a WARN
    # The hostile table has problems: shown open, its passing checks folded away.
    hostile = text.split(f'data-table="{HOSTILE.replace("<", "&lt;").replace(">", "&gt;")}"')[1]
    hostile = hostile.split('class="doctor-table')[0]
    assert re.search(r'<details class="passing">\s*<summary>\d passing checks', hostile)
    # orders passes every check: one folded line, closed.
    orders = re.search(r'<details class="passing-tables"( open)?>.*?"orders"', text, re.S)
    assert orders and orders.group(1) is None
    assert text.index('data-table="&lt;img') < text.index('data-table="orders"')  # worst first
    one = web.get(f"/sources/{source.id}/doctor?table=orders")
    assert re.search(r"<td>replica identity DEFAULT \(primary key\)\s*</td>", one.text)  # no fix

    assert one.status_code == 200 and "nothing failed" in one.text
    assert 'data-table="orders"' in one.text and "&lt;img" not in one.text
    assert 'value="orders"' in one.text
    assert web.get("/sources/987654/doctor").status_code == 404


def test_diagnose_needs_a_login(web_client: TestClient) -> None:
    response = web_client.get("/sources/1/doctor")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- the Webhooks tab --------------------------------------------------------------------------


def test_webhooks_tab_add_test_remove_and_delivery_log(
    web: TestClient,
    recorder: Recorder,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
    receiver: Receiver,
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE orders (id int PRIMARY KEY)")
    tab = f"/sources/{source.id}?tab=webhooks"
    empty = web.get(tab)
    assert empty.status_code == 200
    assert "No webhooks yet" in empty.text and "Nothing delivered yet" in empty.text
    assert 'type="password" id="w-secret" name="secret"' in empty.text
    for event in webhooks.EVENTS:
        assert f'name="events" value="{event}" checked' in empty.text
    assert 'aria-current="page">Webhooks <span class="tab-count">0</span>' in empty.text

    add = f"/sources/{source.id}/webhooks"
    form = {"url": receiver.url, "secret": SECRET, "events": ["schema.changed", "table.added"]}
    assert web.post(add, data=form).status_code == 403  # no CSRF token
    assert web.post(add, data={**form, "csrf": "0" * 64}).status_code == 403
    assert webhooks.list_endpoints(store, source.id) == []

    added = follow(web, post(web, add, form, tab))
    [hook] = webhooks.list_endpoints(store, source.id)
    assert flashes(added) == [f"Webhook {hook['id']} added (signed): {receiver.url}"]
    row = added.text.split(f'data-webhook="{hook["id"]}"')[1].split("</tr>")[0]
    assert f'<code class="url">{receiver.url}</code>' in row
    assert '<span class="event">schema.changed</span><span class="event">table.added</span>' in row
    assert ">signed</span>" in row and "table.removed" not in row
    assert 'Webhooks <span class="tab-count">1</span>' in added.text

    hostile_url = "http://x.example/<script>alert(1)</script>"
    follow(web, post(web, add, {"url": hostile_url, "events": ["table.removed"]}, tab))
    shown = web.get(tab).text
    assert "<script>alert(1)" not in shown
    assert "http://x.example/&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert ">unsigned</span>" in shown

    # Bad input stays in the form (the URL, never the secret) with a one-line error.
    bad = post(web, add, {"url": "ftp://example.com/x", "secret": SECRET, "events": []}, tab)
    assert bad.status_code == 422 and "pick at least one event" in bad.text
    bad = post(web, add, {"url": receiver.url, "secret": SECRET, "events": "x"}, tab)
    assert bad.status_code == 422 and "unknown event &#39;x&#39;" in bad.text
    bad = post(
        web, add, {"url": "ftp://example.com/x", "secret": SECRET, "events": "table.added"}, tab
    )
    assert bad.status_code == 422 and "invalid webhook URL" in bad.text
    assert 'value="ftp://example.com/x"' in bad.text
    assert 'name="events" value="table.added" checked' in bad.text
    assert 'name="events" value="table.removed">' in bad.text
    assert len(webhooks.list_endpoints(store, source.id)) == 2

    # Test: the result is shown on the tab.
    test = f"/sources/{source.id}/webhooks/{hook['id']}/test"
    assert web.post(test).status_code == 403
    assert receiver.requests == []
    tested = follow(web, post(web, test, page=tab))
    assert flashes(tested) == [f"Test delivery to {receiver.url} answered 200."]
    assert 'class="flash flash-ok"' in tested.text
    [request] = receiver.requests
    assert json.loads(request["body"])["event"] == "test"
    assert request["headers"]["X-Rosetta-Signature"].startswith("sha256=")
    receiver.statuses = [503]
    failed = follow(web, post(web, test, page=tab))
    assert flashes(failed) == [f"Test delivery to {receiver.url} failed: HTTP 503"]
    assert 'class="flash flash-error"' in failed.text

    # The delivery log after a sync and a delivery.
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    follow(web, post(web, f"/sources/{source.id}/refresh", page=f"/sources/{source.id}"))
    pending = web.get(tab).text.split("Delivery log")[1]
    assert "<code>schema.changed</code>" in pending and ">pending</span>" in pending
    dead = webhooks.add_endpoint(
        store, box, source.id, f"http://127.0.0.1:{free_port()}/", None, ["schema.changed"]
    )
    store.commit()
    source_db.sql("ALTER TABLE orders ADD COLUMN extra int")
    sync(source)
    assert webhooks.deliver_due(store, box, timeout=5) == (2, 1)
    log = web.get(tab).text.split("Delivery log")[1]
    rows = re.findall(r'<tr data-delivery="\d+">(.*?)</tr>', log, re.S)
    assert len(rows) == 3
    failed_row, ok_v3, ok_v2 = rows
    for ok, version in ((ok_v3, 3), (ok_v2, 2)):
        assert "<code>schema.changed</code>" in ok
        assert '<span class="table-name">orders</span>' in ok
        assert f'<span class="vtag">v{version}</span>' in ok
        assert 'class="badge badge-ok">delivered</span>' in ok
        assert '<td class="num">200</td>' in ok and '<td class="num">1</td>' in ok
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", ok)
        assert f"#{hook['id']}" in ok
    # Refused once and retried with backoff: "retrying", not a bare "pending".
    assert 'class="badge badge-warn" title="attempt 1 failed; next attempt ' in failed_row
    assert ">retrying</span>" in failed_row and "refused" in failed_row.lower()
    assert f"#{dead['id']}" in failed_row
    counts = web.get(tab).text.split(f'data-webhook="{hook["id"]}"')[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+)</td>', counts)[1:] == ["2", "0", "0"]

    # Remove: a confirmation page first, as for the other removals.
    remove = f"/sources/{source.id}/webhooks/{hook['id']}/remove"
    confirm = web.get(remove)
    assert f"Remove webhook {hook['id']} ({receiver.url})?" in confirm.text
    assert f'action="{remove}"' in confirm.text and 'name="csrf"' in confirm.text
    assert f'href="/sources/{source.id}?tab=webhooks">Cancel' in confirm.text
    assert web.post(remove).status_code == 403
    removed = follow(web, post(web, remove, page=remove))
    assert flashes(removed) == [f"Webhook {hook['id']} removed: {receiver.url}"]
    assert f'data-webhook="{hook["id"]}"' not in removed.text
    assert web.get(remove).status_code == 404
    assert web.post(remove, data={"csrf": csrf_of(web, tab)}).status_code == 404

    # Another source's webhook is not reachable through this source's pages.
    other = register(name="other")
    elsewhere = f"/sources/{other.id}/webhooks/{dead['id']}"
    assert web.get(f"{elsewhere}/remove").status_code == 404
    assert web.post(f"{elsewhere}/test", data={"csrf": csrf_of(web, tab)}).status_code == 404
    assert web.get(f"/sources/{other.id}?tab=webhooks").text.count("data-webhook=") == 0

    for path in (tab, f"/sources/{source.id}", f"/sources/{source.id}/doctor", "/"):
        assert SECRET not in web.get(path).text
    recorder.assert_absent(SECRET)
