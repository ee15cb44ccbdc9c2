"""Logging to stdout and to a rotating file, with the source each line is about."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s [%(source)s] %(message)s"


class _SourceDefault(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "source"):
            record.source = "-"
        return True


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
            logging.handlers.RotatingFileHandler(
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
