"""Run one job: claim, fetch (if a URL), analyse, store, delete the media, hand off the webhook.

Shared by the embedded pool and the Celery task, so both behave the same; the webhook goes to
``send_webhook``, which the dispatcher provides with its own retry policy. A heartbeat thread
keeps ``heartbeat_at`` fresh (and publishes the stage) while the analysis runs; a job whose
heartbeat stops is re-queued by the sweeper and its late result, if any, is discarded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.errors import VeracityError
from veracity.media.probe import probe
from veracity.media.types import MediaInfo
from veracity.service import fetch, jobs
from veracity.service.schemas import JobOptions
from veracity.service.storage import Storage

if TYPE_CHECKING:
    from veracity.pipeline import Analyzer

log = logging.getLogger("veracity.service")

# Coarse progress per pipeline stage (the analyzer reports stage names, not fractions).
_STAGE_PROGRESS = {"fetch": 0.05, "probe": 0.1, "decode": 0.2, "faces": 0.4, "fusion": 0.95}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


class JobAborted(Exception):
    """Raised at a stage boundary when the job is no longer ours to finish (watchdog, cancel)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class _Beat:
    stage: str = "claimed"
    stop: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")  # time.monotonic() past which the watchdog fails the job
    budget_s: float = 0.0
    abort: str | None = None  # "analysis_timeout" (watchdog) or "lost" (cancelled / handed on)
    failed_by_watchdog: bool = False


def job_budget(settings: Settings, duration_s: float | None) -> float:
    """Wall-clock seconds a job may take: a base plus a share per second of media."""
    return settings.job_budget_s + settings.job_budget_per_media_s * max(0.0, duration_s or 0.0)


@dataclass
class JobRunner:
    """Everything a worker needs; one per worker thread/process (the Analyzer is not thread-safe)."""

    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    analyzer_factory: Callable[[], Analyzer]
    # Where webhook delivery goes: the embedded pool's WebhookPool, or a Celery task in scale-out.
    send_webhook: Callable[[str], None]
    # Called (from the heartbeat thread) when an analysis is still running this long after the
    # watchdog failed its job: the analysis thread is stuck (a native hang). The embedded pool
    # starts a replacement worker thread; a Celery worker process exits so it is restarted.
    on_stuck: Callable[[], None] | None = None
    stuck_grace_s: float = 30.0
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
        token = jobs.claim(self.sessions, job_id, worker, self.settings.job_max_attempts)
        if token is None:
            return "skipped"  # done already, another worker holds it, or out of attempts
        job = jobs.load(self.sessions, job_id)
        assert job is not None  # claimed rows exist
        beat = _Beat()
        started = time.monotonic()
        self._set_budget(beat, started, None)
        interval = max(0.2, min(5.0, self.settings.job_stale_s / 4, self.settings.job_budget_s / 4))

        def pump() -> None:
            """Heartbeat and watchdog: past the budget, fail the job (the claim token guards it:
            a late result is then discarded) and ask the analysis to stop at its next stage."""
            stuck_at = float("inf")
            while not beat.stop.wait(interval):
                now = time.monotonic()
                if beat.abort is None and now > beat.deadline:
                    beat.abort = "analysis_timeout"
                    beat.failed_by_watchdog = jobs.fail(
                        self.sessions,
                        job_id,
                        token,
                        "analysis_timeout",
                        f"analysis took longer than its budget of {beat.budget_s:.0f} s",
                        worker,
                    )
                    stuck_at = now + self.stuck_grace_s
                    log.warning("job %s: past its %.0f s budget, failed (analysis_timeout)", job_id, beat.budget_s)
                elif beat.abort == "analysis_timeout":
                    if now > stuck_at:
                        stuck_at = float("inf")
                        log.error(
                            "job %s: analysis thread still busy %.0f s after its timeout", job_id, self.stuck_grace_s
                        )
                        if self.on_stuck is not None:
                            self.on_stuck()
                elif not jobs.heartbeat(self.sessions, job_id, token, beat.stage, _STAGE_PROGRESS.get(beat.stage)):
                    beat.abort = "lost"  # cancelled, or handed to another worker

        thread = threading.Thread(target=pump, name=f"heartbeat-{job_id[:8]}", daemon=True)
        thread.start()
        fetched: str | None = None
        outcome = "lost"
        try:
            if job.media_path:
                path = self.storage.path(job.media_path)
                info = probe(path, self.settings.limits, sha256=job.media_sha256)
            else:
                beat.stage = "fetch"
                fetched, path, info = self._fetch(job_id, token, job.source_url or "")
            self._set_budget(beat, started, info.duration_s)
            options = JobOptions.model_validate(job.options).to_options()

            def note(stage: str) -> None:
                if beat.abort is not None:
                    raise JobAborted(beat.abort)
                beat.stage = stage

            report = self.analyzer.analyze(path, options, progress=note)
            report = report.model_copy(
                update={"source": report.source.model_copy(update={"name": job.source_name or report.source.name})}
            )
            outcome = "succeeded" if jobs.complete(self.sessions, job_id, token, report, worker) else "lost"
        except JobAborted:
            outcome = "lost"
        except VeracityError as exc:
            outcome = "failed" if jobs.fail(self.sessions, job_id, token, exc.code, exc.message, worker) else "lost"
        except Exception as exc:
            log.error("job %s: internal error\n%s", job_id, traceback.format_exc())
            msg = f"{type(exc).__name__}: {exc}"
            outcome = "failed" if jobs.fail(self.sessions, job_id, token, "internal_error", msg, worker) else "lost"
        finally:
            beat.stop.set()
            thread.join(timeout=10)
            if beat.failed_by_watchdog:
                outcome = "failed"  # the watchdog finished the job; this run's result was discarded
            if outcome == "lost" and self._finished(job_id):
                # Cancelled (or failed by a watchdog elsewhere): nobody will analyse it again.
                outcome = "ended"
            if outcome in ("succeeded", "failed", "ended") and not job.keep_media:
                self.storage.delete(job.media_path)
                self.storage.delete(fetched)
            elif fetched and outcome == "lost":
                self.storage.delete(fetched)
            if outcome == "ended":
                outcome = "lost"
        if outcome in ("succeeded", "failed") and job.callback_url:
            jobs.set_webhook_status(self.sessions, job_id, "pending", 0)
            self.send_webhook(job_id)
        return outcome

    def _set_budget(self, beat: _Beat, started: float, duration_s: float | None) -> None:
        beat.budget_s = job_budget(self.settings, duration_s)
        beat.deadline = started + beat.budget_s

    def _finished(self, job_id: str) -> bool:
        current = jobs.load(self.sessions, job_id)
        return current is not None and current.status in ("succeeded", "failed")

    def _fetch(self, job_id: str, token: str, url: str) -> tuple[str, Path, MediaInfo]:
        with self.storage.writer(self.settings.limits.max_bytes) as out:
            fetch.download(url, out.write, self.settings, max_bytes=self.settings.limits.max_bytes)
        keep_name = out.name
        try:
            info = probe(out.path, self.settings.limits, sha256=out.sha256)  # sniff before the heavy work
            jobs.record_media(self.sessions, job_id, token, sha256=out.sha256, size=out.size, name=keep_name)
        except BaseException:  # any failure: the fetched file must not stay behind
            self.storage.delete(keep_name)
            raise
        return keep_name, out.path, info
