"""Helpers of the web UI tests: a form's CSRF token, logging in, a browser's POST, a tracked source.

The web fixtures themselves (``web_app``, ``web_client``, ``web_token``, ``web``) are in
tests/integration/conftest.py.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import SourceDb

HOSTILE = "<img src=x onerror=alert(1)>"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_RE.search(page.text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def log_in(client: TestClient, token: str, next_: str = "/") -> Any:
    csrf = csrf_of(client, "/login")
    return client.post("/login", data={"token": token, "next": next_, "csrf": csrf})


def post(client: TestClient, path: str, data: dict[str, Any] | None = None, page: str = "/") -> Any:
    """A POST as the browser sends it: with the CSRF token of the page it came from."""
    return client.post(path, data={**(data or {}), "csrf": csrf_of(client, page)})


def tracked_source(source_db: SourceDb, register: Any, sync: Any, *tables: str) -> Any:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    for ddl in tables:
        source_db.sql(ddl)
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLES IN SCHEMA public")
    source = register()
    sync(source)
    return source


def table_id(store: Any, name: str) -> int:
    row = store.execute(
        "SELECT id FROM table_metadata_list WHERE table_name = %s", (name,)
    ).fetchone()
    store.rollback()
    assert row is not None
    return int(row[0])


def source_form(source_db: SourceDb, **changes: str) -> dict[str, str]:
    server = source_db.server
    form = {
        "name": "shop",
        "host": "127.0.0.1",
        "port": str(server.port),
        "database": source_db.name,
        "username": server.superuser,
        "password": server.password,
        "publication_name": "rosetta_publication",
        "replication_name": "",
        "sslmode": "",
        "action": "save",
    }
    form.update(changes)
    return form
