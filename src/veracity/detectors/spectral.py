"""Spectral detector: the azimuthally averaged power spectrum of image regions, scored by a small
logistic model (Durall et al. 2020, "Watch your up-convolution"; Dzanic et al. 2020).

Generators that up-sample leave their mark in the high-frequency end of the spectrum: too much or
too little energy near Nyquist, or bumps where the up-sampling kernel repeats. The feature function
:func:`spectrum_features` first normalises the region (centre square, fixed size, one JPEG
re-encode at a fixed quality) so format, size and compression differences between data sets are
flattened before anything is learned; the same function runs at training and inference time.

Regions are the aligned face crops of every face track when there are faces, else the centre
square of every sparse frame. The model is read from its card (``models/data/spectral-v1.json``)
on the first ``run``, checked against its sha256.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np
import numpy.typing as npt

from veracity.detectors.base import (
    AnalysisContext,
    Applicability,
    DetectorResult,
    clamp01,
    sigmoid,
)
from veracity.faces.types import FaceResult
from veracity.media.types import DecodedMedia, MediaKind
from veracity.models.cards import load_card
from veracity.models.logistic import StandardLogistic

CARD_NAME = "spectral-v1"
SIZE = 256  # side of the normalised square
JPEG_QUALITY = 90  # every region is re-encoded once at this quality
N_BINS = 32  # radial bins over (0, 0.5] cycles/pixel
FIT_BINS = (2, 16)  # bins whose log power fits the 1/f line (low and mid frequencies)
HIGH_FROM = 12  # residuals are kept from this bin on (0.1875 cycles/pixel up to Nyquist)
N_FEATURES = 2 + (N_BINS - HIGH_FROM) + 3
REASON_THRESHOLD = 0.6
BASE_CONFIDENCE = 0.5
FULL_CONFIDENCE_REGIONS = 4  # fewer regions than this scale the confidence down

FloatArray = npt.NDArray[np.float64]


def centre_square(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    h, w = rgb.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return rgb[y0 : y0 + side, x0 : x0 + side]


def normalise_region(rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """Centre square, ``SIZE``x``SIZE`` (INTER_AREA), one JPEG round trip at ``JPEG_QUALITY``,
    grayscale float in [0, 1]. Erases the container, size and most of the prior compression."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ValueError(f"expected an HxWx3 image, got shape {rgb.shape}")
    rgb = np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)
    square = np.ascontiguousarray(centre_square(rgb))
    interp = cv2.INTER_AREA if square.shape[0] >= SIZE else cv2.INTER_CUBIC
    resized = cv2.resize(square, (SIZE, SIZE), interpolation=interp)
    bgr = cv2.cvtColor(resized, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG re-encode failed")
    gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return np.asarray(gray, dtype=np.float64) / 255.0


def _radial_index() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_], FloatArray, FloatArray]:
    f = np.fft.fftfreq(SIZE)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    inside = (r > 0) & (r <= 0.5)
    idx = np.clip(np.ceil(r / 0.5 * N_BINS).astype(np.intp) - 1, 0, N_BINS - 1)
    centres = (np.arange(N_BINS) + 0.5) / N_BINS * 0.5
    # axis-aligned vs diagonal directions: up-sampling and block artifacts sit on the axes
    angle = np.abs(np.arctan2(fy, fx)) % (np.pi / 2)
    on_axis = np.minimum(angle, np.pi / 2 - angle) < np.deg2rad(10)
    return idx, inside, centres, on_axis.astype(np.float64)


_IDX, _INSIDE, _CENTRES, _ON_AXIS = _radial_index()
_WINDOW = np.outer(np.hanning(SIZE), np.hanning(SIZE))


def power_spectrum(gray: FloatArray) -> FloatArray:
    """|FFT|^2 of the mean-removed, Hann-windowed ``SIZE``x``SIZE`` image (unshifted)."""
    return np.asarray(np.abs(np.fft.fft2((gray - gray.mean()) * _WINDOW)) ** 2, dtype=np.float64)


