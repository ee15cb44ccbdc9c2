"""Webhook endpoints cannot stall each other: each one's failure is its own delivery's attempt.

The misbehaving endpoints are real local servers (:class:`Peer`): one that does not speak HTTP,
one whose header line is 100 kB, one that never answers, one that trickles its answer, one that
redirects. The outcome is read from the store's rows, as `rosetta webhook deliveries` shows it.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rosetta import netpolicy, webhooks
from rosetta.crypto import SecretBox
from rosetta.errors import NetworkNotAllowedError
from rosetta.pg.server import free_port
from rosetta.webhooks import Options
from tests.conftest import Receiver
from tests.integration.conftest import GARBAGE, HTTP_OK, HUGE_HEADER, Peer, peer


class Timed(ThreadingHTTPServer):
    """An endpoint that answers 200 after ``delay`` and notes how many requests overlap."""

    daemon_threads = True

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.delivery_ids: list[int] = []
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                time.sleep(server.delay)
                with server.lock:
                    server.in_flight -= 1
                    server.delivery_ids.append(json.loads(body)["delivery_id"])
                    server.hosts.append(self.headers["Host"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def sources(source_db: Any, register: Any) -> tuple[Any, Any]:
    """Two sources (on the same database): each with webhooks of its own."""
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return register("shop"), register("other")


def record(store: Any, source: Any, count: int = 1) -> None:
    """``count`` events in the source's outbox, as a sync records them."""
    recorder = webhooks.Recorder(store, source.id, source.name)
    for version in range(1, count + 1):
        recorder.record("schema.changed", "public", "orders", version=version, changes=[])
    store.commit()


