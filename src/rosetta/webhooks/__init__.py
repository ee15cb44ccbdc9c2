"""Webhooks on schema change: endpoints, a durable outbox, and the dispatcher that sends it.

A sync records each event (a new version, a table added, removed or healed) and one delivery
row per interested endpoint in the same transaction as the change itself, so a crash between
recording and sending loses nothing (:mod:`.outbox`). Dispatchers, in any number of processes,
lease due deliveries, POST them signed with HMAC-SHA256 with no store transaction open, and retry
failures with exponential backoff (:mod:`.dispatcher`). Each endpoint is sent to on its own, with
its time bounded (:mod:`.sender`): one that is slow, hangs or does not speak HTTP delays no other.

- :mod:`.endpoints`: what a webhook URL and secret may be; the endpoints and the delivery log.
- :mod:`.outbox`: recording events, leasing and settling deliveries.
- :mod:`.sender`: one POST, every failure of it an answer in our words.
- :mod:`.dispatcher`: sending what is due, endpoints side by side.
- :mod:`.trial`: a webhook's Test.
"""

from __future__ import annotations

from rosetta.webhooks.dispatcher import Dispatcher, deliver_due, wait_idle
from rosetta.webhooks.endpoints import (
    EVENTS,
    add_endpoint,
    deliveries,
    get_endpoint,
    list_endpoints,
    remove_endpoint,
    validate_events,
    validate_secret,
    validate_url,
)
from rosetta.webhooks.outbox import MAX_ATTEMPTS, Recorder, Status, backoff
from rosetta.webhooks.sender import SIGNATURE_HEADER, Attempt, Options, send, sign
from rosetta.webhooks.trial import Slots, send_test

__all__ = [
    "EVENTS",
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "Attempt",
    "Dispatcher",
    "Options",
    "Recorder",
    "Slots",
    "Status",
    "add_endpoint",
    "backoff",
    "deliver_due",
    "deliveries",
    "get_endpoint",
    "list_endpoints",
    "remove_endpoint",
    "send",
    "send_test",
    "sign",
    "validate_events",
    "validate_secret",
    "validate_url",
    "wait_idle",
]
