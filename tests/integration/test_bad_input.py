"""Hostile and malformed input gets a 4xx with one line, never a 500, and stores nothing.

Under /api every refusal is ``{"detail": "one line"}``; the web answers with its HTML error page.
Text that would reach PostgreSQL or libpq must be UTF-8 without NUL, integers must fit
PostgreSQL's bigint, names are bounded (identifiers: 63 bytes).

Each test tries many inputs against one app and one registered source (``subtests`` names the
input that failed): a store and a source per input would make this file slow.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SourceDb
from tests.integration.conftest import source_body
from tests.integration.web_helpers import csrf_of, source_form

BIGINT_MAX = 2**63 - 1
TOO_BIG = 2**63
HUGE = 10**40
NUL = "\x00"
SURROGATE = "\ud800"  # a lone UTF-16 surrogate: valid in a JSON string, not encodable as UTF-8
BAD_TEXT = {"surrogate": SURROGATE, "nul": f"a{NUL}b"}
SOURCE_TEXT_FIELDS = (
    "name",
    "host",
    "database",
    "username",
    "password",
    "publication_name",
    "replication_name",
)


def refused(response: Any, *statuses: int) -> str:
    """The one-line ``detail`` of a refused API request with one of ``statuses`` (any 4xx if
    none given)."""
    if statuses:
        assert response.status_code in statuses, response.text
    else:
        assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    assert isinstance(detail, str) and detail
    assert detail.isprintable(), detail  # one line: no line break, NUL or other control
    return detail


def page_refused(response: Any) -> None:
    """A web page's refusal: a 4xx HTML page, no traceback."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


def raw_json(api: TestClient, method: str, path: str, body: Any) -> Any:
    """Send ``body`` as JSON text that escapes every non-ASCII character, so that a lone
    surrogate travels as ``\\ud800``, as any JSON client may send it."""
    return api.request(
        method,
        path,
        content=json.dumps(body).encode("ascii"),
        headers={"content-type": "application/json"},
    )


def source_count(store: Any) -> int:
    row = store.execute("SELECT count(*) FROM sources").fetchone()
    store.rollback()
    return int(row[0])


def publication_tables(source_db: SourceDb) -> int:
    return int(source_db.sql("SELECT count(*) FROM pg_publication_tables")[0][0])


@pytest.fixture
def source(api: TestClient, add_source: Any, source_db: SourceDb) -> dict[str, Any]:
    """A registered source with one tracked table."""
    source_db.sql("CREATE TABLE items (id bigint PRIMARY KEY, label text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE items")
    created: dict[str, Any] = add_source()
    return created


def table_id(api: TestClient, source: dict[str, Any]) -> int:
    found: int = api.get(f"/api/v1/sources/{source['id']}/tables").json()["items"][0]["id"]
    return found


# --- integers: limits, offsets and ids --------------------------------------------------------


def test_limits_and_offsets_out_of_range_are_422(
    api: TestClient, source: dict[str, Any], subtests: pytest.Subtests
) -> None:
    tables = f"/api/v1/sources/{source['id']}/tables"
    deliveries = f"/api/v1/sources/{source['id']}/webhooks/deliveries"
    probes: list[tuple[str, dict[str, Any]]] = [
        (tables, {"offset": TOO_BIG}),
        (tables, {"offset": HUGE}),
        (tables, {"offset": -1}),
        (tables, {"offset": "1e3"}),
        (tables, {"limit": 0}),
        (tables, {"limit": 1001}),
        (tables, {"limit": TOO_BIG}),
        (tables, {"limit": -TOO_BIG}),
        (tables, {"limit": "ten"}),
        (tables, {"status": "nonsense"}),
        (deliveries, {"limit": 0}),
        (deliveries, {"limit": 1001}),
        (deliveries, {"limit": TOO_BIG}),
    ]
    for path, query in probes:
        with subtests.test(path=path, query=query):
            detail = refused(api.get(path, params=query), 422)
            assert next(iter(query)) in detail

    largest = api.get(tables, params={"offset": BIGINT_MAX})
    assert largest.status_code == 200, largest.text
    assert largest.json()["items"] == [] and largest.json()["total"] == 1


