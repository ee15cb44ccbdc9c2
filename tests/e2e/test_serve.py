"""`rosetta serve` as a user runs it, the token commands, and a CLI that never loads the web
stack for its other commands."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rosetta.pg.server import free_port
from tests.conftest import TEST_KEY, SourceDb

ROSETTA = str(Path(sys.executable).with_name("rosetta"))
TOKEN_RE = re.compile(r"rst_[A-Za-z0-9_-]{20,}")
WEB_STACK = ("fastapi", "uvicorn", "starlette", "jinja2")


@pytest.fixture
def env(store_url: str, tmp_path: Path) -> dict[str, str]:
    return dict(
        os.environ,
        ROSETTA_DATABASE_URL=store_url,
        ROSETTA_SECRET_KEY=TEST_KEY,
        ROSETTA_LOG_FILE=str(tmp_path / "logs" / "app.log"),
        ROSETTA_MONITOR_INTERVAL="3600",
    )


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROSETTA, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def request(url: str, token: str | None = None, method: str = "GET") -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Server:
    """``rosetta serve`` in a subprocess; its output goes to a file (a pipe could fill up)."""

    def __init__(self, env: dict[str, str], out: Path, *args: str, command: str = "serve") -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out = out
        with out.open("w") as sink:
            self.proc = subprocess.Popen(
                [ROSETTA, command, "--port", str(self.port), *args],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"rosetta serve exited early:\n{self.output()}")
            try:
                status, body = request(f"{self.base}/api/v1/health")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
                continue
            if status == 200:
                healthy: dict[str, Any] = body
                return healthy
            time.sleep(0.1)
        raise AssertionError(f"rosetta serve did not become healthy:\n{self.output()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; uvicorn shuts down cleanly, then re-raises
        the signal, so the exit status is -SIGTERM."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def output(self) -> str:
        return self.out.read_text()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def test_serve_with_a_token_from_the_cli(
    env: dict[str, str], servers: list[Server], source_db: SourceDb, tmp_path: Path
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY, email text)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    added = run(
        env, "source", "add", "shop", "--dsn", source_db.url, "--publication", "rosetta_publication"
    )
    assert added.returncode == 0, added.stderr

    created = run(env, "token", "create", "e2e", "--role", "admin")
    assert created.returncode == 0, created.stderr
    assert "not shown again" in created.stdout
    found = TOKEN_RE.findall(created.stdout)
    assert found, created.stdout
    token = found[0]
    assert "Authorization: Bearer" in created.stdout

    server = Server(env, tmp_path / "serve.out", "--no-monitor")
    servers.append(server)
    assert server.wait_healthy() == {"status": "ok"}  # no token: up or down, nothing more
    status, health = request(f"{server.base}/api/v1/health", token)
    assert status == 200 and health["store"] == "ok" and health["monitor"] is None

    status, body = request(f"{server.base}/api/v1/sources")
    assert status == 401 and body == {
        "detail": "authentication required: send 'Authorization: Bearer <token>'"
    }
    status, sources = request(f"{server.base}/api/v1/sources", token)
    assert status == 200 and [s["name"] for s in sources] == ["shop"]
    status, summary = request(
        f"{server.base}/api/v1/sources/{sources[0]['id']}/refresh", token, "POST"
    )
    assert status == 200 and summary["status"] == "ok" and summary["unchanged"] == 1

    listed = run(env, "token", "list", "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert rows[0]["name"] == "e2e" and rows[0]["last_used_at"] is not None
    assert token not in listed.stdout

    revoked = run(env, "token", "revoke", "e2e")
    assert revoked.returncode == 0 and "Revoked API token e2e" in revoked.stdout
    assert request(f"{server.base}/api/v1/sources", token)[0] == 401
    again = run(env, "token", "revoke", "nobody")
    assert again.returncode == 4 and again.stderr.startswith("Error: no token named")

    assert server.stop() in (0, -signal.SIGTERM)
    output = server.output()
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert token not in output


def test_serve_runs_the_monitor(
    env: dict[str, str], servers: list[Server], source_db: SourceDb, tmp_path: Path
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    added = run(
        env,
        "source",
        "add",
        "shop",
        "--dsn",
        source_db.url,
        "--publication",
        "rosetta_publication",
        "--no-sync",
    )
    assert added.returncode == 0, added.stderr
    created = run(env, "token", "create", "watcher", "--quiet")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    server = Server(env, tmp_path / "serve.out", "--host", "127.0.0.1")
    servers.append(server)
    server.wait_healthy()
    deadline = time.monotonic() + 60
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = request(f"{server.base}/api/v1/health", token)[1]
        if health["monitor"]["last_cycle_outcome"] is not None:
            break
        time.sleep(0.2)
    assert health["monitor"]["running"] is True
    assert health["monitor"]["last_cycle_outcome"] == "ok"
    assert health["monitor"]["last_cycle_summary"]["added"] == 1
    assert server.stop() in (0, -signal.SIGTERM)
    output = server.output()
    assert "Schema monitor stopped" in output and "Application shutdown complete" in output
    assert "Traceback" not in output


def test_serve_refuses_an_unmigrated_store(pg: Any, tmp_path: Path) -> None:
    import psycopg
    from psycopg import sql

    name = f"empty_{free_port()}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        env = dict(
            os.environ,
            ROSETTA_DATABASE_URL=pg.url(name),
            ROSETTA_SECRET_KEY=TEST_KEY,
            ROSETTA_LOG_FILE=str(tmp_path / "app.log"),
        )
        result = run(env, "serve", "--port", str(free_port()))
        assert result.returncode == 3
        assert result.stderr.strip() == (
            "Error: Rosetta's store is not migrated: run `rosetta db upgrade`."
        )
    finally:
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def demo_db(pg: Any) -> Iterator[None]:
    yield
    import psycopg

    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS rosetta_demo WITH (FORCE)")


def test_demo(env: dict[str, str], servers: list[Server], tmp_path: Path, demo_db: None) -> None:
    """`rosetta demo` makes a demo source, a token and a command to try, then serves."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    server = Server(env, tmp_path / "demo.out", command="demo")
    servers.append(server)
    server.wait_healthy(timeout=120)
    output = server.output()
    token = TOKEN_RE.findall(output)[0]
    command = re.search(r"psql \"([^\"]+)\" -c '([^']+)'", output)
    assert command is not None, output
    assert command.group(2).endswith("SET TABLE customers, orders, products, shipments;")
    assert f"http://localhost:{server.port}/" in output

    status, sources = request(f"{server.base}/api/v1/sources", token)
    assert status == 200 and [s["name"] for s in sources] == ["demo"]
    assert sources[0]["username"] == "rosetta_demo"  # a role of its own, not the superuser
    source_id = sources[0]["id"]
    status, page = request(f"{server.base}/api/v1/sources/{source_id}/tables", token)
    assert [t["name"] for t in page["items"]] == ["customers", "orders", "products"]
    status, available = request(f"{server.base}/api/v1/sources/{source_id}/available-tables", token)
    assert {t["name"] for t in available} == {"order_items", "shipments"}

    # The monitor's first cycle (its worker syncs the sources due at start) is done before the
    # publication changes: the Refresh below is what finds the new table.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = request(f"{server.base}/api/v1/health", token)[1]
        if health["monitor"]["last_cycle_outcome"] is not None:
            break
        time.sleep(0.2)
    assert health["monitor"]["last_cycle_outcome"] == "ok", health
    # The printed command never shows the password; psql asks for it (here: the store's).
    password = str(conninfo_to_dict(env["ROSETTA_DATABASE_URL"])["password"])
    assert password not in output
    with psycopg.connect(command.group(1), password=password, autocommit=True) as conn:
        conn.execute(command.group(2).encode())
    status, summary = request(f"{server.base}/api/v1/sources/{source_id}/refresh", token, "POST")
    assert status == 200 and summary["added"] == ["shipments"], summary
    assert server.stop() in (0, -signal.SIGTERM)
    assert "Traceback" not in server.output()

    # A second run reuses the database and the source, makes a new token, suggests a new change.
    again = Server(env, tmp_path / "demo2.out", command="demo")
    servers.append(again)
    again.wait_healthy(timeout=120)
    second = again.output()
    assert TOKEN_RE.findall(second)[0] != token
    assert "ALTER TABLE customers ADD COLUMN IF NOT EXISTS phone varchar(30);" in second
    status, sources = request(f"{again.base}/api/v1/sources", TOKEN_RE.findall(second)[0])
    assert [s["name"] for s in sources] == ["demo"]
    again.stop()


def _imported(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rosetta", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, modules


def test_refresh_and_monitor_never_import_the_web_stack(
    env: dict[str, str], source_db: SourceDb
) -> None:
    source_db.sql("CREATE TABLE customers (id bigint PRIMARY KEY)")
    source_db.sql("CREATE PUBLICATION rosetta_publication FOR TABLE customers")
    added = run(
        env,
        "source",
        "add",
        "shop",
        "--dsn",
        source_db.url,
        "--publication",
        "rosetta_publication",
        "--no-sync",
    )
    assert added.returncode == 0, added.stderr
    for args in (("--help",), ("refresh", "shop"), ("monitor", "--once"), ("token", "list")):
        result, modules = _imported(env, *args)
        assert result.returncode == 0, (args, result.stdout, result.stderr[-2000:])
        assert "typer" in modules and ("psycopg" in modules or args == ("--help",))
        assert not modules & set(WEB_STACK), (args, modules & set(WEB_STACK))
