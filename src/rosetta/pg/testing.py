"""Throwaway PostgreSQL servers for the tests and the benchmarks.

``ThrowawayPostgres`` runs initdb into a fresh temp dir, runs ``postgres`` as a child process and
removes everything on stop; the embedded store of ``rosetta serve`` does not use it (it keeps its
own cluster in the data dir: :mod:`rosetta.pg.embedded`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import psycopg

from rosetta.errors import PostgresStartError
from rosetta.pg.server import (
    ADDRESS_IN_USE,
    PostgresServer,
    chown_to_postgres,
    find_bindir,
    free_port,
    init_cluster,
    live_postmaster,
    log_tail,
    make_reachable_dir,
    pid_alive,
    postgres_credentials,
    read_pid,
)

THROWAWAY_PREFIX = "rosetta-pg-"
OWNER_FILE = "owner.pid"

_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
_START_ATTEMPTS = 5
_UNOWNED_DIR_GRACE = 3600.0


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def sweep_stale_dirs(prefix: str = THROWAWAY_PREFIX, parent: Path | None = None) -> list[Path]:
    """Remove throwaway dirs whose creating process is gone, killing any server left in them."""
    parent = parent or Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
            continue
        owner = read_pid(entry / OWNER_FILE)
        if owner is None:
            # Being created right now (owner.pid not written yet), or not ours to judge.
            try:
                if time.time() - entry.stat().st_mtime < _UNOWNED_DIR_GRACE:
                    continue
            except OSError:
                continue
        elif pid_alive(owner):
            continue
        postmaster = live_postmaster(entry / "data")
        if postmaster is not None:
            with contextlib.suppress(OSError):
                os.kill(postmaster, signal.SIGQUIT)
            if not _wait_gone(postmaster, 10.0):
                with contextlib.suppress(OSError):
                    os.kill(postmaster, signal.SIGKILL)
                _wait_gone(postmaster, 5.0)
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed.append(entry)
    return removed


_prctl: Callable[..., int] | None = None


def _libc_prctl() -> Callable[..., int]:
    """libc's prctl, resolved in the parent (no dlopen between fork and exec)."""
    global _prctl
    if _prctl is None:
        function = ctypes.CDLL(None, use_errno=True).prctl
        function.argtypes = [ctypes.c_int, *([ctypes.c_ulong] * 4)]
        function.restype = ctypes.c_int
        _prctl = function
    return _prctl


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child get SIGINT (fast shutdown) when this thread dies.

    CPython runs ``preexec_fn`` after switching uid/gid, which matters: the kernel clears the
    parent-death signal on credential changes. It fires when the forking *thread* exits, so it is
    only set from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = _libc_prctl()
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT), 0, 0, 0)
        if os.getppid() != parent:  # The parent died before prctl took effect.
            raise RuntimeError("parent exited")

    return preexec


class ThrowawayPostgres:
    """A PostgreSQL server for tests: initdb into a fresh temp dir, run ``postgres`` as a child
    process, and remove everything on stop.

    ``bindir`` picks the PostgreSQL binaries (default: :func:`find_bindir`), e.g. one of
    :func:`rosetta.pg.versions.source_bindirs` for another major.

    A server whose starter dies (even by SIGKILL) gets a fast shutdown through PR_SET_PDEATHSIG,
    and the next ``start()`` anywhere removes dirs whose owner is gone.
    """

    def __init__(
        self, extra_settings: dict[str, str] | None = None, bindir: Path | None = None
    ) -> None:
        self._extra_settings = dict(extra_settings or {})
        self._bindir = bindir
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmpdir: Path | None = None
        self._server: PostgresServer | None = None

    @property
    def server(self) -> PostgresServer:
        """The running server (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the throwaway server is not started")
        return self._server

    @property
    def tmpdir(self) -> Path | None:
        """The temp dir holding the data dir, socket dir and log (None when stopped)."""
        return self._tmpdir

    def start(self) -> PostgresServer:
        """Create and start the server; returns it once it accepts connections."""
        if self._server is not None:
            return self._server
        sweep_stale_dirs()
        bindir = self._bindir or find_bindir()
        tmpdir = make_reachable_dir(THROWAWAY_PREFIX)
        self._tmpdir = tmpdir
        try:
            (tmpdir / OWNER_FILE).write_text(f"{os.getpid()}\n")
            datadir = tmpdir / "data"
            socket_dir = tmpdir / "sock"
            socket_dir.mkdir(mode=0o700)
            chown_to_postgres(socket_dir)
            password = secrets.token_urlsafe(18)
            init_cluster(datadir, "postgres", password, bindir, self._extra_settings, no_sync=True)
            self._server = self._launch(bindir, datadir, socket_dir, password)
        except BaseException:
            self.stop()
            raise
        return self._server

    def _launch(
        self, bindir: Path, datadir: Path, socket_dir: Path, password: str
    ) -> PostgresServer:
        log = datadir.parent / "postgres.log"
        creds = postgres_credentials()
        for attempt in range(1, _START_ATTEMPTS + 1):
            server = PostgresServer(datadir, free_port(), socket_dir, "postgres", password)
            cmd = [
                str(bindir / "postgres"),
                *("-D", str(datadir), "-p", str(server.port), "-k", str(socket_dir)),
                *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
            ]
            with log.open("wb") as log_handle:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                    cwd="/",
                    preexec_fn=_pdeathsig_preexec(),
                    user=creds.user,
                    group=creds.group,
                    extra_groups=creds.extra_groups,
                )
            if self._wait_ready(self._proc, server, log):
                return server
            self._proc = None
            output = log_tail(log)
            if ADDRESS_IN_USE in output and attempt < _START_ATTEMPTS:
                continue
            raise PostgresStartError(f"PostgreSQL exited while starting:\n{output}")
        raise PostgresStartError("PostgreSQL could not be started")  # pragma: no cover

    def _wait_ready(self, proc: subprocess.Popen[bytes], server: PostgresServer, log: Path) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if proc.poll() is not None:
                return False
            try:
                with psycopg.connect(server.url(), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                pass
            if time.monotonic() > deadline:
                raise PostgresStartError(
                    f"PostgreSQL did not accept connections within {_START_TIMEOUT:.0f} s:\n"
                    + log_tail(log)
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (fast shutdown, SIGKILL after 30 s) and remove the temp dir."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        tmpdir, self._tmpdir = self._tmpdir, None
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        self._server = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
