"""The web UI over a real store and a real source: login, CSRF, escaping, the pages themselves."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from rosetta import tokens
from tests.conftest import Recorder, SourceDb
from tests.integration.web_helpers import (
    HOSTILE,
    csrf_of,
    log_in,
    post,
    source_form,
    table_id,
    tracked_source,
)

# --- login, session, CSRF ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/sources/new", "/sources/1", "/tables/1?v=2"])
def test_every_page_requires_login(web_client: TestClient, path: str) -> None:
    response = web_client.get(path)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login"
    if path != "/":
        assert parse_qs(location.query)["next"] == [path]


def test_a_post_without_a_session_goes_to_login(web_client: TestClient) -> None:
    response = web_client.post("/sources/1/refresh", data={"csrf": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_login_sets_a_signed_httponly_lax_expiring_cookie(
    web_client: TestClient, web_token: str
) -> None:
    response = log_in(web_client, web_token, "/sources/new")
    assert response.status_code == 303
    assert response.headers["location"] == "/sources/new"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rosetta_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie
    assert web_token not in cookie
    assert web_client.get("/sources/new").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_login_only_goes_back_to_a_relative_path(
    web_client: TestClient, web_token: str, target: str
) -> None:
    response = log_in(web_client, web_token, target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_a_wrong_token_is_refused_with_401_and_shows_nothing(
    web_client: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    tracked_source(source_db, register, sync, "CREATE TABLE secret_orders (id int PRIMARY KEY)")
    for wrong in ("rst_wrong", "not-even-a-token", ""):
        response = log_in(web_client, wrong)
        assert response.status_code == 401
        assert "Invalid token" in response.text
        assert "secret_orders" not in response.text and "shop" not in response.text
        assert "rosetta_session=" not in response.headers.get("set-cookie", "")
    assert web_client.get("/").status_code == 303


def test_a_forged_session_cookie_is_ignored(web_client: TestClient) -> None:
    web_client.cookies.set("rosetta_session", "eyJzaWQiOiJ4In0.forged.sig")
    assert web_client.get("/").status_code == 303


def test_post_without_or_with_a_wrong_csrf_token_is_403(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync)
    path = f"/sources/{source.id}/refresh"
    assert web.post(path).status_code == 403
    assert web.post(path, data={"csrf": "0" * 64}).status_code == 403
    assert web.post("/logout").status_code == 403
    assert web.post("/sources/new", data={"name": "x", "host": "h"}).status_code == 403
    ok = post(web, path, page=f"/sources/{source.id}")
    assert ok.status_code == 303


def test_the_login_form_needs_its_csrf_token_too(web_client: TestClient, web_token: str) -> None:
    web_client.get("/login")
    assert web_client.post("/login", data={"token": web_token}).status_code == 403


def test_logout_ends_the_session(web: TestClient) -> None:
    response = post(web, "/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert web.get("/").status_code == 303


def test_a_revoked_token_ends_its_sessions(web: TestClient, store: Any) -> None:
    assert web.get("/").status_code == 200
    tokens.revoke_token(store, "web-tester")
    response = web.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_pages_send_security_headers(web: TestClient) -> None:
    response = web.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


# --- sources ----------------------------------------------------------------------------------


def test_password_is_never_in_any_page(
    web: TestClient, recorder: Recorder, source_db: SourceDb, store: Any
) -> None:
    password = source_db.server.password
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLE orders")

    tested = web.post(
        "/sources/new",
        data={**source_form(source_db, action="test"), "csrf": csrf_of(web, "/sources/new")},
        headers={"X-Rosetta-Fetch": "1"},
    )
    assert tested.status_code == 200 and tested.json()["ok"] is True
    fallback = post(web, "/sources/new", source_form(source_db, action="test"), "/sources/new")
    assert fallback.status_code == 200 and "Connected to" in fallback.text
    created = post(web, "/sources/new", source_form(source_db), "/sources/new")
    assert created.status_code == 303
    source_path = created.headers["location"]
    page = web.get(source_path)
    assert "Source shop added." in page.text and "orders" in page.text
    tid = table_id(store, "orders")
    for path in (
        "/",
        source_path,
        f"{source_path}/edit",
        f"{source_path}/delete",
        f"{source_path}?tab=available",
        f"/tables/{tid}",
    ):
        assert web.get(path).status_code == 200, path
    kept = post(
        web, f"{source_path}/edit", source_form(source_db, password=""), f"{source_path}/edit"
    )
    assert kept.status_code == 303
    assert web.get(source_path).text.count("connected") >= 1
    stored = store.execute("SELECT password_encrypted FROM sources").fetchone()[0]
    store.rollback()
    assert stored and password not in stored
    recorder.assert_absent(password)


def test_source_form_errors_stay_in_the_form(web: TestClient, source_db: SourceDb) -> None:
    bad = post(web, "/sources/new", source_form(source_db, name="bad name!"), "/sources/new")
    assert bad.status_code == 422
    assert "invalid source name" in bad.text and 'value="127.0.0.1"' in bad.text
    assert source_db.server.password not in bad.text
    port = post(web, "/sources/new", source_form(source_db, port="abc"), "/sources/new")
    assert port.status_code == 422 and "the port must be a number" in port.text
    assert post(web, "/sources/new", source_form(source_db), "/sources/new").status_code == 303
    again = post(web, "/sources/new", source_form(source_db), "/sources/new")
    assert again.status_code == 409 and "already exists" in again.text


def test_a_stored_password_is_only_sent_to_its_own_server(
    web: TestClient, source_db: SourceDb, register: Any
) -> None:
    source = register()
    path = f"/sources/{source.id}/edit"
    moved = post(web, path, source_form(source_db, host="10.1.2.3", password=""), path)
    assert moved.status_code == 422 and "enter the password again" in moved.text
    test = post(
        web, path, source_form(source_db, host="10.1.2.3", password="", action="test"), path
    )
    assert test.status_code == 422
    same = post(web, path, source_form(source_db, password="", action="test"), path)
    assert same.status_code == 200 and "Connected to" in same.text


def test_test_connection_reports_a_failure_without_saving(
    web: TestClient, source_db: SourceDb, store: Any
) -> None:
    form = source_form(source_db, password="wrong-password", action="test")
    response = web.post(
        "/sources/new",
        data={**form, "csrf": csrf_of(web, "/sources/new")},
        headers={"X-Rosetta-Fetch": "1"},
    )
    result = response.json()
    assert result["ok"] is False and "password authentication failed" in result["lines"][0]
    assert store.execute("SELECT count(*) FROM sources").fetchone() == (0,)
    store.rollback()


def test_delete_source_asks_then_deletes(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE t (id int PRIMARY KEY)")
    confirm = web.get(f"/sources/{source.id}/delete")
    assert "Delete source shop?" in confirm.text
    gone = post(web, f"/sources/{source.id}/delete", page=f"/sources/{source.id}/delete")
    assert gone.status_code == 303 and gone.headers["location"] == "/"
    assert "No sources yet" in web.get("/").text
    assert web.get(f"/sources/{source.id}").status_code == 404


def test_unknown_source_and_table_are_404(web: TestClient) -> None:
    assert web.get("/sources/987654").status_code == 404
    assert web.get("/tables/987654").status_code == 404


# --- the source page --------------------------------------------------------------------------


def test_hostile_names_are_shown_as_text(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = register()
    source_db.sql(f'CREATE TABLE "{HOSTILE}" ("<b>bold</b>" int PRIMARY KEY, id int)')
    source_db.sql(f'ALTER PUBLICATION rosetta_publication ADD TABLE "{HOSTILE}"')
    refreshed = post(web, f"/sources/{source.id}/refresh", page=f"/sources/{source.id}")
    assert refreshed.status_code == 303
    tid = table_id(store, HOSTILE)
    source_db.sql(f'ALTER TABLE "{HOSTILE}" ADD COLUMN "<script>x()</script>" text')
    sync(source)
    pages = [
        web.get(f"/sources/{source.id}"),  # with the flash summary naming the table
        web.get(f"/sources/{source.id}?q=%3Cimg"),
        web.get(f"/tables/{tid}"),
        web.get(f"/tables/{tid}?from=0&to=2"),
        web.get(f"/sources/{source.id}/tables/{tid}/remove"),
        web.get("/"),
    ]
    assert "Sync of shop" in pages[0].text
    for page in pages:
        assert page.status_code == 200
        assert "<img src=x" not in page.text
        assert "<b>bold" not in page.text and "<script>x()" not in page.text
    for page in pages[:5]:
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert "&lt;script&gt;x()&lt;/script&gt;" in pages[2].text


def test_refresh_shows_the_sync_summary(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE a (id int PRIMARY KEY)")
    source_db.sql("CREATE TABLE b (id int PRIMARY KEY, note text)")
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLE b")
    source_db.sql("ALTER TABLE a ADD COLUMN extra text")
    response = post(web, f"/sources/{source.id}/refresh", page=f"/sources/{source.id}")
    page = web.get(response.headers["location"])
    summary = page.text.split('aria-label="Sync summary"')[1].split("</section>")[0]
    assert re.search(r"<b>1</b> added", summary) and re.search(r"<b>1</b> changed", summary)
    assert "<code>b</code>" in summary and "a → v2 (NEW COLUMN)" in summary
    assert re.search(r"<b>0</b> failed", summary) and " ms" in summary
    assert "Sync of shop" not in web.get(f"/sources/{source.id}").text  # shown once


def test_tables_tab_filters_and_pages_10000_tables_fast(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE real_one (id int)")
    store.execute(
        """
        INSERT INTO table_metadata_list (source_id, schema_name, table_name, schema_table,
                                         status, has_select_privilege)
        SELECT %(id)s, 'bulk', 'table_' || lpad(n::text, 5, '0'), '{}'::jsonb,
               CASE WHEN n %% 1000 = 0 THEN 'error' ELSE 'tracked' END, n %% 500 <> 7
        FROM generate_series(1, 10000) AS n
        """,
        {"id": source.id},
    )
    store.commit()
    path = f"/sources/{source.id}"
    started = time.perf_counter()
    first = web.get(path)
    last = web.get(f"{path}?page=201")
    filtered = web.get(f"{path}?q=table_0999&status=")
    errors = web.get(f"{path}?status=error")
    no_select = web.get(f"{path}?status=no_select&page=2")
    elapsed = time.perf_counter() - started
    assert (
        "1\N{EN DASH}50 of 10,001 tables" in first.text and "bulk.</span>table_00001" in first.text
    )
    assert "Page 201 of 201" in last.text and "real_one" in last.text
    assert "1\N{EN DASH}10 of 10 tables" in filtered.text and "table_09990" in filtered.text
    assert "1\N{EN DASH}10 of 10 tables" in errors.text and "table_10000" in errors.text
    assert "no SELECT grant" in no_select.text and "Page 2 of 1" not in no_select.text
    assert elapsed < 5, f"five pages over 10,000 tables took {elapsed:.1f}s"


def test_publication_actions_are_followed_by_a_sync(
    web: TestClient, source_db: SourceDb, register: Any, store: Any
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL)")
    source_db.sql("CREATE TABLE audit (at timestamptz)")
    source = register(slot="rosetta_slot")
    page = f"/sources/{source.id}"
    assert "Create publication" in web.get(page).text
    assert post(web, f"{page}/publication/create", page=page).status_code == 303
    assert "Publication created" in web.get(page).text

    available = web.get(f"{page}?tab=available")
    assert "customers" in available.text and "audit" in available.text
    value = '["public", "customers"]'
    added = post(web, f"{page}/publication/add", {"tables": value}, f"{page}?tab=available")
    assert added.status_code == 303
    shown = web.get(f"{page}")
    assert "Added customers to the publication." in shown.text
    assert 'href="/tables/' in shown.text and "customers" in shown.text
    assert "customers" not in web.get(f"{page}?tab=available").text.split("<tbody>")[-1]

    tid = table_id(store, "customers")
    confirm = web.get(f"{page}/tables/{tid}/remove")
    assert "Remove customers from publication rosetta_publication?" in confirm.text
    removed = post(web, f"{page}/tables/{tid}/remove", page=f"{page}/tables/{tid}/remove")
    assert removed.status_code == 303
    assert "removed" in web.get(f"{page}?status=removed").text

    assert "Create slot" in web.get(page).text
    post(web, f"{page}/slot/create", page=page)
    assert "Replication slot created." in web.get(page).text
    assert "Drop slot" in web.get(page).text
    assert "Drop replication slot rosetta_slot?" in web.get(f"{page}/slot/drop").text
    post(web, f"{page}/slot/drop", page=f"{page}/slot/drop")
    assert "Replication slot dropped." in web.get(page).text

    assert "Drop publication rosetta_publication?" in web.get(f"{page}/publication/drop").text
    post(web, f"{page}/publication/drop", page=f"{page}/publication/drop")
    after = web.get(page)
    assert "Publication dropped." in after.text and "publication missing" in after.text


def test_an_unreachable_source_still_shows_its_page(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE t (id int PRIMARY KEY)")
    store.execute("UPDATE sources SET port = 1 WHERE id = %s", (source.id,))
    store.commit()
    page = web.get(f"/sources/{source.id}")
    assert page.status_code == 200 and "unreachable" in page.text and "t</a>" in page.text
    refreshed = post(web, f"/sources/{source.id}/refresh", page=f"/sources/{source.id}")
    shown = web.get(refreshed.headers["location"]).text
    assert shown.count("cannot connect") == 1  # in the sync summary, not again below it
    assert "cannot be reached" in web.get(f"/sources/{source.id}?tab=available").text


# --- the table page ---------------------------------------------------------------------------


def test_table_page_shows_columns_versions_and_diff(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(
        source_db,
        register,
        sync,
        "CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20) NOT NULL DEFAULT 'new',"
        " total numeric(10,2))",
    )
    tid = table_id(store, "orders")
    v1 = web.get(f"/tables/{tid}")
    assert v1.status_code == 200
    for text in (
        "orders",
        "character varying(20)",
        "numeric(10,2)",
        "NOT NULL",
        "PK",
        "INITIAL_LOAD",
        "&#39;new&#39;::character varying",
    ):
        assert text in v1.text, text
    assert v1.text.index(">id<") < v1.text.index(">status<") < v1.text.index(">total<")
    assert 'href="/">Sources</a>' in v1.text and f'href="/sources/{source.id}">shop</a>' in v1.text

    source_db.sql("ALTER TABLE orders ADD COLUMN shipped_at timestamptz")
    source_db.sql("ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2)")
    sync(source)
    v2 = web.get(f"/tables/{tid}")
    assert "v2" in v2.text and "MULTIPLE CHANGES" in v2.text
    diff = v2.text.split('id="diff"')[1]
    assert 'data-change="NEW COLUMN"' in diff and "shipped_at" in diff
    assert 'class="chg chg-add"' in diff and 'class="chg chg-type"' in diff
    assert "numeric(10,2)" in diff and "numeric(12,2)" in diff
    # A nullable column and a widened numeric: nothing a consumer breaks on.
    assert 'class="breaking"' not in diff
    columns = v2.text.split('id="columns"')[1]
    assert 'class="chg chg-add"' in columns and "shipped_at" in columns

    old = web.get(f"/tables/{tid}?v=1&from=0&to=1")
    columns_v1 = old.text.split('id="columns"')[1]
    assert "shipped_at" not in columns_v1 and "numeric(10,2)" in columns_v1
    assert old.text.split('id="diff"')[1].count('data-change="NEW COLUMN"') == 3

    source_db.sql("ALTER TABLE orders DROP COLUMN status")
    sync(source)
    v3 = web.get(f"/tables/{tid}?from=1&to=3")
    diff13 = v3.text.split('id="diff"')[1]
    assert 'class="chg chg-drop"' in diff13 and "status" in diff13
    same = web.get(f"/tables/{tid}?from=2&to=2")
    assert "Pick two different versions" in same.text


def test_an_unknown_page_is_an_html_404_and_an_unknown_api_path_json(web: TestClient) -> None:
    page = web.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Error 404" in page.text and "Back to Rosetta" in page.text
    api = web.get("/api/v1/no-such-thing", headers={"Authorization": "Bearer x"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_replica_identity_is_labelled_from_the_key_columns(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    tracked_source(
        source_db,
        register,
        sync,
        "CREATE TABLE keyed (id bigint PRIMARY KEY, note text); CREATE TABLE loose (note text)",
    )
    keyed = web.get(f"/tables/{table_id(store, 'keyed')}").text
    assert "replica identity default (primary key: id)" in keyed
    loose = web.get(f"/tables/{table_id(store, 'loose')}").text
    assert "default — no primary key: UPDATE/DELETE cannot replicate" in loose
    assert "default (primary key)" not in loose


def test_a_version_that_does_not_exist_is_a_404_saying_so(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    tracked_source(source_db, register, sync, "CREATE TABLE orders (id bigint PRIMARY KEY)")
    page = web.get(f"/tables/{table_id(store, 'orders')}?v=99")
    assert page.status_code == 404
    assert "has no version 99" in page.text
    assert web.get(f"/tables/{table_id(store, 'orders')}?v=1").status_code == 200


def test_the_tables_tab_count_agrees_with_its_pager(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(
        source_db, register, sync, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int)"
    )
    source_db.sql("DROP TABLE b")
    sync(source)
    page = web.get(f"/sources/{source.id}").text
    assert "1 table tracked, 1 removed" in page
    assert re.search(r'Tables <span class="tab-count"[^>]*>2</span>', page)
    assert "of 2 tables" in page
