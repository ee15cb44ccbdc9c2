"""A webhook's Test: one event POSTed now, outside the outbox (the API, the web UI, the CLI).

The endpoint is read with a connection that is given back before anything is sent, so Tests
waiting on slow endpoints never hold the store's connections; and only so many wait at once
(:class:`Slots`, ``ROSETTA_WEBHOOK_CONCURRENCY``): one more is refused at once (BusyError, 503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime

from rosetta.crypto import SecretBox
from rosetta.errors import BusyError
from rosetta.store.repository import Conn
from rosetta.webhooks.endpoints import get_endpoint
from rosetta.webhooks.sender import Attempt, Options, send

TEST_EVENT = "test"


class Slots:
    """At most ``size`` Tests wait on endpoints at once (one set per app)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size)

    @contextmanager
    def hold(self) -> Iterator[None]:
        if not self._free.acquire(blocking=False):
            raise BusyError(
                f"{self.size} webhook tests are already waiting on their endpoints "
                "(ROSETTA_WEBHOOK_CONCURRENCY): try again in a few seconds"
            )
        try:
            yield
        finally:
            self._free.release()


def send_test(
    connect: Callable[[], AbstractContextManager[Conn]],
    box: SecretBox,
    endpoint_id: int,
    options: Options | None = None,
    slots: Slots | None = None,
) -> Attempt:
    """POST a test event to webhook ``endpoint_id`` now. ``connect`` lends a store connection,
    used only to read the webhook (NotFoundError if there is none) and given back before the
    POST; every failure of the endpoint is in the returned Attempt."""
    opts = options or Options()
    with slots.hold() if slots is not None else _unlimited():
        with connect() as conn:
            endpoint = get_endpoint(conn, endpoint_id)
        secret = (
            box.decrypt(endpoint["secret_encrypted"], what="a webhook secret")
            if endpoint["secret_encrypted"]
            else None
        )
        payload = {
            "event": TEST_EVENT,
            "source": endpoint["source"],
            "table": None,
            "version": None,
            "change_type": None,
            "severity": "safe",
            "changes": [],
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        return send(endpoint["url"], secret, TEST_EVENT, 0, payload, opts)


@contextmanager
def _unlimited() -> Iterator[None]:
    yield
