"""``veracity train fusion``: analyse a seeded sample of ``train/`` and fit the fusion on it.

    veracity train fusion --data ../shared/data            # writes fusion/data/fusion-v2.json

Every registered detector runs (so re-running after new detectors land refits with them). Files
come from the ``train`` split only, up to ``per_group`` per folder (seeded), of the media kinds the
detectors read. The analysis records are kept (``--records``) so a refit needs no re-analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.errors import ConfigError
from veracity.evaluation.dataset import LabelledItem, read_manifest
from veracity.evaluation.runner import Progress, load_records, run_set, save_records
from veracity.fusion.fit import FitResult, fit_fusion
from veracity.fusion.fuse import FusionParams

Log = Callable[[str], None]
DEFAULT_VERSION = "fusion-v2"
BASE_VERSION = "fusion-v1"
PER_GROUP = 16


def fusion_data_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "fusion" / "data"


def fit_items(data_root: Path, *, per_group: int = PER_GROUP, seed: int = 0,
              kinds: tuple[str, ...] | None = None) -> list[LabelledItem]:
    """Train-split real/fake files of the given kinds, at most ``per_group`` per folder."""
    if kinds is None:
        kinds = tuple(sorted({k for n in registry.names() for k in registry.create(n).modalities}))
    items = read_manifest(data_root / "MANIFEST.tsv", split="train", kinds=kinds)
    if any(i.rel.startswith("eval/") for i in items):  # belt and braces: never eval
        raise ConfigError("fusion fit refused: eval files in the train selection")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[LabelledItem]] = {}
    for it in items:
        groups.setdefault(str(Path(it.rel).parent), []).append(it)
    out: list[LabelledItem] = []
    for _, members in sorted(groups.items()):
        if len(members) > per_group:
            pick = sorted(rng.choice(len(members), size=per_group, replace=False).tolist())
            out.extend(members[i] for i in pick)
        else:
            out.extend(members)
    return sorted(out, key=lambda i: i.rel)


def train_fusion(data_root: Path, *, version: str = DEFAULT_VERSION, base: str = BASE_VERSION,
                 per_group: int = PER_GROUP, seed: int = 0, records_path: Path | None = None,
                 reuse_records: bool = False, out: Path | None = None, settings: Settings | None = None,
                 progress: Progress | None = None, log: Log | None = None) -> FitResult:
    note = log or (lambda _m: None)
    base_params = FusionParams.load(base)
    if reuse_records and records_path is not None and records_path.is_file():
        records = load_records(records_path)
        note(f"reusing {len(records)} analysis records from {records_path}")
        items_desc: dict[str, Any] = {"records": str(records_path)}
    else:
        items = fit_items(data_root, per_group=per_group, seed=seed)
        if not items:
            raise ConfigError(f"no train files under {data_root}")
        note(f"analysing {len(items)} train files ({sum(i.label == 'fake' for i in items)} fake)")
        records = run_set(items, options=Options(), settings=settings, fusion=base, progress=progress)
        if records_path is not None:
            save_records(records, records_path)
        items_desc = {}
    counts: dict[str, dict[str, int]] = {}
    for r in records:
        group = str(Path(r.rel).parent)
        c = counts.setdefault(group, {"real": 0, "fake": 0})
        c["fake" if r.label else "real"] += 1
    data = {
        "data": {"split": "train", "per_group": per_group, "seed": seed, "folders": counts, **items_desc},
        "detectors_registered": registry.names(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"veracity train fusion --data {data_root}",
    }
    result = fit_fusion(records, base_params, version=version, data=data)
    target = out or fusion_data_dir() / f"{version}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.params.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    note(f"wrote {target}: weights {result.params.weights}, calibration {result.params.calibration}")
    return result
