"""Per-kind fusion fitting on hand-made detector scores."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from veracity.detectors.base import DetectorResult
from veracity.evaluation.calibration import ece, results_of
from veracity.evaluation.runner import DetectorScore, Record
from veracity.fusion import FusionParams, fuse
from veracity.fusion.drift import histogram, psi
from veracity.train.fusion_fit import (
    fit_kind,
    fit_kinds,
    group_folds,
    isotonic,
    read_reviews,
    sample_weights,
    threshold_for_fnr,
    threshold_for_fpr,
)


def _records(n: int = 120, seed: int = 0, kind: str = "video") -> list[Record]:
    """'good' separates the classes, 'noise' does not, 'backwards' ranks them the wrong way,
    'face_only' applies to a third of the files only. Six sources, both classes in each."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = i % 2
        good = float(np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15), 0.01, 0.99))
        noise = float(rng.uniform(0.05, 0.95))
        back = float(np.clip(0.6 - 0.2 * y + rng.normal(0, 0.2), 0.01, 0.99))
        applies = i % 3 == 0
        dets = {
            "good": DetectorScore(score=good, confidence=0.8),
            "noise": DetectorScore(score=noise, confidence=0.8),
            "backwards": DetectorScore(score=back, confidence=0.8),
            "face_only": DetectorScore(score=good if applies else None, confidence=0.5 if applies else 0.0,
                                       not_applicable=None if applies else "no_face"),
        }
        out.append(Record(rel=f"train/{kind}/{i}.mp4", label=y, source=f"src{i % 6}", method="m" if y else "real",
                          kind=kind, detectors=dets))
    return out


def _fit(records: list[Record], **kw: object) -> FusionParams:
    fits = fit_kinds(records, group_of=lambda r: r.source, **kw)  # type: ignore[arg-type]
    base = FusionParams.load("fusion-v1")
    return base.model_copy(update={"version": "fusion-test", "kinds": {k: f.model for k, f in fits.items()}})


def test_fit_weights_power_and_zero_for_no_power() -> None:
    fit = fit_kind(_records(), "video", group_of=lambda r: r.source)
    d = fit.model.detectors
    assert d["good"].weight > 0 and d["good"].proven
    assert d["noise"].weight == 0 and not d["noise"].proven  # no measured power: reported, not fused
    assert d["backwards"].weight == 0  # never a flipped sign
    assert "no measured power" in d["backwards"].note
    assert fit.report["cv"]["folds"] >= 2 and fit.report["cv"]["groups"] == 6
    assert fit.report["cv"]["auc"] > 0.8
    th = fit.model.thresholds
    assert th.suspicious < th.manipulated and th.manipulated >= 0.5
    assert th.train_fpr_manipulated is not None and th.train_fpr_manipulated <= th.target_fpr_manipulated


def test_fused_score_separates_and_is_roughly_calibrated() -> None:
    params = _fit(_records())
    held = _records(400, seed=7)
    scores = [fuse(results_of(r), params, "video").score for r in held]
    y = [r.label for r in held]
    assert all(s is not None for s in scores)
    s = np.asarray(scores, dtype=float)
    assert s[np.asarray(y) == 1].mean() > s[np.asarray(y) == 0].mean() + 0.2
    assert ece(y, s) < 0.12


def test_authentic_needs_a_proven_detector_that_applied() -> None:
    params = _fit(_records())
    model = params.kinds["video"]
    real = [
        DetectorResult(name="good", version="t", score=0.05, confidence=0.8),
        DetectorResult(name="noise", version="t", score=0.5, confidence=0.8),
    ]
    v = fuse(real, params, "video")
    assert v.score is not None and v.score < model.thresholds.suspicious
    assert v.label == "authentic"
    # The proven detector did not apply: the remaining unweighted one cannot earn "authentic".
    only_noise = [DetectorResult.skipped("good", "t", "no_face"), real[1]]
    v2 = fuse(only_noise, params, "video")
    assert v2.label == "inconclusive"
    assert v2.not_checked is not None and "no face found" in v2.not_checked


