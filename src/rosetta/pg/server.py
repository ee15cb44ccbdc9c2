"""Start real PostgreSQL servers from the machine's binaries.

PostgreSQL refuses to run as root, so when this process is root every server program (initdb,
postgres, pg_ctl) runs as the ``postgres`` OS user, on directories that user owns.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from rosetta.errors import PostgresNotFoundError, PostgresStartError

BINDIR_ENV = "ROSETTA_PG_BINDIR"
PG_OS_USER = "postgres"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
LOG_TAIL_LINES = 20
ADDRESS_IN_USE = "Address already in use"

DEFAULT_SETTINGS: dict[str, str] = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "64MB",
}


def find_bindir() -> Path:
    """The directory of the PostgreSQL server binaries (``postgres``, ``initdb``, ``pg_ctl``)."""
    configured = os.environ.get(BINDIR_ENV)
    if configured:
        path = Path(configured)
        if not (path / "postgres").is_file():
            raise PostgresNotFoundError(
                f"{BINDIR_ENV}={configured} holds no `postgres` binary: point it at PostgreSQL's "
                "bin directory (pg_config --bindir), or unset it"
            )
        return path
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out and (Path(out) / "postgres").is_file():
                return Path(out)
    candidates: list[tuple[tuple[int, ...], Path]] = []
    with contextlib.suppress(OSError):
        for entry in DEBIAN_PG_ROOT.iterdir():
            if re.fullmatch(r"\d+(\.\d+)*", entry.name) and (entry / "bin" / "postgres").is_file():
                version = tuple(int(part) for part in entry.name.split("."))
                candidates.append((version, entry / "bin"))
    if candidates:
        return max(candidates)[1]
    raise PostgresNotFoundError()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port (PostgreSQL sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Credentials(NamedTuple):
    """Who runs PostgreSQL's programs: the ``postgres`` OS user when this process is root."""

    user: str | None
    group: int | None
    extra_groups: list[int] | None


def postgres_credentials() -> Credentials:
    if os.geteuid() != 0:
        return Credentials(None, None, None)
    try:
        entry = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        raise PostgresStartError(
            f"PostgreSQL refuses to run as root and there is no `{PG_OS_USER}` OS user to run it "
            "as: install PostgreSQL's server package or run Rosetta as another user."
        ) from None
    return Credentials(PG_OS_USER, entry.pw_gid, [])


def chown_to_postgres(path: Path) -> None:
    """Give ``path`` to the PostgreSQL OS user when running as root (no-op otherwise)."""
    if os.geteuid() != 0:
        return
    entry = pwd.getpwnam(PG_OS_USER)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def make_reachable_dir(prefix: str) -> Path:
    """A fresh private (0700) temp dir that the PostgreSQL OS user owns."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        chown_to_postgres(path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def run_pg_command(
    cmd: Sequence[str | Path], *, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as the PostgreSQL OS user; output is captured (stderr merged).

    The program runs in a process group of its own, so a Ctrl+C at the terminal reaches Rosetta
    alone: Rosetta decides what to stop, and an ``initdb`` or ``pg_ctl`` is never cut in half
    (which would leave a half-made cluster or an orphaned single-user backend)."""
    creds = postgres_credentials()
    return subprocess.run(
        [str(part) for part in cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        cwd="/",
        user=creds.user,
        group=creds.group,
        extra_groups=creds.extra_groups,
        process_group=0,
        check=False,
    )


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of ``text``."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, offset: int = 0) -> str:
    """The last lines of a log file from byte ``offset`` on ("" if unreadable)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return ""
    return tail(data.decode(errors="replace"), lines)


@dataclass
class PostgresServer:
    """A PostgreSQL server running from a data directory, with TCP on 127.0.0.1:port and its unix
    socket in a private directory."""

    datadir: Path
    port: int
    socket_dir: Path
    superuser: str
    password: str

    def url(
        self, dbname: str = "postgres", user: str | None = None, password: str | None = None
    ) -> str:
        """``postgresql://user:password@127.0.0.1:port/dbname``, percent-quoted."""
        name = quote(user if user is not None else self.superuser, safe="")
        secret = quote(password if password is not None else self.password, safe="")
        return f"postgresql://{name}:{secret}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """The superuser's connection URL for ``dbname`` (same as :meth:`url`)."""
        return self.url(dbname)


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def init_cluster(
    datadir: Path,
    superuser: str,
    password: str,
    bindir: Path | None = None,
    settings: Mapping[str, str] | None = None,
    *,
    no_sync: bool = False,
) -> None:
    """initdb a new cluster into ``datadir`` and configure it for logical replication.

    ``datadir`` must not exist or be empty, and the PostgreSQL OS user must be able to create or
    write it. ``settings`` are added to (and override) :data:`DEFAULT_SETTINGS`.
    """
    if "\n" in password or "\r" in password:
        raise ValueError("the superuser password cannot contain line breaks")
    bindir = bindir or find_bindir()
    datadir = datadir.absolute()
    pwdir = make_reachable_dir("rosetta-pwfile-")
    try:
        pwfile = pwdir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        chown_to_postgres(pwfile)
        base: list[str | Path] = [
            bindir / "initdb",
            "-D",
            datadir,
            "-U",
            superuser,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ]
        if no_sync:
            base.append("--no-sync")
        result = run_pg_command([*base, "--locale=C.UTF-8"])
        if result.returncode != 0 and "locale" in result.stdout.lower():
            result = run_pg_command([*base, "--no-locale"])
    finally:
        shutil.rmtree(pwdir, ignore_errors=True)
    if result.returncode != 0:
        raise PostgresStartError(
            f"initdb {datadir} failed (exit {result.returncode}):\n{tail(result.stdout)}"
        )
    merged = {**DEFAULT_SETTINGS, **(settings or {})}
    lines = [f"{key} = {_conf_value(value)}" for key, value in merged.items()]
    with (datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# Added by Rosetta\n" + "\n".join(lines) + "\n")


def read_pid(path: Path) -> int | None:
    """The pid on the first line of ``path`` (a pid file), or None."""
    try:
        first = path.read_text(errors="replace").split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_postmaster(datadir: Path) -> int | None:
    """The pid of the postmaster running on ``datadir``, checked against the process itself so a
    stale ``postmaster.pid`` whose pid was reused is not mistaken for a server."""
    pid = read_pid(datadir / "postmaster.pid")
    if pid is None or not pid_alive(pid):
        return None
    target = datadir.absolute()
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        cwd = None
    if cwd is not None:
        with contextlib.suppress(OSError):
            if cwd == target or cwd.resolve() == target.resolve():
                return pid
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if os.fsencode(str(target)) in argv else None
