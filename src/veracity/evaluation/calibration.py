"""Measuring a fused score on labelled records: expected calibration error, the reliability
diagram's points, the per-kind figures the issue asks for (AUC, ECE, labels, share flagged and
inconclusive) and re-fusing saved records with another fusion file.

Used by ``veracity eval`` and by the fusion fit's eval comparison (``train/fusion_fit.py``); it
lives here, below the trainers, because measuring must not depend on training code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import DetectorResult
from veracity.evaluation.runner import Record
from veracity.fusion.fuse import FusionParams, fuse
from veracity.models.metrics import roc_auc

F = npt.NDArray[np.float64]
ECE_BINS = 10


def results_of(record: Record) -> list[DetectorResult]:
    out: list[DetectorResult] = []
    for name, d in record.detectors.items():
        if d.score is None:
            out.append(DetectorResult.skipped(name, "fit", d.not_applicable or "not_applicable"))
        else:
            out.append(DetectorResult(name=name, version="fit", score=d.score, confidence=d.confidence,
                                      reasons=tuple(d.reasons)))
    return out


def ece(y: Sequence[int] | F, p: Sequence[float] | F, bins: int = ECE_BINS, *, balanced: bool = False) -> float:
    """Expected calibration error: bin-weighted |mean predicted - observed fake share|.
    ``balanced`` weighs both classes equally (the fit assumes a 50 % prior, so a set with another
    class ratio shows an ECE from the ratio alone; the balanced figure removes that part)."""
    ya, pa = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if len(ya) == 0:
        return float("nan")
    wa = np.ones(len(ya))
    if balanced and 0 < ya.sum() < len(ya):
        wa = np.where(ya == 1, 0.5 / ya.mean(), 0.5 / (1 - ya.mean()))
    idx = np.minimum((pa * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            wb = wa[m]
            pred = float(np.average(pa[m], weights=wb))
            obs = float(np.average(ya[m], weights=wb))
            total += wb.sum() / wa.sum() * abs(pred - obs)
    return float(total)


def reliability(y: Sequence[int], p: Sequence[float], bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per bin: mean predicted probability, observed fake share, count (the diagram's points)."""
    ya, pa = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    idx = np.minimum((pa * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"bin": b, "p_mean": round(float(pa[m].mean()), 4), "fake_share": round(float(ya[m].mean()), 4),
                        "n": int(m.sum())})
    return out


def kind_metrics(records: Sequence[Record], kind: str) -> dict[str, Any]:
    """Figures of one kind from records' fused scores and labels: fused AUC, ECE, the reliability
    bins, label counts per class, share of reals flagged, share of fakes labelled ``authentic``
    (the verdict that sounds sure and is wrong the other way), share inconclusive (all files, and
    files where a face or speech was found)."""
    rows = [r for r in records if r.error is None and r.kind == kind]
    scored = [(r.label, float(r.fused)) for r in rows if r.fused is not None]
    y = [a for a, _ in scored]
    p = [b for _, b in scored]
    labels: dict[str, dict[str, int]] = {"real": {}, "fake": {}}
    for r in rows:
        c = labels["fake" if r.label else "real"]
        c[r.verdict] = c.get(r.verdict, 0) + 1
    n_real = sum(labels["real"].values())
    flagged_real = labels["real"].get("manipulated", 0) + labels["real"].get("synthetic", 0)
    n_fake = sum(labels["fake"].values())
    with_signal = [r for r in rows if _has_face_or_speech(r)]
    return {
        "n": len(rows), "n_scored": len(scored),
        "auc": round(roc_auc(y, p), 4) if 0 < sum(y) < len(y) else None,
        "ece": round(ece(y, p), 4) if p else None,
        "ece_balanced": round(ece(y, p, balanced=True), 4) if p else None,
        "labels": labels,
        "real_flagged_manipulated_or_synthetic": round(flagged_real / n_real, 4) if n_real else None,
        "fake_labelled_authentic": round(labels["fake"].get("authentic", 0) / n_fake, 4) if n_fake else None,
        "share_inconclusive": round(sum(r.verdict == "inconclusive" for r in rows) / len(rows), 4) if rows else None,
        "n_with_face_or_speech": len(with_signal),
        "share_inconclusive_with_face_or_speech": round(
            sum(r.verdict == "inconclusive" for r in with_signal) / len(with_signal), 4) if with_signal else None,
        "reliability": reliability(y, p) if p else [],
    }


def _has_face_or_speech(r: Record) -> bool:
    face = r.detectors.get("face_artifacts")
    speech = r.detectors.get("synthetic_speech")
    return (face is not None and face.score is not None) or (speech is not None and speech.score is not None)


def rescore_kind(records: Sequence[Record], params: FusionParams) -> list[Record]:
    out = []
    for r in records:
        if r.error is not None:
            out.append(r)
            continue
        v = fuse(results_of(r), params, r.kind or None)
        out.append(replace(r, fused=None if v.score is None else round(v.score, 4), verdict=v.label))
    return out
