"""face_artifacts on the eval sets, per source and per method, fast enough to re-run per checkpoint.

The face stage runs once per eval file as the pipeline runs it (probe, decode of the 16 sparse
frames, MediaPipe mesh, tracking, the detector's own ``gather_crops``; dense windows are skipped:
this detector reads sparse crops only) and its aligned crops are cached under
``~/.cache/veracity/train/face_artifacts/eval_crops``; scoring a new model then costs only the
network. Aggregation is the detector's (``media_score``, calibrated sigmoid).

Sets: ``../shared/data/eval/video``, the eval videos of the materialised SOURCES cache (whole
side-by-side composites skipped, their panels kept) and the face images of
``../shared/data/eval/image``. Methods: ``face_swap``, ``lip_sync``, ``talking_head`` (generated
or reenacted heads), ``gan_diffusion`` (whole synthetic images; not this detector's target).
Per-method AUC is that method's fakes against every real of the same modality; per-source AUC is
within a source repository that has both labels; per-fake-source AUC is one repository's fakes
against every real of the modality. ``real_above_half_share`` is the share of reals whose
calibrated score reaches 0.5 (beside ``real_flagged_share`` at the card's threshold). The
``manipulated`` threshold is the card's (``metrics.threshold``, fixed on the train side), never
fitted here.

    PYTHONPATH=src .venv/bin/python bench/face_artifacts_eval.py [--card face_artifacts-v3] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.config import Options, Settings
from veracity.detectors.base import AnalysisContext
from veracity.detectors.face_artifacts import CARD_NAME, FaceModel, gather_crops, media_score
from veracity.models.cards import ModelCard, load_card, read_card
from veracity.models.metrics import roc_auc
from veracity.train.data import is_composite

SHARED = Path("../shared/data")
SOURCES = Path.home() / ".cache" / "veracity" / "data"
CACHE = Path.home() / ".cache" / "veracity" / "train" / "face_artifacts" / "eval_crops"


def method_of(row: dict[str, str]) -> str:
    if row["label"] == "real":
        return "real"
    d = (row.get("detail", "") + " " + Path(row["path"]).name).lower()
    if any(k in d for k in ("face swap", "face-swap", "dfdc", "simswap", "inswapper", "sber-swap")):
        return "face_swap"
    if any(k in d for k in ("gan(", "diffusion(", "ai-generated", "stylegan")):
        return "gan_diffusion"
    lip = ("wav2lip", "retalking", "lip-sync", "lip sync", "lip_synced")
    if any(k in d for k in lip) and "sadtalker (full" not in d:
        return "lip_sync"
    return "talking_head"


def eval_rows() -> list[tuple[Path, dict[str, str]]]:
    out: list[tuple[Path, dict[str, str]]] = []
    for root, prefixes in ((SHARED, ("eval/video/", "eval/image/")), (SOURCES, ("eval/video/",))):
        manifest = root / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with manifest.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["split"] != "eval" or row["label"] not in ("real", "fake") or is_composite(row):
                    continue
                if row["path"].startswith(prefixes) and (root / row["path"]).is_file():
                    out.append((root, row))
    return out


def face_items(path: Path, mesher: Any, settings: Settings) -> dict[str, Any]:
    """The detector's crops for one file, from the cache or from the face stage."""
    from veracity.faces import find_faces
    from veracity.media import decode, plan_sampling, probe

    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    cached = CACHE / f"{key}.npz"
    if cached.is_file():
        with np.load(cached) as z:
            return {k: z[k] for k in z.files}
    options = Options(max_windows=0)
    info = probe(path, settings.limits)
    media = decode(info, plan_sampling(info, options), settings.limits)
    faces = find_faces(media, mesher, keep_crops=True)
    ctx = AnalysisContext(media=media, faces=faces, options=options, settings=settings)
    items = gather_crops(ctx) if faces.any else []
    data: dict[str, npt.NDArray[Any]] = {
        "track": np.asarray([i[0] for i in items], np.int64),
        "t": np.asarray([i[1] for i in items], np.float64),
        "crops": np.stack([i[2] for i in items]) if items else np.zeros((0, 224, 224, 3), np.uint8),
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, **data)
    return data


def auc_or_none(y: list[int], s: list[float]) -> float | None:
    return round(roc_auc(np.asarray(y), np.asarray(s)), 4) if len(set(y)) == 2 else None


