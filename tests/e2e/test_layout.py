"""Every page at a phone's width (390 px), a laptop's (1280) and a wide screen's (1920) in a real
Chromium: nothing scrolls sideways, Log out stays on the screen, and axe-core (the npm package,
installed by ``scripts/bootstrap --dev``) finds no serious or critical accessibility violation.

The data is made once: a source with a table of long names and types, a table with three
versions, a webhook endpoint with deliveries (one delivered, one refused), and a second source
that cannot be reached.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from rosetta import sources, webhooks
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from rosetta.store import repository
from tests.conftest import Receiver, SourceDb
from tests.e2e.conftest import REPOSITORY, LiveServer
from tests.e2e.test_browser import TIMEOUT, expect, log_in

pytestmark = pytest.mark.browser

AXE = REPOSITORY / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (390, 1280, 1920)
AXE_WIDTH = 390  # the width where tables scroll in their boxes
SCHEMA = "reporting_warehouse_staging_area"
LONG_TABLE = "customer_subscription_billing_adjustment_events_archive_2024"
LONG_COLUMN = "customer_lifetime_value_in_minor_currency_units_rounded_down"
LONG_DOMAIN = "monetary_amount_with_four_decimal_places_never_negative"
# Long enough for <wbr> after its "_" and ".": the markup stays text all the same.
HOSTILE = "<b>bold</b>_<img src=x onerror=alert(1)>_name.x"

# What runs in the page: the page's width against the window's, and the elements that stick out.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const scroll = document.documentElement.scrollWidth;
  if (scroll <= width) return {scroll, width, out: []};
  const clipped = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 0.5 && !clipped(el)) {
      const classes = String(el.className).trim().split(/\\s+/).filter(Boolean);
      const name = [el.tagName.toLowerCase(), ...classes].join('.');
      out.push(`${name} right=${Math.round(box.right)}`);
    }
  }
  return {scroll, width, out: out.slice(0, 6)};
}"""
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(' ') + ' | '
      + (n.failureSummary || '').split('\\n').slice(1, 2).join(' ').trim()),
  }));
}"""


@dataclass
class Visit:
    """A page to open, the HTTP status it answers with, and a text it shows."""

    path: str
    status: int
    shows: str
    h1: str | None = None  # the page's heading, a long name that wraps after "_" and "."


def _make_data(
    store: Any, box: SecretBox, source_db: SourceDb, register: Any, sync: Any, receiver: Receiver
) -> list[Visit]:
    sql = source_db.sql
    sql(f"CREATE SCHEMA {SCHEMA}")
    sql(f"CREATE DOMAIN {SCHEMA}.{LONG_DOMAIN} AS numeric(20,4) CHECK (VALUE >= 0)")
    sql(
        f"CREATE TABLE {SCHEMA}.{LONG_TABLE} (id bigint PRIMARY KEY,"
        f" {LONG_COLUMN} {SCHEMA}.{LONG_DOMAIN} NOT NULL,"
        " adjustment_recorded_at_with_the_source_systems_timezone timestamp(6) with time zone[],"
        " free_text_note_from_the_customer_service_representative character varying(4000)"
        " DEFAULT 'no note was recorded by the representative at the time'::character varying)"
    )
    sql("CREATE TABLE orders (id bigint PRIMARY KEY, status varchar(20), total numeric(10,2))")
    sql(f'CREATE TABLE "{HOSTILE}" (id int PRIMARY KEY, "{HOSTILE}_column" text)')
    sql(
        "CREATE PUBLICATION rosetta_publication FOR TABLE orders,"
        f' {SCHEMA}.{LONG_TABLE}, "{HOSTILE}"'
    )
    source = register("shop-eu-west-1-primary-replica-of-the-billing-database")
    sync(source)
    hook = webhooks.add_endpoint(store, box, source.id, receiver.url, "whsec-layout", None)
    long_path = "/".join(["deliveries-for-the-data-platform-team"] * 3)
    webhooks.add_endpoint(
        store, box, source.id, f"http://127.0.0.1:{free_port()}/{long_path}", None, None
    )
    store.commit()
    sql("ALTER TABLE orders ADD COLUMN shipped_at timestamptz")
    sync(source)
    sql("ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)")
    sql("ALTER TABLE orders RENAME COLUMN status TO state")
    sync(source)
    webhooks.deliver_due(store, box, timeout=5)
    store.commit()
    assert receiver.requests, "no webhook delivery reached the test endpoint"

    port = free_port()  # nothing listens there: the second source is unreachable
    params = sources.parse_dsn(f"postgresql://nobody:pw@127.0.0.1:{port}/warehouse")
    down = sources.add_source(
        store, box, sources.SourceInput("warehouse", params, "rosetta_publication")
    )
    store.commit()
    sync(down)

    tables = {t["table_name"]: t["id"] for t in repository.list_tables(store, source.id)}
    store.rollback()
    orders, long_id, hostile = tables["orders"], tables[LONG_TABLE], tables[HOSTILE]
    s = f"/sources/{source.id}"
    return [
        Visit("/", 200, "not checked"),  # the unreachable source's publication, never read
        Visit(s, 200, LONG_TABLE),
        Visit(f"{s}?tab=available", 200, "Available tables"),
        Visit(f"{s}?tab=webhooks", 200, receiver.url),
        Visit(f"/sources/{down.id}", 200, "warehouse"),
        Visit("/sources/new", 200, "Add source"),
        Visit(f"{s}/edit", 200, source.name),
        Visit(f"/tables/{long_id}", 200, LONG_COLUMN),
        Visit(f"/tables/{hostile}", 200, f"{HOSTILE}_column", h1=HOSTILE),
        Visit(f"/tables/{orders}", 200, "shipped_at"),
        Visit(f"/tables/{orders}?v=1", 200, "status"),
        Visit(f"/tables/{orders}?from=1&to=3", 200, "shipped_at"),
        Visit(f"{s}/doctor", 200, "Diagnose"),
        Visit(f"{s}/publication/drop", 200, "rosetta_publication"),
        Visit(f"{s}/tables/{long_id}/remove", 200, LONG_TABLE),
        Visit(f"{s}/webhooks/{hook['id']}/remove", 200, receiver.url),
        Visit("/no/such/page", 404, "Not found"),
        Visit("/sources/999999", 404, "999999"),
        Visit(f"/tables/{orders}?v=abc", 422, "query parameter 'v' is not valid"),
        Visit(f"{s}?page=-5", 422, "query parameter 'page' is not valid"),
    ]


def _overflow(page: Any, where: str) -> str | None:
    found = page.evaluate(OVERFLOW)
    if found["scroll"] <= found["width"]:
        return None
    return f"{where}: {found['scroll']} px wide in a {found['width']} px window; {found['out']}"


def _axe(page: Any, where: str) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = []
    for v in page.evaluate(AXE_RUN):
        if v["impact"] in ("serious", "critical"):
            nodes = "\n      ".join(v["nodes"])
            found.append(f"{where}: {v['impact']} {v['id']}: {v['help']}\n      {nodes}")
    return found


def test_every_page_fits_the_screen_and_passes_axe(
    live_server: LiveServer,
    browser: Any,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
    receiver: Receiver,
) -> None:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: scripts/bootstrap --dev installs it (npm ci)")
    visits = _make_data(store, box, source_db, register, sync, receiver)
    too_wide: list[str] = []
    violations: list[str] = []
    for width in WIDTHS:
        # bypass_csp: axe is injected as an inline script, which the pages' CSP forbids.
        context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT)
            page.goto(live_server.url + "/login")
            expect(page.locator("h1")).to_have_text("Log in to Rosetta")
            where = f"/login at {width} px"
            too_wide += filter(None, [_overflow(page, where)])
            if width == AXE_WIDTH:
                violations += _axe(page, where)
            assert log_in(page, live_server.token).status == 303

            for visit in visits:
                where = f"{visit.path} at {width} px"
                answer = page.goto(live_server.url + visit.path)
                assert answer is not None and answer.status == visit.status, where
                expect(page.locator("main")).to_contain_text(visit.shows)
                assert page.locator("main img, main b").count() == 0, f"{where}: a name ran as HTML"
                if visit.h1 is not None:
                    heading = page.locator("main h1")
                    expect(heading).to_have_text(visit.h1)
                    assert "&lt;/b&gt;_<wbr>" in heading.inner_html(), heading.inner_html()
                logout = page.locator("button:has-text('Log out')")
                # An unknown address is answered before the login is read: no Log out there.
                shown = logout.bounding_box() if logout.count() else {"x": 0, "width": 0}
                if shown is None or shown["x"] + shown["width"] > width:
                    too_wide.append(f"{where}: Log out is clipped ({shown})")
                too_wide += filter(None, [_overflow(page, where)])
                if width == AXE_WIDTH:
                    violations += _axe(page, where)
        finally:
            context.close()
    assert not too_wide, "pages wider than the window:\n  " + "\n  ".join(too_wide)
    assert not violations, "axe-core found serious or critical violations:\n  " + "\n  ".join(
        violations
    )


def test_bad_query_parameters_are_a_styled_422_page_and_json_under_the_api(
    live_server: LiveServer, browser: Any, store: Any
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(live_server.url + "/login")
        log_in(page, live_server.token)
        answer = page.goto(live_server.url + "/sources/1?page=-5")
        assert answer is not None and answer.status == 422
        expect(page.locator("main h1")).to_have_text("Invalid request")
        expect(page.locator("main .error-message")).to_have_text(
            "The query parameter 'page' is not valid: input should be greater than or equal to 1."
        )
        assert page.title() == "Error 422: Invalid request · Rosetta"
        expect(page.locator(".topbar")).to_contain_text("e2e-browser")  # still logged in
        api = page.request.get(
            live_server.url + "/api/v1/sources/1/tables?limit=-5",
            headers={"Authorization": f"Bearer {live_server.token}"},
        )
        assert api.status == 422
        assert api.headers["content-type"].startswith("application/json")
        assert "limit" in json.loads(api.text())["detail"]
    finally:
        context.close()


def test_keyboard_users_get_a_skip_link_and_a_ring_on_the_blue_button(
    live_server: LiveServer, browser: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    source = register()
    sync(source)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.goto(live_server.url + "/login")
        log_in(page, live_server.token)
        page.goto(f"{live_server.url}/sources/{source.id}")

        # The first Tab shows "Skip to content"; Enter moves the focus to the page's content.
        page.keyboard.press("Tab")
        skip = page.locator("a.skip-link")
        expect(skip).to_be_focused()
        shown = skip.bounding_box()
        assert shown is not None and shown["y"] >= 0, f"the skip link is off-screen: {shown}"
        page.keyboard.press("Enter")
        expect(page.locator("main#content")).to_be_focused()

        # Tab on to the blue Refresh button: a 3 px dark ring, set off by a white gap.
        refresh = page.locator("button.btn-primary", has_text="Refresh")
        for _ in range(40):
            page.keyboard.press("Tab")
            if refresh.evaluate("b => b === document.activeElement"):
                break
        expect(refresh).to_be_focused()
        ring = refresh.evaluate(
            "b => { const s = getComputedStyle(b); return [s.outlineStyle, s.outlineWidth,"
            " s.outlineColor, s.outlineOffset, b.matches(':focus-visible')]; }"
        )
        assert ring == ["solid", "3px", "rgb(27, 79, 176)", "2px", True], ring
    finally:
        context.close()
