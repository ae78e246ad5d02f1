"""Rendering the result page from synthetic reports: wording, gauge, optional fields, escaping."""

from __future__ import annotations

import math
import re

import pytest
from tests.reports import detector, image_b64, video_report
from tests.web.synthetic import RichProvenance, audio_report, image_report

from veracity.report.model import FaceSummary, Provenance
from veracity.web.templating import environment
from veracity.web.text import NOT_APPLICABLE_TEXT, reason_text
from veracity.web.view import (
    GROUND_TRUTH,
    JobView,
    data_uri,
    detector_cards,
    face_views,
    gauge,
    provenance_view,
    result_context,
    review_queue_order,
    tree,
)

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _render(report: object, credential: dict[str, object] | None = None, **extra: object) -> str:
    job = JobView(id="job1", status="done", source_name="x")
    ctx = result_context(report, job, credential=credential)  # type: ignore[arg-type]
    return (
        environment()
        .get_template("result.html")
        .render(
            request_path="/ui/jobs/job1",
            who=None,
            nav=[],
            prefix="/ui",
            csrf="tok",
            csrf_field="csrf_token",
            can_review=True,
            ground_truth=GROUND_TRUTH,
            **ctx,
            **extra,
        )
    )


@pytest.mark.parametrize(("score", "end_x", "end_y"), [(0.0, None, None), (0.5, 100.0, 20.0), (1.0, 180.0, 100.0)])
def test_gauge_arc_ends_where_the_score_points(score: float, end_x: float | None, end_y: float | None) -> None:
    g = gauge(score, "suspicious")
    assert g.text == f"{score:.2f}"
    if end_x is None:
        assert g.arc == ""  # nothing to fill at zero
        assert (g.tip_x, g.tip_y) == (20.0, 100.0)
    else:
        nums = [float(v) for v in g.arc.split()[-2:]]
        assert math.isclose(nums[0], end_x, abs_tol=0.1)
        assert math.isclose(nums[1], end_y, abs_tol=0.1)


def test_gauge_without_score_draws_no_arc() -> None:
    g = gauge(None, "inconclusive")
    assert (g.arc, g.text, g.score) == ("", "—", None)


def test_reasons_are_plain_sentences_and_unknown_codes_still_named() -> None:
    ctx = result_context(video_report())
    texts = dict(ctx["reasons"])
    assert texts["lip_audio_mismatch"].startswith("Lip movements")
    assert "weird new code" in texts["weird_new_code"]
    for code in ("declared_ai_generated", "watermark_detected", "credential_invalid", "synthetic_voice"):
        assert "Reported as" not in reason_text(code)


def test_detector_cards_explain_applied_and_skipped() -> None:
    cards = {c.name: c for c in detector_cards(video_report())}
    assert cards["av_sync"].why.startswith("Flagged:")
    assert cards["temporal"].why == "Looked and found nothing unusual."
    assert cards["spectral"].why == NOT_APPLICABLE_TEXT["region_too_small"]
    assert "mouth" in cards["av_sync"].looks_at
    assert cards["av_sync"].series_colour is not None  # it has a line on the timeline
    assert cards["spectral"].series_colour is None
    order = [c.name for c in detector_cards(video_report())]
    assert order == ["av_sync", "temporal", "spectral"]  # strongest applied first, skipped last


def test_data_uri_accepts_images_only() -> None:
    png = image_b64(fmt="PNG")
    assert data_uri(png) == f"data:image/png;base64,{png}"
    assert data_uri(f"data:image/jpeg;base64,{image_b64()}") is not None
    assert data_uri("javascript:alert(1)") is None
    assert data_uri('data:image/png;base64,AAA" onerror="x') is None
    assert data_uri("aGVsbG8=") is None  # base64, but not an image
    assert data_uri(None) is None


