"""Follow faces across frames: greedy IoU matching in time order gives each person a track id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from veracity.faces.types import FaceObservation, FaceTrack

_MAX_GAP_S = 2.0


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _affinity(a: FaceObservation, b: FaceObservation) -> float:
    """IoU, or a softer centre-distance match for boxes that moved between sparse frames."""
    overlap = iou(a.box, b.box)
    if overlap > 0:
        return overlap
    ca = np.array([(a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2])
    cb = np.array([(b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2])
    dist = float(np.linalg.norm(ca - cb)) / max(a.box_size, b.box_size, 1e-6)
    return max(0.0, 0.2 - 0.2 * dist)


def assign_tracks(observations: Iterable[FaceObservation], *, min_affinity: float = 0.1) -> list[FaceTrack]:
    """Group observations into tracks. Observations at one timestamp never share a track."""
    ordered = sorted(observations, key=lambda o: (o.t, o.role))
    tracks: list[FaceTrack] = []
    i = 0
    while i < len(ordered):
        t, role = ordered[i].t, ordered[i].role
        same_time = []
        while i < len(ordered) and abs(ordered[i].t - t) < 1e-6 and ordered[i].role == role:
            same_time.append(ordered[i])
            i += 1
        # A sparse and a dense observation of one instant are two groups: the same face may
        # join its track twice at one timestamp, once per role.
        live = [tr for tr in tracks if t - tr.end <= _MAX_GAP_S]
        pairs = sorted(
            (
                (_affinity(tr.observations[-1], o), ti, oi)
                for ti, tr in enumerate(live)
                for oi, o in enumerate(same_time)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_o: set[int] = set()
        for aff, ti, oi in pairs:
            if aff < min_affinity or ti in used_t or oi in used_o:
                continue
            used_t.add(ti)
            used_o.add(oi)
            tr = live[ti]
            tr.observations.append(replace(same_time[oi], track_id=tr.track_id))
        for oi, o in enumerate(same_time):
            if oi not in used_o:
                tid = len(tracks)
                tracks.append(FaceTrack(track_id=tid, observations=[replace(o, track_id=tid)]))
    return tracks


def consecutive_runs(obs: Sequence[FaceObservation], frame_times: Sequence[float]) -> list[list[FaceObservation]]:
    """Split one window's observations (time-ordered) where a decoded frame has no face.

    With the window's frame times known, consecutive means adjacent decoded frames; without
    them (hand-built inputs), a gap over 1.75x the median spacing breaks the run.
    """
    if not obs:
        return []
    runs: list[list[FaceObservation]] = [[obs[0]]]
    times = sorted(frame_times)
    if len(times) >= 2:
        arr = np.asarray(times)
        pos = [int(np.argmin(np.abs(arr - o.t))) for o in obs]
        for k in range(1, len(obs)):
            if pos[k] - pos[k - 1] == 1:
                runs[-1].append(obs[k])
            else:
                runs.append([obs[k]])
        return runs
    gaps = np.diff([o.t for o in obs])
    med = float(np.median(gaps)) if gaps.size else 0.0
    for k in range(1, len(obs)):
        if med > 0 and 0 < gaps[k - 1] <= 1.75 * med:
            runs[-1].append(obs[k])
        else:
            runs.append([obs[k]])
    return runs
