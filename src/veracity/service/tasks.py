"""Celery tasks for the scaled-out deployment (``veracity worker``).

``run_job`` is acknowledged late and requeued if its worker is lost, retried with exponential
backoff when the database or broker hiccups, and idempotent on the job id: the conditional claim
in :func:`veracity.service.jobs.claim` lets one delivery do the work and turns every duplicate
into a no-op. Each worker process builds one :class:`JobRunner` (one Analyzer, models loaded once).

``deliver_webhook`` is scale-out's retry policy for the one webhook sender
(:class:`veracity.service.webhooks.WebhookSender`): one try per task run, Celery's autoretry waits
the backoff between tries (``retry_backoff`` doubles from a whole number of seconds, at least 1).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from sqlalchemy.exc import OperationalError

from veracity.config import Settings
from veracity.service.webhooks import RetryPolicy

RUN_JOB = "veracity.run_job"
DELIVER_WEBHOOK = "veracity.deliver_webhook"


class WebhookRetry(Exception):
    """A webhook try failed and the policy allows another: Celery's autoretry catches this."""


def make_celery(settings: Settings) -> Celery:
    if not settings.broker_url:
        raise ValueError("the scaled-out mode needs VERACITY_BROKER_URL")
    app = Celery("veracity", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue_name,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # Redis redelivers an unacknowledged message after this; the sweeper usually acts first.
        broker_transport_options={"visibility_timeout": max(60, int(settings.job_stale_s * 4))},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
    )
    policy = RetryPolicy.from_settings(settings)
    state: dict[str, Any] = {}

    def worker_state() -> dict[str, Any]:
        """One runner and one webhook sender per worker process, built on first use."""
        if not state:
            from veracity.service.context import build_runner, open_context
            from veracity.service.webhooks import WebhookSender

            ctx = open_context(settings, run_migrations=False)
            state["runner"] = build_runner(settings, context=ctx, send_webhook=deliver_webhook.delay)
            # A native hang outlived its watchdog: the job is failed already; leave the process
            # so the pool (or the supervisor) starts a fresh one instead of a worker stuck forever.
            state["runner"].on_stuck = lambda: os._exit(70)
            state["sender"] = WebhookSender(ctx.sessions, settings, ctx.webhook_secret)
        return state

    @app.task(  # type: ignore[untyped-decorator]
        name=RUN_JOB,
        bind=True,
        acks_late=True,
        autoretry_for=(OperationalError, ConnectionError),
        retry_backoff=True,
        retry_backoff_max=60,
        max_retries=8,
    )
    def run_job(self: Any, job_id: str) -> str:
        return str(worker_state()["runner"].run(job_id))

    @app.task(  # type: ignore[untyped-decorator]
        name=DELIVER_WEBHOOK,
        bind=True,
        acks_late=True,
        autoretry_for=(WebhookRetry,),
        max_retries=policy.attempts - 1,
        retry_backoff=max(1, round(policy.backoff_s)),
        retry_backoff_max=600,
        retry_jitter=False,
    )
    def deliver_webhook(self: Any, job_id: str) -> bool:
        outcome = worker_state()["sender"].attempt(job_id, self.request.retries + 1, policy)
        if outcome == "retry":
            raise WebhookRetry(job_id)
        return bool(outcome == "delivered")

    app.conf.veracity_settings = settings
    return app
