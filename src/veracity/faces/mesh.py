"""MediaPipe face detection and 478-point mesh, created lazily and reused.

Constructing :class:`FaceMesher` loads nothing; the first call builds the graphs (mediapipe's
options-then-create habit). Not thread-safe: one instance per worker thread or process.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.faces.types import N_LANDMARKS, FaceObservation
from veracity.media.types import Frame

_MIN_DETECTION = 0.5
_ROI_PROBES = 3
# mediapipe's package __init__ imports every solution, and its drawing helpers import
# matplotlib.pyplot: ~0.7 s of a 1.1 s import, for code that only draws landmarks.
_DRAWING_MODULES = ("mediapipe.python.solutions.drawing_utils", "mediapipe.python.solutions.drawing_styles")


# Held while mediapipe is imported: two worker threads' first analyses start together, and the
# ``sys.modules`` check below would hand the second one the half-initialised package
# ("partially initialized module 'mediapipe' has no attribute 'solutions'").
_IMPORT_LOCK = threading.Lock()


def import_mediapipe() -> Any:
    """``mediapipe`` without its drawing helpers (and so without matplotlib). While the package
    initialises, empty placeholders stand in for the two drawing modules; they are taken out of
    ``sys.modules`` again, so a later ``import mediapipe.python.solutions.drawing_utils`` loads
    the real one. The face graphs are untouched. Safe to call from several threads at once."""
    with _IMPORT_LOCK:
        if "mediapipe" in sys.modules:
            return sys.modules["mediapipe"]
        placed = [name for name in _DRAWING_MODULES if name not in sys.modules]
        for name in placed:
            sys.modules[name] = types.ModuleType(name)
        try:
            import mediapipe as mp
        finally:
            for name in placed:
                sys.modules.pop(name, None)
        return mp


def _quiet_mediapipe() -> None:
    # glog/absl chatter on stderr drowns the CLI's one-line errors; keep warnings and errors.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class FaceMesher:
    """Finds faces and their mesh in stills (static mode) and frame sequences (tracking mode)."""

    def __init__(self, *, max_faces: int = 4) -> None:
        self.max_faces = max_faces
        self._static: Any = None
        self._video: Any = None
        self._detector: Any = None

    def _solutions(self) -> Any:
        _quiet_mediapipe()
        return import_mediapipe().solutions

    def _get_static(self) -> Any:
        if self._static is None:
            self._static = self._solutions().face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=self.max_faces,
                refine_landmarks=True,
                min_detection_confidence=_MIN_DETECTION,
            )
        return self._static

    def _get_video(self) -> Any:
        if self._video is None:
            self._video = self._solutions().face_mesh.FaceMesh(
                static_image_mode=False,
                max_num_faces=self.max_faces,
                refine_landmarks=True,
                min_detection_confidence=_MIN_DETECTION,
                min_tracking_confidence=0.5,
            )
        return self._video

    def _get_detector(self) -> Any:
        if self._detector is None:
            # Full-range model: finds faces down to a few percent of the frame that the mesh's
            # own short-range detector misses.
            self._detector = self._solutions().face_detection.FaceDetection(
                model_selection=1,
                min_detection_confidence=_MIN_DETECTION,
            )
        return self._detector

    def close(self) -> None:
        for graph in (self._static, self._video, self._detector):
            if graph is not None:
                graph.close()
        self._static = self._video = self._detector = None

    # -- public -----------------------------------------------------------------------------

    def still(self, frame: Frame) -> list[FaceObservation]:
        """Faces in one frame, independent of any other frame."""
        faces = self._mesh(self._get_static(), frame)
        if faces:
            return faces
        return self._detect_then_mesh(frame)

    def sequence(self, frames: Sequence[Frame]) -> list[list[FaceObservation]]:
        """Faces in consecutive frames of one window, with the mesh tracked frame to frame.

        When the mesh's short-range detector finds a face in under half the frames (a small face
        in a wide shot), a full-range detection fixes one region for the whole window and the
        tracked mesh runs again on that crop, so landmarks stay temporally coherent; the pass
        that found more faces wins.
        """
        graph = self._get_video()
        graph.reset()
        full = [self._mesh(graph, f) for f in frames]
        hits = sum(bool(x) for x in full)
        if hits >= 0.5 * len(frames) or not frames:
            return full
        roi = self._window_roi(frames[:: max(1, len(frames) // _ROI_PROBES)][:_ROI_PROBES])
        if roi is None:
            return full
        graph.reset()
        cropped: list[list[FaceObservation]] = []
        for f in frames:
            xa, ya, xb, yb = (
                int(roi[0] * f.width),
                int(roi[1] * f.height),
                int(roi[2] * f.width),
                int(roi[3] * f.height),
            )
            crop = np.ascontiguousarray(f.rgb[ya:yb, xa:xb])
            offset = (xa / f.width, ya / f.height, (xb - xa) / f.width, (yb - ya) / f.height)
            cropped.append(self._mesh(graph, f, offset=offset, crop=crop))
        return cropped if sum(bool(x) for x in cropped) > hits else full

    def _window_roi(self, frames: Sequence[Frame]) -> tuple[float, float, float, float] | None:
        """A normalised square-ish region around the largest full-range detection, 2.5x its size."""
        for f in frames:
            result = self._get_detector().process(f.rgb)
            dets = result.detections or []
            if not dets:
                continue
            rb = max(
                dets, key=lambda d: d.location_data.relative_bounding_box.width
            ).location_data.relative_bounding_box
            side = max(rb.width * f.width, rb.height * f.height) * 2.5
            cx, cy = (rb.xmin + rb.width / 2) * f.width, (rb.ymin + rb.height / 2) * f.height
            x0, x1 = max(0.0, cx - side / 2) / f.width, min(f.width, cx + side / 2) / f.width
            y0, y1 = max(0.0, cy - side / 2) / f.height, min(f.height, cy + side / 2) / f.height
            if (x1 - x0) * f.width >= 16 and (y1 - y0) * f.height >= 16:
                return (x0, y0, x1, y1)
        return None

    # -- internals --------------------------------------------------------------------------

    def _mesh(
        self,
        graph: Any,
        frame: Frame,
        *,
        offset: tuple[float, float, float, float] | None = None,
        crop: npt.NDArray[np.uint8] | None = None,
    ) -> list[FaceObservation]:
        image = frame.rgb if crop is None else crop
        result = graph.process(image)
        out: list[FaceObservation] = []
        for face in result.multi_face_landmarks or []:
            pts = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            if pts.shape[0] != N_LANDMARKS:
                continue
            if offset is not None:
                ox, oy, sx, sy = offset  # crop origin and size, normalised to the frame
                pts[:, 0] = ox + pts[:, 0] * sx
                pts[:, 1] = oy + pts[:, 1] * sy
                pts[:, 2] = pts[:, 2] * sx
            box = _box_from_points(pts)
            if box is None:
                continue
            out.append(
                FaceObservation(
                    t=frame.t,
                    role=frame.role,
                    window=frame.window,
                    box=box,
                    landmarks=pts,
                    frame_size=(frame.width, frame.height),
                )
            )
        return out

    def _detect_then_mesh(self, frame: Frame) -> list[FaceObservation]:
        """Small faces: full-range detection, then the mesh on a crop around each detection."""
        result = self._get_detector().process(frame.rgb)
        out: list[FaceObservation] = []
        for det in (result.detections or [])[: self.max_faces]:
            rb = det.location_data.relative_bounding_box
            x0, y0 = max(0.0, rb.xmin), max(0.0, rb.ymin)
            x1, y1 = min(1.0, rb.xmin + rb.width), min(1.0, rb.ymin + rb.height)
            if x1 <= x0 or y1 <= y0:
                continue
            score = float(np.clip(det.score[0], 0.0, 1.0)) if det.score else None
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            side_px = max((x1 - x0) * frame.width, (y1 - y0) * frame.height) * 2.0
            xa = int(max(0, cx * frame.width - side_px / 2))
            xb = int(min(frame.width, cx * frame.width + side_px / 2))
            ya = int(max(0, cy * frame.height - side_px / 2))
            yb = int(min(frame.height, cy * frame.height + side_px / 2))
            crop = np.ascontiguousarray(frame.rgb[ya:yb, xa:xb])
            meshed: list[FaceObservation] = []
            if crop.shape[0] >= 16 and crop.shape[1] >= 16:
                offset = (xa / frame.width, ya / frame.height, (xb - xa) / frame.width, (yb - ya) / frame.height)
                meshed = self._mesh(self._get_static(), frame, offset=offset, crop=crop)[:1]
            if meshed:
                o = meshed[0]
                out.append(
                    FaceObservation(
                        t=o.t,
                        role=o.role,
                        window=o.window,
                        box=o.box,
                        landmarks=o.landmarks,
                        frame_size=o.frame_size,
                        score=score,
                    )
                )
            else:
                out.append(
                    FaceObservation(
                        t=frame.t,
                        role=frame.role,
                        window=frame.window,
                        box=(x0, y0, x1, y1),
                        landmarks=None,
                        frame_size=(frame.width, frame.height),
                        score=score,
                    )
                )
        return out


def _box_from_points(pts: npt.NDArray[np.float32]) -> tuple[float, float, float, float] | None:
    x0, y0 = float(pts[:, 0].min()), float(pts[:, 1].min())
    x1, y1 = float(pts[:, 0].max()), float(pts[:, 1].max())
    if not (x1 > x0 and y1 > y0):
        return None
    return (x0, y0, x1, y1)
