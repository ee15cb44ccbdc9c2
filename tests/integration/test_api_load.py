"""The app under a burst of concurrent readers, and request bodies over the size limit, over
real HTTP (uvicorn on 127.0.0.1).

No timings are asserted: every request must end within the client's timeout, with 200 or with
503 and ``Retry-After``, and health must stay 200 while the store is fine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rosetta.crypto import SecretBox
from tests.conftest import SourceDb
from tests.integration.conftest import make_app
from tests.live_server import serving

BURST = 80  # twice anyio's 40 worker threads, ten times the pool's 8 connections
REQUESTS_EACH = 4
CLIENT_TIMEOUT = 30.0
LIMIT = 1024 * 1024  # ROSETTA_MAX_REQUEST_BYTES's default
TOO_LARGE = {
    "detail": f"request body too large: the limit is {LIMIT} bytes (ROSETTA_MAX_REQUEST_BYTES)"
}


@pytest.fixture
def base_url(store_url: str, box: SecretBox) -> Iterator[str]:
    with serving(make_app(store_url, box)) as base:
        yield base


@pytest.fixture
def source_id(source_db: SourceDb, register: Any, sync: Any) -> int:
    for i in range(30):
        source_db.sql(f"CREATE TABLE t{i:02d} (id bigint PRIMARY KEY, note text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR ALL TABLES")
    source = register()
    assert sync(source).status == "ok"
    return int(source.id)


@dataclass
class Burst:
    """What BURST concurrent readers and a health probe saw."""

    outcomes: list[tuple[int, str | None, str]] = field(default_factory=list)  # code, retry, body
    failures: list[str] = field(default_factory=list)  # requests that raised (a timeout: hung)
    health: list[int] = field(default_factory=list)


def burst(base_url: str, token: str, path: str) -> Burst:
    """BURST readers, all started at once, each sending REQUESTS_EACH requests in turn on its
    own keep-alive connection, while a probe asks for health every 0.1 s."""
    seen = Burst()
    over = threading.Event()
    start = threading.Barrier(BURST)

    def reader() -> None:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=auth, timeout=CLIENT_TIMEOUT) as client:
            start.wait(timeout=60)
            for _ in range(REQUESTS_EACH):
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    seen.failures.append(f"GET {path}: {exc!r}")
                    continue
                retry = response.headers.get("retry-after")
                seen.outcomes.append((response.status_code, retry, response.text))

    def prober() -> None:
        with httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT) as client:
            while not over.is_set():
                try:
                    seen.health.append(client.get("/api/v1/health").status_code)
                except httpx.HTTPError as exc:
                    seen.failures.append(f"GET /api/v1/health: {exc!r}")
                over.wait(0.1)

    probe = threading.Thread(target=prober)
    probe.start()
    try:
        with ThreadPoolExecutor(BURST) as pool:
            for future in [pool.submit(reader) for _ in range(BURST)]:
                future.result()
    finally:
        over.set()
        probe.join(CLIENT_TIMEOUT)
    return seen


def test_a_burst_of_readers_gets_answers_and_health_stays_up(
    base_url: str, token: str, source_id: int
) -> None:
    path = f"/api/v1/sources/{source_id}/tables"
    seen = burst(base_url, token, path)
    assert seen.failures == []
    assert len(seen.outcomes) == BURST * REQUESTS_EACH
    assert {code for code, _, _ in seen.outcomes} <= {200, 503}
    assert all(retry == "1" for code, retry, _ in seen.outcomes if code == 503)
    assert any(code == 200 for code, _, _ in seen.outcomes)
    assert seen.health and set(seen.health) == {200}
    # Still serving afterwards: nothing was left holding a connection.
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(base_url + path, headers=auth, timeout=CLIENT_TIMEOUT).status_code == 200


def test_past_the_wait_a_request_gets_503_with_retry_after(
    store_url: str, box: SecretBox, token: str, source_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rosetta.api import app as app_module

    monkeypatch.setattr(app_module, "ADMISSION_WAIT", 0.0)  # no waiting: a full gate sheds
    path = f"/api/v1/sources/{source_id}/tables"
    with serving(make_app(store_url, box)) as base:
        seen = burst(base, token, path)
    assert seen.failures == []
    shed = [(retry, body) for code, retry, body in seen.outcomes if code == 503]
    assert shed, "80 readers at once, 8 at a time, none waiting: some must be shed"
    assert set(shed) == {("1", '{"detail":"Rosetta is busy: try again in a moment"}')}
    assert {code for code, _, _ in seen.outcomes} == {200, 503}
    assert seen.health and set(seen.health) == {200}


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts connections and never answers: a source that hangs."""
    import socket

    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    yield server.getsockname()[1]
    server.close()