ID_PATHS = [
    ("GET", "/api/v1/sources/{big}"),
    ("PATCH", "/api/v1/sources/{big}"),
    ("PUT", "/api/v1/sources/{big}"),
    ("DELETE", "/api/v1/sources/{big}"),
    ("POST", "/api/v1/sources/{big}/refresh"),
    ("POST", "/api/v1/sources/{big}/test-connection"),
    ("GET", "/api/v1/sources/{big}/tables"),
    ("GET", "/api/v1/sources/{big}/doctor"),
    ("GET", "/api/v1/sources/{big}/available-tables"),
    ("POST", "/api/v1/sources/{big}/publication"),
    ("DELETE", "/api/v1/sources/{big}/publication"),
    ("POST", "/api/v1/sources/{big}/publication/tables"),
    ("DELETE", "/api/v1/sources/{big}/publication/tables/public/items"),
    ("POST", "/api/v1/sources/{big}/slot"),
    ("DELETE", "/api/v1/sources/{big}/slot"),
    ("GET", "/api/v1/sources/{big}/webhooks"),
    ("POST", "/api/v1/sources/{big}/webhooks"),
    ("GET", "/api/v1/sources/{big}/webhooks/deliveries"),
    ("DELETE", "/api/v1/webhooks/{big}"),
    ("POST", "/api/v1/webhooks/{big}/test"),
    ("GET", "/api/v1/tables/{big}"),
    ("GET", "/api/v1/tables/{big}/versions"),
    ("GET", "/api/v1/tables/{table}/versions/{big}"),
    ("GET", "/api/v1/tables/{big}/diff"),
]
BODIES = {
    "/api/v1/sources/{big}": {"name": "other"},
    "/api/v1/sources/{big}/publication": {"tables": []},
    "/api/v1/sources/{big}/publication/tables": {"table": "items"},
    "/api/v1/sources/{big}/webhooks": {"url": "http://127.0.0.1:9/hook"},
}


def test_ids_beyond_bigint_are_404_or_422(
    api: TestClient,
    source: dict[str, Any],
    store: Any,
    source_db: SourceDb,
    subtests: pytest.Subtests,
) -> None:
    table = table_id(api, source)
    for big in (TOO_BIG, HUGE, -TOO_BIG - 1, 0, -1):
        for method, path in ID_PATHS:
            with subtests.test(method=method, path=path, id=big):
                body = BODIES.get(path) if method in ("POST", "PUT", "PATCH") else None
                url = path.format(big=big, table=table)
                refused(api.request(method, url, json=body), 404, 422)
    for query in ({"from": TOO_BIG}, {"to": TOO_BIG}, {"from": -1}, {"to": HUGE}):
        with subtests.test(diff=query):
            refused(api.get(f"/api/v1/tables/{table}/diff", params=query), 404, 422)
    assert source_count(store) == 1
    assert api.get(f"/api/v1/sources/{source['id']}").json()["name"] == "shop"
    assert publication_tables(source_db) == 1


# --- text: NUL, lone surrogates, length ----------------------------------------------------


def test_bad_text_in_a_new_source_is_422_and_nothing_stored(
    api: TestClient, source_db: SourceDb, store: Any, subtests: pytest.Subtests
) -> None:
    for kind, bad in BAD_TEXT.items():
        for field in SOURCE_TEXT_FIELDS:
            with subtests.test(field=field, kind=kind):
                body = source_body(source_db, **{field: bad})
                assert field in refused(raw_json(api, "POST", "/api/v1/sources", body), 422)
        for options in ({"sslmode": bad}, {bad: "require"}):
            with subtests.test(options=options):
                body = source_body(source_db, options=options)
                assert "options" in refused(raw_json(api, "POST", "/api/v1/sources", body), 422)
    assert source_count(store) == 0


def test_bad_text_in_a_source_change_is_422_and_nothing_changed(
    api: TestClient, source: dict[str, Any], subtests: pytest.Subtests
) -> None:
    path = f"/api/v1/sources/{source['id']}"
    for kind, bad in BAD_TEXT.items():
        for field in SOURCE_TEXT_FIELDS:
            for method in ("PATCH", "PUT"):
                with subtests.test(method=method, field=field, kind=kind):
                    assert field in refused(raw_json(api, method, path, {field: bad}), 422)
        with subtests.test(options=kind):
            refused(raw_json(api, "PATCH", path, {"options": {"sslmode": bad}}), 422)
    after = api.get(path).json()
    assert after == {**source, "table_count": after["table_count"]}


