"""`rosetta doctor` checks, each in its PASS and its FAIL state, on real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rosetta import doctor, sources
from rosetta.crypto import SecretBox
from rosetta.doctor import FAIL, PASS, WARN, Diagnosis
from rosetta.monitor import Monitor
from rosetta.pg.server import find_bindir
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.store import repository


def statuses(diag: Diagnosis, name: str, subject: str | None = None) -> list[str]:
    return [
        c.status
        for c in diag.checks
        if c.name == name and (subject is None or c.subject == subject)
    ]


def check(diag: Diagnosis, name: str, subject: str | None = None) -> doctor.Check:
    found = [c for c in diag.checks if c.name == name and (subject is None or c.subject == subject)]
    assert len(found) == 1, (name, subject, diag.checks)
    return found[0]


@pytest.fixture
def shop(source_db: Any, register: Any) -> Any:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2))")
    source_db.sql("CREATE TABLE events (at timestamptz, payload jsonb)")  # no primary key
    source_db.sql("CREATE TABLE empty_t ()")
    source_db.sql("CREATE TABLE loose (id bigint PRIMARY KEY)")  # not in the publication
    source_db.sql("CREATE VIEW v_orders AS SELECT * FROM orders")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders, events, empty_t")
    return register()


def run(store: Any, box: SecretBox, source: Any, table: str | None = None) -> Diagnosis:
    fresh = repository.source_by_id(store, source.id)
    store.rollback()
    return doctor.diagnose(store, box, fresh, table)


@pytest.mark.pg_matrix  # the publication's tables are read per server version
def test_store_and_table_checks(
    store: Any, box: SecretBox, shop: Any, sync: Any, source_db: Any
) -> None:
    before = run(store, box, shop)
    assert check(before, "store").status == PASS
    assert check(before, "monitor").status == WARN  # no monitor ever ran
    assert check(before, "connection").status == PASS
    assert check(before, "wal_level").status == PASS
    # never synced: the flag disagrees with the source
    assert check(before, "publication").status == WARN
    assert check(before, "replication slot").status == WARN  # none configured: not a FAIL

    sync(shop)
    diag = run(store, box, shop)
    assert check(diag, "publication").status == PASS
    assert check(diag, "stored schema", "shop/orders").status == PASS
    assert check(diag, "replica identity", "shop/orders").status == PASS
    events_identity = check(diag, "replica identity", "shop/events")
    assert events_identity.status == FAIL
    assert events_identity.fix is not None and "REPLICA IDENTITY FULL" in events_identity.fix
    assert check(diag, "columns", "shop/orders").status == PASS
    assert check(diag, "columns", "shop/empty_t").status == FAIL
    assert check(diag, "stored schema", "shop/empty_t").status == FAIL
    assert check(diag, "table kind", "shop/orders").status == PASS
    assert check(diag, "in publication", "shop/orders").status == PASS
    assert check(diag, "select privilege", "shop/orders").status == PASS
    assert diag.failed

    view = run(store, box, shop, "v_orders")
    assert check(view, "table kind", "shop/v_orders").status == FAIL
    loose = run(store, box, shop, "loose")
    assert check(loose, "in publication", "shop/loose").status == FAIL
    assert (
        check(loose, "in publication", "shop/loose").fix
        == "ALTER PUBLICATION rosetta_publication ADD TABLE loose;"
    )
    assert check(loose, "stored schema", "shop/loose").status == FAIL
    ghost = run(store, box, shop, "ghost")
    assert check(ghost, "table exists", "shop/ghost").status == FAIL

    source_db.sql("DROP PUBLICATION rosetta_publication")
    gone = run(store, box, shop)
    assert check(gone, "publication").status == FAIL


def test_monitor_check(store: Any, store_url: str, box: SecretBox, shop: Any) -> None:
    Monitor(store_url, box, interval=60).run_cycle()
    assert check(run(store, box, shop), "monitor").status == PASS
    store.execute("UPDATE monitor_heartbeats SET last_cycle_started_at = now() - interval '1 hour'")
    store.commit()
    stale = check(run(store, box, shop), "monitor")
    assert stale.status == FAIL and stale.fix is not None and "rosetta monitor" in stale.fix


def test_select_privilege_and_connection(store: Any, box: SecretBox, source_db: Any) -> None:
    source_db.sql("CREATE TABLE secret_t (id bigint PRIMARY KEY)")
    source_db.sql("CREATE TABLE open_t (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE secret_t, open_t")
    role = f"reader_{os.getpid()}"
    source_db.sql(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw-reader'")
        .format(sql.Identifier(role))
        .as_string(source_db.conn)
    )
    source_db.sql(
        sql.SQL("GRANT SELECT ON open_t TO {}")
        .format(sql.Identifier(role))
        .as_string(source_db.conn)
    )
    try:
        url = source_db.server.url(source_db.name, user=role, password="pw-reader")
        src = sources.add_source(
            store,
            box,
            sources.SourceInput("limited", sources.parse_dsn(url), "rosetta_publication"),
        )
        store.commit()
        diag = run(store, box, src)
        denied = check(diag, "select privilege", "limited/secret_t")
        assert denied.status == FAIL
        assert denied.fix == f"GRANT SELECT ON TABLE secret_t TO {role};"
        assert check(diag, "select privilege", "limited/open_t").status == PASS

        source_db.sql(
            sql.SQL("ALTER ROLE {} PASSWORD 'changed'")
            .format(sql.Identifier(role))
            .as_string(source_db.conn)
        )
        broken = check(run(store, box, src), "connection")
        assert broken.status == FAIL and "password authentication failed" in broken.detail
    finally:
        source_db.sql(
            sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)).as_string(source_db.conn)
        )
        source_db.sql(
            sql.SQL("DROP ROLE {}").format(sql.Identifier(role)).as_string(source_db.conn)
        )


@pytest.fixture
def receiver(source_db: Any) -> Iterator[Any]:
    """Starts pg_recvlogical on a slot, making it active, as a pipeline would."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(slot: str) -> None:
        env = dict(os.environ, PGPASSWORD=source_db.server.password)
        procs.append(
            subprocess.Popen(
                [
                    str(find_bindir() / "pg_recvlogical"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(source_db.server.port),
                    "-U",
                    source_db.server.superuser,
                    "-d",
                    source_db.name,
                    "--slot",
                    slot,
                    "--start",
                    "-f",
                    "/dev/null",
                    "-o",
                    "proto_version=1",
                    "-o",
                    "publication_names=rosetta_publication",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_slot_check(
    store: Any, box: SecretBox, source_db: Any, register: Any, receiver: Any
) -> None:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    src = register(slot="rosetta_slot")
    missing = check(run(store, box, src), "replication slot")
    assert missing.status == FAIL and "pg_create_logical_replication_slot" in (missing.fix or "")

    source_db.sql("SELECT pg_create_logical_replication_slot('rosetta_slot', 'pgoutput')")
    try:
        idle = check(run(store, box, src), "replication slot")
        assert idle.status == WARN and "not active" in idle.detail
        receiver("rosetta_slot")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            active = check(run(store, box, src), "replication slot")
            if active.status == PASS:
                break
            time.sleep(0.2)
        assert active.status == PASS and "MiB of WAL retained" in active.detail
    finally:
        for _ in range(50):
            try:
                source_db.sql("SELECT pg_drop_replication_slot('rosetta_slot')")
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.2)


def test_wal_level_fails_on_a_replica_level_server(store: Any, box: SecretBox) -> None:
    with ThrowawayPostgres({"wal_level": "replica", "max_wal_senders": "10"}) as other:
        with psycopg.connect(other.url(), autocommit=True) as conn:
            conn.execute("CREATE PUBLICATION rosetta_publication")
        src = sources.add_source(
            store,
            box,
            sources.SourceInput("old", sources.parse_dsn(other.url()), "rosetta_publication"),
        )
        store.commit()
        diag = run(store, box, src)
        wal = check(diag, "wal_level")
        assert wal.status == FAIL and wal.fix is not None and "wal_level = logical" in wal.fix


def test_cli_doctor_exit_codes(store_url: str, shop: Any, sync: Any, tmp_path: Any) -> None:
    from tests.conftest import ROSETTA, TEST_KEY

    env = dict(
        os.environ,
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=TEST_KEY,
        ROSETTA_LOG_FILE=str(tmp_path / "a.log"),
    )
    sync(shop)
    ok = subprocess.run(
        [ROSETTA, "doctor", "shop", "orders"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "PASS  select privilege" in ok.stdout and "0 failed" in ok.stdout
    bad = subprocess.run(
        [ROSETTA, "doctor", "shop"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1
    assert "FAIL  replica identity" in bad.stdout
    assert "fix: ALTER TABLE events ADD PRIMARY KEY" in bad.stdout
    unknown = subprocess.run(
        [ROSETTA, "doctor", "nope"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 4 and unknown.stderr.startswith("Error: no source named")
