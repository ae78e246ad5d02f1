"""Train the av_sync audio-to-mouth ridge regression on real talking faces, and measure it.

Only real clips are needed: the model learns which sounds open the mouth. Training uses
``train/video_real`` clips with audio; the sync statistic is calibrated and its ROC AUC measured
by leave-one-source-out cross-validation on those clips (GRID, LRS2, ... each held out in turn),
and measured once more on the real clips with audio in ``eval/video``, which training never sees.
A "manipulated" clip is the same video with its audio shifted by 1 s (circularly, so speech stays
present throughout) or with another clip's audio.

    python -m veracity.train.av_sync --data ../shared/data --out src/veracity/models/data/av_sync-v1.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.config import Options, Settings
from veracity.detectors import av_sync as av
from veracity.detectors.base import AnalysisContext
from veracity.faces import FaceMesher, find_faces
from veracity.media import decode, plan_sampling, probe
from veracity.media.types import Audio
from veracity.models.cards import ModelCard, params_sha256, write_card
from veracity.models.metrics import roc_auc

RIDGE = 1000.0
GRID_FPS = 15.0
VERSION = "av_sync-1.0"
Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Clip:
    name: str
    group: str  # source, e.g. "grid", "lrs2": the unit of cross-validation
    ctx: AnalysisContext


def clips_with_audio(data: Path, prefix: str) -> list[Path]:
    """Real clips under ``prefix`` whose MANIFEST row does not say they lack audio."""
    out = []
    with (data / "MANIFEST.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            notes = row.get("notes") or ""
            if row["label"] == "real" and row["path"].startswith(prefix) and "audio=none" not in notes:
                out.append(data / row["path"])
    return sorted(out)


def prepare(paths: list[Path], log: Log) -> list[Clip]:
    settings, options = Settings.from_env(), Options(dense_fps=GRID_FPS)
    mesher = FaceMesher(max_faces=options.max_faces)
    clips = []
    try:
        for i, path in enumerate(paths, 1):
            info = probe(path, settings.limits)
            media = decode(info, plan_sampling(info, options), settings.limits)
            if media.audio is None:
                continue
            faces = find_faces(media, mesher, keep_crops=False)
            clips.append(
                Clip(
                    path.name,
                    path.name.split("_")[0],
                    AnalysisContext(media=media, faces=faces, options=options, settings=settings),
                )
            )
            log(f"[{i}/{len(paths)}] faces in {faces.frames_with_faces}/{faces.frames_seen} frames: {path.name}")
    finally:
        mesher.close()
    return clips


def variants(clips: list[Clip], i: int) -> dict[str, AnalysisContext]:
    """The clip as it is, with audio shifted 1 s, and with the next clip's audio."""
    ctx = clips[i].ctx
    audio = ctx.media.audio
    other = clips[(i + 1) % len(clips)].ctx.media.audio
    assert audio is not None and other is not None
    n = audio.samples.shape[0]
    swapped = np.tile(other.samples, int(np.ceil(n / max(1, other.samples.shape[0]))))[:n]
    out = {}
    for key, samples in (
        ("original", audio.samples),
        ("shift_1s", np.roll(audio.samples, audio.sample_rate)),
        ("other_clip", swapped),
    ):
        media = replace(ctx.media, audio=Audio(samples=np.ascontiguousarray(samples, dtype=np.float32)))
        out[key] = replace(ctx, media=media)
    return out


def features(ctx: AnalysisContext) -> list[av.WindowFeatures]:
    return av.speaker_windows(ctx, GRID_FPS)[0]


def fit(windows: list[av.WindowFeatures], ridge: float = RIDGE) -> npt.NDArray[np.float64]:
    x = np.concatenate([w.audio for w in windows])
    y = np.concatenate([w.mouth for w in windows])
    x1 = np.c_[x, np.ones(x.shape[0])]
    return np.linalg.solve(x1.T @ x1 + ridge * np.eye(x1.shape[1]), x1.T @ y)


