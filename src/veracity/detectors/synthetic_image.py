"""Synthetic-image detector: fully generated stills (GAN, diffusion) scored on native pixels.

v1 resized every picture to a small bottleneck before a frozen CLIP encoder; that erased the
up-sampling traces generators leave, and the head learnt the picture's subject instead (AUC
0.50 on eval/image). v2 never resizes the image first. It cuts crops at the image's own
resolution, spread over it (:func:`crop_boxes`), scores each, and averages the crop logits:

* **clip** view: the CLIP ViT-B/16 (int8) embedding of ``GRID`` x ``GRID`` 224 px crops and a
  linear probe retrained on them (UnivFD, Ojha et al. 2023);
* **cnn** view (when the calibration uses it): ``CNN_GRID`` x ``CNN_GRID`` native 128 px crops
  through the frozen ImageNet EfficientNet-Lite0, per-channel mean / std of five blocks'
  outputs (texture statistics at strides 4-32, ``models/patch_cnn.py``) and a linear probe.
  A fine-tuned CNN (Wang et al. 2020; Corvi et al. 2023) did not fit this CPU budget (see the
  card notes);
* **spectrum** view (when the calibration uses it): ``SPECTRUM_GRID`` x ``SPECTRUM_GRID`` native
  ``SPECTRUM_CROP`` px crops, hand-made fingerprint features of their noise residual in numpy
  (radial power spectrum, up-sampling peaks, residual statistics;
  ``models/residual_spectrum.py``) and a linear probe kept inline in the card
  (``params["spectrum_head"]``). Content-light and a few ms per crop, where the other two views
  read the subject and cost most of the time.

The views' mean logits are combined by a logistic calibration fitted on held-out training
images (Platt scaling; with two views, a two-input logistic), so the score is a probability
and ``threshold`` (chosen on the same held-out images) is where the reason
``ai_generated_image`` is given. Training (``veracity train synthetic_image``) puts both classes
through the same degradation chain (resize, blur, JPEG / WebP / none) so format and
compression do not tell them apart; the card records every figure per source.

Evidence a person can look at: each crop's calibrated score (``crop_scores``, boxes in
``crop_boxes`` as y, x, side triples) and, when the image is flagged, a small heatmap of those
scores over the image (a typed ``Heatmap``, as face_artifacts gives). Provenance stays
first: a credential that declares AI generation decides the verdict in fusion before this
score is read. Stills only: video frames are compressed in ways no training image was.

Measured (card ``synthetic_image-v2``, both views fused): leave-one-generator-out AUC on train
(per view) clip 0.41-1.00 (mean 0.885), cnn 0.23-0.95 (mean 0.769); the 128 px StyleGAN2 faces
are the generator neither finds unseen. Held-out train quarter 0.967 (clip 0.964, cnn 0.893).
eval/image of ../shared/data 0.59, SOURCES eval 0.03 (its CelebA-HQ "reals" were made with an
adversarially trained 4x super-resolution network, Karras et al. 2018, and score as generated),
pooled 0.37: far from the 0.95 target. Eval reals re-saved as WebP q80 / JPEG q75 cross the
threshold in 3 / 3 of 138 cases.

The spectrum view was tried on 2026-12-01 and is not in the packaged card (selectable with
``veracity train synthetic_image --view spectrum``): alone, leave-one-generator-out on train
0.40-0.87 (mean 0.719), held-out quarter 0.815, but eval/image 0.60 and SOURCES eval 0.53 (not
inverted; pooled 0.61), with more re-save crossings (WebP q80 / JPEG q75: 12 / 6 of 138).
Fused with clip and cnn the calibration gives it a small negative weight: held-out quarter
0.9666 (0.9667 without), eval 0.59 / 0.02, pooled 0.37, so it failed the release gate.

The CLIP encoder is a fetched asset (``veracity models fetch``); without it the detector reports
``model_unavailable: ...`` and no score.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt

from veracity.config import AnalysisSettings
from veracity.detectors.base import (
    MODEL_UNAVAILABLE_FETCH,
    AnalysisContext,
    Applicability,
    DetectorResult,
    Heatmap,
    clamp01,
    sigmoid,
)
from veracity.errors import ModelUnavailable
from veracity.media.types import MediaKind
from veracity.models.cards import ModelCard, load_card
from veracity.models.clip import CARD_NAME as ENCODER_CARD
from veracity.models.clip import EMBED_DIM, ClipEncoder, to_rgb3
from veracity.models.logistic import StandardLogistic
from veracity.models.patch_cnn import FEATURE_DIM, PatchCnn
from veracity.models.residual_spectrum import N_FEATURES as SPECTRUM_DIM
from veracity.models.residual_spectrum import batch_features as spectrum_batch
from veracity.models.residual_spectrum import feature_config as spectrum_feature_config

CARD_NAME = "synthetic_image-v2"
CNN_HEAD_CARD = "synthetic_image_cnn-v2"  # the CNN view's probe (inline logistic)
CNN_EXTRACTOR_CARD = "effnet_lite0_pooled-v1"  # its frozen feature extractor (ONNX)
CLIP_CROP = 224  # native crop side fed to the encoder (its input size: no resize for larger images)
GRID = 2  # inference: GRID x GRID CLIP crops spread over the image
FAST_GRID = 1  # fast (triage) mode: the centre CLIP crop only, a quarter of the encoder's work
CNN_CROP = 128  # native crop side of the CNN view
CNN_GRID = 3  # inference: CNN_GRID x CNN_GRID CNN crops
SPECTRUM_CROP = 128  # native crop side of the spectrum view (the CNN's crops: its training crops are reused)
SPECTRUM_GRID = 3  # inference: SPECTRUM_GRID x SPECTRUM_GRID spectrum crops
SPECTRUM_KEY = "spectrum_head"  # where the main card's params keep the spectrum probe
VIEWS = ("clip", "cnn", "spectrum")
BASE_CONFIDENCE = 0.6
MIN_SIDE = 64  # below this an image says too little (icons, thumbnails)
HEATMAP_SIDE = 160
DATA_PACKAGE = "veracity.models"
DATA_DIR = "data"
UNAVAILABLE = MODEL_UNAVAILABLE_FETCH  # the not-applicable code when its models are not fetched

FloatArray = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


def crop_boxes(h: int, w: int, side: int, grid: int) -> list[tuple[int, int, int]]:
    """``(y0, x0, s)`` of up to ``grid`` x ``grid`` squares of side ``s = min(side, h, w)`` spread
    evenly over the image at its own resolution (no resize): the outer crops touch the image's
    edges, so all of a small image and a spread sample of a large one is seen. Duplicates (an
    axis too short for two crops) are dropped."""
    s = max(1, min(side, h, w))
    ys = sorted({int(round(v)) for v in np.linspace(0, h - s, grid)}) if grid > 1 else [(h - s) // 2]
    xs = sorted({int(round(v)) for v in np.linspace(0, w - s, grid)}) if grid > 1 else [(w - s) // 2]
    return [(y, x, s) for y in ys for x in xs]


def native_crops(rgb: U8, side: int, grid: int) -> tuple[list[U8], list[tuple[int, int, int]]]:
    """The crops of :func:`crop_boxes` (copies, native pixels) and their boxes."""
    rgb = to_rgb3(rgb)
    boxes = crop_boxes(rgb.shape[0], rgb.shape[1], side, grid)
    return [np.ascontiguousarray(rgb[y:y + s, x:x + s]) for y, x, s in boxes], boxes


def preprocessing_config() -> dict[str, object]:
    """The constants the head was trained with; a card trained on others is refused."""
    return {"id": "clip-native-crops/1", "encoder": ENCODER_CARD, "crop": CLIP_CROP, "grid": GRID}


@dataclass(frozen=True, slots=True)
class LinearHead(StandardLogistic):
    """The CLIP probe: standardise the unit embedding, then logistic regression."""

    n_features: ClassVar[int] = EMBED_DIM
    config_key: ClassVar[str] = "preprocessing"
    noun: ClassVar[str] = "head"
    mismatch: ClassVar[str] = "was trained with other preprocessing"

    @classmethod
    def config(cls) -> dict[str, object]:
        return preprocessing_config()


def cnn_features_config() -> dict[str, object]:
    return {"id": "effnet-lite0-imagenet-pooled/1", "extractor": CNN_EXTRACTOR_CARD, "crop": CNN_CROP,
            "grid": CNN_GRID}


@dataclass(frozen=True, slots=True)
class CnnHead(StandardLogistic):
    """The CNN-view probe: standardise the pooled EfficientNet-Lite0 features, then logistic."""

    n_features: ClassVar[int] = FEATURE_DIM
    config_key: ClassVar[str] = "features"
    noun: ClassVar[str] = "head"

    @classmethod
    def config(cls) -> dict[str, object]:
        return cnn_features_config()


def spectrum_config() -> dict[str, object]:
    return {**spectrum_feature_config(), "crop": SPECTRUM_CROP, "grid": SPECTRUM_GRID}


@dataclass(frozen=True, slots=True)
class SpectrumHead(StandardLogistic):
    """The spectrum-view probe: standardise the residual-spectrum features, then logistic."""

    n_features: ClassVar[int] = SPECTRUM_DIM
    config_key: ClassVar[str] = "features"
    noun: ClassVar[str] = "head"

    @classmethod
    def config(cls) -> dict[str, object]:
        return spectrum_config()


@dataclass(frozen=True, slots=True)
class Calibration:
    """``p = sigmoid(sum_v coef[v] * mean crop logit of view v + intercept)``; ``threshold`` is
    where the reason is given. Fitted on held-out training images."""

    views: tuple[str, ...]  # among VIEWS: "clip", "cnn", "spectrum"
    coef: tuple[float, ...]
    intercept: float
    threshold: float

    def __post_init__(self) -> None:
        if not self.views or len(self.views) != len(self.coef) or not set(self.views) <= set(VIEWS):
            raise ValueError(f"calibration needs one coefficient per view {VIEWS}")
        if not all(np.isfinite([*self.coef, self.intercept, self.threshold])) or not 0 < self.threshold < 1:
            raise ValueError("calibration numbers must be finite and the threshold in (0, 1)")

    def logit(self, view_logits: dict[str, float]) -> float:
        return float(sum(c * view_logits[v] for v, c in zip(self.views, self.coef, strict=True)) + self.intercept)

    def prob(self, view_logits: dict[str, float]) -> float:
        return clamp01(sigmoid(self.logit(view_logits)))

    def params(self) -> dict[str, object]:
        return {"views": list(self.views), "coef": list(self.coef), "intercept": self.intercept,
                "threshold": self.threshold}

    @classmethod
    def from_params(cls, p: object) -> Calibration:
        if not isinstance(p, dict):
            raise ModelUnavailable("synthetic_image card has no calibration")
        try:
            return cls(views=tuple(str(v) for v in p["views"]), coef=tuple(float(c) for c in p["coef"]),
                       intercept=float(p["intercept"]), threshold=float(p["threshold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelUnavailable(f"synthetic_image card has a malformed calibration: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ImageModel:
    """What the cards hold: the CLIP probe (clip view), the CNN probe and the feature
    extractor's file (cnn view; cards ``CNN_HEAD_CARD`` and ``CNN_EXTRACTOR_CARD``), the spectrum
    probe (spectrum view, inline in the main card) and the calibration."""

    version: str
    calibration: Calibration
    head: LinearHead | None
    cnn_head: CnnHead | None = None
    cnn_path: Path | None = None
    spectrum_head: SpectrumHead | None = None

    @classmethod
    def from_card(cls, card: ModelCard) -> ImageModel:
        cal = Calibration.from_params((card.params or {}).get("calibration"))
        head = LinearHead.from_card(card) if "clip" in cal.views else None
        cnn_head: CnnHead | None = None
        cnn_path: Path | None = None
        if "cnn" in cal.views:
            cnn_head = CnnHead.from_card(load_card(CNN_HEAD_CARD))
            extractor = load_card(CNN_EXTRACTOR_CARD)
            if extractor.kind != "onnx" or extractor.file is None:
                raise ModelUnavailable(f"model {extractor.name!r} is not an ONNX file model")
            with resources.as_file(resources.files(DATA_PACKAGE).joinpath(DATA_DIR)) as base:
                cnn_path = extractor.file_path(Path(base))
        spectrum_head = (SpectrumHead.from_params((card.params or {}).get(SPECTRUM_KEY), version=card.version,
                                                  name=card.name) if "spectrum" in cal.views else None)
        return cls(version=card.version, calibration=cal, head=head, cnn_head=cnn_head, cnn_path=cnn_path,
                   spectrum_head=spectrum_head)


def score_map(shape: tuple[int, int], boxes: list[tuple[int, int, int]], scores: list[float],
              side: int = HEATMAP_SIDE) -> npt.NDArray[np.float32]:
    """A ``side``-px-wide map of the image: each pixel the mean score of the crops covering it
    (NaN where none does)."""
    h, w = shape
    scale = side / max(h, w)
    mh, mw = max(1, round(h * scale)), max(1, round(w * scale))
    acc = np.zeros((mh, mw), np.float32)
    n = np.zeros((mh, mw), np.float32)
    for (y, x, s), v in zip(boxes, scores, strict=True):
        y0, x0 = int(y * scale), int(x * scale)
        y1, x1 = max(y0 + 1, round((y + s) * scale)), max(x0 + 1, round((x + s) * scale))
        acc[y0:y1, x0:x1] += v
        n[y0:y1, x0:x1] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, acc / np.maximum(n, 1), np.nan).astype(np.float32)


def heatmap_image(rgb: U8, boxes: list[tuple[int, int, int]], scores: list[float]) -> U8:
    """The image (long side ``HEATMAP_SIDE``) with the crop scores as a JET overlay: red where the
    crops look generated, untouched where no crop looked."""
    heat = score_map((int(rgb.shape[0]), int(rgb.shape[1])), boxes, scores)
    base = cv2.resize(to_rgb3(rgb), (heat.shape[1], heat.shape[0]), interpolation=cv2.INTER_AREA)
    seen = np.isfinite(heat)
    v = np.where(seen, heat, 0.0)
    colour = cv2.cvtColor(cv2.applyColorMap(np.clip(v * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET),
                          cv2.COLOR_BGR2RGB)
    alpha = np.where(seen, 0.45, 0.0)[..., None]
    return np.asarray(np.clip(base * (1 - alpha) + colour * alpha, 0, 255), dtype=np.uint8)


class SyntheticImageDetector:
    """Native-resolution crops -> CLIP probe, patch CNN and/or residual spectrum -> mean logit per
    view -> calibration."""

    name = "synthetic_image"
    version = "2.0.0"  # the card's version; tests check they agree
    modalities: tuple[MediaKind, ...] = ("image",)
    unavailable = UNAVAILABLE  # what run_detector reports when the CLIP encoder is not fetched

    def __init__(self, *, model: ImageModel | None = None, encoder: ClipEncoder | None = None,
                 cnn: PatchCnn | None = None, card: str = CARD_NAME) -> None:
        self._model = model
        self._encoder = encoder
        self._cnn = cnn
        self._card = card

    def get_model(self) -> ImageModel:
        if self._model is None:
            self._model = ImageModel.from_card(load_card(self._card))
        return self._model

    def _get_encoder(self, settings: AnalysisSettings) -> ClipEncoder:
        if self._encoder is None:
            from veracity.models.fetch import load_fetched

            _card, path = load_fetched(ENCODER_CARD, settings.cache_dir)
            self._encoder = ClipEncoder(path, threads=settings.onnx_threads, parallel=settings.crop_threads)
        return self._encoder

    def _get_cnn(self, settings: AnalysisSettings, model: ImageModel) -> PatchCnn:
        if self._cnn is None:
            if model.cnn_path is None:
                raise ModelUnavailable("synthetic_image card names no CNN")
            self._cnn = PatchCnn(model.cnn_path, CNN_CROP, threads=settings.onnx_threads)
        return self._cnn

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if not ctx.media.sparse:
            return Applicability.no("no_frames")
        return Applicability.yes()

    def view_logits(self, rgb: U8, settings: AnalysisSettings, model: ImageModel, *, clip_grid: int = GRID
                    ) -> tuple[dict[str, float], list[tuple[int, int, int]], list[float]]:
        """Mean crop logit per view, and the boxes and per-crop calibrated scores of one view (the
        CNN's, else the CLIP's, else the spectrum's) for the heatmap."""
        views = model.calibration.views
        crop_logits: dict[str, FloatArray] = {}
        boxes: dict[str, list[tuple[int, int, int]]] = {}
        if "clip" in views and model.head is not None:
            crops, boxes["clip"] = native_crops(rgb, CLIP_CROP, clip_grid)
            crop_logits["clip"] = model.head.logits(self._get_encoder(settings).embed(crops))
        if "cnn" in views and model.cnn_head is not None:
            crops, boxes["cnn"] = native_crops(rgb, CNN_CROP, CNN_GRID)
            crop_logits["cnn"] = model.cnn_head.logits(self._get_cnn(settings, model).features(crops))
        if "spectrum" in views and model.spectrum_head is not None:
            crops, boxes["spectrum"] = native_crops(rgb, SPECTRUM_CROP, SPECTRUM_GRID)
            crop_logits["spectrum"] = model.spectrum_head.logits(spectrum_batch(crops))
        missing = set(views) - set(crop_logits)
        if missing:
            raise ModelUnavailable(f"synthetic_image card lacks the model of view(s) {sorted(missing)}")
        out = {v: float(np.mean(z)) for v, z in crop_logits.items()}
        # Per-crop scores of one view, the other views held at their image means.
        shown = next(v for v in ("cnn", "clip", "spectrum") if v in crop_logits)
        per_crop = [model.calibration.prob({**out, shown: float(v)}) for v in crop_logits[shown]]
        return out, boxes[shown], per_crop

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        model = self.get_model()
        rgb = to_rgb3(ctx.media.sparse[0].rgb)
        if min(rgb.shape[:2]) < MIN_SIDE:
            return DetectorResult.skipped(self.name, model.version, "image_too_small")
        grid = FAST_GRID if ctx.options.mode == "fast" else GRID
        logits, boxes, per_crop = self.view_logits(rgb, ctx.settings, model, clip_grid=grid)
        cal = model.calibration
        score = cal.prob(logits)
        side = min(rgb.shape[:2])
        # Small pictures hold less evidence; crops that disagree make the mean less sure.
        confidence = BASE_CONFIDENCE * min(1.0, side / CLIP_CROP) * (1.0 - min(0.5, float(np.std(per_crop))))
        flagged = score >= cal.threshold
        evidence: dict[str, Any] = {
            "views": list(logits), **{f"{v}_logit": round(z, 4) for v, z in logits.items()},
            "threshold": round(cal.threshold, 4),
            "n_crops": len(per_crop),
            "crop_scores": [round(s, 4) for s in per_crop],
            "crop_boxes": [int(v) for b in boxes for v in b],
            "max_crop_score": round(max(per_crop), 4),
            "aggregation": "mean crop logit per view, then the calibration",
        }
        t = float(ctx.media.sparse[0].t)
        heatmaps = (Heatmap(heatmap_image(rgb, boxes, per_crop), score=score, t=t),) if flagged else ()
        return DetectorResult(
            name=self.name,
            version=model.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=("ai_generated_image",) if flagged else (),
            frame_scores={t: score},
            evidence=evidence,
            heatmaps=heatmaps,
        )


__all__ = ["Calibration", "CnnHead", "ImageModel", "LinearHead", "SpectrumHead", "SyntheticImageDetector", "crop_boxes",
           "native_crops"]
