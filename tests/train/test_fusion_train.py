"""`veracity train fusion` picks train files only, capped per folder, reproducibly."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from veracity.evaluation.runner import DetectorScore, Record, save_records
from veracity.fusion import FusionParams
from veracity.train.fusion import fit_items, train_fusion


@pytest.mark.realdata
def test_fit_items_are_train_only_and_capped(shared_data: Path) -> None:
    items = fit_items(shared_data, per_group=5, seed=0, kinds=("image", "video"))
    assert items and all(i.rel.startswith("train/") for i in items)
    per_folder = Counter(str(Path(i.rel).parent) for i in items)
    assert max(per_folder.values()) <= 5
    assert {i.label for i in items} == {"real", "fake"}
    assert [i.rel for i in fit_items(shared_data, per_group=5, seed=0, kinds=("image", "video"))] == [
        i.rel for i in items]


def test_refit_from_saved_records_writes_a_versioned_file(tmp_path: Path) -> None:
    recs = []
    for i in range(24):
        y = i % 2
        recs.append(Record(rel=f"train/x/{i}.png", label=y, source="s", method="m" if y else "real", kind="image",
                           detectors={"spectral": DetectorScore(score=0.3 + 0.4 * y + 0.01 * (i % 5), confidence=0.6)}))
    save_records(recs, tmp_path / "records.jsonl")
    (tmp_path / "MANIFEST.tsv").write_text("path\tsplit\tlabel\n")
    out = tmp_path / "fusion-test.json"
    result = train_fusion(tmp_path, version="fusion-test", records_path=tmp_path / "records.jsonl",
                          reuse_records=True, out=out)
    loaded = FusionParams.model_validate_json(out.read_text())
    assert loaded == result.params
    assert loaded.fitted and loaded.version == "fusion-test"
    assert loaded.fit["data"]["split"] == "train"
    assert loaded.fit["detectors"]["spectral"]["source"] == "fitted"
