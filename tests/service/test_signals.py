"""The sync endpoint's wait (``wait_final``): woken by the embedded pool, no lost wake-up, the
timeout still answers with the job as it stands, nothing left subscribed, and the polling path
(jobs run elsewhere) still works."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.reports import video_report
from tests.service.helpers import queued_job

from veracity.config import Settings
from veracity.service import jobs
from veracity.service.auth import Principal
from veracity.service.context import ServiceContext, open_context
from veracity.service.dispatch import EmbeddedPool
from veracity.service.models import Job
from veracity.service.routes import jobs as routes
from veracity.service.runner import JobRunner
from veracity.service.signals import JobSignals
from veracity.service.webhooks import RetryPolicy, WebhookPool, WebhookSender

OWNER = Principal(key_id="owner", role="analyst")


class SlowAnalyzer:
    """Stands in for the pipeline: takes ``seconds``, then returns a fixed report."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def analyze(self, path: Path, options: Any, progress: Callable[[str], None]) -> Any:
        time.sleep(self.seconds)
        return video_report()

    def close(self) -> None:
        return None


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    c = open_context(Settings(data_dir=tmp_path, webhook_secret="x" * 32))
    c.storage.ensure()
    yield c
    c.stop()


@pytest.fixture
def slow_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety re-read far beyond any wait here: only a wake-up can end a wait early."""
    monkeypatch.setattr(routes, "_SIGNALLED_RECHECK_S", 60.0)


def _job(ctx: ServiceContext, owner: Principal = OWNER) -> Job:
    return queued_job(ctx, owner)


def _pool(ctx: ServiceContext, seconds: float) -> EmbeddedPool:
    def runner(send: Callable[[str], None]) -> JobRunner:
        return JobRunner(
            settings=ctx.settings,
            sessions=ctx.sessions,
            storage=ctx.storage,
            analyzer_factory=lambda: SlowAnalyzer(seconds),  # type: ignore[arg-type,return-value]
            send_webhook=send,
        )

    hooks = WebhookPool(WebhookSender(ctx.sessions, ctx.settings, "x" * 32), RetryPolicy.from_settings(ctx.settings))
    pool = EmbeddedPool(runner, ctx.sessions, 1, hooks)
    ctx.dispatcher = pool
    pool.start()
    return pool


def _finish(ctx: ServiceContext, job_id: str) -> None:
    """What a worker does: claim the job and commit its result."""
    token = jobs.claim(ctx.sessions, job_id, "test-worker")
    assert token is not None
    assert jobs.complete(ctx.sessions, job_id, token, video_report(), "test-worker")


def _count_loads(monkeypatch: pytest.MonkeyPatch, before: Callable[[int], None] = lambda n: None) -> list[int]:
    """Count the waiter's reads of the job; ``before(n)`` runs ahead of the n-th read."""
    calls = [0]
    real = jobs.load

    def load(sessions: Any, job_id: str) -> Job | None:
        calls[0] += 1
        before(calls[0])
        return real(sessions, job_id)

    monkeypatch.setattr(jobs, "load", load)
    return calls


def _wait(ctx: ServiceContext, job_id: str, wait_s: float) -> tuple[Job, float]:
    t = time.monotonic()
    job = asyncio.run(routes.wait_final(ctx, job_id, wait_s))
    return job, time.monotonic() - t


def test_signals_wake_each_waiter_and_forget_them() -> None:
    signals = JobSignals()
    woke: list[str] = []

    def broken() -> None:
        raise RuntimeError("a waiter that cannot be woken")

    off_a = signals.subscribe("a", lambda: woke.append("a1"))
    off_b = signals.subscribe("a", broken)
    off_c = signals.subscribe("a", lambda: woke.append("a2"))
    signals.notify("b")  # nobody waits on b: nothing happens, nothing is stored
    assert signals.waiting() == 1
    signals.notify("a")
    assert woke == ["a1", "a2"]  # the broken one did not stop the next
    for off in (off_a, off_b, off_c, off_a):  # idempotent
        off()
    assert signals.waiting() == 0


