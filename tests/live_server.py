"""The app served by a real uvicorn on 127.0.0.1, in a thread: for the tests that need real
HTTP (sockets, concurrent clients, bodies sent in chunks)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from rosetta.pg.server import free_port

START_WAIT = 30.0


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on http://127.0.0.1:PORT until the block ends; yields that base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_WAIT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_WAIT)
        assert not thread.is_alive(), "uvicorn did not stop"
