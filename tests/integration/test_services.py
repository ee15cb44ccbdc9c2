"""One service per user action: the web form, the API and the CLI give the same answer for the
same source, because they call the same function (rosetta.services); and one rule for whether
the monitor is alive, shared by doctor, /health and the metrics."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from rosetta import doctor, metrics, sources
from rosetta.crypto import SecretBox
from rosetta.liveness import alive_window
from rosetta.monitor import Monitor
from rosetta.store.repository import Source
from tests.conftest import Cli, SourceDb
from tests.integration.conftest import source_body
from tests.integration.web_helpers import csrf_of, post, source_form


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def source_count(store: Any) -> int:
    row = store.execute("SELECT count(*) FROM sources").fetchone()
    store.rollback()
    assert row is not None
    return int(row[0])


def stored_port(store: Any, name: str) -> int | None:
    row = store.execute("SELECT port FROM sources WHERE name = %s", (name,)).fetchone()
    store.rollback()
    return int(row[0]) if row else None


def web_error(page: Any) -> str:
    """The error line the source form shows."""
    marker = "cannot connect to"
    assert marker in page.text, page.text
    start = page.text.index(marker)
    line: str = page.text[start : page.text.index("<", start)].strip()
    return line


# --- registering an unreachable source ---------------------------------------------------------


def test_an_unreachable_source_is_refused_alike_by_the_web_the_api_and_the_cli(
    web: TestClient, api: TestClient, cli: Cli, store: Any, source_db: SourceDb
) -> None:
    port = closed_port()

    by_api = api.post("/api/v1/sources", json=source_body(source_db, port=port))
    assert by_api.status_code == 502
    api_message: str = by_api.json()["detail"]

    by_web = web.post(
        "/sources/new",
        data={**source_form(source_db, port=str(port)), "csrf": csrf_of(web, "/sources/new")},
    )
    assert by_web.status_code == 502
    web_message = web_error(by_web)

    server = source_db.server
    dsn = f"postgresql://{server.superuser}@127.0.0.1:{port}/{source_db.name}"
    by_cli = cli(
        "source",
        "add",
        "shop",
        "--dsn",
        dsn,
        "--publication",
        "rosetta_publication",
        "--password-stdin",
        stdin=server.password + "\n",
    )
    assert by_cli.returncode == 5, by_cli.stderr
    cli_message = by_cli.stderr.strip().removeprefix("Error: ")

    assert api_message.startswith(f"cannot connect to 127.0.0.1:{port}/")
    assert api_message == web_message == cli_message
    assert source_count(store) == 0


# --- updating a source: the connection is tested whenever where or how it connects changes ---


@pytest.fixture
def unreachable(store: Any, box: SecretBox) -> Source:
    """A source stored as it was, whose server is gone now (a fixture, not the user action)."""
    params = sources.parse_dsn(f"postgresql://u:pw@127.0.0.1:{closed_port()}/x")
    source = sources.add_source(store, box, sources.SourceInput("gone", params, "pub"))
    store.commit()
    return source


def test_a_rename_is_not_tested_alike_in_the_web_the_api_and_the_cli(
    web: TestClient, api: TestClient, cli: Cli, store: Any, unreachable: Source
) -> None:
    by_api = api.patch(f"/api/v1/sources/{unreachable.id}", json={"name": "gone-api"})
    assert by_api.status_code == 200, by_api.text

    edit = f"/sources/{unreachable.id}/edit"
    form = {
        "name": "gone-web",
        "host": unreachable.host,
        "port": str(unreachable.port),
        "database": unreachable.database,
        "username": unreachable.username,
        "password": "",
        "publication_name": unreachable.publication_name,
        "replication_name": "",
        "sslmode": "",
        "action": "save",
    }
    by_web = web.post(edit, data={**form, "csrf": csrf_of(web, edit)})
    assert by_web.status_code == 303, by_web.text

    by_cli = cli("source", "update", "gone-web", "--rename", "gone-cli")
    assert by_cli.returncode == 0, by_cli.stderr
    assert stored_port(store, "gone-cli") == unreachable.port


def test_a_new_port_is_tested_alike_in_the_web_the_api_and_the_cli(
    web: TestClient, api: TestClient, cli: Cli, store: Any, unreachable: Source
) -> None:
    port = closed_port()

    by_api = api.patch(f"/api/v1/sources/{unreachable.id}", json={"port": port, "password": "pw"})
    assert by_api.status_code == 502, by_api.text
    api_message: str = by_api.json()["detail"]

    edit = f"/sources/{unreachable.id}/edit"
    form = {
        "name": unreachable.name,
        "host": unreachable.host,
        "port": str(port),
        "database": unreachable.database,
        "username": unreachable.username,
        "password": "pw",
        "publication_name": unreachable.publication_name,
        "replication_name": "",
        "sslmode": "",
        "action": "save",
    }
    by_web = web.post(edit, data={**form, "csrf": csrf_of(web, edit)})
    assert by_web.status_code == 502
    web_message = web_error(by_web)

    by_cli = cli(
        "source",
        "update",
        unreachable.name,
        "--dsn",
        f"postgresql://u@127.0.0.1:{port}/x",
        "--password-stdin",
        stdin="pw\n",
    )
    assert by_cli.returncode == 5, by_cli.stderr
    cli_message = by_cli.stderr.strip().removeprefix("Error: ")

    assert api_message.startswith(f"cannot connect to 127.0.0.1:{port}/x as u")
    assert api_message == web_message == cli_message
    assert stored_port(store, unreachable.name) == unreachable.port


# --- the publication and the slot: one service per action ------------------------------------


def test_a_slot_action_without_a_slot_name_is_refused_alike_in_the_web_and_the_api(
    web: TestClient, api: TestClient, register: Any
) -> None:
    source = register()
    by_api = api.post(f"/api/v1/sources/{source.id}/slot")
    assert by_api.status_code == 422
    message: str = by_api.json()["detail"]
    assert "names no replication slot" in message

    page = f"/sources/{source.id}"
    by_web = post(web, f"{page}/slot/create", page=page)
    assert by_web.status_code == 303
    assert str(escape(message)) in web.get(by_web.headers["location"]).text


# --- is the monitor alive: one rule ------------------------------------------------------------


def monitor_answers(store: Any, api: TestClient, monitor_id: str) -> tuple[bool, bool, bool]:
    """Whether doctor, /health and the metrics each take the monitor to be alive."""
    diag = doctor.Diagnosis()
    doctor.check_monitor(diag, store)
    store.rollback()
    by_doctor = diag.checks[0].status == doctor.PASS
    deadline = time.monotonic() + 10  # until the app's store watch has looked once
    body: dict[str, Any] = api.get("/api/v1/health").json()
    while "last_heartbeat" not in body and time.monotonic() < deadline:
        time.sleep(0.05)
        body = api.get("/api/v1/health").json()
    heartbeat = body["last_heartbeat"]
    by_health = bool(heartbeat["running"])
    by_metrics = f'monitor="{monitor_id}"' in metrics.render(store).decode()
    store.rollback()
    return by_doctor, by_health, by_metrics


@pytest.mark.parametrize(("inside", "alive"), [(-10, True), (10, False)])
def test_doctor_health_and_metrics_agree_whether_the_monitor_is_alive(
    store: Any, store_url: str, box: SecretBox, api: TestClient, inside: int, alive: bool
) -> None:
    monitor = Monitor(store_url, box, interval=60)
    monitor.run_cycle()
    age = alive_window(60) + inside
    store.execute(
        "UPDATE monitor_heartbeats SET last_cycle_started_at = now() - make_interval(secs => %s)",
        (age,),
    )
    store.commit()
    assert monitor_answers(store, api, monitor.monitor_id) == (alive, alive, alive)
