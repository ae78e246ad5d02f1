"""The report: the API contract shared by the CLI, the service and eval.

Pydantic models so the JSON schema is generated, not hand-written (``veracity schema``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# 1.1: detectors' heatmaps are typed (``DetectorReport.heatmaps``), no longer evidence lists;
# 1.0 reports still load (the lists are read as heatmaps).
SCHEMA_VERSION = "1.1"

Label = Literal["authentic", "suspicious", "manipulated", "synthetic", "inconclusive"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceInfo(_Model):
    name: str = Field(description="File name as given (no directories, so reports can be shared).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)


class MediaSummary(_Model):
    kind: Literal["video", "image", "audio"]
    container: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = Field(default=None, ge=0)
    fps: float | None = Field(default=None, gt=0)
    frame_count: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    has_audio: bool = False
    audio_sample_rate: int | None = None
    animated: bool = False
    frames_analysed: int = Field(ge=0, description="Sparse + dense frames decoded for this report.")
    dense_windows: list[tuple[float, float]] = Field(
        default_factory=list, description="Start and end (s) of each dense window."
    )


class Provenance(_Model):
    credential_present: bool = False
    validation_state: Literal["Invalid", "Valid", "Trusted"] | None = None
    status_codes: list[str] = Field(default_factory=list)
    digital_source_type: str | None = None
    watermarks: list[str] = Field(default_factory=list)
    checked: bool = Field(default=False, description="False until provenance checks run on this input.")
    note: str | None = None
    trust: str | None = Field(default=None, description="One line, e.g. 'signed, signer not on your trust list'.")
    signer: str | None = Field(default=None, description="Common name of the C2PA signing certificate.")
    issuer: str | None = None
    claim_generator: str | None = None
    declares_ai: bool = Field(default=False, description="A valid credential or a watermark declares AI generation.")
    metadata: dict[str, str] = Field(default_factory=dict, description="Generator/camera metadata facts (EXIF, XMP).")


class HeatmapImage(_Model):
    """Where a detector found its evidence, drawn over the face crop or picture it scored."""

    jpeg_b64: str = Field(description="The image (JPEG, base64).")
    track_id: int | None = Field(default=None, description="The face track it belongs to; null: the whole picture.")
    t: float | None = Field(default=None, ge=0, description="Seconds from the start.")
    score: float | None = Field(default=None, ge=0, le=1, description="The detector's score for what it shows.")


# Evidence keys that carried heatmaps in reports stored before ``DetectorReport.heatmaps``: the
# images and, matched by position, their tracks, times and scores (and the top map's CAM cells).
_LEGACY_HEATMAP_KEYS = ("heatmap_jpeg_b64", "heatmap_track_ids", "heatmap_t", "heatmap_scores", "heatmap_cells")


def _nth(values: object, i: int) -> object:
    return values[i] if isinstance(values, list) and i < len(values) else None


def _in_range(value: object, lo: float, hi: float) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
    return float(value) if ok else None  # type: ignore[arg-type]


class DetectorReport(_Model):
    name: str
    version: str
    applied: bool
    score: float | None = Field(default=None, ge=0, le=1)
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)
    not_applicable: str | None = None
    evidence: dict[str, float | int | str | bool | list[float] | list[int] | list[str] | None] = Field(
        default_factory=dict
    )
    heatmaps: list[HeatmapImage] = Field(default_factory=list, description="Where it found evidence, drawn.")
    weight: float = Field(default=0.0, ge=0, description="Share of the fused score (0 when not applied).")
    elapsed_ms: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _legacy_heatmaps(cls, data: Any) -> Any:
        """A stored report from before typed heatmaps still loads: its heatmap evidence lists
        become ``heatmaps`` (values of the wrong type are dropped, not fatal)."""
        if not isinstance(data, dict) or not isinstance(data.get("evidence"), dict):
            return data
        evidence = dict(data["evidence"])
        if "heatmap_jpeg_b64" not in evidence:
            return data
        old = {k: evidence.pop(k, None) for k in _LEGACY_HEATMAP_KEYS}
        images = old["heatmap_jpeg_b64"]
        lifted = []
        for i, image in enumerate(images if isinstance(images, list) else [images]):
            track, t, score = (_nth(old[k], i) for k in ("heatmap_track_ids", "heatmap_t", "heatmap_scores"))
            if isinstance(image, str):
                lifted.append({"jpeg_b64": image, "track_id": track if type(track) is int else None,
                               "t": _in_range(t, 0.0, math.inf), "score": _in_range(score, 0.0, 1.0)})
        return {**data, "evidence": evidence, "heatmaps": [*data.get("heatmaps", []), *lifted]}


class CheckedDetector(_Model):
    """What one detector checked on this input, and the power it has shown on this kind of media."""

    detector: str
    applied: bool
    fused: bool = Field(description="Has a weight in this kind's fusion (measured power on the train side).")
    weight: float = Field(ge=0, description="Fusion weight on its clipped logit (0: reported, not fused).")
    proven: bool = Field(description="Power high enough that its finding nothing can earn 'authentic'.")
    auc_train_cv: float | None = Field(default=None, description="Train-side AUC of its score on this kind.")
    auc_eval: float | None = Field(default=None, description="AUC on our eval files of this kind (measured only).")
    n_eval: int = Field(default=0, ge=0, description="Eval files of this kind it applied to.")
    not_applicable: str | None = None
    contribution: float | None = Field(default=None, description="Weight x logit it added to the fused logit.")
    text: str = Field(default="", description="One plain sentence: what it checked and with which power.")


class Explanation(_Model):
    """One of the top reasons: a detector that moved the score up, in words, with where it fired."""

    detector: str
    text: str
    reasons: list[str] = Field(default_factory=list)
    contribution: float
    t: float | None = Field(default=None, ge=0, description="Seconds where it fired most.")
    region: str | None = None


class LabelThresholds(_Model):
    suspicious: float = Field(gt=0, lt=1)
    manipulated: float = Field(gt=0, lt=1, description="Also the 'synthetic' threshold.")
    target_fpr_suspicious: float = Field(ge=0, le=1, description="Share of train-side reals allowed above it.")
    target_fpr_manipulated: float = Field(ge=0, le=1)
    authentic: float | None = Field(default=None, ge=0, lt=1,
                                    description="'authentic' needs the score below this (None: below 'suspicious').")
    target_fnr_authentic: float | None = Field(default=None, ge=0, le=1,
                                               description="Share of train-side fakes allowed below 'authentic'.")


class TimelinePoint(_Model):
    t: float = Field(ge=0, description="Seconds from the start.")
    faces: int = Field(ge=0)
    scores: dict[str, float] = Field(default_factory=dict, description="Detector -> score at this time.")


class FaceSummary(_Model):
    track_id: int
    first_s: float
    last_s: float
    observations: int
    crop_jpeg_b64: list[str] = Field(default_factory=list, description="A few aligned crops (JPEG, base64).")


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    veracity_version: str
    source: SourceInfo
    media: MediaSummary
    deepfake_score: float | None = Field(ge=0, le=1, description="Fused score; null when no detector applied.")
    label: Label
    reasons: list[str]
    provenance: Provenance
    detectors: list[DetectorReport]
    timeline: list[TimelinePoint]
    faces: list[FaceSummary]
    warnings: list[str] = Field(default_factory=list)
    checked: list[CheckedDetector] = Field(
        default_factory=list, description="Every detector: applied or not, and its measured power on this kind."
    )
    not_checked: str | None = Field(default=None, description="Plain sentence: what could not be looked at.")
    explanations: list[Explanation] = Field(default_factory=list, description="Top reasons, strongest first.")
    thresholds: LabelThresholds | None = Field(default=None, description="Score thresholds of the labels.")
    model_versions: dict[str, str]
    fusion_version: str
    timings_ms: dict[str, float]
    elapsed_ms: float = Field(ge=0)
    mode: Literal["full", "fast"] = Field(
        default="full", description="fast: triage on a few sparse frames and the cheapest detectors."
    )
    skipped: list[str] = Field(
        default_factory=list, description="What fast mode left out: detector names, and dense_windows."
    )
    escalated: bool = Field(default=False, description="A fast analysis was not authentic and ran again in full.")


class ErrorReport(_Model):
    """One failed input of a batch: the batch goes on."""

    source: str
    error: dict[str, str] = Field(description="{code, message}")
