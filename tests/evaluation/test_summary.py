"""Eval metrics, labelled-set readers and the ROC plot on hand-made records."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from veracity.errors import ConfigError
from veracity.evaluation.dataset import load_set, read_folders, read_manifest
from veracity.evaluation.plot import roc_png
from veracity.evaluation.runner import DetectorScore, Record, load_records, save_records
from veracity.evaluation.summary import FUSED, block, roc_points, summarise


def _rec(i: int, label: int, score: float | None, fused: float | None, source: str = "s1",
         method: str = "m1") -> Record:
    dets = {"d": DetectorScore(score=score, confidence=0.5, not_applicable=None if score is not None else "no_face")}
    return Record(rel=f"f{i}", label=label, source=source, method=method if label else "real", kind="image",
                  fused=fused, detectors=dets)


def test_block_counts_confusion_and_auc() -> None:
    pairs = [(_rec(0, 0, 0.1, 0.1), 0.1), (_rec(1, 0, 0.6, 0.6), 0.6), (_rec(2, 1, 0.7, 0.7), 0.7),
             (_rec(3, 1, 0.4, 0.4), 0.4)]
    b = block(pairs, 0.5)
    assert b["confusion"] == {"tp": 1, "fp": 1, "tn": 1, "fn": 1}
    assert b["accuracy"] == 0.5
    assert b["auc"] == pytest.approx(0.75)
    assert 0 <= b["eer"] <= 1


def test_summarise_per_detector_fused_source_and_method() -> None:
    recs = [
        _rec(0, 0, 0.1, 0.2, source="a"), _rec(1, 0, 0.2, 0.1, source="b"),
        _rec(2, 1, 0.9, 0.8, source="a", method="gan"), _rec(3, 1, None, 0.7, source="b", method="swap"),
        Record(rel="bad", label=1, source="a", method="gan", kind="image", error="corrupt_media: x"),
    ]
    s = summarise(recs, fused_threshold=0.45)
    assert s["n_files"] == 5 and s["n_errors"] == 1 and s["errors"][0]["file"] == "bad"
    d, f = s["scores"]["d"], s["scores"][FUSED]
    assert d["n"] == 3 and d["coverage"] == 0.75 and d["not_applied"] == {"no_face": 1}
    assert d["auc"] == 1.0 and f["auc"] == 1.0
    assert f["threshold"] == 0.45 and f["confusion"]["tp"] == 2
    assert f["per_source"]["a"]["auc"] == 1.0
    assert f["per_method_vs_all_real"]["swap"]["n_fake"] == 1
    assert d["per_method_vs_all_real"] == {"gan": d["per_method_vs_all_real"]["gan"]}  # swap not scored by d


def test_one_class_has_no_auc() -> None:
    s = summarise([_rec(0, 0, 0.1, 0.1), _rec(1, 0, 0.3, 0.3)], fused_threshold=0.5)
    assert s["scores"][FUSED]["auc"] is None and "eer" not in s["scores"][FUSED]


def test_roc_points_run_from_origin_to_corner() -> None:
    fpr, tpr = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert all(b >= a for a, b in itertools.pairwise(fpr))


def test_records_round_trip(tmp_path: Path) -> None:
    recs = [_rec(0, 0, 0.1, 0.2), _rec(1, 1, None, 0.9)]
    save_records(recs, tmp_path / "r.jsonl")
    assert load_records(tmp_path / "r.jsonl") == recs


def test_roc_png_is_written(tmp_path: Path) -> None:
    recs = [_rec(i, i % 2, 0.2 + 0.5 * (i % 2) + 0.01 * i, 0.3 + 0.4 * (i % 2)) for i in range(10)]
    out = roc_png(recs, ["d", FUSED], tmp_path / "roc.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (640, 640)
        colours = np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)
        assert len(colours) > 5  # curves and text, not a blank canvas


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_read_folders_labels_methods_and_sources(tmp_path: Path) -> None:
    _touch(tmp_path / "setA" / "real" / "a.jpg")
    _touch(tmp_path / "setA" / "fake" / "gan" / "b.png")
    _touch(tmp_path / "setA" / "fake" / "c.mp4")
    _touch(tmp_path / "setA" / "fake" / "notes.txt")
    items = read_folders(tmp_path)
    by = {i.rel: i for i in items}
    assert set(by) == {"setA/real/a.jpg", "setA/fake/gan/b.png", "setA/fake/c.mp4"}
    assert by["setA/fake/gan/b.png"].method == "gan" and by["setA/fake/c.mp4"].method == "fake"
    assert by["setA/real/a.jpg"].label == "real" and by["setA/real/a.jpg"].source == "setA"


def test_read_manifest_filters(tmp_path: Path) -> None:
    _touch(tmp_path / "eval" / "image" / "real" / "r.jpg")
    _touch(tmp_path / "eval" / "image" / "fake" / "f.jpg")
    _touch(tmp_path / "train" / "x.jpg")
    header = "path\tsplit\tlabel\tdetail\tkind\tsource_repo\n"
    rows = ["eval/image/real/r.jpg\teval\treal\t\timage\trepoR", "eval/image/fake/f.jpg\teval\tfake\tGAN\timage\trepoF",
            "train/x.jpg\ttrain\treal\t\timage\trepoT", "eval/c2pa/y.jpg\teval\tc2pa\t\timage\trepoC",
            "eval/missing.jpg\teval\tfake\tGAN\timage\trepoF"]
    (tmp_path / "MANIFEST.tsv").write_text(header + "\n".join(rows) + "\n")
    items = read_manifest(tmp_path / "MANIFEST.tsv", split="eval")
    assert [i.rel for i in items] == ["eval/image/fake/f.jpg", "eval/image/real/r.jpg"]
    assert items[0].method == "GAN" and items[0].source == "repoF"
    assert len(read_manifest(tmp_path / "MANIFEST.tsv", kinds=("video",))) == 0
    # A folder inside the manifest's tree takes its rows (with sources) from the manifest.
    inside = load_set(tmp_path / "eval" / "image")
    assert {i.source for i in inside} == {"repoR", "repoF"}
    with pytest.raises(ConfigError):
        load_set(tmp_path / "nope")
