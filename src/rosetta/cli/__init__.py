"""The ``rosetta`` command.

Each command lives in the module of its subject and imports what it needs when it runs, so
`rosetta refresh` never loads the web stack. Every error is one line on stderr and a non-zero exit
code.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from rosetta.cli.base import app
from rosetta.errors import RosettaError, StoreUnavailableError, first_line

# Importing the command modules registers their commands on ``app``, in this order in --help.
for _module in (
    "sync",
    "tables",
    "repair",
    "server",
    "demo",
    "db",
    "sources",
    "webhooks",
    "capture",
):
    importlib.import_module(f"rosetta.cli.{_module}")


def main() -> None:
    try:
        app()
    except RosettaError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        import psycopg

        if isinstance(exc, psycopg.OperationalError):
            err = StoreUnavailableError(f"the store failed: {first_line(exc)}")
            typer.echo(f"Error: {err.message}", err=True)
            sys.exit(err.exit_code)
        logging.getLogger("rosetta").debug("unexpected error", exc_info=True)
        typer.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
        sys.exit(70)
