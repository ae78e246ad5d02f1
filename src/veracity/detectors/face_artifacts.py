"""Face artifacts: a CNN on aligned face crops that spots blending seams and re-rendered texture.

The network (EfficientNet-Lite0, trained on self-blended images and DeepFaceLive swaps;
``train/face_artifacts``) scores each aligned crop the face stage cut (``faces/align.py``,
224 px, resized to the model's input) and also returns its class activation map (CAM): the
head's weights applied at every cell of the last feature map, whose mean is the logit. The CAM
is the "where" of the evidence.

Aggregation (documented contract), in logits, calibrated once at the end:
- track logit = mean of the top third (at least one) of its crop logits: a face swap is rarely
  visible in every frame, and one odd frame should not decide;
- media logit = the highest track logit (one manipulated face is enough), among tracks seen in
  at least two sparse frames when any such track exists (short-lived tracks are often false
  detections); a still image has one crop per face;
- score = sigmoid(a * logit + b), the Platt calibration fitted on the held-out train side
  (card ``metrics.calibration``), so a crop's score is a probability.

Reasons (when the media score reaches the card's ``manipulated`` threshold, ``metrics.threshold``,
fixed on the held-out train side; ``REASON_THRESHOLD`` without one): for the flagged crop, the positive
CAM mass per area in a band around the face outline (mesh convex hull) is compared with the
interior: the band wins -> ``blending_boundary``, the interior -> ``texture_artifacts``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from veracity.detectors.base import AnalysisContext, Applicability, DetectorResult, Heatmap, clamp01
from veracity.errors import ModelUnavailable
from veracity.faces.align import align_crop, alignment_matrix
from veracity.faces.types import FaceObservation
from veracity.media.types import MediaKind
from veracity.models.cards import DATA_DIR, DATA_PACKAGE, ModelCard, load_card

CARD_NAME = "face_artifacts-v4"
INPUT = 160  # the model's input side (read from the graph when loaded)
CROP = 224
MEAN = np.asarray((0.485, 0.456, 0.406), dtype=np.float32)
STD = np.asarray((0.229, 0.224, 0.225), dtype=np.float32)
REASON_THRESHOLD = 0.6
MAX_CROPS = 48  # spread evenly over the clip
MAX_HEATMAPS = 4
HEATMAP_SIDE = 112
BASE_CONFIDENCE = 0.8
FULL_CONFIDENCE_CROPS = 6

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


TOP_SHARE = 3  # a track's logit is the mean of its top 1/TOP_SHARE crop logits


def sigmoid(z: float | npt.NDArray[np.float64]) -> Any:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


@dataclass(frozen=True, slots=True)
class CropScore:
    track_id: int
    t: float
    crop: U8
    score: float  # calibrated probability
    logit: float
    cam: F32  # (h, w) logits per cell
    points: npt.NDArray[np.float64] | None  # mesh in crop pixels, when known


@dataclass(slots=True)
class FaceModel:
    """An onnxruntime session over the exported graph: ``input`` -> ``logit``, ``cam``."""

    path: Path
    version: str
    threads: int = 1
    calibration: tuple[float, float] = (1.0, 0.0)  # (a, b): probability = sigmoid(a * logit + b)
    threshold: float = REASON_THRESHOLD  # calibrated score from which a face counts as flagged
    _session: Any = field(default=None, repr=False)

    def session(self) -> Any:
        if self._session is None:
            from veracity.models.runtime import onnx_session

            self._session = onnx_session(self.path, threads=self.threads)
        return self._session

    def input_side(self) -> int:
        shape = self.session().get_inputs()[0].shape
        return int(shape[2]) if isinstance(shape[2], int) else INPUT

    def probability(self, logit: float | npt.NDArray[np.float64]) -> Any:
        a, b = self.calibration
        return sigmoid(a * np.asarray(logit, np.float64) + b)

    def predict(self, crops: list[U8], batch: int = 16) -> tuple[npt.NDArray[np.float64], F32]:
        """Raw logits (N,) and CAMs (N, h, w) for aligned crops of any square size."""
        if not crops:
            return np.zeros(0), np.zeros((0, INPUT // 32, INPUT // 32), dtype=np.float32)
        side = self.input_side()
        logits: list[npt.NDArray[np.float64]] = []
        cams: list[F32] = []
        for start in range(0, len(crops), batch):
            x = preprocess(crops[start:start + batch], side)
            logit, cam = self.session().run(["logit", "cam"], {"input": x})
            logits.append(np.asarray(logit, np.float64))
            cams.append(np.asarray(cam, dtype=np.float32))
        return np.concatenate(logits), np.concatenate(cams)

    @classmethod
    def from_card(cls, card: ModelCard, threads: int = 1, base: Path | None = None) -> FaceModel:
        """The model of a card: its file in the package's data folder, or beside the card in
        ``base`` (a frozen copy a benchmark measures while training goes on)."""
        if card.kind != "onnx" or card.file is None:
            raise ModelUnavailable(f"model {card.name!r} is not an ONNX file model")
        if base is not None:
            path = card.file_path(base)
        else:
            with resources.as_file(resources.files(DATA_PACKAGE).joinpath(DATA_DIR)) as folder:
                path = card.file_path(Path(folder))
        cal = card.metrics.get("calibration") or {}
        thr = card.metrics.get("threshold") or {}
        return cls(path=path, version=card.version, threads=threads,
                   calibration=(float(cal.get("a", 1.0)), float(cal.get("b", 0.0))),
                   threshold=float(thr.get("value", REASON_THRESHOLD)))


def preprocess(crops: list[U8], side: int = INPUT) -> F32:
    """Square RGB crops -> (N, 3, side, side) float32 with ImageNet mean/std (as in training)."""
    out = np.empty((len(crops), side, side, 3), dtype=np.float32)
    for i, c in enumerate(crops):
        if c.ndim != 3 or c.shape[2] != 3:
            raise ValueError(f"expected HxWx3 crops, got {c.shape}")
        interp = cv2.INTER_AREA if c.shape[0] >= side else cv2.INTER_LINEAR
        out[i] = cv2.resize(np.ascontiguousarray(c), (side, side), interpolation=interp)
    out = (out / 255.0 - MEAN) / STD
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2), dtype=np.float32)


# -- crops ----------------------------------------------------------------------------------------

def _crop_points(obs: FaceObservation, width: int, height: int) -> npt.NDArray[np.float64] | None:
    matrix = alignment_matrix(obs, width, height, CROP)
    if matrix is None:
        return None
    pix = obs.pixels()[:, :2] * np.array([width / obs.frame_size[0], height / obs.frame_size[1]])
    return np.asarray(pix @ matrix[:, :2].T + matrix[:, 2], dtype=np.float64)


def gather_crops(ctx: AnalysisContext) -> list[tuple[int, float, U8, npt.NDArray[np.float64] | None]]:
    """(track id, t, aligned crop, mesh in crop pixels) for sparse/still observations: the
    crops the face stage kept, else cut here from the sparse frames the same way."""
    frames = {f.t: f for f in ctx.media.sparse}
    out: list[tuple[int, float, U8, npt.NDArray[np.float64] | None]] = []
    for track in ctx.faces.tracks:
        for obs in track.observations:
            if obs.role not in ("sparse", "still"):
                continue
            frame = frames.get(obs.t)
            crop = track.crops.get(obs.t)
            if crop is None and frame is not None:
                crop = align_crop(frame.rgb, obs, CROP)
            if crop is None:
                continue
            w, h = (frame.width, frame.height) if frame is not None else obs.frame_size
            pts = _crop_points(obs, w, h) if crop.shape[0] == CROP else None
            out.append((track.track_id, obs.t, crop, pts))
    if len(out) > MAX_CROPS:
        keep = np.linspace(0, len(out) - 1, MAX_CROPS).round().astype(int)
        out = [out[i] for i in dict.fromkeys(keep.tolist())]
    return out


# -- aggregation ----------------------------------------------------------------------------------

def track_score(scores: list[float]) -> float:
    """Mean of the top third (at least one) of a track's crop logits (or scores)."""
    if not scores:
        raise ValueError("a track score needs at least one crop score")
    top = sorted(scores, reverse=True)[: max(1, math.ceil(len(scores) / TOP_SHARE))]
    return float(np.mean(top))


