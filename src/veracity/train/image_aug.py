"""The degradation chain and the picture loading the synthetic_image trainers share (the CLIP
probe's ``train/synthetic_image.py`` and the CNN probe's ``train/synthetic_image_cnn.py``): both
classes go through the same resize, blur and re-compression draws, so a format says nothing of
the label. A module of its own so neither trainer imports the other."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.models.clip import to_rgb3
from veracity.train.common import Item
from veracity.train.spectral import read_rgb

# Degradation chain, identical for both classes.
P_RESIZE, RESIZE_RANGE = 0.3, (0.5, 1.5)
P_BLUR, BLUR_SIGMA = 0.15, (0.3, 1.5)
P_JPEG, P_WEBP, QUALITY_RANGE = 0.5, 0.25, (60, 100)
MIN_SIDE = 64
FRAMES_PER_CLIP = 3
U8 = npt.NDArray[np.uint8]


def resave(rgb: U8, fmt: str, **kwargs: Any) -> U8:
    """Encode and decode with Pillow, as a user re-saving the file would."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


RESAVES: dict[str, dict[str, Any]] = {"png": {"fmt": "PNG"}, "webp80": {"fmt": "WEBP", "quality": 80},
                                      "jpeg75": {"fmt": "JPEG", "quality": 75}}

def augment(rgb: U8, rng: np.random.Generator, min_side: int = MIN_SIDE) -> U8:
    """One draw of the degradation chain (both classes alike): resize, blur, re-compression.
    A resize never takes the short side below ``min_side`` (nor an image that is already smaller)."""
    rgb = to_rgb3(rgb)
    h, w = rgb.shape[:2]
    if rng.uniform() < P_RESIZE:
        f = float(rng.uniform(*RESIZE_RANGE))
        f = max(f, min(1.0, min_side / min(h, w)))
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        rgb = np.asarray(cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC),
                         dtype=np.uint8)
    if rng.uniform() < P_BLUR:
        rgb = np.asarray(cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(*BLUR_SIGMA))), dtype=np.uint8)
    u = rng.uniform()
    q = int(rng.integers(QUALITY_RANGE[0], QUALITY_RANGE[1] + 1))
    if u < P_JPEG:
        rgb = resave(rgb, "JPEG", quality=q)
    elif u < P_JPEG + P_WEBP:
        rgb = resave(rgb, "WEBP", quality=q)
    return np.ascontiguousarray(rgb)


def random_crop(rgb: U8, side: int, rng: np.random.Generator) -> U8:
    """A ``side`` square (or the short side, if smaller) at a random place, randomly mirrored."""
    h, w = rgb.shape[:2]
    s = min(side, h, w)
    y = int(rng.integers(0, h - s + 1))
    x = int(rng.integers(0, w - s + 1))
    crop = rgb[y:y + s, x:x + s]
    return np.ascontiguousarray(crop[:, ::-1] if rng.uniform() < 0.5 else crop)

@functools.lru_cache(maxsize=2)
def _clip_frames(path: Path) -> tuple[U8, ...]:
    """``FRAMES_PER_CLIP`` RGB frames spread over the clip (decoded once, in order)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    idx = np.linspace(0, len(frames) - 1, FRAMES_PER_CLIP + 2)[1:-1].round().astype(int)
    return tuple(np.ascontiguousarray(frames[i], dtype=np.uint8) for i in idx)


def load_rgb(item: Item) -> U8:
    """An image file, or frame ``k`` of a clip for ``rel#k`` items."""
    if "#" in item.rel:
        return _clip_frames(item.path)[int(item.rel.rsplit("#", 1)[1])]
    return read_rgb(item.path)