def tables(records: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for modality in ("video", "image"):
        recs = [r for r in records if r["modality"] == modality and r["score"] is not None]
        if not recs:
            continue
        reals = [r for r in recs if r["label"] == 0]
        block: dict[str, Any] = {
            "n_real": len(reals), "n_fake": len(recs) - len(reals),
            "no_face": sum(1 for r in records if r["modality"] == modality and r["score"] is None),
            "auc_all": auc_or_none([r["label"] for r in recs], [r["score"] for r in recs]),
            "real_flagged_share": round(float(np.mean([r["score"] >= threshold for r in reals])), 4) if reals else None,
            "real_above_half_share": round(float(np.mean([r["score"] >= 0.5 for r in reals])), 4) if reals else None,
            "per_method": {}, "per_source": {}, "per_fake_source": {},
        }
        for m in sorted({r["method"] for r in recs if r["label"] == 1}):
            sel = reals + [r for r in recs if r["method"] == m]
            block["per_method"][m] = {"n": sum(1 for r in sel if r["label"] == 1),
                                      "auc_vs_all_real": auc_or_none([r["label"] for r in sel],
                                                                     [r["score"] for r in sel]),
                                      "flagged_share": round(float(np.mean([r["score"] >= threshold for r in sel
                                                                            if r["label"] == 1])), 4)}
        if modality == "video":
            manip = [r for r in recs if r["label"] == 0 or r["method"] != "gan_diffusion"]
            block["auc_all_manipulations"] = auc_or_none([r["label"] for r in manip], [r["score"] for r in manip])
        else:
            faces = [r for r in recs if r["label"] == 0 or r["method"] == "face_swap"]
            block["auc_face_swap_images"] = auc_or_none([r["label"] for r in faces], [r["score"] for r in faces])
        for src in sorted({r["source"] for r in recs}):
            sel = [r for r in recs if r["source"] == src]
            a = auc_or_none([r["label"] for r in sel], [r["score"] for r in sel])
            if a is not None:
                block["per_source"][src] = {"n_real": sum(1 for r in sel if r["label"] == 0),
                                            "n_fake": sum(1 for r in sel if r["label"] == 1), "auc": a}
        for src in sorted({r["source"] for r in recs if r["label"] == 1}):
            fakes = [r for r in recs if r["label"] == 1 and r["source"] == src]
            sel = reals + fakes
            block["per_fake_source"][src] = {
                "n": len(fakes), "methods": sorted({r["method"] for r in fakes}),
                "auc_vs_all_real": auc_or_none([r["label"] for r in sel], [r["score"] for r in sel]),
                "flagged_share": round(float(np.mean([r["score"] >= threshold for r in fakes])), 4)}
        out[modality] = block
    return out


def open_model(ref: str, threads: int) -> tuple[ModelCard, FaceModel]:
    """A packaged card by name, or a frozen copy (``.../card.json`` with its weights beside it)."""
    card_path = Path(ref)
    if card_path.suffix == ".json" and card_path.is_file():
        card = read_card(card_path)
        return card, FaceModel.from_card(card, threads=threads, base=card_path.parent)
    card = load_card(ref)
    return card, FaceModel.from_card(card, threads=threads)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", default=CARD_NAME, help="card name or a frozen copy's card.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the tables and per-file scores here")
    args = ap.parse_args()
    from veracity.faces import FaceMesher

    card, model = open_model(args.card, args.threads)
    threshold = float((card.metrics.get("threshold") or {}).get("value", 0.5))
    settings = Settings.from_env()
    mesher = FaceMesher(max_faces=Options().max_faces)
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for k, (root, row) in enumerate(eval_rows()):
            data = face_items(root / row["path"], mesher, settings)
            score = media_logit = None
            if len(data["crops"]):
                logits, _ = model.predict(list(data["crops"]))
                by_track: dict[int, list[float]] = {}
                for tid, lg in zip(data["track"].tolist(), logits.tolist(), strict=True):
                    by_track.setdefault(int(tid), []).append(float(lg))
                media_logit, _ = media_score(by_track)
                score = float(model.probability(media_logit))
            records.append({"path": row["path"], "root": str(root), "label": int(row["label"] == "fake"),
                            "modality": "image" if "/image/" in row["path"] else "video",
                            "source": row["source_repo"], "method": method_of(row), "n_crops": len(data["crops"]),
                            "logit": media_logit, "score": score})
            if (k + 1) % 20 == 0:
                print(f"{k + 1} files ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    finally:
        mesher.close()
    result = {"card": args.card, "sha256": card.sha256, "threshold": threshold,
              "tables": tables(records, threshold)}
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps({**result, "files": records}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
