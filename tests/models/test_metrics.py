"""roc_auc and eer against hand-computed cases and a brute-force pairwise count."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.models.metrics import eer, roc_auc


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),
        ([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1], 0.0),
        ([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied: chance
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),  # 3 of 4 pairs ordered
        ([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9], 0.875),  # one tied pair counts one half
        ([1, 0], [3.0, -3.0], 1.0),
    ],
)
def test_roc_auc_hand_cases(labels: list[int], scores: list[float], expected: float) -> None:
    assert roc_auc(labels, scores) == pytest.approx(expected)


def test_roc_auc_matches_pairwise_count_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 7, 200).astype(float)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        pos.size * neg.size)
    assert roc_auc(y, s) == pytest.approx(brute)


@pytest.mark.parametrize(
    ("labels", "scores"),
    [
        ([1, 1, 1], [0.1, 0.2, 0.3]),  # one class only
        ([0, 1], [0.1]),  # length mismatch
        ([0, 1], [0.1, float("nan")]),
        ([0, 2], [0.1, 0.2]),  # not a binary label
    ],
)
def test_bad_input_is_refused(labels: list[int], scores: list[float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one type
        roc_auc(labels, scores)
    with pytest.raises(ValueError):  # noqa: PT011
        eer(labels, scores)


def test_eer_hand_cases() -> None:
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (0.0, 0.8)
    value, threshold = eer([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert value == pytest.approx(0.5)
    assert threshold == pytest.approx(0.4)
    value, _ = eer([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert value == pytest.approx(1.0)
