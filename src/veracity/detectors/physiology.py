"""Physiological plausibility of the subject's face: blinking and head-pose consistency.

Two cues from the literature, both read off the 478-point mesh of the main face track in the
dense windows (consecutive frames at ~15 fps):

* **Blinking** (Li et al. 2018, "In Ictu Oculi"): people blink about 8-30 times a minute, each
  blink a dip of the eye aspect ratio lasting 100-400 ms. Early face swaps rarely blinked;
  some generators blink far too often or flicker the lids. The dense windows cover at most
  ~12 s, so a missing blink is only weak evidence: the test is a Poisson tail probability
  against deliberately wide "normal" rates, and it is not scored under 4 s of face time.
* **Head pose** (Yang et al. 2019, "Exposing Deep Fakes Using Inconsistent Head Poses"): a
  face swap pastes a synthesised central face (eyes, nose, mouth) into the original head, so
  the orientation implied by the central landmarks drifts from the orientation of the whole
  face. MediaPipe ships no canonical 3D face, so each track is its own reference: the
  Procrustes mean of its 3D shapes; per frame, a Kabsch rotation of the whole mesh and one of
  the central subset to that reference, and the angle between the two.

The mesh is a fitted model, which couples central region and contour, so real faces sit well
under a degree here and the cue is weak; the constants below are chosen to stay quiet on real
talking heads rather than to maximise separation. None of them was fitted to evaluation data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import (
    AnalysisContext,
    Applicability,
    DetectorResult,
    EvidenceValue,
    clamp01,
    sigmoid,
)
from veracity.faces.track import consecutive_runs
from veracity.faces.types import LEFT_EYE, RIGHT_EYE, FaceObservation, FaceTrack
from veracity.media.types import MediaKind

FloatArray = npt.NDArray[np.float64]

# -- data sufficiency ---------------------------------------------------------------------------
MIN_OBSERVATIONS = 10  # dense observations with landmarks the subject needs for any estimate
MIN_BLINK_TIME_S = 4.0  # below this much face time the blink rate is reported but not scored

# -- blink detection (adaptive to each window's open-eye EAR) -----------------------------------
CLOSED_FRAC = 0.75  # EAR below 0.75 x the window median counts as a closed eye
OPEN_FRAC = 0.90  # the eye is open again once EAR is back above 0.9 x the median (hysteresis)
MAX_CLOSED_S = 0.7  # closed longer than ~10 frames at 15 fps is looking down or a squint
# Wide "normal" blink rates (blinks/minute): resting rates reported in the literature span
# ~8-30/min; conversation pushes the upper end, hence 40. A clip is surprising only when its
# count is unlikely even under these generous Poisson rates.
NORMAL_BLINKS_PER_MIN_LOW = 8.0
NORMAL_BLINKS_PER_MIN_HIGH = 40.0
BLINK_SURPRISE_FREE = 1.0  # -ln p below 1 (p > 0.37) carries no weight
BLINK_TERM_CAP = 4.0  # a blink count alone never pushes the logit by more than this

# -- head pose (Yang et al. 2019) -----------------------------------------------------------------
# Central region: eye contours, nose (bridge, tip, alae) and inner lips; irises are left out
# because gaze moves them independently of the head.
EYE_CONTOURS = (
    33,
    7,
    163,
    144,
    145,
    153,
    154,
    155,
    133,
    173,
    157,
    158,
    159,
    160,
    161,
    246,
    263,
    249,
    390,
    373,
    374,
    380,
    381,
    382,
    362,
    398,
    384,
    385,
    386,
    387,
    388,
    466,
)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 327, 129, 358, 48, 278, 64, 294, 240, 460)
MOUTH_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
CENTRAL = EYE_CONTOURS + NOSE + MOUTH_INNER
# MediaPipe landmark noise and speech put real faces at a mean of ~0.2-0.8 degrees (1.4 at
# worst on low-resolution real clips); a mean above 1 degree starts to count, +1 logit per
# further half degree.
POSE_FREE_DEG = 1.0
POSE_SCALE_DEG = 0.5
POSE_TERM_CAP = 6.0
FRAME_POSE_REF_DEG = 2.5  # per-frame score 0.5 at 2.5 degrees: well above real frames' p95
FRAME_POSE_SCALE_DEG = 0.5
PROCRUSTES_ITERATIONS = 5

# -- fusion of the two parts ----------------------------------------------------------------------
BIAS = -2.0  # nothing anomalous: sigmoid(-2) = 0.12
REASON_TERM = 2.0  # a part that alone lifts the score to 0.5 is named in reasons
MAX_CONFIDENCE = 0.8  # weak cues: never fully trusted
CONFIDENCE_HALF_S = 4.0  # confidence reaches half its maximum at 4 s of face time


@dataclass(frozen=True, slots=True)
class Blink:
    """One detected blink: when, how long, and how fast the lid closed and reopened."""

    t: float  # time of the deepest closure
    duration_s: float
    close_speed: float  # fraction of the open EAR per second
    open_speed: float

    @property
    def asymmetry(self) -> float:
        """(close - open) / (close + open): positive when the lid closes faster, as it should."""
        total = self.close_speed + self.open_speed
        return (self.close_speed - self.open_speed) / total if total > 0 else 0.0


def eye_aspect_ratio(points: FloatArray, eye: Sequence[int]) -> float:
    """(|p2-p6| + |p3-p5|) / (2 |p1-p4|) in the image plane; NaN for a degenerate eye."""
    p1, p2, p3, p4, p5, p6 = (points[i, :2] for i in eye)
    width = float(np.linalg.norm(p1 - p4))
    if not width > 1e-9:
        return math.nan
    return float((np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2.0 * width))


def face_ear(points: FloatArray) -> float:
    """Mean EAR of both eyes (pixel coordinates, so non-square frames are measured correctly)."""
    return 0.5 * (eye_aspect_ratio(points, LEFT_EYE) + eye_aspect_ratio(points, RIGHT_EYE))


def detect_blinks(ear: FloatArray, t: FloatArray, baseline: float) -> list[Blink]:
    """Blinks in one run of consecutive frames.

    An event is a maximal stretch with EAR below ``OPEN_FRAC x baseline`` that dips below
    ``CLOSED_FRAC x baseline``; it counts when open frames bound it on both sides (closing and
    recovery both seen) and its closed part lasts at most ``MAX_CLOSED_S``. Hysteresis keeps a
    noisy closure from counting twice.
    """
    n = len(ear)
    if n < 3 or not (math.isfinite(baseline) and baseline > 0):
        return []
    blinks: list[Blink] = []
    below_open = ~(ear >= OPEN_FRAC * baseline)  # NaN counts as "not open"
    i = 0
    while i < n:
        if not below_open[i]:
            i += 1
            continue
        s = i
        while i < n and below_open[i]:
            i += 1
        e = i - 1  # event spans s..e
        if s == 0 or e == n - 1:
            continue  # onset or recovery not observed
        seg = ear[s : e + 1]
        closed = np.flatnonzero(seg < CLOSED_FRAC * baseline)
        if closed.size == 0:
            continue
        c0, c1 = s + int(closed[0]), s + int(closed[-1])
        closed_s = _span(t, c0, c1)
        if closed_s > MAX_CLOSED_S:
            continue
        m = s + int(np.nanargmin(seg))
        dt_close, dt_open = t[m] - t[s - 1], t[e + 1] - t[m]
        if not (dt_close > 0 and dt_open > 0):
            continue
        close_speed = float((ear[s - 1] - ear[m]) / dt_close / baseline)
        open_speed = float((ear[e + 1] - ear[m]) / dt_open / baseline)
        blinks.append(
            Blink(
                t=float(t[m]),
                duration_s=_span(t, s, e),
                close_speed=max(close_speed, 0.0),
                open_speed=max(open_speed, 0.0),
            )
        )
    return blinks


def _span(t: FloatArray, a: int, b: int) -> float:
    """Duration covered by frames a..b: from the midpoint before a to the midpoint after b."""
    n = len(t)
    left = 0.5 * (t[a] + t[a - 1]) if a > 0 else t[a] - 0.5 * (t[min(a + 1, n - 1)] - t[a])
    right = 0.5 * (t[b] + t[b + 1]) if b < n - 1 else t[b] + 0.5 * (t[b] - t[max(b - 1, 0)])
    return float(right - left)


def _log_poisson_cdf(k: int, mu: float) -> float:
    """ln P(X <= k) for X ~ Poisson(mu), summed in log space."""
    if k < 0:
        return -math.inf
    if mu <= 0:
        return 0.0
    terms = [j * math.log(mu) - mu - math.lgamma(j + 1) for j in range(k + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(x - top) for x in terms))


def blink_surprise(count: int, seconds: float) -> float:
    """-ln p of seeing this few (or this many) blinks under the wide normal rates."""
    if seconds <= 0:
        return 0.0
    low_mu = NORMAL_BLINKS_PER_MIN_LOW * seconds / 60.0
    high_mu = NORMAL_BLINKS_PER_MIN_HIGH * seconds / 60.0
    surprise = 0.0
    if count < low_mu:
        surprise = -_log_poisson_cdf(count, low_mu)
    elif count > high_mu:
        p_at_least = 1.0 - math.exp(_log_poisson_cdf(count - 1, high_mu))
        surprise = -math.log(max(p_at_least, 1e-300))
    return max(0.0, surprise)


# -- head pose ---------------------------------------------------------------------------------


def _centred(x: FloatArray) -> FloatArray:
    return np.asarray(x - x.mean(axis=0), dtype=np.float64)


def kabsch(a: FloatArray, b: FloatArray) -> FloatArray:
    """Rotation R (row-vector convention, ``a @ R ~ b``) best aligning centred point sets."""
    u, _, vt = np.linalg.svd(a.T @ b)
    d = 1.0 if np.linalg.det(u @ vt) >= 0 else -1.0
    return np.asarray(u @ np.diag([1.0, 1.0, d]) @ vt, dtype=np.float64)


def rotation_angle_deg(r: FloatArray) -> float:
    """Angle of a rotation matrix, in degrees."""
    c = (float(np.trace(r)) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def procrustes_reference(shapes: Sequence[FloatArray]) -> FloatArray:
    """Generalised Procrustes mean: the track's own rigid face, centred and of unit norm."""
    unit = []
    for s in shapes:
        c = _centred(s)
        norm = float(np.linalg.norm(c))
        if norm > 0:
            unit.append(c / norm)
    if not unit:
        raise ValueError("no non-degenerate shape")
    ref = unit[0]
    for _ in range(PROCRUSTES_ITERATIONS):
        mean = np.mean([u @ kabsch(u, ref) for u in unit], axis=0)
        ref = _centred(mean) / max(float(np.linalg.norm(mean)), 1e-12)
    return np.asarray(ref, dtype=np.float64)


