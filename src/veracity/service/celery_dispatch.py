"""API-side half of the scaled-out mode: publish one Celery message per job."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.service import jobs
from veracity.service.tasks import RUN_JOB, make_celery


class CeleryDispatcher:
    kind = "celery"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self._settings = settings
        self._sessions = sessions
        self.app = make_celery(settings)

    def start(self) -> None:
        # Re-publish every queued job: a message lost between commit and publish (an API crash)
        # is recovered, and duplicates are no-ops thanks to the conditional claim.
        for job_id in jobs.queued_ids(self._sessions):
            self.submit(job_id)

    def stop(self) -> None:
        self.app.pool.force_close_all()

    def submit(self, job_id: str) -> None:
        self.app.send_task(RUN_JOB, args=[job_id], queue=self._settings.queue_name)

    def check(self) -> str:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:
            return f"broker unreachable: {type(exc).__name__}"
        return "ok"
