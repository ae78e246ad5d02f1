"""`veracity train fusion`: train files only, composites skipped, capped; records cached
incrementally; the fit writes a versioned file that records its data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from veracity.evaluation import runner
from veracity.evaluation.dataset import LabelledItem
from veracity.evaluation.runner import DetectorScore, Record, latest_records, run_cached, save_records
from veracity.fusion import FusionParams
from veracity.train.data import is_composite
from veracity.train.fusion import cv_group, select_items, train_fusion

COLUMNS = ("path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path", "license", "notes")


def _manifest(root: Path, rows: list[dict[str, str]]) -> None:
    lines = ["\t".join(COLUMNS)]
    for r in rows:
        lines.append("\t".join(r.get(c, "") for c in COLUMNS))
        (root / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        (root / r["path"]).write_bytes(b"x")
    (root / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")


def _row(path: str, split: str, label: str, kind: str, repo: str = "o/r", detail: str = "", notes: str = "") -> dict[
        str, str]:
    return {"path": path, "split": split, "label": label, "kind": kind, "source_repo": repo, "detail": detail,
            "notes": notes}


def test_select_items_train_only_composites_skipped_capped(tmp_path: Path) -> None:
    rows = [
        _row("train/video/fake/dfl_A_0.mp4", "train", "fake", "video", "iperov/DeepFaceLive", "SIDE-BY-SIDE composite"),
        _row("train/video/real/dfl_A_0__panel1of2.mp4", "train", "real", "video", "iperov/DeepFaceLive",
             "left half; cut from the composite train/video/fake/dfl_A_0.mp4"),
        _row("train/video/fake/dfl_A_0__panel2of2.mp4", "train", "fake", "video", "iperov/DeepFaceLive",
             "right half; cut from the composite train/video/fake/dfl_A_0.mp4"),
        _row("eval/video/fake/x.mp4", "eval", "fake", "video"),
        *[_row(f"train/image/real/{i}.jpg", "train", "real", "image") for i in range(9)],
        _row("train/image/c2pa/c.jpg", "train", "c2pa", "image"),
    ]
    _manifest(tmp_path, rows)
    items = select_items([tmp_path], "train", per_group={"video": 10, "image": 4}, seed=0)
    rels = [i.rel for i in items]
    assert "train/video/fake/dfl_A_0.mp4" not in rels  # the whole composite
    assert "train/video/fake/dfl_A_0__panel2of2.mp4" in rels and "train/video/real/dfl_A_0__panel1of2.mp4" in rels
    assert all(r.startswith("train/") for r in rels)
    assert Counter(i.kind for i in items)["image"] == 4
    assert rels == [i.rel for i in select_items([tmp_path], "train", per_group={"video": 10, "image": 4}, seed=0)]
    assert is_composite(rows[0]) and not is_composite(rows[1])


def test_panels_of_one_composite_share_a_cv_group() -> None:
    a = Record(rel="train/video/real/deepfacelive_A_B_0__panel1of2.mp4", label=0, source="iperov/DeepFaceLive",
               method="real", kind="video")
    b = Record(rel="train/video/fake/deepfacelive_A_B_1__panel2of2.mp4", label=1, source="iperov/DeepFaceLive",
               method="m", kind="video")
    c = Record(rel="train/image/real/x.jpg", label=0, source="o/r", method="real", kind="image")
    assert cv_group(a) == cv_group(b) == "iperov/DeepFaceLive:deepfacelive_A_B"
    assert cv_group(c) == "o/r"


def test_run_cached_analyses_only_what_is_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(_analyzer: object, item: LabelledItem, _options: object) -> Record:
        calls.append(item.rel)
        return Record(rel=item.rel, label=item.y, source=item.source, method=item.method, kind="image",
                      detectors={"d": DetectorScore(score=0.5, confidence=0.5)}, key=str(item.path.resolve()))

    monkeypatch.setattr(runner, "_analyse_one", fake)
    monkeypatch.setattr(runner, "detector_fingerprints", lambda: {"d": "1"})
    items = []
    for i in range(3):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(b"x")
        items.append(LabelledItem(path=p, rel=f"{i}.jpg", label="real", kind="image"))
    cache = tmp_path / "cache.jsonl"
    first = run_cached(items[:2], cache)
    assert calls == ["0.jpg", "1.jpg"] and len(first) == 2
    with cache.open("a") as fh:
        fh.write('{"rel": "torn')  # a killed writer's last line
    again = run_cached(items, cache)
    assert calls == ["0.jpg", "1.jpg", "2.jpg"]  # only the new file
    assert [r.rel for r in again] == ["0.jpg", "1.jpg", "2.jpg"] and all(r.versions == {"d": "1"} for r in again)
    monkeypatch.setattr(runner, "detector_fingerprints", lambda: {"d": "2"})  # a retrained detector
    run_cached(items, cache)
    assert calls[3:] == ["0.jpg", "1.jpg", "2.jpg"]
    latest = latest_records(cache)  # the cache holds both analyses; the last one per file counts
    assert len(latest) == 3 and all(r.versions == {"d": "2"} for r in latest)


def test_run_cached_reruns_only_the_retrained_detector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, tuple[str, ...] | None]] = []

    def fake(_analyzer: object, item: LabelledItem, options: object) -> Record:
        wanted = getattr(options, "detectors", None)
        calls.append((item.rel, wanted))
        v = 0.9 if wanted else 0.1
        dets = {n: DetectorScore(score=v, confidence=0.5) for n in (wanted or ("a", "b"))}
        return Record(rel=item.rel, label=item.y, source=item.source, method=item.method, kind="image",
                      detectors=dets, key=str(item.path.resolve()))

    monkeypatch.setattr(runner, "_analyse_one", fake)
    monkeypatch.setattr(runner, "detector_fingerprints", lambda: {"a": "1", "b": "1"})
    p = tmp_path / "0.jpg"
    p.write_bytes(b"x")
    items = [LabelledItem(path=p, rel="0.jpg", label="real", kind="image")]
    cache = tmp_path / "cache.jsonl"
    run_cached(items, cache)
    monkeypatch.setattr(runner, "detector_fingerprints", lambda: {"a": "1", "b": "2"})  # b retrained
    (got,) = run_cached(items, cache)
    assert calls == [("0.jpg", None), ("0.jpg", ("b",))]
    assert got.detectors["a"].score == 0.1 and got.detectors["b"].score == 0.9
    assert got.versions == {"a": "1", "b": "2"}
    (again,) = run_cached(items, cache)  # nothing left to do
    assert len(calls) == 2 and again.detectors == got.detectors


def _records(kind: str, n: int, seed: int, noise: float = 0.15) -> list[Record]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = i % 2
        s = float(np.clip(0.3 + 0.4 * y + rng.normal(0, noise), 0.01, 0.99))
        out.append(Record(rel=f"{'train' if seed == 0 else 'eval'}/{kind}/{i}", label=y, source=f"s{i % 4}",
                          method="m" if y else "real", kind=kind,
                          detectors={"face_artifacts": DetectorScore(score=s, confidence=0.7)}))
    return out


def test_refit_from_saved_records_writes_a_versioned_file(tmp_path: Path) -> None:
    save_records(_records("video", 60, 0), tmp_path / "train.jsonl")
    save_records(_records("video", 40, 1), tmp_path / "eval.jsonl")
    out = tmp_path / "fusion-test.json"
    params = train_fusion([tmp_path], version="fusion-test", records_path=tmp_path / "train.jsonl",
                          reuse_records=True, eval_records=tmp_path / "eval.jsonl", out=out)
    loaded = FusionParams.model_validate_json(out.read_text())
    assert loaded == params and loaded.version == "fusion-test"
    fit = loaded.fit
    assert fit["data"]["split"] == "train" and fit["data"]["kinds"]["video"]["n_real"] == 30
    assert fit["kinds"]["video"]["cv"]["auc"] > 0.7
    comp = fit["eval_comparison"]
    assert comp["per_kind"]["video"]["new"]["auc"] is not None
    assert comp["became_default"] is False  # --out never touches the packaged default
    d = loaded.kinds["video"].detectors["face_artifacts"]
    assert d.proven and d.auc_eval is not None and d.n_eval == 40
    assert json.loads(out.read_text())["kinds"]["video"]["reference"]["fused"]


def test_reviews_are_added_and_recorded(tmp_path: Path) -> None:
    save_records(_records("video", 60, 0), tmp_path / "train.jsonl")
    reviews = tmp_path / "reviews.jsonl"
    rows = [{"job_id": f"j{i}", "sha256": f"{i:064x}", "media_kind": "video", "target": i % 2,
             "detectors": {"face_artifacts": {"score": 0.2 + 0.6 * (i % 2), "confidence": 0.7, "applied": True}}}
            for i in range(10)]
    reviews.write_text("".join(json.dumps(r) + "\n" for r in rows))
    params = train_fusion([tmp_path], records_path=tmp_path / "train.jsonl", reuse_records=True, reviews=reviews,
                          out=tmp_path / "f.json")
    assert params.fit["reviews"] == {"file": str(reviews), "n": 10}
    assert params.fit["kinds"]["video"]["n_files"] == 70


def test_reuse_refuses_eval_records_as_train(tmp_path: Path) -> None:
    save_records(_records("video", 20, 1), tmp_path / "train.jsonl")
    from veracity.errors import ConfigError

    with pytest.raises(ConfigError, match="eval"):
        train_fusion([tmp_path], records_path=tmp_path / "train.jsonl", reuse_records=True, out=tmp_path / "x.json")


@pytest.mark.realdata
def test_select_items_on_shared_data(shared_data: Path) -> None:
    items = select_items([shared_data], "train", per_group={"image": 5, "video": 5, "audio": 5}, seed=0)
    assert items and all(i.rel.startswith("train/") for i in items)
    assert {i.label for i in items} == {"real", "fake"}


def test_cli_refits_from_records(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "MANIFEST.tsv").write_text("\t".join(COLUMNS) + "\n")
    save_records(_records("video", 60, 0), tmp_path / "train.jsonl")
    save_records(_records("video", 40, 1), tmp_path / "eval.jsonl")
    out = tmp_path / "fusion-cli.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    res = subprocess.run([sys.executable, "-m", "veracity.cli", "train", "fusion", "--data", str(tmp_path), "--records",
                          str(tmp_path / "train.jsonl"), "--eval-records", str(tmp_path / "eval.jsonl"), "--reuse",
                          "--out", str(out), "--json"], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["trained"] == "fusion" and body["fusion"]["kinds"]["video"]["detectors"]["face_artifacts"]["weight"] > 0
    assert FusionParams.model_validate_json(out.read_text()).fit["eval_comparison"]["per_kind"]["video"]
    bad = subprocess.run([sys.executable, "-m", "veracity.cli", "train", "fusion", "--data", str(tmp_path),
                          "--calibration", "spline", "--reuse"], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert bad.returncode == 2 and "platt or isotonic" in bad.stderr


def test_kinds_that_do_not_win_keep_the_current_fitted_rule(tmp_path: Path) -> None:
    from veracity.fusion.fuse import default_name

    # A clearly separating detector: the refit wins video (with the default noise, 2 of the 20 eval
    # fakes fall below the authentic threshold, and the gate refuses it, as tested below).
    save_records(_records("video", 60, 0, noise=0.08), tmp_path / "train.jsonl")
    save_records(_records("video", 40, 1, noise=0.08), tmp_path / "eval.jsonl")
    current = FusionParams.load(default_name())
    params = train_fusion([tmp_path], version="fusion-test", records_path=tmp_path / "train.jsonl",
                          reuse_records=True, eval_records=tmp_path / "eval.jsonl", out=tmp_path / "f.json")
    comp = params.fit["eval_comparison"]
    assert comp["kinds_won"] == ["video"]
    for kind in set(current.kinds) - {"video"}:  # e.g. audio: not refitted here, so not dropped to legacy
        assert params.kinds[kind] == current.kinds[kind]
    assert comp["kinds_kept_from_current"] == sorted(set(current.kinds) - {"video"})


def test_a_fit_on_in_sample_detector_scores_never_wins(tmp_path: Path) -> None:
    save_records(_records("video", 60, 0, noise=0.08), tmp_path / "train.jsonl")  # would win (test above) ...
    save_records(_records("video", 40, 1, noise=0.08), tmp_path / "eval.jsonl")
    params = train_fusion([tmp_path], version="fusion-test", records_path=tmp_path / "train.jsonl",
                          reuse_records=True, eval_records=tmp_path / "eval.jsonl", out=tmp_path / "f.json",
                          held_out={})  # ... but no learned detector has a held-out table
    comp = params.fit["eval_comparison"]
    assert comp["kinds_won"] == [] and not comp["beats_current"]
    assert "in-sample" in comp["why_per_kind"]["video"] and "face_artifacts" in comp["why_per_kind"]["video"]
    assert "face_artifacts" in params.fit["held_out"]["missing"]


def test_a_missing_table_counts_only_on_the_kinds_the_detector_was_trained_on() -> None:
    from veracity.train.fusion_fit import in_sample_kinds, refuse_in_sample

    def rec(rel: str, kind: str, source: str) -> Record:
        return Record(rel=rel, label=1, source=source, method="m", kind=kind)

    records = [rec("train/audio/fake/a.wav", "audio", "Edresson/YourTTS"),
               rec("train/audio_real/libritts/b.wav", "audio", "LibriTTS"),
               rec("train/video_fake/made_voice/c.mp4", "video", "local/made-voice-world")]
    groups = {"synthetic_speech": {"train/audio/fake/Edresson/YourTTS"}, "other": {"*"}}
    kinds = in_sample_kinds(records, groups)
    assert kinds == {"synthetic_speech": {"audio"}, "other": {"audio", "video"}}

    params = FusionParams.load("fusion-v3")
    weighted = next(k for k, m in params.kinds.items() if any(d.weight > 0 for d in m.detectors.values()))
    name = next(n for n, d in params.kinds[weighted].detectors.items() if d.weight > 0)
    won = {"kinds_won": [weighted], "why_per_kind": {}, "beats_current": True}
    # trained on another kind only: its scores on this kind are out-of-sample, the kind stays won
    kept = refuse_in_sample(won, params, [name], {name: {"image" if weighted != "image" else "audio"}})
    assert kept["kinds_won"] == [weighted]
    # trained on this kind, or nothing known: taken back
    assert refuse_in_sample(won, params, [name], {name: {weighted}})["kinds_won"] == []
    assert refuse_in_sample(won, params, [name])["kinds_won"] == []


def test_dubs_of_a_trained_clip_count_as_trained_for_the_face_detector(tmp_path: Path) -> None:
    from veracity.train.fusion import sound_only_copies
    from veracity.train.speech_fakes import write_manifest

    common = {"split": "train", "kind": "video", "commit": "", "license": "", "detail": "", "notes": ""}
    rows = [
        {**common, "path": "train/video_fake/made_tts/a.mp4", "label": "fake", "source_repo": "local/made-tts-flite",
         "source_path": "train/video_real/a.mp4"},
        {**common, "path": "train/video_twin/made_tts/a.mp4", "label": "real", "source_repo": "local/made-tts-flite",
         "source_path": "train/video_real/a.mp4"},
        {**common, "path": "train/video_fake/made_voice/b.mp4", "label": "fake", "source_repo": "local/made-voice",
         "source_path": "train/video_real/b.mp4"},  # b was held out: its dub stays out of sample
        {**common, "path": "train/video_fake/made_lipsync/a.mp4", "label": "fake", "source_repo": "local/made-lipsync",
         "source_path": "train/video_real/a.mp4"},  # a face fake: the crop cache itself says
    ]
    write_manifest(tmp_path / "made", rows)
    got = sound_only_copies([tmp_path / "made", tmp_path / "no-manifest"], {"train/video_real/a.mp4"})
    assert got == {"train/video_fake/made_tts/a.mp4", "train/video_twin/made_tts/a.mp4"}


def test_fingerprints_hash_every_card_a_detector_loads() -> None:
    import hashlib
    from importlib import resources

    from veracity.detectors import registry

    prints = runner.detector_fingerprints()
    data = resources.files("veracity.models").joinpath("data")

    def sha(*cards: str) -> str:
        h = hashlib.sha256()
        for c in cards:
            h.update(data.joinpath(f"{c}.json").read_bytes())
        return h.hexdigest()[:16]

    face = registry.spec("face_artifacts")
    assert face.card is not None and prints["face_artifacts"].endswith("+" + sha(face.card))  # one card: its hash
    speech = registry.spec("synthetic_speech")
    assert len(speech.cards()) == 2  # a retrained audio head re-runs the detector on cached records
    assert prints["synthetic_speech"].endswith("+" + sha(*speech.cards()))
    assert sha(*speech.cards()) != sha(speech.cards()[0])


def test_a_refit_that_calls_more_fakes_authentic_does_not_win(tmp_path: Path) -> None:
    save_records(_records("video", 60, 0), tmp_path / "train.jsonl")
    save_records(_records("video", 40, 1), tmp_path / "eval.jsonl")
    params = train_fusion([tmp_path], version="fusion-test", records_path=tmp_path / "train.jsonl",
                          reuse_records=True, eval_records=tmp_path / "eval.jsonl", out=tmp_path / "f.json")
    th = params.kinds["video"].thresholds
    assert th.authentic is not None and 0 < th.authentic <= th.suspicious and th.target_fnr_authentic == 0.05
    assert th.train_fnr_authentic is not None and th.train_fnr_authentic <= 0.05  # on the train side, by construction
    comp = params.fit["eval_comparison"]
    new = comp["per_kind"]["video"]["new"]
    assert new["fake_labelled_authentic"] == 0.1  # 2 of the 20 eval fakes
    assert comp["why_per_kind"]["video"] == "labels 10.0% of fakes authentic (limit 5.0%)"
    assert "video" not in comp["kinds_won"]
