"""Fit the per-kind fusion on detector scores from TRAIN data, never eval.

Per media kind (video, image, audio):

1. **Power.** A detector is a candidate when it applied to at least ``MIN_PER_CLASS`` reals and
   fakes of the kind and its score alone ranks them with a train-side AUC of at least
   ``FUSE_MIN_AUC``. Candidates enter by forward selection on the grouped-CV AUC: one is fused
   only when it raises that AUC by ``SELECT_MIN_GAIN`` and the set reaches ``FUSE_MIN_AUC``.
   Others keep weight 0: reported, not fused. ``proven`` (the detector may earn an
   ``authentic`` label) needs ``PROVEN_MIN_AUC`` and a positive fitted weight.
2. **Combination.** Logistic regression on the clipped logits of the candidates (a detector that
   did not apply contributes 0), L2-regularised, class- and source-balanced; a detector whose
   weight comes out negative is dropped and the rest refitted (a sign flip would be learning the
   data set, not the detector).
3. **Cross-validation by source.** Grouped k-fold over sources gives out-of-fold fused logits:
   their AUC is the reported CV AUC, the calibration (Platt or isotonic) is fitted on them (not
   on the in-sample logits, which are over-confident), and the thresholds are read off them for
   the stated false-positive rates on train-side reals.
4. **Drift reference.** The train-side score histogram of every detector and of the fused score,
   for the population stability index on ``/metrics``.

Caveat stated in the file: the learned detectors were themselves trained on parts of the train
split, so their train-side power is optimistic; the eval figures are the honest ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.evaluation.calibration import ece, kind_metrics, rescore_kind
from veracity.evaluation.runner import DetectorScore, Record
from veracity.fusion.drift import histogram
from veracity.fusion.fuse import (
    Calibrator,
    FusionParams,
    KindDetector,
    KindModel,
    KindThresholds,
)
from veracity.models.metrics import roc_auc
from veracity.train.common import group_of

F = npt.NDArray[np.float64]
MIN_PER_CLASS = 8
FUSE_MIN_AUC = 0.6
PROVEN_MIN_AUC = 0.75
L2 = 1.0
FOLDS = 5
LOGIT_CLIP = 6.0
TARGET_FPR_MANIPULATED = 0.05
TARGET_FPR_SUSPICIOUS = 0.15
# ``authentic`` only below the score under which at most this share of the train-side fakes
# (out of fold) fall: "found nothing" must mean something. At this rate a detector of AUC 0.75
# leaves most files between the thresholds (inconclusive), as it should.
TARGET_FNR_AUTHENTIC = 0.05
FLOOR_MANIPULATED = 0.5
FLOOR_SUSPICIOUS = 0.25
SELECT_MIN_GAIN = 0.005  # grouped-CV AUC a detector must add to be fused
MIN_FAKE_SOURCES = 2  # "proven" needs power shown on more than one generator


@dataclass(frozen=True, slots=True)
class KindFit:
    model: KindModel
    report: dict[str, Any]


def sample_weights(records: Sequence[Record]) -> F:
    """Each class weighs half; within a class, each source the same; mean weight 1."""
    w = np.zeros(len(records))
    for c in (0, 1):
        idx = [i for i, r in enumerate(records) if r.label == c]
        sources = sorted({records[i].source for i in idx})
        for s in sources:
            members = [i for i in idx if records[i].source == s]
            for i in members:
                w[i] = 1.0 / (2 * len(sources) * len(members))
    return w * (len(records) / w.sum()) if w.sum() > 0 else w


def logit(p: float, clip: float = LOGIT_CLIP) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-clip, min(clip, math.log(p / (1 - p))))


def features(records: Sequence[Record], names: Sequence[str], centers: dict[str, float] | None = None) -> F:
    """Clipped logits minus each detector's centre; 0 where it did not apply (neutral)."""
    x = np.zeros((len(records), len(names)))
    for i, r in enumerate(records):
        for j, n in enumerate(names):
            d = r.detectors.get(n)
            if d is not None and d.score is not None:
                x[i, j] = logit(d.score) - (centers or {}).get(n, 0.0)
    return x


