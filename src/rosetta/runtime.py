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
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    if settings.database_url is not None:
        raise ConfigurationError(
            "ROSETTA_SECRET_KEY is not set: set it to the key that encrypts source passwords "
            "(any long random string; keep it, passwords stored with it need it)"
        )
    return SecretBox(_embedded_key(settings.data_dir.resolve()))


def _embedded_key(data_dir: Path) -> str:
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
