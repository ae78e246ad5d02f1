"""``veracity eval``: analyse a labelled set, then write records, a JSON summary and a ROC plot.

Outputs in ``out_dir``: ``records.jsonl`` (one line per file: every detector's score), ``summary.json``
(per-detector and fused AUC, EER, accuracy and confusion, per source and per method; ``per_kind``:
fused AUC, expected calibration error, labels at the thresholds, share inconclusive), ``roc.png``
and ``reliability.png`` (calibration curve per media kind, ECE in the legend). The fused score is
the one the pipeline reports, with the fusion named (default: the packaged default), so eval
measures exactly what users get. Given a ``records.jsonl`` instead of a set, the saved detector
scores are fused again and summarised without re-analysis.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veracity import __version__
from veracity.config import Options, Settings, shown_path
from veracity.errors import ConfigError
from veracity.evaluation.dataset import LabelledItem, load_set
from veracity.evaluation.plot import reliability_png, roc_png
from veracity.evaluation.runner import Progress, Record, run_set, save_records
from veracity.evaluation.summary import FUSED, summarise
from veracity.fusion import FusionParams


def rescore(records: Sequence[Record], params: FusionParams) -> list[Record]:
    """The same detector scores fused again with other parameters (no re-analysis; provenance
    is not re-checked)."""
    from veracity.evaluation.calibration import rescore_kind

    return rescore_kind(records, params)


def evaluate_records(records_path: Path, *, out_dir: Path | None = None, detectors: Sequence[str] | None = None,
                     fusion: str | None = None) -> dict[str, Any]:
    """Summarise saved ``records.jsonl`` again, re-fused with ``fusion`` (e.g. after a refit). An
    append-only cache (``train fusion``'s) may hold a file twice, before and after a detector
    retrain: the last record per file counts, once."""
    from veracity.evaluation.runner import latest_records

    if not records_path.is_file():
        raise ConfigError(f"no records file at {records_path}")
    params = FusionParams.load(fusion) if fusion else FusionParams.load()
    records = rescore(latest_records(records_path), params)
    if detectors:
        records = [replace_detectors(r, detectors) for r in records]
    summary = summarise(records, fused_threshold=params.thresholds.suspicious, detectors=detectors)
    summary["per_kind"] = per_kind(records, params)
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
    summary["per_kind"] = per_kind(records, params)
    summary["set"] = {"target": str(target), "n_items": len(items),
                      "kinds": sorted({i.kind for i in items if i.kind})}
    summary["fusion"] = {"version": params.version, "fitted": params.fitted,
                         "threshold_fused": params.thresholds.suspicious}
    summary["veracity_version"] = __version__
    summary["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    return summary


def per_kind(records: Sequence[Record], params: FusionParams) -> dict[str, Any]:
    """Per media kind: fused AUC, expected calibration error and reliability bins, the labels per
    class at the fusion's thresholds (which it states), the share labelled inconclusive."""
    from veracity.evaluation.calibration import kind_metrics

    out: dict[str, Any] = {}
    for kind in sorted({r.kind for r in records if r.error is None and r.kind}):
        entry = kind_metrics(records, kind)
        model = params.kinds.get(kind)
        entry["thresholds"] = model.thresholds.model_dump() if model is not None else params.thresholds.model_dump()
        entry["per_kind_model"] = model is not None
        out[kind] = entry
    return out


def write_outputs(records: Sequence[Record], summary: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"records": out_dir / "records.jsonl", "summary": out_dir / "summary.json", "roc": out_dir / "roc.png",
             "reliability": out_dir / "reliability.png"}
    save_records(records, paths["records"])
    names = [*[n for n in summary["scores"] if n != FUSED], FUSED]
    target = f"{shown_path(summary['set']['target'])} ({summary.get('fusion', {}).get('version', '?')})"
    roc_png(records, names, paths["roc"], title=f"ROC: {target}")
    bins = {k: (v.get("reliability") or [], v.get("ece")) for k, v in summary.get("per_kind", {}).items()}
    reliability_png(bins, paths["reliability"], title=f"Reliability: {target}")
    summary["outputs"] = {k: str(v) for k, v in paths.items()}
    paths["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths
