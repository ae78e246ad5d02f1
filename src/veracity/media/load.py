"""Plan which frames an analysis needs, then decode exactly those and the audio."""

from __future__ import annotations

import time

import numpy as np

from veracity.config import Limits, Options
from veracity.errors import CorruptMedia
from veracity.media.audio import load_audio
from veracity.media.image import load_image
from veracity.media.types import AUDIO_UNDECODABLE, DecodedMedia, MediaInfo, SamplePlan
from veracity.media.video import sample_video


def plan_sampling(info: MediaInfo, options: Options) -> SamplePlan:
    """Sparse frames spread over the clip, plus dense windows for motion and lip sync.

    Clips up to ``whole_clip_s`` are one window end to end; longer ones get up to
    ``max_windows`` windows of ``window_s`` spread evenly, so cost does not grow with duration.
    """
    if info.kind != "video":
        return SamplePlan(sparse=(), windows=(), dense_fps=options.dense_fps)
    duration = info.duration_s or 0.0
    fps = info.fps or options.dense_fps
    dense_fps = min(options.dense_fps, fps)
    if duration <= 0:
        # Unknown duration (some GIFs, raw streams): the first frames only.
        return SamplePlan(sparse=(0.0,), windows=((0.0, options.window_s),), dense_fps=dense_fps)
    last = max(0.0, duration - 1.0 / fps)
    n = min(options.frames, max(1, int(duration * fps)))
    sparse = tuple(float(x) for x in np.linspace(0.0, last, n)) if n > 1 else (0.0,)
    windows: list[tuple[float, float]] = []
    if options.max_windows > 0:
        if duration <= max(options.whole_clip_s, options.window_s):
            windows.append((0.0, duration))
        else:
            count = min(options.max_windows, max(1, int(duration // options.window_s)))
            for k in range(count):
                centre = duration * (k + 0.5) / count
                start = max(0.0, min(centre - options.window_s / 2, duration - options.window_s))
                windows.append((start, start + options.window_s))
    return SamplePlan(sparse=sparse, windows=tuple(windows), dense_fps=dense_fps,
                      snap_to_keyframes=options.mode == "fast" or options.keyframe_sampling)


def decode(info: MediaInfo, plan: SamplePlan, limits: Limits) -> DecodedMedia:
    """Decode what the plan names. Image: one still. Audio: samples only. Video: frames + audio.

    A broken audio track in a video is a warning (the pictures are still worth analysing);
    in an audio file it is an error.
    """
    started = time.perf_counter()
    out = DecodedMedia(info=info, warnings=list(info.warnings))
    if info.kind == "image":
        out.frames.append(load_image(info))
    elif info.kind == "video":
        wanted = len(plan.sparse) + sum(len(plan.dense_times(w)) for w in range(len(plan.windows)))
        if wanted > limits.max_frames:
            raise CorruptMedia(f"plan asks for {wanted} frames, over max_frames={limits.max_frames}")
        frames, warns = sample_video(info, plan, limits)
        out.frames.extend(frames)
        out.warnings.extend(warns)
        try:
            out.audio, warns = load_audio(info, max_decode_s=limits.max_decode_s)
            out.warnings.extend(warns)
        except CorruptMedia as exc:
            out.warnings.append(f"{AUDIO_UNDECODABLE}: {exc.message}")
    else:
        out.audio, warns = load_audio(info, max_decode_s=limits.max_decode_s)
        out.warnings.extend(warns)
    out.decode_ms = (time.perf_counter() - started) * 1000.0
    return out
