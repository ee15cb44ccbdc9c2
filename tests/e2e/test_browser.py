"""The web UI end to end in a real headless Chromium: log in, add a source, watch a table's
schema get tracked and change, and see hostile names shown as text.

Takes screenshots (sources.png, source.png, table.png, doctor.png) at 1280x800 into the test's
tmp_path; ``ROSETTA_SCREENSHOTS=docs/screenshots scripts/test tests/e2e/test_browser.py`` writes
them into docs/screenshots/ instead, to refresh the README's images.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SourceDb
from tests.e2e.conftest import LiveServer, Tab

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"
TIMEOUT = 15_000


def expect(page: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT)
    return playwright_expect(page)


def log_in(page: Any, token: str) -> Any:
    """Fill the login form and submit it; returns the POST /login response."""
    page.fill("#token", token)
    with page.expect_response(
        lambda r: r.url.split("?")[0].endswith("/login") and r.request.method == "POST"
    ) as answer:
        page.click("button:has-text('Log in')")
    page.wait_for_load_state()
    return answer.value


def refresh(page: Any) -> None:
    page.click("button:has-text('Refresh')")
    page.wait_for_load_state()
    expect(page.locator(".summary")).to_be_visible()


def test_the_ui_end_to_end(
    live_server: LiveServer, tab: Tab, source_db: SourceDb, screenshots: Path
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    server = source_db.server
    source_db.sql("CREATE PUBLICATION rosetta_publication")

    # Every page needs a login; a wrong token is refused.
    page.goto(live_server.url + "/")
    assert page.url.endswith("/login")
    refused = log_in(page, "rst_not-a-real-token")
    assert refused.status == 401
    expect(page.locator(".flash-error")).to_have_text("Invalid token")
    assert page.url.split("?")[0].endswith("/login")
    accepted = log_in(page, live_server.token)
    assert accepted.status == 303
    expect(page.locator("h1")).to_have_text("Sources")
    expect(page.locator(".card.empty")).to_contain_text("No sources yet")

    # Add the source in the UI; Test connection first (it keeps the form as typed).
    page.click("text=+ Add source")
    page.fill("#f-name", "shop")
    page.fill("#f-host", "127.0.0.1")
    page.fill("#f-port", str(server.port))
    page.fill("#f-database", source_db.name)
    page.fill("#f-username", server.superuser)
    page.fill("#f-password", server.password)
    expect(page.locator("#f-publication")).to_have_value("rosetta_publication")
    page.click("button:has-text('Test connection')")
    result = page.locator("[data-test-result]")
    expect(result).to_contain_text("Connected to 127.0.0.1")
    expect(result).to_contain_text("publication 'rosetta_publication' exists")
    expect(page.locator("#f-password")).to_have_value(server.password)
    page.click("button:has-text('Add source')")
    page.wait_for_load_state()
    expect(page.locator(".flash-ok")).to_contain_text("Source shop added.")
    expect(page.locator("h1")).to_have_text("shop")
    source_url = page.url
    assert server.password not in page.content()

    # A table joins the publication by SQL; Refresh tracks it at version 1 with all its columns.
    source_db.sql(
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL,"
        " status varchar(20) NOT NULL DEFAULT 'new', total numeric(12,2),"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL)")
    source_db.sql("CREATE SCHEMA billing")
    source_db.sql("CREATE TABLE billing.invoices (id bigint PRIMARY KEY, amount numeric)")
    source_db.sql(f'CREATE TABLE "{HOSTILE}" (id int PRIMARY KEY, "<b>x</b>" text)')
    source_db.sql(
        "ALTER PUBLICATION rosetta_publication ADD TABLE orders, customers, billing.invoices,"
        f' "{HOSTILE}"'
    )
    source_db.sql("CREATE TABLE products (id bigint PRIMARY KEY, sku text UNIQUE)")
    refresh(page)
    expect(page.locator(".summary .count-added")).to_contain_text("4 added")
    row = page.locator("table.tables tbody tr", has=page.locator("a.table-name", has_text="orders"))
    expect(row.locator("a.vtag")).to_have_text("v1")
    expect(row).to_contain_text("tracked")

    # The hostile table name is text: no <img> element anywhere, no dialog (the fixture checks).
    hostile = page.locator("a.table-name", has_text="onerror")
    expect(hostile).to_have_text(HOSTILE)
    assert page.locator("main img").count() == 0
    assert HOSTILE in page.locator(".summary").inner_text()

    # The available tables tab lists what the publication does not carry.
    page.click("nav.tabs >> text=Available tables")
    expect(page.locator("table.available")).to_contain_text("products")
    page.click("nav.tabs >> text=Tables")

    row.locator("a.table-name").click()
    page.wait_for_load_state()
    columns = page.locator("table.columns tbody tr .col-name")
    expect(columns).to_have_text(["id", "customer_id", "status", "total", "created_at"])
    expect(page.locator("table.columns")).to_contain_text("character varying(20)")
    expect(page.locator(".timeline li")).to_have_count(1)
    expect(page.locator(".timeline")).to_contain_text("INITIAL_LOAD")
    sep = r"\s*\u203a\s*"  # the breadcrumb separator
    expect(page.locator("nav.crumbs")).to_have_text(re.compile(f"Sources{sep}shop{sep}orders"))
    table_url = page.url

    # A new column: Refresh makes version 2, and its diff highlights the column.
    source_db.sql("ALTER TABLE orders ADD COLUMN shipped_at timestamptz")
    page.goto(source_url)
    refresh(page)
    expect(page.locator(".summary")).to_contain_text("orders → v2 (NEW COLUMN)")
    expect(row.locator("a.vtag")).to_have_text("v2")
    row.locator("a.table-name").click()
    page.wait_for_load_state()
    expect(page.locator(".timeline li")).to_have_count(2)
    added = page.locator("table.diff tr[data-change='NEW COLUMN']")
    expect(added).to_have_count(1)
    expect(added).to_contain_text("shipped_at")
    expect(added).to_contain_text("timestamp with time zone")
    expect(added).to_have_class(re.compile(r"\bchg-add\b"))
    background = added.locator("td").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"), background
    in_columns = page.locator("table.columns tr.chg-add")
    expect(in_columns).to_contain_text("shipped_at")

    # Going back to version 1 shows its columns; comparing two versions with the selects.
    page.select_option("#pick-v", "1")
    page.wait_for_load_state()
    expect(columns).to_have_count(5)
    page.select_option("#diff-from", "0")
    page.select_option("#diff-to", "2")
    page.click("button:has-text('Compare')")
    page.wait_for_load_state()
    expect(page.locator("table.diff tr[data-change='NEW COLUMN']")).to_have_count(6)

    # More changes at once: version 3 renames, retypes, tightens and drops columns.
    source_db.sql("ALTER TABLE orders RENAME COLUMN status TO state")
    source_db.sql("ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)")
    source_db.sql("ALTER TABLE orders ALTER COLUMN total SET NOT NULL")
    source_db.sql("ALTER TABLE orders DROP COLUMN customer_id")
    source_db.sql("ALTER TABLE customers ADD COLUMN name text")
    page.goto(source_url)
    refresh(page)
    expect(page.locator(".summary")).to_contain_text("orders → v3 (MULTIPLE CHANGES)")
    page.screenshot(path=str(screenshots / "source.png"))

    page.goto(table_url)
    diff = page.locator("table.diff tbody tr")
    expect(diff).to_have_count(4)
    for change, css in (
        ("RENAME COLUMN", "chg-rename"),
        ("CHANGES TYPE", "chg-type"),
        ("CHANGES NULLABLE", "chg-nullable"),
        ("DROP COLUMN", "chg-drop"),
    ):
        expect(page.locator(f"table.diff tr[data-change='{change}']")).to_have_class(
            re.compile(rf"\b{css}\b")
        )
    expect(page.locator("table.columns tr.chg-drop")).to_contain_text("customer_id")
    page.screenshot(path=str(screenshots / "table.png"))

    page.goto(live_server.url + "/")
    expect(page.locator("table.sources")).to_contain_text("shop")
    page.screenshot(path=str(screenshots / "sources.png"))

    # Diagnose: the troubleshooting checks, each with its fix.
    page.goto(source_url)
    page.click("text=Diagnose")
    page.wait_for_load_state()
    expect(page.locator("h1")).to_contain_text("Diagnose")
    expect(page.locator("main")).to_contain_text("wal_level = logical")
    page.screenshot(path=str(screenshots / "doctor.png"), full_page=True)

    # The hostile name on its own table page, too.
    page.goto(source_url)
    hostile.click()
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text(HOSTILE)
    assert page.locator("main img, main b").count() == 0

    # Log out: the pages need a login again.
    page.click("button:has-text('Log out')")
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    page.goto(source_url)
    assert "/login?next=" in page.url
    assert server.password not in page.content()
    assert tab.dialogs == [], "a hostile name ran as HTML"
    unexpected = [e for e in tab.console_errors if "401 (Unauthorized)" not in e]  # wrong token
    assert unexpected == [], "console errors (a CSP violation, a script error...)"
