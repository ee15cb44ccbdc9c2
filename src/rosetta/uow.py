"""The unit of work: who ends a transaction, and how database errors become Rosetta's.

Core functions take a connection and never commit or roll back. The entry point that opened
the unit of work (an API or web request, a CLI command, a monitor cycle) ends it with
:func:`unit_of_work`: commit when the work returned, roll back when it raised. Errors of the
driver become Rosetta's errors in one place: :func:`map_store_errors` for the store,
:func:`map_source_errors` for a source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from rosetta.errors import (
    ConflictError,
    RosettaError,
    StoreNotMigratedError,
    StoreUnavailableError,
    first_line,
)

Conn = psycopg.Connection[Any]


@contextmanager
def map_source_errors(
    error: type[RosettaError], doing: str, detail: Callable[[psycopg.Error], str] = first_line
) -> Iterator[None]:
    """Turn the driver's errors on a source's connection into ``error("<doing>: <detail>")``,
    one line (``detail`` words the driver's error: its first line by default)."""
    try:
        yield
    except psycopg.Error as exc:
        raise error(f"{doing}: {detail(exc)}") from None


@contextmanager
def map_store_errors(
    conflict: str | None = None,
    *,
    connecting: bool = False,
    unmigrated: bool = False,
    during: str | None = None,
) -> Iterator[None]:
    """Turn the driver's errors about the store into Rosetta's (one line, an exit code and an
    HTTP status): a lost or refused connection is StoreUnavailableError (``connecting``: any
    error of the driver, a malformed URL too; ``during`` names what it interrupted); with
    ``conflict``, a unique violation is ``ConflictError(conflict)``; with ``unmigrated``, a
    missing table is StoreNotMigratedError."""
    try:
        yield
    except RosettaError:
        raise
    except psycopg.errors.UniqueViolation:
        if conflict is None:
            raise
        raise ConflictError(conflict) from None
    except psycopg.errors.UndefinedTable:
        if not unmigrated:
            raise
        raise StoreNotMigratedError() from None
    except psycopg.Error as exc:
        if not (connecting or isinstance(exc, psycopg.OperationalError)):
            raise
        if during is not None:
            raise StoreUnavailableError(
                f"Rosetta's store failed during {during}: {first_line(exc)}"
            ) from None
        raise StoreUnavailableError(
            f"Rosetta's store cannot be reached ({first_line(exc)}): check ROSETTA_DATABASE_URL"
        ) from None


def end(conn: Conn, *, ok: bool) -> None:
    """Commit what the unit of work wrote (``ok``), else roll it back; a lost connection is
    left as it is."""
    if conn.closed or conn.broken or conn.autocommit:
        return
    status = conn.info.transaction_status
    if ok and status == TransactionStatus.INTRANS:
        with map_store_errors():
            conn.commit()
    elif status != TransactionStatus.IDLE:
        try:
            conn.rollback()
        except psycopg.Error:
            pass


@contextmanager
def unit_of_work(conn: Conn) -> Iterator[Conn]:
    """``with unit_of_work(conn):`` commit at the end if the block returned, roll back if it
    raised; the driver's errors come out as Rosetta's."""
    try:
        with map_store_errors():
            yield conn
    except BaseException:
        end(conn, ok=False)
        raise
    end(conn, ok=True)
