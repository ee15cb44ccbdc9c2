"""Real-time capture installed on a source (`rosetta capture install|status|uninstall`): the
source-side objects and what they record, the store's flags, the CLI, the API, the page and
doctor, on real PostgreSQL."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.rows import dict_row

from rosetta import doctor, services, sources
from rosetta.capture import CHANNEL, LISTENER_APPLICATION_NAME, installer
from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.doctor import FAIL, PASS, WARN, Diagnosis
from rosetta.errors import CapturePrivilegeError
from rosetta.store import repository
from tests.conftest import Cli, SourceDb
from tests.integration.web_helpers import post

LIMITS = SourceLimits()
# 63 characters (the longest name PostgreSQL keeps), with quotes, spaces and a line break.
HOSTILE = ("we\"ird\" name 'x'\nsecond line " + "z" * 63)[:63]


# --- helpers -------------------------------------------------------------------------------


def events(source_db: SourceDb) -> list[dict[str, Any]]:
    with source_db.conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM rosetta_capture.ddl_events ORDER BY id")
        return cur.fetchall()


def objects(source_db: SourceDb) -> dict[str, int]:
    """How many of each of capture's objects the source has."""
    row = source_db.sql(
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'rosetta_capture'),"
        " (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'rosetta_capture%%'),"
        " (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        "  WHERE n.nspname = 'rosetta_capture'),"
        " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  WHERE n.nspname = 'rosetta_capture' AND c.relkind = 'r')"
    )[0]
    return {"schemas": row[0], "triggers": row[1], "functions": row[2], "tables": row[3]}


NONE = {"schemas": 0, "triggers": 0, "functions": 0, "tables": 0}
ONE_SET = {"schemas": 1, "triggers": 2, "functions": 4, "tables": 1}


def refusal(role: str) -> str:
    return (
        "cannot install capture on limited: creating event triggers needs a superuser "
        f'(role "{role}" is not): ask a superuser to run `rosetta capture install`, '
        "or stay on polling"
    )


def fresh(store: Any, source: Any) -> Any:
    found = repository.source_by_id(store, source.id)
    store.rollback()
    return found


def install(store: Any, box: SecretBox, source: Any) -> services.CaptureOutcome:
    done = services.install_capture(store, box, LIMITS, fresh(store, source))
    store.commit()
    return done


def uninstall(store: Any, box: SecretBox, source: Any) -> services.CaptureOutcome:
    done = services.uninstall_capture(store, box, LIMITS, fresh(store, source))
    store.commit()
    return done


@pytest.fixture
def shop(source_db: SourceDb, register: Any) -> Any:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return register()


