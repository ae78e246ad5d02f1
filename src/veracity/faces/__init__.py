"""Face stage: detect, mesh, track and align faces in decoded frames. No face is a normal result."""

from __future__ import annotations

import time

from veracity.faces.align import align_crop
from veracity.faces.mesh import FaceMesher
from veracity.faces.track import assign_tracks
from veracity.faces.types import FaceObservation, FaceResult, FaceTrack
from veracity.media.types import DecodedMedia

CROP_SIZE = 224


def find_faces(media: DecodedMedia, mesher: FaceMesher, *, keep_crops: bool = True) -> FaceResult:
    """Run the mesh on sparse frames (each on its own) and on dense windows (tracked), then link
    everything into tracks and cut aligned crops from the sparse frames."""
    started = time.perf_counter()
    observations: list[FaceObservation] = []
    frames_with = 0
    sparse = media.sparse
    for frame in sparse:
        found = mesher.still(frame)
        frames_with += bool(found)
        observations.extend(found)
    n_dense = 0
    for w in media.window_ids:
        frames = media.window(w)
        n_dense += len(frames)
        for found in mesher.sequence(frames):
            frames_with += bool(found)
            observations.extend(found)
    tracks = assign_tracks(observations)
    if keep_crops:
        by_time = {f.t: f for f in sparse}
        for track in tracks:
            for obs in track.observations:
                source = by_time.get(obs.t)
                if obs.role in ("sparse", "still") and source is not None:
                    track.crops[obs.t] = align_crop(source.rgb, obs, CROP_SIZE)
    return FaceResult(
        tracks=tracks,
        frames_seen=len(sparse) + n_dense,
        frames_with_faces=frames_with,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


__all__ = ["CROP_SIZE", "FaceMesher", "FaceObservation", "FaceResult", "FaceTrack", "find_faces"]
