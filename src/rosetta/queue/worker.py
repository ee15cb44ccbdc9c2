"""Running a worker until told to stop: `rosetta worker` in the foreground, or a thread of
`rosetta monitor` and `rosetta serve`.

procrastinate's worker stops when it loses the store (its fetch or a side task fails); this
loop then opens the app again with backoff, so a store restart costs the time it takes and
nothing else. Jobs that were running when the connection went are retried by the scheduler
once the old worker's heartbeat is stale (:meth:`rosetta.queue.app.Runtime.retry_stalled`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from rosetta.catalog.connection import SourceLimits
from rosetta.crypto import SecretBox
from rosetta.queue import SCHEDULE_QUEUE, SYNC_QUEUE
from rosetta.queue.app import Runtime, build_app
from rosetta.queue.options import QueueOptions

log = logging.getLogger("rosetta.queue")

MAX_BACKOFF = 30.0
FETCH_POLL = 0.2
"""Seconds between a worker's looks for jobs besides its notifications (one indexed query)."""


class _OneLine(logging.Filter):
    """procrastinate logs a failed job with its traceback, and some errors over several lines;
    Rosetta says each in one line (the sync already logged why it failed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "action", None) == "task_not_found":
            return False  # said again by the job's end line, with the error
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # The first line of the error: a database error goes on with CONTEXT and DETAIL
            # lines, procrastinate's own errors start with a line break.
            text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            message = f"{message}: {type(exc).__name__}: {text}"
            record.exc_info = None
            record.exc_text = None
        record.msg = " ".join(message.split())
        record.args = None
        return True


class _ToRosetta(logging.Handler):
    """Hands a record of a library, made one line, to Rosetta's own handlers (the console and
    the log file, with their format and timestamps)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_OneLine())

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger("rosetta.queue").handle(record)


LIBRARIES = ("procrastinate", "psycopg.pool")
"""The loggers of the libraries a worker runs on."""


def quiet_procrastinate() -> None:
    """procrastinate's and the store pool's own lines at WARNING and above, each on one line,
    among Rosetta's.

    The filter is on the handler: a logger's filters see only the records logged on that very
    logger, and procrastinate logs on several (``procrastinate.utils``, and a child of
    ``procrastinate.worker`` named after the worker)."""
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(h, _ToRosetta) for h in logger.handlers):
            logger.addHandler(_ToRosetta())
            logger.propagate = False


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An error asyncio would print with its traceback (a task of procrastinate's that failed
    while the store went away): one line."""
    exc = context.get("exception")
    text = context.get("message", "")
    if exc is not None:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        text = f"{text}: {type(exc).__name__}: {first}"
    log.warning("Worker: %s", " ".join(str(text).split()))


class Worker:
    """One worker process's loop over procrastinate's worker. ``stop()`` may be called from
    any thread; running jobs finish first."""

    def __init__(
        self,
        store_url: str,
        box: SecretBox,
        limits: SourceLimits,
        options: QueueOptions,
    ) -> None:
        self.store_url = store_url
        self.options = options
        self.runtime = Runtime(store_url, box, limits, options)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.stopping = threading.Event()
        self.started = threading.Event()
        self.thread: threading.Thread | None = None

    def run(self) -> None:
        """Work until :meth:`stop` (blocks)."""
        quiet_procrastinate()
        self.runtime.open()
        try:
            asyncio.run(self._main())
        finally:
            self.runtime.close()

    def start(self) -> None:
        """Work in a thread of this process."""
        self.thread = threading.Thread(target=self.run, name="rosetta-worker", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        if self.thread is not None:
            self.thread.join(timeout)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.loop.set_exception_handler(_loop_exception)
        queues = [SYNC_QUEUE, SCHEDULE_QUEUE] if self.options.schedule else [SYNC_QUEUE]
        failures = 0
        while not self.stopping.is_set():
            app = build_app(self.store_url, self.runtime)
            self.task = asyncio.current_task()
            try:
                async with app.open_async():
                    if failures:
                        log.info("Worker %s reconnected to the store", self.runtime.name)
                    failures = 0
                    log.info(
                        "Worker %s started: %d syncs at a time%s",
                        self.runtime.name,
                        self.options.concurrency,
                        ", with the scheduler" if self.options.schedule else "",
                    )
                    self.started.set()
                    await app.run_worker_async(
                        queues=queues,
                        name=self.runtime.name,
                        concurrency=self.options.concurrency,
                        install_signal_handlers=False,
                        update_heartbeat_interval=self.options.heartbeat,
                        stalled_worker_timeout=self.options.stalled_after,
                        delete_jobs="successful",
                        # procrastinate wakes a worker on a new job (LISTEN), not when a job
                        # ends: a job that waited for its source's lock (a captured DDL's
                        # sync behind a running one) is fetched at the next poll.
                        fetch_job_polling_interval=FETCH_POLL,
                        shutdown_graceful_timeout=60.0,
                    )
                if self.stopping.is_set():
                    break
                raise RuntimeError("the queue's connection to the store failed")
            except asyncio.CancelledError:
                if self.stopping.is_set():
                    break
                raise
            except Exception as exc:
                if self.stopping.is_set():
                    break
                failures += 1
                wait = min(MAX_BACKOFF, 0.5 * 2**failures)
                log.warning(
                    "Worker %s lost the store (%s): reconnecting in %.1fs",
                    self.runtime.name,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    wait,
                )
                try:
                    await asyncio.sleep(wait)
                except asyncio.CancelledError:
                    break
        log.info("Worker %s stopped", self.runtime.name)
