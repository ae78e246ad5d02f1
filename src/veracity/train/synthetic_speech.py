"""Train a synthetic_speech head on pooled Whisper encoder features (tiny.en for the sound of
videos, base for audio files: ``HEADS``).

    veracity train synthetic_speech --data ../shared/data --data ~/.cache/veracity/data \
        --data ~/.cache/veracity/speech/gen2 [--data ~/.cache/veracity/speech/copysynth]

The extra roots are training fakes we make (docs/data.md): a Piper voice and espeak-ng
(``train/speech_fakes.py``, in v2's data) and copy synthesis, every real train recording
resynthesised by a vocoder (``train/copy_synthesis.py``; measured, not in v2: docs/data.md).

Training reads only ``train`` rows: ../shared/data ``train/audio_real`` and ``train/audio_fake``
and the materialised SOURCES layout ``train/audio/{real,fake}``, decoded as at inference (the
media stage: any format -> 16 kHz mono) and prepared by the detector's own code (pauses capped,
speech level normalised, 4 s windows: ``detectors/synthetic_speech.py``).

Codec confound: real and fake sources come in different formats, so every training file is seen
twice, as decoded and after one random lossy round trip (MP3 32-128 kbit/s, Opus 16-48 kbit/s or
AAC 48-128 kbit/s, seeded per file), whatever its class; a codec then says nothing of the label.

Choices made on the train side only: the ridge strength by leave-one-source-out (each source
repository or folder, real and fake files together, is held out and scored by a head fitted on
the others: the out-of-source EER of files); the Platt calibration on those out-of-source file
logits, folded into the head. ``eval`` rows are scored once at the end (clean and after MP3
64 kbit/s and Opus 24 kbit/s round trips) and the tables go in the card.

Encoder features are cached per (file, variant) under ``~/.cache/veracity/synthetic_speech``, so
refitting the head costs seconds.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.config import Limits, Settings
from veracity.detectors.synthetic_speech import (
    AUDIO_CARD_NAME,
    AUDIO_ENCODER,
    AUDIO_LAYERS,
    AUDIO_VERSION,
    CARD_NAME,
    DEFAULT_LAYERS,
    RATE,
    Encoder,
    SpeechHead,
    SyntheticSpeechDetector,
    aggregate,
    check_layers,
    encode_file,
    encoding_config,
    frame_db,
    n_features,
    pooled,
    prepare,
    speech_frames,
    windows,
)
from veracity.errors import ConfigError, VeracityError
from veracity.media.audio import load_audio
from veracity.media.probe import probe
from veracity.models.cards import ModelCard, params_sha256, write_card
from veracity.models.metrics import eer, roc_auc
from veracity.models.whisper import MODEL_CARD, TINY_EN, LayeredEncoder, WhisperModel, whisper_model
from veracity.train import heldout
from veracity.train.common import (
    VIDEO_REAL_DIR,
    VIDEO_SUFFIXES,
    FeatureCache,
    Item,
    Progress,
    Roots,
    as_roots,
    list_items,
    training_sets,
)
from veracity.train.spectral import balanced_weights, fit_logistic

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
TRAIN_DIRS = ("train/audio_real/", "train/audio_fake/")
EVAL_DIR = "eval/audio/"
L2_GRID = (30.0, 100.0, 300.0, 1000.0)
TRAIN_CODECS: tuple[tuple[str, tuple[int, int]], ...] = (("mp3", (32, 128)), ("opus", (16, 48)), ("aac", (48, 128)))
EVAL_VARIANTS = ("clean", "mp3@64", "opus@24")
TRAIN_NOISE_P = 0.5  # with noise=True: share of train files whose second variant is noisy too
TRAIN_NOISE_SNR = (5, 25)  # dB
FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

# The video head (2.0) reads the last encoder block. Block 1 was measured on 2026-12-01
# (bench/speech_layers.py, leave-one-source-out EER clean / codec: block 1 0.285 / 0.291, block 2
# 0.301 / 0.300, blocks 1+2 0.299 / 0.297, block 3 0.319 / 0.318, blocks 2+4 0.315 / 0.309, the
# last 0.339 / 0.325) and was better on the eval audio files, but worse on the sound of videos
# (train-side real video sound tracks called fake 19 % vs 12 %; eval talking heads): so audio
# files have a head of their own on block 1 (2.1), and videos keep 2.0.


@dataclass(frozen=True, slots=True)
class HeadRecipe:
    """A packaged head: its card, version, Whisper build and encoder layers (the same data and fit
    for both)."""

    card: str
    version: str
    layers: tuple[int, ...]
    encoder: str = MODEL_CARD


HEADS: dict[str, HeadRecipe] = {
    "video": HeadRecipe(CARD_NAME, SyntheticSpeechDetector.version, DEFAULT_LAYERS),
    "audio": HeadRecipe(AUDIO_CARD_NAME, AUDIO_VERSION, AUDIO_LAYERS, AUDIO_ENCODER),
}
COPY_PREFIX = "copysynth_"  # train/audio_fake/copysynth_<vocoder>/ (train/copy_synthesis.py)
_ENCODERS = {"mp3": ("libmp3lame", "mp3", RATE), "opus": ("libopus", "ogg", 48_000), "aac": ("aac", "adts", RATE)}


def read_samples(path: Path) -> Float32Array:
    """16 kHz mono float32, through the same probe and decoder as an analysis."""
    info = probe(path, Limits())
    audio, _warnings = load_audio(info)
    if audio is None:
        raise ConfigError(f"{path}: no audio stream")
    return np.asarray(audio.samples, dtype=np.float32)


def codec_round_trip(samples: Float32Array, codec: str, kbps: int) -> Float32Array:
    """Encode 16 kHz mono ``samples`` with ``codec`` (mp3, opus, aac) at ``kbps`` in memory and
    decode back to 16 kHz mono float32 (PyAV; Opus runs at 48 kHz, resampled both ways)."""
    import av

    name, fmt, rate = _ENCODERS[codec]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream: Any = out.add_stream(name, rate=rate)  # an AudioStream (PyAV types it as any stream)
        stream.bit_rate = kbps * 1000
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name if stream.format else "fltp", layout="mono", rate=rate)
        frame_len = 960 * 4
        x = np.clip(samples, -1.0, 1.0).astype(np.float32)
        for start in range(0, max(1, x.size), frame_len):
            chunk = x[start:start + frame_len]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.time_base = Fraction(1, RATE)
            frame.pts = start
            for rf in resampler.resample(frame):
                for packet in stream.encode(rf):
                    out.mux(packet)
        for rf in resampler.resample(None):
            for packet in stream.encode(rf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    pieces: list[Float32Array] = []
    with av.open(buf, mode="r", format=fmt) as inp:
        back = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        for frame in inp.decode(audio=0):
            for rf in back.resample(frame):
                pieces.append(np.asarray(rf.to_ndarray(), dtype=np.float32).reshape(-1))
        for rf in back.resample(None):
            pieces.append(np.asarray(rf.to_ndarray(), dtype=np.float32).reshape(-1))
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def add_noise(samples: Float32Array, snr_db: float, seed: int) -> Float32Array:
    """Pink noise (power falling 3 dB per octave, like room and street noise) ``snr_db`` below
    the level of the speech frames (the detector's own energy VAD)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size == 0:
        return x
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(x.size))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1.0))
    noise = np.fft.irfft(spec, n=x.size)
    db = frame_db(x)
    speech = speech_frames(db)
    level = float(np.mean(10 ** (db[speech] / 10))) if speech.any() else float(np.mean(x.astype(np.float64) ** 2))
    noise *= np.sqrt(level / max(float(np.mean(noise**2)), 1e-20) / 10 ** (snr_db / 10))
    return np.asarray(np.clip(x + noise, -1.0, 1.0), dtype=np.float32)


