"""Report builders shared by the report and web tests: one valid synthetic video report to
vary field by field, and the pieces it is made of."""

from __future__ import annotations

import base64
import io

from PIL import Image

from veracity.report.model import (
    DetectorReport,
    FaceSummary,
    MediaSummary,
    Provenance,
    Report,
    SourceInfo,
    TimelinePoint,
)

SHA = "ab" * 32


def image_b64(colour: tuple[int, int, int] = (200, 150, 120), fmt: str = "JPEG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def detector(name: str, score: float | None, **kw: object) -> DetectorReport:
    fields: dict[str, object] = {
        "name": name,
        "version": f"{name}-v1",
        "applied": score is not None,
        "score": score,
        "confidence": 0.8 if score is not None else 0.0,
        "elapsed_ms": 12.5,
    }
    fields.update(kw)
    return DetectorReport.model_validate(fields)


def video_report(**kw: object) -> Report:
    fields: dict[str, object] = {
        "veracity_version": "0.1.0",
        "source": SourceInfo(name="clip.mp4", sha256=SHA, size_bytes=2_345_678),
        "media": MediaSummary(
            kind="video",
            container="mp4",
            width=640,
            height=360,
            duration_s=4.0,
            fps=25.0,
            frame_count=100,
            video_codec="h264",
            audio_codec="aac",
            has_audio=True,
            audio_sample_rate=16000,
            frames_analysed=40,
            dense_windows=[(1.0, 2.0)],
        ),
        "deepfake_score": 0.82,
        "label": "manipulated",
        "reasons": ["lip_audio_mismatch", "weird_new_code"],
        "provenance": Provenance(checked=True),
        "detectors": [
            detector(
                "av_sync",
                0.9,
                reasons=["lip_audio_mismatch"],
                weight=0.7,
                evidence={"corr": 0.12, "lag_frames": 3, "speech": True},
            ),
            detector("temporal", 0.4, weight=0.3, evidence={"jitter": 1.5}),
            detector("spectral", None, not_applicable="region_too_small"),
        ],
        "timeline": [
            TimelinePoint(t=t / 2, faces=1 if t != 3 else 0, scores={"av_sync": 0.5 + t / 20, "temporal": 0.4 - t / 40})
            for t in range(9)
        ],
        "faces": [FaceSummary(track_id=0, first_s=0.0, last_s=4.0, observations=38, crop_jpeg_b64=[image_b64()])],
        "warnings": ["audio track shorter than video"],
        "model_versions": {"av_sync": "av_sync-v1"},
        "fusion_version": "fusion-v1",
        "timings_ms": {"total": 480.0},
        "elapsed_ms": 480.0,
    }
    fields.update(kw)
    return Report.model_validate(fields)
