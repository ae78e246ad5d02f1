"""``veracity train data materialize`` on a tiny bare git repository the test builds itself: a
good blob, a row whose blob id is wrong, a row whose mirror is missing, incremental re-runs,
and the panels of a side-by-side composite. No network."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.synth import make_video

from veracity.train.common import group_of, list_items
from veracity.train.data import COLUMNS, blob_id, is_composite, materialize

GOOD = b"RIFF....WAVEfmt not really audio, just bytes with a blob id\n"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _mirror(tmp: Path, files: dict[str, bytes]) -> tuple[Path, str]:
    """``mirrors/owner+demo/repo``: a bare clone of a one-commit repository holding ``files``."""
    work = tmp / "work"
    work.mkdir()
    _git("init", "-q", cwd=work)
    for name, data in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    _git("add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "files", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work)
    mirrors = tmp / "mirrors"
    (mirrors / "owner+demo").mkdir(parents=True)
    _git("clone", "-q", "--bare", str(work), str(mirrors / "owner+demo" / "repo"), cwd=tmp)
    return mirrors, commit


def _row(path: str, repo: str, commit: str, source: str, oid: str, *, split: str = "train", label: str = "fake",
         kind: str = "audio", detail: str = "demo", notes: str = "") -> dict[str, str]:
    return {"path": path, "split": split, "label": label, "detail": detail, "kind": kind, "source_repo": repo,
            "commit": commit, "source_path": source, "license": "MIT",
            "notes": f"{notes}; git-blob {oid}" if notes else f"git-blob {oid}"}


def _write_sources(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(COLUMNS), delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    return path


def test_blob_id_matches_git(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(GOOD)
    assert blob_id(GOOD) == _git("hash-object", "f", cwd=tmp_path)


def test_materialize_good_wrong_and_missing(tmp_path: Path) -> None:
    mirrors, commit = _mirror(tmp_path, {"samples/a.wav": GOOD})
    good = blob_id(GOOD)
    sources = _write_sources(tmp_path / "SOURCES.tsv", [
        _row("train/audio/fake/a.wav", "owner/demo", commit, "samples/a.wav", good),
        _row("eval/audio/fake/b.wav", "owner/demo", commit, "samples/b.wav", "0" * 40, split="eval"),
        _row("train/audio/real/c.wav", "other/absent", commit, "c.wav", good, label="real"),
    ])
    out = tmp_path / "out"
    ticks: list[int] = []
    result = materialize(sources, out, mirrors=mirrors, progress=lambda done, total, rel: ticks.append(done))

    assert (out / "train/audio/fake/a.wav").read_bytes() == GOOD
    assert not (out / "eval/audio/fake/b.wav").exists()
    assert not (out / "train/audio/real/c.wav").exists()
    assert result.new == 1 and result.kept == 0
    whys = {s.path: s.why for s in result.skipped}
    assert "not in the mirror" in whys["eval/audio/fake/b.wav"]
    assert "no mirror of other/absent" in whys["train/audio/real/c.wav"]
    assert ticks[-1] == 3
    with (out / "MANIFEST.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["path"] for r in rows] == ["train/audio/fake/a.wav"]
    assert tuple(rows[0]) == COLUMNS
    assert "skipped eval/audio/fake/b.wav" in result.text()

    again = materialize(sources, out, mirrors=mirrors)
    assert (again.new, again.kept) == (0, 1)

    (out / "train/audio/fake/a.wav").write_bytes(b"tampered")  # a changed file is written again
    third = materialize(sources, out, mirrors=mirrors)
    assert third.new == 1 and (out / "train/audio/fake/a.wav").read_bytes() == GOOD


def test_materialized_rows_feed_the_trainers(tmp_path: Path) -> None:
    mirrors, commit = _mirror(tmp_path, {"a.wav": GOOD})
    sources = _write_sources(tmp_path / "SOURCES.tsv", [
        _row("train/audio/fake/a.wav", "owner/demo", commit, "a.wav", blob_id(GOOD))])
    out = tmp_path / "out"
    materialize(sources, out, mirrors=mirrors)
    items = list_items([out], "train", (), (".wav",), print, kinds=("audio",))
    assert [(i.rel, i.label, i.group) for i in items] == [("train/audio/fake/a.wav", 1, "train/audio/fake/owner/demo")]
    assert group_of({"path": "train/audio_fake/hifigan/x.wav", "split": "train", "source_repo": "r"}) \
        == "train/audio_fake/hifigan"


def test_rows_that_leave_the_output_folder_are_skipped(tmp_path: Path) -> None:
    mirrors, commit = _mirror(tmp_path, {"a.wav": GOOD})
    sources = _write_sources(tmp_path / "SOURCES.tsv", [
        _row("../escape.wav", "owner/demo", commit, "a.wav", blob_id(GOOD))])
    result = materialize(sources, tmp_path / "out", mirrors=mirrors)
    assert not (tmp_path / "escape.wav").exists()
    assert "leaves the output folder" in result.skipped[0].why


def test_composite_panels_are_cut(tmp_path: Path) -> None:
    """A DeepFaceLive-style composite (left real | right fake) also gives two panel clips with
    rows of their own; the whole composite stays listed and is recognisable as one."""
    clip = make_video(tmp_path / "clip.mp4", size=(224, 64), seconds=1.0, fps=10)  # two wide halves, not 3
    data = clip.read_bytes()
    mirrors, commit = _mirror(tmp_path, {"demo.mp4": data})
    rows = [_row("train/video/fake/dfl_demo.mp4", "iperov/DeepFaceLive", commit, "demo.mp4", blob_id(data),
                 kind="video", detail="SIDE-BY-SIDE composite", notes="composite: crop right half")]
    (mirrors / "iperov+DeepFaceLive").mkdir()
    (mirrors / "owner+demo" / "repo").rename(mirrors / "iperov+DeepFaceLive" / "repo")
    out = tmp_path / "out"
    result = materialize(_write_sources(tmp_path / "SOURCES.tsv", rows), out, mirrors=mirrors)
    with (out / "MANIFEST.tsv").open() as fh:
        listed = {r["path"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert result.halves == 2
    assert listed["train/video/real/dfl_demo__panel1of2.mp4"]["label"] == "real"
    assert listed["train/video/fake/dfl_demo__panel2of2.mp4"]["label"] == "fake"
    assert is_composite(listed["train/video/fake/dfl_demo.mp4"])
    assert not is_composite(listed["train/video/real/dfl_demo__panel1of2.mp4"])

    import av

    with av.open(str(out / "train/video/fake/dfl_demo__panel2of2.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert frames and frames[0].shape == (64, 112, 3)
    with av.open(str(clip)) as c:
        src = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    assert np.abs(frames[0].astype(int) - src[:, 112:].astype(int)).mean() < 12  # the right half, not the left

    (out / "train/video/real/dfl_demo__panel1of3.mp4").write_bytes(b"cut by an older layout")
    materialize(_write_sources(tmp_path / "SOURCES.tsv", rows), out, mirrors=mirrors)
    assert not (out / "train/video/real/dfl_demo__panel1of3.mp4").exists()  # stale panels are removed


@pytest.mark.slow
def test_cli_json_and_missing_sources(tmp_path: Path) -> None:
    mirrors, commit = _mirror(tmp_path, {"a.wav": GOOD})
    sources = _write_sources(tmp_path / "SOURCES.tsv", [
        _row("train/audio/fake/a.wav", "owner/demo", commit, "a.wav", blob_id(GOOD))])
    cmd = [sys.executable, "-m", "veracity.cli", "train", "data", "materialize"]
    done = subprocess.run([*cmd, str(sources), "--out", str(tmp_path / "o"), "--mirrors", str(mirrors), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["files"] == 1 and summary["by_split_kind_label"] == {"train/audio/fake": 1}
    missing = subprocess.run([*cmd, str(tmp_path / "nope.tsv")], capture_output=True, text=True, timeout=120,
                             check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
