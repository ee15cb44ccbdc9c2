"""Every connection to a source is built here: from typed fields, within the network policy,
with limits on time, and never handing the stored password to a server it was not saved for.

- Connection options are limited to libpq keywords that cannot change where the connection goes
  or how it authenticates (:data:`ALLOWED_OPTIONS`), each with the values libpq accepts. A key is
  taken exactly as libpq would read it: a key with spaces, another case or an ``=`` is refused,
  never normalised into something else.
- The host is one host name, address or (when allowed) socket directory; the connection goes to
  the address the network policy checked (``hostaddr``).
- Unless the source's own options say otherwise (``require_auth``), a server asking for the
  password in clear text is refused before the password is sent.
- Every statement has a ``statement_timeout`` and a ``lock_timeout``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from rosetta import netpolicy
from rosetta.errors import (
    InvalidInputError,
    PasswordRequiredError,
    SourceConnectionError,
    first_line,
)
from rosetta.netpolicy import NetworkPolicy
from rosetta.uow import map_source_errors

MAX_TEXT_BYTES = 255
MAX_PASSWORD_BYTES = 1000
MAX_OPTION_BYTES = 200
# libpq's default; the order of sslmode values is also how much each protects.
DEFAULT_SSLMODE = "prefer"
# Unless the source says otherwise, never answer a request for the password in clear text.
DEFAULT_REQUIRE_AUTH = "!password"


def _one_of(*values: str) -> Callable[[str], bool]:
    return lambda value: value in values


def _integer(low: int, high: int) -> Callable[[str], bool]:
    return lambda value: value.isdigit() and low <= int(value) <= high


_AUTH_METHODS = ("password", "md5", "gss", "sspi", "scram-sha-256", "oauth", "none")


def _auth_methods(value: str) -> bool:
    """libpq's ``require_auth``: methods separated by commas, all negated (``!``) or none."""
    items = value.split(",")
    negated = {item.startswith("!") for item in items}
    return len(negated) == 1 and all(item.lstrip("!") in _AUTH_METHODS for item in items)


_TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

