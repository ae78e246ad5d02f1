"""The HTML report: self-contained, escaped, timeline drawn as SVG."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.reports import SHA, detector, image_b64, video_report

from veracity.report.html import REASON_TEXT, render_html, write_html
from veracity.report.model import (
    FaceSummary,
    MediaSummary,
    Provenance,
    Report,
    SourceInfo,
    TimelinePoint,
)

EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _report(**kw: object) -> Report:
    fields: dict[str, object] = {
        "provenance": Provenance(note="not built yet"),
        "detectors": [
            detector("av_sync", 0.9, reasons=["lip_audio_mismatch"], weight=0.7,
                     evidence={"corr": 0.12, "lag_frames": 3, "speech": True,
                               "per_window": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]}),
            detector("temporal", 0.4, weight=0.3, evidence={"jitter": 1.5}),
            detector("spectral", None, not_applicable="no_faces_large_enough"),
        ],
        "model_versions": {"av_sync": "av_sync-v1", "temporal": "temporal-v1"},
        "timings_ms": {"probe": 3.0, "decode": 120.0, "faces": 300.0, "total": 480.0},
    }
    fields.update(kw)
    return video_report(**fields)


def _image_report() -> Report:
    return _report(
        source=SourceInfo(name="photo.jpg", sha256=SHA, size_bytes=50_000),
        media=MediaSummary(kind="image", container="jpeg", width=512, height=512,
                           frames_analysed=1),
        deepfake_score=0.2, label="authentic", reasons=[],
        detectors=[detector("spectral", 0.2, weight=1.0)],
        timeline=[TimelinePoint(t=0.0, faces=1, scores={"spectral": 0.2})],
        faces=[FaceSummary(track_id=0, first_s=0.0, last_s=0.0, observations=1)],
        warnings=[], timings_ms={"total": 50.0}, elapsed_ms=50.0,
    )


def _inconclusive_report() -> Report:
    return _report(
        media=MediaSummary(kind="audio", container="wav", duration_s=3.0, has_audio=True,
                           frames_analysed=0),
        deepfake_score=None, label="inconclusive", reasons=[],
        detectors=[detector("av_sync", None, not_applicable="no_video")],
        timeline=[], faces=[], warnings=[],
    )


class _Collector(HTMLParser):
    """Tags and attributes, and a check that the document parses into balanced sections."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(doc: str, name: str) -> list[dict[str, str | None]]:
    parser = _Collector()
    parser.feed(doc)
    return [attrs for tag, attrs in parser.tags if tag == name]


def _assert_self_contained(doc: str) -> None:
    assert not EXTERNAL.search(doc)
    assert "http://" not in doc
    assert "https://" not in doc
    assert "<script" not in doc.lower()
    assert "@import" not in doc
    for img in _tags(doc, "img"):
        assert (img.get("src") or "").startswith("data:image/jpeg;base64,")


def test_video_report_structure() -> None:
    doc = render_html(_report())
    assert doc.startswith("<!DOCTYPE html>")
    _assert_self_contained(doc)
    assert doc.count("<svg viewBox") == 1
    svg = doc[doc.index("<svg viewBox"): doc.index("</svg>", doc.index("<svg viewBox"))]
    assert svg.count("<polyline") == 2  # one per detector present in the timeline scores
    assert 'data-detector="av_sync"' in svg
    assert 'data-detector="temporal"' in svg
    assert 'data-detector="spectral"' not in svg
    assert svg.count("<circle") >= 18  # 9 dots per series, plus legend markers
    assert 'class="dense"' in svg
    assert ">av_sync</text>" in svg  # legend
    assert "faces" in svg
    assert 'data-label="manipulated"' in doc
    assert ">manipulated</span>" in doc
    assert "0.82" in doc
    assert REASON_TEXT["lip_audio_mismatch"] in doc
    assert "weird_new_code" in doc
    assert "no_faces_large_enough" in doc
    assert SHA in doc
    assert "audio track shorter than video" in doc
    assert "70%" in doc  # av_sync weight
    assert "… (6 items)" in doc
    imgs = _tags(doc, "img")
    assert len(imgs) == 1
    assert "Track 0" in doc


def test_polyline_points_stay_inside_plot() -> None:
    doc = render_html(_report())
    for match in re.finditer(r'<polyline points="([^"]+)"', doc):
        for pair in match.group(1).split():
            x, y = (float(v) for v in pair.split(","))
            assert 0 <= x <= 960
            assert 0 <= y <= 400


