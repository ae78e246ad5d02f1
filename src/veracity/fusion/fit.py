"""Fit fusion weights and a logistic calibration on detector scores from TRAIN data, never eval.

The fused rule stays the one in :func:`~veracity.fusion.fuse.fuse` (confidence-weighted mean of
logits, shrunk when evidence is thin); fitting chooses its per-detector weights and a final
``slope * z + intercept`` calibration. Objective: log-loss with classes weighing equally and, within
a class, every source equally (so one big folder cannot dictate the weights).

A detector enters the fit only when it applied to at least ``MIN_PER_CLASS`` files of each class;
otherwise its weight is carried over from the base parameters and marked ``prior`` in the fit
record (``train/`` has no fake videos, so the video-only detectors cannot be fitted there).
Re-run after adding detectors: ``veracity train fusion`` analyses the train files again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import DetectorResult
from veracity.evaluation.runner import Record
from veracity.fusion.fuse import Calibration, FusionParams, fuse

MIN_PER_CLASS = 5
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0)
NEW_DETECTOR_START = 0.5
PASSES = 3
L2_CALIBRATION = 0.01


@dataclass(frozen=True, slots=True)
class FitResult:
    params: FusionParams
    report: dict[str, Any]


def results_of(record: Record) -> list[DetectorResult]:
    out: list[DetectorResult] = []
    for name, d in record.detectors.items():
        if d.score is None:
            out.append(DetectorResult.skipped(name, "fit", d.not_applicable or "not_applicable"))
        else:
            out.append(DetectorResult(name=name, version="fit", score=d.score, confidence=d.confidence,
                                      reasons=tuple(d.reasons)))
    return out


def sample_weights(records: Sequence[Record]) -> npt.NDArray[np.float64]:
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


def fused_logits(records: Sequence[Record], params: FusionParams) -> npt.NDArray[np.float64]:
    """Uncalibrated fused logits (NaN where nothing with a weight applied)."""
    raw = params.model_copy(update={"calibration": None})
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        v = fuse(results_of(r), raw)
        if v.score is not None:
            p = min(max(v.score, 1e-9), 1 - 1e-9)
            out[i] = math.log(p / (1 - p))
    return out


def fit_calibration(z: npt.NDArray[np.float64], y: npt.NDArray[np.float64], w: npt.NDArray[np.float64]
                    ) -> tuple[float, float, float]:
    """(slope, intercept, weighted mean log-loss) of ``sigmoid(a z + b)`` by Newton steps; the
    slope is kept positive (a detector that ranks backwards gets weight 0, not a flipped sign)."""
    a, b = 1.0, 0.0
    x = np.stack([z, np.ones_like(z)], axis=1)
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(a * z + b, -30, 30)))
        grad = x.T @ (w * (p - y)) + L2_CALIBRATION * np.array([a - 1.0, 0.0])
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag([L2_CALIBRATION, 1e-6])
        step = np.linalg.solve(hess, grad)
        a, b = a - float(step[0]), b - float(step[1])
        a = max(a, 1e-3)
        if float(np.max(np.abs(step))) < 1e-8:
            break
    p = 1 / (1 + np.exp(-np.clip(a * z + b, -30, 30)))
    loss = -float(np.sum(w * (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))) / max(w.sum(), 1e-12))
    return a, b, loss


def _objective(records: Sequence[Record], params: FusionParams, y: npt.NDArray[np.float64],
               w: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    z = fused_logits(records, params)
    ok = np.isfinite(z)
    if ok.sum() < 2 or len(set(y[ok].tolist())) < 2:
        return 1.0, 0.0, math.inf
    # Files nothing applied to count as an uninformed 0.5 so dropping a detector is not free.
    z = np.where(ok, z, 0.0)
    return fit_calibration(z, y, w)


def fit_fusion(records: Sequence[Record], base: FusionParams, *, version: str,
               data: dict[str, Any] | None = None) -> FitResult:
    """Coordinate search over ``WEIGHT_GRID`` for each fittable detector, then calibration."""
    usable = [r for r in records if r.error is None]
    if not usable or len({r.label for r in usable}) < 2:
        raise ValueError("fusion fit needs analysed files of both classes")
    y = np.asarray([r.label for r in usable], dtype=np.float64)
    w = sample_weights(usable)
    names = sorted({n for r in usable for n in r.detectors})
    status: dict[str, dict[str, Any]] = {}
    fittable: list[str] = []
    for n in names:
        applied = [r for r in usable if (d := r.detectors.get(n)) is not None and d.score is not None]
        n_real = sum(r.label == 0 for r in applied)
        n_fake = sum(r.label == 1 for r in applied)
        status[n] = {"applied_real": n_real, "applied_fake": n_fake}
        if n_real >= MIN_PER_CLASS and n_fake >= MIN_PER_CLASS:
            fittable.append(n)
    weights = dict(base.weights)
    for n in fittable:
        weights.setdefault(n, NEW_DETECTOR_START)
    params = base.model_copy(update={"weights": weights, "calibration": None})
    start = _objective(usable, params, y, w)
    best = start
    for _ in range(PASSES):
        changed = False
        for n in fittable:
            for value in WEIGHT_GRID:
                if value == params.weights.get(n):
                    continue
                trial = params.model_copy(update={"weights": {**params.weights, n: value}})
                got = _objective(usable, trial, y, w)
                if got[2] < best[2] - 1e-6:
                    best, params, changed = got, trial, True
        if not changed:
            break
    for n in names:
        status[n]["weight"] = params.weights.get(n, 0.0)
        status[n]["source"] = "fitted" if n in fittable else ("prior" if n in base.weights else "unused")
    slope, intercept, loss = best
    final_weights = {k: round(v, 4) for k, v in sorted(params.weights.items())}
    fitted = base.model_copy(update={
        "version": version,
        "fitted": True,
        "weights": final_weights,
        "calibration": Calibration(slope=round(slope, 6), intercept=round(intercept, 6)),
    })
    z = np.nan_to_num(fused_logits(usable, fitted), nan=0.0)
    scores = 1 / (1 + np.exp(-np.clip(slope * z + intercept, -30, 30)))
    from veracity.models.metrics import roc_auc

    report: dict[str, Any] = {
        "objective": "source- and class-balanced log-loss of the calibrated fused score",
        "loss_base_weights": round(start[2], 5),
        "loss_fitted": round(loss, 5),
        "fit_set_auc": round(roc_auc(y.astype(np.int64), scores), 4),
        "fit_set_auc_note": "on the fitting data itself (train split): a fit check, not a measurement",
        "detectors": status,
        "n_files": len(usable),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "min_per_class": MIN_PER_CLASS,
        "weight_grid": list(WEIGHT_GRID),
        "base": base.version,
        **(data or {}),
    }
    fitted = fitted.model_copy(update={"fit": report, "note": (
        f"Fitted on train-split detector scores ({len(usable)} files), never eval. Weights of "
        f"detectors without enough train files of both classes are carried from {base.version}. "
        f"Re-run `veracity train fusion` after adding detectors.")})
    return FitResult(params=fitted, report=report)