def center_of(records: Sequence[Record], name: str) -> float:
    """Midway between the mean clipped logit of reals and of fakes where ``name`` applied."""
    means = []
    for c in (0, 1):
        v = [logit(d.score) for r in records if r.label == c and (d := r.detectors.get(name)) is not None
             and d.score is not None]
        means.append(float(np.mean(v)) if v else 0.0)
    return round(0.5 * (means[0] + means[1]), 5)


def _sig(z: F) -> F:
    out: F = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
    return out


def logistic(x: F, y: F, w: F, l2: float = L2) -> tuple[F, float]:
    """Weighted L2 logistic regression by Newton steps (the intercept is not penalised)."""
    xb = np.hstack([x, np.ones((len(y), 1))])
    beta = np.zeros(xb.shape[1])
    pen = np.full(xb.shape[1], l2)
    pen[-1] = 1e-6
    for _ in range(100):
        p = _sig(xb @ beta)
        grad = xb.T @ (w * (p - y)) + pen * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        beta = beta - step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return beta[:-1], float(beta[-1])


def nonnegative_logistic(x: F, y: F, w: F, names: Sequence[str]) -> tuple[dict[str, float], float]:
    keep = list(range(len(names)))
    while True:
        if not keep:
            return dict.fromkeys(names, 0.0), float(np.log(max((w * y).sum(), 1e-9) / max((w * (1 - y)).sum(), 1e-9)))
        coef, b = logistic(x[:, keep], y, w)
        if (coef > 0).all():
            weights = dict.fromkeys(names, 0.0)
            weights.update({names[k]: float(c) for k, c in zip(keep, coef, strict=True)})
            return weights, b
        keep = [k for k, c in zip(keep, coef, strict=True) if c > 0]


def group_folds(groups: Sequence[str], k: int, seed: int) -> list[int]:
    """Fold index per item: whole groups go to the fold holding the fewest items so far."""
    rng = np.random.default_rng(seed)
    names = sorted(set(groups))
    sizes = {g: sum(1 for x in groups if x == g) for g in names}
    order = sorted(names, key=lambda g: (-sizes[g], float(rng.random())))
    k = max(2, min(k, len(names)))
    load = [0] * k
    fold_of: dict[str, int] = {}
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    return [fold_of[g] for g in groups]


def platt(z: F, y: F, w: F) -> Calibrator:
    coef, b = logistic(z[:, None], y, w, l2=1e-4)
    return Calibrator(method="platt", slope=round(max(float(coef[0]), 1e-3), 6), intercept=round(b, 6))


