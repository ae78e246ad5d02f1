"""The job watchdog (issue 15): budgets, poison jobs, cancel, and a worker stuck in native code."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.reports import video_report
from tests.service.helpers import queued_job

from veracity.config import Settings
from veracity.service import jobs
from veracity.service.auth import Principal
from veracity.service.context import ServiceContext, open_context
from veracity.service.dispatch import EmbeddedPool
from veracity.service.errors import Conflict, NotFound
from veracity.service.models import AuditEntry, Job
from veracity.service.runner import JobRunner, job_budget
from veracity.service.webhooks import RetryPolicy, WebhookPool, WebhookSender

OWNER = Principal(key_id="owner", role="analyst")
OTHER = Principal(key_id="other", role="analyst")
ADMIN = Principal(key_id="boss", role="admin")


class FakeAnalyzer:
    """Stands in for the pipeline: ``behave(progress)`` decides how the analysis goes."""

    def __init__(self, behave: Callable[[Callable[[str], None]], None]) -> None:
        self.behave = behave

    def analyze(self, path: Path, options: Any, progress: Callable[[str], None]) -> Any:
        self.behave(progress)
        return video_report()

    def close(self) -> None:
        return None


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ServiceContext]:
    settings = Settings(data_dir=tmp_path, job_budget_s=0.6, job_budget_per_media_s=0.0, job_stale_s=1.0)
    c = open_context(settings)
    c.storage.ensure()
    yield c
    c.engine.dispose()


def _job(ctx: ServiceContext, owner: Principal = OWNER) -> Job:
    return queued_job(ctx, owner)


def _runner(ctx: ServiceContext, behave: Callable[[Callable[[str], None]], None], **kw: Any) -> JobRunner:
    return JobRunner(
        settings=ctx.settings,
        sessions=ctx.sessions,
        storage=ctx.storage,
        analyzer_factory=lambda: FakeAnalyzer(behave),  # type: ignore[arg-type,return-value]
        send_webhook=lambda job_id: None,
        **kw,
    )


def _slow(progress: Callable[[str], None]) -> None:
    for _ in range(100):  # 10 s of stages unless the watchdog stops it
        progress("faces")
        time.sleep(0.1)


def test_budget_scales_with_duration() -> None:
    s = Settings(job_budget_s=60, job_budget_per_media_s=2)
    assert job_budget(s, None) == 60 and job_budget(s, 30.0) == 120


def test_job_past_its_budget_fails_with_analysis_timeout(ctx: ServiceContext) -> None:
    job = _job(ctx)
    started = time.monotonic()
    assert _runner(ctx, _slow).run(job.id) == "failed"
    assert time.monotonic() - started < 5.0
    done = jobs.load(ctx.sessions, job.id)
    assert done is not None and done.status == "failed" and done.error_code == "analysis_timeout"
    assert not ctx.storage.path(job.media_path or "").exists()  # media deleted like any failure


def test_native_hang_is_failed_and_reported_stuck(ctx: ServiceContext) -> None:
    """A hang that never returns to Python: the job still fails on time, and the runner says
    its thread is stuck (the pool then replaces the thread)."""
    release = threading.Event()
    stuck = threading.Event()
    job = _job(ctx)
    runner = _runner(ctx, lambda _p: release.wait(30), on_stuck=stuck.set, stuck_grace_s=0.3)
    worker = threading.Thread(target=runner.run, args=(job.id,), daemon=True)
    worker.start()
    assert stuck.wait(10), "the runner never reported its stuck thread"
    done = jobs.load(ctx.sessions, job.id)
    assert done is not None and done.status == "failed" and done.error_code == "analysis_timeout"
    release.set()
    worker.join(10)
    assert jobs.load(ctx.sessions, job.id).status == "failed"  # type: ignore[union-attr]  # late result dropped


def test_pool_replaces_a_stuck_worker_and_goes_on(ctx: ServiceContext) -> None:
    release = threading.Event()
    hang, ok = _job(ctx), _job(ctx)

    def behave(progress: Callable[[str], None]) -> None:
        if not release.is_set() and behave.calls == 0:  # type: ignore[attr-defined]
            behave.calls += 1  # type: ignore[attr-defined]
            release.wait(30)

    behave.calls = 0  # type: ignore[attr-defined]
    hooks = WebhookPool(WebhookSender(ctx.sessions, ctx.settings, "x" * 32), RetryPolicy.from_settings(ctx.settings))
    pool = EmbeddedPool(lambda send: _runner(ctx, behave, stuck_grace_s=0.3), ctx.sessions, 1, hooks)
    pool.start()
    try:
        pool.submit(hang.id)
        pool.submit(ok.id)
        deadline = time.monotonic() + 15
        while (j := jobs.load(ctx.sessions, ok.id)) is not None and j.status != "succeeded":
            assert time.monotonic() < deadline, "the second job never ran: the stuck worker stalled the queue"
            time.sleep(0.1)
        assert pool.replaced == 1 and pool.check() == "ok"
        assert jobs.load(ctx.sessions, hang.id).error_code == "analysis_timeout"  # type: ignore[union-attr]
    finally:
        release.set()
        pool.stop()


def test_poison_job_is_failed_for_good(ctx: ServiceContext) -> None:
    """A job that killed its worker N times is failed, never claimed again (it was re-claimed
    after every restart and hung again)."""
    job = _job(ctx)
    max_attempts = ctx.settings.job_max_attempts
    for attempt in range(1, max_attempts + 1):
        assert jobs.claim(ctx.sessions, job.id, "w", max_attempts) is not None
        requeued = jobs.requeue_all_running(ctx.sessions, max_attempts)  # the worker died: restart
        assert requeued == ([job.id] if attempt < max_attempts else [])
    done = jobs.load(ctx.sessions, job.id)
    assert done is not None and done.status == "failed" and done.error_code == "analysis_timeout"
    assert jobs.claim(ctx.sessions, job.id, "w", max_attempts) is None
    with ctx.tx() as s:
        assert "job.abandoned" in set(s.scalars(select(AuditEntry.action)))


def test_queued_job_at_its_attempt_cap_is_not_claimed(ctx: ServiceContext) -> None:
    job = _job(ctx)
    with ctx.tx() as s:
        s.execute(update(Job).where(Job.id == job.id).values(attempts=3))
    assert jobs.claim(ctx.sessions, job.id, "w", 3) is None
    assert jobs.load(ctx.sessions, job.id).status == "failed"  # type: ignore[union-attr]


def test_cancel_rules_and_audit(ctx: ServiceContext) -> None:
    job = _job(ctx)
    with ctx.tx() as s, pytest.raises(NotFound):
        jobs.cancel_job(s, OTHER, job.id)  # another analyst does not even see it
    with ctx.tx() as s:
        cancelled, was = jobs.cancel_job(s, OWNER, job.id)
        assert (cancelled.status, cancelled.error_code, was) == ("failed", "cancelled", "queued")
    with ctx.tx() as s, pytest.raises(Conflict):
        jobs.cancel_job(s, ADMIN, job.id)  # already final
    assert jobs.claim(ctx.sessions, job.id, "w") is None  # a cancelled job is never run
    other = _job(ctx, OTHER)
    with ctx.tx() as s:
        assert jobs.cancel_job(s, ADMIN, other.id)[0].error_code == "cancelled"  # admins may
    with ctx.tx() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "job.cancelled")))
    assert [r.actor for r in rows] == [OWNER.actor, ADMIN.actor]


def test_cancel_stops_a_running_job_and_drops_its_media(ctx: ServiceContext) -> None:
    settings = ctx.settings.with_(job_budget_s=60.0)
    ctx = replace(ctx, settings=settings)
    job = _job(ctx)
    started = threading.Event()

    def behave(progress: Callable[[str], None]) -> None:
        started.set()
        _slow(progress)

    runner = _runner(ctx, behave)
    out: list[str] = []
    worker = threading.Thread(target=lambda: out.append(runner.run(job.id)), daemon=True)
    worker.start()
    assert started.wait(10)
    with ctx.tx() as s:
        jobs.cancel_job(s, OWNER, job.id)
    worker.join(10)
    assert out == ["lost"]  # the worker noticed and stopped; its result was never stored
    assert jobs.load(ctx.sessions, job.id).error_code == "cancelled"  # type: ignore[union-attr]
    assert not ctx.storage.path(job.media_path or "").exists()
