"""Ranking metrics in plain numpy, shared by training scripts and the eval harness.

Scores follow the detector convention: higher means "more likely fake"; labels are 1 for fake
(positive) and 0 for real.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

ArrayLike = Sequence[float] | Sequence[int] | npt.NDArray[np.floating[Any]] | npt.NDArray[np.integer[Any]]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _check(labels: ArrayLike, scores: ArrayLike) -> tuple[IntArray, FloatArray]:
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D and equally long, got {y.shape} and {s.shape}")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(y.sum())
    if n_pos in (0, y.size):
        raise ValueError("need at least one positive and one negative label")
    return y.astype(np.int64), s


def _average_ranks(s: FloatArray) -> FloatArray:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    # start index of each run of equal values
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], sorted_s.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos * n_neg)); ties count one half."""
    y, s = _check(labels, scores)
    ranks = _average_ranks(s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def eer(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Equal error rate and the threshold where it occurs (``score >= threshold`` means fake).

    Walks every distinct threshold; where false-positive and false-negative rates cross between
    two thresholds, the EER is the mean of the two rates at the closer one.
    """
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    thresholds = np.r_[np.unique(s), np.inf]
    best = (2.0, 0.0, float(thresholds[0]))  # (|fpr - fnr|, eer, threshold)
    for t in thresholds:
        pred = s >= t
        fpr = float(np.sum(pred & (y == 0))) / n_neg
        fnr = float(np.sum(~pred & (y == 1))) / n_pos
        gap = abs(fpr - fnr)
        if gap < best[0]:
            best = (gap, (fpr + fnr) / 2.0, float(t))
    return best[1], best[2]