def radial_spectrum(raw_power: FloatArray) -> FloatArray:
    """log10 of the azimuthally averaged power spectrum, ``N_BINS`` values."""
    power = raw_power / (SIZE * SIZE)
    sums = np.bincount(_IDX[_INSIDE], weights=power[_INSIDE], minlength=N_BINS)
    counts = np.bincount(_IDX[_INSIDE], minlength=N_BINS)
    return np.asarray(np.log10(sums / np.maximum(counts, 1) + 1e-12), dtype=np.float64)


def spectrum_features(rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """A fixed-length spectral description of one image region (``N_FEATURES`` finite numbers).

    After :func:`normalise_region`: fit ``log P = a + b log f`` over low/mid bins, then keep the
    slope ``b``, the residual spread of the fit, the residuals of the high-frequency bins, their
    mean over the top quarter, and the log ratio of on-axis to diagonal power in the upper half.
    Level (contrast) is not kept: only the shape of the spectrum is.
    """
    gray = normalise_region(rgb)
    power = power_spectrum(gray)
    logp = radial_spectrum(power)
    logf = np.log10(_CENTRES)
    lo, hi = FIT_BINS
    slope, intercept = np.polyfit(logf[lo:hi], logp[lo:hi], 1)
    resid = logp - (intercept + slope * logf)
    fit_spread = float(np.std(resid[lo:hi]))
    high = resid[HIGH_FROM:]
    top = float(np.mean(resid[N_BINS * 3 // 4 :]))
    upper = _INSIDE & (_IDX >= N_BINS // 2)
    axis = float(np.mean(power[upper & (_ON_AXIS > 0)]) + 1e-12)
    diag = float(np.mean(power[upper & (_ON_AXIS == 0)]) + 1e-12)
    # a flat image has no spectrum: every feature collapses to zero rather than to noise
    if not np.isfinite(slope) or float(np.var(gray)) < 1e-10:
        return np.zeros(N_FEATURES, dtype=np.float64)
    tail = [top, math.log10(axis / diag), float(np.std(high))]
    feats = np.concatenate([[slope, fit_spread], high, tail])
    return np.nan_to_num(np.asarray(feats, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


# -- model ---------------------------------------------------------------------------------------

FEATURE_ID = "radial-log-power-residuals/1"


def feature_config() -> dict[str, object]:
    """The constants the feature function was built with; a card trained on others is refused."""
    return {
        "id": FEATURE_ID,
        "size": SIZE,
        "jpeg_quality": JPEG_QUALITY,
        "n_bins": N_BINS,
        "fit_bins": list(FIT_BINS),
        "high_from": HIGH_FROM,
        "n_features": N_FEATURES,
    }


@dataclass(frozen=True, slots=True)
class SpectralModel(StandardLogistic):
    """Standardise the features, then a logistic regression: p(fake) = sigmoid(w·z + b)."""

    n_features: ClassVar[int] = N_FEATURES
    mismatch: ClassVar[str] = "was trained on other spectral features ({found!r})"

    @classmethod
    def config(cls) -> dict[str, object]:
        return feature_config()

    def predict(self, features: FloatArray) -> float:
        return clamp01(sigmoid(self.logit(features)))


# -- regions -------------------------------------------------------------------------------------

MIN_REGION_SIDE = 16  # smaller regions carry no spectrum worth the name
MAX_REGIONS = 96
FACE_EXPAND = 1.3


@dataclass(frozen=True, slots=True)
class Region:
    """One square-ish patch to score, cut at the frame's own resolution."""

    t: float
    rgb: npt.NDArray[np.uint8]
    source: Literal["face", "frame"]

    @property
    def side(self) -> int:
        return int(min(self.rgb.shape[:2]))


def face_square(
    rgb: npt.NDArray[np.uint8],
    box: tuple[float, float, float, float],
    expand: float = FACE_EXPAND,
    min_side: int = SIZE,
) -> npt.NDArray[np.uint8]:
    """The square around a normalised face box, expanded, at native resolution (no resampling:
    the spectrum is what is measured). A face smaller than ``min_side`` gets more context
    instead of being up-sampled later; the square is shifted, not cut, at the frame border."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    side = max((x1 - x0) * w, (y1 - y0) * h) * expand
    side = int(round(min(max(side, float(min_side), 4.0), w, h)))
    cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
    xa = int(round(min(max(cx - side / 2, 0.0), w - side)))
    ya = int(round(min(max(cy - side / 2, 0.0), h - side)))
    return rgb[ya : ya + side, xa : xa + side]


def regions(media: DecodedMedia, faces: FaceResult, *, limit: int = MAX_REGIONS) -> list[Region]:
    """Face squares from every sparse frame a track was seen in; without faces, the centre
    square of each sparse frame. At most ``limit``, spread evenly."""
    frames = {f.t: f for f in media.sparse}
    out: list[Region] = []
    for track in faces.tracks:
        for obs in track.observations:
            if obs.role not in ("sparse", "still"):
                continue
            frame = frames.get(obs.t)
            if frame is not None:
                out.append(Region(obs.t, face_square(frame.rgb, obs.box), "face"))
            elif obs.t in track.crops:  # frame gone: fall back to the aligned crop
                out.append(Region(obs.t, track.crops[obs.t], "face"))
    if not out:
        out = [Region(f.t, centre_square(f.rgb), "frame") for f in media.sparse]
    out = [r for r in out if r.side >= MIN_REGION_SIDE]
    if len(out) > limit:
        keep = np.linspace(0, len(out) - 1, limit).round().astype(int)
        out = [out[i] for i in dict.fromkeys(keep.tolist())]
    return out


# -- detector ------------------------------------------------------------------------------------


class SpectralDetector:
    """Scores the high-frequency shape of the power spectrum of faces (or whole frames)."""

    name = "spectral"
    version = "1.0.0"  # the card's version; tests check they agree
    modalities: tuple[MediaKind, ...] = ("video", "image")

    def __init__(self, *, model: SpectralModel | None = None, card: str = CARD_NAME) -> None:
        self._model = model
        self._card = card

    def _get_model(self) -> SpectralModel:
        if self._model is None:
            self._model = SpectralModel.from_card(load_card(self._card))
        return self._model

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if not ctx.media.sparse:
            return Applicability.no("no_frames")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        model = self._get_model()
        regs = regions(ctx.media, ctx.faces)
        if not regs:
            return DetectorResult.skipped(self.name, model.version, "region_too_small")
        scores = [model.predict(spectrum_features(r.rgb)) for r in regs]
        by_t: dict[float, list[float]] = {}
        for r, s in zip(regs, scores, strict=True):
            by_t.setdefault(r.t, []).append(s)
        score = clamp01(float(np.mean(scores)))
        upsampled = sum(r.side < SIZE for r in regs)
        native_share = 1.0 - upsampled / len(regs)
        # Few regions, or regions too small to hold the top octave, earn less trust.
        confidence = (
            BASE_CONFIDENCE * min(1.0, math.sqrt(len(regs) / FULL_CONFIDENCE_REGIONS)) * (0.4 + 0.6 * native_share)
        )
        return DetectorResult(
            name=self.name,
            version=model.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=("spectral_artifacts",) if score >= REASON_THRESHOLD else (),
            frame_scores={t: clamp01(float(np.mean(v))) for t, v in sorted(by_t.items())},
            evidence={
                "n_regions": len(regs),
                "region_source": regs[0].source,
                "n_upsampled": upsampled,
                "mean_score": round(score, 4),
                "max_score": round(float(np.max(scores)), 4),
                "min_score": round(float(np.min(scores)), 4),
            },
        )
