"""Combine the detectors that applied into one score, a label and reasons.

Weights and thresholds are versioned data (``data/fusion-*.json``), not literals. A detector that
did not apply is left out, never counted as 0.5.

Two rules, chosen by the parameter file:

* per-kind models (``kinds``, fusion-v3 on): for the media kind at hand, a logistic model on the
  clipped, centred logits of the detectors with measured power (one that did not apply adds 0),
  then a fitted calibration (Platt or isotonic), so the score is a probability. Thresholds were
  chosen on train-side out-of-fold scores for a stated false-positive rate. ``authentic`` must be
  earned: it needs a detector with proven power on this kind to have applied; otherwise the label
  is ``inconclusive`` and ``not_checked`` says in a sentence what was not looked at.
* legacy (v1/v2 files without ``kinds``): a confidence- and weight-weighted mean in logit space,
  shrunk toward 0 when the total evidence is thin.

The steps stay separate (:func:`_kind_score`, :func:`_kind_label`, :func:`explain`) so a rule
about missing evidence can be added at one place.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from veracity.detectors import registry
from veracity.detectors.base import DetectorResult, sigmoid
from veracity.errors import ConfigError

Label = Literal["authentic", "suspicious", "manipulated", "synthetic", "inconclusive"]
Kind = Literal["video", "image", "audio"]
DEFAULT_FUSION = "fusion-v1"  # used when data/DEFAULT names nothing
DEFAULT_FILE = "DEFAULT.json"  # {"name": ..., "why": ...} in fusion/data: the default parameter file
MAX_EXPLANATIONS = 3

def words(name: str) -> str:
    """A detector's short plain name in verdict sentences (from its spec)."""
    found = registry.find(name)
    return found.words if found is not None else name.replace("_", " ")


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suspicious: float = Field(gt=0, lt=1)
    manipulated: float = Field(gt=0, lt=1)


class Calibration(BaseModel):
    """Logistic calibration of the fused logit: ``z -> slope * z + intercept`` (fitted data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    slope: float = Field(gt=0)
    intercept: float


class Calibrator(BaseModel):
    """Fused logit -> probability: Platt (``sigmoid(slope z + intercept)``) or isotonic
    (piecewise-linear through the fitted steps ``x`` -> ``y``, flat beyond the ends)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["platt", "isotonic"] = "platt"
    slope: float = Field(default=1.0, gt=0)
    intercept: float = 0.0
    x: list[float] = Field(default_factory=list)
    y: list[float] = Field(default_factory=list)

    def apply(self, z: float) -> float:
        if self.method == "isotonic" and self.x:
            import numpy as np

            return float(np.interp(z, self.x, self.y))
        return sigmoid(self.slope * z + self.intercept)


