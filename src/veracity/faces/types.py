"""Result types of the face stage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from veracity.media.types import FrameRole

N_LANDMARKS = 478

# Mesh indices used across detectors (MediaPipe face mesh topology).
LEFT_EYE = (33, 160, 158, 133, 153, 144)  # image-left eye: corners 33/133, lids 160,158 / 153,144
RIGHT_EYE = (362, 385, 387, 263, 373, 380)
MOUTH_INNER_TOP, MOUTH_INNER_BOTTOM = 13, 14
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
NOSE_TIP = 1
FOREHEAD, CHIN = 10, 152


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One face in one frame. Coordinates are normalised to the frame: x, y in [0, 1] (may spill
    slightly outside for faces at the border) and z in units of frame width, as MediaPipe gives.
    """

    t: float
    role: FrameRole
    window: int | None
    box: tuple[float, float, float, float]  # x0, y0, x1, y1, normalised
    landmarks: npt.NDArray[np.float32] | None  # (478, 3), or None when only detected
    frame_size: tuple[int, int]  # (width, height) of the frame the face was found in
    score: float | None = None
    track_id: int = -1

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if not (x1 > x0 and y1 > y0) or not all(np.isfinite(self.box)):
            raise ValueError(f"degenerate face box {self.box}")
        if self.landmarks is not None and self.landmarks.shape != (N_LANDMARKS, 3):
            raise ValueError(f"landmarks must be ({N_LANDMARKS}, 3), got {self.landmarks.shape}")
        if self.score is not None and not 0.0 <= self.score <= 1.0:
            raise ValueError("score must lie in [0, 1]")

    def pixels(self) -> npt.NDArray[np.float64]:
        """Landmarks in pixel units of the frame (x, y, z with z scaled like x)."""
        if self.landmarks is None:
            raise ValueError("observation has no landmarks")
        w, h = self.frame_size
        return np.asarray(self.landmarks, dtype=np.float64) * np.array([w, h, w], dtype=np.float64)

    @property
    def box_size(self) -> float:
        """Geometric mean side of the box, in normalised width units."""
        x0, y0, x1, y1 = self.box
        return float(np.sqrt((x1 - x0) * (y1 - y0)))


@dataclass(slots=True)
class FaceTrack:
    """One person followed through the clip. ``crops`` holds aligned crops by timestamp."""

    track_id: int
    observations: list[FaceObservation] = field(default_factory=list)
    crops: dict[float, npt.NDArray[np.uint8]] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return self.observations[0].t if self.observations else 0.0

    @property
    def end(self) -> float:
        return self.observations[-1].t if self.observations else 0.0

    def in_window(self, window: int) -> list[FaceObservation]:
        return [o for o in self.observations if o.role == "dense" and o.window == window]


@dataclass(slots=True)
class FaceResult:
    """All tracks found; ``frames_with_faces`` / ``frames_seen`` says how present faces were."""

    tracks: list[FaceTrack]
    frames_seen: int
    frames_with_faces: int
    elapsed_ms: float = 0.0

    @property
    def any(self) -> bool:
        return any(t.observations for t in self.tracks)

    def main_track(self) -> FaceTrack | None:
        """The track seen in the most frames: the subject, for single-speaker detectors."""
        tracks = [t for t in self.tracks if t.observations]
        return max(tracks, key=lambda t: len(t.observations)) if tracks else None
