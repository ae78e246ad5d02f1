"""Every eval video and image in ../shared/data analyses without error and validates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from veracity.pipeline import Analyzer
from veracity.report.model import Report

SCHEMA = Report.model_json_schema()
pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Analyzer]:
    a = Analyzer()
    yield a
    a.close()


def _files(shared: Path, sub: str) -> list[Path]:
    return sorted(p for p in (shared / sub).rglob("*") if p.is_file())


def test_every_eval_video_and_image(shared_data: Path, analyzer: Analyzer) -> None:
    files = _files(shared_data, "eval/video") + _files(shared_data, "eval/image")
    assert len(files) > 100
    failures = []
    for path in files:
        try:
            report = analyzer.analyze(path)
            jsonschema.validate(report.model_dump(mode="json"), SCHEMA)
        except Exception as exc:  # collect all, then fail with the list
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_talking_head_gets_faces_and_sync(shared_data: Path, analyzer: Analyzer) -> None:
    report = analyzer.analyze(shared_data / "eval/video/sadtalker_hdtf_RD_Radio34_000.mp4")
    assert report.faces, "a frontal talking head must be found"
    main = max(report.faces, key=lambda f: f.observations)
    assert main.observations >= 100
    assert main.crop_jpeg_b64
    av = next(d for d in report.detectors if d.name == "av_sync")
    assert av.applied and av.score is not None
    assert report.media.has_audio
    assert report.timeline and max(p.t for p in report.timeline) > 7.0


def test_audio_file_is_scored_by_the_speech_detector_alone(shared_data: Path, analyzer: Analyzer) -> None:
    wav = next((shared_data / "eval/audio/real").glob("*.wav"))
    report = analyzer.analyze(wav)
    assert report.media.kind == "audio"
    assert {d.name for d in report.detectors if d.applied} == {"synthetic_speech"}
    speech = next(d for d in report.detectors if d.name == "synthetic_speech")
    # fusion-v3 (the default for audio) fuses the speech head, which has not shown power across
    # sources: its score is the fused one, and the label can only be inconclusive or suspicious.
    assert speech.score is not None and speech.weight > 0
    assert report.deepfake_score is not None and report.label in ("inconclusive", "suspicious")
    assert next(d for d in report.detectors if d.name == "synthetic_image").not_applicable == "not_image"
