"""The eval harness end to end on a tiny synthetic labelled folder, in process and through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.synth import make_video

from veracity.evaluation.harness import evaluate


def _image(path: Path, seed: int, smooth: bool) -> None:
    rng = np.random.default_rng(seed)
    if smooth:
        yy, xx = np.mgrid[0:96, 0:96]
        arr = np.stack([xx * 2 + seed, yy * 2, (xx + yy + seed) % 256], -1).astype(np.uint8)
    else:
        arr = rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    for i in range(3):
        _image(root / "real" / f"r{i}.png", i, smooth=False)
        _image(root / "fake" / "gradient" / f"f{i}.png", i, smooth=True)
    make_video(root / "real" / "clip.mp4", seconds=1.0, audio=False)
    (root / "fake" / "broken.mp4").write_bytes(b"")  # recorded as an error, not scored
    return root


def test_evaluate_writes_summary_records_and_plot(labelled: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # fusion-v1: its fixed weights fuse spectral for every kind (fusion-v3 fuses nothing for video)
    summary = evaluate(labelled, out_dir=out, detectors=("spectral",), fusion="fusion-v1")
    assert summary["n_files"] == 8 and summary["n_errors"] == 1
    assert summary["n_real"] == 4 and summary["n_fake"] == 3
    spec = summary["scores"]["spectral"]
    assert spec["n"] == 7 and spec["coverage"] == 1.0
    assert spec["auc"] is not None and 0.0 <= spec["auc"] <= 1.0
    assert set(spec["confusion"]) == {"tp", "fp", "tn", "fn"}
    assert sum(spec["confusion"].values()) == 7
    assert "gradient" in spec["per_method_vs_all_real"]
    assert summary["scores"]["fused"]["n"] == 7
    assert summary["fusion"]["version"]
    for name in ("summary.json", "records.jsonl", "roc.png", "reliability.png"):
        assert (out / name).is_file()
    kinds = summary["per_kind"]
    assert kinds and all(k in ("image", "video", "audio") for k in kinds)
    for entry in kinds.values():
        assert entry["ece"] is None or 0.0 <= entry["ece"] <= 1.0
        assert sum(b["n"] for b in entry["reliability"]) == entry["n_scored"]
        assert entry["thresholds"]["suspicious"] < entry["thresholds"]["manipulated"]
        assert 0.0 <= entry["share_inconclusive"] <= 1.0
    assert json.loads((out / "summary.json").read_text())["n_files"] == 8
    assert len((out / "records.jsonl").read_text().splitlines()) == 8
    # Re-fusing the saved records (as after a fusion refit) needs no analysis and keeps the scores.
    again = evaluate(out / "records.jsonl", out_dir=tmp_path / "again", fusion="fusion-v1")
    assert again["set"]["rescored_from_records"] is True
    assert again["scores"]["spectral"]["auc"] == spec["auc"]
    assert again["scores"]["fused"]["n"] == 7


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veracity.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "200"}, check=False)


@pytest.mark.slow
def test_cli_eval_json(labelled: Path, tmp_path: Path) -> None:
    res = _run("eval", str(labelled), "--detectors", "spectral", "--out", str(tmp_path / "o"), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["scores"]["spectral"]["n"] == 7
    assert summary["outputs"]["roc"].endswith("roc.png")
    assert (tmp_path / "o" / "roc.png").is_file()


def test_cli_eval_bad_input_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    _image(tmp_path / "real" / "a.png", 0, smooth=False)
    res = _run("eval", str(tmp_path), "--json")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "both real and fake" in res.stderr
    res = _run("eval", str(tmp_path), "--detectors", "nope")
    assert res.returncode == 2 and "unknown detector" in res.stderr
