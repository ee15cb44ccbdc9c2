"""A stored source password never reaches a server the user did not register it for.

A fake PostgreSQL server on a local port asks every client for its password in clear text and
records what it receives. Every way of pointing a registered source at it — an option spelt
with spaces, another case or an ``=``, ``hostaddr``, ``service``, a new port without the
password, a TLS downgrade — from the API, the CLI and the web form, must leave it with nothing.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rosetta import sources
from rosetta.catalog.connection import ConnectionParams, SourceLimits, connect, validate_options
from rosetta.errors import InvalidInputError, NetworkNotAllowedError, SourceConnectionError
from rosetta.netpolicy import for_sources
from rosetta.store import repository
from tests.conftest import Cli, SourceDb
from tests.integration.conftest import password_of
from tests.integration.web_helpers import csrf_of

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


class FakePostgres:
    """Answers like a PostgreSQL server that wants a clear-text password; keeps what it got."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            while True:  # SSL / GSS requests first, then the startup message
                length, code = struct.unpack("!ii", self._read(conn, 8))
                rest = self._read(conn, length - 8)
                if code in (SSL_REQUEST, GSS_REQUEST):
                    conn.sendall(b"N")
                    continue
                self.received.append(rest)
                break
            conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            kind = self._read(conn, 1)
            (length,) = struct.unpack("!i", self._read(conn, 4))
            self.received.append(kind + self._read(conn, length - 4))
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()

    def got(self, secret: str) -> bool:
        return any(secret.encode() in data for data in self.received)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def fake() -> Iterator[FakePostgres]:
    server = FakePostgres()
    yield server
    server.close()


SPELLINGS = [
    {"port ": "{port}"},
    {" port": "{port}"},
    {"PORT": "{port}"},
    {"host ": "127.0.0.2"},
    {"hostaddr": "127.0.0.1", "port\t": "{port}"},
    {"hostaddr": "127.0.0.1"},
    {"sslmode=disable port": "{port}"},
    {"service": "evil"},
    {"servicefile": "/etc/passwd"},
    {"passfile": "/etc/passwd"},
    {"sslrootcert": "/etc/shadow"},
    {" password": "in-clear"},
    {"options": "-c statement_timeout=0"},
    {"dbname": "postgres port={port}"},
]


def _options(spelling: dict[str, str], port: int) -> dict[str, str]:
    return {k: v.format(port=port) for k, v in spelling.items()}