@pytest.fixture
def role(source_db: SourceDb) -> Iterator[str]:
    """A login role of the source's server that is not a superuser (it may create schemas)."""
    name = f"capture_user_{os.getpid()}_{source_db.name[-6:]}"
    run = source_db.conn.execute
    run(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-capture'").format(sql.Identifier(name)))
    run(
        sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(source_db.name), sql.Identifier(name)
        )
    )
    yield name
    run(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    run(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


# --- install and uninstall -----------------------------------------------------------------


def test_install_twice_leaves_one_set_of_objects_and_keeps_the_events(
    store: Any, box: SecretBox, source_db: SourceDb, shop: Any
) -> None:
    first = install(store, box, shop)
    assert first.changed and first.status.working
    assert objects(source_db) == ONE_SET
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    assert [e["command_tag"] for e in events(source_db)] == ["ALTER TABLE"]

    again = install(store, box, shop)
    assert not again.changed and again.status.working
    assert objects(source_db) == ONE_SET
    assert [e["command_tag"] for e in events(source_db)] == ["ALTER TABLE"]
    source_db.sql("ALTER TABLE orders DROP COLUMN note")
    assert len(events(source_db)) == 2


def test_install_sets_the_store_flags_and_uninstall_clears_them(
    store: Any, box: SecretBox, source_db: SourceDb, shop: Any
) -> None:
    assert not fresh(store, shop).capture_enabled
    install(store, box, shop)
    on = fresh(store, shop)
    assert on.capture_enabled and on.capture_installed_at is not None
    assert on.capture_error is None
    assert on.capture_snapshot is not None and re.fullmatch(r"\d+:\d+:[\d,]*", on.capture_snapshot)

    store.execute("UPDATE sources SET capture_error = 'old' WHERE id = %s", (shop.id,))
    store.commit()
    off = uninstall(store, box, shop).source
    assert not off.capture_enabled
    assert off.capture_snapshot is None and off.capture_error is None


def test_uninstall_twice_drops_everything_and_then_says_there_was_nothing(
    store: Any, box: SecretBox, source_db: SourceDb, shop: Any
) -> None:
    install(store, box, shop)
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    first = uninstall(store, box, shop)
    assert first.changed and not first.status.present
    assert objects(source_db) == NONE
    second = uninstall(store, box, shop)
    assert not second.changed
    source_db.sql("ALTER TABLE orders DROP COLUMN note")  # DDL works without capture
    assert objects(source_db) == NONE


def test_a_role_that_may_not_create_event_triggers_is_refused_in_one_line_and_nothing_stays(
    store: Any, box: SecretBox, source_db: SourceDb, role: str
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    url = source_db.server.url(source_db.name, user=role, password="pw-capture")
    limited = sources.add_source(
        store, box, sources.SourceInput("limited", sources.parse_dsn(url), "rosetta_publication")
    )
    store.commit()
    status = services.capture_status(store, box, LIMITS, limited)
    assert not status.may_install and status.role == role
    with pytest.raises(CapturePrivilegeError) as refused:
        services.install_capture(store, box, LIMITS, limited)
    store.rollback()
    assert refused.value.message == refusal(role)
    assert "\n" not in refused.value.message
    assert objects(source_db) == NONE  # the schema it could create was rolled back with the rest
    assert not fresh(store, limited).capture_enabled


# --- what the triggers record --------------------------------------------------------------


def test_alter_table_on_a_hostile_name_records_one_row_with_every_field(
    versioned_source_db: SourceDb,
) -> None:
    """On every supported major: who, what, where and when of one ALTER TABLE under SET ROLE."""
    db = versioned_source_db
    installer.install(db.conn, "shop")
    actor = f"capture_actor_{os.getpid()}_{db.name[-6:]}"
    table = sql.Identifier(HOSTILE)
    db.conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(actor)))
    try:
        db.conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(table))
        db.conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(actor)))
        oid = db.sql("SELECT %s::regclass::oid", (f'"{HOSTILE.replace(chr(34), chr(34) * 2)}"',))
        identity = db.sql("SELECT format('%%I.%%I', 'public', %s::text)", (HOSTILE,))[0][0]
        before_id = db.sql("SELECT coalesce(max(id), 0) FROM rosetta_capture.ddl_events")[0][0]

        statement = sql.SQL("ALTER TABLE {} ADD COLUMN added text").format(table)
        with psycopg.connect(db.url, application_name="capture-test") as actor_conn:
            actor_conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(actor)))
            lsn_before = actor_conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            xid = actor_conn.execute("SELECT pg_current_xact_id()::text").fetchone()
            actor_conn.execute(statement)
            lsn_after = actor_conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
            pid = actor_conn.info.backend_pid
            text = statement.as_string(actor_conn)
            user = actor_conn.info.user
        rows = [e for e in events(db) if e["id"] > before_id]
    finally:
        db.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(actor)))

    assert len(rows) == 1, rows
    row = rows[0]
    assert row["command_tag"] == "ALTER TABLE"
    assert row["object_type"] == "table"
    assert row["object_identity"] == identity
    assert row["table_oid"] == oid[0][0]
    assert (row["schema_name"], row["table_name"]) == ("public", HOSTILE)
    assert row["publication_name"] is None
    assert row["statement"] == text
    assert row["session_user_name"] == user
    assert row["current_user_name"] == actor
    assert row["application_name"] == "capture-test"
    assert str(row["client_addr"]) == "127.0.0.1"
    assert row["backend_pid"] == pid
    assert xid is not None and str(row["xid"]) == xid[0]
    assert lsn_before is not None and lsn_after is not None
    assert lsn_before[0] <= row["lsn"] <= lsn_after[0]


def test_a_statement_under_no_set_role_records_the_session_user(source_db: SourceDb) -> None:
    installer.install(source_db.conn, "shop")
    source_db.sql("CREATE TABLE plain (id int)")
    (row,) = events(source_db)
    assert row["current_user_name"] == row["session_user_name"] == source_db.conn.info.user
    assert (row["command_tag"], row["table_name"]) == ("CREATE TABLE", "plain")