def test_typed_heatmaps_without_a_track_are_shown_apart_not_printed() -> None:
    """A whole-picture heatmap (synthetic_image's) is drawn on its own; evidence is only numbers."""
    heat = image_b64((255, 0, 0), "PNG")
    face = FaceSummary(track_id=1, first_s=0.0, last_s=2.0, observations=5, crop_jpeg_b64=[image_b64(), image_b64()])
    det = detector("synthetic_image", 0.7, weight=1.0, evidence={"n": 2},
                   heatmaps=[{"jpeg_b64": heat, "t": 0.0, "score": 0.7}])
    report = video_report(faces=[face], detectors=[det])
    views = face_views(report)
    assert len(views[0].crops) == 2 and not views[0].has_heatmap
    ctx = result_context(report)
    assert [h.detector for h in ctx["evidence_heatmaps"]] == ["synthetic_image"]  # no track id: shown apart
    card = ctx["detectors"][0]
    assert [k for k, _ in card.evidence] == ["n"] and [h.score for h in card.heatmaps] == [0.7]
    doc = _render(report)
    assert "synthetic_image heatmap · at 0.00 s · score 0.70" in doc
    assert doc.count(f"data:image/png;base64,{heat}") >= 2  # the detector card and the loose heatmaps


def test_face_artifacts_heatmaps_go_under_their_track() -> None:
    """The learned face detector's evidence: blended overlays with track ids, times and scores."""
    overlay = image_b64((250, 80, 40))
    ev = {
        "heatmap_jpeg_b64": [overlay, overlay, "not an image"],
        "heatmap_track_ids": [1, 7, 1],
        "heatmap_t": [0.5, 1.25, 2.0],
        "heatmap_scores": [0.91, 0.4, 0.2],
        "heatmap_cells": [0.1, 0.9, 0.3],
    }
    faces = [
        FaceSummary(track_id=1, first_s=0.0, last_s=3.0, observations=9, crop_jpeg_b64=[image_b64()]),
        FaceSummary(track_id=2, first_s=0.0, last_s=3.0, observations=9, crop_jpeg_b64=[image_b64()]),
    ]
    report = video_report(faces=faces, detectors=[detector("face_artifacts", 0.8, weight=1.0, evidence=ev)])
    views = {v.track_id: v for v in face_views(report)}
    assert [h.caption for h in views[1].heatmaps] == ["face_artifacts heatmap · at 0.50 s · score 0.91"]
    assert views[1].has_heatmap and not views[2].has_heatmap
    ctx = result_context(report)
    assert [h.track_id for h in ctx["evidence_heatmaps"]] == [7]  # no such face: listed on its own
    card = ctx["detectors"][0]
    assert card.evidence == []  # image lists and their indices are drawn, not printed
    doc = _render(report)
    assert doc.count('class="crop heatmap"') == 2
    assert "face_artifacts heatmap · at 0.50 s · score 0.91" in doc


def test_plain_faces_have_no_heatmap() -> None:
    views = face_views(video_report())
    assert len(views[0].crops) == 1
    assert not views[0].has_heatmap


def test_provenance_states_in_words() -> None:
    assert provenance_view(Provenance()).state_tone == "none"
    absent = provenance_view(Provenance(checked=True))
    assert "No content credential" in absent.state_text
    valid = provenance_view(
        Provenance(
            checked=True,
            credential_present=True,
            validation_state="Valid",
            status_codes=["signingCredential.untrusted"],
        )
    )
    assert valid.state_text == "Signed, signer not on your trust list."
    assert "invalid" not in valid.state_text.lower()
    trusted = provenance_view(Provenance(checked=True, credential_present=True, validation_state="Trusted"))
    assert trusted.state_tone == "good"
    bad = provenance_view(Provenance(checked=True, credential_present=True, validation_state="Invalid"))
    assert bad.state_tone == "bad"


