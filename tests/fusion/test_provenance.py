"""Provenance on top of the detector verdict: declarations raise, nothing lowers."""

from __future__ import annotations

import pytest

from veracity.fusion import FusionParams, Verdict, apply_provenance


@pytest.fixture
def params() -> FusionParams:
    return FusionParams.load()


def test_declared_ai_makes_synthetic_and_raises_the_score(params: FusionParams) -> None:
    v = apply_provenance(Verdict(score=0.2, label="authentic", reasons=()), ["declared_ai_generated"], params)
    assert v.label == "synthetic"
    assert v.score == params.provenance_synthetic_score
    assert v.reasons == ("declared_ai_generated",)


def test_watermark_with_no_detector_applied(params: FusionParams) -> None:
    v = apply_provenance(Verdict(score=None, label="inconclusive", reasons=()), ["watermark_detected"], params)
    assert (v.label, v.score, v.reasons) == ("synthetic", params.provenance_synthetic_score, ("watermark_detected",))


def test_never_lowers_a_high_score(params: FusionParams) -> None:
    high = Verdict(score=0.99, label="manipulated", reasons=("lip_audio_mismatch",))
    v = apply_provenance(high, ["declared_ai_generated", "watermark_detected"], params)
    assert v.score == 0.99
    assert v.reasons == ("declared_ai_generated", "watermark_detected", "lip_audio_mismatch")
    # A camera credential or metadata facts are not reasons here: nothing changes.
    assert apply_provenance(high, ["metadata_declares_ai"], params) == high
    assert apply_provenance(high, [], params) == high


def test_tampered_credential_is_suspicious_without_touching_the_score(params: FusionParams) -> None:
    v = apply_provenance(Verdict(score=0.1, label="authentic", reasons=()), ["credential_invalid"], params)
    assert (v.label, v.score, v.reasons) == ("suspicious", 0.1, ("credential_invalid",))
    m = apply_provenance(Verdict(score=0.9, label="manipulated", reasons=("x",)), ["credential_invalid"], params)
    assert (m.label, m.score, m.reasons) == ("manipulated", 0.9, ("x", "credential_invalid"))
