"""TemporalDetector on synthetic meshes: smooth motion vs per-frame noise, flicker, misuse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.meshes import FPS, Arr, H, W, context, observation, random_face, rot_y, rot_z

from veracity.detectors.base import DetectorResult
from veracity.detectors.temporal import TemporalDetector, second_difference, similarity_align
from veracity.faces.types import FaceObservation, FaceTrack
from veracity.pipeline import run_detector


def base_face(seed: int = 0) -> Arr:
    return random_face(seed)


def rot(yaw: float, roll: float) -> Arr:
    return np.asarray(rot_y(yaw) @ rot_z(roll), dtype=np.float64)


def track(n: int, *, noise_px: float = 0.0, shake: float = 0.0, seed: int = 1, track_id: int = 0,
          times: list[float] | None = None, scale: float = 1.0) -> FaceTrack:
    """Smoothly turning and drifting face; ``noise_px`` trembles every landmark independently,
    ``shake`` jolts the whole face (position and zoom) from frame to frame."""
    rng = np.random.default_rng(seed)
    base = base_face() * scale
    obs = []
    for k in range(n):
        t = times[k] if times else k / FPS
        px = base @ rot(20 * math.sin(t / 2), 4 * math.sin(t / 3)).T
        px = px * (1 + 0.05 * math.sin(t / 2.5)) + np.array([30 * math.sin(t / 2), 10 * t, 0])
        if shake:
            jolt = rng.normal(0, shake * 100, 3) * np.array([1, 1, 0])
            px = px * (1 + shake * rng.normal()) + jolt
        px += rng.normal(0, noise_px, px.shape)
        obs.append(observation(px, t))
    return FaceTrack(track_id=track_id, observations=obs)


DET = TemporalDetector()


def test_second_difference_is_zero_for_uniform_motion_on_uneven_steps() -> None:
    # 15 fps sampled from 25 fps: alternating 80 / 40 ms steps.
    t = np.cumsum([0.0] + [0.08, 0.04, 0.08] * 10)
    x = 3.0 * t + 1.0
    assert np.allclose(second_difference(x, t), 0.0, atol=1e-12)
    u = np.arange(10.0)
    assert np.allclose(second_difference(u**2, u), 2.0)  # plain x[k+1] - 2x[k] + x[k-1]


def test_similarity_align_recovers_a_moved_shape() -> None:
    base = base_face()
    moved = 1.3 * base @ rot(25, 10).T + np.array([5.0, -7.0, 2.0])
    assert np.allclose(similarity_align(moved, base), base, atol=1e-9)


def test_smooth_face_scores_low() -> None:
    res = DET.run(context([track(60, noise_px=0.1)], n_frames=60))
    assert res.score is not None
    assert res.score < 0.1
    assert res.reasons == ()
    assert res.evidence["jitter_ratio"] < 0.5  # type: ignore[operator]
    assert res.evidence["iod_px"] == pytest.approx(60.0, rel=0.1)
    assert res.evidence["frames"] == 58


def test_per_frame_noise_raises_the_score() -> None:
    smooth = DET.run(context([track(60, noise_px=0.1)], n_frames=60))
    noisy = DET.run(context([track(60, noise_px=2.0)], n_frames=60))
    assert smooth.score is not None
    assert noisy.score is not None
    assert noisy.score > 0.7
    assert noisy.score > smooth.score + 0.5
    assert "landmark_jitter" in noisy.reasons
    assert len(noisy.frame_scores) == 58
    assert np.mean(list(noisy.frame_scores.values())) > np.mean(list(smooth.frame_scores.values()))


def test_whole_face_shake_is_flicker_not_jitter() -> None:
    res = DET.run(context([track(60, noise_px=0.1, shake=0.05)], n_frames=60))
    assert res.score is not None
    assert res.evidence["jitter_ratio"] < 0.6  # type: ignore[operator]
    assert res.evidence["flicker_ratio"] > 3.0  # type: ignore[operator]
    assert "box_flicker" in res.reasons
    assert "landmark_jitter" not in res.reasons


def test_uneven_sampling_of_smooth_motion_stays_low() -> None:
    times = list(np.cumsum([0.0] + [0.08, 0.04, 0.08] * 20))
    res = DET.run(context([track(len(times), noise_px=0.1, times=times)], n_frames=0))
    assert res.score is not None
    assert res.score < 0.1
    assert res.evidence["dense_fps"] == pytest.approx(15.0, rel=0.01)


def test_worst_track_decides() -> None:
    calm = track(60, noise_px=0.1, track_id=0)
    shaky = track(60, noise_px=2.0, track_id=1, seed=2)
    res = DET.run(context([calm, shaky], n_frames=60))
    assert res.evidence["track_id"] == 1
    assert res.evidence["tracks_scored"] == 2


def test_gaps_split_runs_and_short_runs_are_skipped() -> None:
    tr = track(30, noise_px=0.1)
    # frames 0-6 and 8-14 are runs of 7 (< 8), 16-29 is a run of 14.
    tr.observations = [o for k, o in enumerate(tr.observations) if k not in (7, 15)]
    res = DET.run(context([tr], n_frames=30))
    assert res.evidence["runs"] == 1
    assert res.evidence["frames"] == 12
    tr.observations = tr.observations[:13]  # two runs of 7: nothing long enough
    short = DET.run(context([tr], n_frames=30))
    assert short.score is None
    assert short.not_applicable == "too_few_frames"


def test_tiny_face_is_skipped() -> None:
    res = DET.run(context([track(30, scale=0.05)], n_frames=30))
    assert res.score is None
    assert res.not_applicable == "face_too_small"


def test_image_is_not_applicable() -> None:
    ctx = context([track(20)], kind="image")
    res = run_detector(DET, ctx)  # the kind is checked once, by run_detector
    assert res.score is None
    assert res.not_applicable == "not_video"


def test_no_faces_is_not_applicable() -> None:
    ctx = context([], n_frames=20)
    assert DET.applies(ctx).reason == "no_face"
    assert run_detector(DET, ctx).not_applicable == "no_face"
    assert DET.run(ctx).not_applicable == "no_face"


def test_landmark_free_faces_are_not_applicable() -> None:
    tr = track(20)
    bare = FaceTrack(track_id=0, observations=[
        FaceObservation(t=o.t, role="dense", window=0, box=o.box, landmarks=None, frame_size=(W, H))
        for o in tr.observations])
    assert run_detector(DET, context([bare], n_frames=20)).not_applicable == "no_face"


def test_nan_landmarks_break_the_run_without_raising() -> None:
    tr = track(40, noise_px=0.1)
    obs = tr.observations[20]
    assert obs.landmarks is not None
    bad = obs.landmarks.copy()
    bad[:10] = np.nan
    tr.observations[20] = FaceObservation(t=obs.t, role="dense", window=0, box=obs.box,
                                          landmarks=bad, frame_size=(W, H))
    res = DET.run(context([tr], n_frames=40))
    assert isinstance(res, DetectorResult)
    assert res.score is not None
    assert res.evidence["runs"] == 2