# The libpq keywords a source's options may set, with the values each accepts. None of them can
# change the host, port, address, user, database or the password, or read a file on this machine.
ALLOWED_OPTIONS: dict[str, Callable[[str], bool]] = {
    "sslmode": _one_of("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "sslnegotiation": _one_of("postgres", "direct"),
    "sslsni": _one_of("0", "1"),
    "ssl_min_protocol_version": _one_of(*_TLS_VERSIONS),
    "ssl_max_protocol_version": _one_of(*_TLS_VERSIONS),
    "channel_binding": _one_of("disable", "prefer", "require"),
    "gssencmode": _one_of("disable", "prefer", "require"),
    "require_auth": _auth_methods,
    "target_session_attrs": _one_of(
        "any", "read-write", "read-only", "primary", "standby", "prefer-standby"
    ),
    "keepalives": _one_of("0", "1"),
    "keepalives_idle": _integer(0, 86400),
    "keepalives_interval": _integer(0, 86400),
    "keepalives_count": _integer(0, 1000),
    "tcp_user_timeout": _integer(0, 86_400_000),
}
# Options that decide how well the password and the data are protected on the way: changing
# any of them, like changing the host or port, needs the password again.
SECURITY_OPTIONS = frozenset(
    {
        "sslmode",
        "sslnegotiation",
        "sslsni",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "channel_binding",
        "gssencmode",
        "require_auth",
    }
)
_FIELDS = {"host", "hostaddr", "port", "dbname", "user", "password"}


def check_text(value: str, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """``value`` if libpq can take it: valid UTF-8, no NUL or line break, not too long."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise InvalidInputError(f"invalid {what}: it is not valid Unicode text") from None
    if not value or "\x00" in value or size > max_bytes:
        raise InvalidInputError(f"invalid {what}: use 1-{max_bytes} bytes, without NUL")
    return value


def validate_options(options: Mapping[str, Any]) -> dict[str, str]:
    """The options if every key is an allowed libpq keyword, spelt exactly, with a value libpq
    accepts for it; else one line naming the first bad one."""
    valid: dict[str, str] = {}
    for key, raw in options.items():
        name = str(key)
        check = ALLOWED_OPTIONS.get(name)
        if check is None:
            bare = name.strip().split("=", 1)[0].strip().lower()
            if bare in _FIELDS or bare in ("passfile", "service", "servicefile"):
                hint = "host, port, database, user and password have fields of their own"
            else:
                hint = "allowed: " + ", ".join(sorted(ALLOWED_OPTIONS))
            raise InvalidInputError(
                f"connection option {check_text(name, 'option name')[:60]!r} is not allowed: {hint}"
            )
        value = check_text(str(raw), f"value of option {name}", MAX_OPTION_BYTES)
        if not check(value):
            raise InvalidInputError(
                f"invalid value for connection option {name}: see libpq's documentation of {name}"
            )
        valid[name] = value
    return valid


@dataclass(frozen=True, slots=True)
class ConnectionParams:
    """Where a source lives. ``password`` is the decrypted secret: never log this object."""

    host: str
    port: int
    database: str
    username: str
    password: str | None
    options: dict[str, str]

    def __repr__(self) -> str:
        return (
            f"ConnectionParams(host={self.host!r}, port={self.port}, "
            f"database={self.database!r}, username={self.username!r})"
        )

    def validated(self) -> ConnectionParams:
        """These parameters, each field checked as libpq will read it; raises
        InvalidInputError with one line."""
        netpolicy.validate_host(check_text(self.host, "host"))
        if not 1 <= self.port <= 65535:
            raise InvalidInputError("invalid port: use 1-65535")
        check_text(self.database, "database name")
        check_text(self.username, "user name")
        if self.password is not None:
            check_text(self.password, "password", MAX_PASSWORD_BYTES)
        validate_options(self.options)
        return self

    def security(self) -> dict[str, str]:
        """Where the connection goes and how it is protected: what the stored password was
        saved for."""
        found = {k: v for k, v in self.options.items() if k in SECURITY_OPTIONS}
        found.setdefault("sslmode", DEFAULT_SSLMODE)
        return {"host": self.host.lower(), "port": str(self.port), **found}


def check_password_reuse(saved: ConnectionParams, new: ConnectionParams) -> None:
    """Raise PasswordRequiredError when ``new`` would send the password saved with ``saved``
    somewhere else, or less protected: another host or port, or another TLS or authentication
    option."""
    if saved.security() != new.security():
        raise PasswordRequiredError(
            "enter the password again: the host, port or a TLS or authentication option "
            "changed, and the stored password is only sent where and how it was saved for"
        )


@dataclass(frozen=True)
class SourceLimits:
    """How long and where: applied to every connection to every source."""

    connect_timeout: int = 10
    statement_timeout: float = 30.0
    lock_timeout: float = 5.0
    networks: NetworkPolicy = field(default_factory=lambda: netpolicy.for_sources("*"))
    capture_retention_days: int = 30

    @classmethod
    def from_settings(cls, settings: Any) -> SourceLimits:
        """The limits ``settings`` (a :class:`rosetta.config.Settings`) give."""
        return cls(
            int(settings.source_connect_timeout),
            float(settings.source_statement_timeout),
            float(settings.source_lock_timeout),
            netpolicy.for_sources(settings.source_networks),
            int(settings.capture_retention_days),
        )

    def quicker(self, seconds: int) -> SourceLimits:
        """These limits with the connection timeout at most ``seconds``."""
        return SourceLimits(
            min(self.connect_timeout, seconds),
            self.statement_timeout,
            self.lock_timeout,
            self.networks,
            self.capture_retention_days,
        )


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


# libpq's words for a peer that is not a PostgreSQL server end with the bytes it sent.
_PEER_BYTES = re.compile(
    r"(received invalid response to (SSL|GSSAPI) negotiation|expected authentication request "
    r"from server, but received|unexpected message from server|invalid (length|message))",
    re.IGNORECASE,
)


def describe(exc: psycopg.Error) -> str:
    """One line saying what failed, never echoing what the peer sent."""
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return (
            "a table is locked by another session (ALTER TABLE, VACUUM FULL...): gave up after "
            "ROSETTA_SOURCE_LOCK_TIMEOUT"
        )
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return "a statement ran longer than ROSETTA_SOURCE_STATEMENT_TIMEOUT and was cancelled"
    if "server closed the connection unexpectedly" in str(exc):
        # libpq's message goes on over two more lines ("This probably means the server
        # terminated abnormally / before or while processing the request."): say the fact.
        return "the server closed the connection unexpectedly (it stopped, or ended the session)"
    line = first_line(exc)
    if _PEER_BYTES.search(line):
        return "the server did not answer as PostgreSQL does"
    if "cleartext" in line.lower() or 'auth method "password"' in line:
        return (
            "the server asked for the password in clear text, which Rosetta refuses unless "
            "the source's require_auth option allows it"
        )
    return line


def connect(
    params: ConnectionParams, limits: SourceLimits, *, application_name: str = "rosetta"
) -> psycopg.Connection[Any]:
    """An autocommit connection to a source, checked against the network policy, with its
    time limits set; failures become SourceConnectionError with one line."""
    params = params.validated()
    try:
        address = limits.networks.resolve(params.host, params.port, limits.connect_timeout)
    except TimeoutError:
        raise SourceConnectionError(
            f"cannot connect to {params.host}:{params.port}: looking up the host name took "
            f"over {limits.connect_timeout} s (ROSETTA_SOURCE_CONNECT_TIMEOUT)"
        ) from None
    kwargs: dict[str, Any] = dict(params.options)
    if params.password is not None:
        kwargs["password"] = params.password
    # Also with no stored password: libpq could otherwise send one from the environment.
    kwargs.setdefault("require_auth", DEFAULT_REQUIRE_AUTH)
    if address is not None:
        kwargs["hostaddr"] = address
    where = f"{params.host}:{params.port}/{params.database}"
    connecting = f"cannot connect to {where} as {params.username}"
    with map_source_errors(SourceConnectionError, connecting, describe):
        conn = psycopg.connect(
            host=params.host,
            port=params.port,
            dbname=params.database,
            user=params.username,
            connect_timeout=limits.connect_timeout,
            application_name=application_name,
            autocommit=True,
            **kwargs,
        )
    try:
        with map_source_errors(
            SourceConnectionError, f"cannot set time limits on {where}", describe
        ):
            set_limits(conn, limits)
    except BaseException:
        conn.close()
        raise
    return conn


def set_limits(conn: psycopg.Connection[Any], limits: SourceLimits) -> None:
    """Set the connection's ``statement_timeout`` and ``lock_timeout`` (one round trip)."""
    conn.execute(
        "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (_ms(limits.statement_timeout), _ms(limits.lock_timeout)),
    )
