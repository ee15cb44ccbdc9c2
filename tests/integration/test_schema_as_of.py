"""A table's schema as of a time or a WAL position (``GET /api/v1/tables/{id}/schema``,
``rosetta schema``), and each version's provenance in the API, ``rosetta history`` and the table
page, on versions written by real syncs: found by polling, and by capture (the source's own event
triggers recording real DDL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql

from rosetta import services
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
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


def capture_on(store: Any, box: SecretBox, shop: Any) -> None:
    """Install real-time capture on the source: its next syncs read the DDL events."""
    services.install_capture(store, box, SourceLimits(), shop)
    store.commit()


def ddl(source_db: SourceDb, *statements: str, application: str = "psql") -> None:
    """Run ``statements`` in one transaction, each its own query, as ``application``."""
    with psycopg.connect(source_db.url, application_name=application) as conn:
        for statement in statements:
            conn.execute(statement.encode())  # the tests' own DDL


def captured_v4(
    store: Any, box: SecretBox, source_db: SourceDb, register: Any, sync: Any
) -> tuple[Any, str]:
    """``three_versions`` found by polling, then v4 captured: a column added by a real ALTER
    TABLE run as ``migrations``; returns the source and the statement."""
    shop, _ = three_versions(source_db, register, sync)
    capture_on(store, box, shop)
    statement = "ALTER TABLE orders ADD COLUMN shipped_at timestamptz"
    ddl(source_db, statement, application="migrations")
    sync(shop)
    return shop, statement


def html_text(text: str) -> str:
    """``text`` as the page's autoescaping writes it."""
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;")):
        text = text.replace(raw, escaped)
    return text.replace("'", "&#39;")


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
    shared = max(i for i, x in enumerate(lsns, 1) if x == lsns[1])  # 2, or 3 at the same LSN
    assert as_of(api, tid, lsn=f"000{high}/{low.lower()}").json()["version"] == shared

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


def test_schema_just_before_a_captured_version_is_exact(
    api: TestClient, store: Any, box: SecretBox, source_db: SourceDb, register: Any, sync: Any
) -> None:
    """v4 was captured: from its DDL's LSN and commit time on it applies, and one microsecond or
    one byte before, v3 did, exactly (no polling interval to bound)."""
    captured_v4(store, box, source_db, register, sync)
    tid = table_id(store, "orders")
    listed = versions(api, tid)
    v4 = listed[3]
    assert (v4["detected_by"], v4["changes_type"]) == ("capture", "NEW COLUMN")
    [event] = v4["provenance"]["events"]
    assert event["lsn"] == v4["lsn"] and event["application_name"] == "migrations"
    assert lsn_value(listed[2]["lsn"]) < lsn_value(v4["lsn"])
    when, where = start(v4), lsn_value(v4["lsn"])

    for params in (
        {"at": (when - timedelta(microseconds=1)).isoformat()},
        {"lsn": lsn_text(where - 1)},
    ):
        got = as_of(api, tid, **params)
        assert got.status_code == 200, got.text
        before = got.json()
        assert (before["version"], before["exact"], before["next_version"]) == (3, True, 4), (
            params,
            before,
        )
        assert before["detected_by"] == "polling" and before["lsn"] == listed[2]["lsn"]
        assert [c["column_name"] for c in before["columns"]] == ["id", "note", "region"]
        assert before["exact"] is True, before["exactness"]
        assert "v4 applies from" in before["exactness"]
    by_lsn = as_of(api, tid, lsn=lsn_text(where - 1)).json()
    assert by_lsn["exactness"] == f"v4 applies from LSN {v4['lsn']}, captured from the DDL"

    for params in ({"at": when.isoformat()}, {"lsn": v4["lsn"]}):
        got = as_of(api, tid, **params)
        assert got.status_code == 200, got.text
        at = got.json()
        assert (at["version"], at["exact"], at["next_version"]) == (4, True, None), (params, at)
        assert at["detected_by"] == "capture" and at["lsn"] == v4["lsn"]
        assert at["provenance"]["events"][0]["statement"] == event["statement"]
        assert [c["column_name"] for c in at["columns"]][-1] == "shipped_at"

    # v3's own next version was found by polling: before v3, the answer stays approximate.
    v2 = as_of(api, tid, at=start(listed[1]).isoformat()).json()
    assert (v2["version"], v2["exact"]) == (2, False)


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


