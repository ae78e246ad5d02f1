"""Self-blended images (Shiohara & Yamasaki, CVPR 2022): fake faces made from real ones.

A real aligned face is blended with a slightly transformed copy of itself (colour, sharpness,
scale, shift) through a mask derived from its own landmarks (convex hull of the whole mesh, of
its lower part — where a lip-sync pastes its mouth — or of the inner face; elastically deformed,
randomly eroded or dilated, then blurred, with a random blend ratio). Afterwards both images of a
(real, blend) pair meet the same compression a deepfake meets on its way to us: JPEG q 40-95 or
an H.264 intra re-encode at CRF 18-38, and a downscale and upscale (:func:`augment_pair`).
The result carries only the generic traces of face swapping —
a blending boundary, a colour/texture mismatch, a small misalignment — and no identity or
generator cue, so a classifier trained on (original, self-blend) pairs learns those traces.

:func:`lipsync_blend` does the same for a lip-sync's trace: the lower face or mouth of the frame
replaced by a re-posed, lower-resolution (up-scaled), slightly blurred or restored copy of itself.

Plain numpy + OpenCV (no torch): the generator is unit-tested on synthetic arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from veracity.media.image import jpeg_round_trip

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
    elastic: float = 0.04  # largest mask displacement, share of the side
    region_p: tuple[float, float, float] = (0.6, 0.25, 0.15)  # full hull, lower face, inner face


NOSE_TIP = 1
BROWS = (105, 334)  # mid-eyebrow points of the MediaPipe mesh


def hull_mask(points: npt.NDArray[np.floating[Any]], size: int | tuple[int, int]) -> F32:
    """1 inside the convex hull of ``points`` (x, y pixels of a ``size`` square, or of a
    ``(width, height)`` frame), 0 outside."""
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 3:
        raise ValueError(f"need at least 3 (x, y) points, got shape {points.shape}")
    width, height = (size, size) if isinstance(size, int) else size
    mask = np.zeros((height, width), dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (1,))
    return mask.astype(np.float32)


def region_points(points: npt.NDArray[np.floating[Any]], region: str) -> npt.NDArray[np.floating[Any]]:
    """The landmarks whose hull is blended: ``full`` (all), ``lower`` (below the upper nose: mouth,
    cheeks, chin, as a lip-sync rewrites them) or ``inner`` (brows down: a swap that keeps the
    forehead). Meshes other than MediaPipe's 478 points always give ``full``."""
    if region == "full" or points.shape[0] != 478:
        return points
    y = points[:, 1]
    if region == "lower":
        cut = y[NOSE_TIP] - 0.25 * (y[NOSE_TIP] - float(np.mean(y[list(BROWS)])))
    elif region == "inner":
        cut = float(np.mean(y[list(BROWS)]))
    else:
        raise ValueError(f"unknown region {region!r}")
    chosen = points[y >= cut]
    return chosen if chosen.shape[0] >= 3 else points