def test_requests_waiting_on_a_dead_source_leave_room_for_reads(
    store_url: str,
    box: SecretBox,
    store: Any,
    token: str,
    source_id: int,
    black_hole: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight refreshes of a source that never answers (each waits out the 3 s connect timeout)
    would hold all eight slots; a read waiting 1 s at most must still get its 200."""
    from rosetta import sources
    from rosetta.api import app as app_module
    from rosetta.catalog.connection import ConnectionParams

    monkeypatch.setattr(app_module, "ADMISSION_WAIT", 1.0)
    dead = sources.add_source(
        store,
        box,
        sources.SourceInput(
            "dead", ConnectionParams("127.0.0.1", black_hole, "db", "u", "pw", {}), "pub"
        ),
    )
    auth = {"Authorization": f"Bearer {token}"}
    with serving(make_app(store_url, box)) as base, httpx.Client(timeout=CLIENT_TIMEOUT) as c:
        started = threading.Barrier(9)

        def refresh() -> int:
            started.wait(10)
            return c.post(f"{base}/api/v1/sources/{dead.id}/refresh", headers=auth).status_code

        def read() -> int:
            started.wait(10)
            threading.Event().wait(0.3)  # the refreshes are in, waiting on the source
            return c.get(f"{base}/api/v1/sources/{source_id}/tables", headers=auth).status_code

        with ThreadPoolExecutor(9) as pool:
            refreshes = [pool.submit(refresh) for _ in range(8)]
            reads = pool.submit(read)
            assert reads.result() == 200
            codes = sorted(f.result() for f in refreshes)
    # Half the slots may wait on sources: the other refreshes are shed, none is a 500.
    assert set(codes) <= {502, 503} and 503 in codes, codes


# --- request bodies ------------------------------------------------------------------------


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body sent with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    for _ in range(total // size):
        yield b"x" * size


def test_a_body_over_the_limit_gets_413_before_the_token_is_checked(base_url: str) -> None:
    response = httpx.post(
        f"{base_url}/api/v1/sources",
        content=b"x" * (2 * LIMIT),
        headers={"Content-Type": "application/json"},
        timeout=CLIENT_TIMEOUT,
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


def test_a_chunked_body_is_stopped_at_the_limit(base_url: str, token: str) -> None:
    for headers in ({}, {"Authorization": f"Bearer {token}"}):
        response = httpx.post(
            f"{base_url}/api/v1/sources",
            content=chunks(4 * LIMIT),
            headers={"Content-Type": "application/json", **headers},
            timeout=CLIENT_TIMEOUT,
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json() == TOO_LARGE


def test_a_web_form_over_the_limit_gets_the_413_page(base_url: str) -> None:
    boundary = "rosetta-test-boundary"

    def multipart() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="token"; filename="t"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        yield from chunks(2 * LIMIT)
        yield f"\r\n--{boundary}--\r\n".encode()

    sent: list[dict[str, Any]] = [
        {"data": {"token": "x" * (2 * LIMIT)}},  # urlencoded, with Content-Length
        {
            "content": multipart(),  # multipart, chunked
            "headers": {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        },
    ]
    for request in sent:
        response = httpx.post(f"{base_url}/login", timeout=CLIENT_TIMEOUT, **request)
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "Error 413" in response.text and "request body too large" in response.text


def test_a_body_under_the_limit_is_read(base_url: str, token: str) -> None:
    response = httpx.post(
        f"{base_url}/api/v1/sources",
        content=b'{"name": "' + b"x" * (LIMIT // 2) + b'"}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT,
    )
    assert response.status_code == 422  # read and validated: the other fields are missing
