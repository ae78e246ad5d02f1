"""Metrics over eval records: ROC AUC, EER, accuracy and confusion, per detector and fused, broken
down per source and per method.

Conventions: positives are fakes. A detector is measured on the files where it applied (its
coverage is reported); the fused score on every file that has one. "Default threshold": 0.5 for
a detector's score; for the fused score the fusion's ``suspicious`` threshold, i.e. any verdict
other than ``authentic`` counts as flagged. Breakdowns: per source, AUC within the source when it
holds both classes; per method, that method's fakes against every real file of the set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veracity.evaluation.runner import Record
from veracity.models.metrics import eer, roc_auc

FUSED = "fused"
DETECTOR_THRESHOLD = 0.5


def _scores(records: Sequence[Record], name: str) -> list[tuple[Record, float]]:
    out: list[tuple[Record, float]] = []
    for r in records:
        if r.error is not None:
            continue
        if name == FUSED:
            if r.fused is not None:
                out.append((r, r.fused))
        else:
            d = r.detectors.get(name)
            if d is not None and d.score is not None:
                out.append((r, d.score))
    return out


def _auc(y: list[int], s: list[float]) -> float | None:
    return round(roc_auc(y, s), 4) if 0 < sum(y) < len(y) else None


def block(pairs: Sequence[tuple[Record, float]], threshold: float) -> dict[str, Any]:
    """AUC, EER (+ its threshold), accuracy and confusion at ``threshold`` for (record, score)."""
    y = [r.label for r, _ in pairs]
    s = [v for _, v in pairs]
    n_fake = sum(y)
    out: dict[str, Any] = {"n": len(y), "n_real": len(y) - n_fake, "n_fake": n_fake}
    if not y:
        return out
    pred = [int(v >= threshold) for v in s]
    tp = sum(p and t for p, t in zip(pred, y, strict=True))
    tn = sum((not p) and (not t) for p, t in zip(pred, y, strict=True))
    fp = sum(p and (not t) for p, t in zip(pred, y, strict=True))
    fn = sum((not p) and t for p, t in zip(pred, y, strict=True))
    out.update({
        "auc": _auc(y, s),
        "accuracy": round((tp + tn) / len(y), 4),
        "threshold": threshold,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    })
    if 0 < n_fake < len(y):
        e, t = eer(y, s)
        out["eer"] = round(e, 4)
        out["eer_threshold"] = round(t, 4)
    return out


def breakdown(pairs: Sequence[tuple[Record, float]], threshold: float) -> dict[str, Any]:
    by_source: dict[str, Any] = {}
    for source in sorted({r.source for r, _ in pairs}):
        by_source[source] = block([p for p in pairs if p[0].source == source], threshold)
    reals = [p for p in pairs if p[0].label == 0]
    by_method: dict[str, Any] = {}
    for method in sorted({r.method for r, _ in pairs if r.label == 1}):
        fakes = [p for p in pairs if p[0].label == 1 and p[0].method == method]
        by_method[method] = block(reals + fakes, threshold)
    return {"per_source": by_source, "per_method_vs_all_real": by_method}


def summarise(records: Sequence[Record], *, fused_threshold: float, detectors: Sequence[str] | None = None
              ) -> dict[str, Any]:
    """The JSON summary: counts, then one entry per detector and ``fused``."""
    ok = [r for r in records if r.error is None]
    names = list(detectors) if detectors is not None else sorted({n for r in ok for n in r.detectors})
    result: dict[str, Any] = {
        "n_files": len(records),
        "n_errors": len(records) - len(ok),
        "n_real": sum(r.label == 0 for r in ok),
        "n_fake": sum(r.label == 1 for r in ok),
        "errors": [{"file": r.rel, "error": r.error} for r in records if r.error is not None],
        "scores": {},
    }
    for name in [*names, FUSED]:
        pairs = _scores(ok, name)
        threshold = fused_threshold if name == FUSED else DETECTOR_THRESHOLD
        entry = block(pairs, threshold)
        entry["coverage"] = round(len(pairs) / len(ok), 4) if ok else 0.0
        if name != FUSED:
            skipped: dict[str, int] = {}
            for r in ok:
                d = r.detectors.get(name)
                if d is not None and d.score is None:
                    key = d.not_applicable or "not_applicable"
                    skipped[key] = skipped.get(key, 0) + 1
            entry["not_applied"] = skipped
        entry.update(breakdown(pairs, threshold))
        result["scores"][name] = entry
    return result


def roc_points(labels: Sequence[int], scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) from the strictest threshold down."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    fpr, tpr = [0.0], [0.0]
    for t in np.unique(s)[::-1]:
        pred = s >= t
        tpr.append(float((pred & (y == 1)).sum()) / max(n_pos, 1))
        fpr.append(float((pred & (y == 0)).sum()) / max(n_neg, 1))
    if fpr[-1] != 1.0 or tpr[-1] != 1.0:
        fpr.append(1.0)
        tpr.append(1.0)
    return fpr, tpr


def table_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(name, n real/fake, coverage, AUC, EER, accuracy) for a printed table."""
    rows = []
    for name, e in summary["scores"].items():
        def f(v: object) -> str:
            return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

        rows.append((name, f"{e.get('n_real', 0)}/{e.get('n_fake', 0)}", f(e.get("coverage")), f(e.get("auc")),
                     f(e.get("eer")), f(e.get("accuracy"))))
    return rows
