"""The face stage fed one frame at a time, as the decoder yields them.

:func:`veracity.faces.find_faces` needs the whole decoded clip in memory. :class:`FaceStream`
gives the same :class:`FaceResult` from frames pushed in time order: sparse frames are meshed as
they arrive and kept (crops and the detectors that read pixels need them); a dense window is
held only until its last frame, meshed as one tracked sequence, then let go. Peak memory is then
the sparse frames plus one window instead of every frame of the plan.

Same result as ``find_faces``: each frame goes through the same graph calls in the same order
within its role (the static graph is stateless; the tracked graph is reset per window), and
``assign_tracks`` orders observations by (time, role) itself.
"""

from __future__ import annotations

import time

from veracity.faces.align import align_crop
from veracity.faces.mesh import FaceMesher
from veracity.faces.track import assign_tracks
from veracity.faces.types import FaceObservation, FaceResult
from veracity.media.types import Frame


class FaceStream:
    """Push frames with :meth:`feed` in decode order, then call :meth:`finish` once."""

    def __init__(self, mesher: FaceMesher, *, crop_size: int, keep_crops: bool = True) -> None:
        self._mesher = mesher
        self._crop_size = crop_size
        self._keep_crops = keep_crops
        self._observations: list[FaceObservation] = []
        self._sparse: list[Frame] = []
        self._window: list[Frame] = []
        self._window_id: int | None = None
        self._frames_with = 0
        self._seen = 0
        self._busy_s = 0.0
        self._done = False

    def feed(self, frame: Frame) -> None:
        """Mesh a sparse/still frame now; buffer a dense one until its window is complete."""
        if self._done:
            raise RuntimeError("FaceStream.feed after finish")
        started = time.perf_counter()
        if frame.role == "dense":
            if self._window and frame.window != self._window_id:
                self._flush_window()
            self._window_id = frame.window
            self._window.append(frame)
        else:
            found = self._mesher.still(frame)
            self._frames_with += bool(found)
            self._observations.extend(found)
            self._sparse.append(frame)
            self._seen += 1
        self._busy_s += time.perf_counter() - started

    def _flush_window(self) -> None:
        for found in self._mesher.sequence(self._window):
            self._frames_with += bool(found)
            self._observations.extend(found)
        self._seen += len(self._window)
        self._window = []
        self._window_id = None

    def finish(self) -> FaceResult:
        """Mesh the last window, link observations into tracks and cut the sparse crops."""
        if self._done:
            raise RuntimeError("FaceStream.finish called twice")
        self._done = True
        started = time.perf_counter()
        if self._window:
            self._flush_window()
        tracks = assign_tracks(self._observations)
        if self._keep_crops:
            by_time = {f.t: f for f in self._sparse}
            for track in tracks:
                for obs in track.observations:
                    source = by_time.get(obs.t)
                    if obs.role in ("sparse", "still") and source is not None:
                        track.crops[obs.t] = align_crop(source.rgb, obs, self._crop_size)
        self._busy_s += time.perf_counter() - started
        return FaceResult(
            tracks=tracks,
            frames_seen=self._seen,
            frames_with_faces=self._frames_with,
            elapsed_ms=self._busy_s * 1000.0,
        )
