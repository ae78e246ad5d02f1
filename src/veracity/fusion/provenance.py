"""Provenance signals on top of the detector verdict.

Declarations outrank inference: a valid content credential or a watermark that says "made by a
generative model" makes the label ``synthetic`` (score raised to at least
``provenance_synthetic_score``), whatever the detectors think. A tampered credential adds
``credential_invalid`` and lifts an authentic/inconclusive label to ``suspicious`` without
touching the score. Provenance never lowers a score: a valid "captured by a camera" credential is
reported, and stripped metadata proves nothing.
"""

from __future__ import annotations

from dataclasses import replace

from veracity.fusion.fuse import FusionParams, Verdict

DECLARED_AI = "declared_ai_generated"
WATERMARK = "watermark_detected"
CREDENTIAL_INVALID = "credential_invalid"


def apply_provenance(verdict: Verdict, reasons: list[str] | tuple[str, ...], params: FusionParams) -> Verdict:
    """Merge provenance ``reasons`` (from ``verify_file``) into ``verdict``."""
    declared = [r for r in (DECLARED_AI, WATERMARK) if r in reasons]
    out = verdict
    if declared:
        score = max(out.score if out.score is not None else 0.0, params.provenance_synthetic_score)
        merged = tuple(declared) + tuple(r for r in out.reasons if r not in declared)
        out = replace(out, score=score, label="synthetic", reasons=merged)
    if CREDENTIAL_INVALID in reasons:
        label = "suspicious" if out.label in ("authentic", "inconclusive") else out.label
        out = replace(out, label=label, reasons=(*out.reasons, CREDENTIAL_INVALID))
    return out
