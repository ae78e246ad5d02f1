"""The one image encoder of the report: RGB arrays (face crops, detectors' heatmaps) to base64
JPEG, done once when the report is built so detectors and pages never encode images."""

from __future__ import annotations

import base64
import io

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.detectors.base import Heatmap
from veracity.report.model import HeatmapImage

JPEG_QUALITY = 85


def jpeg_b64(rgb: npt.NDArray[np.uint8], *, size: int | None = None, quality: int = JPEG_QUALITY) -> str:
    """``rgb`` (H x W x 3 uint8) as base64 JPEG, first resized to ``size`` x ``size`` when given."""
    image = Image.fromarray(np.ascontiguousarray(rgb))
    if size is not None:
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def heatmap_image(h: Heatmap) -> HeatmapImage:
    """A detector's heatmap as the report carries it."""
    return HeatmapImage(jpeg_b64=jpeg_b64(h.image), track_id=h.track_id,
                        t=None if h.t is None else round(h.t, 3),
                        score=None if h.score is None else round(h.score, 4))
