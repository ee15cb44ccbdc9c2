"""Real PostgreSQL servers started from the machine's binaries (no mocks)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

import rosetta
from rosetta.errors import PostgresNotFoundError, PostgresStartError
from rosetta.pg import embedded
from rosetta.pg.embedded import EmbeddedStore
from rosetta.pg.server import (
    PostgresServer,
    find_bindir,
    live_postmaster,
    make_reachable_dir,
    read_pid,
)
from rosetta.pg.testing import ThrowawayPostgres, sweep_stale_dirs


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port_closed(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _accepts_tcp(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _subprocess_env() -> dict[str, str]:
    """The environment for a child Python that imports this checkout's ``rosetta``."""
    src = str(Path(rosetta.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _kill_postmaster(datadir: Path) -> None:
    pid = live_postmaster(datadir)
    if pid is not None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_url_is_percent_quoted() -> None:
    server = PostgresServer(Path("/x"), 5432, Path("/x"), "a b", "p@ss:/w?rd")
    assert server.url("my db") == "postgresql://a%20b:p%40ss%3A%2Fw%3Frd@127.0.0.1:5432/my%20db"
    assert server.conninfo("d") == server.url("d")
    assert server.url(user="u", password="v") == "postgresql://u:v@127.0.0.1:5432/postgres"


def test_bindir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ROSETTA_PG_BINDIR", str(tmp_path))
    with pytest.raises(PostgresNotFoundError, match="ROSETTA_PG_BINDIR"):
        find_bindir()
    monkeypatch.delenv("ROSETTA_PG_BINDIR")
    assert (find_bindir() / "postgres").is_file()


def test_throwaway_server_lifecycle() -> None:
    throwaway = ThrowawayPostgres(extra_settings={"application_name": "rosetta it's"})
    try:
        server = throwaway.start()
        tmpdir = throwaway.tmpdir
        assert tmpdir is not None
        assert (tmpdir / "owner.pid").read_text().strip() == str(os.getpid())
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
            assert conn.execute("SHOW application_name").fetchone() == ("rosetta it's",)
            assert conn.execute("SELECT host(inet_server_addr())").fetchone() == ("127.0.0.1",)
            row = conn.execute("SELECT inet_server_port()").fetchone()
            assert row == (server.port,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.url(password="wrong"), connect_timeout=5).close()
        assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
    finally:
        throwaway.stop()
    assert not tmpdir.exists()
    assert not _accepts_tcp(server.port)
    throwaway.stop()  # idempotent


def test_context_manager_returns_server() -> None:
    with ThrowawayPostgres() as server:
        with psycopg.connect(server.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        datadir = server.datadir
    assert not datadir.exists()
    assert not _accepts_tcp(server.port)


def test_server_dies_with_killed_parent() -> None:
    script = textwrap.dedent(
        """
        import os, signal
        from rosetta.pg.testing import ThrowawayPostgres
        server = ThrowawayPostgres().start()
        print(server.port, server.datadir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=_subprocess_env(),
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    port_text, datadir_text = result.stdout.strip().split(" ", 1)
    port, datadir = int(port_text), Path(datadir_text)
    try:
        assert _wait_port_closed(port, 20.0), "the orphaned server is still accepting connections"
        # The dir was left behind by the killed process; the next start() sweeps it.
        sweep_stale_dirs()
        assert not datadir.parent.exists()
    finally:
        _kill_postmaster(datadir)
        shutil.rmtree(datadir.parent, ignore_errors=True)


def test_sweep_kills_server_of_dead_owner() -> None:
    script = textwrap.dedent(
        """
        import os, signal
        from rosetta.pg import testing as pg
        pg._pdeathsig_preexec = lambda: None  # as if the server had outlived its starter
        server = pg.ThrowawayPostgres().start()
        print(server.port, server.datadir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=_subprocess_env(),
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    port_text, datadir_text = result.stdout.strip().split(" ", 1)
    port, datadir = int(port_text), Path(datadir_text)
    try:
        assert _accepts_tcp(port)
        sweep_stale_dirs()
        assert not datadir.parent.exists()
        assert not _accepts_tcp(port)
    finally:
        _kill_postmaster(datadir)
        shutil.rmtree(datadir.parent, ignore_errors=True)


def test_start_failure_reports_log_and_cleans_up() -> None:
    def ours() -> set[Path]:
        return {
            d
            for d in Path(tempfile.gettempdir()).glob("rosetta-pg-*")
            if read_pid(d / "owner.pid") == os.getpid()
        }

    before = ours()  # this process's session server, if one runs
    throwaway = ThrowawayPostgres(extra_settings={"shared_buffers": "lots"})
    with pytest.raises(PostgresStartError, match="shared_buffers"):
        throwaway.start()
    assert throwaway.tmpdir is None
    assert ours() == before


@pytest.fixture
def store_dir() -> Iterator[Path]:
    """A data dir that the postgres OS user can reach; its server is stopped afterwards."""
    path = make_reachable_dir("rosetta-test-embedded-")
    try:
        yield path
    finally:
        with contextlib.suppress(Exception):
            EmbeddedStore(path).stop()
        _kill_postmaster(path / "pgdata")
        shutil.rmtree(path, ignore_errors=True)


def _database_of(url: str) -> str:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def test_embedded_store_lifecycle(store_dir: Path) -> None:
    # First use by two processes at once (the lock makes one create the server, the other reuse
    # it); the server must outlive them.
    script = "import sys; from rosetta.pg.embedded import EmbeddedStore; "
    script += "print(EmbeddedStore(sys.argv[1]).ensure_running())"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(store_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_subprocess_env(),
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    urls = {stdout.strip() for stdout, _ in outputs}
    assert len(urls) == 1
    url = urls.pop()
    assert _database_of(url) == "rosetta"
    parts = urlsplit(url)
    assert (parts.hostname, parts.username, parts.path) == ("127.0.0.1", "rosetta", "/rosetta")

    state_file = store_dir / "embedded.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    state = json.loads(state_file.read_text())
    assert state["port"] == parts.port
    assert Path(state["pgdata"]) == store_dir / "pgdata"

    store = EmbeddedStore(store_dir)
    assert store.is_running()
    assert store.ensure_running() == url  # reused: same port, same password
    assert EmbeddedStore(store_dir).ensure_running() == url

    assert store.stop() is True
    assert not store.is_running()
    assert not _accepts_tcp(parts.port or 0)
    assert store.stop() is False

    assert store.ensure_running() == url  # restarted on the same port
    assert _database_of(url) == "rosetta"
    assert store.stop() is True


def test_embedded_store_moves_to_free_port(store_dir: Path) -> None:
    store = EmbeddedStore(store_dir)
    url = store.ensure_running()
    port = urlsplit(url).port
    assert port is not None
    assert store.stop() is True
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        new_url = store.ensure_running()
    new_port = urlsplit(new_url).port
    assert new_port != port
    assert json.loads((store_dir / "embedded.json").read_text())["port"] == new_port
    assert _database_of(new_url) == "rosetta"
    assert store.stop() is True


@pytest.mark.skipif(os.geteuid() != 0, reason="only root keeps the cluster elsewhere")
def test_embedded_store_outside_unreachable_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    reachable_root = make_reachable_dir("rosetta-test-varlib-")
    data_dir = Path(tempfile.mkdtemp(prefix="rosetta-test-private-")) / "store"  # root-only 0700
    monkeypatch.setattr(embedded, "REACHABLE_ROOT", reachable_root)
    store = EmbeddedStore(data_dir)
    try:
        url = store.ensure_running()
        assert _database_of(url) == "rosetta"
        pgdata = Path(json.loads((data_dir / "embedded.json").read_text())["pgdata"])
        assert pgdata.parent.parent == reachable_root
        assert pgdata.name == "pgdata"
        assert not (data_dir / "pgdata").exists()
        assert store.stop() is True
    finally:
        with contextlib.suppress(Exception):
            store.stop()
        for pgdata_dir in reachable_root.glob("*/pgdata"):
            _kill_postmaster(pgdata_dir)
        shutil.rmtree(reachable_root, ignore_errors=True)
        shutil.rmtree(data_dir.parent, ignore_errors=True)