# --- the rules themselves ---------------------------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: repr(next(iter(s))))
def test_options_outside_the_allow_list_are_refused_as_spelt(spelling: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_options(_options(spelling, 1))
    assert "\n" not in str(error.value)


def test_allowed_options_with_bad_values_are_refused() -> None:
    assert validate_options({"sslmode": "verify-full", "keepalives_idle": "30"})
    for bad in (
        {"sslmode": "sometimes"},
        {"keepalives_idle": "-1"},
        {"require_auth": "!md5,scram-sha-256"},
    ):
        with pytest.raises(InvalidInputError):
            validate_options(bad)


@pytest.mark.parametrize("host", ["a,b", "db host", "db\x00", "\ud800", "", "x" * 300])
def test_a_host_is_one_host(host: str) -> None:
    with pytest.raises(InvalidInputError):
        ConnectionParams(host, 5432, "db", "u", None, {}).validated()


@pytest.mark.parametrize("field", ["database", "username", "password"])
@pytest.mark.parametrize("value", ["a\x00b", "\udcff"])
def test_text_fields_must_be_text_libpq_can_take(field: str, value: str) -> None:
    values: dict[str, Any] = {"database": "db", "username": "u", "password": "pw"}
    values[field] = value
    params = ConnectionParams("127.0.0.1", 5432, options={}, **values)
    with pytest.raises(InvalidInputError):
        params.validated()


def test_cleartext_password_authentication_is_refused(fake: FakePostgres) -> None:
    params = ConnectionParams("127.0.0.1", fake.port, "db", "u", "the-secret-pw", {})
    with pytest.raises(SourceConnectionError) as error:
        connect(params, SourceLimits(connect_timeout=3))
    assert "clear text" in error.value.message
    assert fake.connections >= 1
    assert not fake.got("the-secret-pw")


def test_a_source_may_allow_cleartext_explicitly(fake: FakePostgres) -> None:
    params = ConnectionParams(
        "127.0.0.1", fake.port, "db", "u", "allowed-pw", {"require_auth": "password"}
    )
    with pytest.raises(SourceConnectionError):
        connect(params, SourceLimits(connect_timeout=3))
    assert fake.got("allowed-pw")


def test_the_network_policy_is_checked_before_connecting(fake: FakePostgres) -> None:
    limits = SourceLimits(connect_timeout=3, networks=for_sources("10.0.0.0/8"))
    params = ConnectionParams("127.0.0.1", fake.port, "db", "u", "pw", {})
    with pytest.raises(NetworkNotAllowedError) as error:
        connect(params, limits)
    assert "ROSETTA_SOURCE_NETWORKS" in error.value.message
    assert fake.connections == 0
    for host in ("169.254.169.254", "/tmp"):
        with pytest.raises(NetworkNotAllowedError):
            connect(ConnectionParams(host, 5432, "db", "u", None, {}), SourceLimits())


# --- through the API --------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS, ids=lambda s: repr(next(iter(s))))
def test_api_patch_of_options_never_sends_the_stored_password(
    api: TestClient,
    add_source: Any,
    source_db: SourceDb,
    fake: FakePostgres,
    spelling: dict[str, str],
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    created = add_source()
    path = f"/api/v1/sources/{created['id']}"
    response = api.patch(path, json={"options": _options(spelling, fake.port)})
    assert response.status_code == 422, response.text
    assert "\n" not in response.json()["detail"]
    assert api.post(f"{path}/test-connection").status_code == 200
    assert not fake.got(password_of(source_db))
    assert api.get(path).json()["options"] == {}


@pytest.mark.parametrize(
    "change",
    [
        {"port": "{port}"},
        {"host": "localhost", "port": "{port}"},
        {"options": {"sslmode": "disable"}},
        {"options": {"require_auth": "password"}},
        {"options": {"channel_binding": "disable"}},
    ],
    ids=["port", "host", "sslmode", "require_auth", "channel_binding"],
)
def test_api_change_of_where_or_how_needs_the_password(
    api: TestClient,
    add_source: Any,
    source_db: SourceDb,
    fake: FakePostgres,
    change: dict[str, Any],
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    created = add_source()
    body = {k: (int(v.format(port=fake.port)) if k == "port" else v) for k, v in change.items()}
    response = api.patch(f"/api/v1/sources/{created['id']}", json=body)
    assert response.status_code == 422, response.text
    assert "enter the password again" in response.json()["detail"]
    assert fake.connections == 0
    assert api.get(f"/api/v1/sources/{created['id']}").json()["port"] == created["port"]


def test_api_new_password_to_a_cleartext_server_is_not_sent(
    api: TestClient, add_source: Any, source_db: SourceDb, fake: FakePostgres
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    created = add_source()
    response = api.patch(
        f"/api/v1/sources/{created['id']}", json={"port": fake.port, "password": "typed-again"}
    )
    assert response.status_code == 502, response.text
    assert "clear text" in response.json()["detail"]
    assert not fake.got("typed-again")


def test_api_source_refused_by_network_policy(
    store_url: str, box: Any, store: Any, source_db: SourceDb
) -> None:
    from rosetta import tokens
    from rosetta.api.app import create_app
    from rosetta.config import Settings
    from tests.conftest import TEST_KEY
    from tests.integration.conftest import source_body

    settings = Settings(
        database_url=store_url,
        secret_key=TEST_KEY,
        log_file=None,
        source_networks="10.0.0.0/8, db.internal",
    )
    token = tokens.create_token(store, "net-admin", tokens.Role.ADMIN)
    with TestClient(create_app(settings, store_url, box)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        response = client.post("/api/v1/sources", json=source_body(source_db))
    assert response.status_code == 403, response.text
    assert "ROSETTA_SOURCE_NETWORKS" in response.json()["detail"]
    assert repository.list_sources(store) == []


# --- through the CLI --------------------------------------------------------------------------


def test_cli_update_to_another_port_needs_the_password(
    cli: Cli, source_db: SourceDb, fake: FakePostgres
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    assert (
        cli(
            "source",
            "add",
            "shop",
            "--dsn",
            source_db.url,
            "--publication",
            "rosetta_publication",
            "--no-sync",
        ).returncode
        == 0
    )
    params = sources.parse_dsn(source_db.url)
    moved = f"postgresql://{params.username}@127.0.0.1:{fake.port}/{params.database}"
    result = cli("source", "update", "shop", "--dsn", moved)
    assert result.returncode != 0
    assert "enter the password again" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    same = f"postgresql://{params.username}@127.0.0.1:{params.port}/{params.database}"
    for query in (
        f"?port%20={fake.port}",
        f"?PORT={fake.port}",
        "?hostaddr=127.0.0.1",
        "?sslmode=disable",
        "?service=evil",
        "?passfile=/etc/passwd",
        "?require_auth=password",
    ):
        result = cli("source", "update", "shop", "--dsn", same + query)
        assert result.returncode != 0, query
        assert "Traceback" not in result.stderr
    assert fake.connections == 0
    assert not fake.got(password_of(source_db))


# --- through the web form ---------------------------------------------------------------------


def test_web_edit_to_another_port_needs_the_password(
    web: TestClient, store: Any, register: Any, source_db: SourceDb, fake: FakePostgres
) -> None:
    source_db.sql("CREATE PUBLICATION rosetta_publication")
    source = register()
    path = f"/sources/{source.id}/edit"
    for action in ("test", "save"):
        for sslmode, port in (("", fake.port), ("disable", source.port)):
            form = {
                "name": source.name,
                "host": "127.0.0.1",
                "port": str(port),
                "database": source.database,
                "username": source.username,
                "password": "",
                "publication_name": "rosetta_publication",
                "replication_name": "",
                "sslmode": sslmode,
                "action": action,
                "csrf": csrf_of(web, path),
            }
            page = web.post(path, data=form)
            assert page.status_code in (200, 422), page.text
            assert "enter the password again" in page.text
    assert fake.connections == 0
    assert not fake.got(password_of(source_db))
    assert repository.source_by_id(store, source.id).port == source.port
