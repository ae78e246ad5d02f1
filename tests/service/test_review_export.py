"""`veracity review export`: reviewed jobs as JSONL calibration rows, audited, unsure left out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from tests.web.synthetic import audio_report, image_report, video_report

from veracity.config import Settings
from veracity.report.model import Report
from veracity.service import audit, auth, jobs
from veracity.service.context import open_context
from veracity.service.models import AuditEntry, Job, utcnow
from veracity.service.review_export import export_reviews
from veracity.service.schemas import ReviewCreate


def _seed(settings: Settings) -> dict[str, str]:
    """Four finished jobs (three reviewed: manipulated, authentic, unsure) and one queued job."""
    ctx = open_context(settings)
    ids: dict[str, str] = {}
    try:
        with ctx.tx() as s:
            row, _ = auth.create_key(s, role="reviewer", name="rev")
            who = auth.Principal(key_id=row.id, role="reviewer")
            reports: dict[str, Report | None] = {
                "fake": video_report(),
                "real": image_report(),
                "unsure": audio_report(),
                "unreviewed": video_report(),
                "queued": None,
            }
            for name, report in reports.items():
                job = Job(
                    id=jobs.new_job_id(),
                    status="succeeded" if report else "queued",
                    progress=1.0,
                    owner_key_id=row.id,
                    source_name=f"{name}.bin",
                    options={},
                    attempts=0,
                    webhook_attempts=0,
                    keep_media=False,
                    created_at=utcnow(),
                    result=report.model_dump_json() if report else None,
                    label=report.label if report else None,
                    deepfake_score=report.deepfake_score if report else None,
                )
                s.add(job)
                s.flush()
                ids[name] = job.id
            for name, label in (("fake", "manipulated"), ("real", "authentic"), ("unsure", "unsure")):
                jobs.review_job(s, who, ids[name], ReviewCreate(label=label, comment=f"{name} by eye"))  # type: ignore[arg-type]
    finally:
        ctx.engine.dispose()
    return ids


def test_export_rows_targets_and_audit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ids = _seed(settings)
    out = tmp_path / "out" / "reviews.jsonl"
    assert export_reviews(settings, out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {r["job_id"]: r for r in rows}
    assert set(by_id) == {ids["fake"], ids["real"]}
    fake = by_id[ids["fake"]]
    assert (fake["ground_truth"], fake["target"], fake["media_kind"]) == ("manipulated", 1, "video")
    assert fake["model"]["label"] == "manipulated"
    assert fake["detectors"]["av_sync"]["score"] == 0.9
    assert fake["detectors"]["spectral"]["applied"] is False
    assert by_id[ids["real"]]["target"] == 0
    assert export_reviews(settings, out, include_unsure=True) == 3
    unsure = [json.loads(line) for line in out.read_text().splitlines() if ids["unsure"] in line]
    assert unsure[0]["target"] is None
    assert not list(out.parent.glob("*.part"))
    ctx = open_context(settings)
    try:
        with ctx.tx() as s:
            assert audit.verify(s).ok
            actions = [e.action for e in s.scalars(select(AuditEntry))]
    finally:
        ctx.engine.dispose()
    assert actions.count("reviews.exported") == 2


def test_cli_review_export(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _seed(settings)
    env = {**os.environ, "VERACITY_DATA_DIR": str(settings.data_dir)}
    exe = Path(sys.executable).with_name("veracity")
    out = tmp_path / "reviews.jsonl"
    done = subprocess.run(
        [str(exe), "review", "export", "--out", str(out), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rows": 2, "out": str(out)}
    assert len(out.read_text().splitlines()) == 2
