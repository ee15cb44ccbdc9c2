"""Token roles in the web UI: a read session sees the registry without the buttons of admin
actions, and every admin action (each POST, each form page leading to one) answers it 403."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rosetta import tokens, webhooks
from rosetta.crypto import SecretBox
from rosetta.store import repository
from rosetta.web.auth import PageRoute
from tests.conftest import Receiver, SourceDb
from tests.integration.test_roles import routes_of
from tests.integration.web_helpers import csrf_of, log_in, table_id, tracked_source

# The POSTs any logged-in session may send; every other POST is an admin action.
ANY_ROLE_POSTS = {"/login", "/logout"}
# The GET pages that are forms for an admin action.
ADMIN_PAGES = (
    "/sources/new",
    "/sources/{source_id}/edit",
    "/sources/{source_id}/delete",
    "/sources/{source_id}/publication/drop",
    "/sources/{source_id}/slot/drop",
    "/sources/{source_id}/tables/{table_id}/remove",
    "/sources/{source_id}/webhooks/{webhook_id}/remove",
)
PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")
ADMIN_BUTTONS = (
    "↻ Refresh",
    ">Edit<",
    "Delete…",
    "Create publication",
    "Drop publication…",
    "Create slot",
    "Drop slot…",
    "Available tables",
    "Remove…",
    "Add webhook",
    ">Test<",
    "+ Add source",
)


def fill(path: str, values: dict[str, Any]) -> str:
    return PARAM_RE.sub(lambda m: str(values[m.group(1)]), path)


@pytest.fixture
def shop(
    source_db: SourceDb, register: Any, sync: Any, store: Any, box: SecretBox, receiver: Receiver
) -> dict[str, Any]:
    """A tracked source with one table and one webhook."""
    source = tracked_source(
        source_db,
        lambda: register(slot="rosetta_slot"),
        sync,
        "CREATE TABLE customers (id bigint PRIMARY KEY, email text)",
    )
    hook = webhooks.add_endpoint(store, box, source.id, receiver.url, None, None)
    store.commit()
    return {
        "source_id": source.id,
        "table_id": table_id(store, "customers"),
        "webhook_id": hook["id"],
    }


def logged_in(client: TestClient, store: Any, name: str, role: tokens.Role) -> TestClient:
    response = log_in(client, tokens.create_token(store, name, role))
    assert response.status_code == 303, response.text
    return client


def test_a_read_session_sees_no_admin_buttons(
    web_client: TestClient, store: Any, shop: dict[str, Any], receiver: Receiver
) -> None:
    reader = logged_in(web_client, store, "web-reader", tokens.Role.READ)
    source = f"/sources/{shop['source_id']}"
    pages = {
        "/": reader.get("/"),
        source: reader.get(source),
        "webhooks": reader.get(f"{source}?tab=webhooks"),
        "available": reader.get(f"{source}?tab=available"),
        "table": reader.get(f"/tables/{shop['table_id']}"),
    }
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.text)
        for button in ADMIN_BUTTONS:
            assert button not in page.text, (name, button)
        assert 'class="who-role"' in page.text and ">read</span>" in page.text
    assert "customers" in pages[source].text and "Diagnose" in pages[source].text
    assert receiver.url in pages["webhooks"].text
    # The Available tables tab reads the source to pick tables to add: a read session gets the
    # Tables tab instead.
    assert "customers" in pages["available"].text


def test_an_admin_session_sees_them(
    web_client: TestClient, store: Any, shop: dict[str, Any]
) -> None:
    admin = logged_in(web_client, store, "web-admin", tokens.Role.ADMIN)
    page = admin.get(f"/sources/{shop['source_id']}")
    for button in ("↻ Refresh", ">Edit<", "Delete…", "Available tables", "Remove…"):
        assert button in page.text
    assert ">admin</span>" in page.text
    assert "+ Add source" in admin.get("/").text
    assert "Add webhook" in admin.get(f"/sources/{shop['source_id']}?tab=webhooks").text


def test_a_read_session_gets_403_on_every_admin_action(
    web_app: FastAPI, web_client: TestClient, store: Any, shop: dict[str, Any]
) -> None:
    reader = logged_in(web_client, store, "web-reader", tokens.Role.READ)
    before = repository.source_by_id(store, shop["source_id"])
    store.rollback()
    csrf = csrf_of(reader, "/")
    posts = [
        path
        for path, methods, route, _ in routes_of(web_app)
        if isinstance(route, PageRoute) and "POST" in methods and path not in ANY_ROLE_POSTS
    ]
    assert len(posts) >= 10
    for path in [*posts, *ADMIN_PAGES]:
        url = fill(path, shop)
        if path in posts:
            response = reader.post(url, data={"csrf": csrf, "name": "x", "tables": "[]"})
        else:
            response = reader.get(url)
        assert response.status_code == 403, (path, response.text)
        assert "Not allowed" in response.text
        assert "This token&#39;s role is read: an admin token can do this" in response.text
    # Refresh did not sync, Delete did not delete, the webhook is still there.
    after = repository.source_by_id(store, shop["source_id"])
    store.rollback()
    assert after.last_sync_at == before.last_sync_at and after.name == before.name
    assert [w["id"] for w in webhooks.list_endpoints(store, shop["source_id"])] == [
        shop["webhook_id"]
    ]
    store.rollback()
    # A read session still logs out.
    assert reader.post("/logout", data={"csrf": csrf}).status_code == 303


def test_an_admin_session_may_refresh_and_delete(
    web_client: TestClient, store: Any, shop: dict[str, Any]
) -> None:
    admin = logged_in(web_client, store, "web-admin", tokens.Role.ADMIN)
    source = f"/sources/{shop['source_id']}"
    csrf = csrf_of(admin, source)
    assert admin.get(f"{source}/delete").status_code == 200
    assert admin.post(f"{source}/refresh", data={"csrf": csrf}).status_code == 303
    deleted = admin.post(f"{source}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    assert repository.list_sources(store) == []