class KindDetector(BaseModel):
    """One detector in one kind's model: its weight and the power it showed (train-side CV AUC
    decides; eval AUC is measured afterwards and only reported)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(ge=0)
    # Neutral logit (midway between the train-side class means): a detector contributes
    # ``weight * (logit - center)``, and nothing when it did not apply, so that whether a detector
    # could run (a face found, speech present) cannot itself move the score.
    center: float = 0.0
    proven: bool = False
    auc_cv: float | None = None
    n_real: int = 0
    n_fake: int = 0
    auc_eval: float | None = None
    n_eval: int = 0
    note: str = ""


class KindThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suspicious: float = Field(gt=0, lt=1)
    manipulated: float = Field(gt=0, lt=1)
    target_fpr_suspicious: float = Field(ge=0, le=1)
    target_fpr_manipulated: float = Field(ge=0, le=1)
    train_fpr_suspicious: float | None = None
    train_fpr_manipulated: float | None = None
    # ``authentic`` needs the score below this (and a proven check that ran): chosen so at most
    # ``target_fnr_authentic`` of the train-side fakes (out of fold) fall below it, since "found
    # nothing" from a detector of modest power says little. Between it and ``suspicious``:
    # inconclusive. None (files before fusion-v5): everything below ``suspicious``.
    authentic: float | None = Field(default=None, ge=0, lt=1)
    target_fnr_authentic: float | None = Field(default=None, ge=0, le=1)
    train_fnr_authentic: float | None = None


class KindModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    detectors: dict[str, KindDetector]
    intercept: float
    calibration: Calibrator
    thresholds: KindThresholds
    logit_clip: float = Field(default=6.0, gt=0)
    # Drift reference: share of train-side scores per PSI bin (``REF_BINS``), per detector + "fused".
    reference: dict[str, list[float]] = Field(default_factory=dict)

    def proven(self) -> list[str]:
        return [n for n, d in self.detectors.items() if d.proven and d.weight > 0]


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
    kinds: dict[str, KindModel] = Field(default_factory=dict)  # per-kind models; empty: legacy rule

    @classmethod
    def load(cls, name: str | None = None) -> FusionParams:
        name = name or default_name()
        try:
            text = resources.files("veracity.fusion").joinpath("data", f"{name}.json").read_text()
        except FileNotFoundError as exc:
            raise ConfigError(f"no fusion parameters named {name!r}") from exc
        params = cls.model_validate(json.loads(text))
        if params.thresholds.suspicious >= params.thresholds.manipulated:
            raise ConfigError("fusion thresholds: suspicious must be below manipulated")
        return params

    def weight(self, detector: str) -> float:
        """The legacy rule's weight of ``detector``: this file's, else its spec's default (a
        detector the file does not list is weighed as declared, not silently dropped)."""
        if detector in self.weights:
            return self.weights[detector]
        found = registry.find(detector)
        return found.fusion_weight if found is not None else 0.0


def default_name() -> str:
    """The packaged default: ``data/DEFAULT.json`` (written by ``veracity train fusion`` when a
    new file beats the old one on the eval sets), else ``DEFAULT_FUSION``."""
    try:
        text = resources.files("veracity.fusion").joinpath("data", DEFAULT_FILE).read_text()
    except FileNotFoundError:
        return DEFAULT_FUSION
    name = json.loads(text).get("name")
    return name if isinstance(name, str) and name else DEFAULT_FUSION


def write_default(name: str, why: str = "") -> None:
    from pathlib import Path

    body = json.dumps({"name": name, "why": why}, indent=2) + "\n"
    (Path(__file__).resolve().parent / "data" / DEFAULT_FILE).write_text(body, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Check:
    """What one detector contributed to this verdict and how much it can be trusted."""

    detector: str
    applied: bool
    fused: bool  # has a weight on this kind
    weight: float
    proven: bool
    auc_cv: float | None
    auc_eval: float | None
    n_eval: int
    not_applicable: str | None
    contribution: float | None  # weight x (clipped logit - centre) (None when it did not enter)
    neutral: float = 0.5  # the score at its centre: above it, it pushes toward "fake"


@dataclass(frozen=True, slots=True)
class Explanation:
    detector: str
    text: str
    reasons: tuple[str, ...]
    contribution: float
    t: float | None = None  # seconds, where it fired most
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float | None
    label: Label
    reasons: tuple[str, ...]
    weights: dict[str, float] = field(default_factory=dict)  # normalised share per detector
    kind: str | None = None
    checked: tuple[Check, ...] = ()
    not_checked: str | None = None  # plain sentence: what could not be looked at
    explanations: tuple[Explanation, ...] = ()
    thresholds: KindThresholds | None = None


def _logit(p: float, clip: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return max(-clip, min(clip, math.log(p / (1 - p))))


def fuse(results: list[DetectorResult], params: FusionParams, kind: str | None = None) -> Verdict:
    """The verdict for ``results`` of one file of media ``kind``; files of a kind without a
    per-kind model (or legacy parameter files) use the legacy rule."""
    if kind is not None and kind in params.kinds:
        return fuse_kind(results, params, kind)
    return _fuse_legacy(results, params)


def checks(results: list[DetectorResult], model: KindModel) -> tuple[Check, ...]:
    """One entry per detector that bears on this kind: it applied, is fused, or applied to some
    train files of the kind (so av_sync is listed for a silent video, not for an image)."""
    out = []
    for r in results:
        d = model.detectors.get(r.name, KindDetector(weight=0.0))
        if r.score is None and d.weight <= 0 and d.n_real + d.n_fake == 0:
            continue
        contribution = None
        if r.score is not None and d.weight > 0:
            contribution = d.weight * (_logit(r.score, model.logit_clip) - d.center)
        out.append(Check(detector=r.name, applied=r.score is not None, fused=d.weight > 0, weight=d.weight,
                         proven=d.proven and d.weight > 0, auc_cv=d.auc_cv, auc_eval=d.auc_eval, n_eval=d.n_eval,
                         not_applicable=r.not_applicable, contribution=contribution, neutral=sigmoid(d.center)))
    return tuple(out)


def _kind_score(checked: tuple[Check, ...], model: KindModel) -> float | None:
    """Calibrated probability, or None when no detector with a weight applied."""
    parts = [c.contribution for c in checked if c.contribution is not None]
    if not parts:
        return None
    return model.calibration.apply(model.intercept + sum(parts))


def _kind_label(score: float | None, checked: tuple[Check, ...], model: KindModel,
                synthetic_detectors: list[str]) -> Label:
    """Thresholds on the probability; ``authentic``, ``manipulated`` and ``synthetic`` only when a
    proven detector applied (otherwise ``inconclusive`` / ``suspicious``)."""
    if score is None:
        return "inconclusive"
    th = model.thresholds
    proven_ran = any(c.proven and c.applied for c in checked)
    if score >= th.manipulated and proven_ran:
        top = max((c for c in checked if c.contribution is not None), key=lambda c: c.contribution or 0.0)
        return "synthetic" if top.detector in synthetic_detectors else "manipulated"
    if score >= th.suspicious:
        # Without a check of proven power the strongest word is "suspicious": a high score from
        # detectors whose power was never shown across sources is a lead, not a finding.
        return "suspicious"
    if proven_ran and (th.authentic is None or score < th.authentic):
        return "authentic"
    return "inconclusive"


def not_checked(checked: tuple[Check, ...]) -> str | None:
    """What could not be looked at, in words, e.g. "no face found (face artifacts did not run);
    spectral ran without measured power on this kind (reported, not fused); no check with proven
    power on this kind applied". None when every weighted check ran and a proven one applied."""
    missing: dict[str, list[str]] = {}
    for c in checked:
        if not c.applied and (c.fused or c.proven):
            code = c.not_applicable or "not_applicable"
            missing.setdefault(registry.why_short(code), []).append(words(c.detector))
    proven_ran = any(c.proven and c.applied for c in checked)
    if not missing and proven_ran:
        return None
    parts = [f"{why} ({', '.join(names)} did not run)" for why, names in missing.items()]
    ran = [words(c.detector) for c in checked if c.applied and c.fused]
    weak = [words(c.detector) for c in checked if c.applied and not c.fused]
    if ran and missing:
        parts.append(f"only {', '.join(ran)} checks ran")
    if weak and not proven_ran:
        parts.append(f"{', '.join(weak)} ran without measured power on this kind (reported, not fused)")
    if not proven_ran:
        parts.append("no check with proven power on this kind applied")
    return "; ".join(parts)


