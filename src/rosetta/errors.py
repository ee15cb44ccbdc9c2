"""The product's exceptions.

Each class's docstring is its default message. The CLI prints ``str(error)`` on one line and exits
with ``exit_code``; the API maps ``http_status``. The core never raises framework exceptions.
"""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The one line of an exception's message a user needs (libpq puts the useful part,
    "FATAL: password authentication failed ...", last)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1] if len(lines) > 1 and "failed:" in lines[0] else lines[0]


class RosettaError(Exception):
    """Rosetta failed."""

    exit_code = 1
    http_status = 400

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigurationError(RosettaError):
    """Rosetta is not configured correctly."""

    exit_code = 2


class PostgresNotFoundError(ConfigurationError):
    """No PostgreSQL server binaries found: install PostgreSQL (Debian: apt-get install
    postgresql) or set ROSETTA_DATABASE_URL to an existing database."""


class PostgresStartError(RosettaError):
    """The local PostgreSQL server could not be started."""


class StoreUnavailableError(RosettaError):
    """Rosetta's store cannot be reached: check ROSETTA_DATABASE_URL."""

    exit_code = 3
    http_status = 503


class StoreNotMigratedError(RosettaError):
    """Rosetta's store is not migrated: run `rosetta db upgrade`."""

    exit_code = 3
    http_status = 503


class NotFoundError(RosettaError):
    """Not found."""

    exit_code = 4
    http_status = 404


class SourceNotFoundError(NotFoundError):
    """No such source: `rosetta source list` shows the registered ones."""


class TableNotFoundError(NotFoundError):
    """No such table: `rosetta tables SOURCE` shows the tracked ones."""


class ConflictError(RosettaError):
    """That already exists."""

    http_status = 409


class InvalidInputError(RosettaError):
    """Invalid input."""

    exit_code = 2
    http_status = 422


class SourceConnectionError(RosettaError):
    """The source database cannot be reached."""

    exit_code = 5
    http_status = 502


class PublicationMissingError(RosettaError):
    """The source's publication does not exist: create it (CREATE PUBLICATION ...) or fix it with
    `rosetta source update SOURCE --publication NAME`."""

    exit_code = 6
    http_status = 409


class SecretKeyError(ConfigurationError):
    """A stored password cannot be decrypted with ROSETTA_SECRET_KEY: set the key it was stored
    with."""


class SourceActionError(RosettaError):
    """The source refused the change."""

    exit_code = 8
    http_status = 409


class CapturePrivilegeError(SourceActionError):
    """The source's role may not create or drop event triggers: ask a superuser to run
    `rosetta capture install`, or stay on polling."""


class NetworkNotAllowedError(InvalidInputError):
    """That address is outside the networks Rosetta may connect to: see ROSETTA_SOURCE_NETWORKS
    and ROSETTA_WEBHOOK_NETWORKS."""

    http_status = 403


class PasswordRequiredError(InvalidInputError):
    """Enter the password again: the stored password is only sent where and how it was saved
    for."""


class ForbiddenError(RosettaError):
    """This token's role may not do that: an admin token can."""

    exit_code = 7
    http_status = 403


class BusyError(RosettaError):
    """Rosetta is busy with as many of these as it runs at once: try again in a few seconds.
    (The API's 503 says when in ``Retry-After``.)"""

    exit_code = 9
    http_status = 503


class RefreshTimeoutError(RosettaError):
    """No worker finished the sync in time: it still runs; see the source's last sync later."""

    exit_code = 5
    http_status = 504
