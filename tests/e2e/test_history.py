"""A long history in a real Chromium: a table of 60 versions, its folded timeline, the version
selector and Compare moving together, arrow keys that do not navigate, the label of a table
without a primary key, and a captured version's long DDL statement on a phone."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest

from rosetta import services
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from tests.conftest import SourceDb
from tests.e2e.conftest import LiveServer, Tab
from tests.e2e.test_browser import TIMEOUT, expect, log_in
from tests.integration.web_helpers import table_id

pytestmark = pytest.mark.browser

VERSIONS = 60
KEEP = 10  # the versions the timeline lists before its fold
IN_ITS_BOX = """() => {
  const item = document.querySelector("details.timeline-older li.current");
  const a = item.getBoundingClientRect();
  const b = item.closest(".timeline-scroll").getBoundingClientRect();
  return a.top >= b.top && a.bottom <= b.bottom;
}"""


@pytest.fixture
def long_history(source_db: SourceDb, register: Any, sync: Any, store: Any) -> dict[str, int]:
    """``items`` with 60 versions (each adds a column c2..c60), and ``keyless`` with no key."""
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source_db.sql("CREATE TABLE items (id int PRIMARY KEY)")
    source_db.sql("CREATE TABLE keyless (at timestamptz, note text)")
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLES IN SCHEMA public")
    source = register()
    sync(source)
    for n in range(2, VERSIONS + 1):
        source_db.sql(f"ALTER TABLE items ADD COLUMN c{n} int")
        sync(source)
    return {"items": table_id(store, "items"), "keyless": table_id(store, "keyless")}


def test_a_long_history_folds_and_the_selector_moves_compare(
    live_server: LiveServer, tab: Tab, long_history: dict[str, int]
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{live_server.url}/tables/{long_history['items']}")
    log_in(page, live_server.token)
    expect(page.locator("h1")).to_have_text("items")

    # The latest 10 versions are listed; the 50 older ones are folded under one line.
    recent = page.locator(".side-col > .card > ol.timeline > li")
    expect(recent).to_have_count(KEEP)
    expect(recent.first.locator("a.vtag")).to_have_text(f"v{VERSIONS}")
    expect(recent.last.locator("a.vtag")).to_have_text(f"v{VERSIONS - KEEP + 1}")
    fold = page.locator("details.timeline-older")
    expect(fold.locator("summary")).to_have_text(f"Show {VERSIONS - KEEP} older versions")
    expect(fold).not_to_have_attribute("open", "")
    expect(fold.locator("li").first).to_be_hidden()
    timeline = page.locator(".side-col > .card").first.bounding_box()
    assert timeline["height"] < 1300, f"the timeline is {timeline['height']} px tall"
    # The diff sits above the columns, in the first screen, and compares the latest pair.
    diff_top = page.locator("#diff").bounding_box()["y"]
    assert diff_top < 800 and diff_top < page.locator("#columns").bounding_box()["y"]
    expect(page.locator("#diff h2")).to_have_text(f"Compare v{VERSIONS - 1} → v{VERSIONS}")

    # Choosing v3 shows v3's columns and compares v2 → v3.
    page.select_option("#pick-v", "3")
    page.wait_for_url(re.compile(r"[?&]v=3\b"))
    expect(page.locator("table.columns tbody tr .col-name")).to_have_text(["id", "c2", "c3"])
    expect(page.locator("#diff h2")).to_have_text("Compare v2 → v3")
    rows = page.locator("table.diff tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-change", "NEW COLUMN")
    expect(rows.locator(".col-name")).to_have_text("c3")
    # v3 is in the fold: it is opened to show it, marked current.
    expect(fold).to_have_attribute("open", "")
    expect(fold.locator("li.current a.vtag")).to_have_text("v3")

    # Arrow keys on the selector move the choice without loading a page; Enter goes there.
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    shown_url = page.url
    page.focus("#pick-v")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#pick-v")).to_have_value("1")
    page.wait_for_timeout(800)
    assert navigations == [] and page.url == shown_url
    expect(page.locator("#diff h2")).to_have_text("Compare v2 → v3")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"[?&]v=2\b"))
    expect(page.locator("#diff h2")).to_have_text("Compare v1 → v2")
    expect(page.locator("table.columns tbody tr")).to_have_count(2)

    # An explicit pair still wins over the version shown.
    page.select_option("#diff-from", "0")
    page.select_option("#diff-to", "5")
    page.click("button:has-text('Compare')")
    page.wait_for_url(re.compile(r"to=5\b"))
    expect(page.locator("#diff h2")).to_have_text("Compare ∅ → v5")
    expect(page.locator("table.diff tbody tr")).to_have_count(5)
    assert tab.console_errors == []


def test_a_table_without_a_primary_key_says_updates_cannot_replicate(
    live_server: LiveServer, tab: Tab, long_history: dict[str, int]
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{live_server.url}/tables/{long_history['keyless']}")
    log_in(page, live_server.token)
    subtitle = page.locator(".page-head .subtitle")
    expect(subtitle).to_contain_text(
        "replica identity default — no primary key: UPDATE/DELETE cannot replicate"
    )
    expect(subtitle).not_to_contain_text("(primary key)")
    page.goto(f"{live_server.url}/tables/{long_history['items']}")
    expect(page.locator(".page-head .subtitle")).to_contain_text(
        "replica identity default (primary key: id)"
    )


def test_the_long_history_page_does_not_scroll_sideways(
    live_server: LiveServer, tab: Tab, long_history: dict[str, int]
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{live_server.url}/tables/{long_history['items']}?v=3")
    log_in(page, live_server.token)
    for width in (390, 1280, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        page.reload()
        expect(page.locator("h1")).to_have_text("items")
        # v3 is folded: the fold is open, in a box of its own that shows v3.
        current = page.locator("details.timeline-older li.current")
        expect(current).to_be_visible()
        box = page.locator("details.timeline-older .timeline-scroll").bounding_box()
        assert box["height"] <= 440, box
        assert page.evaluate(IN_ITS_BOX), "v3 is scrolled out of the fold's box"
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the page scrolls {wide} px sideways at {width} px"


def test_diagnose_shows_the_failure_first_and_folds_what_passes(
    live_server: LiveServer, tab: Tab, long_history: dict[str, int]
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{live_server.url}/tables/{long_history['keyless']}")
    log_in(page, live_server.token)
    page.click("a:has-text('shop') >> nth=0")
    page.click("text=Diagnose")
    page.wait_for_load_state()
    for width in (390, 1280, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        page.reload()
        diagnose_at(page, width)


def diagnose_at(page: Any, width: int) -> None:
    # keyless fails: its check is the first one on the page, and it is in view.
    first = page.locator("tr.check").first
    expect(first).to_have_attribute("data-status", "FAIL")
    expect(first).to_contain_text("replica identity")
    assert first.bounding_box()["y"] < 800
    # items passes: one closed line naming it; no passing check is visible until asked.
    folded = page.locator("details.passing-tables")
    expect(folded.locator("summary")).to_contain_text("1 table passes every check")
    expect(folded.locator("li.passing-table a")).to_be_hidden()
    expect(page.locator("tr.check-pass").first).to_be_hidden()
    folded.locator("summary").click()
    expect(folded.locator("li.passing-table a")).to_have_text("items")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"Diagnose scrolls {wide} px sideways at {width} px"


LONG_DEFAULT = "x" * 600  # one word, no break opportunity: the hardest text to fit
LONG_STATEMENT = (
    "ALTER TABLE items ADD COLUMN delivery_instructions_for_the_courier_of_the_order text "
    f"DEFAULT '{LONG_DEFAULT}', ADD COLUMN c_{'y' * 50} int"
)
LONG_APPLICATION = "deploy-" + "z" * 56  # application_name keeps 63 characters


@pytest.fixture
def captured_history(
    source_db: SourceDb, register: Any, sync: Any, store: Any, box: SecretBox
) -> int:
    """``items`` at v1 by polling, then v2 captured from a real ALTER TABLE with a long statement,
    run by an application with a long name; returns the table's id."""
    source_db.sql("CREATE TABLE items (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE items")
    source = register()
    sync(source)
    services.install_capture(store, box, SourceLimits(), source)
    store.commit()
    with psycopg.connect(source_db.url, autocommit=True, application_name=LONG_APPLICATION) as conn:
        conn.execute(LONG_STATEMENT.encode())  # the test's own DDL
    sync(source)
    return table_id(store, "items")


