"""The CLI end to end, through a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from tests.synth import make_video

from veracity.report.model import Report

SCHEMA = Report.model_json_schema()


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "veracity.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_version() -> None:
    res = run("--version")
    assert res.returncode == 0
    assert res.stdout.startswith("veracity ")


def test_analyze_json_validates_against_schema(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=2.0)
    res = run("analyze", str(clip), "--json", "--report", str(tmp_path / "r.html"))
    assert res.returncode == 0, res.stderr
    payload = json.loads(res.stdout)
    jsonschema.validate(payload, SCHEMA)
    assert payload["source"]["name"] == "clip.mp4"
    assert payload["media"]["kind"] == "video"
    # A gradient has no face: face detectors do not apply and say why; nothing is guessed.
    by_name = {d["name"]: d for d in payload["detectors"]}
    assert by_name["av_sync"]["applied"] is False
    assert by_name["av_sync"]["not_applicable"] == "no_face"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    res = run("analyze", str(bad))
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert "unsupported_media" in lines[0] and "notes.mp4" in lines[0]


def test_batch_goes_on_after_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    make_video(folder / "a.mp4", seconds=1.0)
    (folder / "b.mp4").write_bytes(b"")
    (folder / "README.txt").write_text("ignored: not a media extension")
    res = run("analyze", str(folder), "--json", "--report", str(tmp_path / "html"))
    assert res.returncode == 2
    payload = json.loads(res.stdout)
    assert [r["source"]["name"] for r in payload["reports"]] == ["a.mp4"]
    assert [e["error"]["code"] for e in payload["errors"]] == ["corrupt_media"]
    assert (tmp_path / "html" / "a.mp4.html").is_file()


def test_unknown_detector_is_a_usage_error(tmp_path: Path) -> None:
    res = run("analyze", str(tmp_path), "--detectors", "nope")
    assert res.returncode == 2
    assert "unknown detector" in res.stderr


def test_models_lists_every_detector() -> None:
    res = run("models", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert {r["name"] for r in rows} >= {"av_sync", "physiology", "temporal", "spectral"}


def test_schema_command_matches_model() -> None:
    res = run("schema")
    assert res.returncode == 0
    assert json.loads(res.stdout) == SCHEMA


@pytest.mark.parametrize("missing", ["nope.mp4"])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    res = run("analyze", str(tmp_path / missing))
    assert res.returncode == 2
    assert "not_found" in res.stderr