def test_file_name_is_escaped() -> None:
    evil = "<script>alert(1)</script>.mp4"
    report = _report(
        source=SourceInfo(name=evil, sha256=SHA, size_bytes=1),
        reasons=['"><img src=x onerror=alert(2)>'],
        warnings=["<b>bold</b>"],
    )
    doc = render_html(report)
    assert evil not in doc
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in doc
    assert "<script" not in doc.lower()
    assert "onerror=alert(2)>" not in doc
    assert "<b>bold</b>" not in doc
    assert _tags(doc, "img") == [{"alt": "face track 0 crop 1",
                                  "src": "data:image/jpeg;base64," + image_b64()}]


def test_detector_name_is_escaped_in_svg() -> None:
    name = "<evil&det>"
    report = _report(
        detectors=[detector(name, 0.5, weight=1.0)],
        timeline=[TimelinePoint(t=0.5 * i, faces=1, scores={name: 0.5}) for i in range(4)],
    )
    doc = render_html(report)
    assert name not in doc
    assert "&lt;evil&amp;det&gt;" in doc
    assert doc.count("<polyline") == 1


def test_still_image_has_no_timeline() -> None:
    doc = render_html(_image_report())
    _assert_self_contained(doc)
    assert "No timeline for a still image." in doc
    assert "<polyline" not in doc
    assert 'data-label="authentic"' in doc
    assert "No detector raised a reason." in doc
    assert "no crops kept" in doc


def test_inconclusive_without_score() -> None:
    doc = render_html(_inconclusive_report())
    _assert_self_contained(doc)
    assert 'data-label="inconclusive"' in doc
    assert "no detector applied" in doc
    assert "No timeline" in doc
    assert "<polyline" not in doc
    assert "no_video" in doc
    assert "No face was tracked." in doc


def test_timeline_without_scores_still_draws_faces() -> None:
    report = _report(timeline=[TimelinePoint(t=0.5 * i, faces=i % 2) for i in range(6)])
    doc = render_html(report)
    assert "<polyline" not in doc
    assert "no per-frame detector scores" in doc
    assert "face(s)" in doc


@pytest.mark.parametrize("duration", [0.4, 7.0, 95.0, 600.0])
def test_axis_ticks_for_any_duration(duration: float) -> None:
    media = MediaSummary(kind="video", container="mp4", duration_s=duration, fps=25.0,
                         frames_analysed=3)
    points = [TimelinePoint(t=duration * f, faces=1, scores={"av_sync": 0.5}) for f in (0, .5, 1)]
    doc = render_html(_report(media=media, timeline=points))
    ticks = re.findall(r'<text class="tk" x="[^"]+" y="[^"]+" text-anchor="middle">([^<]+)<', doc)
    assert 3 <= len(ticks) <= 12
    assert ticks[0] in {"0", "0:00"}


def test_write_html(tmp_path: Path) -> None:
    out = write_html(_report(), tmp_path / "sub" / "report.html")
    assert out.exists()
    assert out.read_text(encoding="utf-8") == render_html(_report())


def test_provenance_rows_are_shown_and_escaped() -> None:
    prov = Provenance(
        checked=True,
        credential_present=True,
        validation_state="Valid",
        status_codes=["signingCredential.untrusted"],
        watermarks=["veracity_v1"],
        trust="signed, signer not on your trust list",
        signer="<Dev> signer",
        issuer="Dev CA",
        metadata={"camera_make": "Canon"},
    )
    page = render_html(_report(provenance=prov))
    assert "signed, signer not on your trust list" in page
    assert "&lt;Dev&gt; signer (issuer Dev CA)" in page and "<Dev>" not in page
    assert "veracity_v1" in page and "Canon" in page


def test_face_artifacts_heatmap_is_shown_as_an_image_beside_the_track() -> None:
    heat = image_b64()
    det = detector("face_artifacts", 0.9, reasons=["blending_boundary"], weight=0.5,
                    evidence={"n_crops": 4, "heatmap_jpeg_b64": [heat], "heatmap_track_ids": [0],
                              "heatmap_t": [1.5], "heatmap_scores": [0.93]})
    page = render_html(_report(detectors=[det]))
    assert page.count(f"data:image/jpeg;base64,{heat}") >= 2  # evidence cell and the face track
    assert "face_artifacts heatmap at 1.50 s, score 0.93" in page
    assert f"<dd>{heat}" not in page  # not dumped as text
    assert "n_crops" in page


def test_heatmap_evidence_that_is_not_base64_is_dropped() -> None:
    det = detector("face_artifacts", 0.9, evidence={"heatmap_jpeg_b64": ['"><script>x</script>'],
                                                      "heatmap_track_ids": [0]})
    page = render_html(_report(detectors=[det]))
    assert "<script>x" not in page