def test_a_long_captured_statement_does_not_scroll_sideways_on_a_phone(
    live_server: LiveServer, tab: Tab, captured_history: int
) -> None:
    page = tab.page
    page.set_default_timeout(TIMEOUT)
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"{live_server.url}/tables/{captured_history}")
    log_in(page, live_server.token)
    expect(page.locator("h1")).to_have_text("items")
    version = page.locator('.tl-prov[data-detected-by="capture"]')
    expect(version).to_have_count(1)
    expect(version).to_contain_text("found by capture")

    ddl = page.locator("details.tl-ddl")
    expect(ddl).to_have_count(1)
    expect(ddl).not_to_have_attribute("open", "")
    ddl.locator("summary").click()
    expect(ddl).to_have_attribute("open", "")
    statement = ddl.locator("pre.ddl-statement")
    expect(statement).to_be_visible()
    expect(statement).to_have_text(LONG_STATEMENT)
    expect(ddl).to_contain_text(LONG_APPLICATION)

    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls {wide} px sideways at 390 px with the statement open"
    # The statement wraps inside its box, within the viewport; it does not scroll sideways.
    box = statement.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    overflow = statement.evaluate("el => el.scrollWidth - el.clientWidth")
    assert overflow <= 0, f"the statement scrolls {overflow} px sideways in its box"
    assert tab.console_errors == []
