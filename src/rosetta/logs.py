"""Logging to stdout and to a rotating file, with the source each line is about."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s [%(source)s] %(message)s"


class _SourceDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "source"):
            record.source = "-"
        return True


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log file only its owner may read (mode 0600), its rotated copies too."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return io.TextIOWrapper(
            io.FileIO(fd, "a"), encoding=self.encoding, errors=self.errors, write_through=True
        )


def setup(
    level: str = "INFO", log_file: Path | None = None, *, stream_to: TextIO | None = sys.stdout
) -> None:
    """Configure the ``rosetta`` logger once per process."""
    logger = logging.getLogger("rosetta")
    logger.setLevel(level.upper())
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(FORMAT)
    handlers: list[logging.Handler] = []
    if stream_to is not None:
        handlers.append(logging.StreamHandler(stream_to))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            _PrivateFileHandler(
                log_file, maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_SourceDefault())
        logger.addHandler(handler)


def for_source(
    name: str, logger_name: str = "rosetta.sync"
) -> logging.LoggerAdapter[logging.Logger]:
    return logging.LoggerAdapter(logging.getLogger(logger_name), {"source": name})


def safe(text: str) -> str:
    """A source-supplied name made safe for one log line (no line breaks or control codes)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class Pending:
    """Log lines held back until the transaction they describe has committed."""

    def __init__(self, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self.log = log
        self.lines: list[tuple[int, str, tuple[object, ...]]] = []

    def info(self, msg: str, *args: object) -> None:
        self.lines.append((logging.INFO, msg, args))

    def warning(self, msg: str, *args: object) -> None:
        self.lines.append((logging.WARNING, msg, args))

    def error(self, msg: str, *args: object) -> None:
        self.lines.append((logging.ERROR, msg, args))

    def flush(self) -> None:
        for level, msg, args in self.lines:
            self.log.log(level, msg, *args)
        self.lines.clear()


@contextmanager
def after_commit(log: logging.LoggerAdapter[logging.Logger]) -> Iterator[Pending]:
    """Enter before a transaction: what is logged to the :class:`Pending` inside is written
    once the transaction has committed, and never if it failed (the error is logged instead
    by whoever handles it)."""
    pending = Pending(log)
    yield pending
    pending.flush()