def rows(store: Any, endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The endpoint's deliveries, oldest first, as the store has them."""
    return list(reversed(webhooks.deliveries(store, endpoint_id=endpoint["id"])))


def settled_at(store: Any, endpoint: dict[str, Any]) -> list[datetime]:
    """When each of the endpoint's deliveries was last settled (its result recorded)."""
    found = store.execute(
        "SELECT updated_at FROM webhook_deliveries WHERE endpoint_id = %s ORDER BY id",
        (endpoint["id"],),
    ).fetchall()
    store.rollback()
    return [row[0] for row in found]


def test_endpoints_that_do_not_speak_http_fail_alone(
    store: Any, box: SecretBox, sources: tuple[Any, Any], receiver: Receiver, peers: list[Peer]
) -> None:
    shop, other = sources
    garbage = webhooks.add_endpoint(store, box, shop.id, peer(peers, GARBAGE).url, None, None)
    huge = webhooks.add_endpoint(store, box, shop.id, peer(peers, HUGE_HEADER).url, None, None)
    healthy = webhooks.add_endpoint(store, box, other.id, receiver.url, "s3cret", None)
    store.commit()
    record(store, shop)
    record(store, other)

    started = time.monotonic()
    options = Options(timeout=5, base_delay=60)
    assert webhooks.deliver_due(store, box, options) == (1, 2)
    assert time.monotonic() - started < 3

    [delivered] = rows(store, healthy)
    assert (delivered["status"], delivered["last_status_code"]) == ("delivered", 200)
    assert receiver.events()[0]["delivery_id"] == delivered["id"]
    for endpoint, error in (
        (garbage, "the endpoint did not answer with HTTP"),
        (huge, "the endpoint's answer has a line too long for HTTP"),
    ):
        [failed] = rows(store, endpoint)
        assert (failed["status"], failed["attempts"], failed["last_status_code"]) == (
            "pending",
            1,
            None,
        )
        assert failed["last_error"] == error
        retry_in = failed["next_attempt_at"] - failed["created_at"]
        assert timedelta(seconds=55) < retry_in < timedelta(seconds=70)

    # Not due again before its backoff: nothing is sent, the bad endpoints are not called again.
    assert webhooks.deliver_due(store, box, options) == (0, 0)
    assert [p.connections for p in peers] == [1, 1]


def test_a_hanging_endpoint_does_not_delay_a_healthy_one(
    store: Any, box: SecretBox, sources: tuple[Any, Any], receiver: Receiver, peers: list[Peer]
) -> None:
    shop, other = sources
    hanging = webhooks.add_endpoint(store, box, shop.id, peer(peers, None).url, None, None)
    trickling = webhooks.add_endpoint(
        store, box, shop.id, peer(peers, HTTP_OK, trickle=0.4).url, None, None
    )
    healthy = webhooks.add_endpoint(store, box, other.id, receiver.url, None, None)
    store.commit()
    record(store, shop)  # the slow endpoints' deliveries are due first
    record(store, other, 3)

    started = time.monotonic()
    assert webhooks.deliver_due(store, box, Options(timeout=3)) == (3, 2)
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 5, "each attempt is bounded by the timeout, in all"

    [hung] = rows(store, hanging)
    [trickled] = rows(store, trickling)
    for slow in (hung, trickled):
        assert (slow["status"], slow["attempts"], slow["last_error"]) == (
            "pending",
            1,
            "timed out after 3 s",
        )
    fine = rows(store, healthy)
    assert [(d["status"], d["version"]) for d in fine] == [
        ("delivered", "1"),
        ("delivered", "2"),
        ("delivered", "3"),
    ]
    # All three landed, in order, long before the slow endpoints' attempts ended.
    assert [e["version"] for e in receiver.events()] == [1, 2, 3]
    last_delivered = max(d["delivered_at"] for d in fine)
    slow_settled = min(settled_at(store, hanging) + settled_at(store, trickling))
    assert slow_settled - last_delivered > timedelta(seconds=2)


def test_a_redirect_is_a_failed_attempt_and_not_followed(
    store: Any, box: SecretBox, sources: tuple[Any, Any], receiver: Receiver, peers: list[Peer]
) -> None:
    shop, _ = sources
    redirect = (
        f"HTTP/1.1 302 Found\r\nLocation: {receiver.url}\r\nContent-Length: 0\r\n\r\n".encode()
    )
    endpoint = webhooks.add_endpoint(store, box, shop.id, peer(peers, redirect).url, "s", None)
    store.commit()
    record(store, shop)
    assert webhooks.deliver_due(store, box, Options(timeout=3)) == (0, 1)
    [failed] = rows(store, endpoint)
    assert (failed["status"], failed["last_status_code"], failed["last_error"]) == (
        "pending",
        302,
        "redirect (HTTP 302) not followed",
    )
    assert receiver.requests == []


def test_refused_and_reset_connections_are_failed_attempts(
    store: Any, box: SecretBox, sources: tuple[Any, Any], peers: list[Peer]
) -> None:
    shop, _ = sources
    refused = webhooks.add_endpoint(
        store, box, shop.id, f"http://127.0.0.1:{free_port()}/", None, None
    )
    closing = webhooks.add_endpoint(store, box, shop.id, peer(peers, b"").url, None, None)
    tls = webhooks.add_endpoint(
        store, box, shop.id, peer(peers, GARBAGE).url.replace("http:", "https:"), None, None
    )
    store.commit()
    record(store, shop)
    assert webhooks.deliver_due(store, box, Options(timeout=3)) == (0, 3)
    assert [rows(store, e)[0]["last_error"] for e in (refused, closing, tls)] == [
        "connection refused",
        "the endpoint closed the connection without answering",
        "TLS handshake failed",
    ]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` (and the key), signed by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_goes_to_the_checked_address_and_verifies_the_url_host_name(
    store: Any,
    box: SecretBox,
    sources: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop, _ = sources
    cert_file, key_file = _self_signed(tmp_path)
    server = Timed(0)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    names: list[str | None] = []
    tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    try:
        untrusted = webhooks.add_endpoint(
            store, box, shop.id, f"https://localhost:{port}/hook", None, None
        )
        store.commit()
        record(store, shop)
        assert webhooks.deliver_due(store, box, Options(timeout=3)) == (0, 1)
        [refused] = rows(store, untrusted)
        assert refused["last_error"] in (
            "TLS certificate not accepted: self-signed certificate",  # OpenSSL 3
            "TLS certificate not accepted: self signed certificate",  # OpenSSL 1.1
        )
        webhooks.remove_endpoint(store, untrusted["id"])
        store.commit()

        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trusted from now on
        by_name = webhooks.add_endpoint(
            store, box, shop.id, f"https://localhost:{port}/hook", None, None
        )
        by_address = webhooks.add_endpoint(
            store, box, shop.id, f"https://127.0.0.1:{port}/hook", None, None
        )
        store.commit()
        record(store, shop)
        assert webhooks.deliver_due(store, box, Options(timeout=3)) == (1, 1)
        assert [d["status"] for d in rows(store, by_name)] == ["delivered"]
        [mismatch] = rows(store, by_address)
        assert mismatch["last_error"] == (
            "TLS certificate not accepted: it is not valid for the host name"
        )
        assert "localhost" in names  # SNI: the URL's host name, while connected to an address
        assert server.hosts == [f"localhost:{port}"]
    finally:
        server.close()


def test_a_network_the_policy_refuses(
    store: Any, box: SecretBox, sources: tuple[Any, Any], receiver: Receiver
) -> None:
    shop, _ = sources
    only_private = netpolicy.for_webhooks("10.0.0.0/8")
    with pytest.raises(NetworkNotAllowedError) as refused:
        webhooks.add_endpoint(store, box, shop.id, receiver.url, None, None, only_private)
        store.commit()
    assert "ROSETTA_WEBHOOK_NETWORKS" in refused.value.message
    assert webhooks.list_endpoints(store, shop.id) == []

    # Added while the setting allowed it; the setting changed since: each send is refused.
    endpoint = webhooks.add_endpoint(store, box, shop.id, receiver.url, None, None)
    store.commit()
    record(store, shop)
    assert webhooks.deliver_due(store, box, Options(policy=only_private)) == (0, 1)
    [failed] = rows(store, endpoint)
    assert failed["status"] == "pending" and failed["attempts"] == 1
    assert failed["last_error"] == (
        "'127.0.0.1' is an address, which ROSETTA_WEBHOOK_NETWORKS does not allow: add it to "
        "ROSETTA_WEBHOOK_NETWORKS to allow it"
    )
    assert receiver.requests == []


def test_two_dispatchers_never_send_one_delivery_twice_nor_one_endpoint_twice_at_once(
    store_url: str, store: Any, box: SecretBox, sources: tuple[Any, Any]
) -> None:
    shop, other = sources
    slow, quick = Timed(0.2), Timed(0.05)
    try:
        first = webhooks.add_endpoint(store, box, shop.id, slow.url, None, None)
        second = webhooks.add_endpoint(store, box, other.id, quick.url, None, None)
        store.commit()
        record(store, shop, 6)
        record(store, other, 6)
        results: list[tuple[int, int]] = []

        def dispatch() -> None:
            with psycopg.connect(store_url) as conn:
                results.append(webhooks.deliver_due(conn, box, Options(timeout=5)))

        threads = [threading.Thread(target=dispatch) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(sent for sent, _ in results) == 12
        for server, endpoint in ((slow, first), (quick, second)):
            ids = [d["id"] for d in rows(store, endpoint)]
            assert server.delivery_ids == ids  # each once, in order
            assert server.most_in_flight == 1
    finally:
        slow.close()
        quick.close()


def test_the_dispatcher_logs_a_store_outage_once_and_its_end_once(
    store_url: str, box: SecretBox, caplog_rosetta: pytest.LogCaptureFixture
) -> None:
    dispatcher = webhooks.Dispatcher(f"postgresql://127.0.0.1:{free_port()}/x", box, poll=0.05)
    dispatcher.start()
    try:

        def logged(text: str) -> list[logging.LogRecord]:
            return [r for r in caplog_rosetta.records if text in r.getMessage()]

        deadline = time.monotonic() + 10
        while not logged("unreachable") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1)  # twenty polls more
        [down] = logged("Webhook dispatcher: the store is unreachable")
        assert down.levelno == logging.ERROR
        dispatcher.store_url = store_url  # the store is back
        while not logged("reachable again") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert len(logged("Webhook dispatcher: the store is reachable again")) == 1
        assert len(logged("unreachable")) == 1
    finally:
        dispatcher.stop()
    assert dispatcher.thread is not None and not dispatcher.thread.is_alive()
