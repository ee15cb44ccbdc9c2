"""Sending the outbox: endpoints side by side, each endpoint's deliveries one at a time, in order.

:func:`deliver_due` is the one way deliveries are sent (by the :class:`Dispatcher` thread of the
monitor and of ``rosetta serve``, and by ``rosetta webhook deliver``). It leases the next due
delivery of up to ``concurrency`` endpoints, sends them in a small thread pool with no store
transaction open, records each result as it comes, and leases again as endpoints free up. A slow
or hanging endpoint holds one worker for at most ``timeout``; the others go on.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

import psycopg

import rosetta.webhooks.outbox as outbox
from rosetta.crypto import SecretBox
from rosetta.errors import RosettaError, StoreUnavailableError, first_line
from rosetta.store.repository import Conn
from rosetta.webhooks.outbox import Claimed, Status
from rosetta.webhooks.sender import Attempt, Options, describe, send

log = logging.getLogger("rosetta.webhooks")

# A lease outlasts the attempt it covers (bounded by the timeout) by this much; a dispatcher
# that dies while sending leaves its deliveries to be sent again this long after the timeout.
LEASE_MARGIN = 5.0
# While sends are in flight, look for newly due deliveries this often.
RECLAIM_EVERY = 1.0


def _attempt(delivery: Claimed, box: SecretBox, options: Options) -> Attempt:
    """Send one leased delivery; whatever goes wrong is this attempt's error."""
    try:
        secret = (
            box.decrypt(delivery.secret_encrypted, what="a webhook secret")
            if delivery.secret_encrypted
            else None
        )
        return send(
            delivery.url, secret, delivery.event_type, delivery.id, delivery.payload, options
        )
    except Exception as exc:  # never out of the worker: it is this attempt's
        return Attempt(None, describe(exc))


def deliver_due(
    conn: Conn,
    box: SecretBox,
    options: Options | None = None,
    *,
    timeout: float | None = None,
    base_delay: float | None = None,
    limit: int | None = None,
    until: float | None = None,
    stop: threading.Event | None = None,
) -> tuple[int, int]:
    """Send what is due until nothing is; returns (delivered, failed attempts).

    ``conn`` is used between sends only, for short transactions of its own (so it must not be in
    one). ``limit`` caps the deliveries sent, ``until`` (a ``time.monotonic()`` value) and
    ``stop`` end the leasing; what is in flight then is still waited for and recorded.
    """
    opts = options or Options()
    if timeout is not None:
        opts = replace(opts, timeout=timeout)
    if base_delay is not None:
        opts = replace(opts, base_delay=base_delay)
    if not conn.autocommit:
        conn.rollback()  # end a read the caller left open: each lease must commit
    delivered = failed = leased = 0
    in_flight: dict[Future[Attempt], Claimed] = {}
    with ThreadPoolExecutor(opts.concurrency, thread_name_prefix="rosetta-webhook") as workers:
        while True:
            room = opts.concurrency - len(in_flight)
            if limit is not None:
                room = min(room, limit - leased)
            ending = (stop is not None and stop.is_set()) or (
                until is not None and time.monotonic() >= until
            )
            if room > 0 and not ending:
                for delivery in outbox.claim(conn, room, opts.timeout + LEASE_MARGIN):
                    in_flight[workers.submit(_attempt, delivery, box, opts)] = delivery
                    leased += 1
            if not in_flight:
                break
            done, _ = wait(in_flight, timeout=RECLAIM_EVERY, return_when=FIRST_COMPLETED)
            for future in done:
                delivery = in_flight.pop(future)
                result = future.result()
                status = outbox.settle(
                    conn, delivery, result.status_code, result.error, opts.base_delay
                )
                if status is Status.DELIVERED:
                    delivered += 1
                    continue
                failed += 1
                log.warning(
                    "Webhook delivery %d to %s failed (attempt %d%s): %s",
                    delivery.id,
                    delivery.url,
                    delivery.attempts + 1,
                    ", giving up" if status is Status.FAILED else "",
                    result.error,
                )
    return delivered, failed


def wait_idle(
    conn: Conn, box: SecretBox, seconds: float, options: Options | None = None
) -> tuple[int, int]:
    """`rosetta webhook deliver`: send what is due, and what another dispatcher holds under a
    lease once it is settled or its lease runs out (its dispatcher died), starting nothing after
    ``seconds``; returns (delivered, failed attempts)."""
    until = time.monotonic() + seconds
    delivered = failed = 0
    while True:
        sent, missed = deliver_due(conn, box, options, until=until)
        delivered, failed = delivered + sent, failed + missed
        left = outbox.lease_left(conn)
        if left is None or time.monotonic() >= until:
            return delivered, failed
        time.sleep(min(left + 0.05, RECLAIM_EVERY, max(0.0, until - time.monotonic())))


_STORE_DOWN = (StoreUnavailableError, psycopg.OperationalError, psycopg.InterfaceError)


class Dispatcher:
    """Sends due deliveries every ``poll`` seconds in a thread of its own."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        options: Options | None = None,
        *,
        poll: float = 2.0,
    ) -> None:
        self.store_url = store_url
        self.box = box
        self.options = options or Options()
        self.poll = poll
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.store_down = False
        self.last_error: str | None = None

    def run(self) -> None:
        from rosetta.store import db

        conn: Conn | None = None
        while not self.stop_event.is_set():
            try:
                if conn is None or conn.closed:
                    conn = db.connect(self.store_url, check=False)
                deliver_due(conn, self.box, self.options, stop=self.stop_event)
            except Exception as exc:  # keep the dispatcher alive; say so once, not every poll
                self._trouble(exc)
                if conn is not None:
                    conn.close()
                conn = None
            else:
                self._fine()
            self.stop_event.wait(self.poll)
        if conn is not None:
            conn.close()

    def _trouble(self, exc: Exception) -> None:
        if isinstance(exc, _STORE_DOWN):
            if not self.store_down:
                self.store_down = True
                log.error(
                    "Webhook dispatcher: the store is unreachable (%s); retrying every %g s",
                    first_line(exc),
                    self.poll,
                )
            return
        message = exc.message if isinstance(exc, RosettaError) else first_line(exc)
        if message != self.last_error:
            self.last_error = message
            log.error("Webhook dispatcher error: %s (retrying every %g s)", message, self.poll)

    def _fine(self) -> None:
        if self.store_down:
            self.store_down = False
            log.info("Webhook dispatcher: the store is reachable again")
        self.last_error = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="rosetta-webhooks", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