def isotonic(z: F, y: F, w: F) -> Calibrator:
    """Weighted pool-adjacent-violators; stored as (x, y) knots at block centres."""
    order = np.argsort(z)
    zs, ys, ws = z[order], y[order], np.maximum(w[order], 1e-12)
    blocks: list[list[float]] = []  # [sum w*y, sum w, sum w*z]
    for zi, yi, wi in zip(zs, ys, ws, strict=True):
        blocks.append([wi * yi, wi, wi * zi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            a = blocks.pop()
            blocks[-1] = [blocks[-1][0] + a[0], blocks[-1][1] + a[1], blocks[-1][2] + a[2]]
    kx = [round(b[2] / b[1], 5) for b in blocks]
    ky = [round(min(max(b[0] / b[1], 0.001), 0.999), 5) for b in blocks]
    return Calibrator(method="isotonic", x=kx, y=ky)


def threshold_for_fpr(real_p: F, target: float, floor: float) -> tuple[float, float]:
    """The lowest threshold (4 decimals, rounded up) at which at most ``target`` of the train-side
    reals score at or above it (never below ``floor``), and the share it actually flags."""
    def up(v: float) -> float:
        return math.ceil(v * 10_000 + 1e-9) / 10_000

    cands = sorted({up(floor), *[up(float(v) + 1e-6) for v in real_p if v + 1e-6 > floor]})
    for t in cands:
        if t >= 1.0:
            break
        share = float((real_p >= t).mean()) if len(real_p) else 0.0
        if share <= target:
            return t, round(share, 4)
    return 0.999, round(float((real_p >= 0.999).mean()) if len(real_p) else 0.0, 4)


def threshold_for_fnr(fake_p: F, target: float) -> float:
    """The highest threshold (4 decimals, rounded down) below which at most ``target`` of the
    train-side fakes score: ``authentic`` needs a score under it. The (k+1)-th lowest fake, k the
    share allowed, has at most k fakes strictly below it, and rounding down only lowers that
    count, ties included. 0 (nothing authentic) without fakes."""
    if len(fake_p) == 0:
        return 0.0
    ordered = np.sort(np.asarray(fake_p, np.float64))
    k = int(math.floor(target * len(ordered) + 1e-9))  # this many fakes may fall below
    t = float(ordered[k]) if k < len(ordered) else 1.0
    return max(math.floor(t * 10_000) / 10_000, 0.0)


def _scorable(records: Sequence[Record], names: Sequence[str]) -> list[Record]:
    if not names:
        return list(records)
    return [r for r in records if any((d := r.detectors.get(n)) is not None and d.score is not None for n in names)]


def _oof(x: F, y: F, w: F, folds: Sequence[int], names: Sequence[str]) -> F:
    """Out-of-fold fused logits: each fold scored by a model fitted on the other folds."""
    z = np.zeros(len(y))
    for f in sorted(set(folds)):
        tr = np.asarray([g != f for g in folds])
        te = ~tr
        if len(set(y[tr].tolist())) < 2:  # a fold whose complement lacks a class: prior only
            continue
        wf, bf = nonnegative_logistic(x[tr], y[tr], w[tr], names)
        z[te] = x[te] @ np.asarray([wf[n] for n in names]) + bf if names else bf
    return z


def _oof_auc(records: Sequence[Record], names: Sequence[str], centers: dict[str, float],
             group_of: Callable[[Record], str], seed: int) -> float:
    y = np.asarray([r.label for r in records], dtype=np.float64)
    z = _oof(features(records, names, centers), y, sample_weights(records),
             group_folds([group_of(r) for r in records], FOLDS, seed), names)
    return roc_auc(y.astype(np.int64), z) if 0 < y.sum() < len(y) else 0.5


def fit_kind(records: Sequence[Record], kind: str, *, group_of: Callable[[Record], str], calibration: str = "platt",
             seed: int = 0, not_cross_source: Collection[str] = ()) -> KindFit:
    """``not_cross_source``: learned detectors whose held-out train scores were not made leaving
    whole sources out (``train/heldout.py``); they may be fused but never ``proven``."""
    usable = [r for r in records if r.error is None and r.kind == kind]
    y = np.asarray([r.label for r in usable], dtype=np.float64)
    if len(set(y.tolist())) < 2:
        raise ValueError(f"{kind}: fusion fit needs files of both classes")
    fake_sources = sorted({r.source for r in usable if r.label == 1})
    w = sample_weights(usable)
    names = sorted({n for r in usable for n in r.detectors})
    dets: dict[str, dict[str, Any]] = {}
    candidates: list[str] = []
    for n in names:
        pairs = [(r.label, d.score) for r in usable if (d := r.detectors.get(n)) is not None and d.score is not None]
        n_real = sum(1 for lab, _ in pairs if lab == 0)
        n_fake = len(pairs) - n_real
        auc = round(roc_auc([p[0] for p in pairs], [p[1] for p in pairs]), 4) if n_real and n_fake else None
        dets[n] = {"n_real": n_real, "n_fake": n_fake, "auc_train": auc, "coverage": round(len(pairs) / len(usable), 4)}
        if n_real < MIN_PER_CLASS or n_fake < MIN_PER_CLASS:
            dets[n]["why_not_fused"] = f"applied to fewer than {MIN_PER_CLASS} train reals or fakes of this kind"
        elif auc is None or auc < FUSE_MIN_AUC:
            dets[n]["why_not_fused"] = f"train-side AUC {auc} below {FUSE_MIN_AUC}: no measured power"
        else:
            candidates.append(n)
    centers = {n: center_of(usable, n) for n in candidates}
    usable_all = usable
    # Forward selection on the grouped-CV AUC (train side): a detector with power of its own is
    # fused only when it adds to the others, so the fused AUC is not below the best single one
    # (small weights on large logits of a detector that ranks by source can drag it down).
    pool = _scorable(usable_all, candidates)
    selected: list[str] = []
    best_auc = 0.5
    trail: list[dict[str, Any]] = []
    trials_first: dict[str, float] = {}
    while True:
        trials = {n: _oof_auc(pool, [*selected, n], centers, group_of, seed) for n in candidates if n not in selected}
        if not selected:
            trials_first = dict(trials)
        if not trials:
            break
        n_best = max(trials, key=lambda n: trials[n])
        trail.append({"added": n_best, "cv_auc": round(trials[n_best], 4),
                      "others": {k: round(v, 4) for k, v in trials.items() if k != n_best}})
        if trials[n_best] <= best_auc + SELECT_MIN_GAIN or trials[n_best] < FUSE_MIN_AUC:
            trail[-1]["kept"] = False
            break
        selected.append(n_best)
        best_auc = trials[n_best]
    for n in candidates:
        if n not in selected:
            first = trials_first.get(n, 0.5)
            dets[n]["why_not_fused"] = (f"grouped-CV AUC {first:.3f} below {FUSE_MIN_AUC}" if not selected
                                        else "did not raise the grouped-CV AUC of the detectors already fused")
    candidates = selected
    # Files none of the fused detectors applied to get no score at run time (inconclusive): they
    # stay out of the fit, so the intercept does not learn how often a face or speech is missing.
    usable = _scorable(usable_all, candidates)
    unscored = len(usable_all) - len(usable)
    y = np.asarray([r.label for r in usable], dtype=np.float64)
    if len(set(y.tolist())) < 2:
        raise ValueError(f"{kind}: fusion fit needs scorable files of both classes")
    w = sample_weights(usable)
    x = features(usable, candidates, centers)
    groups = [group_of(r) for r in usable]
    folds = group_folds(groups, FOLDS, seed)
    z_oof = _oof(x, y, w, folds, candidates)
    weights, intercept = nonnegative_logistic(x, y, w, candidates)
    calib = isotonic(z_oof, y, w) if calibration == "isotonic" else platt(z_oof, y, w)
    p_oof = np.asarray([calib.apply(float(v)) for v in z_oof])
    real_p = p_oof[y == 0]
    t_man, fpr_man = threshold_for_fpr(real_p, TARGET_FPR_MANIPULATED, FLOOR_MANIPULATED)
    t_sus, fpr_sus = threshold_for_fpr(real_p, TARGET_FPR_SUSPICIOUS, FLOOR_SUSPICIOUS)
    t_sus = min(t_sus, round(t_man - 0.01, 4))
    t_auth = min(threshold_for_fnr(p_oof[y == 1], TARGET_FNR_AUTHENTIC), t_sus)
    thresholds = KindThresholds(suspicious=t_sus, manipulated=t_man, target_fpr_suspicious=TARGET_FPR_SUSPICIOUS,
                                target_fpr_manipulated=TARGET_FPR_MANIPULATED,
                                train_fpr_suspicious=round(float((real_p >= t_sus).mean()), 4),
                                train_fpr_manipulated=fpr_man, authentic=t_auth,
                                target_fnr_authentic=TARGET_FNR_AUTHENTIC,
                                train_fnr_authentic=round(float((p_oof[y == 1] < t_auth).mean()), 4))
    del fpr_sus
    reference = {n: histogram([d.score for r in usable_all if (d := r.detectors.get(n)) is not None
                               and d.score is not None]) for n in names}
    reference["fused"] = histogram(p_oof.tolist())
    detectors: dict[str, KindDetector] = {}
    for n in names:
        wt = round(weights.get(n, 0.0), 5)
        auc = dets[n]["auc_train"]
        if n in candidates and wt <= 0:
            dets[n]["why_not_fused"] = "weight fitted to 0 next to the other detectors"
        proven = bool(wt > 0 and auc is not None and auc >= PROVEN_MIN_AUC)
        if proven and len(fake_sources) < MIN_FAKE_SOURCES:
            proven = False
            dets[n]["why_not_proven"] = (f"train fakes of this kind come from {len(fake_sources)} source(s): power on "
                                         "one generator says nothing of the others")
        elif proven and n in not_cross_source:
            proven = False
            dets[n]["why_not_proven"] = ("its held-out train scores come from models that saw other files of the "
                                         "same sources: power across sources not shown")
        detectors[n] = KindDetector(weight=max(wt, 0.0), center=centers.get(n, 0.0), proven=proven, auc_cv=auc,
                                    n_real=dets[n]["n_real"],
                                    n_fake=dets[n]["n_fake"],
                                    note=dets[n].get("why_not_fused", "fused"))
    model = KindModel(detectors=detectors, intercept=round(intercept, 6), calibration=calib, thresholds=thresholds,
                      logit_clip=LOGIT_CLIP, reference=reference)
    cv_auc = round(roc_auc(y.astype(np.int64), z_oof), 4) if candidates else None
    report = {
        "n_files": len(usable_all), "n_real": int(sum(r.label == 0 for r in usable_all)),
        "n_fake": int(sum(r.label == 1 for r in usable_all)),
        "n_fitted": len(usable), "n_unscorable": unscored,
        "n_unscorable_note": "no fused detector applied (e.g. no face found): left out of the fit, inconclusive",
        "cv": {"folds": len(set(folds)), "groups": len(set(groups)), "auc": cv_auc,
               "ece": round(ece(y, p_oof), 4), "ece_balanced": round(ece(y, p_oof, balanced=True), 4),
               "auc_note": "out-of-fold fused logits, folds split by source; the learned detectors saw parts of "
                           "the train split in their own training, so this is optimistic"},
        "detectors": dets,
        "selection": trail,
        "fused": [n for n in names if detectors[n].weight > 0],
        "proven": [n for n in names if detectors[n].proven],
        "fake_sources": fake_sources,
        "rule": {"min_per_class": MIN_PER_CLASS, "fuse_min_auc": FUSE_MIN_AUC, "proven_min_auc": PROVEN_MIN_AUC,
                 "proven_min_fake_sources": MIN_FAKE_SOURCES,
                 "proven_needs_cross_source_scores": sorted(not_cross_source)},
    }
    return KindFit(model=model, report=report)


def fit_kinds(records: Sequence[Record], *, group_of: Callable[[Record], str], calibration: str = "platt",
              seed: int = 0, log: Callable[[str], None] | None = None,
              not_cross_source: Collection[str] = ()) -> dict[str, KindFit]:
    """One :func:`fit_kind` per kind with both classes among ``records``."""
    out: dict[str, KindFit] = {}
    for kind in sorted({r.kind for r in records if r.error is None}):
        labels = {r.label for r in records if r.kind == kind and r.error is None}
        if labels != {0, 1}:
            if log is not None:
                log(f"{kind}: only one class in the train records; no model (legacy rule applies)")
            continue
        out[kind] = fit_kind(records, kind, group_of=group_of, calibration=calibration, seed=seed,
                             not_cross_source=not_cross_source)
        if log is not None:
            rep = out[kind].report
            log(f"{kind}: {rep['n_real']} real / {rep['n_fake']} fake, CV AUC {rep['cv']['auc']}, "
                f"fused {rep['fused']}, proven {rep['proven']}, thresholds "
                f"{out[kind].model.thresholds.suspicious}/{out[kind].model.thresholds.manipulated}, authentic below "
                f"{out[kind].model.thresholds.authentic}")
    return out


def read_reviews(path: Path) -> list[Record]:
    """Reviewed jobs (``veracity review export``) as records; 'unsure' reviews are skipped."""
    out: list[Record] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("target") not in (0, 1):
            continue
        dets = {n: DetectorScore(score=d.get("score"), confidence=float(d.get("confidence") or 0.0),
                                 reasons=list(d.get("reasons") or []), not_applicable=d.get("not_applicable"))
                for n, d in (row.get("detectors") or {}).items()}
        out.append(Record(rel=f"review/{row.get('job_id', len(out))}", label=int(row["target"]),
                          source=f"review:{row.get('job_id', len(out))}", method="reviewed",
                          kind=str(row.get("media_kind") or ""), detectors=dets, key=str(row.get("sha256", ""))))
    return out


def with_eval_power(params: FusionParams, evals: Sequence[Record]) -> FusionParams:
    """Fill each kind's detectors' eval AUC (reported in the UI; never used to fit)."""
    kinds = {}
    for kind, model in params.kinds.items():
        rows = [r for r in evals if r.error is None and r.kind == kind]
        dets = {}
        for n, d in model.detectors.items():
            pairs = [(r.label, s.score) for r in rows if (s := r.detectors.get(n)) is not None and s.score is not None]
            ys = [a for a, _ in pairs]
            auc = round(roc_auc(ys, [float(b) for _, b in pairs]), 4) if 0 < sum(ys) < len(ys) else None
            dets[n] = d.model_copy(update={"auc_eval": auc, "n_eval": len(pairs)})
        kinds[kind] = model.model_copy(update={"detectors": dets})
    return params.model_copy(update={"kinds": kinds})


def compare_on_eval(evals: Sequence[Record], new: FusionParams, current: FusionParams) -> dict[str, Any]:
    """Per kind, the new and the current parameters on the same eval records. A kind of the new
    file wins when its fused AUC is not lower by more than 0.01 (a kind a file cannot score
    counts 0.5), the AUC gains more than 0.005 or the ECE falls by more than 0.02, and it labels no
    larger share of reals ``manipulated``/``synthetic`` than the target (5 %) or the current file,
    whichever is higher: a refit that scores better but accuses more innocent files does not win.
    The new file beats the current one when at least one of its kinds wins; the kinds that do not
    are left to the current rule (``kinds_won``). Nor does one that labels a larger share of the
    fakes ``authentic`` than ``TARGET_FNR_AUTHENTIC`` or the current file, whichever is higher."""
    per_kind: dict[str, Any] = {}
    new_recs, cur_recs = rescore_kind(evals, new), rescore_kind(evals, current)
    for kind in sorted({r.kind for r in evals if r.error is None}):
        per_kind[kind] = {"new": kind_metrics(new_recs, kind), "current": kind_metrics(cur_recs, kind)}

    def auc_of(m: dict[str, Any]) -> float:
        return float(m["auc"]) if m.get("auc") is not None else 0.5

    def ece_of(m: dict[str, Any]) -> float:
        return float(m["ece"]) if m.get("ece") is not None else 0.5

    def flagged(m: dict[str, Any]) -> float:
        return float(m.get("real_flagged_manipulated_or_synthetic") or 0.0)

    def missed(m: dict[str, Any]) -> float:
        return float(m.get("fake_labelled_authentic") or 0.0)

    gains = {k: auc_of(v["new"]) - auc_of(v["current"]) for k, v in per_kind.items()}
    ece_gain = {k: ece_of(v["current"]) - ece_of(v["new"]) for k, v in per_kind.items()}
    why: dict[str, str] = {}
    for k, v in per_kind.items():
        limit = max(TARGET_FPR_MANIPULATED, flagged(v["current"]))
        miss_limit = max(TARGET_FNR_AUTHENTIC, missed(v["current"]))
        if gains[k] < -0.01:
            why[k] = f"fused AUC lower by {-gains[k]:.3f}"
        elif not (gains[k] > 0.005 or ece_gain[k] > 0.02):
            why[k] = "neither the AUC nor the ECE improves enough"
        elif flagged(v["new"]) > limit + 1e-9:
            why[k] = f"labels {flagged(v['new']):.1%} of reals manipulated/synthetic (limit {limit:.1%})"
        elif missed(v["new"]) > miss_limit + 1e-9:
            why[k] = f"labels {missed(v['new']):.1%} of fakes authentic (limit {miss_limit:.1%})"
        else:
            why[k] = "wins"
    won = sorted(k for k, w in why.items() if w == "wins" and k in new.kinds)
    return {"per_kind": per_kind, "auc_gain_per_kind": {k: round(g, 4) for k, g in gains.items()},
            "ece_gain_per_kind": {k: round(g, 4) for k, g in ece_gain.items()},
            "kinds_won": won, "why_per_kind": why, "beats_current": bool(won),
            "rule": "per kind: fused AUC not lower by more than 0.01, AUC gain over 0.005 or ECE lower by over 0.02, "
                    "no more reals labelled manipulated/synthetic than max(5 %, the current file's share), and no "
                    "more fakes labelled authentic than max(5 %, the current file's share); kinds that do not win "
                    "keep the current rule"}


def refuse_in_sample(comparison: dict[str, Any], new: FusionParams, missing: Sequence[str],
                     in_sample_kinds: Mapping[str, set[str]] | None = None) -> dict[str, Any]:
    """``comparison`` with every won kind taken back whose fit weighs a learned detector that had
    no held-out table (``missing``): its train scores were in-sample, so its eval figures would
    reward a fit the detector's own training flattered. Such a kind keeps the current rule.
    ``in_sample_kinds[name]``, when given, names the kinds among whose train records the
    detector's card lists files it was fitted on (:func:`in_sample_kinds`): on any other kind
    its scores are out-of-sample by construction, and the kind is not taken back for it."""
    if not missing:
        return comparison
    won, why = list(comparison.get("kinds_won", [])), dict(comparison.get("why_per_kind", {}))
    for kind in list(won):
        model = new.kinds.get(kind)
        flattered = sorted(n for n in missing if model is not None and n in model.detectors
                           and model.detectors[n].weight > 0
                           and (in_sample_kinds is None or kind in in_sample_kinds.get(n, {kind})))
        if flattered:
            won.remove(kind)
            why[kind] = f"fitted on in-sample train scores of {', '.join(flattered)} (no held-out table)"
    return {**comparison, "kinds_won": won, "why_per_kind": why, "beats_current": bool(won)}


def in_sample_kinds(records: Sequence[Record], trained_groups: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Per detector, the kinds whose train records include a file of a group its card's
    ``training_data`` names (``trained_groups[name]``, e.g. ``train/audio/fake/Edresson/YourTTS``,
    the trainers' :func:`~veracity.train.common.group_of`); ``"*"`` among them: every kind."""
    out: dict[str, set[str]] = {n: set() for n in trained_groups}
    for r in records:
        group = group_of({"path": r.rel, "split": "train", "source_repo": r.source})
        for name, groups in trained_groups.items():
            if group in groups or "*" in groups:
                out[name].add(r.kind)
    return out
