"""face_artifacts inference cost per aligned crop on this CPU (target: <= 15 ms per crop).

Times the packaged ONNX model through the detector's own preprocessing and session (the settings'
ONNX thread count, default 1), for one crop at a time and for batches of 8 and 16, after a warm-up.
Crops are synthetic 224 px arrays: the cost does not depend on the content.

    .venv/bin/python bench/face_artifacts_speed.py [--threads 1] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from veracity.detectors.face_artifacts import CARD_NAME, FaceModel
from veracity.models.cards import load_card

TARGET_MS = 15.0


def main() -> int:
    ap = argparse.ArgumentParser(description="face_artifacts ms per crop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    model = FaceModel.from_card(load_card(CARD_NAME), threads=args.threads)
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(16)]
    model.predict(crops[:2])  # warm-up: session creation, first-run allocations
    out: dict[str, object] = {"threads": args.threads, "target_ms_per_crop": TARGET_MS}
    for batch in (1, 8, 16):
        per_crop: list[float] = []
        for _ in range(max(3, args.repeat // batch)):
            t = time.perf_counter()
            model.predict(crops[:batch], batch=batch)
            per_crop.append((time.perf_counter() - t) * 1000.0 / batch)
        out[f"batch_{batch}"] = {"median_ms_per_crop": round(statistics.median(per_crop), 2),
                                 "min_ms_per_crop": round(min(per_crop), 2)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
