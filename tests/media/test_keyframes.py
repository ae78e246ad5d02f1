"""Keyframe times the sampler seeks by, and fast mode's snapping of sparse frames to them."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from veracity.config import Limits, Options
from veracity.media import plan_sampling, probe
from veracity.media.types import SamplePlan
from veracity.media.video import (
    Target,
    iter_video,
    keyframe_times,
    sample_video,
    snap_sparse,
    snap_targets,
    targets_for,
)


def _bframe_clip(path: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    """H.264 with B-frames (x264 veryfast) and a keyframe each second: the MP4 index then holds
    decode times, the first one negative."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        vs.options = {"preset": "veryfast", "g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
        yy, xx = np.mgrid[0:120, 0:160]
        for i in range(int(seconds * fps)):
            img = np.stack([(xx + 3 * i) % 256, (yy + i) % 256, np.full_like(xx, (5 * i) % 256)], -1)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


@pytest.fixture(scope="module")
def bclip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bframe_clip(tmp_path_factory.mktemp("kf") / "bframes.mp4")


def test_keyframe_times_are_presentation_times(bclip: Path) -> None:
    with av.open(str(bclip)) as c:
        s = c.streams.video[0]
        kfs = keyframe_times(c, s)
        shown = [float(f.time) for f in c.decode(s) if f.key_frame and f.time is not None]
    assert kfs[0] == pytest.approx(0.0, abs=1e-6)
    assert kfs == pytest.approx(shown, abs=1e-6)


def test_snap_sparse_moves_each_sparse_time_to_its_nearest_free_keyframe() -> None:
    targets = [Target(0.1, "sparse", None), Target(0.4, "dense", 0), Target(0.9, "sparse", None),
               Target(1.2, "sparse", None), Target(2.6, "sparse", None)]
    out = snap_sparse(targets, [0.0, 1.0, 2.0, 3.0])
    # 1.2 finds 1.0 taken by 0.9 and takes 2.0; 2.6 takes 3.0.
    assert [(t.t, t.role) for t in out] == [(0.0, "sparse"), (0.4, "dense"), (1.0, "sparse"), (2.0, "sparse"),
                                            (3.0, "sparse")]
    assert [t.t for t in snap_sparse(targets, [0.0])] == [0.0, 0.4]


def test_fast_plan_decodes_keyframes_only(bclip: Path) -> None:
    info = probe(bclip, Limits())
    fast = plan_sampling(info, Options(mode="fast", frames=4, max_windows=0))
    assert fast.snap_to_keyframes and not fast.windows
    warnings: list[str] = []
    frames = list(iter_video(info, fast, Limits(), warnings))
    assert [round(f.t, 3) for f in frames] == [0.0, 1.0, 2.0, 3.0]
    assert all(f.role == "sparse" for f in frames)


def test_exact_sampling_unchanged_by_the_index_shift(bclip: Path) -> None:
    """Seeking by the shifted index still returns exactly the frames a full decode gives."""
    info = probe(bclip, Limits())
    plan = plan_sampling(info, Options(frames=7, max_windows=0))
    frames, _ = sample_video(info, plan, Limits())
    with av.open(str(bclip)) as c:
        every = [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    for fr in frames:
        t, rgb = min(every, key=lambda x: abs(x[0] - fr.t))
        assert t == pytest.approx(fr.t, abs=1e-6)
        assert np.array_equal(rgb, fr.rgb)


def test_snap_targets_starts_each_dense_window_at_a_keyframe() -> None:
    plan = SamplePlan(sparse=(0.2, 2.9), windows=((1.4, 2.4),), dense_fps=5.0, snap_to_keyframes=True)
    out = snap_targets(targets_for(plan), [0.0, 1.0, 2.0, 3.0], plan)
    dense = [round(t.t, 6) for t in out if t.role == "dense"]
    assert dense == [1.0, 1.2, 1.4, 1.6, 1.8]  # 1.4..2.4 at 5 fps, moved back 0.4 s to the keyframe at 1.0
    assert [t.t for t in out if t.role == "sparse"] == [0.0, 3.0]


def test_keyframe_sampling_option_reaches_the_plan(bclip: Path) -> None:
    info = probe(bclip, Limits())
    assert plan_sampling(info, Options(keyframe_sampling=True)).snap_to_keyframes
    assert not plan_sampling(info, Options()).snap_to_keyframes
    frames, _ = sample_video(info, plan_sampling(info, Options(keyframe_sampling=True, frames=4)), Limits())
    dense = sorted(f.t for f in frames if f.role == "dense")
    assert dense and dense[0] == pytest.approx(0.0, abs=1e-6)
