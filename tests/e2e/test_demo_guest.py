"""The README's quick start as a guest runs it: `rosetta demo` on the embedded store, Ctrl+C, a
taken port, a second start, then `rosetta db stop` — and no process left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from rosetta.pg.server import make_reachable_dir
from tests.conftest import ROSETTA
from tests.e2e.test_serve import TOKEN_RE, Server, request

PSQL_RE = re.compile(r"PGPASSFILE=(\S+) psql \"([^\"]+)\" -c '([^']+)'")
TOKEN_NAME_RE = re.compile(r"named (demo-[0-9a-f]{8})")


def _processes_of(pgdata: Path) -> list[int]:
    """Every process working in ``pgdata`` or naming it on its command line (a postmaster and
    its background processes all work in the data directory)."""
    target = str(pgdata.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cwd == target or cwd.startswith(target + "/") or target in cmdline:
            found.append(int(entry.name))
    return found


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROSETTA, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _interrupt(demo: Server, sig: signal.Signals) -> int:
    demo.proc.send_signal(sig)
    return demo.proc.wait(timeout=90)


def _suggested_ddl(output: str, env: dict[str, str]) -> str:
    """Run the printed psql command twice, as printed: both runs succeed."""
    command = PSQL_RE.search(output)
    assert command is not None, output
    pgpass, conninfo, statement = command.groups()
    psql = shutil.which("psql")
    assert psql is not None, "the psql client is needed for this test"
    for _ in range(2):
        done = subprocess.run(
            [psql, conninfo, "-v", "ON_ERROR_STOP=1", "-c", statement],
            env=dict(env, PGPASSFILE=pgpass),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, (statement, done.stderr)
    return statement


def _last_line(output: str) -> str:
    return [line for line in output.splitlines() if line.strip()][-1]


def test_the_demo_as_a_guest(tmp_path: Path) -> None:
    home = make_reachable_dir("rosetta-guest-test-")
    data_dir = home / ".rosetta"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATA_DIR=str(data_dir),
        ROSETTA_LOG_FILE=str(tmp_path / "logs" / "app.log"),
        ROSETTA_MONITOR_INTERVAL="3600",
    )
    try:
        # A taken port: one line naming it and the fix, a non-zero exit, nothing started.
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            refused = _run(env, "demo", "--port", str(port))
            served = _run(env, "serve", "--port", str(port))  # `rosetta serve` alike
        for result in (refused, served):
            assert result.returncode != 0
            said = (result.stdout + result.stderr).strip().splitlines()
            assert len(said) == 1 and str(port) in said[0] and "--port" in said[0], said
        assert not (data_dir / "embedded.json").exists()
        assert _processes_of(home) == []

        # First start: the demo starts the embedded store, and Ctrl+C stops it again.
        first = Server(env, tmp_path / "first.out", command="demo")
        first.wait_healthy(timeout=120)
        output = first.output()
        assert "Rosetta is ready" in output
        first_token = TOKEN_RE.findall(output)[0]
        statement = _suggested_ddl(output, env)
        assert statement == (
            "ALTER PUBLICATION rosetta_publication SET TABLE customers, orders, products, "
            "shipments;"
        )
        pgdata = Path(json.loads((data_dir / "embedded.json").read_text())["pgdata"])
        assert (pgdata / "postmaster.pid").exists() and _processes_of(pgdata)
        assert _interrupt(first, signal.SIGINT) == -signal.SIGINT
        assert not (pgdata / "postmaster.pid").exists()
        assert _processes_of(pgdata) == []
        assert _last_line(first.output()).startswith(
            "Demo stopped, and with it the embedded PostgreSQL server it started"
        ), first.output()

        # Any other command starting the store says so, and how to stop it, in one line.
        status = _run(env, "db", "status")
        assert status.returncode == 0, status.stderr
        started = status.stderr.strip().splitlines()
        assert len(started) == 1 and "`rosetta db stop` stops it" in started[0], started
        again = _run(env, "db", "status")
        assert again.returncode == 0 and again.stderr == ""  # already running: nothing to say

        # Second start, on the running store: one live demo token, a DDL that works twice, and
        # the store, which the demo did not start, keeps running after it.
        second = Server(env, tmp_path / "second.out", command="demo")
        second.wait_healthy(timeout=120)
        output = second.output()
        second_token = TOKEN_RE.findall(output)[0]
        name = TOKEN_NAME_RE.search(output)
        assert name is not None and "the earlier demo token is revoked" in output
        assert _suggested_ddl(output, env) == (
            "ALTER TABLE customers ADD COLUMN IF NOT EXISTS phone varchar(30);"
        )
        listed = _run(env, "token", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        live = [t["name"] for t in json.loads(listed.stdout) if t["active"]]
        assert [n for n in live if n.startswith("demo-")] == [name.group(1)]
        assert request(f"{second.base}/api/v1/sources", first_token)[0] == 401
        assert request(f"{second.base}/api/v1/sources", second_token)[0] == 200
        assert _interrupt(second, signal.SIGTERM) == -signal.SIGTERM
        assert "was running before the demo, so it keeps running" in _last_line(second.output())
        assert (pgdata / "postmaster.pid").exists() and _processes_of(pgdata)

        # `rosetta db stop`, as the README says: nothing of the store is left running.
        stopped = _run(env, "db", "stop")
        assert stopped.returncode == 0 and "Stopped the embedded store." in stopped.stdout
        assert not (pgdata / "postmaster.pid").exists()
        assert _processes_of(pgdata) == []
    finally:
        for server in (s for s in locals().values() if isinstance(s, Server)):
            server.stop()
        _run(env, "db", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_ctrl_c_while_the_store_starts_leaves_nothing_behind(tmp_path: Path) -> None:
    """Ctrl+C during the first start (initdb, pg_ctl): the start finishes, then the demo stops
    the server it started — no half-made cluster, no orphaned PostgreSQL program."""
    home = make_reachable_dir("rosetta-guest-test-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    env.update(
        ROSETTA_DATA_DIR=str(home / ".rosetta"),
        ROSETTA_LOG_FILE=str(tmp_path / "logs" / "app.log"),
    )
    demo = Server(env, tmp_path / "demo.out", command="demo")
    try:
        deadline = time.monotonic() + 60
        while "Starting the store" not in demo.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert demo.proc.poll() is None, demo.output()
        assert _interrupt(demo, signal.SIGINT) == -signal.SIGINT
        output = demo.output()
        assert "Rosetta is ready" not in output
        assert _last_line(output).startswith(
            "Demo stopped, and with it the embedded PostgreSQL server it started"
        ), output
        assert _processes_of(home) == []
        assert not list(home.rglob("postmaster.pid"))
        assert "Traceback" not in output
    finally:
        demo.stop()
        _run(env, "db", "stop")
        shutil.rmtree(home, ignore_errors=True)
