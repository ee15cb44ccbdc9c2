"""Registering sources: parse where they are, check they answer, keep the password encrypted."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from rosetta.catalog import reader
from rosetta.catalog.connection import (
    ConnectionParams,
    SourceLimits,
    check_password_reuse,
    connect,
    describe,
)
from rosetta.catalog.reader import CatalogSnapshot
from rosetta.crypto import SecretBox
from rosetta.errors import InvalidInputError, SourceConnectionError
from rosetta.schema import severity
from rosetta.store import repository
from rosetta.store.repository import Conn, Source
from rosetta.uow import map_source_errors

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_IDENTIFIER_BYTES = 63


@dataclass(frozen=True)
class SourceInput:
    """What a user gives to register or change a source."""

    name: str
    params: ConnectionParams
    publication_name: str
    replication_name: str | None = None
    webhook_severity: str = "all"
    sync_interval_seconds: float | None = None
    """How often the scheduler syncs the source; None: ROSETTA_MONITOR_INTERVAL."""


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidInputError(
            f"invalid source name {name!r}: use 1-63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def validate_identifier(value: str, what: str) -> str:
    if not value or len(value.encode()) > MAX_IDENTIFIER_BYTES or "\x00" in value:
        raise InvalidInputError(f"invalid {what} {value!r}: use 1-63 bytes")
    return value


MIN_INTERVAL, MAX_INTERVAL = 1.0, 604800.0


def validate_interval(value: float | None) -> float | None:
    """``value`` if it is a sync interval in seconds (None: the default interval)."""
    if value is None:
        return None
    if not (MIN_INTERVAL <= value <= MAX_INTERVAL) or value != value:
        raise InvalidInputError(
            f"invalid sync interval {value:g}: use seconds from {MIN_INTERVAL:g} to "
            f"{MAX_INTERVAL:g} (a week), or the default (ROSETTA_MONITOR_INTERVAL)"
        )
    return float(value)


def validate_webhook_severity(value: str) -> str:
    """``value`` if it is a source's webhook threshold (``all`` or ``breaking``)."""
    if value not in severity.WEBHOOK_SEVERITIES:
        raise InvalidInputError(
            f"invalid webhook severity {value!r}: use "
            + " or ".join(severity.WEBHOOK_SEVERITIES)
            + " (which changes send webhooks)"
        )
    return value


def parse_dsn(dsn: str, password: str | None = None) -> ConnectionParams:
    """Connection parameters from a ``postgresql://`` URL or a ``key=value`` string."""
    with map_source_errors(
        InvalidInputError,
        "invalid --dsn",
        lambda _: "give a URL such as postgresql://user@host:5432/dbname",
    ):
        parts: dict[str, Any] = conninfo_to_dict(dsn)
    host = str(parts.pop("host", "") or "")
    database = str(parts.pop("dbname", "") or "")
    username = str(parts.pop("user", "") or "")
    if not host or not database or not username:
        raise InvalidInputError(
            "invalid --dsn: it must name the host, the database and the user, as in "
            "postgresql://user@host:5432/dbname"
        )
    try:
        port = int(parts.pop("port", 5432) or 5432)
    except ValueError:
        raise InvalidInputError("invalid --dsn: the port must be a number") from None
    dsn_password = parts.pop("password", None)
    options = {str(k): str(v) for k, v in parts.items() if v is not None}
    return ConnectionParams(host, port, database, username, password or dsn_password, options)


def check_connection(
    params: ConnectionParams, publication: str, slot: str | None, limits: SourceLimits
) -> CatalogSnapshot:
    """Connect and read the publication's state; raises SourceConnectionError on failure."""
    conn = connect(params, limits)
    doing = f"cannot read the state of {params.host}:{params.port}/{params.database}"
    try:
        with map_source_errors(SourceConnectionError, doing, describe):
            return reader.read_state(conn, publication, slot)
    finally:
        conn.close()


def _values(data: SourceInput, box: SecretBox) -> dict[str, Any]:
    p = data.params.validated()
    return {
        "name": validate_name(data.name),
        "host": p.host,
        "port": p.port,
        "database": p.database,
        "username": p.username,
        "password_encrypted": box.encrypt(p.password) if p.password is not None else None,
        "connect_options": p.options,
        "publication_name": validate_identifier(data.publication_name, "publication name"),
        "replication_name": (
            validate_identifier(data.replication_name, "replication slot name")
            if data.replication_name
            else None
        ),
        "webhook_severity": validate_webhook_severity(data.webhook_severity),
        "sync_interval_seconds": validate_interval(data.sync_interval_seconds),
    }


def add_source(store: Conn, box: SecretBox, data: SourceInput) -> Source:
    """Store a new source (the caller ends the transaction; ``services.register_source`` is
    the user action, with its connection test and first sync)."""
    return repository.insert_source(store, _values(data, box))


def stored_params(source: Source) -> ConnectionParams:
    """Where ``source`` is registered, without its password."""
    return ConnectionParams(
        source.host,
        source.port,
        source.database,
        source.username,
        None,
        dict(source.connect_options or {}),
    )


def update_source(store: Conn, box: SecretBox, source: Source, data: SourceInput) -> Source:
    """Store the new settings. Without a new password the stored one is kept, and only if the
    connection still goes where and how it was saved for (else PasswordRequiredError)."""
    values = _values(data, box)
    if data.params.password is None:
        if source.password_encrypted:
            check_password_reuse(stored_params(source), data.params)
        values["password_encrypted"] = source.password_encrypted
    return repository.update_source(store, source.id, values)


def with_stored_password(
    params: ConnectionParams, source: Source, box: SecretBox
) -> ConnectionParams:
    """``params`` for a changed source, with its stored password when none was given.

    The stored password is only ever sent where and how it was saved for: a new host or port,
    or another TLS or authentication option, needs the password again (PasswordRequiredError).
    """
    if params.password is not None or not source.password_encrypted:
        return params
    check_password_reuse(stored_params(source), params)
    password = box.decrypt(
        source.password_encrypted, what=f"the password of source {source.name!r}"
    )
    return replace(params, password=password)
