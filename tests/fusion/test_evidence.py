"""Missing evidence (undecodable audio, a truncated file) never reads as authentic (issue 15, item 10)."""

from __future__ import annotations

import pytest

from veracity.fusion.evidence import EVIDENCE_MISSING, apply_missing_evidence, missing_evidence
from veracity.fusion.fuse import Verdict


@pytest.mark.parametrize(
    "warnings",
    [
        ["audio_undecodable: audio stream cannot be decoded: Invalid data found when processing input"],
        ["media_truncated: video ends at 2.88s"],
        ["decode_capped_after_5000_frames", "media_truncated: audio ends at 3.01s of 6.02s"],
    ],
)
def test_authentic_with_missing_evidence_is_inconclusive(warnings: list[str]) -> None:
    out = apply_missing_evidence(Verdict(score=0.36, label="authentic", reasons=()), warnings)
    assert out.label == "inconclusive"
    assert EVIDENCE_MISSING in out.reasons
    assert out.score == 0.36  # the score is what the detectors said; only the reading changes


@pytest.mark.parametrize("label", ["suspicious", "manipulated", "synthetic", "inconclusive"])
def test_other_verdicts_are_never_lowered(label: str) -> None:
    verdict = Verdict(score=0.73, label=label, reasons=("lip_audio_mismatch",))  # type: ignore[arg-type]
    assert apply_missing_evidence(verdict, ["audio_undecodable: no decoder"]) == verdict


def test_unrelated_warnings_change_nothing() -> None:
    verdict = Verdict(score=0.2, label="authentic", reasons=())
    assert apply_missing_evidence(verdict, ["audio_truncated_to_900s", "decode_capped_after_5000_frames"]) == verdict
    assert missing_evidence(["media_truncated: a", "media_truncated: b", "x"]) == ["media_truncated"]
