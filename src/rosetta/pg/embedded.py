"""The embedded default store: Rosetta's own PostgreSQL server under its data directory.

Used when no ROSETTA_DATABASE_URL is given. The server is created and started on first use, keeps
running between commands (it is started with ``pg_ctl``, detached from this process) and is
reused by later ones; :meth:`EmbeddedStore.stop` stops it. :attr:`EmbeddedStore.started` says
whether :meth:`EmbeddedStore.ensure_running` started it, so a command can say so (and ``rosetta
demo`` stops on exit what it started).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from rosetta.errors import PostgresStartError, RosettaError
from rosetta.pg.server import (
    ADDRESS_IN_USE,
    PostgresServer,
    chown_to_postgres,
    find_bindir,
    free_port,
    init_cluster,
    live_postmaster,
    log_tail,
    port_is_free,
    run_pg_command,
    tail,
)

STATE_FILE = "embedded.json"
LOCK_FILE = ".lock"
SUPERUSER = "rosetta"
DATABASE = "rosetta"
REACHABLE_ROOT = Path("/var/lib/rosetta")
"""Where the cluster lives when running as root and the data dir is out of the postgres user's
reach."""

_STATE_VERSION = 1
_MAX_SOCKET_DIR = 80  # the socket path (dir + "/.s.PGSQL.NNNNN") must stay under 107 bytes
_START_ATTEMPTS = 5
_PG_CTL_WAIT = 60


@dataclass
class _State:
    port: int
    password: str
    pgdata: str
    socket_dir: str
    log: str
    superuser: str = SUPERUSER
    database: str = DATABASE
    initialized: bool = False
    version: int = _STATE_VERSION

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _State:
        return cls(
            port=int(data["port"]),
            password=str(data["password"]),
            pgdata=str(data["pgdata"]),
            socket_dir=str(data["socket_dir"]),
            log=str(data["log"]),
            superuser=str(data.get("superuser", SUPERUSER)),
            database=str(data.get("database", DATABASE)),
            initialized=bool(data.get("initialized", False)),
        )

    def server(self) -> PostgresServer:
        return PostgresServer(
            datadir=Path(self.pgdata),
            port=self.port,
            socket_dir=Path(self.socket_dir),
            superuser=self.superuser,
            password=self.password,
        )


def _reachable_by_postgres(path: Path) -> bool:
    """Whether the PostgreSQL OS user can enter ``path`` (always true when not root)."""
    if os.geteuid() != 0:
        return True
    return run_pg_command(["test", "-x", path], timeout=30).returncode == 0


def _accepts_connections(server: PostgresServer, dbname: str = "postgres") -> bool:
    try:
        with psycopg.connect(server.url(dbname), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


def _deliver(signum: int, handler: Any, frame: FrameType | None) -> None:
    """Act on a signal as ``handler`` (a previous disposition of it) would."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold back the first SIGINT or SIGTERM until the block is done (a second one acts at once);
    only the main thread can handle signals, elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if held:
            _deliver(signum, previous[signum], frame)
        else:
            held.append(signum)

    for sig in _INTERRUPTS:
        if previous[sig] != signal.SIG_IGN:
            signal.signal(sig, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if held:
        _deliver(held[0], previous[held[0]], None)


@dataclass
class EmbeddedStore:
    """Rosetta's own PostgreSQL server, kept under ``data_dir`` (made absolute)."""

    data_dir: Path
    started: bool = field(default=False, init=False)
    """Whether :meth:`ensure_running` started the server (it was not running before)."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().absolute()

    @property
    def pgdata(self) -> Path | None:
        """The cluster's data directory, once one was made."""
        state = self._read_state()
        return Path(state.pgdata) if state is not None else None

    @property
    def state_path(self) -> Path:
        """``embedded.json``: port, password and where the cluster lives (mode 0600)."""
        return self.data_dir / STATE_FILE

    def ensure_running(self) -> str:
        """Create and/or start the server as needed; returns the URL of the ``rosetta`` database.

        A Ctrl+C or SIGTERM meanwhile takes effect once the server is up (a second one at once),
        so that whoever stops on it finds a whole server to stop, not a half-made one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with _deferred_interrupts(), self._locked():
            state = self._read_state()
            if state is None or not state.initialized:
                state = self._initialize(state)
                self.started = True
            elif not _accepts_connections(state.server()):
                self.started = live_postmaster(Path(state.pgdata)) is None
                state = self._start(state)
            return state.server().url(state.database)

    def has_live_server(self) -> bool:
        """Whether a PostgreSQL server runs on the cluster now (accepting connections or not)."""
        pgdata = self.pgdata
        return pgdata is not None and live_postmaster(pgdata) is not None

    def is_running(self) -> bool:
        """Whether the server accepts connections."""
        state = self._read_state()
        return state is not None and _accepts_connections(state.server())

    def stop(self) -> bool:
        """Stop the server (fast shutdown); True if it was running."""
        if not self.data_dir.is_dir():
            return False
        with self._locked():
            state = self._read_state()
            return state is not None and self._stop(state)

    def _stop(self, state: _State) -> bool:
        pgdata = Path(state.pgdata)
        if live_postmaster(pgdata) is None:
            return False
        bindir = find_bindir()
        cmd: list[str | Path] = [bindir / "pg_ctl", "-D", pgdata, "-m", "fast", "-w"]
        cmd += ["-t", str(_PG_CTL_WAIT), "stop"]
        result = run_pg_command(cmd, timeout=_PG_CTL_WAIT + 30)
        if result.returncode != 0 and live_postmaster(pgdata) is not None:
            raise RosettaError(
                f"The embedded PostgreSQL server did not stop:\n{tail(result.stdout)}"
            )
        return True

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_state(self) -> _State | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return _State.from_json(data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RosettaError(f"{self.state_path} is unreadable: {error}") from error

    def _write_state(self, state: _State) -> None:
        tmp = self.state_path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(state), handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.state_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _key(self) -> str:
        return hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]

    def _home(self) -> Path:
        """The directory holding ``pgdata`` and ``postgres.log``, reachable by the postgres user."""
        if _reachable_by_postgres(self.data_dir):
            return self.data_dir
        REACHABLE_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
        home = REACHABLE_ROOT / self._key()
        home.mkdir(mode=0o700, exist_ok=True)
        chown_to_postgres(home)
        return home

    def _socket_dir(self, pgdata: Path) -> Path:
        if len(os.fsencode(str(pgdata))) <= _MAX_SOCKET_DIR:
            return pgdata
        return Path(tempfile.gettempdir()) / f"rosetta-sock-{self._key()}"

    def _initialize(self, previous: _State | None) -> _State:
        """Create the cluster (again, if an earlier attempt did not finish), start it, create the
        database."""
        if previous is not None:
            state = previous
            if live_postmaster(Path(state.pgdata)) is not None:
                self._stop(state)
        else:
            home = self._home()
            pgdata = home / "pgdata"
            state = _State(
                port=free_port(),
                password=secrets.token_urlsafe(24),
                pgdata=str(pgdata),
                socket_dir=str(self._socket_dir(pgdata)),
                log=str(home / "postgres.log"),
            )
            self._write_state(state)
        pgdata = Path(state.pgdata)
        if pgdata.exists():
            shutil.rmtree(pgdata)
        pgdata.mkdir(mode=0o700, parents=True)
        chown_to_postgres(pgdata)
        init_cluster(pgdata, state.superuser, state.password)
        state = self._start(state)
        server = state.server()
        with psycopg.connect(server.url(), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (state.database,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(state.database)))
        state.initialized = True
        self._write_state(state)
        return state

    def _start(self, state: _State) -> _State:
        """Start the server with ``pg_ctl`` (it outlives this process); moves to a new port if
        the recorded one is taken."""
        pgdata = Path(state.pgdata)
        if live_postmaster(pgdata) is not None:
            return self._await_running(state)
        bindir = find_bindir()
        log = Path(state.log)
        if not log.exists():
            log.touch(mode=0o600)
            chown_to_postgres(log)
        socket_dir = Path(state.socket_dir)
        if not socket_dir.exists():
            socket_dir.mkdir(mode=0o700)
            chown_to_postgres(socket_dir)
        for attempt in range(1, _START_ATTEMPTS + 1):
            if not port_is_free(state.port):
                state.port = free_port()
                self._write_state(state)
            offset = log.stat().st_size
            options = f"-p {state.port} -k {shlex.quote(str(socket_dir))}"
            cmd: list[str | Path] = [bindir / "pg_ctl", "-D", pgdata, "-l", log, "-o", options]
            result = run_pg_command(
                [*cmd, "-w", "-t", str(_PG_CTL_WAIT), "start"], timeout=_PG_CTL_WAIT + 30
            )
            if result.returncode == 0:
                return self._await_running(state)
            output = log_tail(log, offset=offset)
            if ADDRESS_IN_USE in output and attempt < _START_ATTEMPTS:
                state.port = free_port()
                self._write_state(state)
                continue
            raise PostgresStartError(
                f"The embedded PostgreSQL server in {pgdata} did not start "
                f"(pg_ctl exit {result.returncode}):\n{output or tail(result.stdout)}"
            )
        raise PostgresStartError("The embedded PostgreSQL server did not start")  # pragma: no cover

    def _await_running(self, state: _State, timeout: float = 30.0) -> _State:
        """Wait for a started (or starting) server to accept connections."""
        deadline = time.monotonic() + timeout
        while not _accepts_connections(state.server()):
            if time.monotonic() > deadline or live_postmaster(Path(state.pgdata)) is None:
                raise PostgresStartError(
                    f"The embedded PostgreSQL server in {state.pgdata} does not accept "
                    f"connections on port {state.port}:\n{log_tail(Path(state.log))}"
                )
            time.sleep(0.1)
        return state
