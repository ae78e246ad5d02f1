"""Exact frame sampling without decoding the whole file.

The walk reads the keyframe index first, seeks only when the next target's keyframe lies beyond
the current decode position, otherwise decodes forward, and converts (colour space, scale) only
the frames it keeps. Measured on these machines this is the fastest exact sampler
(ARCHITECTURE.md, "Decode costs").
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import av
import av.error
import numpy as np
import numpy.typing as npt

from veracity.config import Limits
from veracity.errors import AnalysisTimeout, CorruptMedia
from veracity.media.types import MEDIA_TRUNCATED, Frame, FrameRole, MediaInfo, SamplePlan, ffmpeg_reason

_DEMUX_SCAN_LIMIT = 200_000  # packets read to find keyframes when the container has no index
_NO_SEEK_BELOW_S = 30.0  # short clips without an index are decoded straight through
# Containers whose index marks true keyframes. MPEG-PS, for one, builds its index while reading
# and flags every frame, so seeking on it lands wherever it likes.
_INDEXED_CONTAINERS = frozenset({"mov", "matroska", "avi", "flv"})


@dataclass(frozen=True, slots=True)
class Target:
    t: float
    role: Literal["sparse", "dense"]
    window: int | None


def targets_for(plan: SamplePlan) -> list[Target]:
    """All requested timestamps, sorted, each tagged with its role."""
    out = [Target(t, "sparse", None) for t in plan.sparse]
    for w in range(len(plan.windows)):
        out.extend(Target(t, "dense", w) for t in plan.dense_times(w))
    out.sort(key=lambda x: (x.t, x.role))
    return out


def snap_sparse(targets: list[Target], keyframes: list[float]) -> list[Target]:
    """Sparse targets moved each to the nearest keyframe not taken yet; dense ones kept.

    A keyframe decodes alone, so after a seek each sparse frame costs one frame of decoding
    whatever the GOP length. With fewer keyframes than targets, fewer frames come back.
    """
    out: list[Target] = []
    free = sorted(set(keyframes))
    for tg in targets:
        if tg.role != "sparse":
            out.append(tg)
            continue
        if not free:
            continue
        near = min(free, key=lambda kf: (abs(kf - tg.t), kf))
        free.remove(near)
        out.append(Target(max(0.0, near), "sparse", None))
    out.sort(key=lambda x: (x.t, x.role))
    return out


def snap_targets(targets: list[Target], keyframes: list[float], plan: SamplePlan) -> list[Target]:
    """:func:`snap_sparse`, and every dense window moved back to start at the keyframe at or
    before its planned start (same length and rate), so no frame before the window is decoded."""
    shifts = {w: _kf_before(keyframes, start) - start for w, (start, _end) in enumerate(plan.windows)}
    moved = [Target(max(0.0, tg.t + shifts[tg.window]), "dense", tg.window)
             if tg.role == "dense" and tg.window is not None else tg for tg in targets]
    return snap_sparse(moved, keyframes)


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size that fits ``max_side`` keeping aspect, with even dimensions for swscale."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def keyframe_times(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> list[float]:
    """Keyframe timestamps in seconds from the index, or [] when the container has none."""
    tb = float(stream.time_base or 0)
    if tb <= 0:
        return []
    try:
        entries = stream.index_entries
        times = [e.timestamp * tb for e in entries if e.is_keyframe]
    except (AttributeError, av.error.FFmpegError):
        times = []
    start = float(stream.start_time or 0) * tb
    out = sorted(t - start for t in times)
    if out and out[0] < 0:
        # MP4 indexes decode times; with B-frames the first keyframe decodes before the start
        # (e.g. -2 frames) and every keyframe is shown that much later than indexed. Seeking
        # lands by presentation time, so an unshifted index sends a seek for a frame just
        # after a keyframe to the keyframe before, the walk reads that as an overshoot and
        # decodes the whole file from the start.
        shift = -out[0]
        out = [t + shift for t in out]
    return out


def _demux_keyframes(path: str, stream_index: int, demuxer: str | None = None) -> list[float]:
    """A packet-only pass (no decoding) for containers without an index, e.g. WebM, MPEG-PS."""
    times: list[float] = []
    with av.open(path, format=demuxer, metadata_errors="ignore") as c:
        s = c.streams[stream_index]
        tb = float(s.time_base or 0)
        start = float(s.start_time or 0) * tb
        for n, pkt in enumerate(c.demux(s)):
            if n > _DEMUX_SCAN_LIMIT:
                break
            if pkt.is_keyframe and pkt.pts is not None:
                times.append(pkt.pts * tb - start)
    return sorted(times)


def _rotate(rgb: npt.NDArray[np.uint8], rotation: int) -> npt.NDArray[np.uint8]:
    """Apply a display-matrix rotation (degrees counter-clockwise) so faces are upright."""
    k = (int(round(rotation / 90.0)) % 4) if rotation else 0
    return np.ascontiguousarray(np.rot90(rgb, k=k)) if k else rgb


def _convert(frame: av.VideoFrame, max_side: int) -> npt.NDArray[np.uint8]:
    w, h = scaled_size(frame.width, frame.height, max_side)
    if (w, h) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        # FAST_BILINEAR: 1.3 ms a 1080p frame against 3.1 ms for the default (measured here).
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray()
    return _rotate(np.asarray(rgb, dtype=np.uint8), int(getattr(frame, "rotation", 0) or 0))


def sample_video(info: MediaInfo, plan: SamplePlan, limits: Limits) -> tuple[list[Frame], list[str]]:
    """Decode the frames the plan asks for. Returns (frames, warnings).

    A damaged stream that still yields frames is a warning; one that yields none is CorruptMedia.
    """
    warnings: list[str] = []
    return list(iter_video(info, plan, limits, warnings)), warnings


def iter_video(info: MediaInfo, plan: SamplePlan, limits: Limits, warnings: list[str]) -> Iterator[Frame]:
    """The frames of :func:`sample_video` one at a time, in time order, as they are decoded.

    The streamed pipeline consumes them while the next ones decode, so no stage holds the whole
    clip. ``warnings`` is appended to as the walk goes; it is complete once the iterator is
    exhausted. Frames are yielded once per (time, role, window): targets closer together than a
    frame map to one frame. Raises CorruptMedia when the stream yields no frame at all.
    """
    targets = targets_for(plan)
    if not targets:
        return
    path = str(info.path)
    max_decode = max(limits.max_frames * 60, 5_000)
    seen: set[tuple[float, str, int | None]] = set()
    last_t: float | None = None  # time of the last frame kept
    try:
        with av.open(path, format=info.demuxer, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base or 0)
            t0 = float(stream.start_time or 0) * tb if tb else 0.0
            fps = info.fps or 25.0
            tolerance = 0.5 / fps
            kfs = keyframe_times(container, stream) if info.container in _INDEXED_CONTAINERS else []
            if not kfs and (info.duration_s or 0) > _NO_SEEK_BELOW_S:
                kfs = _demux_keyframes(path, stream.index, info.demuxer)
            can_seek = bool(kfs) and tb > 0
            if plan.snap_to_keyframes and can_seek:
                targets = snap_targets(targets, kfs, plan)
            pos = -math.inf  # time of the last decoded frame
            decoder = None
            decoded = 0
            i = 0
            restarted = False  # set once, by an overshooting seek: the one retry the loop allows
            deadline = time.monotonic() + limits.max_decode_s
            while i < len(targets):
                if time.monotonic() > deadline:
                    raise AnalysisTimeout(f"video decoding took longer than {limits.max_decode_s:.0f} s", path=path)
                want = targets[i].t
                seeked = False
                if decoder is None or (can_seek and want > pos and _kf_before(kfs, want) > pos + tolerance):
                    if can_seek and want > tolerance:
                        container.seek(int((want + t0) / tb), stream=stream, backward=True)
                        seeked = True
                    decoder = container.decode(stream)
                    pos = -math.inf
                got = False
                for frame in decoder:
                    decoded += 1
                    if decoded % 64 == 0 and time.monotonic() > deadline:
                        raise AnalysisTimeout(f"video decoding took longer than {limits.max_decode_s:.0f} s", path=path)
                    if decoded > max_decode:
                        warnings.append(f"decode_capped_after_{max_decode}_frames")
                        return
                    ft = (frame.time if frame.time is not None else (frame.pts or 0) * tb) - t0
                    if seeked and ft > want + tolerance:
                        # The seek overshot the target (an index that lies): from here on,
                        # decode from the start and never seek again.
                        can_seek, seeked = False, False
                        container.seek(0, stream=stream, backward=True)
                        decoder = container.decode(stream)
                        pos = -math.inf
                        restarted = True
                        break
                    seeked = False
                    pos = ft
                    if ft < want - tolerance:
                        continue
                    kept: dict[tuple[FrameRole, int], npt.NDArray[np.uint8]] = {}
                    out: list[Frame] = []
                    while i < len(targets) and targets[i].t < ft + tolerance:
                        tg = targets[i]
                        side = plan.sparse_max_side if tg.role == "sparse" else plan.dense_max_side
                        if (tg.role, side) not in kept:
                            kept[(tg.role, side)] = _convert(frame, side)
                            out.append(
                                Frame(t=max(ft, 0.0), rgb=kept[(tg.role, side)], role=tg.role, window=tg.window)
                            )
                        i += 1
                    got = True
                    for f in out:
                        last_t = f.t
                        key = (round(f.t, 6), f.role, f.window)
                        if key not in seen:
                            seen.add(key)
                            yield f
                    break
                if not got and restarted:
                    # Restarted from the start after an overshoot: decode on, once. A decoder that
                    # yields nothing (a stream of zero frames) used to loop here forever.
                    restarted = False
                    continue
                if not got:
                    # Ran off the end of the stream: remaining targets lie past the last frame.
                    if last_t is not None and _truncated(info, last_t):
                        warnings.append(f"{MEDIA_TRUNCATED}: video ends at {last_t:.2f}s")
                    break
    except av.error.FFmpegError as exc:
        if last_t is None:
            raise CorruptMedia(f"video stream cannot be decoded: {ffmpeg_reason(exc)}", path=path) from exc
        warnings.append(f"{MEDIA_TRUNCATED}: video_decode_stopped_at_{last_t:.2f}s")
    if last_t is None:
        raise CorruptMedia("video stream yielded no frames", path=path)


def _truncated(info: MediaInfo, last_t: float) -> bool:
    """True when the headers promise more than a second of video past the last frame decoded
    (a file cut short); less is ordinary rounding of durations."""
    duration = info.duration_s or 0.0
    return duration > 0 and last_t < duration - 1.0


def _kf_before(kfs: list[float], t: float) -> float:
    idx = bisect.bisect_right(kfs, t + 1e-6) - 1
    return kfs[idx] if idx >= 0 else 0.0
