"""Missing evidence never reads as authentic.

A file whose audio will not decode, or that stops long before its headers say it ends, has
hidden evidence from the detectors: replacing a clip's audio samples with noise silences the
lip-sync check, and cutting a file removes what follows the cut. Such a file must not come out
*authentic* because the detectors that would have objected had nothing to look at. The media
stage records these cases as warning codes (:mod:`veracity.media.types`); this rule turns an
``authentic`` verdict into ``inconclusive`` when one of them is present, with the reason
``evidence_missing``. It never changes a verdict that already found something, nor the score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from veracity.fusion.fuse import Verdict

EVIDENCE_MISSING = "evidence_missing"
# Warning codes that mean "evidence the file promised is missing" (media.types defines them).
MISSING_EVIDENCE_CODES = frozenset({"media_truncated", "audio_undecodable"})


def missing_evidence(warnings: Iterable[str]) -> list[str]:
    """The warning codes among ``warnings`` that mean evidence is missing, each once."""
    codes = (w.split(":", 1)[0].strip() for w in warnings)
    return sorted({c for c in codes if c in MISSING_EVIDENCE_CODES})


def apply_missing_evidence(verdict: Verdict, warnings: Iterable[str]) -> Verdict:
    """``authentic`` becomes ``inconclusive`` when evidence is missing; nothing else changes."""
    if verdict.label != "authentic" or not missing_evidence(warnings):
        return verdict
    return replace(verdict, label="inconclusive", reasons=(*verdict.reasons, EVIDENCE_MISSING))
