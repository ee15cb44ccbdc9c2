"""A table's schema as of a time or a WAL position (``GET /api/v1/tables/{id}/schema``,
``rosetta schema``), and each version's provenance in the API, ``rosetta history`` and the table
page, on versions written by real syncs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient

from rosetta.registry import lsn_value
from tests.conftest import Cli, SourceDb
from tests.integration.web_helpers import HOSTILE, table_id

Versions = list[dict[str, Any]]


def source_lsn(source_db: SourceDb) -> str:
    return str(source_db.sql("SELECT pg_current_wal_lsn()::text")[0][0])


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def three_versions(source_db: SourceDb, register: Any, sync: Any) -> tuple[Any, list[str]]:
    """``orders`` at v1, v2 (a column added) and v3 (a type widened), each by its own sync;
    returns the source and the source's WAL position after each sync."""
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(10))")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    shop = register()
    after = []
    sync(shop)
    after.append(source_lsn(source_db))
    source_db.sql("ALTER TABLE orders ADD COLUMN region text")
    sync(shop)
    after.append(source_lsn(source_db))
    source_db.sql("ALTER TABLE orders ALTER COLUMN note TYPE varchar(200)")
    sync(shop)
    after.append(source_lsn(source_db))
    return shop, after


def versions(api: TestClient, tid: int) -> Versions:
    response = api.get(f"/api/v1/tables/{tid}/versions")
    assert response.status_code == 200, response.text
    found: Versions = response.json()
    return found


