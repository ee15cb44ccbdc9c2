"""What a failed source connection says: one line a user can act on."""

from __future__ import annotations

import psycopg

from rosetta.catalog.connection import describe


def test_a_connection_the_server_closed_says_so_not_libpqs_last_line() -> None:
    exc = psycopg.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: server closed the connection '
        "unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or "
        "while processing the request.\n"
    )
    said = describe(exc)
    assert said.startswith("the server closed the connection unexpectedly")
    assert "\n" not in said and "before or while" not in said


def test_a_refused_password_keeps_libpqs_useful_line() -> None:
    exc = psycopg.OperationalError(
        'connection to server at "127.0.0.1", port 5432 failed: \n'
        'FATAL:  password authentication failed for user "x"\n'
    )
    assert describe(exc) == 'FATAL:  password authentication failed for user "x"'