def pose_inconsistency(shapes: Sequence[FloatArray], central: Sequence[int] = CENTRAL) -> FloatArray:
    """Per frame, degrees between the whole-mesh and the central-region head rotation."""
    ref = procrustes_reference(shapes)
    idx = list(central)
    ref_c = _centred(ref[idx])
    out = np.empty(len(shapes), dtype=np.float64)
    for k, s in enumerate(shapes):
        r_whole = kabsch(_centred(s), ref)
        r_central = kabsch(_centred(s[idx]), ref_c)
        out[k] = rotation_angle_deg(r_whole.T @ r_central)
    return out


# -- gathering observations ----------------------------------------------------------------------


def _usable(o: FaceObservation) -> bool:
    return o.landmarks is not None and bool(np.isfinite(o.landmarks).all())


def _dense_usable(track: FaceTrack) -> list[FaceObservation]:
    return [o for o in track.observations if o.role == "dense" and o.window is not None and _usable(o)]


def _run_seconds(t: FloatArray, step: float) -> float:
    return float(t[-1] - t[0]) + step if t.size else 0.0


def _subject(ctx: AnalysisContext) -> FaceTrack | None:
    """The main track, or the track with most usable dense frames if the main one has too few."""
    main = ctx.faces.main_track()
    if main is not None and len(_dense_usable(main)) >= MIN_OBSERVATIONS:
        return main
    best = max(ctx.faces.tracks, key=lambda tr: len(_dense_usable(tr)), default=None)
    if best is None or len(_dense_usable(best)) < MIN_OBSERVATIONS:
        return None
    return best