def test_a_rolled_back_ddl_leaves_no_row(source_db: SourceDb) -> None:
    installer.install(source_db.conn, "shop")
    source_db.sql("CREATE TABLE t (id int)")
    kept = len(events(source_db))
    with pytest.raises(psycopg.errors.DivisionByZero), source_db.conn.transaction():
        source_db.sql("ALTER TABLE t ADD COLUMN gone int")
        source_db.sql("SELECT 1 / 0")
    assert len(events(source_db)) == kept


def test_a_statement_that_may_carry_a_secret_is_withheld_and_role_statements_are_ignored(
    source_db: SourceDb,
) -> None:
    installer.install(source_db.conn, "shop")
    source_db.sql("CREATE TABLE accounts (id int, password text)")
    source_db.sql("CREATE TABLE plain (id int)")
    role = f"ignored_{os.getpid()}_{source_db.name[-6:]}"
    source_db.sql(f"CREATE ROLE {role} PASSWORD 'hunter2'")
    source_db.sql(f"ALTER ROLE {role} PASSWORD 'hunter3'")
    source_db.sql(f"DROP ROLE {role}")
    rows = events(source_db)
    assert [(r["table_name"], r["statement"]) for r in rows] == [
        ("accounts", None),
        ("plain", "CREATE TABLE plain (id int)"),
    ]
    assert all("hunter" not in str(r) for r in rows)


def test_only_key_indexes_and_table_commands_are_recorded(source_db: SourceDb) -> None:
    installer.install(source_db.conn, "shop")
    source_db.sql("CREATE TABLE t (id int NOT NULL, a int NOT NULL)")
    source_db.sql("CREATE INDEX t_a ON t (a)")  # not a key: not recorded
    source_db.sql("CREATE UNIQUE INDEX t_id ON t (id)")
    source_db.sql("ALTER TABLE t REPLICA IDENTITY USING INDEX t_id")
    source_db.sql("ALTER INDEX t_id RENAME TO t_id2")  # the replica identity index
    source_db.sql("CREATE PUBLICATION p FOR TABLE t")
    source_db.sql("CREATE TABLE u (id int)")
    source_db.sql("ALTER PUBLICATION p ADD TABLE u")
    source_db.sql("ALTER PUBLICATION p DROP TABLE u")
    source_db.sql("DROP INDEX t_id2")
    source_db.sql("DROP TABLE u")
    source_db.sql("DROP PUBLICATION p")
    source_db.sql("CREATE VIEW v AS SELECT 1 AS x")  # not recorded
    got = [
        (r["command_tag"], r["object_type"], r["table_name"], r["publication_name"])
        for r in events(source_db)
    ]
    assert got == [
        ("CREATE TABLE", "table", "t", None),
        ("ALTER TABLE", "table", "t", None),
        ("ALTER INDEX", "index", "t", None),
        ("CREATE PUBLICATION", "publication", None, "p"),
        ("CREATE TABLE", "table", "u", None),
        ("ALTER PUBLICATION", "publication relation", "u", "p"),
        ("ALTER PUBLICATION", "publication relation", "u", "p"),
        ("DROP INDEX", "index", None, None),
        ("DROP TABLE", "table", "u", None),
        ("DROP PUBLICATION", "publication", None, "p"),
    ]
    dropped_index = events(source_db)[7]
    assert dropped_index["table_oid"] is None and dropped_index["object_identity"] == "public.t_id2"


def test_each_statement_notifies_its_first_event_id_at_commit(source_db: SourceDb) -> None:
    installer.install(source_db.conn, "shop")
    with psycopg.connect(source_db.url, autocommit=True) as listener:
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        with source_db.conn.transaction():
            source_db.sql("CREATE TABLE a (id int)")
            source_db.sql("CREATE TABLE b (id int)")
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []  # not before commit
        got = list(listener.notifies(timeout=5, stop_after=2))
    ids = [r["id"] for r in events(source_db)]
    assert [(n.channel, n.payload) for n in got] == [(CHANNEL, str(i)) for i in ids]


