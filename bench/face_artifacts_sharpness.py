"""How much a face_artifacts model reads global sharpness as "real" (train side, never eval).

A crop detector that learned "blurrier face = fake" (made fakes are rendered small and upscaled;
self-blends soften the source) also learns "sharper face = real", and a face restorer (GFPGAN,
CodeFormer: the last step of most talking-head and lip-sync generators) sharpens. This takes
held-out real crops of the trainer's validation groups (from the crop cache), changes them
globally (blur, down-up scaling, unsharp masks, bilateral smoothing, JPEG) and reports per change
the mean shift of the raw logit and the AUC of changed against original crops: 0.5 means the
change alone does not move the score; below 0.5, the change makes a real face look more real.

    PYTHONPATH=src .venv/bin/python bench/face_artifacts_sharpness.py [--card face_artifacts-v4] [--n 240] [--json F]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from face_artifacts_eval import open_model  # same folder: python bench/face_artifacts_sharpness.py

from veracity.detectors.face_artifacts import CARD_NAME, preprocess
from veracity.models.metrics import roc_auc
from veracity.train.face_artifacts import split
from veracity.train.face_prep import load

U8 = npt.NDArray[np.uint8]
CROPS = Path.home() / ".cache" / "veracity" / "train" / "face_artifacts" / "crops"
REAL_SOURCES = ("video_real", "faces_real", "dfl_real", "made_real")


def unsharp(x: U8, amount: float, sigma: float = 1.5) -> U8:
    soft = cv2.GaussianBlur(x.astype(np.float32), (0, 0), sigma)
    return np.asarray(np.clip(x.astype(np.float32) * (1 + amount) - soft * amount, 0, 255), dtype=np.uint8)


def rescale(x: U8, f: float) -> U8:
    h = x.shape[0]
    small = cv2.resize(x, (int(h * f), int(h * f)), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (h, h), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def jpeg(x: U8, q: int) -> U8:
    ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, q])
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8) if ok else x


CHANGES: dict[str, Callable[[U8], U8]] = {
    "blur 1 px": lambda x: np.asarray(cv2.GaussianBlur(x, (0, 0), 1.0), dtype=np.uint8),
    "blur 2 px": lambda x: np.asarray(cv2.GaussianBlur(x, (0, 0), 2.0), dtype=np.uint8),
    "down-up 0.5": lambda x: rescale(x, 0.5),
    "down-up 0.3": lambda x: rescale(x, 0.3),
    "unsharp 0.5": lambda x: unsharp(x, 0.5),
    "unsharp 1.5": lambda x: unsharp(x, 1.5),
    "bilateral smoothing": lambda x: np.asarray(cv2.bilateralFilter(x, 9, 40, 5), dtype=np.uint8),
    "jpeg q30": lambda x: jpeg(x, 30),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default=CARD_NAME)
    ap.add_argument("--n", type=int, default=240, help="held-out real crops (seeded draw)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    fs = load(CROPS)
    if fs is None:
        raise SystemExit(f"no crop cache at {CROPS}: run `veracity train face_artifacts` first")
    _tr, va = split(fs)
    src = np.asarray(fs.sources)
    pool = [int(i) for i in va if src[i] in REAL_SOURCES]
    chosen = np.random.default_rng(0).choice(pool, size=min(args.n, len(pool)), replace=False)
    base = [np.asarray(fs.crops[i]) for i in chosen.tolist()]
    _card, model = open_model(args.card, args.threads)
    side = model.input_side()

    def score(crops: list[U8]) -> npt.NDArray[np.float64]:
        out = [model.session().run(["logit"], {"input": preprocess(crops[s:s + 32], side)})[0].reshape(-1)
               for s in range(0, len(crops), 32)]
        return np.asarray(np.concatenate(out), dtype=np.float64)

    z0 = score(base)
    rows: dict[str, dict[str, float]] = {}
    print(f"{args.card}: {len(base)} held-out real crops, mean logit {z0.mean():.3f}")
    print("| change | mean logit shift | AUC changed vs original |\n|---|---|---|")
    for name, fn in CHANGES.items():
        z = score([fn(x) for x in base])
        auc = roc_auc([0] * len(z0) + [1] * len(z), [*z0.tolist(), *z.tolist()])
        rows[name] = {"shift": round(float(z.mean() - z0.mean()), 3), "auc": round(float(auc), 3)}
        print(f"| {name} | {rows[name]['shift']:+.3f} | {rows[name]['auc']:.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"card": args.card, "n": len(base), "changes": rows}, indent=1),
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
