"""The fused verdict on eval videos per method and per fake source, under a fusion file.

Reads the eval records ``veracity train fusion`` keeps (``~/.cache/veracity/fusion/eval.jsonl``:
../shared/data/eval and the SOURCES eval split, analysed once), re-fuses them under each named
fusion file (the packaged default when none is named) and prints, for video: per method
(``face_swap``, ``lip_sync``, ``talking_head``, as ``bench/face_artifacts_eval.py`` names them)
and per fake source, the fused AUC of those fakes against every eval real video, each
detector's AUC on the same files, and the share labelled manipulated / suspicious /
inconclusive; and for the reals the share labelled manipulated or synthetic. Nothing is fitted
here: the thresholds are the fusion file's.

    PYTHONPATH=src .venv/bin/python bench/video_fused_eval.py [--fusion fusion-v3 --fusion fusion-v4] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from face_artifacts_eval import method_of

from veracity.evaluation.calibration import rescore_kind
from veracity.evaluation.runner import Record, latest_records
from veracity.fusion.fuse import FusionParams, default_name
from veracity.models.metrics import roc_auc

RECORDS = Path.home() / ".cache" / "veracity" / "fusion" / "eval.jsonl"
DETECTORS = ("face_artifacts", "av_sync", "synthetic_speech", "temporal", "physiology")


def group_method(r: Record) -> str:
    return method_of({"label": "fake" if r.label else "real", "detail": r.method, "path": r.rel})


def block(reals: Sequence[Record], fakes: Sequence[Record]) -> dict[str, Any]:
    rows = [*reals, *fakes]
    scored = [r for r in rows if r.fused is not None]
    y = [r.label for r in scored]
    out: dict[str, Any] = {"n_fake": len(fakes),
                           "fused_auc": round(roc_auc(y, [float(r.fused or 0) for r in scored]), 3)
                           if 0 < sum(y) < len(y) else None}
    for name in DETECTORS:
        pairs = [(r.label, d.score) for r in rows if (d := r.detectors.get(name)) is not None and d.score is not None]
        ys = [a for a, _ in pairs]
        out[name] = round(roc_auc(ys, [b for _, b in pairs]), 3) if 0 < sum(ys) < len(ys) else None
    for lab in ("manipulated", "suspicious", "inconclusive", "authentic"):
        out[f"fakes_{lab}"] = round(sum(r.verdict == lab for r in fakes) / len(fakes), 3) if fakes else None
    return out


def report(records: Sequence[Record], params: FusionParams) -> dict[str, Any]:
    videos = [r for r in rescore_kind(records, params) if r.kind == "video" and r.error is None]
    reals = [r for r in videos if r.label == 0]
    fakes = [r for r in videos if r.label == 1]
    methods = sorted({group_method(r) for r in fakes})
    sources = sorted({r.source for r in fakes})
    return {
        "n_real": len(reals), "n_fake": len(fakes),
        "reals_manipulated_or_synthetic": round(sum(r.verdict in ("manipulated", "synthetic") for r in reals)
                                                / len(reals), 3) if reals else None,
        "reals_inconclusive": round(sum(r.verdict == "inconclusive" for r in reals) / len(reals), 3) if reals else None,
        "all": block(reals, fakes),
        "per_method": {m: block(reals, [r for r in fakes if group_method(r) == m]) for m in methods},
        "per_source": {s: block(reals, [r for r in fakes if r.source == s]) for s in sources},
    }


def print_table(name: str, rep: dict[str, Any]) -> None:
    print(f"\n## {name}: {rep['n_real']} real / {rep['n_fake']} fake eval videos; reals manipulated/synthetic "
          f"{rep['reals_manipulated_or_synthetic']}, inconclusive {rep['reals_inconclusive']}")
    cols = ["fused_auc", *DETECTORS, "fakes_manipulated", "fakes_suspicious", "fakes_inconclusive"]
    print("| group | n | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    rows = [("all", rep["all"]), *rep["per_method"].items(), *rep["per_source"].items()]
    for g, b in rows:
        print(f"| {g} | {b['n_fake']} | " + " | ".join("–" if b[c] is None else f"{b[c]:.2f}" for c in cols) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=Path, default=RECORDS)
    ap.add_argument("--fusion", action="append", help="fusion file name (repeat); default: the packaged default")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    records = latest_records(args.records)
    out = {}
    for name in args.fusion or [default_name()]:
        out[name] = report(records, FusionParams.load(name))
        print_table(name, out[name])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
