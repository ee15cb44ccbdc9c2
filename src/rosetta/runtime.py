"""What a command needs from its settings: the store's URL and the key for source passwords.

Without ``ROSETTA_DATABASE_URL`` Rosetta uses its embedded store: a local PostgreSQL under
``ROSETTA_DATA_DIR``, started on first use and reused afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

from rosetta.config import Settings
from rosetta.crypto import SecretBox, new_key
from rosetta.errors import ConfigurationError


def store_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from rosetta.pg.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir.resolve()).ensure_running()


def secret_box(settings: Settings) -> SecretBox:
    """Encrypts and decrypts source passwords and webhook secrets with :func:`secret_key`."""
    return SecretBox(secret_key(settings))


def _embedded_key(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = new_key()
    tmp = data_dir / f".secret.key.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    try:
        os.link(tmp, path)  # atomic: the first process to get here wins
    except FileExistsError:
        key = path.read_text().strip()
    finally:
        tmp.unlink()
    return key


def secret_key(settings: Settings) -> str:
    """The key string itself: ROSETTA_SECRET_KEY, or the embedded store's key file."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    if settings.database_url is not None:
        raise ConfigurationError(
            "ROSETTA_SECRET_KEY is not set: set it to the key that encrypts source passwords "
            "(any long random string; keep it, passwords stored with it need it)"
        )
    return _embedded_key(settings.data_dir.resolve())


def session_secret(settings: Settings) -> str:
    """The secret that signs the web UI's session cookies, derived from the secret key."""
    import hashlib

    return hashlib.sha256(b"rosetta-session:" + secret_key(settings).encode()).hexdigest()
