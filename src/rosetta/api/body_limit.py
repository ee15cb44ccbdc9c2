"""Request bodies of at most ``ROSETTA_MAX_REQUEST_BYTES``, enforced before routing.

A declared ``Content-Length`` over the limit gets 413 before anything is read (and before the
token is checked, so an anonymous upload costs nothing); a chunked body is counted as it
arrives and stopped with 413 once it passes the limit. The API's JSON and the web UI's forms
(urlencoded or multipart) are read through the same counted stream.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rosetta.api.admission import Render, refuse


def too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes (ROSETTA_MAX_REQUEST_BYTES)"


class BodyTooLarge(HTTPException):
    """Raised by the counted stream: the app's HTTP error handler answers 413 with it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses a malformed length itself
    return None


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, render: Render) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await refuse(self.render, scope, receive, send, 413, too_large(self.max_bytes))
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            # Read outside the app's error handlers (a middleware's own read): answer here.
            await refuse(self.render, scope, receive, send, 413, too_large(self.max_bytes))