def media_score(by_track: dict[int, list[float]]) -> tuple[float, int]:
    """(track value, track id): the highest track value, preferring tracks seen at least twice."""
    if not by_track:
        raise ValueError("no track to score")
    steady = {k: v for k, v in by_track.items() if len(v) >= 2} or by_track
    scored = {k: track_score(v) for k, v in steady.items()}
    best = max(scored, key=lambda k: scored[k])
    return scored[best], best


def boundary_share(cam: F32, points: npt.NDArray[np.float64] | None, size: int = CROP) -> float | None:
    """Positive CAM mass per pixel in a band around the face outline, over band + interior
    densities (0.5 = even). None without landmarks or without positive evidence."""
    if points is None:
        return None
    heat = cv2.resize(np.maximum(cam, 0).astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    hull = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(points[:, :2]).astype(np.int32)), (1,))
    k = np.ones((max(3, size // 12),) * 2, np.uint8)
    band = cv2.dilate(hull, k).astype(bool) & ~cv2.erode(hull, k).astype(bool)
    inner = cv2.erode(hull, k).astype(bool)
    if not band.any() or not inner.any() or float(heat.sum()) <= 0:
        return None
    d_band = float(heat[band].mean())
    d_inner = float(heat[inner].mean())
    return d_band / max(d_band + d_inner, 1e-12)


def heatmap_overlay(crop: U8, cam: F32, side: int = HEATMAP_SIDE) -> U8:
    """The crop with its CAM (positive part, scaled to the map's maximum) as a JET overlay."""
    base = cv2.resize(np.ascontiguousarray(crop), (side, side), interpolation=cv2.INTER_AREA)
    pos = np.maximum(cam.astype(np.float32), 0)
    top = float(pos.max())
    norm = pos / top if top > 0 else pos
    heat = cv2.resize(norm, (side, side), interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    alpha = (0.55 * np.clip(heat, 0, 1))[..., None]
    return np.asarray(np.clip(base * (1 - alpha) + colour * alpha, 0, 255), dtype=np.uint8)


# -- detector -------------------------------------------------------------------------------------

class FaceArtifactsDetector:
    """Scores aligned faces for blending seams and texture artifacts (self-blends + face swaps)."""

    name = "face_artifacts"
    version = "4.0.0"  # the card's version; tests check they agree
    modalities: tuple[MediaKind, ...] = ("video", "image")

    def __init__(self, *, model: FaceModel | None = None, card: str = CARD_NAME) -> None:
        self._model = model
        self._card = card

    def _get_model(self, threads: int) -> FaceModel:
        if self._model is None:
            self._model = FaceModel.from_card(load_card(self._card), threads=threads)
        return self._model

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if not ctx.faces.any:
            return Applicability.no("no_face")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        model = self._get_model(ctx.settings.onnx_threads)
        items = gather_crops(ctx)
        if not items:
            return DetectorResult.skipped(self.name, model.version, "no_face_crop")
        logits, cams = model.predict([c for _, _, c, _ in items])
        probs = np.asarray(model.probability(logits), dtype=np.float64)
        scored = [CropScore(tid, t, crop, float(p), float(lg), cam, pts)
                  for (tid, t, crop, pts), p, lg, cam in zip(items, probs, logits, cams, strict=True)]
        by_track: dict[int, list[float]] = {}
        for s in scored:
            by_track.setdefault(s.track_id, []).append(s.logit)
        media_logit, top_track = media_score(by_track)
        score = clamp01(float(model.probability(media_logit)))

        frame_scores: dict[float, float] = {}
        for s in scored:
            frame_scores[s.t] = max(frame_scores.get(s.t, 0.0), clamp01(s.score))

        reasons: list[str] = []
        evidence: dict[str, Any] = {
            "n_crops": len(scored),
            "n_tracks": len(by_track),
            "top_track": top_track,
            "track_scores": [round(float(model.probability(track_score(v))), 4) for _, v in sorted(by_track.items())],
            "max_crop_score": round(float(probs.max()), 4),
            "media_logit": round(media_logit, 4),
            "aggregation": "track: mean of the top third of crop logits; media: max over tracks seen in >= 2 "
                           "frames; score: Platt-calibrated sigmoid",
        }
        flagged = [s for s in scored if s.score >= model.threshold]
        evidence["threshold"] = round(model.threshold, 4)
        if score >= model.threshold and flagged:
            best = max((s for s in flagged if s.track_id == top_track), key=lambda s: s.score,
                       default=max(flagged, key=lambda s: s.score))
            share = boundary_share(best.cam, best.points)
            evidence["boundary_share"] = None if share is None else round(share, 4)
            reasons.append("blending_boundary" if share is not None and share > 0.5 else "texture_artifacts")
        # One heatmap per flagged face (its highest-scoring crop), the top track first.
        per_track: dict[int, CropScore] = {}
        for s in sorted(flagged, key=lambda s: -s.score):
            per_track.setdefault(s.track_id, s)
        maps = sorted(per_track.values(), key=lambda s: (s.track_id != top_track, -s.score))[:MAX_HEATMAPS]
        heatmaps = tuple(Heatmap(heatmap_overlay(s.crop, s.cam), score=s.score, t=s.t, track_id=s.track_id)
                         for s in maps)
        n = len(by_track.get(top_track, []))
        confidence = BASE_CONFIDENCE * min(1.0, math.sqrt(n / FULL_CONFIDENCE_CROPS)) if ctx.kind == "video" \
            else BASE_CONFIDENCE * 0.75
        return DetectorResult(
            name=self.name,
            version=model.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=tuple(reasons),
            frame_scores=frame_scores,
            evidence=evidence,
            heatmaps=heatmaps,
        )


__all__ = ["FaceArtifactsDetector", "FaceModel", "boundary_share", "media_score", "track_score"]
