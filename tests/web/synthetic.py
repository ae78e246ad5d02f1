"""Synthetic reports and an in-memory backend for the web UI tests (no service, no database)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from tests.reports import SHA, detector, video_report

from veracity.report.model import (
    MediaSummary,
    Provenance,
    Report,
    SourceInfo,
    TimelinePoint,
)
from veracity.service.auth import Principal
from veracity.web.backend import AuditRow, ConsentRow, JobQuery, KeyRow, PostedForm, UiError
from veracity.web.view import JobView, ReviewView


class RichProvenance(Provenance):
    """Provenance with the manifest summary the provenance branch adds."""

    signer: str | None = None
    actions: list[dict[str, Any]] = Field(default_factory=list)
    ingredients: list[dict[str, Any]] = Field(default_factory=list)
    claim_generator: str | None = None


def image_report(**kw: object) -> Report:
    base: dict[str, object] = {
        "source": SourceInfo(name="photo.jpg", sha256=SHA, size_bytes=50_000),
        "media": MediaSummary(kind="image", container="jpeg", width=512, height=512, frames_analysed=1),
        "deepfake_score": 0.2,
        "label": "authentic",
        "reasons": [],
        "detectors": [detector("spectral", 0.2, weight=1.0)],
        "timeline": [TimelinePoint(t=0.0, faces=1, scores={"spectral": 0.2})],
        "faces": [],
        "warnings": [],
    }
    base.update(kw)
    return video_report(**base)


def audio_report() -> Report:
    return video_report(
        source=SourceInfo(name="voice.wav", sha256=SHA, size_bytes=90_000),
        media=MediaSummary(kind="audio", container="wav", duration_s=3.0, has_audio=True, frames_analysed=0),
        deepfake_score=None,
        label="inconclusive",
        reasons=[],
        detectors=[detector("av_sync", None, not_applicable="not_video")],
        timeline=[],
        faces=[],
        warnings=[],
    )


# --------------------------------------------------------------------------- fake backend


@dataclass
class _Job:
    view: JobView
    report: Report | None
    media: Path | None = None


@dataclass
class FakeBackend:
    """In-memory stand-in for the service: keys, jobs that finish on the next poll, reviews, audit."""

    keys_by_secret: dict[str, tuple[KeyRow, Principal]] = field(default_factory=dict)
    jobs_by_id: dict[str, _Job] = field(default_factory=dict)
    audit_rows: list[AuditRow] = field(default_factory=list)
    consent_rows: list[ConsentRow] = field(default_factory=list)
    finish_after_polls: int = 1
    discarded: int = 0
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_key(self, name: str, role: str, secret: str | None = None) -> str:
        n = next(self._ids)
        secret = secret or f"vk_test_{name}_{n}"
        row = KeyRow(id=f"key{n}", name=name, role=role, created_at=datetime(2026, 1, 1, tzinfo=UTC))
        self.keys_by_secret[secret] = (row, Principal(row.id, role, name))  # type: ignore[arg-type]
        return secret

    def add_job(
        self,
        report: Report | None,
        *,
        status: str = "succeeded",
        media: Path | None = None,
        created: datetime | None = None,
    ) -> str:
        n = next(self._ids)
        job_id = f"job{n}"
        view = JobView(
            id=job_id,
            status=status,
            source_name=report.source.name if report else "upload.bin",
            created_at=created or datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
            kind=report.media.kind if report else None,
            label=report.label if report else None,
            score=report.deepfake_score if report else None,
        )
        self.jobs_by_id[job_id] = _Job(view, report, media)
        return job_id

    def _log(self, who: Principal, action: str, obj: str, detail: str = "") -> None:
        prev = self.audit_rows[-1].hash if self.audit_rows else ""
        h = hashlib.sha256(f"{prev}|{who.name}|{action}|{obj}|{detail}".encode()).hexdigest()
        self.audit_rows.append(AuditRow(len(self.audit_rows) + 1, datetime.now(UTC), who.name, action, obj, detail, h))

    # -- UiBackend
    def authenticate(self, api_key: str) -> Principal | None:
        found = self.keys_by_secret.get(api_key)
        if found is None or found[0].revoked:
            return None
        return found[1]

    async def read_upload(self, request: Request) -> PostedForm:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            return PostedForm(fields, upload.filename, await upload.read())
        return PostedForm(fields)

    def discard(self, form: PostedForm) -> None:
        self.discarded += 1

    def submit_upload(self, who: Principal, form: PostedForm, keep_media: bool) -> str:
        data = form.payload
        if not isinstance(data, bytes) or not data or form.file_name is None:
            raise UiError(400, "unsupported_media", "The file is empty.")
        report = video_report(
            source=SourceInfo(name=form.file_name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
        )
        job_id = self.add_job(report, status="running")
        self._log(who, "job.created", job_id)
        return job_id

    def submit_url(self, who: Principal, url: str, keep_media: bool) -> str:
        if not url.startswith("https://"):
            raise UiError(400, "url_not_allowed", "Only public https addresses are allowed.")
        job_id = self.add_job(video_report(), status="queued")
        self._log(who, "job.created", job_id, url)
        return job_id

    def job(self, who: Principal, job_id: str) -> JobView | None:
        job = self.jobs_by_id.get(job_id)
        if job is None:
            return None
        if not job.view.finished:
            self.polls[job_id] = self.polls.get(job_id, 0) + 1
            if self.polls[job_id] > self.finish_after_polls:
                job.view = replace(job.view, status="succeeded", progress=1.0)
            else:
                job.view = replace(job.view, status="running", progress=0.5, stage="detectors")
        return job.view

    def report(self, who: Principal, job_id: str) -> Report | None:
        job = self.jobs_by_id.get(job_id)
        return job.report if job and job.view.status == "succeeded" else None

    def media_path(self, who: Principal, job_id: str) -> Path | None:
        job = self.jobs_by_id.get(job_id)
        return job.media if job else None

    def credential(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        return self.credentials.get(job_id)

    def jobs(self, who: Principal, query: JobQuery) -> list[JobView]:
        out = [j.view for j in self.jobs_by_id.values()]
        if query.text:
            out = [j for j in out if query.text.lower() in j.source_name.lower() or query.text == j.id]
        if query.label:
            out = [j for j in out if j.label == query.label]
        if query.kind:
            out = [j for j in out if j.kind == query.kind]
        if query.status:
            out = [j for j in out if j.status == query.status]
        if query.reviewed:
            out = [j for j in out if (j.review is not None) == (query.reviewed == "yes")]
        out.sort(key=lambda j: j.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return out[query.offset : query.offset + query.limit]

    def review_queue(self, who: Principal, limit: int) -> list[JobView]:
        done = [j.view for j in self.jobs_by_id.values() if j.view.status == "succeeded"]
        return [j for j in done if j.review is None][:limit]

    def submit_review(self, who: Principal, job_id: str, ground_truth: str, comment: str) -> None:
        job = self.jobs_by_id.get(job_id)
        if job is None:
            raise UiError(404, "not_found", "No such job.")
        job.view = replace(job.view, review=ReviewView(ground_truth, comment, who.name, datetime.now(UTC)))
        self._log(who, "review.created", job_id, ground_truth)

    def audit(self, who: Principal, limit: int, offset: int) -> list[AuditRow]:
        return list(reversed(self.audit_rows))[offset : offset + limit]

    def keys(self, who: Principal) -> list[KeyRow]:
        return [row for row, _ in self.keys_by_secret.values()]

    def create_key(self, who: Principal, name: str, role: str) -> tuple[KeyRow, str]:
        secret = self.add_key(name, role)
        self._log(who, "key.created", self.keys_by_secret[secret][0].id)
        return self.keys_by_secret[secret][0], secret

    def revoke_key(self, who: Principal, key_id: str) -> None:
        for secret, (row, p) in list(self.keys_by_secret.items()):
            if row.id == key_id:
                self.keys_by_secret[secret] = (replace(row, revoked=True), p)
                self._log(who, "key.revoked", key_id)
                return
        raise UiError(404, "not_found", "No such key.")

    def consents(self, who: Principal) -> list[ConsentRow]:
        return list(self.consent_rows)
