"""At most as many requests use the store at once as its pool has connections; the others wait
a little in the event loop, then get 503 with ``Retry-After``.

Every route that reads the store runs in one of anyio's worker threads (40 by default) and holds
one of the pool's connections (``POOL_MAX_SIZE``) until it ends. Without a bound, 40 threads
could all wait in the pool for a connection while the requests holding the connections wait for
a thread to run on: nothing moves until the pool's timeout. The gate admits at most as many
requests as the pool has connections, each of which holds at most one connection at a time, so
an admitted request never waits for a connection that another request holds, and a thread is
always free for it. The others wait here holding no thread: up to ``wait`` seconds, first come
first served, then 503. While the store watch finds the store unreachable, they get 503 at
once.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Render = Callable[[Request, int, str], Response]

BUSY = "Rosetta is busy: try again in a moment"
STORE_DOWN = "Rosetta's store cannot be reached: check ROSETTA_DATABASE_URL"


class Gate:
    """``capacity`` requests at once; a request waits up to ``wait`` seconds for its turn.
    Made while the app runs (its semaphore belongs to the running event loop)."""

    def __init__(self, capacity: int, wait: float, reachable: Callable[[], bool]) -> None:
        self.capacity = capacity
        self.wait = wait
        self.reachable = reachable
        self.slots = anyio.Semaphore(capacity)

    async def enter(self) -> bool:
        """Take a slot: at once if one is free (and no one waits), else within ``wait``
        seconds; False if none came. The caller gives it back with ``slots.release()``."""
        try:
            self.slots.acquire_nowait()  # a freed slot goes to the first waiter, never here
            return True
        except anyio.WouldBlock:
            pass
        with anyio.move_on_after(self.wait):
            await self.slots.acquire()
            return True
        return False


class Admission:
    """ASGI middleware: every HTTP request not ``exempt`` passes the app's current gate."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: Callable[[], Gate | None],
        exempt: Callable[[str], bool],
        render: Render,
    ) -> None:
        self.app = app
        self.gate = gate
        self.exempt = exempt
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate() if scope["type"] == "http" else None
        if gate is None or self.exempt(scope["path"]):
            await self.app(scope, receive, send)  # no gate: not started, or no store needed
            return
        if not gate.reachable():
            await refuse(self.render, scope, receive, send, 503, STORE_DOWN)
            return
        if not await gate.enter():
            await refuse(self.render, scope, receive, send, 503, BUSY)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.slots.release()


async def refuse(
    render: Render, scope: Scope, receive: Receive, send: Send, status: int, message: str
) -> None:
    """Answer before routing with the app's renderer: one JSON line under /api, the error page
    elsewhere (and ``Retry-After`` with a 503)."""
    await render(Request(scope), status, message)(scope, receive, send)