def prominence(ctx: AnalysisContext, weights: npt.NDArray[np.float64]) -> float | None:
    syncs = [s for f in features(ctx) if (s := av.window_sync(f, weights, GRID_FPS)) is not None]
    if not syncs:
        return None
    return float(np.average([s.prominence for s in syncs], weights=[s.end - s.start for s in syncs]))


def auc_table(rows: list[dict[str, Any]]) -> dict[str, float | int]:
    """AUC of original (label 0) against each manipulation (label 1), lower prominence = fake."""
    ok = {r["clip"] for r in rows if r["variant"] == "original" and r["prominence"] is not None}
    out: dict[str, float | int] = {"clips": len(ok)}
    orig = [float(r["prominence"]) for r in rows if r["variant"] == "original" and r["clip"] in ok]
    for variant in ("shift_1s", "other_clip", "pooled"):
        fake = [
            float(r["prominence"])
            for r in rows
            if r["clip"] in ok
            and r["prominence"] is not None
            and r["variant"] != "original"
            and (variant == "pooled" or r["variant"] == variant)
        ]
        if orig and fake:
            labels = [0] * len(orig) + [1] * len(fake)
            out[f"auc_{variant}"] = round(roc_auc(labels, [-v for v in orig + fake]), 4)
    return out


def score_rows(clips: list[Clip], weights_for: Callable[[Clip], npt.NDArray[np.float64]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, clip in enumerate(clips):
        w = weights_for(clip)
        for key, ctx in variants(clips, i).items():
            rows.append({"clip": clip.name, "group": clip.group, "variant": key, "prominence": prominence(ctx, w)})
    return rows


def train(data: Path, out: Path, *, log: Log = print) -> ModelCard:
    train_clips = prepare(clips_with_audio(data, "train/video_real/"), log)
    eval_clips = prepare(clips_with_audio(data, "eval/video/"), log)
    windows = {c.name: features(c.ctx) for c in train_clips}
    groups = sorted({c.group for c in train_clips})

    def cv_weights(clip: Clip) -> npt.NDArray[np.float64]:
        return fit([w for c in train_clips if c.group != clip.group for w in windows[c.name]])

    cv_rows = score_rows(train_clips, cv_weights)
    orig = [float(r["prominence"]) for r in cv_rows if r["variant"] == "original" and r["prominence"] is not None]
    fake = [float(r["prominence"]) for r in cv_rows if r["variant"] != "original" and r["prominence"] is not None]
    centre = (float(np.median(orig)) + float(np.median(fake))) / 2
    scale = max(0.02, (float(np.median(orig)) - float(np.median(fake))) / 4)
    weights = fit([w for ws in windows.values() for w in ws])
    eval_rows = score_rows(eval_clips, lambda _c: weights)
    params = {
        "weights": [round(float(v), 6) for v in weights],
        "grid_fps": GRID_FPS,
        "centre": round(centre, 4),
        "scale": round(scale, 4),
        "ridge": RIDGE,
        "context": av.CONTEXT,
        "n_mels": av.N_MELS,
    }
    card = ModelCard(
        name=out.stem,
        version=VERSION,
        kind="ridge-regression",
        params=params,
        sha256=params_sha256(params),
        input="24 log-mel bands (10 ms hop, 80-7600 Hz) at a 15 Hz grid with +-2 frames of context",
        training_data={
            "clips": [c.name for c in train_clips],
            "groups": groups,
            "windows": sum(len(v) for v in windows.values()),
        },
        preprocessing="per-window z-scores of each band and of the mouth opening",
        metrics={
            "cross_validated_train": auc_table(cv_rows),
            "eval_video_held_out": auc_table(eval_rows),
            "note": "train: leave-one-source-out CV; eval: clips never seen in training. "
            "Positives are the same clips with audio shifted 1 s or taken from another clip.",
        },
        license="weights trained by Veracity on research-licensed clips (see ../shared/data/MANIFEST.tsv)",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    write_card(card, out)
    log(json.dumps(card.metrics, indent=2))
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the av_sync model on train/video_real.")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "av_sync-v1.json")
    args = ap.parse_args(argv)
    train(args.data, args.out, log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