def test_cli_schema_just_before_a_captured_version_is_exact(
    cli: Cli,
    api: TestClient,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    captured_v4(store, box, source_db, register, sync)
    tid = table_id(store, "orders")
    v4 = versions(api, tid)[3]
    when, where = start(v4), lsn_value(v4["lsn"])
    for args, number, following in (
        (["--at", (when - timedelta(microseconds=1)).isoformat()], 3, 4),
        (["--lsn", lsn_text(where - 1)], 3, 4),
        (["--at", when.isoformat()], 4, None),
        (["--lsn", v4["lsn"]], 4, None),
    ):
        shown = cli("schema", "shop", "orders", *args, "--json")
        assert shown.returncode == 0, (args, shown.stderr)
        answer = json.loads(shown.stdout)
        assert (answer["version"], answer["exact"], answer["next_version"]) == (
            number,
            True,
            following,
        ), (args, answer)
        if following:
            assert "v4 applies from" in answer["exactness"]

    text = cli("schema", "shop", "orders", "--lsn", lsn_text(where - 1))
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].endswith(": v3 (CHANGES TYPE)"), lines[0]
    assert lines[1].startswith("  exact: "), lines[1]
    assert f"v4 applies from LSN {v4['lsn']}, captured from the DDL" in lines[1], lines[1]
    at_v4 = cli("schema", "shop", "orders", "--lsn", v4["lsn"])
    assert f"found by capture · LSN {v4['lsn']}" in at_v4.stdout
    assert "app migrations" in at_v4.stdout


