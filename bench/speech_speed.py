"""What synthetic_speech costs on this CPU: model load time, and per 10 s of speech the
preparation (VAD, pause capping, level), the log-mel front end, the Whisper tiny.en encoder (the
layers the head's card names: a truncated model per intermediate layer) and the whole detector
path, at 1 and 2 threads; plus the install size it adds.

Times are medians over ``--repeat`` runs after one warm-up, as wall time and as CPU time of this
process (the machine is shared; the load average is printed). Target: <= 100 ms per 10 s of
audio on 2 threads.

    PYTHONPATH=src .venv/bin/python bench/speech_speed.py [--card CARD.json] [--repeat 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from functools import partial
from importlib import util
from pathlib import Path

from learned_speed import median_ms, speech_10s  # same folder: python bench/speech_speed.py

from veracity.config import Settings
from veracity.detectors.synthetic_speech import (
    CARD_NAME,
    SpeechHead,
    encode_file,
    file_features,
    prepare,
    score_features,
)
from veracity.media.types import AUDIO_RATE
from veracity.models.cards import load_card, read_card
from veracity.models.fetch import models_dir
from veracity.models.whisper import LayeredEncoder, log_mel, whisper_model


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """learned_speed's medians (wall and CPU ms of this process) as a JSON row."""
    wall, cpu = median_ms(fn, repeat)
    return {"wall_median": round(wall, 1), "cpu_median": round(cpu, 1)}


def du_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--card", type=Path, help="a head's card (default: the packaged one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    audio = speech_10s()
    head = SpeechHead.from_card(read_card(args.card) if args.card else load_card(CARD_NAME))
    out: dict[str, object] = {"audio_s": round(audio.size / AUDIO_RATE, 2), "encoder": head.encoder,
                              "layers": list(head.layers)}
    prep = prepare(audio)
    out["prepare_ms"] = timed(lambda: prepare(audio), args.repeat)
    out["log_mel_ms"] = timed(lambda: log_mel(prep.samples), args.repeat)
    for threads in (1, 2):
        t = time.perf_counter()
        enc = LayeredEncoder.from_cache(settings.cache_dir, head.layers, threads=threads,
                                        model=whisper_model(head.encoder))
        out[f"load_s_threads{threads}"] = round(time.perf_counter() - t, 2)  # includes the sha256 checks
        out[f"encoder_ms_threads{threads}"] = timed(partial(encode_file, enc, prep), args.repeat)

        def detect(e: LayeredEncoder = enc) -> object:
            return score_features(head, file_features(e, audio)[0])

        out[f"detector_ms_per_10s_threads{threads}"] = timed(detect, args.repeat)
    spec = util.find_spec("ctranslate2")
    site = Path(spec.origin).parent.parent if spec and spec.origin else None
    out["install_mb"] = {
        "ctranslate2_package": du_mb(site / "ctranslate2") if site else None,
        "ctranslate2_libs": du_mb(site / "ctranslate2.libs") if site and (site / "ctranslate2.libs").is_dir() else 0.0,
        "whisper_tiny_en_fetched": du_mb(models_dir(settings.cache_dir) / "whisper-tiny-en"),
        "whisper_base_fetched": du_mb(models_dir(settings.cache_dir) / "whisper-base"),
        "whisper_base_block1_derived": du_mb(models_dir(settings.cache_dir) / "whisper-base-l1"),
    }
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    out["target_ms_per_10s"] = 100
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
