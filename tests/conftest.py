"""Test fixtures: real PostgreSQL servers started for the run, one database per test.

One throwaway server per test process (pytest-xdist worker) holds every test's databases: the
store of each test is copied from a migrated template (``CREATE DATABASE ... TEMPLATE``), and each
test's source database is made fresh.

Sources can be any supported PostgreSQL major: ``pg_of(major)`` starts one server per major per
test process when first asked, ``versioned_source_db`` gives a source database on each, and a
module marked ``pytestmark = pytest.mark.pg_matrix`` runs its ``source_db`` tests (and so
``register`` and ``sync``) once per major. The store always stays on ``pg``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rosetta.crypto import SecretBox
from rosetta.pg.server import PostgresServer
from rosetta.pg.testing import ThrowawayPostgres
from rosetta.pg.versions import INSTALL_HINT, SUPPORTED_MAJORS, source_bindirs
from rosetta.store import db

TEST_KEY = "test-secret-key-for-rosetta-tests"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with ThrowawayPostgres() as server:
        admin = server.url()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE store_template")
        db.upgrade(server.url("store_template"))
        yield server


def _unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_counter)}"


@pytest.fixture
def store_url(pg: PostgresServer) -> Iterator[str]:
    name = _unique("store")
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE store_template").format(sql.Identifier(name))
        )
    yield pg.url(name)
    _drop(pg, name)


def _drop(pg: PostgresServer, name: str) -> None:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def store(store_url: str) -> Iterator[psycopg.Connection[Any]]:
    conn = db.connect(store_url)
    yield conn
    conn.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(TEST_KEY)


def _major(server: PostgresServer) -> int:
    with psycopg.connect(server.url()) as conn:
        return conn.info.server_version // 10000


@pytest.fixture(scope="session")
def pg_of(pg: PostgresServer) -> Iterator[Callable[[int], PostgresServer]]:
    """``pg_of(major)``: a server of that PostgreSQL major, started on first use in this test
    process (``pg`` itself for its own major); a major without binaries fails the test."""
    started: dict[int, ThrowawayPostgres] = {}
    default_major = _major(pg)

    def _pg_of(major: int) -> PostgresServer:
        if major == default_major:
            return pg
        if major not in started:
            bindir = source_bindirs().get(major)
            if bindir is None:
                pytest.fail(f"no PostgreSQL {major} server binaries: {INSTALL_HINT}", pytrace=False)
            throwaway = ThrowawayPostgres(bindir=bindir)
            throwaway.start()
            started[major] = throwaway
        return started[major].server

    yield _pg_of
    for throwaway in started.values():
        throwaway.stop()


@dataclass
class SourceDb:
    """A source database of the test's own, and a superuser connection for its DDL."""

    server: PostgresServer
    name: str
    conn: psycopg.Connection[Any]

    @property
    def url(self) -> str:
        return self.server.url(self.name)

    @property
    def major(self) -> int:
        """The source server's PostgreSQL major version (14, 15, ...)."""
        return self.conn.info.server_version // 10000

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(statement.encode(), params)  # tests' own literal DDL
        return cur.fetchall() if cur.description else []


def requires_pg(source_db: SourceDb, major: int, feature: str = "") -> None:
    """Skip the test on a source older than ``major`` (only where the feature does not exist)."""
    if source_db.major < major:
        what = feature or "this test"
        pytest.skip(f"{what} needs PostgreSQL >= {major}; the source is {source_db.major}")


def _fresh_source_db(server: PostgresServer) -> Iterator[SourceDb]:
    name = _unique("src")
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn = psycopg.connect(server.url(name), autocommit=True)
    yield SourceDb(server, name, conn)
    conn.close()
    _drop(server, name)


def _major_id(major: int) -> str:
    return f"pg{major}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """In a module marked ``pg_matrix``, every ``source_db`` test runs once per supported major."""
    if "source_db" in metafunc.fixturenames and metafunc.definition.get_closest_marker("pg_matrix"):
        metafunc.parametrize("source_major", SUPPORTED_MAJORS, ids=_major_id)


@pytest.fixture
def source_major() -> int | None:
    """The source's PostgreSQL major (None: the ``pg`` server); a ``pg_matrix`` module sets it."""
    return None


@pytest.fixture
def source_db(
    pg: PostgresServer, pg_of: Callable[[int], PostgresServer], source_major: int | None
) -> Iterator[SourceDb]:
    yield from _fresh_source_db(pg if source_major is None else pg_of(source_major))


@pytest.fixture(params=SUPPORTED_MAJORS, ids=_major_id)
def versioned_source_db(
    request: pytest.FixtureRequest, pg_of: Callable[[int], PostgresServer]
) -> Iterator[SourceDb]:
    """A fresh source database on each supported PostgreSQL major."""
    yield from _fresh_source_db(pg_of(request.param))


@pytest.fixture
def caplog_rosetta(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log lines of the ``rosetta`` loggers, as a user would read them in the log."""
    logger = logging.getLogger("rosetta")
    logger.propagate = True
    caplog.set_level(logging.INFO, logger="rosetta")
    return caplog


@pytest.fixture
def register(store: psycopg.Connection[Any], box: SecretBox, source_db: SourceDb) -> Any:
    """Register ``source_db`` as a source in the test's store; returns the Source."""
    from rosetta import sources

    def _register(
        name: str = "shop", publication: str = "rosetta_publication", slot: str | None = None
    ) -> Any:
        params = sources.parse_dsn(source_db.url)
        source = sources.add_source(
            store, box, sources.SourceInput(name, params, publication, slot)
        )
        store.commit()
        return source

    return _register


@pytest.fixture
def sync(store: psycopg.Connection[Any], box: SecretBox) -> Any:
    """Run one sync of a source, as the monitor and Refresh do."""
    from rosetta.store import repository
    from rosetta.sync import sync_source

    def _sync(source: Any) -> Any:
        fresh = repository.source_by_id(store, source.id)
        store.rollback()
        return sync_source(store, fresh, box)

    return _sync


# --- the `rosetta` command as a user runs it ------------------------------------------------

ROSETTA = str(Path(sys.executable).with_name("rosetta"))


class Cli:
    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [ROSETTA, *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def cli(store_url: str, tmp_path: Path) -> Cli:
    log_file = tmp_path / "logs" / "app.log"
    env = dict(
        os.environ,
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=TEST_KEY,
        ROSETTA_LOG_FILE=str(log_file),
    )
    return Cli(env, log_file)


# --- test doubles at the edges: what an HTTP client received, what a webhook endpoint got ---


class Recorder:
    """Every response body the client received, to prove a secret never left the server."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, response: Any) -> None:
        response.read()
        self.bodies.append(f"{response.headers}\n{response.text}")

    def assert_absent(self, secret: str) -> None:
        assert self.bodies, "no responses recorded"
        for body in self.bodies:
            assert secret not in body


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class Receiver:
    """A local HTTP endpoint that records what it is sent and answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give first, then 200
        self.block = threading.Event()  # set: hold requests until released
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers), "body": body})
                if receiver.block.is_set():
                    receiver.release.wait(30)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