def explain(results: list[DetectorResult], checked: tuple[Check, ...], label: Label,
            kind: str = "video") -> tuple[Explanation, ...]:
    """The detectors that pushed the score up most, in words, with where they fired. None for
    ``authentic``: a lone detector's reason does not explain an authentic verdict."""
    if label in ("authentic", "inconclusive"):
        return ()
    by_name = {r.name: r for r in results}
    pushing = sorted((c for c in checked if (c.contribution or 0.0) > 0), key=lambda c: -(c.contribution or 0.0))
    out = []
    for c in pushing[:MAX_EXPLANATIONS]:
        r = by_name[c.detector]
        timed = kind in ("video", "audio") and bool(r.frame_scores)
        t = max(r.frame_scores, key=lambda k: r.frame_scores[k]) if timed else None
        region = None
        top_track = r.evidence.get("top_track")
        if isinstance(top_track, int):
            region = f"face #{top_track}"
        where = ", ".join(x for x in (region, None if t is None else f"strongest at {t:.1f} s") if x)
        power = f"; AUC {c.auc_eval:.2f} on our eval set" if c.auc_eval is not None else ""
        text = (f"{words(c.detector)} scored {r.score or 0.0:.2f}, above its neutral {c.neutral:.2f}"
                + (f" ({where})" if where else "") + power)
        out.append(Explanation(detector=c.detector, text=text, reasons=tuple(r.reasons),
                               contribution=round(c.contribution or 0.0, 4), t=t, region=region))
    return tuple(out)


def fuse_kind(results: list[DetectorResult], params: FusionParams, kind: str) -> Verdict:
    model = params.kinds[kind]
    checked = checks(results, model)
    score = _kind_score(checked, model)
    label = _kind_label(score, checked, model, params.synthetic_detectors)
    explanations = explain(results, checked, label, kind)
    reasons: list[str] = []
    for e in explanations:
        reasons.extend(x for x in e.reasons if x not in reasons)
    total = sum(abs(c.contribution or 0.0) for c in checked)
    shares = {c.detector: abs(c.contribution or 0.0) / total for c in checked if c.contribution is not None} \
        if total > 0 else {}
    missing = not_checked(checked)
    th = model.thresholds
    if label == "inconclusive" and missing is None and score is not None and th.authentic is not None:
        # Everything that matters ran, and the score sits between the two thresholds.
        missing = (f"the checks that ran found too little to call it either way (score {score:.2f}: authentic "
                   f"needs below {th.authentic:.2f}, suspicious starts at {th.suspicious:.2f})")
    return Verdict(score=score, label=label, reasons=tuple(reasons), weights=shares, kind=kind, checked=checked,
                   not_checked=missing, explanations=explanations, thresholds=th)


def _fuse_legacy(results: list[DetectorResult], params: FusionParams) -> Verdict:
    used = [r for r in results if r.score is not None and params.weight(r.name) > 0]
    raw = {r.name: params.weight(r.name) * max(r.confidence, 0.05) for r in used}
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
