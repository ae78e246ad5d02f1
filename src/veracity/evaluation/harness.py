"""``veracity eval``: analyse a labelled set, then write records, a JSON summary and a ROC plot.

Outputs in ``out_dir``: ``records.jsonl`` (one line per file: every detector's score), ``summary.json``
(per-detector and fused AUC, EER, accuracy and confusion, per source and per method) and
``roc.png``. The fused score is the one the pipeline reports, with the fusion named (default: the
packaged default), so eval measures exactly what users get. Given a ``records.jsonl`` instead of a
set, the saved detector scores are fused again and summarised without re-analysis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veracity import __version__
from veracity.config import Options, Settings
from veracity.errors import ConfigError
from veracity.evaluation.dataset import LabelledItem, load_set
from veracity.evaluation.plot import roc_png
from veracity.evaluation.runner import Progress, Record, run_set, save_records
from veracity.evaluation.summary import FUSED, summarise
from veracity.fusion import FusionParams


def rescore(records: Sequence[Record], params: FusionParams) -> list[Record]:
    """The same detector scores fused again with other parameters (no re-analysis)."""
    from dataclasses import replace

    from veracity.fusion import fuse
    from veracity.fusion.fit import results_of

    out = []
    for r in records:
        if r.error is not None:
            out.append(r)
            continue
        v = fuse(results_of(r), params)
        out.append(replace(r, fused=None if v.score is None else round(v.score, 4), verdict=v.label))
    return out


def evaluate_records(records_path: Path, *, out_dir: Path | None = None, detectors: Sequence[str] | None = None,
                     fusion: str | None = None) -> dict[str, Any]:
    """Summarise saved ``records.jsonl`` again, re-fused with ``fusion`` (e.g. after a refit)."""
    from veracity.evaluation.runner import load_records

    if not records_path.is_file():
        raise ConfigError(f"no records file at {records_path}")
    params = FusionParams.load(fusion) if fusion else FusionParams.load()
    records = rescore(load_records(records_path), params)
    if detectors:
        records = [replace_detectors(r, detectors) for r in records]
    summary = summarise(records, fused_threshold=params.thresholds.suspicious, detectors=detectors)
    summary["set"] = {"target": str(records_path), "n_items": len(records), "rescored_from_records": True}
    summary["fusion"] = {"version": params.version, "fitted": params.fitted,
                         "threshold_fused": params.thresholds.suspicious}
    summary["veracity_version"] = __version__
    summary["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    if out_dir is not None:
        write_outputs(records, summary, out_dir)
    return summary


def replace_detectors(record: Record, keep: Sequence[str]) -> Record:
    from dataclasses import replace

    return replace(record, detectors={k: v for k, v in record.detectors.items() if k in keep})


def evaluate(target: Path, *, out_dir: Path | None = None, detectors: Sequence[str] | None = None,
             split: str | None = None, kinds: Sequence[str] = (), fusion: str | None = None,
             limit: int | None = None, options: Options | None = None, settings: Settings | None = None,
             progress: Progress | None = None) -> dict[str, Any]:
    """Run the set and return the summary (also written to ``out_dir`` when given)."""
    if target.is_file() and target.suffix == ".jsonl":
        return evaluate_records(target, out_dir=out_dir, detectors=detectors, fusion=fusion)
    items = load_set(target, split=split, kinds=kinds)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ConfigError(f"{target}: no labelled real/fake media found")
    if not any(i.label == "real" for i in items) or not any(i.label == "fake" for i in items):
        raise ConfigError(f"{target}: need both real and fake files, got {len(items)} of one class")
    params = FusionParams.load(fusion) if fusion else FusionParams.load()
    opts = (options or Options()).with_(detectors=tuple(detectors)) if detectors else (options or Options())
    records = run_set(items, options=opts, settings=settings, fusion=params.version, progress=progress)
    summary = build_summary(records, items, params, target=target, detectors=detectors)
    if out_dir is not None:
        write_outputs(records, summary, out_dir)
    return summary


def build_summary(records: Sequence[Record], items: Sequence[LabelledItem], params: FusionParams, *,
                  target: Path, detectors: Sequence[str] | None) -> dict[str, Any]:
    summary = summarise(records, fused_threshold=params.thresholds.suspicious, detectors=detectors)
    summary["set"] = {"target": str(target), "n_items": len(items),
                      "kinds": sorted({i.kind for i in items if i.kind})}
    summary["fusion"] = {"version": params.version, "fitted": params.fitted,
                         "threshold_fused": params.thresholds.suspicious}
    summary["veracity_version"] = __version__
    summary["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    return summary


def write_outputs(records: Sequence[Record], summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"records": out_dir / "records.jsonl", "summary": out_dir / "summary.json", "roc": out_dir / "roc.png"}
    save_records(records, paths["records"])
    names = [*[n for n in summary["scores"] if n != FUSED], FUSED]
    roc_png(records, names, paths["roc"], title=f"ROC: {summary['set']['target']}")
    summary["outputs"] = {k: str(v) for k, v in paths.items()}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths
