"""Synthetic-speech detector v2: TTS, vocoder, voice-clone and edited speech, from a frozen Whisper
encoder (``models/whisper.py``: base for audio files, tiny.en for the sound of videos) pooled over
speech windows and a logistic head of our own per media kind (``models/data/synthetic_speech-*.json``).

Confounds first (training data differ between real and fake sources in sample rate, silence,
level and codec), so :func:`prepare` (the same function at training and inference):

* takes the 16 kHz mono track the media stage gives every file (audio files and the audio of
  videos alike);
* finds speech with a simple energy detector (10 ms frames within ``ACTIVE_DB`` of the loud end
  and above ``FLOOR_DBFS``), and shortens every inner pause to at most ``MAX_PAUSE_S`` and
  leading and trailing silence to half that, so how much silence a source leaves says little;
* normalises the level of the speech to ``TARGET_DBFS``, so loudness says nothing.

The kept signal's log-mel goes through the encoder once (in chunks of at most 30 s, Whisper's
context); the signal is then cut into windows of ``WINDOW_S`` (half overlapping when the file is
long) and in each the encoder output frames that fall on speech are pooled by mean and standard
deviation (768 numbers for a tiny.en block, 1,024 for a base block). Encoding once, not per
window, keeps 10 s of audio at one encode although overlapping windows cover it twice. The head
scores each window
(the timeline: ``frame_scores`` maps a window's start, in seconds of the original file, to its
score, so an edited passage in a long recording shows as a run of high windows); the file's
score is the mean of the top half of window logits (robust to one odd window, sensitive to a
partial fake). The head is Platt-calibrated on the train side (out-of-source predictions), so
its score is a probability. Less than ``MIN_SPEECH_S`` of speech: inconclusive (score None,
``no_speech``).

Each media kind has its head (``KIND_CARDS``): audio files are scored on the outputs of Whisper
base's first encoder block (``synthetic_speech-audio-v2``, 2.2.0), the sound of videos on tiny.en's
last block (``synthetic_speech-v2``); a head's card names its encoder and layers, and a result the
version of the head that scored it.

The encoder model is loaded lazily from the fetched cache (``veracity models fetch``); without it
the detector is skipped (``model_unavailable``), as every fetched-model detector is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from veracity.detectors.base import AnalysisContext, Applicability, DetectorResult, clamp01, sigmoid
from veracity.errors import ModelUnavailable
from veracity.media.types import AUDIO_RATE, MediaKind
from veracity.models.cards import ModelCard, load_card
from veracity.models.logistic import StandardLogistic
from veracity.models.whisper import BASE, COMPUTE_TYPE, ENCODER_LAYERS, MODEL_CARD, Encodes, whisper_model

CARD_NAME = "synthetic_speech-v2"  # the sound of videos (and any kind without a card of its own)
# Audio files get a head of their own, on Whisper's first encoder block: better on audio files
# (eval AUC 0.69 -> 0.76, leave-one-source-out EER 0.34 -> 0.29) but worse on the sound of videos
# (broadcast and web recordings, unlike the read-speech corpora of the audio reals), so each kind
# keeps the head that passed its own release gate.
# Since 2.2.0 that block is Whisper base's (multilingual, 512 wide), not tiny.en's: its held-out
# train sources rank better (leave-one-source-out EER clean / codec 0.274 / 0.275 against 0.286 /
# 0.295, docs/data.md). The 2.1.0 card (tiny.en block 1) stays in the package, unused.
AUDIO_CARD_NAME = "synthetic_speech-audio-v2"
AUDIO_VERSION = "2.2.0"
AUDIO_LAYERS: tuple[int, ...] = (1,)
AUDIO_ENCODER = BASE.card
KIND_CARDS: dict[MediaKind, str] = {"audio": AUDIO_CARD_NAME}
RATE = AUDIO_RATE
FRAME = 160  # 10 ms energy frames (Whisper's hop: one mel frame each)
ACTIVE_DB = 40.0  # speech frames: within this of the loud end of the file ...
FLOOR_DBFS = -60.0  # ... and above this absolute level
LOUD_PERCENTILE = 95.0  # the "loud end" (a percentile, so one click does not set it)
MAX_PAUSE_S = 0.2  # pauses are cut down to this
TARGET_DBFS = -23.0  # RMS of the speech frames after normalisation
WINDOW_S = 4.0
MIN_SPEECH_S = 0.5  # less speech than this: inconclusive (some eval clips are 1 s)
MIN_WINDOW_SPEECH_S = 0.5  # a window needs this much speech to be scored
TOP_FRACTION = 0.5  # the file score: mean of the top half of window logits
REASON_THRESHOLD = 0.6
BASE_CONFIDENCE = 0.7
DEFAULT_LAYERS: tuple[int, ...] = (ENCODER_LAYERS,)  # the last block (2.0); a card naming no layers means it


def n_features(layers: tuple[int, ...] = DEFAULT_LAYERS, encoder: str = MODEL_CARD) -> int:
    """Features per window: mean and std of every chosen layer's outputs (384 wide for tiny.en,
    512 for base)."""
    return 2 * whisper_model(encoder).width * len(layers)


N_FEATURES = n_features()

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


Encoder = Encodes  # what the detector needs of the speech encoder (a fake one in unit tests)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file's speech after silence capping and level normalisation."""

    samples: Float32Array  # the kept signal
    speech: BoolArray  # per 10 ms frame of ``samples``: speech or pause
    times: FloatArray  # per 10 ms frame of ``samples``: its time in the original file (s)

    @property
    def speech_s(self) -> float:
        return float(self.speech.sum()) * FRAME / RATE


