"""How a queued job reaches a worker.

Embedded: a queue and worker threads in this process, each with its own Analyzer, and a
:class:`~veracity.service.webhooks.WebhookPool` for the callbacks. On start the pool re-queues
jobs left running by a previous process and enqueues every queued row, so a restart loses
nothing; after each run the pool notifies its :class:`~veracity.service.signals.JobSignals`, so
a sync request waiting on the job wakes at once instead of polling. Scaled out: a Celery
message per job (:mod:`veracity.service.celery_dispatch`). Which one runs is the composition
root's choice (:mod:`veracity.server`). Either way a sweeper re-queues running jobs whose
heartbeat went stale (a killed worker).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from veracity.service import jobs
from veracity.service.runner import JobRunner
from veracity.service.signals import JobSignals
from veracity.service.webhooks import WebhookPool

log = logging.getLogger("veracity.service")


class Dispatcher(Protocol):
    kind: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def submit(self, job_id: str) -> None: ...
    def check(self) -> str:
        """'ok' or why it is not ready."""
        ...


class EmbeddedPool:
    kind = "embedded"

    def __init__(
        self,
        make_runner: Callable[[Callable[[str], None]], JobRunner],
        sessions: sessionmaker[Session],
        workers: int,
        webhooks: WebhookPool,
        max_attempts: int = 1_000_000,
    ) -> None:
        """``make_runner(send_webhook)`` builds one worker thread's runner."""
        self._make_runner = make_runner
        self._sessions = sessions
        self._workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._webhooks = webhooks
        self._workers_alive: list[tuple[threading.Thread, threading.Event]] = []  # (thread, retired)
        self._lock = threading.Lock()
        self._spawned = 0
        self.max_attempts = max_attempts
        self.replaced = 0  # worker threads given up as stuck and replaced
        self.signals = JobSignals()  # "job ran": wakes sync requests waiting on it

    def _spawn_worker(self) -> None:
        retired = threading.Event()
        with self._lock:
            n = self._spawned
            self._spawned += 1
            t = threading.Thread(target=self._work, args=(retired,), name=f"veracity-worker-{n}", daemon=True)
            self._workers_alive.append((t, retired))
            self._threads.append(t)
        t.start()

    def _retire(self, retired: threading.Event) -> None:
        """A worker thread stuck in an analysis its watchdog already failed: leave it to finish
        (or not) on its own and start another, so one native hang cannot stall the queue."""
        if retired.is_set():
            return
        retired.set()
        self.replaced += 1
        log.error("a worker thread is stuck; starting a replacement (%d so far)", self.replaced)
        self._spawn_worker()

    def start(self) -> None:
        requeued = jobs.requeue_all_running(self._sessions, self.max_attempts)
        if requeued:
            log.info("re-queued %d interrupted job(s)", len(requeued))
        for job_id in jobs.queued_ids(self._sessions):
            self._queue.put(job_id)
        for _ in range(self._workers):
            self._spawn_worker()
        self._webhooks.start()
        for job_id, tries in jobs.pending_webhooks(self._sessions):  # owed by a previous process
            self._webhooks.submit(job_id, tries + 1)

    def stop(self) -> None:
        for _ in range(self._workers):
            self._queue.put(None)
        for t in self._threads:
            if any(t is w and r.is_set() for w, r in self._workers_alive):
                continue  # a stuck thread will not take the sentinel: do not wait on it
            t.join(timeout=30)
        self._threads.clear()
        self._workers_alive.clear()
        self._webhooks.stop()  # after the workers: the last jobs' callbacks are scheduled

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def check(self) -> str:
        with self._lock:
            working = sum(t.is_alive() and not r.is_set() for t, r in self._workers_alive)
        alive = working + self._webhooks.alive()
        return "ok" if alive == self._workers + 1 else f"{alive} of {self._workers + 1} worker threads alive"

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _work(self, retired: threading.Event) -> None:
        runner = self._make_runner(self._webhooks.submit)  # never block analysis on a slow receiver
        runner.on_stuck = lambda: self._retire(retired)
        try:
            while not retired.is_set() and (job_id := self._queue.get()) is not None:
                try:
                    runner.run(job_id)
                except Exception:  # the database went away: the sweeper or a restart retries
                    log.exception("job %s could not be processed", job_id)
                finally:  # after the commit and the media clean-up: waiters re-read the row
                    self.signals.notify(job_id)
        finally:
            runner.close()


class Sweeper:
    """Every ``interval`` seconds, re-queue stale running jobs and hand them to ``submit``."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        stale_s: float,
        submit: Callable[[str], None],
        max_attempts: int = 1_000_000,
    ) -> None:
        self._sessions = sessions
        self._stale_s = stale_s
        self._max_attempts = max_attempts
        self._submit = submit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="veracity-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def sweep(self) -> list[str]:
        ids = jobs.requeue_stale(self._sessions, self._stale_s, self._max_attempts)
        for job_id in ids:
            log.warning("job %s: worker stopped answering, re-queued", job_id)
            self._submit(job_id)
        return ids

    def _loop(self) -> None:
        interval = max(0.5, min(30.0, self._stale_s / 2))
        while not self._stop.wait(interval):
            try:
                self.sweep()
            except Exception:
                log.exception("sweeper pass failed")
