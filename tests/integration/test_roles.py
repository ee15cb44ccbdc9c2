"""Token roles on the REST API and the CLI: a read token reads everything and changes nothing; an
admin token may also change sources, publications, slots and webhooks.

The routes are taken from the app itself, so a new route is checked as soon as it exists: a write
route (any method but GET/HEAD) must refuse a read token, and a GET route must either serve it or
be listed in ADMIN_GETS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastapi.routing
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from psycopg import sql

from rosetta.pg.server import PostgresServer
from rosetta.store import db
from rosetta.web.auth import PageRoute
from tests.conftest import Cli, Receiver, SourceDb

# GET routes that need an admin token: they read a source's catalog only to choose what to add.
ADMIN_GETS = {"/api/v1/sources/{source_id}/available-tables"}
READ_METHODS = {"GET", "HEAD"}
PARAM_RE = re.compile(r"\{(\w+)(?::\w+)?\}")
MISSING = 987_654


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    route: APIRoute
    in_schema: bool


def routes_of(app: FastAPI) -> list[tuple[str, set[str], APIRoute, bool]]:
    """Every route of the app as (path, methods, route, in the OpenAPI document), routers
    included (FastAPI >= 0.13x keeps included routers as a tree: iter_route_contexts walks it)."""
    walk = getattr(fastapi.routing, "iter_route_contexts", None)
    found = []
    context: Any
    for context in walk(app.routes) if walk is not None else app.routes:
        route = getattr(context, "original_route", context)
        if isinstance(route, APIRoute):
            in_schema = bool(getattr(context, "include_in_schema", route.include_in_schema))
            found.append((str(context.path), set(context.methods or ()), route, in_schema))
    return found


def operations(app: FastAPI) -> list[Operation]:
    """Every operation of the API (not the web pages), HEAD aside."""
    found = [
        Operation(method, path, route, in_schema)
        for path, methods, route, in_schema in routes_of(app)
        if not isinstance(route, PageRoute)
        for method in sorted(methods - {"HEAD"})
    ]
    assert len(found) > 20, "the API's routes were not found"
    return found


def admin_only(method: str, path: str) -> bool:
    return method not in READ_METHODS or path in ADMIN_GETS


def fill(path: str, values: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"{path}: the test has no value for {{{name}}}: add one"
        return str(values[name])

    return PARAM_RE.sub(value, path)


@pytest.fixture
def shop(
    api: TestClient, add_source: Any, source_db: SourceDb, receiver: Receiver
) -> dict[str, Any]:
    """A registered, synced source with one tracked table and one webhook (made by an admin
    token); the path parameters that name them."""
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    source = add_source(replication_name="rosetta_slot")
    tables = api.get(f"/api/v1/sources/{source['id']}/tables").json()["items"]
    hook = api.post(f"/api/v1/sources/{source['id']}/webhooks", json={"url": receiver.url})
    assert hook.status_code == 201, hook.text
    return {
        "source_id": source["id"],
        "table_id": tables[0]["id"],
        "webhook_id": hook.json()["id"],
        "number": 1,
        "schema": "public",
        "table": "customers",
    }


def as_token(client: TestClient, token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_a_read_token_is_refused_every_write_route_and_nothing_changes(
    app: FastAPI,
    api: TestClient,
    read_token: str,
    shop: dict[str, Any],
    source_db: SourceDb,
    store: Any,
) -> None:
    before = api.get(f"/api/v1/sources/{shop['source_id']}").json()
    reader = as_token(api, read_token)
    refused = []
    for op in operations(app):
        method, template = op.method, op.path
        if not admin_only(method, template):
            continue
        path = fill(template, shop)
        response = reader.request(method, path, json={})
        assert response.status_code == 403, (method, path, response.text)
        detail = response.json()["detail"]
        assert detail.startswith("this token's role is read: an admin token can "), detail
        assert f"{method} {path}" in detail and "--role admin" in detail and "\n" not in detail
        refused.append(f"{method} {template}")
    assert "DELETE /api/v1/sources/{source_id}" in refused
    assert "POST /api/v1/sources/{source_id}/refresh" in refused
    assert "POST /api/v1/webhooks/{webhook_id}/test" in refused
    assert "GET /api/v1/sources/{source_id}/available-tables" in refused
    # Nothing was changed, here or on the source.
    assert reader.get(f"/api/v1/sources/{shop['source_id']}").json() == before
    assert [
        h["id"] for h in reader.get(f"/api/v1/sources/{shop['source_id']}/webhooks").json()
    ] == [shop["webhook_id"]]
    assert source_db.sql(
        "SELECT tablename FROM pg_publication_tables WHERE pubname = 'rosetta_publication'"
    ) == [("customers",)]
    assert source_db.sql("SELECT slot_name FROM pg_replication_slots") == []
    count = store.execute("SELECT count(*) FROM webhook_endpoints").fetchone()
    store.rollback()
    assert count == (1,)


REQUIRED_QUERY = {"/api/v1/tables/{table_id}/schema": "?at=2999-01-01T00:00:00Z"}


def test_a_read_token_reads_every_other_route(
    app: FastAPI, api: TestClient, read_token: str, shop: dict[str, Any], source_db: SourceDb
) -> None:
    reader = as_token(api, read_token)
    served = []
    for op in operations(app):
        method, template = op.method, op.path
        if admin_only(method, template):
            continue
        # A route that needs a query parameter gets one a user would give.
        query = REQUIRED_QUERY.get(template, "")
        response = reader.request(method, fill(template, shop) + query)
        assert response.status_code == 200, (method, template, response.text)
        assert source_db.server.password not in response.text  # sources without secrets
        served.append(template)
    for expected in (
        "/api/v1/sources",
        "/api/v1/tables/{table_id}/diff",
        "/api/v1/sources/{source_id}/doctor",
        "/api/v1/sources/{source_id}/webhooks/deliveries",
        "/metrics",
        "/api/v1/health",
    ):
        assert expected in served


def test_an_admin_token_passes_the_role_check_everywhere(
    app: FastAPI, api: TestClient, shop: dict[str, Any]
) -> None:
    missing = {name: MISSING for name in ("source_id", "table_id", "webhook_id", "number")}
    for op in operations(app):
        method, template = op.method, op.path
        # Unknown ids: the route answers (404, 422...) without changing anything.
        response = api.request(method, fill(template, {**shop, **missing}), json={})
        assert response.status_code not in (401, 403), (method, template, response.text)
    refreshed = api.post(f"/api/v1/sources/{shop['source_id']}/refresh")
    assert refreshed.status_code == 200, refreshed.text
    hook = f"/api/v1/webhooks/{shop['webhook_id']}"
    assert api.delete(hook).status_code == 204


def test_the_openapi_document_shows_the_403_of_admin_routes(app: FastAPI, api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    documented = 0
    for op in operations(app):
        if op.in_schema and admin_only(op.method, op.path):
            responses = spec["paths"][op.path][op.method.lower()]["responses"]
            assert "admin token" in responses["403"]["description"], (op.method, op.path)
            documented += 1
    assert documented >= 15


# --- the CLI -----------------------------------------------------------------------------------


def test_token_create_makes_read_tokens_unless_told_admin(
    cli: Cli, client: TestClient, add_source: Any, api: TestClient, source_db: SourceDb
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = add_source()
    refresh = f"/api/v1/sources/{source['id']}/refresh"

    helped = cli("token", "create", "--help")
    assert "--role" in helped.stdout and "read|admin" in helped.stdout
    assert "default: read" in helped.stdout

    made = cli("token", "create", "dashboard")
    assert made.returncode == 0, made.stderr
    assert "Created read API token dashboard" in made.stdout
    reader = re.findall(r"rst_[\w-]+", made.stdout)[0]
    admin = cli("token", "create", "ops", "--role", "admin", "-q").stdout.strip()
    refused = cli("token", "create", "boss", "--role", "owner")
    assert refused.returncode == 2
    assert refused.stderr == "Error: invalid role 'owner': use read or admin\n"

    listed = json.loads(cli("token", "list", "--json").stdout)
    assert {row["name"]: row["role"] for row in listed} == {
        "dashboard": "read",
        "ops": "admin",
        "tester": "admin",
    }
    table = cli("token", "list").stdout
    assert re.search(r"dashboard\s+│\s+read", table) and re.search(r"ops\s+│\s+admin", table)

    del client.headers["Authorization"]
    as_reader = {"Authorization": f"Bearer {reader}"}
    as_admin = {"Authorization": f"Bearer {admin}"}
    assert client.get("/api/v1/sources", headers=as_reader).status_code == 200
    assert client.post(refresh, headers=as_reader).status_code == 403
    assert client.post(refresh, headers=as_admin).status_code == 200


# --- the migration -----------------------------------------------------------------------------


def test_tokens_made_before_roles_become_admin(pg: PostgresServer) -> None:
    from yoyo import get_backend, read_migrations

    name = "store_before_roles"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg.url(name)
    try:
        backend = get_backend("postgresql+psycopg://" + url.removeprefix("postgresql://"))
        migrations = read_migrations(str(Path(db.__file__).parent / "migrations"))
        older = migrations.filter(lambda m: m.id < "0006")
        with backend.lock():
            backend.apply_migrations(backend.to_apply(older))
        backend.connection.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO api_tokens (name, token_hash) VALUES ('old', 'h1')")
        db.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT name, role FROM api_tokens").fetchall() == [
                ("old", "admin")
            ]
            with pytest.raises(psycopg.errors.NotNullViolation):
                conn.execute("INSERT INTO api_tokens (name, token_hash) VALUES ('new', 'h2')")
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    "INSERT INTO api_tokens (name, token_hash, role) VALUES ('x', 'h3', 'owner')"
                )
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
