"""Webhooks on schema change: outbox, signature, retries, and no loss when a process dies."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from rosetta import webhooks
from rosetta.crypto import SecretBox
from tests.conftest import ROSETTA, TEST_KEY, Receiver

SECRET = "whsec-test"


@pytest.fixture
def shop(source_db: Any, register: Any) -> Any:
    source_db.sql("CREATE TABLE orders (id bigint PRIMARY KEY, note text, total numeric(10,2))")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE orders")
    return register()


def test_events_are_signed_and_classified(
    store: Any, box: SecretBox, shop: Any, sync: Any, source_db: Any, receiver: Receiver
) -> None:
    webhooks.add_endpoint(store, box, shop.id, receiver.url, SECRET, None)
    store.commit()
    sync(shop)
    source_db.sql("ALTER TABLE orders ADD COLUMN coupon text")
    sync(shop)
    source_db.sql("ALTER TABLE orders DROP COLUMN note")
    sync(shop)
    assert receiver.requests == []  # a sync never sends: the outbox does
    sent, failed = webhooks.deliver_due(store, box)
    assert (sent, failed) == (3, 0)

    for request in receiver.requests:
        expected = (
            "sha256=" + hmac.new(SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
        )
        assert request["headers"]["X-Rosetta-Signature"] == expected
    added, safe, breaking = receiver.events()
    assert (added["event"], added["version"], added["change_type"]) == (
        "table.added",
        1,
        "INITIAL_LOAD",
    )
    assert (safe["event"], safe["version"], safe["change_type"], safe["severity"]) == (
        "schema.changed",
        2,
        "NEW COLUMN",
        "safe",
    )
    assert safe["changes"][0]["column"] == "coupon"
    assert safe["changes"][0]["after"]["full_type"] == "text"
    assert (breaking["version"], breaking["change_type"], breaking["severity"]) == (
        3,
        "DROP COLUMN",
        "breaking",
    )
    assert breaking["source"] == "shop" and breaking["table"]["qualified"] == "orders"
    log = webhooks.deliveries(store, source_id=shop.id)
    assert {d["status"] for d in log} == {"delivered"}
    assert {d["last_status_code"] for d in log} == {200}

    source_db.sql("ALTER PUBLICATION rosetta_publication DROP TABLE orders")
    sync(shop)
    webhooks.deliver_due(store, box)
    assert receiver.events()[-1]["event"] == "table.removed"
    assert receiver.events()[-1]["severity"] == "breaking"


def test_retried_after_a_500(
    store: Any, box: SecretBox, shop: Any, sync: Any, receiver: Receiver
) -> None:
    webhooks.add_endpoint(store, box, shop.id, receiver.url, None, ["table.added"])
    store.commit()
    receiver.statuses = [500]
    sync(shop)
    assert webhooks.deliver_due(store, box, base_delay=600) == (0, 1)
    [pending] = webhooks.deliveries(store, source_id=shop.id)
    assert (pending["status"], pending["last_status_code"], pending["attempts"]) == (
        "pending",
        500,
        1,
    )
    # The first retry waits base_delay (600 s) after the failure: not due yet, whatever the clock.
    [[wait]] = store.execute(
        "SELECT extract(epoch FROM next_attempt_at - updated_at) FROM webhook_deliveries"
    ).fetchall()
    store.commit()
    assert wait == 600
    assert webhooks.deliver_due(store, box, base_delay=600) == (0, 0)
    # The backoff is over: the delivery becomes due, and the retry succeeds.
    store.execute("UPDATE webhook_deliveries SET next_attempt_at = now()")
    store.commit()
    assert webhooks.deliver_due(store, box, base_delay=600) == (1, 0)
    [done] = webhooks.deliveries(store, source_id=shop.id)
    assert (done["status"], done["last_status_code"], done["attempts"]) == ("delivered", 200, 2)
    assert len(receiver.requests) == 2
    assert receiver.events()[0]["delivery_id"] == receiver.events()[1]["delivery_id"]


def test_no_loss_when_the_sender_is_killed(
    store_url: str, shop: Any, source_db: Any, receiver: Receiver, tmp_path: Path
) -> None:
    env = dict(
        os.environ,
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=TEST_KEY,
        ROSETTA_LOG_FILE=str(tmp_path / "app.log"),
        ROSETTA_MONITOR_INTERVAL="3600",
        ROSETTA_WEBHOOK_TIMEOUT="2",  # the dead monitor's lease runs out 2 + 5 s after its claim
    )
    added = subprocess.run(
        [ROSETTA, "webhook", "add", "shop", receiver.url, "--secret-stdin"],
        input=SECRET + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert "signed" in added.stdout and SECRET not in added.stdout

    # The change is recorded by a process that never sends.
    refreshed = subprocess.run(
        [ROSETTA, "refresh", "shop"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refreshed.returncode == 0, refreshed.stderr
    assert receiver.requests == []

    # A monitor picks the delivery up and dies while sending it.
    receiver.block.set()
    monitor = subprocess.Popen(
        [ROSETTA, "monitor"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.requests, "the monitor's dispatcher never sent the delivery"
    finally:
        monitor.send_signal(signal.SIGKILL)
        monitor.wait(timeout=10)
    receiver.block.clear()
    receiver.release.set()

    # The delivery is under the dead monitor's lease: `deliver` waits for it to run out.
    started = time.monotonic()
    delivered = subprocess.run(
        [ROSETTA, "webhook", "deliver", "--wait", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert delivered.returncode == 0, delivered.stderr
    assert "Delivered 1." in delivered.stdout
    assert time.monotonic() - started < 15
    first, second = receiver.events()
    assert first["delivery_id"] == second["delivery_id"]
    assert second["event"] == "table.added" and second["table"]["name"] == "orders"
    log = subprocess.run(
        [ROSETTA, "webhook", "deliveries", "shop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "delivered (200, 1 attempts)" in log.stdout