def test_high_score_is_explained_by_the_detector_that_moved_it() -> None:
    params = _fit(_records())
    res = [
        DetectorResult(name="good", version="t", score=0.99, confidence=0.8, reasons=("blending_boundary",),
                       frame_scores={1.0: 0.4, 2.5: 0.99}, evidence={"top_track": 0}),
        DetectorResult(name="face_only", version="t", score=0.97, confidence=0.5),
        DetectorResult(name="noise", version="t", score=0.9, confidence=0.8),
    ]
    v = fuse(res, params, "video")
    assert v.label == "manipulated"
    assert v.explanations and v.explanations[0].detector in ("good", "face_only")
    good = next(e for e in v.explanations if e.detector == "good")
    assert good.t == pytest.approx(2.5) and good.region == "face #0" and "2.5 s" in good.text
    assert "noise" not in {e.detector for e in v.explanations}  # weight 0 moves nothing
    assert "blending_boundary" in v.reasons


def test_kind_without_model_falls_back_to_legacy_rule() -> None:
    params = _fit(_records())
    res = [DetectorResult(name="spectral", version="t", score=0.9, confidence=0.8)]
    assert fuse(res, params, "image").kind is None


def test_isotonic_calibration_is_monotone() -> None:
    params = _fit(_records(), calibration="isotonic")
    cal = params.kinds["video"].calibration
    assert cal.method == "isotonic" and cal.y == sorted(cal.y)
    assert cal.apply(-10) <= cal.apply(0) <= cal.apply(10)


def test_params_round_trip() -> None:
    params = _fit(_records())
    again = FusionParams.model_validate(json.loads(params.model_dump_json()))
    assert again == params


def test_group_folds_keep_groups_whole() -> None:
    groups = [f"g{i % 7}" for i in range(70)]
    folds = group_folds(groups, 5, seed=0)
    for g in set(groups):
        assert len({f for f, gg in zip(folds, groups, strict=True) if gg == g}) == 1
    assert len(set(folds)) == 5


def test_threshold_meets_the_false_positive_rate() -> None:
    reals = np.linspace(0.0, 1.0, 101)
    t, share = threshold_for_fpr(reals, 0.05, 0.5)
    assert share <= 0.05 and (reals >= t).mean() <= 0.05
    assert t >= 0.5


def test_authentic_threshold_meets_the_miss_rate_on_train_fakes() -> None:
    fakes = np.linspace(0.0, 1.0, 101)
    t = threshold_for_fnr(fakes, 0.05)
    assert (fakes < t).mean() <= 0.05 and (fakes < t + 0.011).mean() > 0.05  # the highest such threshold
    assert threshold_for_fnr(np.full(40, 0.3), 0.05) == 0.3  # ties: none below
    assert threshold_for_fnr(np.zeros(0), 0.05) == 0.0  # no fakes: nothing is authentic
    th = fit_kind(_records(), "video", group_of=lambda r: r.source).model.thresholds
    assert th.authentic is not None and 0 < th.authentic <= th.suspicious
    assert th.target_fnr_authentic == 0.05 and th.train_fnr_authentic is not None and th.train_fnr_authentic <= 0.05


def test_between_the_authentic_and_suspicious_thresholds_is_inconclusive_and_says_why() -> None:
    params = _fit(_records())
    th = params.kinds["video"].thresholds
    assert th.authentic is not None
    scores = {}
    for x in np.linspace(0.01, 0.99, 99):
        v = fuse([DetectorResult(name="good", version="t", score=float(x), confidence=0.8)], params, "video")
        assert v.score is not None
        scores[v.label] = v
        if v.score < th.authentic:
            assert v.label == "authentic" and v.not_checked is None
        elif v.score < th.suspicious:
            assert v.label == "inconclusive"
            assert v.not_checked is not None and "too little to call it either way" in v.not_checked
    assert {"authentic", "inconclusive", "suspicious"} <= set(scores)
    # Files fitted before the threshold existed keep their rule: everything below suspicious.
    legacy = params.model_copy(update={"kinds": {"video": params.kinds["video"].model_copy(update={
        "thresholds": th.model_copy(update={"authentic": None})})}})
    v = fuse([DetectorResult(name="good", version="t", score=0.3, confidence=0.8)], legacy, "video")
    assert v.score is not None and v.score < th.suspicious and v.label == "authentic"


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    ref = histogram(rng.beta(2, 5, 2000).tolist())
    same = histogram(rng.beta(2, 5, 2000).tolist())
    shifted = histogram(rng.beta(5, 2, 2000).tolist())
    assert psi(ref, same) < 0.05
    assert psi(ref, shifted) > 0.5
    assert sum(ref) == pytest.approx(1.0, abs=1e-3)


