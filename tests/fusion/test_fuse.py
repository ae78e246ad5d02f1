"""Fusion rules on hand-made detector results."""

from __future__ import annotations

import pytest

from veracity.detectors.base import DetectorResult
from veracity.errors import ConfigError
from veracity.fusion import FusionParams, fuse


def _r(name: str, score: float | None, conf: float = 1.0, reasons: tuple[str, ...] = ()) -> DetectorResult:
    if score is None:
        return DetectorResult.skipped(name, "t", "no_face")
    return DetectorResult(name=name, version="t", score=score, confidence=conf, reasons=reasons)


@pytest.fixture
def params() -> FusionParams:
    return FusionParams.load()


def test_nothing_applied_is_inconclusive(params: FusionParams) -> None:
    v = fuse([_r("av_sync", None), _r("temporal", None)], params)
    assert v.score is None
    assert v.label == "inconclusive"


def test_not_applied_is_left_out_not_half(params: FusionParams) -> None:
    alone = fuse([_r("av_sync", 0.95, reasons=("lip_audio_mismatch",))], params)
    with_skips = fuse(
        [_r("av_sync", 0.95, reasons=("lip_audio_mismatch",)), _r("temporal", None), _r("physiology", None)], params
    )
    assert alone.score == pytest.approx(with_skips.score)
    assert with_skips.label == "manipulated"
    assert with_skips.reasons == ("lip_audio_mismatch",)


def test_confident_low_scores_are_authentic(params: FusionParams) -> None:
    v = fuse([_r("av_sync", 0.05), _r("temporal", 0.1), _r("physiology", 0.2)], params)
    assert v.label == "authentic"
    assert v.reasons == ()


def test_one_weak_detector_cannot_call_manipulated(params: FusionParams) -> None:
    v = fuse([_r("spectral", 0.95, conf=0.1, reasons=("spectral_artifacts",))], params)
    assert v.score is not None and v.score < params.thresholds.manipulated
    assert v.label in {"suspicious", "authentic", "inconclusive"}


def test_shares_sum_to_one(params: FusionParams) -> None:
    v = fuse([_r("av_sync", 0.4), _r("spectral", 0.7, conf=0.5)], params)
    assert sum(v.weights.values()) == pytest.approx(1.0)


def test_unknown_parameter_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        FusionParams.load("fusion-v999")


def test_result_validation() -> None:
    with pytest.raises(ValueError, match="outside"):
        DetectorResult(name="x", version="1", score=1.5)
    with pytest.raises(ValueError, match="must say why"):
        DetectorResult(name="x", version="1", score=None)


def test_too_little_evidence_is_inconclusive_but_keeps_the_score(params: FusionParams) -> None:
    thin = params.model_copy(update={"min_evidence_mass": 0.15})
    v = fuse([_r("spectral", 0.6, conf=0.5, reasons=("spectral_artifacts",))], thin)  # mass 0.2 x 0.5 = 0.1
    assert v.label == "inconclusive"
    assert v.score is not None and 0.5 < v.score < 0.6
    assert v.reasons == ()
    strong = fuse([_r("spectral", 0.6, conf=0.5), _r("av_sync", 0.9, reasons=("lip_audio_mismatch",))], thin)
    assert strong.label != "inconclusive"


def test_detectors_at_chance_on_eval_weigh_nothing(params: FusionParams) -> None:
    v = fuse([_r("synthetic_speech", 0.99, reasons=("synthetic_voice",))], params)
    assert v.score is None and v.label == "inconclusive"
