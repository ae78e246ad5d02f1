"""Reviewed jobs as calibration data: the model's verdict and a person's ground truth side by side.

One JSON object per line (JSONL) per reviewed, finished job: the media's SHA-256 and kind, the
reviewer's label, a binary ``target`` (1 manipulated/synthetic, 0 authentic, null unsure), the
fused score and every detector's score/confidence/applicability from the stored report: what a
fusion fit needs. File names are included, media content is not. Each export is audited.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from veracity.config import Settings
from veracity.report.model import Report
from veracity.service import audit
from veracity.service.context import open_context
from veracity.service.models import Job

__all__ = ["TARGETS", "export_reviews", "reviewed_rows"]

TARGETS: dict[str, int | None] = {"authentic": 0, "manipulated": 1, "synthetic": 1, "unsure": None}


def _row(job: Job) -> dict[str, Any] | None:
    if not job.result or job.review_label is None:
        return None
    report = Report.model_validate_json(job.result)
    return {
        "job_id": job.id,
        "sha256": report.source.sha256,
        "source_name": report.source.name,
        "media_kind": report.media.kind,
        "ground_truth": job.review_label,
        "target": TARGETS.get(job.review_label),
        "comment": job.review_comment or "",
        "reviewer": job.reviewed_by,
        "reviewed_at": job.reviewed_at.isoformat() if job.reviewed_at else None,
        "model": {
            "deepfake_score": report.deepfake_score,
            "label": report.label,
            "reasons": list(report.reasons),
            "fusion_version": report.fusion_version,
            "model_versions": dict(report.model_versions),
        },
        "detectors": {
            d.name: {
                "score": d.score,
                "confidence": d.confidence,
                "applied": d.applied,
                "not_applicable": d.not_applicable,
                "reasons": list(d.reasons),
                "version": d.version,
            }
            for d in report.detectors
        },
    }


def reviewed_rows(session: Session, *, include_unsure: bool = False) -> Iterator[dict[str, Any]]:
    """Finished, reviewed jobs, oldest review first (a stable order for reproducible fits)."""
    query = (
        select(Job)
        .where(Job.status == "succeeded", Job.review_label.is_not(None))
        .order_by(Job.reviewed_at, Job.id)
        .execution_options(yield_per=200)
    )
    for job in session.scalars(query):
        if job.review_label == "unsure" and not include_unsure:
            continue
        row = _row(job)
        if row is not None:
            yield row


def write_jsonl(session: Session, out: TextIO, *, include_unsure: bool = False) -> int:
    n = 0
    for row in reviewed_rows(session, include_unsure=include_unsure):
        out.write(json.dumps(row, sort_keys=True) + "\n")
        n += 1
    return n


def export_reviews(settings: Settings, out: Path, *, include_unsure: bool = False, actor: str = "cli") -> int:
    """Write the JSONL file (atomically: a partial export never replaces a good one)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    ctx = open_context(settings)
    try:
        with ctx.tx() as s, tmp.open("w", encoding="utf-8") as fh:
            n = write_jsonl(s, fh, include_unsure=include_unsure)
            audit.append(s, actor=actor, action="reviews.exported", obj="reviews", detail={"rows": n})
        tmp.replace(out)
        return n
    finally:
        tmp.unlink(missing_ok=True)
        ctx.engine.dispose()
