"""The table page's timeline on long histories, with the table's removals, returns and heals,
and the Diagnose page on many tables: problems first, passing checks folded."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import SourceDb
from tests.integration.web_helpers import table_id, tracked_source

MANY = 310


def test_diagnose_folds_many_passing_tables_into_one_line(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source_db.sql(
        "DO $$ BEGIN FOR i IN 1.." + str(MANY) + " LOOP "
        "EXECUTE format('CREATE TABLE t%s (id bigint PRIMARY KEY, name text)', "
        "lpad(i::text, 3, '0')); END LOOP; END $$"
    )
    source_db.sql("CREATE TABLE keyless (at timestamptz, note text)")  # fails: no key
    source = tracked_source(source_db, register, sync)
    page = web.get(f"/sources/{source.id}/doctor")
    assert page.status_code == 200
    text = page.text
    # 611,746 bytes when every passing table printed its checks; now its name only.
    assert len(page.content) < 120_000, len(page.content)
    # The failing table first, its failure shown; before any passing check.
    keyless = text.index('<div class="doctor-table" data-table="keyless">')
    assert "ALTER TABLE keyless ADD PRIMARY KEY" in text
    assert keyless < text.index('<details class="passing')
    # Every passing table on one folded line, each name a link to its own checks.
    folded = re.search(
        r'<details class="passing-tables">\s*<summary>.*?(\d+) tables pass every check', text, re.S
    )
    assert folded and folded.group(1) == str(MANY)
    names = re.findall(r'<li class="passing-table" data-table="(t\d+)">', text)
    assert names == [f"t{i:03}" for i in range(1, MANY + 1)]
    assert f'href="/sources/{source.id}/doctor?table=t001"' in text
    assert text.count('<tr class="check check-pass"') < 20  # only the store's and source's

    one = web.get(f"/sources/{source.id}/doctor?table=t001")
    assert one.status_code == 200
    assert '<details class="doctor-table passing" data-table="t001" open>' in one.text
    assert 'class="check check-pass"' in one.text


def test_diagnose_puts_a_failing_section_before_passing_ones(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE items (id int PRIMARY KEY)")
    source_db.sql("DROP PUBLICATION rosetta_publication")
    text = web.get(f"/sources/{source.id}/doctor").text
    # The source's publication is gone: its section, with the FAIL, comes first.
    source_section = text.index('aria-labelledby="d-source"')
    assert source_section < text.index('aria-labelledby="d-general"')
    failing = text[source_section : text.index("</section>", source_section)]
    assert 'data-status="FAIL"' in failing
    first_row = re.search(r'data-status="(\w+)"', failing)
    assert first_row and first_row.group(1) == "FAIL"


# --- the timeline ------------------------------------------------------------------------------


def timeline_lines(page_text: str) -> list[str]:
    """The timeline's entries top to bottom: ``v3`` for a version, the event's name otherwise."""
    found = re.findall(r'<li class="[^"]*" data-(version|event)="([^"]+)">', page_text)
    return [f"v{value}" if kind == "version" else value for kind, value in found]


def test_the_timeline_shows_removal_return_and_heal_at_their_time(
    web: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE items (id int PRIMARY KEY)")
    items = table_id(store, "items")
    source_db.sql("ALTER PUBLICATION rosetta_publication DROP TABLES IN SCHEMA public")
    sync(source)
    page = web.get(f"/tables/{items}")
    assert timeline_lines(page.text) == ["removed", "v1"]
    assert "Removed from the publication" in page.text

    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLES IN SCHEMA public")
    sync(source)
    source_db.sql("ALTER TABLE items ADD COLUMN note text")
    sync(source)
    # The store lost the table's schema (as a store written before versions were kept could):
    # the next sync heals it.
    store.execute("UPDATE table_metadata_list SET schema_table = NULL WHERE id = %s", (items,))
    store.commit()
    sync(source)
    page = web.get(f"/tables/{items}")
    assert timeline_lines(page.text) == ["healed", "v2", "re-added", "removed", "v1"]
    assert "Back in the publication" in page.text and "Missing schema healed" in page.text
    rows = store.execute(
        "SELECT event FROM table_events WHERE table_metadata_list_id = %s ORDER BY id", (items,)
    ).fetchall()
    store.rollback()
    assert [r[0] for r in rows] == ["removed", "re-added", "healed"]


def test_a_long_timeline_folds_its_older_versions(
    web: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE items (id int PRIMARY KEY)")
    items = table_id(store, "items")
    for i in range(2, 13):
        source_db.sql(f"ALTER TABLE items ADD COLUMN c{i} int")
        sync(source)
    text = web.get(f"/tables/{items}").text
    recent, _, older = text.partition('<details class="timeline-older">')
    assert timeline_lines(recent) == [f"v{n}" for n in range(12, 2, -1)]
    assert "<summary>Show 2 older versions</summary>" in older
    assert timeline_lines(older) == ["v2", "v1"]
    # Showing a folded version opens the fold, so the current one is in view.
    assert '<details class="timeline-older" open>' in web.get(f"/tables/{items}?v=2").text


def test_the_version_shown_is_compared_with_the_one_before_it(
    web: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE items (id int PRIMARY KEY)")
    items = table_id(store, "items")
    for column in ("a", "b", "c"):
        source_db.sql(f"ALTER TABLE items ADD COLUMN {column} int")
        sync(source)

    def compared(query: str) -> tuple[list[str], list[str]]:
        text = web.get(f"/tables/{items}{query}").text
        caption = re.search(r'<p class="diff-caption[^"]*">(.*?)</p>', text, re.S)
        assert caption, text
        added = re.findall(
            r'data-change="NEW COLUMN">.*?<span class="col-name">(\w+)</span>', text, re.S
        )
        return re.sub(r"<[^>]+>|\s+", " ", caption.group(1)).split(), added

    assert compared("") == ("1 change from v3 to v4".split(), ["c"])
    assert compared("?v=3") == ("1 change from v2 to v3".split(), ["b"])
    assert compared("?v=3&from=1&to=4") == ("3 changes from v1 to v4".split(), ["a", "b", "c"])
    assert compared("?v=1") == ("1 change from nothing to v1".split(), ["id"])
