"""The patch CNN of ``synthetic_image``: frozen ImageNet EfficientNet-Lite0 as a feature extractor
on native 128 px crops (per-channel mean and standard deviation of five blocks' outputs,
``FEATURE_DIM`` numbers); an onnxruntime session over ``input`` -> ``features`` (N, FEATURE_DIM).

Crops are fed at their own pixels: the caller cuts them from the image without resizing
(``detectors.synthetic_image.native_crops``); only a crop smaller than the input side (an image
smaller than it) is enlarged, and that is rare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

MEAN = np.asarray((0.485, 0.456, 0.406), dtype=np.float32)
STD = np.asarray((0.229, 0.224, 0.225), dtype=np.float32)
U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def normalise(batch: U8) -> F32:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, ImageNet mean/std (training and inference)."""
    x = np.asarray(batch, dtype=np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def to_side(crop: U8, side: int) -> U8:
    """A square crop at ``side``: unchanged when it already is, enlarged (cubic) when smaller."""
    if crop.shape[0] == side and crop.shape[1] == side:
        return crop
    return np.asarray(cv2.resize(np.ascontiguousarray(crop), (side, side), interpolation=cv2.INTER_CUBIC),
                      dtype=np.uint8)


FEATURE_DIM = 2 * (24 + 40 + 80 + 112 + 320)  # mean and std of blocks 2, 4, 7, 10, 15


@dataclass
class PatchCnn:
    """Lazy onnxruntime session; ``features`` of square uint8 crops."""

    path: Path
    side: int
    threads: int = 1
    _session: Any = field(default=None, repr=False)

    def session(self) -> Any:
        if self._session is None:
            from veracity.models.runtime import onnx_session

            self._session = onnx_session(self.path, threads=self.threads)
        return self._session

    def features(self, crops: list[U8], batch: int = 32) -> npt.NDArray[np.float64]:
        if not crops:
            return np.zeros((0, FEATURE_DIM))
        parts = []
        for start in range(0, len(crops), batch):
            x = normalise(np.stack([to_side(c, self.side) for c in crops[start:start + batch]]))
            parts.append(np.asarray(self.session().run(["features"], {"input": x})[0], dtype=np.float64))
        out = np.concatenate(parts)
        if out.shape != (len(crops), FEATURE_DIM) or not np.all(np.isfinite(out)):
            from veracity.errors import ModelUnavailable

            raise ModelUnavailable(f"patch CNN returned {out.shape}, expected ({len(crops)}, {FEATURE_DIM})",
                                   path=str(self.path))
        return out
