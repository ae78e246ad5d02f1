"""Train-side held-out figures of a packaged face_artifacts model (never eval): validation AUCs
(real vs self-blend, held-out DeepFaceLive identities real vs swap), clip-level AUC and the
``manipulated`` threshold (see ``veracity.train.face_artifacts.heldout_report``). Compares models
on the same held-out crops, e.g. v1 vs v2; ``--write`` stores the threshold in the card.

    PYTHONPATH=src .venv/bin/python bench/face_artifacts_trainval.py --card face_artifacts-v1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt
from face_artifacts_eval import open_model  # same folder: python bench/face_artifacts_trainval.py

from veracity.detectors.face_artifacts import CARD_NAME, preprocess
from veracity.train.face_artifacts import add_eval_metrics, heldout_report
from veracity.train.face_prep import load

CROPS = Path.home() / ".cache" / "veracity" / "train" / "face_artifacts" / "crops"
PKG = Path(__file__).resolve().parent.parent / "src" / "veracity" / "models" / "data"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default=CARD_NAME)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="store threshold and figures in the card")
    args = ap.parse_args()
    fs = load(CROPS)
    if fs is None:
        raise SystemExit(f"no crop cache at {CROPS}: run `veracity train face_artifacts` first")
    _card, model = open_model(args.card, args.threads)
    side = model.input_side()

    def score(x: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        out = [model.session().run(["logit"], {"input": preprocess(list(x[s:s + 32]), side)})[0]
               for s in range(0, len(x), 32)]
        return np.asarray(np.concatenate(out), dtype=np.float64)

    report = heldout_report(score, model.probability, fs, size=side)
    print(json.dumps({"card": args.card, "input": side, **report}, indent=2))
    if args.write and Path(args.card).suffix != ".json":
        add_eval_metrics(PKG / f"{args.card}.json", "threshold", report["threshold"])
        add_eval_metrics(PKG / f"{args.card}.json", "heldout_train_side", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
