"""The bad-input corpus through the CLI (issue 15): each file gets its error code, exit 2, in
bounded time, and the rest of the batch is analysed and printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.corpus import CASES, SECONDS, build_all
from tests.service.helpers import png_bytes

BY_NAME = {c.name: c for c in CASES}


def run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veracity.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"},
        check=False,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("corpus"))


def test_corpus_batch_names_every_failure_and_analyses_the_rest(corpus: dict[str, Path], tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(png_bytes(1, size=96))
    started = time.monotonic()
    res = run("analyze", "--json", *map(str, corpus.values()), str(good), timeout=SECONDS * 4)
    elapsed = time.monotonic() - started
    assert res.returncode == 2, res.stderr  # bad input, no internal error (that would be 1)
    payload = json.loads(res.stdout)
    errors = {Path(e["source"]).name: e["error"]["code"] for e in payload["errors"]}
    reports = {r["source"]["name"]: r for r in payload["reports"]}
    assert errors == {c.name: c.code for c in CASES if c.code is not None}
    assert set(reports) == {c.name for c in CASES if c.code is None} | {"good.png"}
    for case in CASES:
        if case.code is None:
            report = reports[case.name]
            assert case.warning in {w.split(":", 1)[0] for w in report["warnings"]}, report["warnings"]
            assert report["label"] != "authentic"  # missing evidence never reads as authentic
    assert elapsed < SECONDS * 4
    assert "internal error" not in res.stderr


def test_verdict_follows_content_not_name(corpus: dict[str, Path], tmp_path: Path) -> None:
    """The same bytes under three names give the same error (it used to depend on the name)."""
    names = ["drawing.svg", "drawing_named.png", "archive_named.jpg", "zero_frames.avi"]
    files = []
    for i, name in enumerate(names):
        for alias in ("as.png", "as.mp4", "no_extension"):
            files.append(tmp_path / f"{i}_{alias}")
            files[-1].write_bytes(corpus[name].read_bytes())
    res = run("analyze", "--json", *map(str, files), timeout=SECONDS * 4)
    assert res.returncode == 2, res.stderr
    got = {Path(e["source"]).name: e["error"]["code"] for e in json.loads(res.stdout)["errors"]}
    assert got == {f.name: BY_NAME[names[int(f.name[0])]].code for f in files}


def test_folder_keeps_media_by_content(tmp_path: Path) -> None:
    from veracity.cli.common import expand_inputs

    (tmp_path / "clip.bin").write_bytes(png_bytes(2))  # media under a foreign extension
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / "photo.png").write_bytes(png_bytes(3))
    assert [p.name for p in expand_inputs([tmp_path])] == ["clip.bin", "photo.png"]


@pytest.mark.parametrize("name", ["bomb_30000.png", "bomb_65500.jpg"])
def test_verify_on_a_decompression_bomb_is_media_too_large(corpus: dict[str, Path], name: str) -> None:
    res = run("verify", "--json", str(corpus[name]), timeout=SECONDS * 2)
    assert res.returncode == 2, res.stderr
    assert json.loads(res.stdout)["error"]["code"] == "media_too_large"
