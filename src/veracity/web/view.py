"""What the UI's pages draw about jobs, and the result page's context.

The report itself is drawn from :func:`veracity.report.present.present` (the same model and
partials as the HTML export); this module adds only what belongs to the UI: job rows, reviews,
the review queue order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from veracity.report.model import Report
from veracity.report.present import (
    data_uri,
    detector_cards,
    face_views,
    fmt_bytes,
    fmt_seconds,
    gauge,
    present,
    provenance_view,
    score_colour,
    tree,
)
from veracity.service.schemas import JobPublic

__all__ = [
    "FINISHED",
    "GROUND_TRUTH",
    "JobView",
    "ReviewView",
    "data_uri",
    "detector_cards",
    "face_views",
    "fmt_bytes",
    "fmt_seconds",
    "gauge",
    "provenance_view",
    "result_context",
    "review_queue_order",
    "score_colour",
    "tree",
]

GROUND_TRUTH = ("authentic", "manipulated", "synthetic", "unsure")


FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class ReviewView:
    ground_truth: str
    comment: str
    reviewer: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobView:
    """One job as a page row draws it. Built from the service's own :class:`JobPublic` by
    :meth:`of` (statuses are the service's: queued, running, succeeded, failed); a test backend
    may construct it directly."""

    id: str
    status: str
    source_name: str
    created_at: datetime | None = None
    progress: float | None = None  # 0..1 while running
    stage: str | None = None
    kind: str | None = None
    label: str | None = None
    score: float | None = None
    error: str | None = None
    review: ReviewView | None = None

    @classmethod
    def of(cls, job: JobPublic) -> JobView:
        review = None
        if job.review is not None:
            review = ReviewView(job.review.label, job.review.comment, job.review.reviewer, job.review.reviewed_at)
        error = f"{job.error.message} ({job.error.code})" if job.error is not None else None
        return cls(
            id=job.job_id,
            status=job.status,
            source_name=job.source.name or job.job_id,
            created_at=job.created_at,
            progress=job.progress,
            stage=job.stage,
            kind=job.media_kind,
            label=job.label,
            score=job.deepfake_score,
            error=error,
            review=review,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def uncertainty(self) -> float:
        """1 at a score of 0.5 (a coin toss), 0 at either end; unknown scores count as certain."""
        if self.score is None:
            return 0.0
        return 1.0 - abs(self.score - 0.5) * 2.0


def review_queue_order(jobs: Sequence[JobView]) -> list[JobView]:
    """Most uncertain first (in tiers of 0.1, so near-ties go by date), then most recent: where a
    reviewer's label teaches calibration most."""

    def key(j: JobView) -> tuple[float, float]:
        ts = j.created_at.timestamp() if j.created_at else 0.0
        return (-round(j.uncertainty, 1), -ts)

    return sorted(jobs, key=key)


def result_context(
    report: Report,
    job: JobView | None = None,
    *,
    frames_url: str | None = None,
    credential: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``result.html`` needs: the report's presentation model ``v`` (shared with the
    export) and the job around it; a few of the model's parts are named for the page's callers."""
    v = present(report, credential)
    return {
        "v": v,
        "report": report,
        "job": job,
        "frames_url": frames_url,
        "gauge": v.gauge,
        "reasons": v.reasons,
        "detectors": v.detectors,
        "evidence_heatmaps": v.loose_heatmaps,
    }
