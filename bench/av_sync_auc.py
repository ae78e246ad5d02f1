"""av_sync ROC AUC on every real clip with audio in ../shared/data (eval/video and train/video_real).

Each clip is scored as it is, with its audio shifted by 1 s, and with another clip's audio.
train/video_real figures are leave-one-source-out cross-validated (the model never saw the held-out
source); eval/video figures use the model trained on all train clips. Retrains into a temporary
file; the shipped model is not touched.

    .venv/bin/python bench/av_sync_auc.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from veracity.train.av_sync import train


def main() -> int:
    ap = argparse.ArgumentParser(description="av_sync AUC: original vs shifted / foreign audio.")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        card = train(args.data, Path(tmp) / "av_sync-bench.json", log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(card.metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
