"""One POST to one endpoint, bounded in time, whose every failure is an answer, never an exception.

- The request goes to the address the network policy checked (``ROSETTA_WEBHOOK_NETWORKS``); the
  Host header, and for https the SNI and the certificate check, use the URL's host name.
- ``timeout`` bounds the whole attempt: the lookup, connect, TLS handshake and the answer's status
  line and headers (a watchdog shuts the socket when it runs out). The body is never read.
- Redirects are not followed (a 3xx is a failed attempt): the signed body goes where it was set to.
- The error of a failed attempt says what failed in our words ("timed out after 10 s", "the
  endpoint did not answer with HTTP"); nothing the peer sent is ever put into it.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rosetta import netpolicy
from rosetta.errors import RosettaError
from rosetta.netpolicy import NetworkPolicy
from rosetta.webhooks.endpoints import SCHEMES, split_url

if TYPE_CHECKING:
    from rosetta.config import Settings

log = logging.getLogger("rosetta.webhooks")

SIGNATURE_HEADER = "X-Rosetta-Signature"
USER_AGENT = "rosetta-webhooks"


@dataclass(frozen=True)
class Options:
    """How webhooks are sent (the ``ROSETTA_WEBHOOK_*`` settings)."""

    timeout: float = 10.0
    concurrency: int = 4
    base_delay: float = 5.0
    policy: NetworkPolicy = field(default_factory=lambda: netpolicy.for_webhooks(netpolicy.ANY))

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(
            timeout=settings.webhook_timeout,
            concurrency=settings.webhook_concurrency,
            base_delay=settings.webhook_retry_base_seconds,
            policy=netpolicy.for_webhooks(settings.webhook_networks),
        )


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(
    url: str,
    secret: str | None,
    event: str,
    delivery_id: int,
    payload: dict[str, Any],
    options: Options,
) -> Attempt:
    """POST one event, signed when there is a secret."""
    body = json.dumps(dict(payload, delivery_id=delivery_id), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Rosetta-Event": event,
        "X-Rosetta-Delivery": str(delivery_id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return post(url, body, headers, options)


def post(url: str, body: bytes, headers: dict[str, str], options: Options) -> Attempt:
    """POST ``body`` to ``url``: the endpoint's status, or why there is none."""
    deadline = _Deadline(options.timeout)
    try:
        return _post(url, body, headers, options.policy, deadline)
    except Exception as exc:  # any failure of one endpoint is its attempt's
        return Attempt(None, describe(exc, deadline))


def _post(
    url: str, body: bytes, headers: dict[str, str], policy: NetworkPolicy, deadline: _Deadline
) -> Attempt:
    parts, host, port = split_url(url)
    address = _resolve(policy, host, port, deadline)
    sock = socket.create_connection((address or host, port), timeout=deadline.left())
    watchdog = _Watchdog(sock, deadline)
    try:
        if parts.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        connection = _Connection(host, port, sock, deadline, default_port=SCHEMES[parts.scheme])
        try:
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.request("POST", target, body, headers)
            response = connection.getresponse()
            status = response.status
        finally:
            connection.close()
    finally:
        watchdog.cancel()
        sock.close()
    if 200 <= status < 300:
        return Attempt(status, None)
    if 300 <= status < 400:
        return Attempt(status, f"redirect (HTTP {status}) not followed")
    return Attempt(status, f"HTTP {status}")


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError
        return left


class _Watchdog:
    """Shuts the connection down when the deadline passes, whatever call is waiting on it (a
    socket timeout alone restarts with every byte a slow peer trickles)."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self.deadline = deadline
        self.handle = sock.dup()  # shutting a duplicate down shuts the connection down
        self.lock = threading.Lock()  # never shut down a handle being closed (or reused)
        self.timer = threading.Timer(max(0.0, deadline.at - time.monotonic()), self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.handle.fileno() == -1:
                return
            self.deadline.expired = True
            try:
                self.handle.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self.timer.cancel()
        with self.lock:
            self.handle.close()


class _Connection(http.client.HTTPConnection):
    """http.client over a socket that is already connected (to the checked address)."""

    def __init__(
        self, host: str, port: int, sock: socket.socket, deadline: _Deadline, default_port: int
    ) -> None:
        super().__init__(host, port, timeout=deadline.left())
        self.default_port = default_port  # the Host header names the port only when not this
        self.sock = sock
        sock.settimeout(deadline.left())

    def connect(self) -> None:  # already connected; a second connection is never made
        raise http.client.NotConnected


def _resolve(policy: NetworkPolicy, host: str, port: int, deadline: _Deadline) -> str | None:
    """The checked address of ``host`` (None: connect to the name the policy lists); a slow
    resolver cannot outlast the deadline."""
    try:
        return policy.resolve(host, port, deadline.left())
    except TimeoutError:
        deadline.expired = True
        raise


_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the endpoint",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "the endpoint closed the connection",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
    errno.ETIMEDOUT: "connection timed out",
}


def describe(exc: BaseException, deadline: _Deadline | None = None) -> str:
    """What failed, in our words: never text the peer sent (it may be anything)."""
    if isinstance(exc, RosettaError):  # the network policy, or a URL stored before checks
        return exc.message
    if (deadline is not None and deadline.expired) or isinstance(exc, TimeoutError):
        seconds = deadline.seconds if deadline is not None else None
        return f"timed out after {seconds:g} s" if seconds is not None else "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the endpoint closed the connection without answering"
    if isinstance(exc, http.client.LineTooLong):
        return "the endpoint's answer has a line too long for HTTP"
    if isinstance(exc, http.client.BadStatusLine):
        return "the endpoint did not answer with HTTP"
    if isinstance(exc, http.client.HTTPException):
        return "the endpoint's answer is not valid HTTP"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not accepted" + _why_certificate(exc)
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(exc, OSError):
        known = _CONNECT_ERRORS.get(exc.errno or 0)
        if known:
            return known
        name = errno.errorcode.get(exc.errno or 0)
        return f"connection failed ({name})" if name else "connection failed"
    if isinstance(exc, ValueError | UnicodeError):
        return "the webhook URL cannot be sent to: remove the webhook and add it again"
    log.warning("Webhook sender: unexpected %s", type(exc).__name__, exc_info=exc)
    return f"sending failed ({type(exc).__name__})"


def _why_certificate(exc: ssl.SSLCertVerificationError) -> str:
    """OpenSSL's fixed reason (such as "certificate has expired"), not the certificate's text."""
    reason = str(getattr(exc, "verify_message", "") or "")
    printable = "".join(ch for ch in reason if ch.isascii() and ch.isprintable())[:100]
    if not printable or "'" in printable:  # a host name mismatch quotes names: keep ours
        return ": it is not valid for the host name" if "mismatch" in printable.lower() else ""
    return f": {printable}"
