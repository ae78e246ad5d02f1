"""A train-side false-alarm check for synthetic_speech heads: real speech recorded outside the
read-speech corpora the audio reals come from.

The sound tracks of the real train videos (LRS2 broadcasts, GRID and LivePortrait recordings,
the DeepFaceLive originals, ...) are train-split files that no speech head is fitted on unless
``--video-reals`` is given to the trainer. Each card given is scored on them as the detector
scores a file; the table says what share it calls fake (P >= 0.5) per corpus. A head that learnt
"processed-sounding speech is fake" shows it here without touching eval.

    PYTHONPATH=src .venv/bin/python bench/speech_video_reals.py \\
        --card src/veracity/models/data/synthetic_speech-v2.json --card /tmp/candidate.json [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from veracity.config import Settings
from veracity.detectors.synthetic_speech import SpeechHead, encoding_config
from veracity.models.cards import read_card
from veracity.models.whisper import WhisperEncoder, whisper_model
from veracity.train.common import FeatureCache, default_roots
from veracity.train.synthetic_speech import Extractor, default_cache_root, file_logits, real_video_items, source_of


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--card", type=Path, action="append", required=True)
    p.add_argument("--data", type=Path, action="append")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    settings = Settings.from_env()
    roots = a.data or default_roots(settings.cache_dir)
    items = real_video_items(roots, lambda _m: None)
    cards: dict[str, dict[str, object]] = {}
    out: dict[str, object] = {"files": len(items), "cards": cards}
    for card_path in a.card:
        head = SpeechHead.from_card(read_card(card_path))
        model = whisper_model(head.encoder)
        encoders = {k: WhisperEncoder.from_cache(settings.cache_dir, threads=2, layer=k, model=model)
                    for k in head.layers}
        cache = FeatureCache(default_cache_root(), encoding_config(head.encoder))
        ex = Extractor(dict(encoders), cache, lambda _m: None, head.layers, model)
        feats = [ex.features(it, "clean") for it in items]
        scored = [i for i, f in enumerate(feats) if f.shape[0]]
        out["without_speech"] = len(items) - len(scored)
        probs = {i: 1.0 / (1.0 + float(np.exp(-file_logits(head, [feats[i]])[0]))) for i in scored}
        by: dict[str, list[float]] = defaultdict(list)
        for i, pr in probs.items():
            by[source_of(items[i])].append(pr)
        vals = np.array(list(probs.values()))
        corpus = {k: round(float(np.mean(v)), 3) for k, v in sorted(by.items())}
        share = float(np.mean(vals >= 0.5))
        cards[str(card_path)] = {"mean_p_fake": round(float(vals.mean()), 3), "share_fake": round(share, 3),
                                 "per_corpus_mean": corpus}
        if not a.json:
            print(f"{card_path}: {vals.size} real sound tracks, mean P(fake) {vals.mean():.3f}, "
                  f"called fake {share:.0%}; "
                  + ", ".join(f"{k} {v}" for k, v in corpus.items()))
    if a.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