def test_bad_table_names_for_the_publication_are_refused(
    api: TestClient, source: dict[str, Any], source_db: SourceDb, subtests: pytest.Subtests
) -> None:
    base = f"/api/v1/sources/{source['id']}/publication"
    for kind, bad in {**BAD_TEXT, "too long": "t" * 64}.items():
        for body in ({"table": bad}, {"table": "items", "schema": bad}, {"table": f"public.{bad}"}):
            with subtests.test(kind=kind, add=body):
                refused(raw_json(api, "POST", f"{base}/tables", body), 422)
        for tables in ([bad], [{"table": bad}], [{"schema": bad, "table": "items"}]):
            with subtests.test(kind=kind, create=tables):
                refused(raw_json(api, "POST", base, {"tables": tables}), 422)
    # A path is percent-decoded with replacement characters: NUL is refused, bytes that are not
    # UTF-8 make a name the source does not have.
    for segment in ("%00", "a%00b", "%ED%A0%80", "%FF", "t" * 64):
        for path in (f"{base}/tables/public/{segment}", f"{base}/tables/{segment}/items"):
            with subtests.test(path=path):
                refused(api.delete(path), 409, 422)
    assert publication_tables(source_db) == 1


def test_bad_text_in_searches_is_422(
    api: TestClient, source: dict[str, Any], subtests: pytest.Subtests
) -> None:
    tables = f"/api/v1/sources/{source['id']}/tables"
    doctor = f"/api/v1/sources/{source['id']}/doctor"
    for query in (f"{tables}?name=%00", f"{tables}?name=items%00", f"{tables}?name={'x' * 301}"):
        with subtests.test(query=query[:80]):
            assert "name" in refused(api.get(query), 422)
    for query in (f"{doctor}?table=%00", f"{doctor}?table=public.items%00", f"{doctor}?table="):
        with subtests.test(query=query):
            assert "table" in refused(api.get(query), 422)
    # A query string is decoded with replacement characters: such a name matches no table.
    for text in ("%ED%A0%80", "%FF", "%C0%80"):
        with subtests.test(name=text):
            response = api.get(f"{tables}?name={text}")
            assert response.status_code == 200, response.text
            assert response.json()["total"] == 0


def test_too_long_or_empty_text_is_422_and_nothing_stored(
    api: TestClient, source_db: SourceDb, store: Any, subtests: pytest.Subtests
) -> None:
    probes = [
        ("name", "x" * 64),
        ("name", "shop\n"),
        ("name", "shop name"),
        ("publication_name", "p" * 64),
        ("replication_name", "s" * 64),
        ("publication_name", "é" * 32),  # 32 characters, 64 bytes
        ("database", "d" * 64),
        ("username", "u" * 64),
        ("host", "h" * 10_000),
        ("password", "p" * 100_000),
        ("name", ""),
        ("host", ""),
        ("database", ""),
        ("username", ""),
        ("publication_name", ""),
    ]
    for field, value in probes:
        with subtests.test(field=field, value=value[:20], length=len(value)):
            response = api.post("/api/v1/sources", json=source_body(source_db, **{field: value}))
            detail = refused(response, 422)
            assert field in detail
            assert not value.strip() or value[:20] not in detail
    assert source_count(store) == 0


# --- malformed bodies --------------------------------------------------------------------------


def test_a_body_that_is_not_a_json_object_is_400_or_422(
    api: TestClient, source: dict[str, Any], store: Any, subtests: pytest.Subtests
) -> None:
    bodies = [
        (b"[]", "application/json"),
        (b'"shop"', "application/json"),
        (b"42", "application/json"),
        (b"null", "application/json"),
        (b"{", "application/json"),
        (b'{"name": "\xff"}', "application/json"),  # not UTF-8: 400
        (b"", "application/json"),
        (b"name=shop", "application/x-www-form-urlencoded"),
        (b"name: shop", "text/plain"),
        (b'{"name": "shop"}', "text/plain"),
        (b"\x00\x01", "application/octet-stream"),
    ]
    targets = [
        ("POST", "/api/v1/sources"),
        ("PATCH", f"/api/v1/sources/{source['id']}"),
        ("POST", f"/api/v1/sources/{source['id']}/publication/tables"),
    ]
    for content, content_type in bodies:
        for method, path in targets:
            with subtests.test(method=method, path=path, body=content, type=content_type):
                response = api.request(
                    method, path, content=content, headers={"content-type": content_type}
                )
                refused(response, 400, 422)
    assert source_count(store) == 1


