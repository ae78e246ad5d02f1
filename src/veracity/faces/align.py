"""Aligned face crops: a similarity transform from five mesh points to a fixed template."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from veracity.faces.types import MOUTH_LEFT, MOUTH_RIGHT, NOSE_TIP, FaceObservation

# ArcFace's 112x112 five-point template (eyes, nose tip, mouth corners), widened by MARGIN so the
# crop keeps the face border, where blending boundaries live.
_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
MARGIN = 0.25


def template(size: int, margin: float = MARGIN) -> npt.NDArray[np.float64]:
    scale = size / 112.0 / (1.0 + 2 * margin)
    offset = size * margin / (1.0 + 2 * margin)
    return _TEMPLATE_112 * scale + offset


def five_points(obs: FaceObservation) -> npt.NDArray[np.float64]:
    """Eye centres, nose tip and mouth corners in pixels of the observation's frame."""
    p = obs.pixels()[:, :2]
    left_eye = (p[33] + p[133]) / 2
    right_eye = (p[362] + p[263]) / 2
    return np.stack([left_eye, right_eye, p[NOSE_TIP], p[MOUTH_LEFT], p[MOUTH_RIGHT]])


def alignment_matrix(obs: FaceObservation, width: int, height: int,
                     size: int = 224) -> npt.NDArray[np.float64] | None:
    """The 2x3 similarity that :func:`align_crop` warps a ``width`` x ``height`` frame with, or
    None without landmarks. Also maps the mesh into crop pixels (training masks need that)."""
    if obs.landmarks is None:
        return None
    src = five_points(obs) * np.array([width / obs.frame_size[0], height / obs.frame_size[1]])
    matrix, _ = cv2.estimateAffinePartial2D(src, template(size), method=cv2.LMEDS)
    return None if matrix is None else np.asarray(matrix, dtype=np.float64)


def align_crop(rgb: npt.NDArray[np.uint8], obs: FaceObservation, size: int = 224) -> npt.NDArray[np.uint8]:
    """Warp the face to a ``size`` square. Falls back to the box when there are no landmarks."""
    h, w = rgb.shape[:2]
    if obs.landmarks is not None:
        matrix = alignment_matrix(obs, w, h, size)
        if matrix is not None:
            return np.asarray(
                cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101),
                dtype=np.uint8,
            )
    return box_crop(rgb, obs.box, size)


def box_crop(
    rgb: npt.NDArray[np.uint8], box: tuple[float, float, float, float], size: int, expand: float = 1.3
) -> npt.NDArray[np.uint8]:
    """A square crop around a normalised box, expanded and clamped, resized to ``size``."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2 * w, (y0 + y1) / 2 * h
    side = max((x1 - x0) * w, (y1 - y0) * h) * expand
    half = max(side / 2, 4.0)
    xa, xb = int(max(0, cx - half)), int(min(w, cx + half))
    ya, yb = int(max(0, cy - half)), int(min(h, cy + half))
    region = rgb[ya:yb, xa:xb]
    if region.size == 0:
        region = rgb
    return np.asarray(cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA), dtype=np.uint8)
