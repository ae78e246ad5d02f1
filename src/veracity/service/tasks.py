"""Celery tasks for the scaled-out deployment (``veracity worker``).

``run_job`` is acknowledged late and requeued if its worker is lost, retried with exponential
backoff when the database or broker hiccups, and idempotent on the job id: the conditional claim
in :func:`veracity.service.jobs.claim` lets one delivery do the work and turns every duplicate
into a no-op. Each worker process builds one :class:`JobRunner` (one Analyzer, models loaded once).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from celery import Celery
from sqlalchemy.exc import OperationalError

from veracity.config import Settings

RUN_JOB = "veracity.run_job"
DELIVER_WEBHOOK = "veracity.deliver_webhook"


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
    state: dict[str, Any] = {}

    def runner() -> Any:
        if "runner" not in state:
            from veracity.service.context import build_runner

            built = build_runner(settings, send_webhook=deliver_webhook.delay)
            # A native hang outlived its watchdog: the job is failed already; leave the process
            # so the pool (or the supervisor) starts a fresh one instead of a worker stuck forever.
            built.on_stuck = lambda: os._exit(70)
            state["runner"] = built
        return state["runner"]

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
        return str(runner().run(job_id))

    @app.task(name=DELIVER_WEBHOOK, bind=True, acks_late=True, max_retries=settings.webhook_retries)  # type: ignore[untyped-decorator]
    def deliver_webhook(self: Any, job_id: str) -> bool:
        from veracity.service import jobs, webhooks

        r = runner()
        job = jobs.load(r.sessions, job_id)
        if job is None or not job.callback_url:
            return False
        body = jobs.to_public(job).model_dump_json().encode()
        one = replace(settings, webhook_retries=1)  # one try per task run; Celery does the backoff
        ok, _ = webhooks.deliver(job.callback_url, body, r.webhook_secret, one)
        attempts = self.request.retries + 1
        if ok:
            jobs.set_webhook_status(r.sessions, job_id, "delivered", attempts)
            return True
        if attempts >= settings.webhook_retries:
            jobs.set_webhook_status(r.sessions, job_id, "failed", attempts)
            return False
        jobs.set_webhook_status(r.sessions, job_id, "pending", attempts)
        raise self.retry(countdown=settings.webhook_backoff_s * (2**self.request.retries))

    app.conf.veracity_settings = settings
    return app
