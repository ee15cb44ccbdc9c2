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

A request that may reach out — to a source (refresh, a connection test, publication actions,
the live status of a source's page, Diagnose) or to a webhook endpoint (Test) — may wait on the
other side for seconds. Such requests hold at most half of the slots, so that however many of
them wait on a dead source, reads always have the other half.
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
    """``capacity`` requests at once, at most half of them ones that reach out; a request
    waits up to ``wait`` seconds for its turn. Made while the app runs (its semaphores belong
    to the running event loop)."""

    def __init__(self, capacity: int, wait: float, reachable: Callable[[], bool]) -> None:
        self.capacity = capacity
        self.wait = wait
        self.reachable = reachable
        self.slots = anyio.Semaphore(capacity)
        self.outbound = anyio.Semaphore(max(1, capacity // 2))

    async def enter(self, outbound: bool = False) -> bool:
        """Take a slot (and, for a request that reaches out, one of theirs): at once if free
        (and no one waits), else within ``wait`` seconds in all; False if none came. The caller
        gives them back with :meth:`leave`."""
        with anyio.move_on_after(self.wait):
            if outbound:
                await _take(self.outbound)
            try:
                await _take(self.slots)
            except BaseException:  # cancelled by the deadline: give back what was taken
                if outbound:
                    self.outbound.release()
                raise
            return True
        return False

    def leave(self, outbound: bool = False) -> None:
        self.slots.release()
        if outbound:
            self.outbound.release()


async def _take(slots: anyio.Semaphore) -> None:
    """A slot: at once if one is free and no one waits (a freed slot goes to the first waiter,
    never here), else in turn."""
    try:
        slots.acquire_nowait()
    except anyio.WouldBlock:
        await slots.acquire()


class Admission:
    """ASGI middleware: every HTTP request not ``exempt`` passes the app's current gate."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: Callable[[], Gate | None],
        exempt: Callable[[str], bool],
        outbound: Callable[[str, str], bool],
        render: Render,
    ) -> None:
        self.app = app
        self.gate = gate
        self.exempt = exempt
        self.outbound = outbound
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate = self.gate() if scope["type"] == "http" else None
        if gate is None or self.exempt(scope["path"]):
            await self.app(scope, receive, send)  # no gate: not started, or no store needed
            return
        if not gate.reachable():
            await refuse(self.render, scope, receive, send, 503, STORE_DOWN)
            return
        outbound = self.outbound(scope["method"], scope["path"])
        if not await gate.enter(outbound):
            await refuse(self.render, scope, receive, send, 503, BUSY)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            gate.leave(outbound)


async def refuse(
    render: Render, scope: Scope, receive: Receive, send: Send, status: int, message: str
) -> None:
    """Answer before routing with the app's renderer: one JSON line under /api, the error page
    elsewhere (and ``Retry-After`` with a 503)."""
    await render(Request(scope), status, message)(scope, receive, send)
