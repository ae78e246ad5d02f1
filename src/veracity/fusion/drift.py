"""Drift: the population stability index of recent scores against a stored reference.

The reference is the share of train-side scores per bin, stored per detector and kind in the
fusion file when it is fitted; ``/metrics`` compares the scores of recent jobs with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

REF_BINS = 10  # equal-width bins on [0, 1]


def histogram(values: Sequence[float], bins: int = REF_BINS) -> list[float]:
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    counts = np.bincount(np.minimum((v * bins).astype(int), bins - 1), minlength=bins).astype(np.float64)
    return [round(float(c), 5) for c in counts / max(counts.sum(), 1.0)]


def psi(reference: Sequence[float], recent: Sequence[float], eps: float = 1e-4) -> float:
    """Population stability index of ``recent`` bin shares against ``reference`` (same bins)."""
    r = np.maximum(np.asarray(reference, dtype=np.float64), eps)
    q = np.maximum(np.asarray(recent, dtype=np.float64), eps)
    return float(np.sum((q - r) * np.log(q / r)))


__all__ = ["REF_BINS", "histogram", "psi"]
