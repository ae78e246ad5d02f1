"""PhysiologyDetector on synthetic meshes: blinks counted, rigid motion vs warped centre, misuse."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.meshes import FPS, Arr, H, W, context, observation, random_face, rot_y, rot_z

from veracity.detectors.base import DetectorResult
from veracity.detectors.physiology import (
    CENTRAL,
    PhysiologyDetector,
    blink_surprise,
    detect_blinks,
    face_ear,
    pose_inconsistency,
)
from veracity.faces.types import LEFT_EYE, N_LANDMARKS, RIGHT_EYE, FaceObservation, FaceTrack
from veracity.pipeline import run_detector


def base_face(seed: int = 0) -> Arr:
    """The random face with hand-placed eyes, IOD = 60 px."""
    return set_eyes(random_face(seed), 1.0)


def set_eyes(pts: Arr, openness: float) -> Arr:
    """Place both eyes; ``openness`` scales the lid gap, so EAR = openness / 3."""
    out = pts.copy()
    for eye, cx in ((LEFT_EYE, -30.0), (RIGHT_EYE, 30.0)):
        p1, p2, p3, p4, p5, p6 = eye
        out[p1] = (cx - 12, -15, 0)
        out[p4] = (cx + 12, -15, 0)
        out[p2] = (cx - 4, -15 - 4 * openness, 0)
        out[p3] = (cx + 4, -15 - 4 * openness, 0)
        out[p6] = (cx - 4, -15 + 4 * openness, 0)
        out[p5] = (cx + 4, -15 + 4 * openness, 0)
    return out


def blink_profile(n: int, starts: list[int]) -> list[float]:
    """Eye openness per frame: open, with a 3-frame close-close-reopen dip at each start."""
    open_ = [1.0] * n
    for s in starts:
        for k, v in enumerate((0.5, 0.1, 0.6)):
            open_[s + k] = v
    return open_


def moving_track(n: int, openness: list[float] | None = None, *, central_wobble_deg: float = 0.0,
                 noise_px: float = 0.2, seed: int = 1) -> FaceTrack:
    """A face turning slowly (yaw sweep, small roll) and drifting, optionally with the central
    region rotated per frame against the rest (a pasted-in face)."""
    rng = np.random.default_rng(seed)
    base = base_face()
    obs = []
    central = list(CENTRAL)
    for k in range(n):
        shape = set_eyes(base, openness[k] if openness else 1.0)
        if central_wobble_deg:
            c = shape[central]
            mu = c.mean(axis=0)
            wobble = central_wobble_deg * (1 if k % 2 else -1) * (0.5 + rng.random())
            shape[central] = (c - mu) @ rot_z(wobble).T @ rot_y(wobble / 2).T + mu
        r = rot_y(15 * math.sin(k / 25)) @ rot_z(3 * math.sin(k / 40))
        px = shape @ r.T + np.array([20 * math.sin(k / 30), 5 * k / n, 0])
        px += rng.normal(0, noise_px, px.shape)
        obs.append(observation(px, k / FPS))
    return FaceTrack(track_id=0, observations=obs)


DET = PhysiologyDetector()


# -- units --------------------------------------------------------------------------------------


def test_ear_of_synthetic_eye() -> None:
    assert face_ear(set_eyes(base_face(), 1.0)) == pytest.approx(1 / 3)
    assert face_ear(set_eyes(base_face(), 0.3)) == pytest.approx(0.1)


def test_detect_blinks_counts_dips_with_recovery() -> None:
    ear = np.ones(60)
    ear[10:13] = (0.6, 0.2, 0.7)  # blink
    ear[30] = 0.5  # one-frame blink
    ear[45:60] = 0.3  # closes and never reopens in the run: not counted
    t = np.arange(60) / FPS
    blinks = detect_blinks(ear, t, baseline=1.0)
    assert len(blinks) == 2
    assert blinks[0].duration_s == pytest.approx(3 / FPS)
    assert blinks[1].duration_s == pytest.approx(1 / FPS)


def test_long_closure_is_not_a_blink() -> None:
    ear = np.ones(60)
    ear[10:30] = 0.3  # 1.3 s: looking down, not a blink
    assert detect_blinks(ear, np.arange(60) / FPS, baseline=1.0) == []


def test_detect_blinks_tolerates_nan_and_bad_baseline() -> None:
    ear = np.ones(20)
    ear[5] = np.nan
    t = np.arange(20) / FPS
    assert detect_blinks(ear, t, baseline=1.0) == []
    assert detect_blinks(ear, t, baseline=math.nan) == []
    assert detect_blinks(ear[:2], t[:2], baseline=1.0) == []


def test_blink_surprise_is_conservative() -> None:
    assert blink_surprise(3, 12.0) == 0.0  # 15/min: normal
    assert blink_surprise(0, 4.0) < 1.0  # no blink in 4 s happens
    assert blink_surprise(0, 60.0) > 5.0  # no blink in a minute does not
    assert blink_surprise(40, 30.0) > 5.0  # 80/min: absurd


def test_rigid_motion_gives_near_zero_pose_inconsistency() -> None:
    track = moving_track(60, noise_px=0.0)
    angles = pose_inconsistency([o.pixels() for o in track.observations])
    assert float(np.max(angles)) < 0.05


def test_warped_central_region_gives_large_pose_inconsistency() -> None:
    track = moving_track(60, central_wobble_deg=6.0, noise_px=0.0)
    angles = pose_inconsistency([o.pixels() for o in track.observations])
    assert float(np.mean(angles)) > 3.0


# -- the detector ---------------------------------------------------------------------------------


def test_blinking_face_blink_count_and_rate() -> None:
    n = 150  # 10 s at 15 fps
    starts = [20, 60, 100, 130]
    ctx = context([moving_track(n, blink_profile(n, starts))], n_frames=n)
    assert DET.applies(ctx)
    res = DET.run(ctx)
    assert res.score is not None
    assert res.evidence["blink_count"] == 4
    assert res.evidence["blinks_per_minute"] == pytest.approx(24.0, rel=0.02)
    assert res.evidence["blink_rate_scored"] is True
    assert res.evidence["mean_blink_ms"] == pytest.approx(200.0, abs=1.0)
    assert res.score < 0.2
    assert "abnormal_blinking" not in res.reasons
    assert 0.0 < res.confidence <= 0.8


def test_rigid_face_scores_low_and_warped_centre_scores_high() -> None:
    n = 90
    starts = [20, 60]
    rigid = DET.run(context([moving_track(n, blink_profile(n, starts))], n_frames=n))
    warped = DET.run(context([moving_track(n, blink_profile(n, starts), central_wobble_deg=6.0)],
                             n_frames=n))
    assert rigid.score is not None
    assert warped.score is not None
    assert rigid.evidence["pose_mean_deg"] < 0.3  # type: ignore[operator]
    assert warped.evidence["pose_mean_deg"] > 3.0  # type: ignore[operator]
    assert rigid.score < 0.2
    assert warped.score > 0.9
    assert "head_pose_inconsistency" in warped.reasons
    assert "head_pose_inconsistency" not in rigid.reasons
    assert len(warped.frame_scores) == n
    assert max(warped.frame_scores.values()) > max(rigid.frame_scores.values())


def test_short_clip_does_not_score_blink_rate() -> None:
    n = 45  # 3 s, no blink: rate reported, not scored
    res = DET.run(context([moving_track(n)], n_frames=n))
    assert res.score is not None
    assert res.evidence["blink_count"] == 0
    assert res.evidence["blink_rate_scored"] is False
    assert res.evidence["blink_term"] == 0.0


def test_long_staring_face_is_flagged() -> None:
    # No blink in 40 s (three windows' worth is 12 s by default; options may ask for more).
    n = 600
    res = DET.run(context([moving_track(n)], n_frames=n))
    assert res.score is not None
    assert "abnormal_blinking" in res.reasons
    assert res.score > 0.5


def test_gap_in_frames_splits_the_window() -> None:
    n = 150
    track = moving_track(n, blink_profile(n, [20, 100]))
    # Drop the frames around the second blink: it is no longer observed as a blink.
    track.observations = [o for k, o in enumerate(track.observations) if not 98 <= k <= 104]
    res = DET.run(context([track], n_frames=n))
    assert res.evidence["blink_count"] == 1
    assert res.evidence["observed_s"] == pytest.approx((n - 7) / FPS, abs=0.01)


def test_without_decoded_frames_timestamps_define_runs() -> None:
    n = 150
    res = DET.run(context([moving_track(n, blink_profile(n, [20, 60, 100]))], n_frames=0))
    assert res.evidence["blink_count"] == 3


# -- not applicable and odd input ------------------------------------------------------------


def test_image_is_not_applicable() -> None:
    ctx = context([moving_track(30)], kind="image")
    res = run_detector(DET, ctx)  # the kind is checked once, by run_detector
    assert res.score is None
    assert res.not_applicable == "not_video"


def test_no_faces_is_not_applicable() -> None:
    res = run_detector(DET, context([], n_frames=30))
    assert res.score is None
    assert res.not_applicable == "no_face"
    assert DET.run(context([], n_frames=30)).not_applicable == "no_face"


def test_faces_without_landmarks_or_too_few_frames() -> None:
    track = moving_track(30)
    bare = FaceTrack(track_id=0, observations=[
        FaceObservation(t=o.t, role="dense", window=0, box=o.box, landmarks=None, frame_size=(W, H))
        for o in track.observations])
    assert run_detector(DET, context([bare], n_frames=30)).not_applicable == "no_face"
    short = moving_track(6)
    assert run_detector(DET, context([short], n_frames=6)).not_applicable == "no_face"


def test_nan_landmarks_do_not_raise() -> None:
    n = 60
    track = moving_track(n)
    lm = track.observations[10].landmarks
    assert lm is not None
    bad = lm.copy()
    bad[5] = np.nan
    obs = track.observations[10]
    track.observations[10] = FaceObservation(t=obs.t, role="dense", window=0, box=obs.box,
                                             landmarks=bad, frame_size=(W, H))
    res = DET.run(context([track], n_frames=n))
    assert isinstance(res, DetectorResult)
    assert res.score is not None
    assert res.evidence["frames"] == n - 1


def test_degenerate_mesh_does_not_raise() -> None:
    pts = np.zeros((N_LANDMARKS, 3))
    obs = []
    for k in range(12):
        lm = (pts + np.array([W / 2, H / 2, 0]) + np.arange(N_LANDMARKS)[:, None] * 1e-3)
        lm = (lm / np.array([W, H, W])).astype(np.float32)
        obs.append(FaceObservation(t=k / FPS, role="dense", window=0, box=(0.4, 0.4, 0.6, 0.6),
                                   landmarks=lm, frame_size=(W, H)))
    res = run_detector(DET, context([FaceTrack(track_id=0, observations=obs)], n_frames=12))
    assert isinstance(res, DetectorResult)