def _finite_or_none(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


class PhysiologyDetector:
    """Blink rate/shape and head-pose consistency of the subject (no model, nothing to load)."""

    name = "physiology"
    version = "physiology-1.0"
    modalities: tuple[MediaKind, ...] = ("video",)

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if _subject(ctx) is None:
            return Applicability.no("no_face")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        track = _subject(ctx)
        if track is None:
            return DetectorResult.skipped(self.name, self.version, "no_face")
        usable = sorted(_dense_usable(track), key=lambda o: o.t)

        # Blinks, per window (each window has its own lighting, pose and EAR baseline).
        blinks: list[Blink] = []
        observed_s = 0.0
        windows = sorted({o.window for o in usable if o.window is not None})
        for w in windows:
            w_obs = [o for o in usable if o.window == w]
            frame_times = [f.t for f in ctx.media.window(w)]
            runs = consecutive_runs(w_obs, frame_times)
            ears = [np.array([face_ear(o.pixels()) for o in run]) for run in runs]
            all_ear = np.concatenate(ears) if ears else np.empty(0)
            finite = all_ear[np.isfinite(all_ear)]
            if finite.size == 0:
                continue
            baseline = float(np.median(finite))
            step = _frame_step(frame_times, w_obs)
            for run, ear in zip(runs, ears, strict=True):
                t = np.array([o.t for o in run])
                observed_s += _run_seconds(t, step)
                blinks.extend(detect_blinks(ear, t, baseline))

        count = len(blinks)
        rate = 60.0 * count / observed_s if observed_s > 0 else math.nan
        scored = observed_s >= MIN_BLINK_TIME_S
        surprise = blink_surprise(count, observed_s) if scored else 0.0
        blink_term = min(BLINK_TERM_CAP, max(0.0, surprise - BLINK_SURPRISE_FREE))

        # Head pose: the whole track's dense frames against the track's own Procrustes mean.
        shapes = [o.pixels() for o in usable]
        try:
            angles = pose_inconsistency(shapes)
        except (ValueError, np.linalg.LinAlgError):
            angles = np.empty(0)
        ok = np.isfinite(angles)
        if not ok.any():
            return DetectorResult.skipped(self.name, self.version, "degenerate_landmarks")
        pose_mean = float(np.mean(angles[ok]))
        pose_p95 = float(np.percentile(angles[ok], 95))
        pose_term = min(POSE_TERM_CAP, max(0.0, (pose_mean - POSE_FREE_DEG) / POSE_SCALE_DEG))

        score = sigmoid(BIAS + blink_term + pose_term)
        reasons: list[str] = []
        if blink_term >= REASON_TERM:
            reasons.append("abnormal_blinking")
        if pose_term >= REASON_TERM:
            reasons.append("head_pose_inconsistency")
        frame_scores = {
            float(o.t): sigmoid((float(a) - FRAME_POSE_REF_DEG) / FRAME_POSE_SCALE_DEG)
            for o, a in zip(usable, angles, strict=True)
            if math.isfinite(float(a)) and o.t >= 0
        }
        confidence = clamp01(MAX_CONFIDENCE * observed_s / (observed_s + CONFIDENCE_HALF_S))
        evidence: dict[str, EvidenceValue] = {
            "track_id": track.track_id,
            "windows": len(windows),
            "frames": len(usable),
            "observed_s": round(observed_s, 3),
            "blink_count": count,
            "blinks_per_minute": _finite_or_none(rate),
            "blink_rate_scored": scored,
            "blink_surprise": round(surprise, 4),
            "mean_blink_ms": (round(1000.0 * float(np.mean([b.duration_s for b in blinks])), 1) if blinks else None),
            "blink_close_open_asymmetry": (round(float(np.mean([b.asymmetry for b in blinks])), 4) if blinks else None),
            "pose_mean_deg": round(pose_mean, 4),
            "pose_p95_deg": round(pose_p95, 4),
            "blink_term": round(blink_term, 4),
            "pose_term": round(pose_term, 4),
        }
        return DetectorResult(
            name=self.name,
            version=self.version,
            score=clamp01(score),
            confidence=confidence,
            reasons=tuple(reasons),
            frame_scores=frame_scores,
            evidence=evidence,
        )


def _frame_step(frame_times: Sequence[float], obs: Sequence[FaceObservation]) -> float:
    """Mean spacing of the window's decoded frames (of the observations if frames are absent)."""
    times = sorted(frame_times) if len(frame_times) >= 2 else sorted(o.t for o in obs)
    if len(times) < 2:
        return 0.0
    step = (times[-1] - times[0]) / (len(times) - 1)
    return step if math.isfinite(step) and step > 0 else 0.0