def test_a_broken_recorder_never_fails_the_users_ddl(source_db: SourceDb) -> None:
    installer.install(source_db.conn, "shop")
    source_db.sql("CREATE TABLE t (id int)")
    source_db.sql("DROP TABLE rosetta_capture.ddl_events")  # the triggers remain
    warnings: list[str] = []
    with psycopg.connect(source_db.url) as user_conn:
        user_conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
        user_conn.execute("ALTER TABLE t ADD COLUMN still_works int")
        user_conn.commit()
    assert source_db.sql(
        "SELECT count(*) FROM pg_attribute"
        " WHERE attrelid = 't'::regclass AND attname = 'still_works'"
    ) == [(1,)]
    assert len(warnings) == 1 and warnings[0].startswith("rosetta capture: could not record ALTER")


# --- status, CLI, API, page ----------------------------------------------------------------


def test_status_counts_events_and_sees_a_listener(
    store: Any, box: SecretBox, source_db: SourceDb, shop: Any
) -> None:
    before = services.capture_status(store, box, LIMITS, fresh(store, shop))
    assert not before.present and before.may_install and before.event_count is None
    install(store, box, shop)
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    with psycopg.connect(source_db.url, application_name=LISTENER_APPLICATION_NAME):
        status = services.capture_status(store, box, LIMITS, fresh(store, shop))
    assert status.installed and status.triggers_enabled and status.listener_connected
    assert status.event_count == 1 and status.last_event_at is not None
    assert status.table_bytes is not None and status.table_bytes > 0
    source_db.sql("ALTER EVENT TRIGGER rosetta_capture_ddl DISABLE")
    disabled = services.capture_status(store, box, LIMITS, fresh(store, shop))
    assert disabled.installed and not disabled.triggers_enabled and not disabled.listener_connected


def test_cli_install_status_uninstall(cli: Cli, source_db: SourceDb, shop: Any) -> None:
    status = cli("capture", "status", "shop")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[:2] == [
        "Source shop: polling every 60 s",
        "  triggers: not installed",
    ]
    done = cli("capture", "install", "shop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Installed real-time capture on shop")
    assert "No listener is connected yet" in done.stdout
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    status = cli("capture", "status", "shop")
    lines = status.stdout.splitlines()
    assert lines[0] == "Source shop: real-time (capture)"
    assert "  triggers: installed, enabled" in lines
    assert "  listener: not connected" in lines
    assert any(re.fullmatch(r"  events: 1 \(\d+ KiB\)", line) for line in lines)
    assert any(line.startswith("  last event: ") for line in lines)
    assert cli("capture", "install", "shop").stdout.startswith("Reinstalled")
    off = cli("capture", "uninstall", "shop")
    assert off.returncode == 0 and off.stdout.startswith("Uninstalled real-time capture from shop")
    again = cli("capture", "uninstall", "shop")
    assert again.returncode == 0 and again.stdout.startswith("Capture was not installed on shop")
    unknown = cli("capture", "install", "nope")
    assert unknown.returncode == 4 and unknown.stderr.startswith("Error: no source named 'nope'")


def test_cli_refusal_is_one_line_and_exit_code_8(
    cli: Cli, store: Any, box: SecretBox, source_db: SourceDb, role: str
) -> None:
    url = source_db.server.url(source_db.name, user=role, password="pw-capture")
    sources.add_source(
        store, box, sources.SourceInput("limited", sources.parse_dsn(url), "rosetta_publication")
    )
    store.commit()
    done = cli("capture", "install", "limited")
    assert done.returncode == 8
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"Error: {refusal(role)}"]
    assert objects(source_db) == NONE


def test_api_status_install_uninstall_and_roles(
    api: TestClient, client: TestClient, read_token: str, source_db: SourceDb, shop: Any
) -> None:
    path = f"/api/v1/sources/{shop.id}/capture"
    got = api.get(path)
    assert got.status_code == 200, got.text
    assert got.json()["mode"] == "polling" and got.json()["installed"] is False

    reader = {"Authorization": f"Bearer {read_token}"}
    assert client.get(path, headers=reader).status_code == 200
    assert client.post(path, headers=reader).status_code == 403
    assert client.delete(path, headers=reader).status_code == 403
    assert objects(source_db) == NONE

    done = api.post(path)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["changed"] is True and body["status"]["mode"] == "realtime"
    assert body["status"]["capture_enabled"] is True and body["status"]["event_count"] == 0
    assert api.post(path).json()["changed"] is False

    gone = api.delete(path)
    assert gone.status_code == 200 and gone.json()["changed"] is True
    assert gone.json()["status"]["mode"] == "polling"
    assert api.delete(path).json()["changed"] is False

    assert api.get("/api/v1/sources/999999/capture").status_code == 404
    assert api.post("/api/v1/sources/999999/capture").status_code == 404


