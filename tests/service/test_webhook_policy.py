"""The one webhook sender under the embedded retry policy: tries spaced by the doubling backoff,
no thread held while waiting, a final outcome ends the tries, stop() drops what is not yet due."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from veracity.service.webhooks import Outcome, RetryPolicy, WebhookPool


def test_policy_doubles_the_backoff() -> None:
    policy = RetryPolicy(attempts=4, backoff_s=0.5)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@dataclass
class _Sender:
    """Answers ``retry`` until the n-th try of a job; records when each try happened."""

    succeed_on: dict[str, int]
    tries: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def attempt(self, job_id: str, attempt: int, policy: RetryPolicy) -> Outcome:
        self.tries.setdefault(job_id, []).append((attempt, time.monotonic()))
        if attempt >= self.succeed_on[job_id]:
            if all(self.tries.get(j) and self.tries[j][-1][0] >= n for j, n in self.succeed_on.items()):
                self.done.set()
            return "delivered"
        return "failed" if attempt >= policy.attempts else "retry"


def test_pool_retries_after_the_backoff_without_blocking_other_jobs() -> None:
    sender = _Sender({"slow": 3, "fast": 1})
    pool = WebhookPool(sender, RetryPolicy(attempts=5, backoff_s=0.1), workers=1)  # type: ignore[arg-type]
    pool.start()
    try:
        started = time.monotonic()
        pool.submit("slow")
        pool.submit("fast")
        assert sender.done.wait(10)
    finally:
        pool.stop()
    assert [n for n, _ in sender.tries["slow"]] == [1, 2, 3]
    assert [n for n, _ in sender.tries["fast"]] == [1]
    (_, t1), (_, t2), (_, t3) = sender.tries["slow"]
    assert t2 - t1 >= 0.1 and t3 - t2 >= 0.2  # 0.1 s, then doubled
    assert sender.tries["fast"][0][1] - started < 0.1  # not queued behind the slow job's backoff


def test_stop_drops_retries_not_yet_due() -> None:
    sender = _Sender({"never": 99})
    pool = WebhookPool(sender, RetryPolicy(attempts=10, backoff_s=30.0))  # type: ignore[arg-type]
    pool.start()
    pool.submit("never")
    deadline = time.monotonic() + 5
    while not sender.tries.get("never") and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    pool.stop()
    assert time.monotonic() - t0 < 5  # the 30 s retry is not waited for
    assert [n for n, _ in sender.tries["never"]] == [1]
    assert not pool.alive()



def test_an_embedded_restart_takes_up_webhooks_still_owed(tmp_path: Path) -> None:
    from veracity.config import Settings
    from veracity.service.context import open_context
    from veracity.service.dispatch import EmbeddedPool
    from veracity.service.models import Job, utcnow

    ctx = open_context(Settings(data_dir=tmp_path))
    try:
        with ctx.tx() as s:
            for job_id, status, hook, tries in (("owed", "pending", "https://hooks.example/a", 2),
                                                 ("sent", "delivered", "https://hooks.example/b", 1),
                                                 ("none", None, None, 0)):
                s.add(Job(id=job_id, status="succeeded", progress=1.0, source_name=job_id, options={}, attempts=1,
                          keep_media=False, created_at=utcnow(), finished_at=utcnow(), callback_url=hook,
                          webhook_status=status, webhook_attempts=tries))
        sender = _Sender({"owed": 3})
        hooks = WebhookPool(sender, RetryPolicy(attempts=5, backoff_s=0.1))  # type: ignore[arg-type]
        pool = EmbeddedPool(lambda send: None, ctx.sessions, 0, hooks)  # type: ignore[arg-type,return-value]
        pool.start()
        try:
            assert sender.done.wait(10)
        finally:
            pool.stop()
        assert [n for n, _ in sender.tries["owed"]] == [3]  # the third try, after the two made before
        assert set(sender.tries) == {"owed"}
    finally:
        ctx.engine.dispose()
