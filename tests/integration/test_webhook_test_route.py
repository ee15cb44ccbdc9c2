"""A webhook's Test (API, web button, CLI): never 500, bounded in time and in number, and
holding no store connection while it waits on the endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rosetta import webhooks
from rosetta.api.app import create_app
from rosetta.config import Settings
from rosetta.crypto import SecretBox
from rosetta.pg.server import free_port
from tests.conftest import TEST_KEY, Cli
from tests.integration.conftest import GARBAGE, HUGE_HEADER, Peer, peer
from tests.integration.web_helpers import post

# The web UI's fixtures (a logged-in browser), as test_web_ops.py shares them.


@contextmanager
def api_with(store_url: str, box: SecretBox, token: str, **settings: Any) -> Iterator[TestClient]:
    """The API of an app with these settings, as the token's holder calls it."""
    made = create_app(
        Settings(database_url=store_url, secret_key=TEST_KEY, log_file=None, **settings),
        store_url,
        box,
    )
    with TestClient(made) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        yield api


@pytest.fixture
def shop(store: Any, source_db: Any, register: Any) -> Any:
    return register("shop")


def hook(store: Any, box: SecretBox, source: Any, url: str) -> int:
    endpoint_id: int = webhooks.add_endpoint(store, box, source.id, url, "s3cret", None)["id"]
    store.commit()
    return endpoint_id


def wait_for(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_test_of_a_broken_endpoint_answers_why_never_500(
    store_url: str, store: Any, box: SecretBox, web_token: str, shop: Any, peers: list[Peer]
) -> None:
    cases = {
        hook(store, box, shop, peer(peers, GARBAGE).url): "the endpoint did not answer with HTTP",
        hook(store, box, shop, peer(peers, HUGE_HEADER).url): (
            "the endpoint's answer has a line too long for HTTP"
        ),
        hook(store, box, shop, peer(peers, None).url): "timed out after 1.5 s",
        hook(store, box, shop, f"http://127.0.0.1:{free_port()}/x"): "connection refused",
    }
    with api_with(store_url, box, web_token, webhook_timeout=1.5) as api:
        for endpoint_id, error in cases.items():
            started = time.monotonic()
            tested = api.post(f"/api/v1/webhooks/{endpoint_id}/test")
            assert tested.status_code == 200, tested.text
            assert tested.json() == {"ok": False, "status_code": None, "error": error}
            assert time.monotonic() - started < 3
        assert api.post("/api/v1/webhooks/987654/test").status_code == 404
        assert api.post("/api/v1/webhooks/1/test", headers={"Authorization": ""}).status_code == (
            401
        )


def test_hanging_tests_hold_no_store_connection(
    store_url: str, store: Any, box: SecretBox, web_token: str, shop: Any, peers: list[Peer]
) -> None:
    hanging = peer(peers, None)
    endpoint_id = hook(store, box, shop, hanging.url)
    answers: list[Any] = []
    with api_with(store_url, box, web_token, webhook_timeout=4, webhook_concurrency=12) as api:

        def test() -> None:
            answers.append(api.post(f"/api/v1/webhooks/{endpoint_id}/test"))

        threads = [threading.Thread(target=test) for _ in range(9)]
        for thread in threads:
            thread.start()
        # As many Tests wait on the endpoint as the store's pool has connections (the API
        # admits no more requests at once than that): yet the store is all free.
        wait_for(lambda: hanging.connections >= 8)
        started = time.monotonic()
        health = api.get("/api/v1/health")
        assert health.status_code == 200, health.text
        assert time.monotonic() - started < 1
        stats = api.app.state.pool.get_stats()  # type: ignore[attr-defined]
        assert stats["pool_size"] - stats["pool_available"] == 0
        for thread in threads:
            thread.join(30)
    assert len(answers) == 9
    for answer in answers:
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200:
            assert answer.json()["error"] == "timed out after 4 s"
    assert sum(a.status_code == 200 for a in answers) >= 8


def test_tests_beyond_the_concurrency_are_503_at_once(
    store_url: str, store: Any, box: SecretBox, web_token: str, shop: Any, peers: list[Peer]
) -> None:
    hanging = peer(peers, None)
    endpoint_id = hook(store, box, shop, hanging.url)
    answers: list[Any] = []
    with api_with(store_url, box, web_token, webhook_timeout=2, webhook_concurrency=2) as api:

        def test() -> None:
            answers.append(api.post(f"/api/v1/webhooks/{endpoint_id}/test"))

        threads = [threading.Thread(target=test) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: hanging.connections == 2)
        started = time.monotonic()
        busy = api.post(f"/api/v1/webhooks/{endpoint_id}/test")
        assert time.monotonic() - started < 1
        assert busy.status_code == 503
        assert busy.headers["Retry-After"].isdigit()
        assert busy.json()["detail"] == (
            "2 webhook tests are already waiting on their endpoints "
            "(ROSETTA_WEBHOOK_CONCURRENCY): try again in a few seconds"
        )
        for thread in threads:
            thread.join(30)
        assert [a.json()["error"] for a in answers] == ["timed out after 2 s"] * 2
        assert hanging.connections == 2
        # Freed: the next Test is sent again.
        assert api.post(f"/api/v1/webhooks/{endpoint_id}/test").json()["ok"] is False
        assert hanging.connections == 3


def test_the_web_test_button_shows_why_it_failed(
    web: TestClient, store: Any, box: SecretBox, shop: Any, peers: list[Peer]
) -> None:
    garbage = peer(peers, GARBAGE)
    endpoint_id = hook(store, box, shop, garbage.url)
    tab = f"/sources/{shop.id}?tab=webhooks"
    tested = post(web, f"/sources/{shop.id}/webhooks/{endpoint_id}/test", page=tab)
    assert tested.status_code == 303, tested.text
    shown = web.get(tested.headers["location"]).text
    assert f"Test delivery to {garbage.url} failed: the endpoint did not answer with HTTP" in shown
    assert "SSH-2.0" not in shown
    other = post(web, f"/sources/{shop.id}/webhooks/987654/test", page=tab)
    assert other.status_code == 404


def test_the_cli_test_says_why_in_one_line(
    cli: Cli, store: Any, box: SecretBox, shop: Any, peers: list[Peer]
) -> None:
    endpoint_id = hook(store, box, shop, peer(peers, GARBAGE).url)
    tested = cli("webhook", "test", str(endpoint_id))
    assert tested.returncode == 9
    assert tested.stderr == (
        "Error: the test delivery failed: the endpoint did not answer with HTTP\n"
    )
