"""Run one job: claim, fetch (if a URL), analyse, store, delete the media, send the webhook.

Shared by the embedded pool and the Celery task, so both behave the same. A heartbeat thread
keeps ``heartbeat_at`` fresh (and publishes the stage) while the analysis runs; a job whose
heartbeat stops is re-queued by the sweeper and its late result, if any, is discarded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.errors import VeracityError
from veracity.media.probe import probe
from veracity.service import fetch, jobs, webhooks
from veracity.service.schemas import JobOptions
from veracity.service.storage import Storage

if TYPE_CHECKING:
    from veracity.pipeline import Analyzer

log = logging.getLogger("veracity.service")

# Coarse progress per pipeline stage (the analyzer reports stage names, not fractions).
_STAGE_PROGRESS = {"fetch": 0.05, "probe": 0.1, "decode": 0.2, "faces": 0.4, "fusion": 0.95}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


@dataclass
class _Beat:
    stage: str = "claimed"
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass
class JobRunner:
    """Everything a worker needs; one per worker thread/process (the Analyzer is not thread-safe)."""

    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    analyzer_factory: Callable[[], Analyzer]
    webhook_secret: str
    # Where webhook delivery goes: inline by default; the Celery worker hands it to a task.
    send_webhook: Callable[[str], None] | None = None
    _analyzer: Analyzer | None = None

    @property
    def analyzer(self) -> Analyzer:
        if self._analyzer is None:
            self._analyzer = self.analyzer_factory()
        return self._analyzer

    def close(self) -> None:
        if self._analyzer is not None:
            self._analyzer.close()
            self._analyzer = None

    def run(self, job_id: str) -> str:
        """Process a job; returns what happened: succeeded, failed, skipped or lost."""
        worker = worker_name()
        token = jobs.claim(self.sessions, job_id, worker)
        if token is None:
            return "skipped"  # done already, or another worker holds it
        job = jobs.load(self.sessions, job_id)
        assert job is not None  # claimed rows exist
        beat = _Beat()
        interval = max(0.2, min(5.0, self.settings.job_stale_s / 4))

        def pump() -> None:
            while not beat.stop.wait(interval):
                jobs.heartbeat(self.sessions, job_id, token, beat.stage, _STAGE_PROGRESS.get(beat.stage))

        thread = threading.Thread(target=pump, name=f"heartbeat-{job_id[:8]}", daemon=True)
        thread.start()
        fetched: str | None = None
        outcome = "lost"
        try:
            if job.media_path:
                path = self.storage.path(job.media_path)
            else:
                beat.stage = "fetch"
                fetched, path = self._fetch(job_id, token, job.source_url or "")
            options = JobOptions.model_validate(job.options).to_options()

            def note(stage: str) -> None:
                beat.stage = stage

            report = self.analyzer.analyze(path, options, progress=note)
            report = report.model_copy(
                update={"source": report.source.model_copy(update={"name": job.source_name or report.source.name})}
            )
            outcome = "succeeded" if jobs.complete(self.sessions, job_id, token, report, worker) else "lost"
        except VeracityError as exc:
            outcome = "failed" if jobs.fail(self.sessions, job_id, token, exc.code, exc.message, worker) else "lost"
        except Exception as exc:
            log.error("job %s: internal error\n%s", job_id, traceback.format_exc())
            msg = f"{type(exc).__name__}: {exc}"
            outcome = "failed" if jobs.fail(self.sessions, job_id, token, "internal_error", msg, worker) else "lost"
        finally:
            beat.stop.set()
            thread.join(timeout=10)
            if outcome in ("succeeded", "failed") and not job.keep_media:
                self.storage.delete(job.media_path)
                self.storage.delete(fetched)
            elif fetched and outcome == "lost":
                self.storage.delete(fetched)
        if outcome in ("succeeded", "failed") and job.callback_url:
            jobs.set_webhook_status(self.sessions, job_id, "pending", 0)
            if self.send_webhook is not None:
                self.send_webhook(job_id)
            else:
                self.deliver_webhook(job_id)
        return outcome

    def _fetch(self, job_id: str, token: str, url: str) -> tuple[str, Path]:
        with self.storage.writer(self.settings.limits.max_bytes) as out:
            fetch.download(url, out.write, self.settings, max_bytes=self.settings.limits.max_bytes)
        keep_name = out.name
        try:
            probe(out.path, self.settings.limits, sha256=out.sha256)  # sniff before the heavy work
            jobs.record_media(self.sessions, job_id, token, sha256=out.sha256, size=out.size, name=keep_name)
        except BaseException:  # any failure: the fetched file must not stay behind
            self.storage.delete(keep_name)
            raise
        return keep_name, out.path

    def deliver_webhook(self, job_id: str) -> bool:
        job = jobs.load(self.sessions, job_id)
        if job is None or not job.callback_url:
            return False
        body = jobs.to_public(job).model_dump_json().encode()
        ok, attempts = webhooks.deliver(job.callback_url, body, self.webhook_secret, self.settings)
        jobs.set_webhook_status(self.sessions, job_id, "delivered" if ok else "failed", attempts)
        return ok
