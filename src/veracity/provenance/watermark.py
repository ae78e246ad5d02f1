"""Invisible watermark detection: Stable Diffusion's dwtDct mark and our own (``vwm1``).

Each detector reports what it read and how sure it is; a mark counts as *found* only above a
threshold chosen so that none of the 200 unwatermarked real images in ../shared/data trips it
(see bench/watermark_robustness.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from veracity.provenance import dwtdct, vwm

SD_NAME = "stable_diffusion_v1"
# 136 payload bits: >= 0.9 correct is ~1e-22 likely by chance, and no real image comes close.
SD_MIN_BIT_ACCURACY = 0.9


class WatermarkHit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="'stable_diffusion_v1' or 'veracity_v1'.")
    found: bool
    payload: str | None = Field(default=None, description="Decoded payload (text or hex id).")
    bit_accuracy: float | None = Field(default=None, ge=0, le=1, description="Against the expected payload, if known.")
    confidence: float = Field(ge=0, le=1, description="Mean margin of the soft bit decisions.")
    declares_ai: bool = Field(default=False, description="The mark is only applied to generated media.")


def load_rgb(path: Path, max_side: int = 4096) -> npt.NDArray[np.uint8] | None:
    """First frame of an image as RGB uint8, or None when it is not a still image we can read."""
    try:
        with Image.open(path) as img:
            if max(img.size) > max_side:
                return None  # the marks are read at native resolution; huge scans are not generator output
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    return np.asarray(rgb, dtype=np.uint8)


def detect_sd(rgb: npt.NDArray[np.uint8]) -> WatermarkHit | None:
    """The reference dwtDct mark with payload ``StableDiffusionV1``; None if the image is too small."""
    decoded = dwtdct.decode(np.ascontiguousarray(rgb[:, :, ::-1]))
    if decoded is None:
        return None
    acc = decoded.bit_accuracy(dwtdct.SD_PAYLOAD)
    found = acc >= SD_MIN_BIT_ACCURACY
    return WatermarkHit(
        name=SD_NAME,
        found=found,
        payload=dwtdct.SD_PAYLOAD.decode() if found else None,
        bit_accuracy=round(acc, 4),
        confidence=round(decoded.confidence, 4),
        declares_ai=found,
    )


def detect_all(rgb: npt.NDArray[np.uint8]) -> list[WatermarkHit]:
    """Run every watermark detector on one RGB image; results include misses (found=False)."""
    hits = []
    sd = detect_sd(rgb)
    if sd is not None:
        hits.append(sd)
    ours = vwm.detect(rgb)
    if ours is not None:
        hits.append(vwm_hit(ours))
    return hits


def vwm_hit(det: vwm.Detection) -> WatermarkHit:
    return WatermarkHit(
        name=vwm.NAME,
        found=det.found,
        payload=det.payload_hex if det.found else None,
        confidence=round(det.confidence, 4),
        declares_ai=det.found,
    )
