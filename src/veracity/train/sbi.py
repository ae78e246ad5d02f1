"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): fake faces made from real ones.

A real aligned face is blended with a slightly transformed copy of itself (colour, sharpness,
scale, shift) through a mask derived from its own landmarks (convex hull of the mesh, randomly
eroded or dilated, then blurred). The result carries only the generic traces of face swapping —
a blending boundary, a colour/texture mismatch, a small misalignment — and no identity or
generator cue, so a classifier trained on (original, self-blend) pairs learns those traces.

Plain numpy + OpenCV (no torch): the generator is unit-tested on synthetic arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class SBIConfig:
    """Ranges the random transforms draw from (paper defaults, scaled to 224 px crops)."""

    rgb_shift: float = 20.0  # per-channel additive shift, in 0..255 units
    hsv_shift: tuple[float, float, float] = (3.0, 0.1, 0.1)  # hue (OpenCV 0..180 units), sat, val
    contrast: float = 0.1
    brightness: float = 0.1
    scale: float = 0.05  # source scaled by 1 +- this
    shift: float = 0.03  # source shifted by +- this share of the side
    blur_max: int = 25  # largest Gaussian kernel (odd) for the mask edge
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def hull_mask(points: npt.NDArray[np.floating[Any]], size: int) -> F32:
    """1 inside the convex hull of ``points`` (x, y pixels of a ``size`` square), 0 outside."""
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
        raise ValueError(f"need at least 3 (x, y) points, got shape {points.shape}")
    mask = np.zeros((size, size), dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (1,))
    return mask.astype(np.float32)


def _odd(k: int) -> int:
    return max(1, k | 1)


def deform_mask(mask: F32, rng: np.random.Generator, cfg: SBIConfig = SBIConfig()) -> F32:
    """Random erosion or dilation, random Gaussian edge blur and a random blend ratio.

    The blur is applied twice (once on the hard mask, once after re-zeroing outside it, as the
    paper's code does) so the seam lies inside the face, where it is harder to see."""
    size = mask.shape[0]
    k = int(rng.integers(1, max(2, size // 20)))
    kernel = np.ones((k, k), np.uint8)
    m = mask.astype(np.uint8)
    grown = cv2.erode(m, kernel) if rng.random() < 0.5 else cv2.dilate(m, kernel)
    out = np.asarray(grown, dtype=np.float32)
    k1 = _odd(int(rng.integers(5, cfg.blur_max + 1)))
    blurred = cv2.GaussianBlur(out, (k1, k1), 0)
    blurred = blurred / max(float(blurred.max()), 1e-6)
    blurred[blurred < 0.999] = 0.0  # shrink to where the blur is fully inside
    k2 = _odd(int(rng.integers(5, cfg.blur_max + 1)))
    soft = cv2.GaussianBlur(blurred if blurred.max() > 0 else out, (k2, k2), 0)
    soft = soft / max(float(soft.max()), 1e-6)
    ratio = float(rng.choice(np.asarray(cfg.blend_ratios)))
    return np.asarray(np.clip(soft * ratio, 0.0, 1.0), dtype=np.float32)


def colour_transform(img: U8, rng: np.random.Generator, cfg: SBIConfig = SBIConfig()) -> U8:
    """RGB shift, HSV shift, brightness/contrast, and sometimes a sharpen or a down-up blur."""
    x = img.astype(np.float32)
    x += rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, size=3).astype(np.float32)
    x = np.clip(x, 0, 255)
    hsv = cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    dh, ds, dv = (rng.uniform(-r, r) for r in cfg.hsv_shift)
    hsv[..., 0] = (hsv[..., 0] + dh) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * (1 + ds), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * (1 + dv), 0, 255)
    x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    c = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    x = (x - x.mean()) * c + x.mean() + rng.uniform(-cfg.brightness, cfg.brightness) * 255
    x = np.clip(x, 0, 255).astype(np.uint8)
    u = rng.random()
    if u < 0.25:
        blur = cv2.GaussianBlur(x, (0, 0), 1.0)
        x = cv2.addWeighted(x, 1.6, blur, -0.6, 0)
    elif u < 0.5:
        h, w = x.shape[:2]
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(x, (max(2, int(w * f)), max(2, int(h * f))), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(x, dtype=np.uint8)


def geometric_transform(img: U8, rng: np.random.Generator, cfg: SBIConfig = SBIConfig()) -> U8:
    """Scale about the centre and shift by a few percent (reflected border)."""
    h, w = img.shape[:2]
    s = 1 + rng.uniform(-cfg.scale, cfg.scale)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * np.array([w, h])
    matrix = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], dtype=np.float64)
    return np.asarray(cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT101), dtype=np.uint8)


def self_blend(img: U8, points: npt.NDArray[np.floating[Any]], rng: np.random.Generator,
               cfg: SBIConfig = SBIConfig()) -> tuple[U8, F32]:
    """(blended image, blend mask) from one square RGB face and its landmarks in crop pixels.

    One of the two copies (source or target, at random) is colour- and geometry-transformed;
    the source enters the target through the deformed hull mask."""
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1] or img.dtype != np.uint8:
        raise ValueError(f"expected a square HxWx3 uint8 image, got {img.shape} {img.dtype}")
    size = img.shape[0]
    mask = deform_mask(hull_mask(points, size), rng, cfg)
    changed = geometric_transform(colour_transform(img, rng, cfg), rng, cfg)
    source, target = (changed, img) if rng.random() < 0.5 else (img, changed)
    m = mask[..., None]
    out = source.astype(np.float32) * m + target.astype(np.float32) * (1 - m)
    return np.asarray(np.clip(np.round(out), 0, 255), dtype=np.uint8), mask


def jpeg(img: U8, quality: int) -> U8:
    """One JPEG round trip at ``quality`` (training augmentation shared by both classes)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encode failed")
    return np.asarray(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), dtype=np.uint8)


def augment_pair(real: U8, fake: U8, rng: np.random.Generator, out_size: int) -> tuple[U8, U8]:
    """The same flip, downscale and JPEG for both images of a pair, then resize to ``out_size``:
    augmentations never differ between the classes, so they cannot become the cue."""
    if rng.random() < 0.5:
        real, fake = real[:, ::-1], fake[:, ::-1]
    q = int(rng.integers(40, 96)) if rng.random() < 0.6 else 0
    down = rng.uniform(0.5, 0.9) if rng.random() < 0.3 else 1.0
    out: list[U8] = []
    for image in (real, fake):
        x = np.ascontiguousarray(image)
        if down < 1.0:
            s = x.shape[0]
            small = cv2.resize(x, (int(s * down), int(s * down)), interpolation=cv2.INTER_AREA)
            x = np.asarray(cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        if q:
            x = jpeg(x, q)
        out.append(np.asarray(cv2.resize(x, (out_size, out_size), interpolation=cv2.INTER_AREA), dtype=np.uint8))
    return out[0], out[1]
