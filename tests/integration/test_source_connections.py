"""A worker's source connections are reused only for exactly the parameters they were opened
with, reset between syncs, dropped when broken or failed, bounded, and closed at the end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rosetta import sources
from rosetta.catalog.connection import ConnectionParams, SourceLimits
from rosetta.catalog.connection_cache import SourceConnections
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, SourceConnectionError
from rosetta.sync import open_reader, sync_source
from tests.conftest import SourceDb

LIMITS = SourceLimits(connect_timeout=5, statement_timeout=7, lock_timeout=3)


def pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def connections() -> Iterator[SourceConnections]:
    cache = SourceConnections(max_idle=4)
    yield cache
    cache.close()


@pytest.fixture
def reader_role(source_db: SourceDb) -> Iterator[tuple[str, str]]:
    """A login role of its own with a password (roles are per server: a unique name)."""
    name, password = f"reader_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    source_db.conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    yield name, password
    source_db.conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_a_connection_given_back_is_reused_reset_for_the_same_parameters(
    source_db: SourceDb, connections: SourceConnections
) -> None:
    params = sources.parse_dsn(source_db.url)
    lease = connections.take(params, LIMITS)
    first = pid(lease.conn)
    lease.conn.execute("SELECT set_config('TimeZone', 'Asia/Tokyo', false)")
    lease.conn.execute("SET statement_timeout = '1s'")
    lease.conn.execute("SELECT pg_advisory_lock(42)")
    lease.conn.execute("CREATE TEMP TABLE leftover (id int)")
    lease.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    connections.give_back(lease)

    again = connections.take(params, LIMITS)
    assert pid(again.conn) == first
    assert again.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert again.conn.execute("SHOW TimeZone").fetchone() != ("Asia/Tokyo",)
    assert again.conn.execute("SHOW statement_timeout").fetchone() == ("7s",)
    assert again.conn.execute("SHOW lock_timeout").fetchone() == ("3s",)
    assert again.conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone() == (0,)
    assert again.conn.execute("SELECT to_regclass('pg_temp.leftover')").fetchone() == (None,)
    assert (connections.opened, connections.reused) == (1, 1)
    connections.give_back(again)


def test_statements_psycopg_prepared_survive_the_reset(
    source_db: SourceDb, connections: SourceConnections
) -> None:
    """psycopg prepares a statement run often; the reset must not drop it behind its back."""
    params = sources.parse_dsn(source_db.url)
    pids = set()
    for n in range(12):
        lease = connections.take(params, LIMITS)
        pids.add(pid(lease.conn))
        assert lease.conn.execute("SELECT %s::int + 1", (n,)).fetchone() == (n + 1,)
        connections.give_back(lease)
    assert len(pids) == 1


def test_another_user_password_database_or_option_never_gets_the_connection(
    source_db: SourceDb, connections: SourceConnections, reader_role: tuple[str, str]
) -> None:
    superuser = sources.parse_dsn(source_db.url)
    name, password = reader_role
    reader = replace(superuser, username=name, password=password)
    lease = connections.take(reader, LIMITS)
    reader_pid = pid(lease.conn)
    connections.give_back(lease)

    # The same user with a wrong password must authenticate, and fail: never the idle one.
    with pytest.raises(SourceConnectionError):
        connections.take(replace(reader, password="not-the-password"), LIMITS)
    # Another user, another database, other options, other limits: a connection of their own.
    others: list[tuple[ConnectionParams, SourceLimits]] = [
        (superuser, LIMITS),
        (replace(reader, database="postgres"), LIMITS),
        (replace(reader, options={"sslmode": "disable"}), LIMITS),
        (reader, replace(LIMITS, statement_timeout=8)),
    ]
    for params, limits in others:
        other = connections.take(params, limits)
        try:
            assert pid(other.conn) != reader_pid
            row = other.conn.execute("SELECT current_user, current_database()").fetchone()
            assert row == (params.username, params.database)
        finally:
            other.conn.close()
    same = connections.take(reader, LIMITS)
    assert pid(same.conn) == reader_pid
    connections.give_back(same)


def test_a_connection_whose_read_failed_is_closed_not_reused(
    source_db: SourceDb, connections: SourceConnections, store: Any, box: SecretBox
) -> None:
    source = sources.add_source(
        store,
        box,
        sources.SourceInput("s", sources.parse_dsn(source_db.url), "no_such_publication"),
    )
    store.commit()
    reader = open_reader(source, box, LIMITS, connections)
    source_db.sql("SELECT pg_terminate_backend(%s)", (pid(reader.conn),))
    with pytest.raises(RosettaError):
        reader.publication()
    reader.close()
    reader.close()  # twice is harmless
    assert connections.idle_count() == 0


def test_a_connection_that_died_while_idle_is_replaced(
    source_db: SourceDb, connections: SourceConnections
) -> None:
    params = sources.parse_dsn(source_db.url)
    lease = connections.take(params, LIMITS)
    dead = pid(lease.conn)
    connections.give_back(lease)
    source_db.sql("SELECT pg_terminate_backend(%s)", (dead,))
    fresh = connections.take(params, LIMITS)
    assert pid(fresh.conn) != dead
    assert connections.opened == 2
    connections.give_back(fresh)


def test_idle_connections_are_bounded_and_closed_at_the_end(source_db: SourceDb) -> None:
    cache = SourceConnections(max_idle=1)
    params = sources.parse_dsn(source_db.url)
    first, second = cache.take(params, LIMITS), cache.take(params, LIMITS)
    cache.give_back(first)
    cache.give_back(second)
    assert cache.idle_count() == 1
    assert first.conn.closed and not second.conn.closed
    cache.close()
    assert second.conn.closed
    late = SourceConnections(max_idle=1)
    lease = late.take(params, LIMITS)
    late.close()
    late.give_back(lease)  # given back after the close: closed, not kept
    assert lease.conn.closed and late.idle_count() == 0


def test_syncs_of_sources_on_one_database_share_a_connection(
    source_db: SourceDb, connections: SourceConnections, store: Any, box: SecretBox
) -> None:
    source_db.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION pa FOR TABLE a; CREATE PUBLICATION pb FOR TABLE b")
    params = sources.parse_dsn(source_db.url)
    first = sources.add_source(store, box, sources.SourceInput("a", params, "pa"))
    second = sources.add_source(store, box, sources.SourceInput("b", params, "pb"))
    store.commit()
    for source in (first, second, first, second):
        summary = sync_source(store, source, box, limits=LIMITS, connections=connections)
        assert summary.error is None
    assert (connections.opened, connections.reused) == (1, 3)
    tracked = store.execute(
        "SELECT s.name, t.table_name FROM table_metadata_list t JOIN sources s "
        "ON s.id = t.source_id ORDER BY 1"
    ).fetchall()
    assert tracked == [("a", "a"), ("b", "b")]
