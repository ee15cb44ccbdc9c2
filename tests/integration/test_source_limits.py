"""Every read of a source has a time limit, and a log line follows what it announces."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from rosetta import sources
from rosetta.catalog.connection import SourceLimits, connect
from rosetta.crypto import SecretBox
from rosetta.store import repository
from rosetta.sync import sync_source
from tests.conftest import SourceDb


def test_every_source_connection_has_statement_and_lock_timeouts(source_db: SourceDb) -> None:
    limits = SourceLimits(connect_timeout=3, statement_timeout=2.5, lock_timeout=0.75)
    conn = connect(sources.parse_dsn(source_db.url), limits)
    try:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2500ms",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("750ms",)
    finally:
        conn.close()


@pytest.fixture
def locker(source_db: SourceDb) -> Any:
    """A second session of the source that can hold a table's ACCESS EXCLUSIVE lock."""
    conn = psycopg.connect(source_db.url)
    yield conn
    conn.close()


# On every major: pg_get_publication_tables() locks each table on 16+, the reader must not.
@pytest.mark.pg_matrix
def test_a_locked_table_fails_alone_within_the_lock_timeout(
    store: Any,
    box: SecretBox,
    source_db: SourceDb,
    register: Any,
    sync: Any,
    locker: psycopg.Connection[Any],
    caplog_rosetta: pytest.LogCaptureFixture,
) -> None:
    source_db.sql("CREATE TABLE orders (id int PRIMARY KEY, state text DEFAULT 'new')")
    source_db.sql("CREATE TABLE customers (id int PRIMARY KEY, name text DEFAULT '')")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders, customers")
    source = register()
    assert sorted(sync(source).added) == ["customers", "orders"]
    source_db.sql("ALTER TABLE customers ADD COLUMN email text")
    # A rewrite in progress (ALTER TABLE ... TYPE, VACUUM FULL) holds this lock until it ends.
    locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")

    fresh = repository.source_by_id(store, source.id)
    store.rollback()
    summary = sync_source(
        store, fresh, box, limits=SourceLimits(connect_timeout=3, lock_timeout=0.3), full=True
    )

    assert [name for name, _ in summary.failed] == ["orders"]
    assert "locked by another session" in summary.failed[0][1]
    assert [c.table for c in summary.changed] == ["customers"]
    assert any(
        "orders" in r.getMessage() and "locked" in r.getMessage()
        for r in caplog_rosetta.records
        if r.levelno == logging.ERROR
    )
    locker.rollback()
    assert sync_source(store, repository.source_by_id(store, source.id), box).failed == []


def test_log_lines_are_written_after_the_sync_commits(
    store_url: str,
    source_db: SourceDb,
    register: Any,
    sync: Any,
) -> None:
    source_db.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    source = register()
    seen: list[int] = []

    class CheckStore(logging.Handler):
        """When the line is written, is what it announces in the store for anyone to read?"""

        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Added new table tracking"):
                with psycopg.connect(store_url) as other:
                    row = other.execute(
                        "SELECT count(*) FROM table_metadata_list WHERE table_name = 'orders'"
                    ).fetchone()
                    assert row is not None
                    seen.append(row[0])

    handler = CheckStore()
    logger = logging.getLogger("rosetta")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        assert sync(source).added == ["orders"]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert seen == [1]