def test_api_refusal_is_409_with_the_one_line(
    api: TestClient, store: Any, box: SecretBox, source_db: SourceDb, role: str
) -> None:
    url = source_db.server.url(source_db.name, user=role, password="pw-capture")
    limited = sources.add_source(
        store, box, sources.SourceInput("limited", sources.parse_dsn(url), "rosetta_publication")
    )
    store.commit()
    refused = api.post(f"/api/v1/sources/{limited.id}/capture")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("cannot install capture on limited: creating event")


def test_source_page_shows_the_mode_and_installs_and_uninstalls(
    web: TestClient, source_db: SourceDb, shop: Any
) -> None:
    page = f"/sources/{shop.id}"
    before = web.get(page).text
    assert "polling every 60 s" in before and "Install real-time capture" in before
    done = post(web, f"{page}/capture/install", page=page)
    assert done.status_code == 303
    after = web.get(page).text
    assert "real-time (capture)" in after and "Install real-time capture" not in after
    assert "Installed real-time capture" in after
    assert "Uninstall capture" in after
    assert objects(source_db) == ONE_SET
    confirm = web.get(f"{page}/capture/uninstall")
    assert confirm.status_code == 200 and "Uninstall real-time capture?" in confirm.text
    gone = post(web, f"{page}/capture/uninstall", page=f"{page}/capture/uninstall")
    assert gone.status_code == 303
    assert "polling every 60 s" in web.get(page).text
    assert objects(source_db) == NONE


def test_source_page_shows_the_refusal_as_one_line(
    web: TestClient, store: Any, box: SecretBox, source_db: SourceDb, role: str
) -> None:
    url = source_db.server.url(source_db.name, user=role, password="pw-capture")
    limited = sources.add_source(
        store, box, sources.SourceInput("limited", sources.parse_dsn(url), "rosetta_publication")
    )
    store.commit()
    page = f"/sources/{limited.id}"
    assert "Install real-time capture" not in web.get(page).text  # the role may not
    refused = post(web, f"{page}/capture/install", page=page)
    assert refused.status_code == 303
    assert "creating event triggers needs a superuser" in web.get(page).text


# --- doctor --------------------------------------------------------------------------------


def capture_checks(store: Any, box: SecretBox, source: Any) -> dict[str, doctor.Check]:
    diag: Diagnosis = doctor.diagnose(store, box, fresh(store, source))
    return {c.name: c for c in diag.checks if c.name.startswith("capture")}


def test_doctor_on_polling_passes_with_how_to_install(
    store: Any, box: SecretBox, shop: Any
) -> None:
    checks = capture_checks(store, box, shop)
    assert list(checks) == ["capture"]
    assert checks["capture"].status == PASS
    assert "on polling" in checks["capture"].detail
    assert "`rosetta capture install shop`" in checks["capture"].detail


def test_doctor_fails_when_triggers_are_disabled_or_the_schema_is_dropped(
    store: Any, box: SecretBox, source_db: SourceDb, shop: Any
) -> None:
    install(store, box, shop)
    source_db.sql("ALTER TABLE orders ADD COLUMN note text")
    checks = capture_checks(store, box, shop)
    assert checks["capture"].status == PASS
    assert checks["capture listener"].status == WARN
    assert checks["capture listener"].fix == "start `rosetta monitor` or `rosetta serve`"
    assert checks["capture events"].status == PASS
    assert re.fullmatch(
        r"1 events \(\d+\.\d MiB\); last event \d+s ago", checks["capture events"].detail
    )
    with psycopg.connect(source_db.url, application_name=LISTENER_APPLICATION_NAME):
        assert capture_checks(store, box, shop)["capture listener"].status == PASS

    source_db.sql("ALTER EVENT TRIGGER rosetta_capture_ddl DISABLE")
    disabled = capture_checks(store, box, shop)["capture"]
    assert disabled.status == FAIL and "disabled" in disabled.detail
    assert "on polling meanwhile" in disabled.detail
    assert disabled.fix == "re-run `rosetta capture install shop`"

    source_db.sql("DROP SCHEMA rosetta_capture CASCADE")
    dropped = capture_checks(store, box, shop)["capture"]
    assert dropped.status == FAIL and "missing" in dropped.detail
    assert dropped.fix == "re-run `rosetta capture install shop`"
