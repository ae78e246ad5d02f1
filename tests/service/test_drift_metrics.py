"""/metrics drift: the PSI of recent scores per detector and kind against the fusion reference."""

from __future__ import annotations

import json

from prometheus_client.core import Metric

from veracity.fusion.drift import histogram
from veracity.service.db import make_engine, make_sessionmaker
from veracity.service.metrics import _DatabaseCollector
from veracity.service.models import Base, DetectorScore, Job


def _head(kind: str) -> str:
    return json.dumps({"schema_version": "1.0", "veracity_version": "0", "source": {"name": "x", "sha256": "a" * 64,
                       "size_bytes": 1}, "media": {"kind": kind, "container": "mp4"}})


def _gauge(metrics: list[Metric], name: str) -> dict[tuple[str, str], float]:
    fam = next(m for m in metrics if m.name == name)
    return {(s.labels["detector"], s.labels["kind"]): s.value for s in fam.samples}


def test_psi_is_low_for_reference_like_traffic_and_high_after_a_shift() -> None:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    sessions = make_sessionmaker(engine)
    ref = [0.05 + 0.09 * (i % 10) for i in range(200)]
    with sessions.begin() as s:
        for i in range(40):
            s.add(Job(id=f"v{i}", status="succeeded", result=_head("video"), deepfake_score=0.5))
            s.add(Job(id=f"i{i}", status="succeeded", result=_head("image"), deepfake_score=0.5))
    with sessions.begin() as s:
        for i in range(40):
            s.add(DetectorScore(job_id=f"v{i}", detector="face_artifacts", score=ref[i]))
            s.add(DetectorScore(job_id=f"i{i}", detector="face_artifacts", score=0.97))
    collector = _DatabaseCollector(sessions, lambda: None)
    collector._reference = {"video": {"face_artifacts": histogram(ref)}, "image": {"face_artifacts": histogram(ref)}}
    metrics = list(collector.collect())
    psi = _gauge(metrics, "veracity_score_psi")
    n = _gauge(metrics, "veracity_score_psi_samples")
    assert psi[("face_artifacts", "video")] < 0.1
    assert psi[("face_artifacts", "image")] > 1.0  # every recent image score in the top bin
    assert n[("face_artifacts", "video")] == 40
    assert ("fused", "video") not in psi  # no reference for the fused score here
