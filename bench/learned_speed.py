"""Per-item inference cost of the learned detectors on this CPU.

* synthetic_image: one still through the detector's views (native crops, CLIP int8 encoder +
  probe and/or the patch CNN and/or the residual spectrum), on eval/image files (1024 px faces)
  or 1024x1024 noise when ../shared/data is absent; measured at 1 and 2 onnxruntime threads.
  Target <= 150 ms per image. The spectrum view's features alone (numpy, no model) are timed
  too, so its cost is known whether or not the packaged card uses it.
* synthetic_speech: 10 s of speech (eval/audio files joined, or a synthetic voice) through the
  detector's windows (Whisper tiny.en encoder at 2 threads + head). Target <= 100 ms per 10 s.
  bench/speech_speed.py breaks it down (front end, encoder, threads, load time).

Times are medians over ``--repeat`` runs after one warm-up, in this process (models warm), as
wall time and as CPU time of this process (the machine is shared; the load average is printed).

    .venv/bin/python bench/learned_speed.py [--repeat 10] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.config import Settings
from veracity.detectors.synthetic_image import (
    CNN_GRID,
    GRID,
    SPECTRUM_CROP,
    SPECTRUM_GRID,
    ImageModel,
    SyntheticImageDetector,
    native_crops,
)
from veracity.detectors.synthetic_speech import CARD_NAME as SPEECH_CARD
from veracity.detectors.synthetic_speech import SpeechHead, file_features, score_features
from veracity.media.types import AUDIO_RATE
from veracity.models.cards import load_card
from veracity.models.residual_spectrum import batch_features as spectrum_features
from veracity.models.whisper import WhisperEncoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def images(n: int) -> list[npt.NDArray[np.uint8]]:
    files = sorted((DATA / "eval" / "image" / "fake").glob("tpdne_*"))[:n]
    if files:
        return [np.asarray(Image.open(f).convert("RGB"), dtype=np.uint8) for f in files]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8) for _ in range(n)]


def speech_10s() -> npt.NDArray[np.float32]:
    from veracity.config import Limits
    from veracity.media.audio import load_audio
    from veracity.media.probe import probe

    parts: list[npt.NDArray[np.float32]] = []
    for f in sorted((DATA / "eval" / "audio" / "real").glob("*.wav")):
        audio, _ = load_audio(probe(f, Limits()))
        if audio is not None:
            parts.append(audio.samples)
        if sum(p.size for p in parts) >= 10 * AUDIO_RATE:
            break
    if parts:
        return np.concatenate(parts)[: 10 * AUDIO_RATE]
    t = np.arange(10 * AUDIO_RATE) / AUDIO_RATE
    return np.asarray(0.1 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)), dtype=np.float32)


def median_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process): on a shared machine the wall time also
    counts other jobs' turns on the cores; CPU time divided by the threads used is the floor."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000.0)
        cpu.append((time.process_time() - c) * 1000.0)
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    out: dict[str, object] = {}

    pics = images(args.repeat)
    for threads in (1, 2):
        det = SyntheticImageDetector()
        image_model = det.get_model()
        image_settings = settings.with_(onnx_threads=threads)
        counter = itertools.count()

        def one(det: SyntheticImageDetector = det, counter: Iterator[int] = counter,
                s: Settings = image_settings, m: ImageModel = image_model) -> None:
            det.view_logits(pics[next(counter) % len(pics)], s, m)

        med, cpu = median_ms(one, args.repeat)
        out[f"synthetic_image_ms_per_image_threads{threads}"] = {
            "wall_median": round(med, 1), "cpu_median": round(cpu, 1), "views": list(image_model.calibration.views),
            "crops": {"clip": GRID * GRID if "clip" in image_model.calibration.views else 0,
                      "cnn": CNN_GRID * CNN_GRID if "cnn" in image_model.calibration.views else 0,
                      "spectrum": SPECTRUM_GRID ** 2 if "spectrum" in image_model.calibration.views else 0}}

    spectrum_counter = itertools.count()
    med, cpu = median_ms(lambda: spectrum_features(
        native_crops(pics[next(spectrum_counter) % len(pics)], SPECTRUM_CROP, SPECTRUM_GRID)[0]), args.repeat)
    out["synthetic_image_spectrum_view_features_ms_per_image"] = {
        "wall_median": round(med, 1), "cpu_median": round(cpu, 1), "crops": SPECTRUM_GRID ** 2,
        "shape": list(pics[0].shape)}

    speech_head = SpeechHead.from_card(load_card(SPEECH_CARD))
    whisper = WhisperEncoder.from_cache(settings.cache_dir, threads=2)
    audio = speech_10s()
    med, cpu = median_ms(lambda: score_features(speech_head, file_features(whisper, audio)[0]), args.repeat)
    out["synthetic_speech_ms_per_10s"] = {"wall_median": round(med, 1), "cpu_median": round(cpu, 1)}
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    out["targets_ms"] = {"synthetic_image": 150, "synthetic_speech_per_10s": 100}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