def start(version: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(version["changed_at"] or version["created_at"])


def as_of(api: TestClient, tid: int, **params: str) -> Any:
    return api.get(f"/api/v1/tables/{tid}/schema", params=params)


def forget_provenance(store: Any, tid: int, *numbers: int) -> None:
    """Make versions look as rows written before migration 0011 do: no provenance at all."""
    store.execute("SET LOCAL rosetta.history_maintenance = 'on'")
    store.execute(
        "UPDATE history_schema_evolution SET detected_by = NULL, lsn = NULL, changed_at = NULL, "
        "provenance = NULL WHERE table_metadata_list_id = %s AND version_schema = ANY (%s)",
        (tid, list(numbers)),
    )
    store.commit()


def assert_one_line_error(response: Any, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail, detail
    assert text in detail, detail


# --- the API ----------------------------------------------------------------------------------


def test_versions_found_by_polling_carry_their_lsn_and_time(
    api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    _, after = three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    listed = versions(api, tid)
    assert [v["detected_by"] for v in listed] == ["polling"] * 3
    assert all(v["provenance"] is None and v["changed_at"] for v in listed)
    # Each LSN was read at detection: after the DDL it found, at most the position after its sync.
    lsns = [lsn_value(v["lsn"]) for v in listed]
    assert lsns == sorted(lsns)
    assert all(lsn <= lsn_value(bound) for lsn, bound in zip(lsns, after, strict=True))
    one = api.get(f"/api/v1/tables/{tid}/versions/2").json()
    assert (one["detected_by"], one["lsn"], one["changed_at"]) == (
        "polling",
        listed[1]["lsn"],
        listed[1]["changed_at"],
    )
    assert one["provenance"] is None


def test_schema_at_a_time_is_the_version_then_in_force(
    api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    listed = versions(api, tid)
    starts = [start(v) for v in listed]
    for n, at in enumerate(starts, 1):
        got = as_of(api, tid, at=at.isoformat())
        assert got.status_code == 200, got.text
        assert got.json()["version"] == n
        if n < 3:
            midway = at + (starts[n] - at) / 2
            assert as_of(api, tid, at=midway.isoformat()).json()["version"] == n

    v2 = as_of(api, tid, at=starts[1].isoformat()).json()
    assert [(c["column_name"], c["full_type"]) for c in v2["columns"]] == [
        ("id", "bigint"),
        ("note", "character varying(10)"),
        ("region", "text"),
    ]
    assert v2["changes_type"] == "NEW COLUMN" and v2["next_version"] == 3
    assert v2["detected_by"] == "polling" and v2["lsn"] == listed[1]["lsn"]
    # v3 was found by polling: it may have applied up to one interval before its recorded time.
    assert v2["exact"] is False and "bounded by the polling interval" in v2["exactness"]

    latest = as_of(api, tid, at=(starts[2] + timedelta(days=1)).isoformat()).json()
    assert latest["version"] == 3 and latest["next_version"] is None and latest["exact"] is True

    # The same instant in another timezone, and RFC 3339's Z.
    india = starts[1].astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert as_of(api, tid, at=india.isoformat()).json()["version"] == 2
    zulu = starts[2].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert as_of(api, tid, at=zulu).json()["version"] == 3

    before = as_of(api, tid, at=(starts[0] - timedelta(seconds=1)).isoformat())
    assert_one_line_error(before, 404, "was not tracked yet")
    assert "its first version v1 applies from" in before.json()["detail"]


def test_schema_at_an_lsn_is_the_version_then_in_force(
    api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    _, after = three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    listed = versions(api, tid)
    lsns = [lsn_value(v["lsn"]) for v in listed]
    # From its own LSN a version applies; one byte before, the version before it. (Polling reads
    # the source's WAL write position, which may not move between two syncs: two versions may
    # then share an LSN, and the later one is the answer there.)
    for n, lsn in enumerate(lsns, 1):
        got = as_of(api, tid, lsn=lsn_text(lsn))
        assert got.status_code == 200, got.text
        assert got.json()["version"] == max(i for i, x in enumerate(lsns, 1) if x == lsn)
        assert got.json()["asked_lsn"] == listed[n - 1]["lsn"]
        if n > 1 and lsns[n - 2] < lsn:
            earlier = lsn_text(lsn - 1)
            assert as_of(api, tid, lsn=earlier).json()["version"] == n - 1
    # The source's position after the last sync is past every version: the latest applies.
    assert as_of(api, tid, lsn=after[-1]).json()["version"] == 3
    # Lower-case hex and leading zeros are read as PostgreSQL reads them.
    high, _, low = listed[1]["lsn"].partition("/")
    assert as_of(api, tid, lsn=f"000{high}/{low.lower()}").json()["version"] == 2

    before = as_of(api, tid, lsn=lsn_text(lsn_value(listed[0]["lsn"]) - 1))
    assert_one_line_error(before, 404, "was not tracked yet at LSN")


def test_versions_recorded_before_provenance_answer_by_time_but_not_by_lsn(
    api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    forget_provenance(store, tid, 1, 2)
    listed = versions(api, tid)
    assert [v["detected_by"] for v in listed] == [None, None, "polling"]
    assert listed[0]["lsn"] is None and listed[0]["changed_at"] is None

    # By time: created_at is when Rosetta recorded them.
    v1 = as_of(api, tid, at=listed[0]["created_at"]).json()
    assert v1["version"] == 1 and v1["exact"] is False
    assert "before provenance was kept" in v1["exactness"]

    # By LSN: from v3's own LSN on, the answer is v3; before it, v1 and v2 cannot be placed.
    assert as_of(api, tid, lsn=listed[2]["lsn"]).json()["version"] == 3
    unplaced = as_of(api, tid, lsn=lsn_text(lsn_value(listed[2]["lsn"]) - 1))
    assert_one_line_error(unplaced, 404, "v1 to v2 were recorded before Rosetta kept LSNs")
    assert "ask by time" in unplaced.json()["detail"]

    forget_provenance(store, tid, 3)
    none_placed = as_of(api, tid, lsn="FFFFFFFF/FFFFFFFF")
    assert_one_line_error(none_placed, 404, "v1 to v3 were recorded before Rosetta kept LSNs")


def test_bad_as_of_input_is_one_line_and_never_a_500(
    api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    for params, text in (
        ({"at": "2026-12-02T10:00:00"}, "give its timezone"),
        ({"at": "2026-12-02 10:00:00"}, "give its timezone"),
        ({"at": "2026-12-02"}, "RFC 3339"),
        ({"at": "yesterday"}, "RFC 3339"),
        ({"at": "2026-13-40T10:00:00Z"}, "no such date or time"),
        ({"at": "2026-12-02T10:00:00+25:00"}, "no such date or time"),
        ({"at": "2026-12-02T10:00:00Z\x00"}, "at"),
        ({"at": "x" * 65}, "at"),
        ({"lsn": "16B3748"}, "X/Y in hex"),
        ({"lsn": "0/XYZ"}, "X/Y in hex"),
        ({"lsn": "123456789/0"}, "X/Y in hex"),
        ({"lsn": "-1/0"}, "X/Y in hex"),
        ({"lsn": "0/16B3748 "}, "X/Y in hex"),
        ({"at": "2026-12-02T10:00:00Z", "lsn": "0/0"}, "exactly one"),
        ({}, "exactly one"),
    ):
        response = as_of(api, tid, **params)
        assert 400 <= response.status_code < 500, (params, response.text)
        assert_one_line_error(response, response.status_code, text)
    assert_one_line_error(as_of(api, 10**12, at="2026-12-02T10:00:00Z"), 404, "no table")


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_schema_as_of_a_time_and_an_lsn(
    cli: Cli, api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    listed = versions(api, tid)

    at_v2 = cli("schema", "shop", "orders", "--at", start(listed[1]).isoformat())
    assert at_v2.returncode == 0, at_v2.stderr
    lines = at_v2.stdout.splitlines()
    assert lines[0].startswith("Table orders of source shop at ") and lines[0].endswith(
        ": v2 (NEW COLUMN)"
    )
    assert lines[1].startswith("  approximate: bounded by the polling interval: v3 was found")
    assert f"found by polling · LSN {listed[1]['lsn']}" in lines[2]
    assert "region" in at_v2.stdout
    at_v2_json = cli("schema", "shop", "orders", "--at", start(listed[1]).isoformat(), "--json")
    columns = json.loads(at_v2_json.stdout)["columns"]
    assert [(c["column_name"], c["full_type"]) for c in columns] == [
        ("id", "bigint"),
        ("note", "character varying(10)"),
        ("region", "text"),
    ]

    by_lsn = cli("schema", "shop", "orders", "--lsn", listed[2]["lsn"], "--json")
    assert by_lsn.returncode == 0, by_lsn.stderr
    shown = json.loads(by_lsn.stdout)
    assert (shown["version"], shown["exact"], shown["next_version"]) == (3, True, None)
    assert shown["lsn"] == listed[2]["lsn"] and shown["version_lsn"] == listed[2]["lsn"]
    assert shown["columns"][1]["full_type"] == "character varying(200)"

    for args, code, text in (
        (["--at", "2026-12-02T10:00:00"], 2, "give its timezone"),
        (["--lsn", "nope"], 2, "X/Y in hex"),
        (["--at", "2026-12-02T10:00:00Z", "--lsn", "0/1"], 2, "exactly one"),
        ([], 2, "exactly one"),
        (["--at", "2000-01-01T00:00:00Z"], 4, "was not tracked yet"),
    ):
        failed = cli("schema", "shop", "orders", *args)
        assert failed.returncode == code, (args, failed.stdout, failed.stderr)
        assert failed.stderr.startswith("Error: ") and text in failed.stderr, failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1


def test_cli_history_shows_how_each_version_was_found(
    cli: Cli, api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    forget_provenance(store, tid, 1)
    listed = versions(api, tid)
    shown = cli("history", "shop", "orders")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("v")]
    assert [lines[i].split()[0] for i in heads] == ["v1", "v2", "v3"]
    assert lines[heads[0] + 1] == "    recorded before provenance was kept"
    for i, version in zip(heads[1:], listed[1:], strict=True):
        assert lines[i + 1].startswith(f"    found by polling · LSN {version['lsn']} · at 20")
    as_json = json.loads(cli("history", "shop", "orders", "--json").stdout)
    assert [v["detected_by"] for v in as_json] == [None, "polling", "polling"]
    assert [v["lsn"] for v in as_json] == [None, listed[1]["lsn"], listed[2]["lsn"]]
    assert as_json[0]["changed_at"] is None and as_json[2]["provenance"] is None


# --- the table page ---------------------------------------------------------------------------


def test_table_page_timeline_says_how_each_version_was_found(
    web: TestClient, api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    forget_provenance(store, tid, 1)
    listed = versions(api, tid)
    page = web.get(f"/tables/{tid}")
    assert page.status_code == 200
    found = page.text.split('data-detected-by="')[1:]
    assert [f.split('"')[0] for f in found] == ["polling", "polling", "none"]  # newest first
    assert "recorded before provenance was kept" in found[2]
    assert f'found by polling · LSN <code class="lsn">{listed[2]["lsn"]}</code>' in found[0]
    assert 'class="tl-ddl"' not in page.text  # no DDL events without capture


def test_table_page_escapes_captured_statements_and_roles(
    web: TestClient, api: TestClient, store: Any, source_db: SourceDb, register: Any, sync: Any
) -> None:
    """What capture records comes from the source: a statement or a role name is text on the
    page, never markup. (The event is set on a synced version until capture writes its own.)"""
    three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    event = {
        "id": 17,
        "command_tag": "ALTER TABLE",
        "object_type": "table",
        "object_identity": "public.orders",
        "statement": f"ALTER TABLE orders ADD COLUMN note text -- {HOSTILE}",
        "session_user": "alice",
        "current_user": HOSTILE,
        "application_name": "</details><script>alert(1)</script>",
        "client_addr": None,
        "backend_pid": 4242,
        "xid": "771",
        "time": "2026-12-02T10:00:00.123+00:00",
        "lsn": "0/16B3748",
    }
    store.execute("SET LOCAL rosetta.history_maintenance = 'on'")
    store.execute(
        "UPDATE history_schema_evolution SET detected_by = 'capture', provenance = %s "
        "WHERE table_metadata_list_id = %s AND version_schema = 2",
        (json.dumps({"events": [event, {**event, "id": 18, "statement": None}]}), tid),
    )
    store.commit()
    text = web.get(f"/tables/{tid}").text
    assert HOSTILE not in text and "<script>alert(1)" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "2 DDL statements by &lt;img src=x onerror=alert(1)&gt; (session alice)" in text
    assert "local socket" in text and "xid 771 · pid 4242" in text
    assert "Statement withheld: it may hold a secret." in text
    assert "found by capture" in text

    history = api.get(f"/api/v1/tables/{tid}/versions/2").json()
    assert history["detected_by"] == "capture"
    assert history["provenance"]["events"][0]["statement"] == event["statement"]


def test_a_rename_of_the_table_reads_as_one_everywhere(
    cli: Cli,
    web: TestClient,
    api: TestClient,
    store: Any,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    shop, _ = three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    source_db.sql("ALTER TABLE orders RENAME TO purchases")
    sync(shop)
    listed = versions(api, tid)
    assert listed[-1]["changes_type"] == "RENAME TABLE", listed[-1]
    shown = cli("history", "shop", "purchases")
    assert shown.returncode == 0, shown.stderr
    assert "    ~ table renamed public.orders -> public.purchases" in shown.stdout.splitlines()
    page = web.get(f"/tables/{tid}").text
    assert "table renamed <code>public.orders</code> → <code>public.purchases</code>" in page
    diff = web.get(f"/tables/{tid}?from=3&to=4").text.split('id="diff"')[1]
    assert 'data-change="RENAME TABLE"' in diff and "the table" in diff