def test_wrong_types_huge_integers_and_unknown_fields_are_422(
    api: TestClient,
    source: dict[str, Any],
    source_db: SourceDb,
    store: Any,
    subtests: pytest.Subtests,
) -> None:
    probes: list[dict[str, Any]] = [
        {"port": HUGE},
        {"port": TOO_BIG},
        {"port": -1},
        {"port": 0},
        {"port": 65536},
        {"port": 5432.5},
        {"port": "5432; DROP"},
        {"name": 12},
        {"password": 12},
        {"options": ["sslmode"]},
        {"options": {"sslmode": 1}},
        {"options": {f"k{i}": "v" for i in range(100)}},
        {"unknown": "field"},
        {"is_publication_enabled": True},
    ]
    for changes in probes:
        with subtests.test(changes=str(changes)[:80]):
            response = api.post("/api/v1/sources", json=source_body(source_db, **changes))
            refused(response, 422)
            refused(api.patch(f"/api/v1/sources/{source['id']}", json=changes), 422)
    assert source_count(store) == 1
    assert api.get(f"/api/v1/sources/{source['id']}").json()["port"] == source["port"]


def test_field_names_are_quoted_on_one_line_whatever_they_hold(
    api: TestClient, source: dict[str, Any], subtests: pytest.Subtests
) -> None:
    """A validation error names the field at fault: a field named with a line break, a NUL, a
    lone surrogate or a megabyte of text still gives one short line."""
    path = f"/api/v1/sources/{source['id']}"
    for key in ("a\nb", "a\rb", NUL, SURROGATE, "\u2028", "k" * 100_000):
        with subtests.test(key=key[:10]):
            detail = refused(raw_json(api, "PATCH", path, {key: "x"}), 422)
            assert len(detail) < 1000
            detail = refused(raw_json(api, "PATCH", path, {"options": {key: "x"}}), 422)
            assert len(detail) < 1000


# --- the web -------------------------------------------------------------------------------


@pytest.fixture
def web(client: TestClient, token: str) -> TestClient:
    """The app's client, logged in to the web UI (its API token header is not used there)."""
    client.follow_redirects = False
    csrf = csrf_of(client, "/login")
    response = client.post("/login", data={"token": token, "next": "/", "csrf": csrf})
    assert response.status_code == 303
    return client


def test_nul_in_a_source_form_is_refused_and_nothing_stored(
    web: TestClient,
    api: TestClient,
    source: dict[str, Any],
    source_db: SourceDb,
    store: Any,
    subtests: pytest.Subtests,
) -> None:
    edit = f"/sources/{source['id']}/edit"
    for page in ("/sources/new", edit):
        for action in ("save", "test"):
            for field in (*SOURCE_TEXT_FIELDS, "port", "sslmode"):
                with subtests.test(page=page, action=action, field=field):
                    form = source_form(source_db, action=action, **{field: f"a{NUL}b"})
                    page_refused(web.post(page, data={**form, "csrf": csrf_of(web, page)}))
    assert source_count(store) == 1
    assert api.get(f"/api/v1/sources/{source['id']}").json() == {
        **source,
        "table_count": 1,
    }


def test_bad_values_in_web_pages_are_4xx(
    web: TestClient, api: TestClient, source: dict[str, Any], subtests: pytest.Subtests
) -> None:
    table = table_id(api, source)
    paths = [
        f"/sources/{TOO_BIG}",
        f"/sources/{TOO_BIG}/edit",
        f"/sources/{TOO_BIG}/doctor",
        f"/tables/{TOO_BIG}",
        f"/tables/{HUGE}",
        f"/sources/{source['id']}?q=%00",
        f"/sources/{source['id']}?q=items%00",
        f"/sources/{source['id']}/doctor?table=%00",
        f"/sources/{source['id']}?page=99999999999999999999999",
        f"/tables/{table}?v=99999999999999999999999",
        f"/tables/{table}?v=-1",
    ]
    for path in paths:
        with subtests.test(path=path):
            page_refused(web.get(path))
