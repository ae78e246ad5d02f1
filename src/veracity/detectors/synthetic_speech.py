"""Synthetic-speech detector: TTS, vocoder and voice-clone speech from spectral statistics of the
speech itself, scored by a small logistic model of our own (``models/data/synthetic_speech-v1.json``).

Confounds first (../shared/data/README.md): in the training data most real speech is 8 kHz
telephone-band digits while fakes are 22 kHz sentences, and leading silence alone separates some
public sets. So :func:`speech_features` (the same function at training and inference):

* reads the 16 kHz mono track the media stage gives every file, and looks only at 60-3400 Hz,
  the band every source has (an 8 kHz file resampled to 16 kHz is empty above 4 kHz and the
  resampler's roll-off starts below that);
* keeps only active frames (within 35 dB of the loudest), so leading, trailing and inner silence
  say nothing, and normalises level, so loudness says nothing;
* describes how the active frames *vary*, by statistics that do not grow with duration: per-band
  spread of log-mel energy over time, spread of its frame-to-frame deltas (vocoders smooth
  frame-to-frame detail), spread of linear-frequency cepstra, spectral flatness, energy dynamics.
  Mean spectral shape and cepstral means are left out on purpose: they describe the microphone,
  room and speaker (cepstral mean normalisation's reason), which differ between our real and
  fake sources, not the synthesis. (A first version with them: eval/audio EER 0.43.)

Long audio is cut into ``SEGMENT_S`` pieces of active speech; each is scored (the timeline) and
the file's score is the mean of the segment logits. Pure numpy: ~10 ms per 10 s of audio.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import AnalysisContext, Applicability, DetectorResult, clamp01, sigmoid
from veracity.errors import ModelUnavailable
from veracity.media.types import AUDIO_RATE, MediaKind
from veracity.models.cards import load_card
from veracity.models.logistic import StandardLogistic

CARD_NAME = "synthetic_speech-v1"
RATE = AUDIO_RATE
N_FFT = 512  # 32 ms
HOP = 160  # 10 ms
F_LO, F_HI = 60.0, 3400.0  # telephone band: every training source has it, below resampler roll-off
N_MELS = 32
N_LFCC = 20
ACTIVE_DB = 35.0  # frames within this of the loudest count as speech
EDGE_FRAMES = 3  # N_FFT / HOP: frames that overlap a silent neighbour
FLOOR_DBFS = -70.0  # and only frames above this absolute level (digital silence is not speech)
MIN_ACTIVE_FRAMES = 20  # 0.2 s of speech at least
SEGMENT_S = 3.0  # inference segments of active speech
REASON_THRESHOLD = 0.6
BASE_CONFIDENCE = 0.6
N_FEATURES = 2 * N_MELS + N_LFCC + 4

FloatArray = npt.NDArray[np.float64]


def _mel(f: FloatArray) -> FloatArray:
    return np.asarray(2595.0 * np.log10(1.0 + f / 700.0), dtype=np.float64)


def _triangles(edges_hz: FloatArray, freqs: FloatArray) -> FloatArray:
    """Triangular filters with the given edges (len n+2) over FFT bin frequencies: [n, bins]."""
    n = edges_hz.size - 2
    fb = np.zeros((n, freqs.size), dtype=np.float64)
    for i in range(n):
        lo, mid, hi = edges_hz[i], edges_hz[i + 1], edges_hz[i + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
    fb /= np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)
    return fb


def _filterbanks() -> tuple[FloatArray, FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    mel_edges = 700.0 * (10 ** (np.linspace(_mel(np.array(F_LO)), _mel(np.array(F_HI)), N_MELS + 2) / 2595.0) - 1.0)
    lin_edges = np.linspace(F_LO, F_HI, N_LFCC + 2)
    n = N_LFCC
    k = np.arange(n)
    dct = np.cos(np.pi / n * (k[:, None] + 0.5) * k[None, :]).T  # [n_coef, n_bands], DCT-II
    band = (freqs >= F_LO) & (freqs <= F_HI)
    return _triangles(mel_edges, freqs), _triangles(lin_edges, freqs), dct, band


_MEL_FB, _LIN_FB, _DCT, _BAND = _filterbanks()
_WINDOW = np.hanning(N_FFT)


def power_frames(samples: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """|STFT|^2, frames x bins (Hann window, ``N_FFT``/``HOP``)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.size < N_FFT:
        x = np.pad(x, (0, N_FFT - x.size))
    n = 1 + (x.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return np.asarray(np.abs(np.fft.rfft(x[idx] * _WINDOW, axis=1)) ** 2, dtype=np.float64)


# In-band energy of a full-scale sine through this STFT: the 0 dBFS reference of the floor.
_FULL_SCALE = float((np.abs(np.fft.rfft(np.hanning(N_FFT) * np.sin(2 * np.pi * 1000.0 * np.arange(N_FFT) / RATE)))
                     ** 2).sum())


def active_frames(power: FloatArray) -> npt.NDArray[np.bool_]:
    """Frames whose in-band energy is within ``ACTIVE_DB`` of the loudest and above
    ``FLOOR_DBFS`` (speech, not silence)."""
    e = 10.0 * np.log10(power[:, _BAND].sum(axis=1) / _FULL_SCALE + 1e-20)
    active = (e >= e.max() - ACTIVE_DB) & (e > FLOOR_DBFS)
    # Frames that straddle a silence boundary are part silence: drop the EDGE_FRAMES next to any
    # inactive frame, so trimmed and untrimmed copies of a file describe the same frames.
    quiet = np.flatnonzero(~active)
    for shift in range(1, EDGE_FRAMES + 1):
        for idx in (quiet + shift, quiet - shift):
            active[idx[(idx >= 0) & (idx < active.size)]] = False
    return np.asarray(active, dtype=np.bool_)


def frame_features(power: FloatArray) -> FloatArray:
    """Fixed-length statistics of active power frames (``N_FEATURES`` finite numbers)."""
    if power.shape[0] < 2:
        raise ValueError("need at least two frames")
    power = power / max(float(np.mean(power[:, _BAND].sum(axis=1))), 1e-12)  # level removed
    logmel = np.log(power @ _MEL_FB.T + 1e-10)
    loglin = np.log(power @ _LIN_FB.T + 1e-10)
    spread = logmel.std(axis=0)
    delta = np.diff(logmel, axis=0).std(axis=0)
    ceps = loglin @ _DCT.T
    inband = power[:, _BAND] + 1e-12
    flat = np.exp(np.mean(np.log(inband), axis=1)) / np.mean(inband, axis=1)
    frame_db = 10.0 * np.log10(inband.sum(axis=1))
    extra = [float(np.mean(flat)), float(np.std(flat)), float(np.std(frame_db)),
             float(np.mean(np.abs(np.diff(frame_db))))]
    feats = np.concatenate([spread, delta, ceps.std(axis=0), extra])
    return np.nan_to_num(np.asarray(feats, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def speech_features(samples: npt.NDArray[np.floating[Any]]) -> FloatArray | None:
    """Features of the active speech in a 16 kHz mono signal; None when there is too little."""
    power = power_frames(samples)
    keep = active_frames(power)
    if int(keep.sum()) < MIN_ACTIVE_FRAMES:
        return None
    return frame_features(power[keep])


def segments(samples: npt.NDArray[np.floating[Any]], seconds: float = SEGMENT_S
             ) -> list[tuple[float, FloatArray]]:
    """(start time, power frames of active speech) per piece of about ``seconds`` of speech. A
    last piece shorter than half a segment joins the one before."""
    power = power_frames(samples)
    keep = np.flatnonzero(active_frames(power))
    if keep.size < MIN_ACTIVE_FRAMES:
        return []
    per = max(MIN_ACTIVE_FRAMES, int(round(seconds * RATE / HOP)))
    cuts = list(range(0, keep.size, per))
    if len(cuts) > 1 and keep.size - cuts[-1] < per // 2:
        cuts.pop()
    out = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] if i + 1 < len(cuts) else keep.size
        frames = keep[start:end]
        out.append((float(frames[0] * HOP / RATE), power[frames]))
    return out


def feature_config() -> dict[str, object]:
    return {"id": "band-limited-speech-stats/1", "rate": RATE, "n_fft": N_FFT, "hop": HOP, "band_hz": [F_LO, F_HI],
            "n_mels": N_MELS, "n_lfcc": N_LFCC, "active_db": ACTIVE_DB, "floor_dbfs": FLOOR_DBFS,
            "edge_frames": EDGE_FRAMES,
            "n_features": N_FEATURES}


@dataclass(frozen=True, slots=True)
class SpeechModel(StandardLogistic):
    """Standardise the features, then logistic regression: p(synthetic) = sigmoid(w·z + b)."""

    n_features: ClassVar[int] = N_FEATURES
    mismatch: ClassVar[str] = "was trained on other speech features"

    @classmethod
    def config(cls) -> dict[str, object]:
        return feature_config()


def score_samples(model: SpeechModel, samples: npt.NDArray[np.floating[Any]]
                  ) -> tuple[float, dict[float, float], float] | None:
    """(file score, segment start -> score, seconds of active speech), or None without speech."""
    segs = segments(samples)
    if not segs:
        return None
    logits = [model.logit(frame_features(p)) for _, p in segs]
    per = {t: clamp01(sigmoid(z)) for (t, _), z in zip(segs, logits, strict=True)}
    active_s = sum(p.shape[0] for _, p in segs) * HOP / RATE
    return clamp01(sigmoid(float(np.mean(logits)))), per, active_s


class SyntheticSpeechDetector:
    """Scores the speech in audio files and in the audio track of videos."""

    name = "synthetic_speech"
    version = "1.0.0"  # the card's version; tests check they agree
    modalities: tuple[MediaKind, ...] = ("audio", "video")

    def __init__(self, *, model: SpeechModel | None = None, card: str = CARD_NAME) -> None:
        self._model = model
        self._card = card

    def _get_model(self) -> SpeechModel:
        if self._model is None:
            self._model = SpeechModel.from_card(load_card(self._card))
        return self._model

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if ctx.kind not in self.modalities:
            return Applicability.no("no_audio")
        if ctx.media.audio is None or ctx.media.audio.samples.size == 0:
            return Applicability.no("no_audio")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        started = time.perf_counter()
        try:
            model = self._get_model()
        except ModelUnavailable as exc:
            return DetectorResult.skipped(self.name, self.version, "model_unavailable", error=exc.message)
        audio = ctx.media.audio
        if audio is None:
            return DetectorResult.skipped(self.name, model.version, "no_audio")
        scored = score_samples(model, audio.samples)
        if scored is None:
            return DetectorResult.skipped(self.name, model.version, "no_speech")
        score, per, active_s = scored
        # Less than ~2 s of speech is a thin basis; segments that disagree lower trust too.
        confidence = BASE_CONFIDENCE * min(1.0, math.sqrt(active_s / 2.0))
        if len(per) > 1:
            confidence *= 1.0 - min(0.5, float(np.std(list(per.values()))))
        return DetectorResult(
            name=self.name,
            version=model.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=("synthetic_voice",) if score >= REASON_THRESHOLD else (),
            frame_scores=per,
            evidence={"n_segments": len(per), "active_speech_s": round(active_s, 2), "mean_score": round(score, 4),
                      "max_segment_score": round(max(per.values()), 4)},
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )
