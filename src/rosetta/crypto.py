"""Source passwords, encrypted at rest with a key from ``ROSETTA_SECRET_KEY``."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from rosetta.errors import SecretKeyError


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts and decrypts with one key. Any passphrase works as a key: it is hashed into a
    Fernet key unless it already is one."""

    def __init__(self, key: str) -> None:
        raw = key.strip().encode()
        try:
            if len(base64.urlsafe_b64decode(raw)) != 32:
                raise ValueError
            fernet_key = raw
        except ValueError:
            fernet_key = base64.urlsafe_b64encode(hashlib.sha256(raw).digest())
        self._fernet = Fernet(fernet_key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, what: str = "a stored password") -> str:
        """The plaintext; a token this key did not make is an error, never used raw."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, ValueError):
            raise SecretKeyError(
                f"cannot decrypt {what}: ROSETTA_SECRET_KEY is not the key it was stored with "
                "(set that key, or re-enter the password with `rosetta source update`)"
            ) from None
