"""What a webhook URL and secret may be: anything else is one line (422, or 403 for a network
the policy refuses) from the API, the web form and the CLI, and nothing is stored."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rosetta import webhooks
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError, NetworkNotAllowedError
from rosetta.netpolicy import for_webhooks
from tests.conftest import ROSETTA, Cli, Receiver
from tests.integration.test_webhook_test_route import api_with
from tests.integration.web_helpers import post


@pytest.fixture
def shop(register: Any) -> Any:
    return register("shop")


BAD_URLS = {
    "nul": "http://exa\x00mple.com/hook",
    "nul-in-path": "http://example.com/ho\x00ok",
    "unclosed-ipv6": "http://[::1",
    "userinfo": "http://user:pass@example.com/hook",
    "user": "http://user@example.com/hook",
    "space": "http://example.com/a hook",
    "newline": "http://example.com/hook\r\nX-Injected: 1",
    "tab-in-host": "http://exa\tmple.com/",
    "non-ascii": "http://exämple.com/hook",
    "scheme": "ftp://example.com/hook",
    "javascript": "javascript:alert(1)",
    "no-host": "http:///hook",
    "bad-port": "http://example.com:99999/hook",
    "port-zero": "http://example.com:0/hook",
    "bad-host": "http://exa_mple..com/hook",
    "too-long": "http://example.com/" + "a" * 2000,
}
BAD_SECRETS = {"surrogate": "\ud800", "nul": "sec\x00ret", "too-long": "s" * 1001}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_bad_url_is_refused_before_anything_is_stored(url: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        webhooks.validate_url(url)
    assert refused.value.message.startswith("invalid webhook URL")
    assert "\n" not in refused.value.message and "\x00" not in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook?x=1",
        "https://hooks.example.com/a/b%20c",
        "http://[::1]:9000/",
        "HTTPS://Example.COM",
    ],
)
def test_a_good_url_is_kept_as_it_is(url: str) -> None:
    assert webhooks.validate_url(url) == url


def test_a_literal_address_is_checked_against_the_networks() -> None:
    private = for_webhooks("10.0.0.0/8")
    assert webhooks.validate_url("http://10.1.2.3/", private) == "http://10.1.2.3/"
    assert webhooks.validate_url("http://hooks.example.com/", private)  # no lookup yet
    with pytest.raises(NetworkNotAllowedError):
        webhooks.validate_url("http://127.0.0.1/", private)
    with pytest.raises(NetworkNotAllowedError):  # link-local: cloud metadata, even with "*"
        webhooks.validate_url("http://169.254.169.254/latest/meta-data")


def test_the_api_refuses_in_one_line(
    store_url: str, store: Any, box: SecretBox, web_token: str, shop: Any, receiver: Receiver
) -> None:
    cases = [("url", url) for url in BAD_URLS.values()]
    cases += [("secret", secret) for secret in BAD_SECRETS.values()]
    with api_with(store_url, box, web_token) as api:
        for field, value in cases:
            refused = api.post(
                f"/api/v1/sources/{shop.id}/webhooks",
                # ASCII JSON with \u escapes: a lone surrogate travels as JSON carries it
                content=json.dumps({"url": receiver.url, field: value}),
                headers={"Content-Type": "application/json"},
            )
            assert refused.status_code == 422, (value, refused.text)
            detail = refused.json()["detail"]
            assert detail.startswith(("invalid webhook", "invalid request: url:")), detail
            assert "\n" not in detail
    assert webhooks.list_endpoints(store, shop.id) == []


def test_the_api_refuses_a_network_outside_the_policy(
    store_url: str, store: Any, box: SecretBox, web_token: str, shop: Any, receiver: Receiver
) -> None:
    with api_with(store_url, box, web_token, webhook_networks="10.0.0.0/8") as api:
        refused = api.post(f"/api/v1/sources/{shop.id}/webhooks", json={"url": receiver.url})
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "'127.0.0.1' is an address, which ROSETTA_WEBHOOK_NETWORKS does not allow: add it to "
        "ROSETTA_WEBHOOK_NETWORKS to allow it"
    )
    assert webhooks.list_endpoints(store, shop.id) == []


@pytest.mark.parametrize("key", ["nul", "unclosed-ipv6", "userinfo"])
def test_the_web_form_shows_a_bad_url_as_a_form_error(
    web: TestClient, store: Any, shop: Any, key: str
) -> None:
    tab = f"/sources/{shop.id}?tab=webhooks"
    form = {"url": BAD_URLS[key], "events": ["table.added"]}
    refused = post(web, f"/sources/{shop.id}/webhooks", form, tab)
    assert refused.status_code == 422
    assert "invalid webhook URL" in refused.text
    assert webhooks.list_endpoints(store, shop.id) == []


def test_the_web_form_refuses_a_nul_in_the_secret(web: TestClient, store: Any, shop: Any) -> None:
    tab = f"/sources/{shop.id}?tab=webhooks"
    form = {"url": "http://127.0.0.1:9/", "secret": "a\x00b", "events": ["table.added"]}
    refused = post(web, f"/sources/{shop.id}/webhooks", form, tab)
    assert refused.status_code == 422
    assert "invalid webhook secret: it holds a NUL character" in refused.text
    assert webhooks.list_endpoints(store, shop.id) == []


def _add(cli: Cli, url: str, stdin: bytes | None = None, **env: str) -> Any:
    args = [ROSETTA, "webhook", "add", "shop", url]
    if stdin is not None:
        args.append("--secret-stdin")
    return subprocess.run(
        args, env={**cli.env, **env}, input=stdin, capture_output=True, timeout=60
    )


@pytest.mark.parametrize("key", ["unclosed-ipv6", "userinfo", "newline", "scheme"])
def test_the_cli_refuses_a_bad_url_in_one_line(cli: Cli, store: Any, shop: Any, key: str) -> None:
    added = _add(cli, BAD_URLS[key])
    assert added.returncode == 2
    [line] = added.stderr.decode().splitlines()
    assert line.startswith("Error: invalid webhook URL")
    assert webhooks.list_endpoints(store, shop.id) == []


@pytest.mark.parametrize(
    ("stdin", "messages"),
    [
        # Read with surrogateescape (a C locale) or strictly: refused either way.
        (
            b"\xed\xa0\x80\n",
            (
                "Error: invalid webhook secret: it is not valid text (UTF-8)",
                "Error: the secret on stdin is not UTF-8 text",
            ),
        ),
        (b"sec\x00ret\n", ("Error: invalid webhook secret: it holds a NUL character",)),
    ],
    ids=["surrogate", "nul"],
)
def test_the_cli_refuses_a_bad_secret_in_one_line(
    cli: Cli, store: Any, shop: Any, receiver: Receiver, stdin: bytes, messages: tuple[str, ...]
) -> None:
    added = _add(cli, receiver.url, stdin)
    assert added.returncode == 2
    [line] = added.stderr.decode().splitlines()
    assert line in messages
    assert webhooks.list_endpoints(store, shop.id) == []


def test_the_cli_refuses_a_network_outside_the_policy(
    cli: Cli, store: Any, shop: Any, receiver: Receiver
) -> None:
    added = _add(cli, receiver.url, ROSETTA_WEBHOOK_NETWORKS="10.0.0.0/8")
    assert added.returncode == 2
    [line] = added.stderr.decode().splitlines()
    assert "ROSETTA_WEBHOOK_NETWORKS does not allow" in line
    assert webhooks.list_endpoints(store, shop.id) == []
