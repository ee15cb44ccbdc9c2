"""Fixtures of the REST API tests (an app over the test's store, a client, a token) and of the
web UI tests (``web_app``, ``web_client``, ``web_token``, and ``web``: a client logged in)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rosetta import sources, tokens
from rosetta.api.app import create_app
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.monitor import Monitor
from tests.conftest import TEST_KEY, Recorder, SourceDb
from tests.integration.web_helpers import log_in


def make_app(store_url: str, box: SecretBox, monitor: Monitor | None = None) -> FastAPI:
    settings = Settings(
        database_url=store_url, secret_key=TEST_KEY, log_file=None, source_connect_timeout=3
    )
    return create_app(settings, store_url, box, monitor=monitor)


@pytest.fixture
def app(store_url: str, box: SecretBox) -> FastAPI:
    return make_app(store_url, box)


@pytest.fixture
def client(app: FastAPI, recorder: Recorder) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        test_client.event_hooks["response"].append(recorder)
        yield test_client


@pytest.fixture
def token(store: Any) -> str:
    """An admin token: the API tests register sources and act on them."""
    return tokens.create_token(store, "tester", tokens.Role.ADMIN)


@pytest.fixture
def read_token(store: Any) -> str:
    return tokens.create_token(store, "reader", tokens.Role.READ)


@pytest.fixture
def api(client: TestClient, token: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def source_body(source_db: SourceDb, **changes: Any) -> dict[str, Any]:
    params = sources.parse_dsn(source_db.url)
    body: dict[str, Any] = {
        "name": "shop",
        "host": params.host,
        "port": params.port,
        "database": params.database,
        "username": params.username,
        "password": params.password,
        "publication_name": "rosetta_publication",
    }
    body.update(changes)
    return body


@pytest.fixture
def add_source(api: TestClient, source_db: SourceDb) -> Callable[..., dict[str, Any]]:
    """Register ``source_db`` through the API; returns the created source's JSON."""

    def _add(**changes: Any) -> dict[str, Any]:
        response = api.post("/api/v1/sources", json=source_body(source_db, **changes))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()["source"]
        return created

    return _add


def password_of(source_db: SourceDb) -> str:
    password = sources.parse_dsn(source_db.url).password
    assert password
    return password


# --- the web UI: a browser-like client that does not follow redirects, logged in by a form -----


@pytest.fixture
def web_app(store_url: str, box: SecretBox) -> FastAPI:
    return make_app(store_url, box)


@pytest.fixture
def web_client(web_app: FastAPI, recorder: Recorder) -> Iterator[TestClient]:
    with TestClient(web_app, follow_redirects=False) as test_client:
        test_client.event_hooks["response"].append(recorder)
        yield test_client


@pytest.fixture
def web_token(store: Any) -> str:
    return tokens.create_token(store, "web-tester", tokens.Role.ADMIN)


@pytest.fixture
def web(web_client: TestClient, web_token: str) -> TestClient:
    """``web_client`` logged in with ``web_token`` (an admin)."""
    response = log_in(web_client, web_token)
    assert response.status_code == 303
    return web_client


# --- webhook endpoints that misbehave: real local TCP servers ----------------------------------

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
GARBAGE = b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n"
HUGE_HEADER = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"


def _read_request(conn: socket.socket) -> None:
    """Read one whole HTTP request (headers and a Content-Length body), so that closing the
    connection afterwards is a clean close, never a reset for unread bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
        if not data[:1].isupper():
            return  # not HTTP (a TLS ClientHello): what came is all there is to read
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or b"0")
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


class Peer:
    """A TCP server on 127.0.0.1 that reads each request and answers ``reply`` (None: never
    answers, holding the connection open); with ``trickle``, sends it one byte at a time."""

    def __init__(self, reply: bytes | None, *, trickle: float = 0.0) -> None:
        self.reply = reply
        self.trickle = trickle
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.connections = 0
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                _read_request(conn)
                if self.reply is None:
                    self.stopping.wait()
                elif self.trickle:
                    for byte in self.reply:
                        if self.stopping.wait(self.trickle):
                            break
                        conn.sendall(bytes([byte]))
                else:
                    conn.sendall(self.reply)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        self.accepter.join(5)
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def peer(peers: list[Peer], reply: bytes | None, *, trickle: float = 0.0) -> Peer:
    made = Peer(reply, trickle=trickle)
    peers.append(made)
    return made
