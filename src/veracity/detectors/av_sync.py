"""Audio-visual sync: does the mouth move the way the voice says it should?

Per dense window, the audio (24 log-mel bands, +-2 grid frames of context) is mapped to a
predicted mouth opening by a ridge regression trained on real talking faces only
(``veracity train av_sync``), and the prediction is cross-correlated with the measured opening
(inner-lip gap over inter-ocular distance, from the mesh) over lags of +-0.6 s. Real speech gives
a clear peak within +-0.1 s that stands out from the other lags; shifted, dubbed or foreign audio
does not. The statistic is that peak minus the median |r| at the other lags ("prominence").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import AnalysisContext, Applicability, DetectorResult, clamp01, sigmoid
from veracity.errors import ModelUnavailable
from veracity.faces.types import MOUTH_INNER_BOTTOM, MOUTH_INNER_TOP, FaceObservation, FaceTrack
from veracity.media.types import Audio
from veracity.models.cards import load_card

NAME = "av_sync"
CARD_NAME = "av_sync-v1"

HOP_S = 0.01
N_FFT = 512
N_MELS = 24
CONTEXT = 2  # grid frames of audio context on each side
MAX_LAG_S = 0.6
SYNC_TOLERANCE_S = 0.1  # broadcast audio-video offsets stay well under 0.1 s
MIN_WINDOW_S = 1.5
MIN_SPEECH_RATIO = 0.2

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SyncModel:
    """Ridge weights (features + bias) and the calibration of the prominence statistic."""

    version: str
    weights: FloatArray
    grid_fps: float
    centre: float  # prominence at which the score is 0.5
    scale: float

    @classmethod
    def load(cls, name: str = CARD_NAME) -> SyncModel:
        card = load_card(name)  # verifies the payload's sha256
        p = card.params or {}
        w = np.asarray(p.get("weights", []), dtype=np.float64)
        if w.shape != (N_MELS * (2 * CONTEXT + 1) + 1,):
            raise ModelUnavailable(
                f"av_sync model {name} has {w.shape[0]} weights, expected {N_MELS * (2 * CONTEXT + 1) + 1}"
            )
        return cls(
            version=card.version,
            weights=w,
            grid_fps=float(p["grid_fps"]),
            centre=float(p["centre"]),
            scale=float(p["scale"]),
        )


@dataclass(frozen=True, slots=True)
class WindowSync:
    start: float
    end: float
    prominence: float
    peak_r: float  # best correlation within the sync tolerance
    best_lag_s: float  # lag of the best correlation overall (positive: audio lags the mouth)
    best_r: float
    speech_ratio: float


def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = 16_000, fmin: float = 80.0, fmax: float = 7600.0
) -> FloatArray:
    def hz_to_mel(h: FloatArray) -> FloatArray:
        return np.asarray(2595.0 * np.log10(1.0 + h / 700.0), dtype=np.float64)

    mels = np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2)
    hz = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, bins.shape[0]))
    for i in range(n_mels):
        lo, mid, hi = hz[i], hz[i + 1], hz[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0.0, None)
    return fb


def log_mel(audio: Audio) -> tuple[FloatArray, FloatArray]:
    """Times (s) and log-mel energies (frames x N_MELS) at a 10 ms hop."""
    x = audio.samples.astype(np.float64)
    hop = int(round(HOP_S * audio.sample_rate))
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    n_frames = 1 + (x.shape[0] - N_FFT) // hop
    idx = np.arange(N_FFT)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(N_FFT)[None, :], axis=1)) ** 2
    mel = np.log(spec @ mel_filterbank(sr=audio.sample_rate).T + 1e-8)
    times = (np.arange(n_frames) * hop + N_FFT / 2) / audio.sample_rate
    return times, mel


def speech_mask(mel: FloatArray) -> npt.NDArray[np.bool_]:
    """Frames well above the noise floor, in the speech bands (mel 3..14, ~250-3000 Hz)."""
    if mel.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    energy = 10.0 * np.log10(np.exp(mel[:, 3:15]).sum(axis=1) + 1e-10)
    floor, peak = float(np.percentile(energy, 10)), float(np.percentile(energy, 99))
    mask = (energy > floor + 12.0) & (energy > peak - 40.0) & (peak - floor > 15.0)
    return np.asarray(mask, dtype=bool)


def mouth_opening(obs: FaceObservation) -> float:
    p = obs.pixels()[:, :2]
    eyes = np.linalg.norm((p[33] + p[133]) / 2 - (p[362] + p[263]) / 2)
    if eyes <= 1e-6:
        return float("nan")
    return float(np.linalg.norm(p[MOUTH_INNER_TOP] - p[MOUTH_INNER_BOTTOM]) / eyes)


def _zscore(x: FloatArray) -> FloatArray | None:
    sd = float(np.std(x))
    if not np.isfinite(sd) or sd < 1e-9:
        return None
    return (x - float(np.mean(x))) / sd


def lagged_correlation(a: FloatArray, b: FloatArray, max_lag: int) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Pearson r of a[t] with b[t + lag] for lag in [-max_lag, max_lag] (overlap >= half)."""
    n = a.shape[0]
    lags = np.arange(-max_lag, max_lag + 1)
    out = np.full(lags.shape[0], np.nan)
    for k, lag in enumerate(lags):
        x, y = (a[: n - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[: n + lag])
        if x.shape[0] < max(8, n // 2):
            continue
        zx, zy = _zscore(x), _zscore(y)
        if zx is not None and zy is not None:
            out[k] = float(np.mean(zx * zy))
    return lags, out


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    start: float
    end: float
    mouth: FloatArray  # z-scored opening on the grid
    audio: FloatArray  # grid x (N_MELS * (2*CONTEXT+1)) standardised log-mel with context
    speech_ratio: float


def window_features(
    obs: list[FaceObservation], mel_t: FloatArray, mel: FloatArray, speech: npt.NDArray[np.bool_], grid_fps: float
) -> WindowFeatures | None:
    """Put mouth opening and audio on one grid for one window; None when there is too little."""
    pts = [(o.t, mouth_opening(o)) for o in obs if o.landmarks is not None]
    pts = [(t, m) for t, m in pts if np.isfinite(m)]
    if len(pts) < 8:
        return None
    ts = np.array([t for t, _ in pts])
    ms = np.array([m for _, m in pts])
    start, end = float(ts[0]), float(ts[-1])
    inside = (mel_t >= start) & (mel_t <= end)
    if end - start < MIN_WINDOW_S or inside.sum() < 10:
        return None
    grid = np.arange(start, end, 1.0 / grid_fps)
    mouth = _zscore(np.interp(grid, ts, ms))
    if mouth is None:
        return None
    cell = max(1, int(round(1.0 / grid_fps / HOP_S)))
    box = np.ones(cell) / cell
    bands = np.stack(
        [np.interp(grid, mel_t, np.convolve(mel[:, j], box, mode="same")) for j in range(mel.shape[1])], axis=1
    )
    bands = (bands - bands.mean(axis=0)) / (bands.std(axis=0) + 1e-6)
    stacked = np.concatenate([np.roll(bands, k, axis=0) for k in range(-CONTEXT, CONTEXT + 1)], axis=1)
    return WindowFeatures(start=start, end=end, mouth=mouth, audio=stacked, speech_ratio=float(speech[inside].mean()))


def window_sync(feats: WindowFeatures, weights: FloatArray, grid_fps: float) -> WindowSync | None:
    pred = np.c_[feats.audio, np.ones(feats.audio.shape[0])] @ weights
    lags, r = lagged_correlation(feats.mouth, pred, int(round(MAX_LAG_S * grid_fps)))
    lag_s = lags / grid_fps
    near = np.abs(lag_s) <= SYNC_TOLERANCE_S + 1e-9
    if not np.isfinite(r[near]).any() or not np.isfinite(r[~near]).any():
        return None
    peak = float(np.nanmax(r[near]))
    prominence = peak - float(np.nanmedian(np.abs(r[~near])))
    best = int(np.nanargmax(r))
    return WindowSync(
        start=feats.start,
        end=feats.end,
        prominence=prominence,
        peak_r=peak,
        best_lag_s=float(lag_s[best]),
        best_r=float(r[best]),
        speech_ratio=feats.speech_ratio,
    )


def speaker_windows(ctx: AnalysisContext, grid_fps: float) -> tuple[list[WindowFeatures], float]:
    """Features of every dense window with a speaking face; also the clip's speech ratio."""
    audio = ctx.media.audio
    if audio is None:
        return [], 0.0
    mel_t, mel = log_mel(audio)
    speech = speech_mask(mel)
    out: list[WindowFeatures] = []
    for w in ctx.media.window_ids:
        track = _speaker_track(ctx.faces.tracks, w)
        if track is None:
            continue
        feats = window_features(sorted(track.in_window(w), key=lambda o: o.t), mel_t, mel, speech, grid_fps)
        if feats is not None and feats.speech_ratio >= MIN_SPEECH_RATIO:
            out.append(feats)
    return out, float(speech.mean()) if speech.size else 0.0


class AVSyncDetector:
    """Lip-audio sync for the main speaker. Applies to video with a face and speech."""

    name = NAME
    version = "av_sync-1.0"
    modalities = ("video",)

    def __init__(self) -> None:
        self._model: SyncModel | None = None

    def model(self) -> SyncModel:
        if self._model is None:
            self._model = SyncModel.load()
            self.version = self._model.version
        return self._model

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if ctx.media.audio is None:
            return Applicability.no("no_audio")
        if not ctx.media.window_ids:
            return Applicability.no("no_dense_window")
        if not ctx.faces.any:
            return Applicability.no("no_face")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        model = self.model()
        feats, speech_total = speaker_windows(ctx, model.grid_fps)
        windows = [ws for f in feats if (ws := window_sync(f, model.weights, model.grid_fps)) is not None]
        if not windows:
            reason = "no_speech" if speech_total < MIN_SPEECH_RATIO else "no_face_in_speech"
            return DetectorResult.skipped(NAME, self.version, reason, speech_ratio=round(speech_total, 3))
        lengths = np.array([w.end - w.start for w in windows])
        prominence = float(np.average([w.prominence for w in windows], weights=lengths))
        window_scores = [sigmoid((model.centre - w.prominence) / model.scale) for w in windows]
        score = clamp01(sigmoid((model.centre - prominence) / model.scale))
        seconds = float(lengths.sum())
        speech = float(np.mean([w.speech_ratio for w in windows]))
        confidence = clamp01(0.35 + 0.65 * min(1.0, seconds / 8.0)) * clamp01(min(1.0, speech / 0.4))
        best = max(windows, key=lambda w: w.best_r)
        return DetectorResult(
            name=NAME,
            version=self.version,
            score=score,
            confidence=confidence,
            reasons=("lip_audio_mismatch",) if score >= 0.5 else (),
            frame_scores={
                round((w.start + w.end) / 2, 3): round(s, 4) for w, s in zip(windows, window_scores, strict=True)
            },
            evidence={
                "prominence": round(prominence, 4),
                "peak_correlation": round(float(np.average([w.peak_r for w in windows], weights=lengths)), 4),
                "best_lag_s": round(best.best_lag_s, 3),
                "window_lags_s": [round(w.best_lag_s, 3) for w in windows],
                "speech_ratio": round(speech_total, 3),
                "seconds_analysed": round(seconds, 2),
            },
        )


def _speaker_track(tracks: list[FaceTrack], window: int) -> FaceTrack | None:
    """The face with the most landmark frames in the window (the likely speaker)."""
    best: FaceTrack | None = None
    best_n = 0
    for tr in tracks:
        n = sum(1 for o in tr.in_window(window) if o.landmarks is not None)
        if n > best_n:
            best, best_n = tr, n
    return best if best_n >= 8 else None
