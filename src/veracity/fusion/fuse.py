"""Combine the detectors that applied into one score, a label and reasons.

Weights and thresholds are versioned data (``data/fusion-*.json``), not literals. A detector that
did not apply is left out, never counted as 0.5. The rule is a confidence- and weight-weighted
mean in logit space, so one confident detector can carry the verdict while uncertain ones barely
move it; when the total evidence (sum of weight x confidence) is small, the fused logit shrinks
toward 0 so a lone weak detector yields "suspicious" at most.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from veracity.detectors.base import DetectorResult, sigmoid
from veracity.errors import ConfigError

Label = Literal["authentic", "suspicious", "manipulated", "synthetic", "inconclusive"]
DEFAULT_FUSION = "fusion-v1"


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suspicious: float = Field(gt=0, lt=1)
    manipulated: float = Field(gt=0, lt=1)


class Calibration(BaseModel):
    """Logistic calibration of the fused logit: ``z -> slope * z + intercept`` (fitted data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slope: float = Field(gt=0)
    intercept: float


class FusionParams(BaseModel):
    """A versioned parameter set (pyannote's "models separate from tunable parameters")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    fitted: bool
    note: str = ""
    weights: dict[str, float]
    synthetic_detectors: list[str] = Field(default_factory=list)
    thresholds: Thresholds
    reason_min_score: float = Field(gt=0, lt=1)
    logit_clip: float = Field(gt=0)
    evidence_mass_full: float = Field(default=0.5, gt=0)
    # Below this total of weight x confidence the evidence is too thin for any verdict: the score
    # is still reported, the label is "inconclusive" (a coin-flip detector must not say "suspicious").
    min_evidence_mass: float = Field(default=0.0, ge=0)
    # Floor of the score when a valid credential or a watermark declares AI generation.
    provenance_synthetic_score: float = Field(default=0.95, gt=0, lt=1)
    calibration: Calibration | None = None  # None: the fused logit is used as it is
    fit: dict[str, Any] = Field(default_factory=dict)  # how fitted parameters were obtained

    @classmethod
    def load(cls, name: str = DEFAULT_FUSION) -> FusionParams:
        try:
            text = resources.files("veracity.fusion").joinpath("data", f"{name}.json").read_text()
        except FileNotFoundError as exc:
            raise ConfigError(f"no fusion parameters named {name!r}") from exc
        params = cls.model_validate(json.loads(text))
        if params.thresholds.suspicious >= params.thresholds.manipulated:
            raise ConfigError("fusion thresholds: suspicious must be below manipulated")
        return params


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float | None
    label: Label
    reasons: tuple[str, ...]
    weights: dict[str, float] = field(default_factory=dict)  # normalised share per detector


def _logit(p: float, clip: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-clip, min(clip, math.log(p / (1 - p))))


def fuse(results: list[DetectorResult], params: FusionParams) -> Verdict:
    used = [r for r in results if r.score is not None and params.weights.get(r.name, 0.0) > 0]
    raw = {r.name: params.weights[r.name] * max(r.confidence, 0.05) for r in used}
    total = sum(raw.values())
    if not used or total <= 0:
        return Verdict(score=None, label="inconclusive", reasons=())
    shares = {k: v / total for k, v in raw.items()}
    z = sum(shares[r.name] * _logit(r.score or 0.0, params.logit_clip) for r in used)
    # Weak total evidence (few, unconfident detectors) pulls the score toward 0.5.
    z *= min(1.0, total / params.evidence_mass_full)
    if params.calibration is not None:
        z = params.calibration.slope * z + params.calibration.intercept
    score = sigmoid(z)
    reasons: list[str] = []
    for r in sorted(used, key=lambda r: -(r.score or 0.0)):
        if (r.score or 0.0) >= params.reason_min_score:
            reasons.extend(x for x in r.reasons if x not in reasons)
    label: Label
    if total < params.min_evidence_mass:
        return Verdict(score=score, label="inconclusive", reasons=(), weights=shares)
    if score < params.thresholds.suspicious:
        label = "authentic"
        reasons = []  # a lone detector's reason does not explain an authentic verdict
    elif score < params.thresholds.manipulated:
        label = "suspicious"
    else:
        top = max(used, key=lambda r: shares[r.name] * _logit(r.score or 0.0, params.logit_clip))
        label = "synthetic" if top.name in params.synthetic_detectors else "manipulated"
    return Verdict(score=score, label=label, reasons=tuple(reasons), weights=shares)
