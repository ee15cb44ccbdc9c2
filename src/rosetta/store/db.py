"""Connecting to the store, and creating or upgrading it with versioned SQL migrations."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from rosetta.errors import StoreNotMigratedError
from rosetta.uow import map_store_errors

MIGRATIONS = "rosetta.store"


def _migrations_dir() -> Path:
    return Path(str(resources.files(MIGRATIONS).joinpath("migrations")))


def migration_ids() -> list[str]:
    """The migrations this version of Rosetta ships, in order."""
    return sorted(p.stem for p in _migrations_dir().iterdir() if p.suffix in (".sql", ".py"))


def connect(url: str, *, autocommit: bool = False, check: bool = True) -> psycopg.Connection[Any]:
    """Connect to the store; with ``check``, refuse a store that is not fully migrated."""
    with map_store_errors(connecting=True):
        conn = psycopg.connect(
            url, autocommit=autocommit, connect_timeout=10, application_name="rosetta"
        )
    if check:
        try:
            ensure_migrated(conn)
        except BaseException:
            conn.close()
            raise
    return conn


def applied_migrations(conn: psycopg.Connection[Any]) -> set[str] | None:
    """Migration ids applied to the store, or None when it was never migrated."""
    row = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()
    if not row or not row[0]:
        if not conn.autocommit:
            conn.rollback()
        return None
    ids = {r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration")}
    if not conn.autocommit:
        conn.rollback()
    return ids


def ensure_migrated(conn: psycopg.Connection[Any]) -> None:
    applied = applied_migrations(conn)
    if applied is None or not set(migration_ids()) <= applied:
        raise StoreNotMigratedError()


def upgrade(url: str) -> list[str]:
    """Apply every pending migration; returns the ids applied now."""
    from yoyo import get_backend, read_migrations

    backend_url = url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            backend_url = "postgresql+psycopg://" + url.removeprefix(prefix)
    with map_store_errors(connecting=True):
        backend = get_backend(backend_url)
    migrations = read_migrations(str(_migrations_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    ids = [m.id for m in pending]
    backend.connection.close()
    return ids
