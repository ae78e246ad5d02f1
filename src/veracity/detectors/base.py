"""The detector contract: a small protocol, one validated result type, and the shared context.

A detector that does not apply returns ``score=None`` with a reason (``no_face``, ``no_audio``),
never 0.5: fusion leaves it out instead of counting a guess. :func:`run_detector` is the one
prologue every detector shares (input kind, ``applies``, a missing model, timing), so a
detector's ``applies`` checks only what it needs of the content and its ``run`` only scores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from veracity.config import AnalysisSettings, Options
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceResult
from veracity.media.types import DecodedMedia, MediaKind

MODEL_UNAVAILABLE = "model_unavailable"  # a model (card, weights, fetched asset) is not installed
# The same, for a detector whose missing model is one ``veracity models fetch`` brings (its
# ``unavailable`` attribute names the code run_detector reports).
MODEL_UNAVAILABLE_FETCH = "model_unavailable: run `veracity models fetch`"
EvidenceValue = float | int | str | bool | None | list[float] | list[int] | list[str]


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Where a detector found its evidence, drawn: an RGB image (already blended over the face
    crop or the picture it scored), with the face track and the moment it belongs to. The report
    encodes it once, when it is built (``report.images``); detectors never encode images."""

    image: npt.NDArray[np.uint8]  # H x W x 3, RGB
    score: float | None = None  # the detector's score for what the image shows
    t: float | None = None  # seconds
    track_id: int | None = None  # the face track it belongs to; None: the whole picture

    def __post_init__(self) -> None:
        shape = self.image.shape
        if self.image.dtype != np.uint8 or len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < 1:
            raise ValueError(f"heatmap image must be H x W x 3 uint8, not {self.image.dtype} {shape}")
        if self.score is not None and not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise ValueError(f"heatmap score {self.score} outside [0, 1]")
        if self.t is not None and not (math.isfinite(self.t) and self.t >= 0):
            raise ValueError(f"heatmap time {self.t} must be a non-negative number of seconds")


@dataclass(frozen=True, slots=True)
class DetectorResult:
    """What one detector concluded. Validated on construction."""

    name: str
    version: str
    score: float | None  # 0 = looks authentic, 1 = looks manipulated; None = did not apply
    confidence: float = 0.0  # how much to trust the score (0..1); fusion weighs by it
    reasons: tuple[str, ...] = ()
    frame_scores: Mapping[float, float] = field(default_factory=dict)  # timestamp (s) -> score
    evidence: Mapping[str, EvidenceValue] = field(default_factory=dict)  # key numbers
    heatmaps: tuple[Heatmap, ...] = ()  # images of where it found evidence, strongest first
    not_applicable: str | None = None  # why score is None
    elapsed_ms: float = 0.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("detector result needs a name")
        if self.score is None:
            if not self.not_applicable:
                raise ValueError(f"{self.name}: a result without score must say why (not_applicable)")
        elif not (math.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise ValueError(f"{self.name}: score {self.score} outside [0, 1]")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"{self.name}: confidence {self.confidence} outside [0, 1]")
        for t, s in self.frame_scores.items():
            if not (math.isfinite(t) and t >= 0 and math.isfinite(s) and 0.0 <= s <= 1.0):
                raise ValueError(f"{self.name}: bad frame score {t}: {s}")
        if self.elapsed_ms < 0:
            raise ValueError("elapsed_ms must be non-negative")

    @property
    def applied(self) -> bool:
        return self.score is not None

    @classmethod
    def skipped(cls, name: str, version: str, reason: str, **evidence: EvidenceValue) -> DetectorResult:
        return cls(name=name, version=version, score=None, not_applicable=reason, evidence=evidence)


@dataclass(frozen=True, slots=True)
class Applicability:
    """``applies()`` answer: truthy when the detector should run, else carries the reason."""

    ok: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def yes(cls) -> Applicability:
        return cls(True)

    @classmethod
    def no(cls, reason: str) -> Applicability:
        return cls(False, reason)


@dataclass(slots=True)
class AnalysisContext:
    """Everything a detector may read. Detectors never decode media or call each other."""

    media: DecodedMedia
    faces: FaceResult
    options: Options
    settings: AnalysisSettings
    cache: dict[str, Any] = field(default_factory=dict)  # per-analysis scratch shared by stages

    @property
    def kind(self) -> MediaKind:
        return self.media.info.kind


@runtime_checkable
class Detector(Protocol):
    """Inference-only plugin contract. Constructing one loads nothing; ``run`` loads lazily."""

    name: str
    version: str
    modalities: tuple[MediaKind, ...]

    def applies(self, ctx: AnalysisContext) -> Applicability:
        """Whether the content has what it needs (a face, speech); the input's kind is already
        among ``modalities`` (:func:`run_detector` checks that)."""
        ...

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        """Score an input it applies to; may raise ``ModelUnavailable`` (reported as skipped)."""
        ...


def wrong_kind(modalities: tuple[MediaKind, ...]) -> str:
    """The not-applicable code for an input of a kind the detector does not look at, named by
    what the detector needs: ``not_video`` / ``not_image`` (one kind only), ``no_audio`` (it
    listens), else ``no_frames`` (it looks at pictures, and the input has none)."""
    if set(modalities) == {"video"}:
        return "not_video"
    if set(modalities) == {"image"}:
        return "not_image"
    return "no_audio" if "audio" in modalities else "no_frames"


def run_detector(det: Detector, ctx: AnalysisContext) -> DetectorResult:
    """Run one detector: the kind check, ``applies``, a missing model read as skipped
    (``model_unavailable``, never a crash or a guess) and the timing, once for every detector."""
    t = time.perf_counter()
    if ctx.kind not in det.modalities:
        result = DetectorResult.skipped(det.name, det.version, wrong_kind(det.modalities))
    elif not (verdict := det.applies(ctx)):
        result = DetectorResult.skipped(det.name, det.version, verdict.reason or "not_applicable")
    else:
        try:
            result = det.run(ctx)
        except ModelUnavailable as exc:
            code = getattr(det, "unavailable", MODEL_UNAVAILABLE)
            result = DetectorResult.skipped(det.name, det.version, code, error=str(exc))
    return replace(result, elapsed_ms=(time.perf_counter() - t) * 1000.0)


def sigmoid(x: float) -> float:
    """Numerically safe logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def clamp01(x: float) -> float:
    return 0.0 if not math.isfinite(x) else min(1.0, max(0.0, x))