def variant_samples(samples: Float32Array, variant: str) -> Float32Array:
    """``clean``, ``codec@kbps``, or steps joined by ``+`` applied left to right
    (``noise@12+mp3@64``: pink noise at 12 dB SNR, then an MP3 round trip)."""
    out = samples
    for step in variant.split("+"):
        if step == "clean":
            continue
        name, _, value = step.partition("@")
        if name == "noise":
            out = add_noise(out, float(value), seed=int(value) * 1_000_003 + out.size)
        else:
            out = codec_round_trip(out, name, int(value))
    return out


def train_variant(item: Item, seed: int, noise: bool = False, copy: int = 0) -> str:
    """The random codec round trip a training file gets (seeded by the file's path; ``copy`` > 0
    draws a further one) and, with ``noise``, for ``TRAIN_NOISE_P`` of the files pink noise before
    it (either class)."""
    salt = f"{seed}:{item.rel}" + (f":{copy}" if copy else "")  # copy 0: the draw every head was fitted with
    h = int(hashlib.sha256(salt.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(h)
    codec, (lo, hi) = TRAIN_CODECS[int(rng.integers(len(TRAIN_CODECS)))]
    variant = f"{codec}@{int(rng.integers(lo, hi + 1))}"
    if noise and rng.random() < TRAIN_NOISE_P:
        variant = f"noise@{int(rng.integers(TRAIN_NOISE_SNR[0], TRAIN_NOISE_SNR[1] + 1))}+{variant}"
    return variant


def real_video_items(data_root: Roots, log: Progress) -> list[Item]:
    """The real train videos (``train/video_real`` and the SOURCES ``train/video/real`` panels) as
    real speech: their sound tracks are broadcast, studio and web recordings, unlike the clean
    read-speech corpora of the audio reals. Files without an audio track give no windows."""
    items = list_items(data_root, "train", (VIDEO_REAL_DIR,), VIDEO_SUFFIXES, log, kinds=("video",), require=False)
    return [it for it in items if it.label == 0]


def source_of(item: Item) -> str:
    """The recording source a train file belongs to, for leave-one-source-out: the repository in
    the SOURCES layout, the folder in ../shared/data (``hifigan_demo_gt`` joins ``hifigan_demo``:
    the real recordings the vocoder resynthesised; a copy-synthesis fake, ``train/copy_synthesis.py``,
    joins the source of the real file it was made from)."""
    parts = item.rel.split("/")
    if len(parts) >= 4 and parts[1] in ("audio", "video") and parts[2] in ("real", "fake"):
        return item.source_repo
    if len(parts) == 3 and parts[1] == VIDEO_REAL_DIR.split("/")[1]:  # a corpus per file-name prefix
        return f"{parts[1]}/{parts[2].split('_', 1)[0]}"
    if is_copy(item):  # a copy-synthesis fake counts in the source of its real twin
        return item.source_repo
    folder = parts[2] if len(parts) > 2 else item.group
    return folder.removesuffix("_gt")


def is_copy(item: Item) -> bool:
    """A copy-synthesis fake (``train/audio_fake/copysynth_<vocoder>/``)."""
    parts = item.rel.split("/")
    return len(parts) > 2 and parts[2].startswith(COPY_PREFIX)


def generator_of(item: Item) -> str:
    """An eval file's generator, for per-source tables: the source repository, and for fakes the
    first two words of the detail (``Coqui XTTS``, ``VoiceCraft zero-shot``)."""
    if item.label == 0:
        return f"{item.source_repo}: real"
    words = item.detail.replace("(", " ").split()
    if item.source_repo.startswith("gan-police"):
        return f"{item.source_repo}: vocoders"
    if item.source_repo.startswith("DIN05AUR"):
        return f"{item.source_repo}: TTS"
    return f"{item.source_repo}: {' '.join(words[:2])}"


@dataclass(slots=True)
class Extractor:
    """Window features of (file, variant). The encoder output of each layer and the speech mask
    are cached (not the pooled windows), so windows, pooling and the choice of layers can change
    without re-encoding. ``encoders`` maps an encoder layer (1..4) to its encoder; ``layers``
    says which of them the features join, in order."""

    encoders: dict[int, Encoder]
    cache: FeatureCache
    log: Progress
    layers: tuple[int, ...] = DEFAULT_LAYERS
    model: WhisperModel = TINY_EN  # the Whisper build (its depth names the cache keys, its width empty rows)

    def encodings(self, item: Item, variant: str) -> tuple[list[Float32Array], npt.NDArray[np.bool_]]:
        """The encoder output of each of ``layers`` and the speech mask; the file is decoded,
        varied, prepared and turned into log-mels once for all layers missing from the cache."""
        key = f"{item.path}|{variant}"
        enc_keys = {k: key + "|enc" + ("" if k == self.model.layers else f"@{k}") for k in self.layers}
        found = {k: self.cache.get(enc_keys[k]) for k in self.layers}
        speech = self.cache.get(key + "|speech")
        missing = [k for k in self.layers if found[k] is None]
        if speech is None or missing:
            empty = np.zeros((0, self.model.width), np.float32)
            try:
                prep = prepare(variant_samples(read_samples(item.path), variant))
                speech = prep.speech
                if missing and windows(speech):
                    joined = encode_file(LayeredEncoder([self.encoders[k] for k in missing]), prep)
                    found.update(zip(missing, np.split(joined, len(missing), axis=1), strict=True))
                else:
                    found.update(dict.fromkeys(missing, empty))
            except VeracityError as exc:
                self.log(f"skipped {item.rel} ({variant}): {exc.message}")
                speech = np.zeros(0, dtype=np.bool_)
                found = dict.fromkeys(self.layers, empty)
            for k in self.layers:
                self.cache.put(enc_keys[k], np.asarray(found[k], dtype=np.float32))
            self.cache.put(key + "|speech", np.asarray(speech, dtype=np.bool_))
        return [np.asarray(found[k], dtype=np.float32) for k in self.layers], np.asarray(speech, dtype=np.bool_)

    def features(self, item: Item, variant: str) -> FloatArray:
        encs, speech = self.encodings(item, variant)
        if not encs[0].shape[0]:
            return np.zeros((0, n_features(self.layers, self.model.card)))
        return pooled(np.concatenate(encs, axis=1), speech)

    def all(self, items: Sequence[Item], variants: Sequence[Sequence[str]], what: str) -> list[list[FloatArray]]:
        out: list[list[FloatArray]] = []
        started = time.perf_counter()
        for i, (item, vs) in enumerate(zip(items, variants, strict=True)):
            out.append([self.features(item, v) for v in vs])
            if (i + 1) % 50 == 0 or i + 1 == len(items):
                self.log(f"{what}: {i + 1}/{len(items)} files ({time.perf_counter() - started:.0f} s)")
        return out


def layer_words(layers: tuple[int, ...], model: WhisperModel = TINY_EN) -> str:
    """How the card names the encoder layers used."""
    if layers == (model.layers,):
        return "its last layer"
    if len(layers) == 1:
        return f"the normalised output of block {layers[0]} of {model.layers} (a truncated model)"
    return "the normalised outputs of blocks " + ", ".join(str(k) for k in layers) + f" of {model.layers}, joined"


def default_cache_root() -> Path:
    return Path.home() / ".cache" / "veracity" / "synthetic_speech" / "features"


# -- fitting ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Units:
    """Window feature rows with their file, label and weight."""

    x: FloatArray
    y: npt.NDArray[np.int64]
    owner: npt.NDArray[np.int64]  # index of the file
    w: FloatArray


def make_units(feats: Sequence[Sequence[FloatArray]], labels: Sequence[int], groups: Sequence[str],
               files: Sequence[int], width: int) -> Units:
    """Rows of the files ``files``; each file weighs as ``balanced_weights`` says (classes half
    each, sources equal within a class), shared among its windows and variants."""
    rows: list[FloatArray] = []
    owner: list[int] = []
    for f in files:
        for arr in feats[f]:
            rows.extend(arr)
            owner.extend([f] * arr.shape[0])
    own = np.asarray(owner, dtype=np.int64)
    y = np.asarray([labels[f] for f in own], dtype=np.int64)
    used = sorted(set(own.tolist()))
    fw = balanced_weights(np.asarray([labels[f] for f in used], dtype=np.int64), [groups[f] for f in used])
    per_file = dict(zip(used, fw.tolist(), strict=True))
    counts = Counter(own.tolist())
    w = np.asarray([per_file[f] / counts[f] for f in own], dtype=np.float64)
    return Units(np.vstack(rows) if rows else np.zeros((0, width)), y, own, w * (w.size / max(w.sum(), 1e-12)))


def fit_head(u: Units, l2: float, layers: tuple[int, ...] = DEFAULT_LAYERS, encoder: str = MODEL_CARD) -> SpeechHead:
    mean = u.x.mean(axis=0)
    sd = u.x.std(axis=0)
    std = np.where(sd > 1e-6, sd, 1.0)
    coef, intercept = fit_logistic((u.x - mean) / std, u.y, u.w, l2=l2)
    return SpeechHead(version=SyntheticSpeechDetector.version, mean=mean, std=std, coef=coef, intercept=intercept,
                      layers=layers, encoder=encoder)


def file_logits(head: SpeechHead, feats: Sequence[FloatArray]) -> list[float]:
    """The detector's file logit for each variant that has windows (NaN for one that has none)."""
    out = []
    for arr in feats:
        if arr.shape[0] == 0:
            out.append(math.nan)
        else:
            out.append(aggregate(head.logits(arr)))
    return out


def platt(z: FloatArray, y: npt.NDArray[np.int64], w: FloatArray) -> tuple[float, float]:
    """Weighted one-feature logistic fit p = sigmoid(a z + b) (calibration; no penalty)."""
    coef, b = fit_logistic(z[:, None], y, w, l2=1e-6)
    return float(coef[0]), b


def eer_auc(y: Sequence[int], s: Sequence[float]) -> dict[str, Any]:
    ya, sa = np.asarray(y, dtype=np.int64), np.asarray(s, dtype=np.float64)
    keep = np.isfinite(sa)
    ya, sa = ya[keep], sa[keep]
    if ya.size == 0 or ya.min() == ya.max():
        return {"n_real": int((ya == 0).sum()), "n_fake": int((ya == 1).sum())}
    e, _thr = eer(ya, sa)
    return {"eer": round(e, 4), "auc": round(roc_auc(ya, sa), 4), "n_real": int((ya == 0).sum()),
            "n_fake": int((ya == 1).sum())}


# -- measurement -----------------------------------------------------------------------------------


def eval_tables(items: Sequence[Item], scores: Sequence[float]) -> dict[str, Any]:
    """Overall, per source repository (its fakes against its reals), and per generator (its fakes
    against the reals of its repository, and against every eval real)."""
    y = [it.label for it in items]
    table: dict[str, Any] = {"all": eer_auc(y, scores)}
    by_repo: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_repo[it.source_repo].append(i)
    table["by_source"] = {repo: eer_auc([y[i] for i in idx], [scores[i] for i in idx])
                          for repo, idx in sorted(by_repo.items())}
    gens: dict[str, Any] = {}
    for gen in sorted({generator_of(it) for it in items if it.label == 1}):
        fakes = [i for i, it in enumerate(items) if it.label == 1 and generator_of(it) == gen]
        repo = items[fakes[0]].source_repo
        own_real = [i for i in by_repo[repo] if y[i] == 0]
        all_real = [i for i in range(len(items)) if y[i] == 0]
        gens[gen] = {"vs_own_real": eer_auc([0] * len(own_real) + [1] * len(fakes),
                                            [scores[i] for i in own_real + fakes]),
                     "vs_all_real": eer_auc([0] * len(all_real) + [1] * len(fakes),
                                            [scores[i] for i in all_real + fakes])}
    table["by_generator"] = gens
    return table


def root_name(item: Item, roots: Sequence[Path]) -> str:
    """Which data root a file came from: ``shared`` (../shared/data: eval/audio is the 120
    Fake-or-Real clips) or ``sources`` (the materialised SOURCES.tsv cache)."""
    for i, root in enumerate(roots):
        if item.path.is_relative_to(root):
            return "shared" if i == 0 and len(roots) > 1 else root.name or str(root)
    return "other"


def train_synthetic_speech(data_root: Roots, out: Path, *, seed: int = 0, progress: Progress | None = None,
                           measure_eval: bool = True, encoder: Encoder | None = None,
                           cache_root: Path | None = None, threads: int = 2,
                           held_out_dir: Path | None = None, noise: bool = False,
                           video_reals: bool = False, layers: Sequence[int] | None = None,
                           head_kind: str = "video", codec_copies: int = 1) -> ModelCard:
    """Extract (cached) features, choose the ridge by leave-one-source-out, calibrate, fit, measure
    on eval, write the card to ``out`` and the out-of-source scores to ``held_out_dir`` (default:
    ``cache_root`` when given, else the user cache) for the fusion fit. ``head_kind``: which
    packaged head (``HEADS``) the card is, which names it and sets its version and default ``layers`` (the
    encoder layers whose pooled outputs are joined); ``encoder`` (tests) stands in for every
    layer."""
    log = progress or (lambda _m: None)
    started = time.perf_counter()
    if head_kind not in HEADS:
        raise ConfigError(f"unknown speech head {head_kind!r}; known: {', '.join(HEADS)}")
    recipe = HEADS[head_kind]
    try:
        chosen = check_layers(tuple(recipe.layers if layers is None else layers), recipe.encoder)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    model = whisper_model(recipe.encoder)
    width = n_features(chosen, model.card)
    encoders: dict[int, Encoder]
    if encoder is None:
        from veracity.models.whisper import WhisperEncoder

        cache_dir = Settings.from_env().cache_dir
        encoders = {k: WhisperEncoder.from_cache(cache_dir, threads=threads, layer=k, model=model) for k in chosen}
    else:
        encoders = dict.fromkeys(chosen, encoder)
    ex = Extractor(encoders, FeatureCache(cache_root or default_cache_root(), encoding_config(model.card)), log,
                   chosen, model)
    items = list_items(data_root, "train", TRAIN_DIRS, AUDIO_SUFFIXES, log, kinds=("audio",))
    if video_reals:
        items = sorted(items + real_video_items(data_root, log), key=lambda i: i.rel)
    variants = [["clean", *(train_variant(it, seed, noise, c) for c in range(codec_copies))] for it in items]
    feats = ex.all(items, variants, "train features")
    labels = [it.label for it in items]
    groups = [it.group for it in items]
    sources = [source_of(it) for it in items]
    usable = [i for i, f in enumerate(feats) if any(a.shape[0] for a in f)]
    skipped = Counter(items[i].group for i in range(len(items)) if i not in set(usable))
    if len({labels[i] for i in usable}) < 2:
        raise ConfigError("training needs real and synthetic speech")

    # Leave one source out: out-of-source file logits for every l2.
    src_names = sorted({sources[i] for i in usable})
    oof: dict[float, dict[int, list[float]]] = {l2: {} for l2 in L2_GRID}
    for held in src_names:
        fit_files = [i for i in usable if sources[i] != held]
        test_files = [i for i in usable if sources[i] == held]
        u = make_units(feats, labels, groups, fit_files, width)
        for l2 in L2_GRID:
            head = fit_head(u, l2, chosen, model.card)
            for f in test_files:
                oof[l2][f] = file_logits(head, feats[f])
        log(f"leave-one-source-out: {held} done")

    # Copy-synthesis fakes (train/copy_synthesis.py) help the fit but are not what the detector is
    # for: the ridge, the tables and the calibration are judged on the other files only.
    copies = {i for i in usable if is_copy(items[i])}

    def cv_eer(l2: float, variant: int) -> float:
        files = [f for f in sorted(oof[l2]) if f not in copies]
        return float(eer_auc([labels[f] for f in files], [oof[l2][f][variant] for f in files]).get("eer", 1.0))

    grid = {l2: round((cv_eer(l2, 0) + cv_eer(l2, 1)) / 2, 4) for l2 in L2_GRID}
    best = min(L2_GRID, key=lambda v: (grid[v], -v))
    log(f"leave-one-source-out EER by l2 (clean+codec mean): {grid}; chosen {best}")
    files = [f for f in sorted(oof[best]) if f not in copies]
    loso: dict[str, Any] = {}
    for v, vname in ((0, "clean"), (1, "train codec")):
        tab = {"all": eer_auc([labels[f] for f in files], [oof[best][f][v] for f in files])}
        reals = [f for f in files if labels[f] == 0]
        for held in src_names:
            fakes = [f for f in files if sources[f] == held and labels[f] == 1]
            if fakes:  # the held-out source's fakes against every out-of-source real
                tab[held] = eer_auc([0] * len(reals) + [1] * len(fakes),
                                    [oof[best][f][v] for f in reals + fakes])
        for group in sorted({groups[f] for f in copies}):  # each vocoder's copies, out of source
            fakes = [f for f in sorted(copies) if groups[f] == group]
            tab[f"copies: {group.rsplit('/', 1)[-1]}"] = eer_auc(
                [0] * len(reals) + [1] * len(fakes), [oof[best][f][v] for f in reals + fakes])
        loso[vname] = tab

    # Platt calibration on the out-of-source logits (both variants), folded into the head.
    z, yz, wz = [], [], []
    fw = dict(zip(files, balanced_weights(np.asarray([labels[f] for f in files], dtype=np.int64),
                                          [groups[f] for f in files]).tolist(), strict=True))
    for f in files:
        for val in oof[best][f]:
            if math.isfinite(val):
                z.append(val)
                yz.append(labels[f])
                wz.append(fw[f])
    a, b = platt(np.asarray(z), np.asarray(yz, dtype=np.int64), np.asarray(wz))
    log(f"Platt: a={a:.4f} b={b:.4f}")
    raw = fit_head(make_units(feats, labels, groups, usable, width), best, chosen, model.card)
    head = SpeechHead(version=raw.version, mean=raw.mean, std=raw.std, coef=raw.coef * a,
                      intercept=raw.intercept * a + b, layers=chosen, encoder=model.card)

    metrics: dict[str, Any] = {
        "train_leave_one_source_out": {
            "l2": best, "eer_by_l2": {str(k): v for k, v in grid.items()}, **loso,
            "note": ("train only; each source held out (real and fake together), its files scored by a head "
                     "fitted on the others; a held-out source's fakes against all out-of-source reals; "
                     "chooses the ridge and fits the calibration. Copy-synthesis fakes (real train files "
                     "resynthesised by a vocoder) are fitted on, held out with their real twin's source, and "
                     "left out of 'all', the source rows and the calibration; their rows are 'copies: ...'"),
            "copy_synthesis_files": len(copies)},
    }
    if measure_eval:
        ev_roots = as_roots(data_root)
        ev = list_items(ev_roots, "eval", (EVAL_DIR,), AUDIO_SUFFIXES, log, kinds=("audio",))
        ev_feats = ex.all(ev, [list(EVAL_VARIANTS)] * len(ev), "eval features")
        ev_metrics: dict[str, Any] = {}
        for v, vname in enumerate(EVAL_VARIANTS):
            probs = [1.0 / (1.0 + math.exp(-zz)) if math.isfinite(zz) else math.nan
                     for zz in (file_logits(head, f)[v] for f in ev_feats)]
            none = sum(1 for p in probs if not math.isfinite(p))
            # Inconclusive files (too little speech) are reported, then scored as 0.5 (no verdict).
            scores = [p if math.isfinite(p) else 0.5 for p in probs]
            names = [root_name(it, ev_roots) for it in ev]
            shared = [i for i, n in enumerate(names) if n == "shared"]
            sources_ = [i for i, n in enumerate(names) if n != "shared"]
            ev_metrics[vname] = {
                "inconclusive": none,
                "shared_eval_audio": eval_tables([ev[i] for i in shared], [scores[i] for i in shared]),
                "sources_eval_audio": eval_tables([ev[i] for i in sources_], [scores[i] for i in sources_]),
                "all": eval_tables(ev, scores)["all"],
            }
            log(f"eval {vname}: {ev_metrics[vname]['all']} ({none} inconclusive)")
        ev_metrics["note"] = ("eval rows, never trained or tuned on; scored as the detector does (4 s windows, "
                              "mean of the top half of window logits); inconclusive files count as 0.5")
        metrics["eval"] = ev_metrics

    params = head.params()
    params["l2"] = best
    params["platt"] = [a, b]
    used = Counter(items[i].group for i in usable)
    card = ModelCard(
        name=recipe.card,
        version=recipe.version,
        kind="logistic",
        params=params,
        sha256=params_sha256(params),
        input=(f"{width} numbers per 4 s speech window: mean and std of Whisper {model.name} encoder output "
               f"({model.card}, int8; {layer_words(chosen, model)}) over the window's speech frames"),
        preprocessing=("decode -> 16 kHz mono -> energy VAD (10 ms, within 40 dB of the 95th percentile, "
                       "above -60 dBFS) -> pauses capped at 0.2 s, leading/trailing silence removed -> speech "
                       "RMS to -23 dBFS -> 4 s windows (half overlap when long) -> Whisper log-mel -> encoder -> "
                       "mean+std over speech frames -> standardised -> logistic (Platt-calibrated); file: mean "
                       "of the top half of window logits"),
        training_data=training_sets(items, used),
        metrics=metrics,
        license="weights trained by Veracity on research-licensed speech; see the MANIFEST.tsv rows named",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(f"Seed {seed}. {sum(used.values())} train files, each clean and after one random codec round "
               f"trip ({', '.join(f'{c} {lo}-{hi} kbit/s' for c, (lo, hi) in TRAIN_CODECS)}), both classes"
               + (f", {TRAIN_NOISE_P:.0%} of them with pink noise at {TRAIN_NOISE_SNR[0]}-{TRAIN_NOISE_SNR[1]} dB "
                  "SNR before the codec" if noise else "")
               + f"; copy-synthesis fakes: {len(copies)}; files without windows: {dict(skipped)}. "
               f"Took {time.perf_counter() - started:.0f} s."),
    )
    write_card(card, out)
    log(f"wrote {out}")
    # The out-of-source scores of every train file, calibrated as the detector's: what the fusion
    # fit uses instead of the in-sample scores (train/heldout.py).
    oof_probs = {items[f].rel: 1.0 / (1.0 + math.exp(-(a * oof[best][f][0] + b))) for f in files
                 if math.isfinite(oof[best][f][0])}
    where = heldout.save(heldout.HeldOut(
        "synthetic_speech", recipe.card, card.sha256, frozenset(items[i].rel for i in usable), oof_probs,
        how="leave-one-source-out: each file scored by a head fitted without its source, Platt as the detector",
        level="source"),
        held_out_dir or (cache_root if cache_root is not None else Settings.from_env().cache_dir))
    log(f"wrote {where} ({len(oof_probs)} out-of-source scores)")
    return card
