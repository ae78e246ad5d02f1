"""Request and response bodies: separate Create (input) and Public (output) models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from veracity.config import Options
from veracity.report.model import Label, Report

JobStatus = Literal["queued", "running", "succeeded", "failed"]
ReviewLabel = Literal["authentic", "manipulated", "synthetic", "unsure"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Out):
    code: str = Field(description="Stable machine-readable code, e.g. unsupported_media, rate_limited.")
    message: str


class ErrorBody(_Out):
    error: ErrorDetail


class JobOptions(_In):
    """Per-job analysis options (a subset of :class:`veracity.config.Options`)."""

    frames: int = Field(default=Options().frames, ge=1, le=512, description="Sparse frames sampled across a video.")
    detectors: list[str] | None = Field(default=None, max_length=32, description="Detector names; null for all.")
    mode: Literal["full", "fast"] = Field(
        default="full", description="fast: triage on a few frames and the cheapest detectors; full: everything."
    )

    @field_validator("detectors")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        from veracity.detectors import registry

        known = registry.names()
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(f"unknown detector(s) {unknown}; known: {known}")
        return list(dict.fromkeys(value))

    def to_options(self) -> Options:
        return Options(frames=self.frames, detectors=tuple(self.detectors) if self.detectors is not None else None,
                       mode=self.mode)


class JobCreate(_In):
    """A job from a URL (uploads use multipart/form-data with a ``file`` part and the same fields)."""

    url: str = Field(min_length=1, max_length=4096, description="http(s) URL of an image, video or audio file.")
    options: JobOptions = Field(default_factory=JobOptions)
    callback_url: str | None = Field(default=None, max_length=4096, description="POSTed the result when done.")
    keep_media: bool = Field(default=False, description="Keep the media after analysis (default: deleted).")


class AnalyzeVideoCreate(_In):
    """The seed contract: ``{"video_url": ...}``."""

    video_url: str = Field(min_length=1, max_length=4096)
    options: JobOptions = Field(default_factory=JobOptions)


class VerifyCreate(_In):
    """Verify the media at a URL (http(s), public addresses only)."""

    url: str = Field(min_length=1, max_length=4096)


class BatchCreate(_In):
    urls: list[str] = Field(min_length=1, max_length=500)
    options: JobOptions = Field(default_factory=JobOptions)
    callback_url: str | None = Field(default=None, max_length=4096)
    keep_media: bool = False


class ReviewCreate(_In):
    label: ReviewLabel = Field(description="The reviewer's ground truth.")
    comment: str = Field(default="", max_length=10_000)


class ReviewPublic(_Out):
    label: ReviewLabel
    comment: str
    reviewer: str
    reviewed_at: datetime


class SourcePublic(_Out):
    name: str
    url: str | None = None
    sha256: str | None = Field(default=None, description="SHA-256 of the media, kept after the media is deleted.")
    size_bytes: int | None = None


class JobPublic(_Out):
    job_id: str
    status: JobStatus
    media_kind: Literal["video", "image", "audio"] | None = Field(
        default=None, description="The analysed media's kind, once the job succeeded."
    )
    stage: str | None = None
    progress: float = Field(ge=0, le=1)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    source: SourcePublic
    options: JobOptions
    batch_id: str | None = None
    attempts: int
    deepfake_score: float | None = None
    label: Label | None = None
    result: Report | None = Field(default=None, description="The full report once the job succeeded.")
    error: ErrorDetail | None = None
    review: ReviewPublic | None = None
    webhook_status: str | None = None
    report_url: str | None = None


class JobAccepted(_Out):
    job_id: str
    status: JobStatus
    status_url: str
    source_name: str | None = Field(default=None, description="The file name or URL tail the job analyses.")
    error: ErrorDetail | None = Field(
        default=None, description="Why the job failed (in a batch: a file refused on arrival, named here)."
    )


class JobList(_Out):
    items: list[JobPublic]
    total: int
    limit: int
    offset: int


class BatchPublic(_Out):
    batch_id: str
    created_at: datetime
    total: int
    counts: dict[str, int] = Field(description="Jobs per status.")
    done: bool
    jobs: list[JobAccepted]


class AnalyzeVideoPublic(Report):
    """The report itself (deepfake_score, reasons, provenance, ...) plus the job that made it."""

    job_id: str


class KeyCreate(_In):
    role: Literal["analyst", "reviewer", "signer", "admin"]
    name: str = Field(default="", max_length=200)


class KeyPublic(_Out):
    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyPublic):
    api_key: str = Field(description="The secret, shown once.")


class AuditProblemPublic(_Out):
    seq: int
    kind: str
    message: str


class AuditVerifyPublic(_Out):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[AuditProblemPublic]


class Health(_Out):
    status: Literal["ok"]


class Readiness(_Out):
    ready: bool
    checks: dict[str, str]
