"""Synthetic 478-point face meshes and analysis contexts, for detector tests that need no media."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veracity.config import Options, Settings
from veracity.detectors.base import AnalysisContext
from veracity.faces.types import N_LANDMARKS, FaceObservation, FaceResult, FaceTrack
from veracity.media.types import DecodedMedia, Frame, MediaInfo, MediaKind

FPS = 15.0
W, H = 640, 480
Arr = npt.NDArray[np.float64]


def random_face(seed: int = 0) -> Arr:
    """A fixed random 3D point cloud (pixels, centred) with eye corners 60 px apart."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(0.0, 1.0, (N_LANDMARKS, 3)) * np.array([40.0, 50.0, 20.0])
    pts[33], pts[133], pts[362], pts[263] = (-42, -15, 0), (-18, -15, 0), (18, -15, 0), (42, -15, 0)
    return np.asarray(pts, dtype=np.float64)


def rot_y(deg: float) -> Arr:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def rot_z(deg: float) -> Arr:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def observation(px: Arr, t: float, window: int | None = 0) -> FaceObservation:
    """Pixel shape (centred on the face) placed at the frame centre, normalised like MediaPipe."""
    placed = px + np.array([W / 2, H / 2, 0.0])
    lm = (placed / np.array([W, H, W])).astype(np.float32)
    lo, hi = lm[:, :2].min(axis=0), lm[:, :2].max(axis=0)
    box = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
    return FaceObservation(t=t, role="dense", window=window, box=box, landmarks=lm, frame_size=(W, H))


def context(tracks: list[FaceTrack], kind: MediaKind = "video", n_frames: int = 0) -> AnalysisContext:
    """An analysis context holding only ``tracks`` and ``n_frames`` blank dense frames."""
    info = MediaInfo(path=Path("synthetic.mp4"), kind=kind, container="mp4", size_bytes=0,
                     sha256="0", width=W, height=H, fps=FPS, duration_s=n_frames / FPS)
    frames = [Frame(t=k / FPS, rgb=np.zeros((2, 2, 3), np.uint8), role="dense", window=0)
              for k in range(n_frames)]
    faces = FaceResult(tracks=tracks, frames_seen=n_frames,
                       frames_with_faces=max((len(t.observations) for t in tracks), default=0))
    return AnalysisContext(media=DecodedMedia(info=info, frames=frames), faces=faces,
                           options=Options(), settings=Settings())