def elastic(mask: F32, rng: np.random.Generator, amount: float) -> F32:
    """Warp a mask by a smooth random displacement field (a 4x4 grid of offsets up to
    ``amount`` of the side, interpolated): hull edges stop being straight polygon sides."""
    size = mask.shape[0]
    if amount <= 0:
        return mask
    grid = rng.uniform(-amount * size, amount * size, size=(2, 4, 4)).astype(np.float32)
    dx = cv2.resize(grid[0], (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(grid[1], (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.asarray(cv2.remap(mask, xx + dx, yy + dy, cv2.INTER_LINEAR, borderValue=(0.0,)), dtype=np.float32)


def _odd(k: int) -> int:
    return max(1, k | 1)


def deform_mask(mask: F32, rng: np.random.Generator, cfg: SBIConfig = SBIConfig()) -> F32:
    """Random erosion or dilation, random Gaussian edge blur and a random blend ratio.

    The blur is applied twice (once on the hard mask, once after re-zeroing outside it, as the
    paper's code does) so the seam lies inside the face, where it is harder to see."""
    size = mask.shape[0]
    k = int(rng.integers(1, max(2, size // 20)))
    kernel = np.ones((k, k), np.uint8)
    m = (elastic(mask, rng, cfg.elastic) > 0.5).astype(np.uint8)
    if not m.any():
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
    region = str(rng.choice(np.asarray(["full", "lower", "inner"]), p=np.asarray(cfg.region_p)))
    mask = deform_mask(hull_mask(region_points(points, region), size), rng, cfg)
    changed = geometric_transform(colour_transform(img, rng, cfg), rng, cfg)
    source, target = (changed, img) if rng.random() < 0.5 else (img, changed)
    m = mask[..., None]
    out = source.astype(np.float32) * m + target.astype(np.float32) * (1 - m)
    return np.asarray(np.clip(np.round(out), 0, 255), dtype=np.uint8), mask


@dataclass(frozen=True, slots=True)
class LipSyncConfig:
    """Ranges for :func:`lipsync_blend`: how a lip-sync generator's mouth differs from the frame
    it is pasted into (Wav2Lip renders the lower face at 96 px and pastes it back up-scaled;
    GFPGAN-style restorers then smooth or sharpen it; the new mouth opens differently)."""

    face_scale: tuple[float, float] = (0.3, 0.65)  # the copy is rendered at this share of the side
    mouth_stretch: float = 0.12  # vertical scale of the copy about the mouth, 1 +- this
    mouth_widen: float = 0.05  # horizontal scale, 1 +- this
    shift: float = 0.015  # misplacement of the pasted copy, share of the side
    rgb_shift: float = 6.0
    brightness: float = 0.04
    blur_p: float = 0.35  # extra Gaussian blur (sigma 0.5-1.2) of the copy
    smooth_p: float = 0.25  # edge-preserving smoothing (a restorer's waxy skin)
    sharpen_p: float = 0.2
    region_p: tuple[float, float, float] = (0.4, 0.35, 0.25)  # lower-face hull, mouth ellipse, box
    blur_max: int = 21
    blend_ratios: tuple[float, ...] = (0.75, 1.0, 1.0, 1.0)
    elastic: float = 0.03


MOUTH_CORNERS = (61, 291)
LIPS_TOP_BOTTOM = (0, 17)


def mouth_frame(points: npt.NDArray[np.floating[Any]]) -> tuple[float, float, float, float] | None:
    """(centre x, centre y, mouth width, lip height) from a MediaPipe 478-point mesh, else None."""
    if points.shape[0] != 478:
        return None
    left, right = points[MOUTH_CORNERS[0]], points[MOUTH_CORNERS[1]]
    top, bottom = points[LIPS_TOP_BOTTOM[0]], points[LIPS_TOP_BOTTOM[1]]
    cx = float(left[0] + right[0] + top[0] + bottom[0]) / 4
    cy = float(left[1] + right[1] + top[1] + bottom[1]) / 4
    width = float(np.hypot(*(right - left)))
    height = float(np.hypot(*(bottom - top)))
    return cx, cy, max(width, 2.0), max(height, 2.0)


def lipsync_mask(points: npt.NDArray[np.floating[Any]], size: int, region: str) -> F32:
    """The hard mask a lip-sync pastes through: ``lower`` (hull of the mesh below the upper
    nose), ``mouth`` (an ellipse around the lips, chin included) or ``box`` (the rectangle from
    the nose to below the chin across the lower face, Wav2Lip's lower half of the face box).
    Without a 478-point mesh every region is the lower half of the points' bounding box."""
    frame = mouth_frame(points)
    if frame is None or region == "box":
        lower = region_points(points, "lower")
        x0, x1 = float(lower[:, 0].min()), float(lower[:, 0].max())
        y0 = float(lower[:, 1].min()) if frame is not None else float(points[:, 1].mean())
        y1 = float(lower[:, 1].max()) + 0.03 * size
        mask = np.zeros((size, size), np.float32)
        r0, r1 = int(np.clip(round(y0), 0, size)), int(np.clip(round(y1), 0, size))
        c0, c1 = int(np.clip(round(x0), 0, size)), int(np.clip(round(x1), 0, size))
        mask[r0:r1, c0:c1] = 1.0
        return mask if mask.any() else hull_mask(points, size)
    if region == "lower":
        return hull_mask(region_points(points, "lower"), size)
    if region != "mouth":
        raise ValueError(f"unknown lip-sync region {region!r}")
    cx, cy, width, height = frame
    mask = np.zeros((size, size), np.uint8)
    axes = (int(round(0.85 * width)), int(round(max(1.3 * height, 0.55 * width))))
    cv2.ellipse(mask, (int(round(cx)), int(round(cy + 0.25 * axes[1]))), axes, 0, 0, 360, (1,), -1)
    return mask.astype(np.float32)


def lipsync_blend(img: U8, points: npt.NDArray[np.floating[Any]], rng: np.random.Generator,
                  cfg: LipSyncConfig = LipSyncConfig()) -> tuple[U8, F32]:
    """(image, mask): a lip-sync-like fake made from one real face, as a self-blend is.

    The copy pasted back is the face itself with the mouth re-posed (scaled about the mouth
    centre and slightly misplaced), rendered at a lower resolution and up-scaled, then lightly
    blurred, smoothed or sharpened and colour-shifted; it enters through a deformed lower-face,
    mouth or box mask. The train split has no lip-sync fakes, but this is their artefact —
    a lower face of another resolution and texture pasted in, a seam around the mouth — made
    honestly from train reals."""
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1] or img.dtype != np.uint8:
        raise ValueError(f"expected a square HxWx3 uint8 image, got {img.shape} {img.dtype}")
    size = img.shape[0]
    region = str(rng.choice(np.asarray(["lower", "mouth", "box"]), p=np.asarray(cfg.region_p)))
    sbi_cfg = SBIConfig(blur_max=cfg.blur_max, blend_ratios=cfg.blend_ratios, elastic=cfg.elastic)
    mask = deform_mask(lipsync_mask(points, size, region), rng, sbi_cfg)
    frame = mouth_frame(points)
    cx, cy = (frame[0], frame[1]) if frame is not None else (size / 2, size * 0.7)
    sx = 1 + rng.uniform(-cfg.mouth_widen, cfg.mouth_widen)
    sy = 1 + rng.uniform(-cfg.mouth_stretch, cfg.mouth_stretch)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    matrix = np.array([[sx, 0, (1 - sx) * cx + tx], [0, sy, (1 - sy) * cy + ty]], dtype=np.float64)
    x = cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    side = max(8, int(round(size * rng.uniform(*cfg.face_scale))))
    small = cv2.resize(x, (side, side), interpolation=cv2.INTER_AREA)
    up = cv2.INTER_CUBIC if rng.random() < 0.5 else cv2.INTER_LINEAR
    x = cv2.resize(small, (size, size), interpolation=up)
    if rng.random() < cfg.blur_p:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.5, 1.2)))
    u = rng.random()
    if u < cfg.smooth_p:
        x = cv2.bilateralFilter(x, 5, float(rng.uniform(20, 60)), float(rng.uniform(3, 7)))
    elif u < cfg.smooth_p + cfg.sharpen_p:
        blur = cv2.GaussianBlur(x, (0, 0), 1.0)
        x = cv2.addWeighted(x, 1.5, blur, -0.5, 0)
    f = x.astype(np.float32) + rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, size=3).astype(np.float32)
    f += rng.uniform(-cfg.brightness, cfg.brightness) * 255
    copy = np.clip(f, 0, 255)
    m = mask[..., None]
    out = copy * m + img.astype(np.float32) * (1 - m)
    return np.asarray(np.clip(np.round(out), 0, 255), dtype=np.uint8), mask


def degrade(img: U8, blur_sigma: float, noise: F32 | None) -> U8:
    """A global loss of quality (Gaussian blur, sensor-like noise) that :func:`augment_pair`
    applies alike to both images of a pair, so that softness or noise — which every lip-sync and
    restorer leaves in the lower face — cannot become the cue on its own; only its boundary can."""
    x = img
    if blur_sigma > 0:
        x = np.asarray(cv2.GaussianBlur(x, (0, 0), blur_sigma), dtype=np.uint8)
    if noise is not None:
        x = np.asarray(np.clip(x.astype(np.float32) + noise, 0, 255).astype(np.uint8))
    return x


def h264(img: U8, crf: int) -> U8:
    """One H.264 (libx264, yuv420p, intra) round trip at ``crf``: the chroma subsampling, block
    transform and deblocking of a re-encoded video frame. Sides are cropped to even numbers."""
    import av

    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.options = {"crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:h, :w]), format="rgb24").reformat(format="yuv420p")
    packets = [*enc.encode(frame), *enc.encode(None)]
    dec = av.CodecContext.create("h264", "r")
    out: list[U8] = []
    for packet in packets:
        for decoded in dec.decode(packet):
            out.append(np.asarray(decoded.to_ndarray(format="rgb24"), dtype=np.uint8))
    for decoded in dec.decode(None):
        out.append(np.asarray(decoded.to_ndarray(format="rgb24"), dtype=np.uint8))
    if not out:
        raise ValueError("H.264 round trip gave no frame")
    res = img.copy()
    res[:h, :w] = out[-1]
    return res


def augment_pair(real: U8, fake: U8, rng: np.random.Generator, out_size: int,
                 degrade_p: float = 0.0) -> tuple[U8, U8]:
    """The same flip, downscale-upscale, optional blur/noise (:func:`degrade`, with probability
    ``degrade_p``) and compression (JPEG q 40-95 or H.264 CRF 18-38, or none) for both images
    of a pair, then resize to ``out_size``: augmentations never differ between the classes, so
    they cannot become the cue. With ``degrade_p`` 0 the draws are those of the v2 trainer."""
    if rng.random() < 0.5:
        real, fake = real[:, ::-1], fake[:, ::-1]
    u = rng.random()
    codec, level = ("jpeg", int(rng.integers(40, 96))) if u < 0.45 else \
        (("h264", int(rng.integers(18, 39))) if u < 0.75 else ("none", 0))
    down = rng.uniform(0.35, 0.9) if rng.random() < 0.4 else 1.0
    blur_sigma = 0.0
    noise: F32 | None = None
    if degrade_p > 0:
        if rng.random() < degrade_p:
            blur_sigma = float(rng.uniform(0.4, 1.4))
        if rng.random() < degrade_p / 2:
            noise = (rng.standard_normal(real.shape) * rng.uniform(2.0, 6.0)).astype(np.float32)
    out: list[U8] = []
    for image in (real, fake):
        x = np.ascontiguousarray(image)
        if down < 1.0:
            s = x.shape[0]
            small = cv2.resize(x, (int(s * down), int(s * down)), interpolation=cv2.INTER_AREA)
            x = np.asarray(cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
        if blur_sigma > 0 or noise is not None:
            x = degrade(x, blur_sigma, noise)
        if codec == "jpeg":
            x = jpeg_round_trip(x, level)  # training augmentation shared by both classes
        elif codec == "h264":
            x = h264(x, level)
        out.append(np.asarray(cv2.resize(x, (out_size, out_size), interpolation=cv2.INTER_AREA), dtype=np.uint8))
    return out[0], out[1]