def test_provenance_renders_whatever_fields_exist() -> None:
    prov = RichProvenance(
        checked=True,
        credential_present=True,
        validation_state="Valid",
        signer="Example CA",
        digital_source_type="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        watermarks=["StableDiffusionV1"],
        claim_generator="veracity/0.1",
        actions=[{"action": "c2pa.created", "softwareAgent": "gen"}],
        ingredients=[{"title": "parent.jpg", "ingredients": [{"title": "grandparent.jpg"}]}],
    )
    view = provenance_view(prov)
    assert view.signer == "Example CA"
    assert view.digital_source_text == "Generated by a trained AI model"
    assert view.actions[0].key == "c2pa.created"
    assert view.ingredients[0].key == "parent.jpg"
    assert view.ingredients[0].children[0].children[0].key == "grandparent.jpg"  # the tree keeps depth
    assert [f.key for f in view.facts] == ["claim_generator"]
    doc = _render(video_report(provenance=prov))
    assert "grandparent.jpg" in doc
    assert "Signed, signer not on your trust list." in doc
    assert "StableDiffusionV1" in doc


def test_tree_bounds_depth() -> None:
    deep: object = "leaf"
    for _ in range(30):
        deep = {"x": deep}
    node = tree(deep)
    depth = 0
    while node.children:
        node = node.children[0]
        depth += 1
    assert depth <= 13


def test_result_page_escapes_untrusted_strings_and_loads_nothing_external() -> None:
    evil = '<script>alert("x")</script>'
    report = video_report(
        reasons=[evil], warnings=[evil], detectors=[detector("av_sync", 0.9, weight=1.0, evidence={evil: evil})]
    )
    doc = _render(report)
    assert "<script>alert" not in doc
    assert "&lt;script&gt;" in doc
    assert not EXTERNAL.search(doc)
    assert "https://" not in doc.replace("https://example.org", "")


def test_result_page_sections_per_media_kind() -> None:
    video = _render(video_report())
    assert "data-timeline" in video and "<polyline" in video
    assert 'id="timeline-data"' in video
    assert 'href="/ui/jobs/job1/report.html"' in video and 'href="/ui/jobs/job1/report.json"' in video
    image = _render(image_report())
    assert "No timeline for a still image." in image
    audio = _render(audio_report())
    assert "No face was tracked." in audio
    assert 'aria-label="Deepfake score — of 1, label inconclusive"' in audio
    for doc in (video, image, audio):
        assert doc.count('name="ground_truth"') == len(GROUND_TRUTH)


def test_review_queue_puts_coin_tosses_first_then_recent() -> None:
    from datetime import UTC, datetime

    def job(i: str, score: float | None, day: int) -> JobView:
        return JobView(id=i, status="done", source_name=i, score=score, created_at=datetime(2026, 1, day, tzinfo=UTC))

    ordered = review_queue_order([job("sure", 0.9, 5), job("old", 0.5, 1), job("new", 0.52, 3), job("none", None, 9)])
    assert [j.id for j in ordered] == ["new", "old", "sure", "none"]


def test_full_credential_fills_actions_ingredients_and_code_explanations() -> None:
    """The report's summary plus the manifest re-read from kept media (provenance's verify shape)."""
    prov = Provenance(
        checked=True, credential_present=True, validation_state="Valid", status_codes=["signingCredential.untrusted"]
    )
    credential = {
        "manifest": {
            "label": "urn:uuid:1",
            "signer": "C2PA Test Signing Cert",
            "actions": [{"action": "c2pa.opened", "software_agent": "editor"}],
            "ingredients": [{"title": "A.jpg", "relationship": "parentOf", "ingredients": [{"title": "B.jpg"}]}],
        },
        "status": [{"code": "signingCredential.untrusted", "explanation": "signer not on the trust list"}],
    }
    view = provenance_view(prov, credential)
    assert view.signer == "C2PA Test Signing Cert"
    assert [a.key for a in view.actions] == ["c2pa.opened"]
    assert view.ingredients[0].key == "A.jpg"
    assert view.status_codes == [("signingCredential.untrusted", "signer not on the trust list")]
    assert provenance_view(prov).status_codes == [("signingCredential.untrusted", "")]
    doc = _render(video_report(provenance=prov), credential=None)
    assert "signingCredential.untrusted" in doc


def test_stage_text() -> None:
    from veracity.web.text import stage_text

    assert stage_text("faces", "running") == "Finding and tracking faces"
    assert stage_text("av_sync", "running") == "Running the av sync detector"
    assert stage_text(None, "queued") == "Waiting in the queue"
