"""The source page says each fact once and truly: an unreachable source's error, a publication
Rosetta never read, a table whose schema is not read yet, and webhook deliveries being retried."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from rosetta import webhooks
from rosetta.crypto import SecretBox
from tests.conftest import Receiver, SourceDb
from tests.integration.web_helpers import post, tracked_source

CANNOT_CONNECT = "cannot connect to 127.0.0.1:1/"


def _unreachable(store: Any, source_id: int) -> None:
    store.execute("UPDATE sources SET port = 1 WHERE id = %s", (source_id,))
    store.commit()


def test_an_unreachable_source_shows_its_error_once(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE t (id int PRIMARY KEY)")
    _unreachable(store, source.id)
    page = f"/sources/{source.id}"

    refreshed = post(web, f"{page}/refresh", page=page)
    after_refresh = web.get(refreshed.headers["location"]).text
    assert 'class="summary summary-bad"' in after_refresh
    assert after_refresh.count(CANNOT_CONNECT) == 1

    # Later, without the summary: once, in the Connection panel; the last sync says "failed".
    later = web.get(page).text
    assert later.count(CANNOT_CONNECT) == 1 and 'data-error="connection"' in later
    assert 'badge-bad">failed</span>' in later
    # The publication was read by the earlier sync: its state is shown as of then.
    assert 'badge-ok">exists</span>' in later and "(when last reached)" in later


def test_a_publication_never_read_is_not_checked_not_missing(
    web: TestClient, source_db: SourceDb, register: Any, store: Any
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = register()  # stored without a sync: Rosetta has not read the publication
    _unreachable(store, source.id)
    text = web.get(f"/sources/{source.id}").text
    assert "not checked</span>" in text
    assert 'badge-warn">missing</span>' not in text


def test_a_table_whose_schema_is_missing_shows_no_column_count(
    web: TestClient, source_db: SourceDb, register: Any, sync: Any, store: Any
) -> None:
    source = tracked_source(source_db, register, sync, "CREATE TABLE t (id int PRIMARY KEY)")
    store.execute("UPDATE table_metadata_list SET schema_table = NULL WHERE table_name = 't'")
    store.commit()
    text = web.get(f"/sources/{source.id}").text
    row = text.split('href="/tables/', 1)[1].split("</tr>", 1)[0]
    assert "schema missing" in row
    assert 'title="Not read yet: it is filled at the next sync">—</span>' in row


def test_a_refused_delivery_being_retried_is_not_shown_as_zero_failures(
    web: TestClient,
    source_db: SourceDb,
    register: Any,
    sync: Any,
    store: Any,
    box: SecretBox,
    receiver: Receiver,
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source_db.sql("CREATE TABLE t (id int PRIMARY KEY)")
    source_db.sql("ALTER PUBLICATION rosetta_publication ADD TABLE t")
    source = register()
    webhooks.add_endpoint(store, box, source.id, receiver.url, None, None)
    store.commit()
    receiver.statuses = [500]
    sync(source)
    assert webhooks.deliver_due(store, box, base_delay=600) == (0, 1)

    text = web.get(f"/sources/{source.id}?tab=webhooks").text
    row = text.split('data-webhook="', 1)[1].split("</tr>", 1)[0]
    assert "(1 retrying)" in row
    delivery = text.split('data-delivery="', 1)[1].split("</tr>", 1)[0]
    assert 'badge-warn" title="attempt 1 failed; next attempt' in delivery
    assert ">retrying</span>" in delivery
