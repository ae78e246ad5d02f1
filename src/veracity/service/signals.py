"""In-process "this job may have reached a final state" notices, for the sync endpoints.

``POST /analyze_video`` waits for its job. Polling the database for that every 50 ms cost ~16 ms
of server CPU per request on small images (a read transaction per poll, with the worker
competing for the same two cores). When the job runs in this process (the embedded pool), the
worker thread can simply say when it is done: the pool owns one :class:`JobSignals` and calls
:meth:`JobSignals.notify` after every run, and the waiter subscribes a wake-up callback.

A notice is only a hint to look again: the database stays the truth, so a waiter re-reads the
job after every wake-up (a job handed back to the queue wakes its waiter for nothing, which is
harmless). Entries exist only while someone waits on a job id, so jobs nobody waits on leave
nothing behind. Waiters subscribe *before* they first read the job, so a completion between that
read and the wait is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator

log = logging.getLogger("veracity.service")


class JobSignals:
    """Thread-safe map of job id -> wake-up callbacks of the requests waiting on that job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, dict[int, Callable[[], None]]] = {}
        self._ids = itertools.count()

    def subscribe(self, job_id: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from the notifying thread; keep it short) when ``job_id`` is notified.
        Returns the unsubscribe function; call it once done waiting (it is idempotent)."""
        n = next(self._ids)
        with self._lock:
            self._waiters.setdefault(job_id, {})[n] = wake

        def unsubscribe() -> None:
            with self._lock:
                waiting = self._waiters.get(job_id)
                if waiting is not None:
                    waiting.pop(n, None)
                    if not waiting:
                        del self._waiters[job_id]

        return unsubscribe

    def notify(self, job_id: str) -> None:
        """Wake everyone waiting on ``job_id``; call after the job's final state is committed."""
        with self._lock:
            wakes = list(self._waiters.get(job_id, {}).values())
        for wake in wakes:  # outside the lock: a callback may unsubscribe
            try:
                wake()
            except Exception:  # one broken waiter must not keep the worker from the next job
                log.exception("waking a waiter of job %s failed", job_id)

    def waiting(self) -> int:
        """How many job ids have waiters (0 when idle: nothing leaks)."""
        with self._lock:
            return len(self._waiters)

    @contextlib.contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An :class:`asyncio.Event` of the running loop, set (thread-safely) on each notice of
        ``job_id`` while the block runs. The waiter clears it before each read of the job."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed (shutting down): nobody to wake
                loop.call_soon_threadsafe(event.set)

        unsubscribe = self.subscribe(job_id, wake)
        try:
            yield event
        finally:
            unsubscribe()