def test_waiter_wakes_when_the_pool_finishes_the_job(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, slow_recheck: None
) -> None:
    pool = _pool(ctx, seconds=0.3)
    job = _job(ctx)
    reads = _count_loads(monkeypatch)
    pool.submit(job.id)
    done, took = _wait(ctx, job.id, 20.0)
    assert done.status == "succeeded"
    assert took < 10.0  # woken by the pool, not by the 20 s deadline or the 60 s re-read
    assert reads[0] <= 3  # one read before, one after the wake-up (a spare for a stray wake-up)
    assert pool.signals.waiting() == 0


def test_timeout_answers_with_the_job_as_it_stands(ctx: ServiceContext, slow_recheck: None) -> None:
    pool = _pool(ctx, seconds=0.0)
    job = _job(ctx)  # never submitted: stays queued
    current, took = _wait(ctx, job.id, 0.3)
    assert current.status == "queued"
    assert 0.25 <= took < 10.0
    assert pool.signals.waiting() == 0


def test_completion_between_the_read_and_the_wait_is_not_lost(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch, slow_recheck: None
) -> None:
    pool = _pool(ctx, seconds=0.0)
    job = _job(ctx)
    real = jobs.load

    def finish_behind_the_read(sessions: Any, job_id: str) -> Job | None:
        row = real(sessions, job_id)  # the waiter sees "queued" ...
        if row is not None and row.status == "queued":
            _finish(ctx, job_id)  # ... and the job completes before it starts waiting
            pool.signals.notify(job_id)
        return row

    monkeypatch.setattr(jobs, "load", finish_behind_the_read)
    done, took = _wait(ctx, job.id, 20.0)
    assert done.status == "succeeded"
    assert took < 10.0  # the notice was kept for the wait, not lost until the deadline
    assert pool.signals.waiting() == 0


def test_a_cancelled_wait_unsubscribes(ctx: ServiceContext, slow_recheck: None) -> None:
    pool = _pool(ctx, seconds=0.0)
    job = _job(ctx)

    async def go() -> int:
        task = asyncio.create_task(routes.wait_final(ctx, job.id, 30.0))
        for _ in range(200):  # until it waits
            await asyncio.sleep(0.01)
            if pool.signals.waiting():
                break
        assert pool.signals.waiting() == 1
        task.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await task
        return pool.signals.waiting()

    assert asyncio.run(go()) == 0


def test_cancel_wakes_the_waiter(ctx: ServiceContext, slow_recheck: None) -> None:
    _pool(ctx, seconds=0.0)
    job = _job(ctx)  # queued, never submitted

    def cancel() -> None:
        time.sleep(0.2)
        with ctx.tx() as s:
            jobs.cancel_job(s, OWNER, job.id)
        ctx.notify_final(job.id)

    t = threading.Thread(target=cancel)
    t.start()
    done, took = _wait(ctx, job.id, 20.0)
    t.join()
    assert done.status == "failed" and done.error_code == "cancelled"
    assert took < 10.0


def test_jobs_run_elsewhere_are_polled_with_backoff(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """No embedded pool (Celery): the database is read, less and less often, until the end."""
    assert ctx.signals() is None
    job = _job(ctx)
    reads = _count_loads(monkeypatch)
    timer = threading.Timer(1.0, _finish, args=(ctx, job.id))
    timer.start()
    try:
        done, took = _wait(ctx, job.id, 20.0)
    finally:
        timer.join()
    assert done.status == "succeeded"
    assert took < 10.0
    # 50 ms doubling to 0.5 s: ~6 reads in the first second (fixed 50 ms polling made 20)
    assert reads[0] <= 10, reads


def test_polling_honours_the_deadline(ctx: ServiceContext) -> None:
    job = _job(ctx)
    current, took = _wait(ctx, job.id, 0.3)
    assert current.status == "queued"
    assert 0.25 <= took < 5.0
