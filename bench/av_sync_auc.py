"""Measure av_sync on every real clip with audio in ../shared/data (eval/video and train/video_real).

Each clip is scored three ways: as it is, with its audio shifted by 1 s (circular, so speech is
still present throughout), and with the audio of another clip. ROC AUC is computed over
original (negative) vs manipulated (positive) scores. The detector's constants are not fitted
on these clips; AUC depends only on the ranking of scores.

    python bench/av_sync_auc.py [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from veracity.config import Options, Settings
from veracity.detectors.av_sync import AVSyncDetector
from veracity.detectors.base import AnalysisContext
from veracity.faces import FaceMesher, find_faces
from veracity.media import decode, plan_sampling, probe
from veracity.media.types import Audio
try:
    from veracity.models.metrics import roc_auc
except ImportError:
    roc_auc = None


def real_clips_with_audio(data: Path) -> list[Path]:
    out = []
    with (data / "MANIFEST.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            p = row["path"]
            if row["label"] != "real" or not (p.startswith("eval/video/") or p.startswith("train/video_real/")):
                continue
            notes = row.get("notes", "")
            if "audio=none" in notes or "no audio" in notes:
                continue
            out.append(data / p)
    return sorted(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    settings = Settings.from_env()
    options = Options()
    mesher = FaceMesher(max_faces=options.max_faces)
    det = AVSyncDetector()
    contexts: list[tuple[str, AnalysisContext]] = []
    for path in real_clips_with_audio(args.data):
        info = probe(path, settings.limits)
        media = decode(info, plan_sampling(info, options), settings.limits)
        if media.audio is None:
            continue
        faces = find_faces(media, mesher, keep_crops=False)
        contexts.append((path.name, AnalysisContext(media=media, faces=faces, options=options, settings=settings)))
        print(f"prepared {path.name}", file=sys.stderr)
    rows = []
    n = len(contexts)
    for i, (name, ctx) in enumerate(contexts):
        audio = ctx.media.audio
        assert audio is not None
        shift = np.roll(audio.samples, audio.sample_rate)  # 1 s later, circular
        other = contexts[(i + 1) % n][1].media.audio
        assert other is not None
        reps = int(np.ceil(audio.samples.shape[0] / max(1, other.samples.shape[0])))
        swapped = np.tile(other.samples, reps)[: audio.samples.shape[0]]
        for variant, samples in (("original", audio.samples), ("shift_1s", shift), ("other_clip", swapped)):
            media = replace(ctx.media, audio=Audio(samples=np.ascontiguousarray(samples, dtype=np.float32)))
            vctx = replace(ctx, media=media)
            res = det.run(vctx) if det.applies(vctx) else None
            rows.append({"clip": name, "variant": variant,
                         "score": None if res is None else res.score,
                         "peak_r": None if res is None or res.score is None else res.evidence.get("peak_correlation"),
                         "skipped": None if res is None else res.not_applicable})
    scored = [r for r in rows if r["score"] is not None]
    clips_ok = {r["clip"] for r in scored if r["variant"] == "original"}
    summary = {}
    for variant in ("shift_1s", "other_clip"):
        neg = [r["score"] for r in scored if r["variant"] == "original"]
        pos = [r["score"] for r in scored if r["variant"] == variant and r["clip"] in clips_ok]
        summary[variant] = {"auc": roc_auc(np.array(neg + pos), np.array([0] * len(neg) + [1] * len(pos))),
                            "n_original": len(neg), "n_manipulated": len(pos)}
    neg = [r["score"] for r in scored if r["variant"] == "original"]
    pos = [r["score"] for r in scored if r["variant"] != "original" and r["clip"] in clips_ok]
    summary["pooled"] = {"auc": roc_auc(np.array(neg + pos), np.array([0] * len(neg) + [1] * len(pos))),
                         "n_original": len(neg), "n_manipulated": len(pos)}
    summary["clips_total"] = len(contexts)
    summary["clips_scored"] = len(clips_ok)
    summary["skipped"] = sorted({f"{r['clip']}:{r['skipped']}" for r in rows if r["score"] is None and r["variant"] == "original"})
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['clip']:45s} {r['variant']:11s} score={r['score']} peak_r={r['peak_r']} {r['skipped'] or ''}")
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
