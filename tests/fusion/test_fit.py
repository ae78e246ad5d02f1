"""Fusion fitting on hand-made detector scores."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.evaluation.runner import DetectorScore, Record
from veracity.fusion import FusionParams, fuse
from veracity.fusion.fit import fit_fusion, results_of, sample_weights


def _records(n: int = 60, seed: int = 0) -> list[Record]:
    """'good' separates the classes, 'noise' does not, 'video_only' applies to reals only."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = i % 2
        good = float(np.clip(0.25 + 0.5 * y + rng.normal(0, 0.12), 0.01, 0.99))
        noise = float(rng.uniform(0.05, 0.95))
        dets = {
            "good": DetectorScore(score=good, confidence=0.8),
            "noise": DetectorScore(score=noise, confidence=0.8),
            "video_only": DetectorScore(score=None if y else 0.2, confidence=0.5 if not y else 0.0,
                                        not_applicable="no_face" if y else None),
        }
        out.append(Record(rel=f"f{i}.png", label=y, source="a" if i < n // 2 else "b", method="m" if y else "real",
                          kind="image", detectors=dets))
    return out


@pytest.fixture
def base() -> FusionParams:
    return FusionParams.load("fusion-v1").model_copy(update={"weights": {"video_only": 0.3}})


def test_fit_weights_the_informative_detector(base: FusionParams) -> None:
    result = fit_fusion(_records(), base, version="fusion-test")
    p = result.params
    assert p.fitted and p.version == "fusion-test" and p.calibration is not None
    assert p.weights["good"] > 0
    assert p.weights["good"] > p.weights["noise"]
    assert result.report["detectors"]["video_only"]["source"] == "prior"
    assert p.weights["video_only"] == pytest.approx(0.3)
    assert result.report["loss_fitted"] <= result.report["loss_base_weights"]


def test_fitted_params_round_trip_and_fuse(base: FusionParams) -> None:
    p = fit_fusion(_records(), base, version="fusion-test").params
    again = FusionParams.model_validate(p.model_dump(mode="json"))
    assert again == p
    recs = _records(20, seed=5)
    fake = [r for r in recs if r.label == 1]
    real = [r for r in recs if r.label == 0]
    s_fake = np.mean([fuse(results_of(r), p).score for r in fake])
    s_real = np.mean([fuse(results_of(r), p).score for r in real])
    assert s_fake > s_real


def test_fit_refuses_one_class(base: FusionParams) -> None:
    with pytest.raises(ValueError, match="both classes"):
        fit_fusion([r for r in _records() if r.label == 1], base, version="x")


def test_sample_weights_balance_classes_and_sources() -> None:
    recs = _records(40)
    w = sample_weights(recs)
    y = np.array([r.label for r in recs])
    assert w.mean() == pytest.approx(1.0)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())


def test_calibration_shifts_the_fused_logit() -> None:
    from veracity.fusion import Calibration

    v1 = FusionParams.load("fusion-v1").model_copy(update={"weights": {"good": 1.0}})
    assert FusionParams.load("fusion-v1").calibration is None
    results = results_of(_records(2)[1])
    plain = fuse(results, v1).score
    ident = fuse(results, v1.model_copy(update={"calibration": Calibration(slope=1.0, intercept=0.0)})).score
    up = fuse(results, v1.model_copy(update={"calibration": Calibration(slope=1.0, intercept=1.0)})).score
    assert plain is not None and ident is not None and up is not None
    assert ident == pytest.approx(plain)
    assert up > plain


def test_packaged_fitted_fusion_was_fitted_on_train_only() -> None:
    v2 = FusionParams.load("fusion-v2")
    assert v2.fitted and v2.calibration is not None
    data = v2.fit["data"]
    assert data["split"] == "train"
    assert data["folders"] and all(folder.startswith("train/") for folder in data["folders"])
    assert v2.thresholds.suspicious < v2.thresholds.manipulated
