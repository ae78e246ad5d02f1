"""Copy-synthesis training fakes for synthetic_speech: every real train recording resynthesised
by one vocoder (``train/vocoders.py``).

    python -m veracity.train.copy_synthesis OUT [--data ROOT ...] [--max-seconds 6]
    veracity train synthetic_speech --data ../shared/data --data ~/.cache/veracity/data --data OUT

Why: our real and fake training speech come from different sources (corpora, microphones,
speakers, sentences), so a head can separate them by source instead of by synthesis. A fake made
from a real file keeps its speaker, words and channel and adds only the vocoder (Wang &
Yamagishi, "Spoofed training data for speech spoofing countermeasure can be efficiently created
using neural vocoders", ICASSP 2023).

Which vocoder: drawn per file from a hash of its path (HiFi-GAN 40 %, WORLD 30 %, Griffin-Lim
30 %), so the same command writes the same files. Files are cut to ``--max-seconds`` (the
detector scores 4 s windows). ``train`` rows only, for training, never for eval, never
committed: ``OUT/train/audio_fake/copysynth_<vocoder>/<name>.wav`` and ``OUT/MANIFEST.tsv``.
A row's ``source_repo`` is the source of the real file it was made from, so leave-one-source-out
holds a source's copies out with it (``synthetic_speech.source_of``).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veracity.config import Settings
from veracity.detectors.synthetic_speech import RATE
from veracity.errors import ConfigError, VeracityError
from veracity.train.common import Item, Progress, Roots, as_roots, default_roots, list_items
from veracity.train.speech_fakes import write_manifest, write_wav
from veracity.train.synthetic_speech import AUDIO_SUFFIXES, COPY_PREFIX, read_samples, source_of
from veracity.train.vocoders import GriffinLim, HifiGan, Vocoder, World

TRAIN_REAL_DIRS = ("train/audio_real/",)
SKIP_GROUPS = ("train/audio_real/fsdd",)  # 8 kHz spoken digits: too little speech for a window
SHARES = (("hifigan", 0.4), ("world", 0.3), ("griffinlim", 0.3))
MIN_SECONDS = 1.0
Float32Array = npt.NDArray[np.float32]


def vocoder_for(rel: str, seed: int) -> str:
    """The vocoder a real file is resynthesised with (seeded hash of its path)."""
    u = int(hashlib.sha256(f"{seed}:{rel}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    acc = 0.0
    for name, share in SHARES:
        acc += share
        if u < acc:
            return name
    return SHARES[-1][0]


def resample(x: Float32Array, src: int, dst: int) -> Float32Array:
    """Band-limited resampling by FFT (whole clip; clips are a few seconds)."""
    if src == dst:
        return x
    n = int(round(x.size * dst / src))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(spec.size, n // 2 + 1)
    out = np.zeros(n // 2 + 1, dtype=np.complex128)
    out[:keep] = spec[:keep]
    return np.asarray(np.fft.irfft(out, n=n) * (n / x.size), dtype=np.float32)


def out_name(item: Item) -> str:
    """A flat, unique file name for the copy of ``item``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", item.rel.removeprefix("train/")).strip("_")
    return stem.rsplit(".", 1)[0] + ".wav"


def real_items(data: Roots, log: Progress) -> list[Item]:
    items = list_items(data, "train", TRAIN_REAL_DIRS, AUDIO_SUFFIXES, log, kinds=("audio",))
    return [it for it in items if it.label == 0 and it.group not in SKIP_GROUPS]


def generate(out: Path, data: Roots, *, seed: int = 0, max_seconds: float = 6.0, threads: int = 1,
             every: Sequence[str] = (), log: Progress | None = None) -> int:
    """Write the copies and ``OUT/MANIFEST.tsv``; returns the number of files listed. Each real
    file gets the vocoder its hash draws and, besides, every vocoder named in ``every``; a copy
    already written is kept."""
    say = log or (lambda _m: None)
    unknown = set(every) - {n for n, _ in SHARES}
    if unknown:
        raise ConfigError(f"unknown vocoder(s) {', '.join(sorted(unknown))}; known: {', '.join(n for n, _ in SHARES)}")
    reals = real_items(as_roots(data), say)
    vocoders: dict[str, Vocoder] = {}
    rows: list[dict[str, str]] = []
    started = time.perf_counter()
    for i, item in enumerate(reals):
        try:
            x = read_samples(item.path)[: int(max_seconds * RATE)]
        except VeracityError as exc:
            say(f"skipped {item.rel}: {exc.message}")
            continue
        if x.size < MIN_SECONDS * RATE:
            continue
        for name in dict.fromkeys([vocoder_for(item.rel, seed), *every]):
            if name not in vocoders:
                vocoders[name] = (HifiGan.from_cache(Settings.from_env().cache_dir, threads) if name == "hifigan"
                                  else World() if name == "world" else GriffinLim(seed))
            voc = vocoders[name]
            rel = f"train/audio_fake/{COPY_PREFIX}{name}/{out_name(item)}"
            target = out / rel
            if not target.is_file():
                y = voc(resample(x, RATE, voc.rate))
                peak = float(np.abs(y).max()) if y.size else 0.0
                write_wav(target, y / peak * 0.9 if peak > 0.99 else y, voc.rate)
            rows.append({"path": rel, "split": "train", "label": "fake", "detail": f"{voc.detail} of {item.rel}",
                         "kind": "audio", "source_repo": source_of(item), "commit": "", "source_path": item.rel,
                         "license": f"derived from {item.rel} ({item.license}); generated locally, training only",
                         "notes": ""})
        if (i + 1) % 25 == 0 or i + 1 == len(reals):
            say(f"copy synthesis: {i + 1}/{len(reals)} ({time.perf_counter() - started:.0f} s)")
    write_manifest(out, rows)
    return len(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("out", type=Path)
    p.add_argument("--data", type=Path, action="append")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=6.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--every", default="", help="comma-separated vocoders every real file also gets (world,griffinlim)")
    a = p.parse_args(argv)
    data = a.data or default_roots(Settings.from_env().cache_dir)
    n = generate(a.out, [d for d in data if (d / "MANIFEST.tsv").is_file()], seed=a.seed,
                 max_seconds=a.max_seconds, threads=a.threads,
                 every=[v for v in a.every.split(",") if v], log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"wrote {n} files and {a.out / 'MANIFEST.tsv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