def test_isotonic_pools_violators() -> None:
    z = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    cal = isotonic(z, y, np.ones(4))
    assert cal.y == sorted(cal.y) and len(cal.x) == 3


def test_sample_weights_balance_classes_and_sources() -> None:
    recs = _records(60)
    w = sample_weights(recs)
    y = np.array([r.label for r in recs])
    assert w.mean() == pytest.approx(1.0)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())


def test_fit_refuses_one_class() -> None:
    with pytest.raises(ValueError, match="both classes"):
        fit_kind([r for r in _records() if r.label == 1], "video", group_of=lambda r: r.source)


def test_reviews_become_records(tmp_path: Path) -> None:
    rows = [
        {"job_id": "a", "sha256": "0" * 64, "media_kind": "image", "target": 1,
         "detectors": {"good": {"score": 0.9, "confidence": 0.8, "applied": True, "not_applicable": None}}},
        {"job_id": "b", "sha256": "1" * 64, "media_kind": "image", "target": None, "detectors": {}},
        {"job_id": "c", "sha256": "2" * 64, "media_kind": "image", "target": 0,
         "detectors": {"good": {"score": None, "confidence": 0.0, "applied": False, "not_applicable": "no_face"}}},
    ]
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recs = read_reviews(path)
    assert [r.label for r in recs] == [1, 0]  # "unsure" is left out
    assert recs[0].kind == "image" and recs[0].detectors["good"].score == 0.9
    assert recs[1].detectors["good"].not_applicable == "no_face"


def test_not_checked_says_what_ran_without_power() -> None:
    params = _fit(_records())
    res = [DetectorResult.skipped("good", "t", "no_face"), DetectorResult.skipped("face_only", "t", "no_face"),
           DetectorResult(name="noise", version="t", score=0.2, confidence=0.8)]
    v = fuse(res, params, "video")
    assert v.score is None and v.label == "inconclusive"
    assert v.not_checked is not None
    assert v.not_checked.startswith("no face found (good")
    assert "noise ran without measured power" in v.not_checked
    assert v.not_checked.endswith("no check with proven power on this kind applied")


def test_proven_needs_more_than_one_fake_source_and_cross_source_scores() -> None:
    one_source = [replace(r, source="dfl") if r.label == 1 else r for r in _records()]
    fit = fit_kind(one_source, "video", group_of=lambda r: r.source)
    good = fit.model.detectors["good"]
    assert good.weight > 0 and not good.proven  # fused, but power on one generator proves nothing
    assert "1 source" in fit.report["detectors"]["good"]["why_not_proven"]
    within = fit_kind(_records(), "video", group_of=lambda r: r.source, not_cross_source=["good"])
    assert within.model.detectors["good"].weight > 0 and not within.model.detectors["good"].proven


def test_without_a_proven_check_the_strongest_label_is_suspicious() -> None:
    params = _fit([replace(r, source="dfl") if r.label == 1 else r for r in _records()])
    hi = [DetectorResult(name="good", version="t", score=0.99, confidence=0.8, reasons=("blending_boundary",))]
    lo = [DetectorResult(name="good", version="t", score=0.01, confidence=0.8)]
    assert fuse(hi, params, "video").label == "suspicious"
    assert fuse(lo, params, "video").label == "inconclusive"
    proven = _fit(_records())
    assert fuse(hi, proven, "video").label == "manipulated"
    assert fuse(lo, proven, "video").label == "authentic"


def test_a_kind_wins_on_eval_only_without_accusing_more_reals() -> None:
    from veracity.train.fusion_fit import compare_on_eval

    new = _fit(_records())
    evals = _records(seed=1)
    comp = compare_on_eval(evals, new, FusionParams.load("fusion-v1"))
    assert comp["kinds_won"] == ["video"] and comp["beats_current"]
    model = new.kinds["video"]
    trigger_happy = new.model_copy(update={"kinds": {"video": model.model_copy(update={
        "thresholds": model.thresholds.model_copy(update={"manipulated": 0.02, "suspicious": 0.01})})}})
    comp2 = compare_on_eval(evals, trigger_happy, FusionParams.load("fusion-v1"))
    assert comp2["kinds_won"] == [] and "reals manipulated/synthetic" in comp2["why_per_kind"]["video"]