def frame_db(samples: Float32Array) -> FloatArray:
    """RMS level (dBFS) of consecutive ``FRAME``-sample frames (the tail is dropped)."""
    n = samples.size // FRAME
    if n == 0:
        return np.zeros(0)
    x = samples[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    return np.asarray(10.0 * np.log10(np.mean(x * x, axis=1) + 1e-12), dtype=np.float64)


def speech_frames(db: FloatArray) -> BoolArray:
    """Energy voice activity: frames near the loud end and above the floor, with isolated frames
    flipped (a 30 ms majority filter) so a syllable is not cut to pieces."""
    if db.size == 0:
        return np.zeros(0, dtype=np.bool_)
    loud = float(np.percentile(db, LOUD_PERCENTILE))
    active = (db >= loud - ACTIVE_DB) & (db > FLOOR_DBFS)
    if active.size >= 3:
        padded = np.concatenate([[active[0]], active, [active[-1]]]).astype(np.int64)
        active = (padded[:-2] + padded[1:-1] + padded[2:]) >= 2
    return np.asarray(active, dtype=np.bool_)


def prepare(samples: npt.NDArray[np.floating[Any]]) -> Prepared:
    """Cap pauses at ``MAX_PAUSE_S`` and normalise the speech level (see the module docstring)."""
    x = np.asarray(samples, dtype=np.float32)
    db = frame_db(x)
    active = speech_frames(db)
    n = active.size
    keep = active.copy()
    max_pause = int(round(MAX_PAUSE_S * RATE / FRAME))
    i = 0
    while i < n:  # every pause keeps max_pause/2 frames next to each speech edge it touches
        if active[i]:
            i += 1
            continue
        j = i
        while j < n and not active[j]:
            j += 1
        half = max_pause // 2
        lead = 0 if i == 0 else half  # leading and trailing silence shrink to half a pause
        tail = 0 if j == n else max_pause - half
        keep[i:min(j, i + lead)] = True
        keep[max(i, j - tail):j] = True
        i = j
    idx = np.flatnonzero(keep)
    frames = x[: n * FRAME].reshape(n, FRAME)[idx] if n else np.zeros((0, FRAME), np.float32)
    speech = active[idx]
    if speech.any():
        rms = math.sqrt(float(np.mean(frames[speech].astype(np.float64) ** 2)))
        gain = 10.0 ** (TARGET_DBFS / 20.0) / max(rms, 1e-9)
        frames = np.clip(frames * gain, -1.0, 1.0)
    return Prepared(np.ascontiguousarray(frames.reshape(-1), dtype=np.float32), np.asarray(speech, dtype=np.bool_),
                    idx.astype(np.float64) * FRAME / RATE)


def windows(speech: BoolArray, seconds: float = WINDOW_S) -> list[tuple[int, int]]:
    """(first frame, end frame) of the windows a prepared file (its 10 ms ``speech`` mask) is
    scored in: one window when it is at most 1.5 windows long, else windows of ``seconds`` every
    ``seconds / 2`` (the last one ends at the end). Windows with less than
    ``MIN_WINDOW_SPEECH_S`` of speech are left out; none when the file has under
    ``MIN_SPEECH_S``."""
    n = speech.size
    if float(speech.sum()) * FRAME / RATE < MIN_SPEECH_S:
        return []
    per = int(round(seconds * RATE / FRAME))
    if n <= per * 3 // 2:
        spans = [(0, n)]
    else:
        starts = list(range(0, n - per + 1, per // 2))
        if starts[-1] + per < n:
            starts.append(n - per)
        spans = [(s, s + per) for s in starts]
    need = MIN_WINDOW_SPEECH_S * RATE / FRAME
    return [(a, b) for a, b in spans if speech[a:b].sum() >= need]


def encode_file(encoder: Encoder, prep: Prepared) -> Float32Array:
    """Encoder output for every 20 ms of the prepared signal: [ceil(frames / 2), 384]. The signal
    is encoded in equal chunks of at most ``MAX_FRAMES`` (30 s, Whisper's context), an even number
    of 10 ms frames each, and the outputs are joined: one encode per 30 s, not one per window."""
    from veracity.models.whisper import MAX_FRAMES, log_mel

    n = prep.speech.size
    k = max(1, math.ceil(n / MAX_FRAMES))
    per = 2 * math.ceil(n / k / 2)
    parts = []
    for a in range(0, n, per):
        b = min(n, a + per)
        parts.append(encoder.encode(log_mel(prep.samples[a * FRAME:b * FRAME]))[: math.ceil((b - a) / 2)])
    joined: Float32Array = np.concatenate(parts).astype(np.float32)
    return joined


def window_features(enc: Float32Array, speech: BoolArray, span: tuple[int, int]) -> FloatArray:
    """Mean and standard deviation of the encoder output (``encode_file``) over the speech of one
    window (``speech``: the prepared file's 10 ms mask)."""
    a, b = span
    part = speech[a:b]
    mask = np.pad(part, (0, part.size % 2)).reshape(-1, 2).any(axis=1)
    rows = enc[a // 2: a // 2 + mask.size].astype(np.float64)
    m = min(mask.size, rows.shape[0])
    sel = rows[:m][mask[:m]]
    if sel.shape[0] < 2:
        sel = rows
    feats = np.concatenate([sel.mean(axis=0), sel.std(axis=0)])
    return np.nan_to_num(np.asarray(feats, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def file_features(encoder: Encoder, samples: npt.NDArray[np.floating[Any]]
                  ) -> tuple[FloatArray, list[float], float]:
    """[windows, 2 * encoder width] features, each window's start time in the original file, and the
    seconds of speech. No window (too little speech): no rows (a [0, 0] array: the width needs
    an encode)."""
    prep = prepare(samples)
    spans = windows(prep.speech)
    if not spans:
        return np.zeros((0, 0)), [], prep.speech_s
    return pooled(encode_file(encoder, prep), prep.speech), [float(prep.times[a]) for a, _ in spans], prep.speech_s


def pooled(enc: Float32Array, speech: BoolArray) -> FloatArray:
    """[windows, 2 * enc width]: every window of the file's ``speech`` mask pooled from ``enc``
    (the trainer calls this on cached encodings, so the windows can change without re-encoding)."""
    spans = windows(speech)
    feats = np.zeros((len(spans), 2 * enc.shape[1]))
    for i, span in enumerate(spans):
        feats[i] = window_features(enc, speech, span)
    return feats


def aggregate(logits: FloatArray) -> float:
    """The file's logit: the mean of the top ``TOP_FRACTION`` of window logits."""
    k = max(1, int(math.ceil(TOP_FRACTION * logits.size)))
    return float(np.mean(np.sort(logits)[-k:]))


def encoding_config(encoder: str = MODEL_CARD) -> dict[str, object]:
    """What the cached encodings depend on: preparation and encoder (tiny.en's is v2's word for word)."""
    return {"id": f"{whisper_model(encoder).stem}-encoding/1", "encoder": encoder, "compute_type": COMPUTE_TYPE,
            "rate": RATE, "active_db": ACTIVE_DB, "floor_dbfs": FLOOR_DBFS, "loud_percentile": LOUD_PERCENTILE,
            "max_pause_s": MAX_PAUSE_S, "target_dbfs": TARGET_DBFS}


def feature_config(layers: tuple[int, ...] = DEFAULT_LAYERS, encoder: str = MODEL_CARD) -> dict[str, object]:
    """What the head depends on: the encoding, the layers, the windows and the pooling. The
    default (tiny.en, last layer only) is v2's configuration word for word, so its card still loads."""
    config: dict[str, object] = {
        **encoding_config(encoder), "id": f"{whisper_model(encoder).stem}-pooled/2", "window_s": WINDOW_S,
        "min_speech_s": MIN_SPEECH_S, "min_window_speech_s": MIN_WINDOW_SPEECH_S,
        "pool": "mean+std over speech frames", "n_features": n_features(layers, encoder)}
    if layers != DEFAULT_LAYERS:
        config["layers"] = list(layers)
    return config


def check_layers(layers: tuple[int, ...], encoder: str = MODEL_CARD) -> tuple[int, ...]:
    """Distinct encoder layers of ``encoder`` (1..4 for tiny.en, 1..6 for base), in ascending order
    (the feature order)."""
    depth = whisper_model(encoder).layers
    if not layers or len(set(layers)) != len(layers) or not all(1 <= k <= depth for k in layers):
        raise ValueError(f"encoder layers must be distinct, in 1..{depth}: {layers}")
    return tuple(sorted(layers))


@dataclass(frozen=True, slots=True)
class SpeechHead(StandardLogistic):
    """Standardise the pooled encoder features (of ``layers``), then a calibrated logistic
    regression."""

    layers: tuple[int, ...] = DEFAULT_LAYERS
    encoder: str = MODEL_CARD  # the Whisper build (models/whisper.py MODELS)

    n_features: ClassVar[int] = N_FEATURES
    noun: ClassVar[str] = "head"
    mismatch: ClassVar[str] = "was trained on other speech features"

    @classmethod
    def config(cls) -> dict[str, object]:
        return feature_config()

    def width(self) -> int:
        return n_features(self.layers, self.encoder)

    def feature_config(self) -> dict[str, object]:
        return feature_config(self.layers, self.encoder)

    @classmethod
    def from_card(cls, card: ModelCard) -> SpeechHead:
        """The head of ``card``, on the encoder and layers its feature configuration names."""
        found = cls.card_features(card)
        named_encoder = found.get("encoder", MODEL_CARD) if isinstance(found, dict) else MODEL_CARD
        encoder = str(named_encoder)
        try:
            named = found.get("layers", DEFAULT_LAYERS) if isinstance(found, dict) else DEFAULT_LAYERS
            layers = check_layers(tuple(int(k) for k in named), encoder)
        except (TypeError, ValueError) as exc:
            raise ModelUnavailable(f"model {card.name!r} names bad encoder layers: {exc}") from exc
        if found != feature_config(layers, encoder):
            raise ModelUnavailable(f"model {card.name!r} " + cls.mismatch.format(found=found))
        return cls.from_arrays(card, layers=layers, encoder=encoder)


def score_features(head: SpeechHead, feats: FloatArray) -> tuple[float, FloatArray]:
    """(file probability, window probabilities) for a file's window features (at least one)."""
    logits = np.array([head.logit(f) for f in feats], dtype=np.float64)
    return clamp01(sigmoid(aggregate(logits))), np.array([clamp01(sigmoid(float(z))) for z in logits])


class SyntheticSpeechDetector:
    """Scores the speech in audio files and in the audio track of videos, each kind with the
    head of its card (``KIND_CARDS``, else ``CARD_NAME``)."""

    name = "synthetic_speech"
    version = "2.0.0"  # the default card's version; tests check they agree (a result names its head's)
    modalities: tuple[MediaKind, ...] = ("audio", "video")

    def __init__(self, *, head: SpeechHead | None = None, encoder: Encoder | Mapping[str, Encoder] | None = None,
                 card: str = CARD_NAME, kind_cards: Mapping[MediaKind, str] | None = None) -> None:
        """``head`` (tests) serves every kind; ``encoder`` (tests) stands in for every layer set, or,
        as a mapping from Whisper build (its card) to encoder, for every layer set of that build."""
        self._head = head
        self._encoder = encoder
        self._card = card
        self._kind_cards = dict(KIND_CARDS if kind_cards is None else kind_cards)
        self._heads: dict[str, SpeechHead] = {}
        self._encoders: dict[tuple[str, tuple[int, ...]], Encoder] = {}

    def card_for(self, kind: MediaKind) -> str:
        return self._kind_cards.get(kind, self._card)

    def _get_head(self, kind: MediaKind) -> SpeechHead:
        if self._head is not None:
            return self._head
        card = self.card_for(kind)
        if card not in self._heads:
            self._heads[card] = SpeechHead.from_card(load_card(card))
        return self._heads[card]

    def _get_encoder(self, ctx: AnalysisContext, head: SpeechHead) -> Encoder:
        if isinstance(self._encoder, Mapping):
            return self._encoder[head.encoder]
        if self._encoder is not None:
            return self._encoder
        key = (head.encoder, head.layers)
        if key not in self._encoders:
            from veracity.models.whisper import LayeredEncoder

            self._encoders[key] = LayeredEncoder.from_cache(ctx.settings.cache_dir, head.layers,
                                                            threads=ctx.settings.onnx_threads,
                                                            model=whisper_model(head.encoder))
        return self._encoders[key]

    def applies(self, ctx: AnalysisContext) -> Applicability:
        if ctx.media.audio is None or ctx.media.audio.samples.size == 0:
            return Applicability.no("no_audio")
        return Applicability.yes()

    def run(self, ctx: AnalysisContext) -> DetectorResult:
        head = self._get_head(ctx.kind)
        encoder = self._get_encoder(ctx, head)
        audio = ctx.media.audio
        if audio is None:
            return DetectorResult.skipped(self.name, head.version, "no_audio")
        feats, starts, speech_s = file_features(encoder, audio.samples)
        if feats.shape[0] == 0:
            return DetectorResult.skipped(self.name, head.version, "no_speech",
                                          speech_s=round(speech_s, 2), min_speech_s=MIN_SPEECH_S)
        score, per_window = score_features(head, feats)
        per = {round(t, 2): float(s) for t, s in zip(starts, per_window, strict=True)}
        # A thin basis (under ~3 s of speech) and windows that disagree lower trust.
        confidence = BASE_CONFIDENCE * min(1.0, math.sqrt(speech_s / 3.0))
        if per_window.size > 1:
            confidence *= 1.0 - min(0.5, float(np.std(per_window)))
        return DetectorResult(
            name=self.name,
            version=head.version,
            score=score,
            confidence=clamp01(confidence),
            reasons=("synthetic_voice",) if score >= REASON_THRESHOLD else (),
            frame_scores=per,
            evidence={"n_windows": int(per_window.size), "speech_s": round(speech_s, 2),
                      "window_s": WINDOW_S, "max_window_score": round(float(per_window.max()), 4),
                      "min_window_score": round(float(per_window.min()), 4)},
        )