def test_cli_history_shows_how_each_version_was_found(
    cli: Cli,
    api: TestClient,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    shop, _ = three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    forget_provenance(store, tid, 1)
    # v4 is captured: a migration run as its own role (SET ROLE) by the superuser's session.
    owner = f"app_owner_{source_db.name}"  # roles are the whole server's
    source_db.conn.execute(
        sql.SQL("CREATE ROLE {0}; ALTER TABLE orders OWNER TO {0}").format(sql.Identifier(owner))
    )
    capture_on(store, box, shop)
    statement = (
        f"SET ROLE {owner}; ALTER TABLE orders ADD COLUMN shipped_at timestamptz,\n"
        "  ADD COLUMN carrier text DEFAULT '" + "x" * 200 + "'"
    )
    ddl(source_db, statement, application="migrations")
    sync(shop)
    listed = versions(api, tid)
    assert [v["detected_by"] for v in listed] == [None, "polling", "polling", "capture"]
    [event] = listed[3]["provenance"]["events"]

    shown = cli("history", "shop", "orders")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if line.startswith("v")]
    assert [lines[i].split()[0] for i in heads] == ["v1", "v2", "v3", "v4"]
    assert lines[heads[0] + 1] == "    recorded before provenance was kept"
    for i, version in zip(heads[1:3], listed[1:3], strict=True):
        assert lines[i + 1].startswith(f"    found by polling · LSN {version['lsn']} · at 20")
        assert not lines[i + 2].startswith("    by ")  # no statements without capture
    v4 = heads[3]
    assert lines[v4 + 1].startswith(f"    found by capture · LSN {listed[3]['lsn']} · at 20")
    session = source_db.conn.info.user
    client = event["client_addr"] or "a local socket"
    assert lines[v4 + 2] == (
        f"    by {owner} (session {session}), app migrations, from {client}, "
        f"pid {event['backend_pid']}, xid {event['xid']}"
    )
    assert event["backend_pid"] > 0 and int(event["xid"]) > 0
    # The statement on one line, shortened to 160 characters.
    flat = " ".join(statement.split())
    assert lines[v4 + 3] == "      " + flat[:159].rstrip() + "…"
    assert len(lines[v4 + 3].strip()) == 160
    assert lines[v4 + 4].startswith("    + shipped_at"), lines[v4 + 4]

    as_json = json.loads(cli("history", "shop", "orders", "--json").stdout)
    assert [v["detected_by"] for v in as_json] == [None, "polling", "polling", "capture"]
    assert [v["lsn"] for v in as_json] == [None] + [v["lsn"] for v in listed[1:]]
    assert as_json[0]["changed_at"] is None and as_json[2]["provenance"] is None
    [shown_event] = as_json[3]["provenance"]["events"]
    assert shown_event["statement"] == statement  # whole, as recorded
    assert (shown_event["current_user"], shown_event["session_user"]) == (owner, session)
    assert shown_event["application_name"] == "migrations"
    assert shown_event["xid"] == event["xid"] and shown_event["lsn"] == listed[3]["lsn"]


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
    web: TestClient,
    api: TestClient,
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    """What capture records comes from the source: a statement, a role or an application name is
    text on the page, never markup. Made by real DDL through capture: a column named with markup
    and quotes, added under a role named with markup, by an application named with markup, and a
    second statement of the same transaction withheld (it mentions a password)."""
    shop, _ = three_versions(source_db, register, sync)
    tid = table_id(store, "orders")
    role = f"<i>'r\"{source_db.name}"  # roles are the whole server's
    source_db.conn.execute(
        sql.SQL("CREATE ROLE {0}; ALTER TABLE orders OWNER TO {0}").format(sql.Identifier(role))
    )
    capture_on(store, box, shop)
    column = 'it\'s "<script>alert(1)</script>"'
    hostile = (
        sql.SQL("SET ROLE {}; ALTER TABLE orders ADD COLUMN {} text -- </pre>{}")
        .format(sql.Identifier(role), sql.Identifier(column), sql.SQL(HOSTILE))
        .as_string(source_db.conn)
    )
    withheld = "ALTER TABLE orders ADD COLUMN secret_hint text -- the password is hunter2"
    application = "<b>migrations</b> & 'co'"
    ddl(source_db, hostile, withheld, application=application)
    sync(shop)
    listed = versions(api, tid)
    assert listed[-1]["version"] == 4 and listed[-1]["detected_by"] == "capture"
    events = listed[-1]["provenance"]["events"]
    assert [e["statement"] for e in events] == [hostile, None]
    assert events[0]["current_user"] == role and events[0]["application_name"] == application

    page = web.get(f"/tables/{tid}")
    assert page.status_code == 200
    text = page.text
    for raw in ("<script>", "alert(1)</script>", HOSTILE, "<b>migrations", "<i>'r"):
        assert raw not in text, raw
    # The statement's own "</pre>" is text too: the only </pre> ends the statement's <pre>.
    assert text.count("</pre>") == text.count('<pre class="ddl-statement">') == 1
    session = source_db.conn.info.user
    assert html_text(hostile) in text  # the whole statement, escaped, in its <pre>
    assert f'<pre class="ddl-statement">{html_text(hostile)}</pre>' in text
    assert f"2 DDL statements by {html_text(role)} (session {session})" in text
    assert f"<dd>{html_text(role)} (session {session})</dd>" in text
    assert f"<dd>{html_text(application)}</dd>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    client = events[0]["client_addr"] or "local socket"
    assert f"<dd>{client}</dd>" in text
    assert f"xid {events[0]['xid']} · pid {events[0]['backend_pid']}" in text
    assert "Statement withheld: it may hold a secret." in text and "hunter2" not in text
    assert "found by capture" in text


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
