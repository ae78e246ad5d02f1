"""Which Whisper encoder layers the synthetic_speech head should read: a train-side comparison.

Every train file's encodings of all four encoder layers are extracted once (cached beside the
trainer's, so the trainer reuses them), then the trainer is run with ``measure_eval=False`` for
each layer set asked for. Its leave-one-source-out figures (each source held out, real and fake
together, scored by a head fitted on the others) are what the choice rests on; eval rows are not
read here.

    PYTHONPATH=src .venv/bin/python bench/speech_layers.py --data ../shared/data \\
        --data ~/.cache/veracity/data --data ~/.cache/veracity/speech/gen2 \\
        --sets 4 --sets 1 --sets 2 --sets 3 --sets 2,4 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from veracity.config import Settings
from veracity.detectors.synthetic_speech import encoding_config
from veracity.models.whisper import ENCODER_LAYERS, WhisperEncoder
from veracity.train.common import FeatureCache, list_items
from veracity.train.synthetic_speech import (
    AUDIO_SUFFIXES,
    TRAIN_DIRS,
    Extractor,
    default_cache_root,
    train_synthetic_speech,
    train_variant,
)


def summary(card_metrics: dict[str, Any]) -> dict[str, Any]:
    loso = card_metrics["train_leave_one_source_out"]
    per_source = {k: v.get("auc") for k, v in loso["clean"].items() if k != "all" and isinstance(v, dict)}
    return {"l2": loso["l2"], "eer_by_l2": loso["eer_by_l2"],
            "clean": loso["clean"]["all"], "codec": loso["train codec"]["all"], "per_source_auc_clean": per_source}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--data", type=Path, action="append", required=True)
    p.add_argument("--sets", action="append", required=True, help="a layer set, e.g. 2,4 (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    sets = [tuple(int(k) for k in s.split(",")) for s in a.sets]
    def log(message: str) -> None:
        if not a.json:
            print(message, file=sys.stderr)

    cache_dir = Settings.from_env().cache_dir
    needed = tuple(sorted({k for s in sets for k in s}))
    encoders = {k: WhisperEncoder.from_cache(cache_dir, threads=2, layer=k) for k in needed}
    ex = Extractor(dict(encoders), FeatureCache(default_cache_root(), encoding_config()), log, needed)
    items = list_items(a.data, "train", TRAIN_DIRS, AUDIO_SUFFIXES, log, kinds=("audio",))
    started = time.perf_counter()
    ex.all(items, [["clean", train_variant(it, a.seed)] for it in items], f"encodings of layers {needed}")
    log(f"extraction: {time.perf_counter() - started:.0f} s")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in sets:
            t0 = time.perf_counter()
            card = train_synthetic_speech(a.data, Path(tmp) / "card.json", seed=a.seed, measure_eval=False,
                                          layers=s, held_out_dir=Path(tmp), progress=log)
            results[",".join(map(str, s))] = {**summary(card.metrics), "fit_s": round(time.perf_counter() - t0)}
            r = results[",".join(map(str, s))]
            log(f"layers {s}: LOSO clean {r['clean']}, codec {r['codec']}")
    if a.json:
        print(json.dumps({"layers_of": ENCODER_LAYERS, "sets": results}, indent=2))
    else:
        print("| layers | l2 | LOSO EER clean | AUC clean | EER codec | AUC codec |")
        print("|---|---|---|---|---|---|")
        for k, r in results.items():
            print(f"| {k} | {r['l2']} | {r['clean'].get('eer')} | {r['clean'].get('auc')} | "
                  f"{r['codec'].get('eer')} | {r['codec'].get('auc')} |")
        for k, r in results.items():
            print(f"{k}: " + ", ".join(f"{s} {v}" for s, v in r["per_source_auc_clean"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
