"""train/heldout: in-sample scores of learned detectors never reach the fusion fit."""

from __future__ import annotations

from pathlib import Path

from veracity.evaluation.runner import DetectorScore, Record
from veracity.train import heldout


def _record(rel: str, label: int, **scores: float) -> Record:
    return Record(rel=rel, label=label, source="s", method="m", kind="audio",
                  detectors={n: DetectorScore(score=v, confidence=0.9) for n, v in scores.items()})


def test_apply_replaces_withdraws_and_keeps() -> None:
    table = heldout.HeldOut("synthetic_speech", "synthetic_speech-v2", "abc",
                            trained_on=frozenset({"train/a.wav", "train/b.wav"}), scores={"train/a.wav": 0.3})
    recs = [_record("train/a.wav", 1, synthetic_speech=0.99, spectral=0.4),
            _record("train/b.wav", 0, synthetic_speech=0.01),
            _record("train/c.wav", 0, synthetic_speech=0.2)]
    out, counts = heldout.apply(recs, {"synthetic_speech": table})
    assert out[0].detectors["synthetic_speech"].score == 0.3
    assert out[0].detectors["spectral"].score == 0.4  # not a learned detector: untouched
    assert out[1].detectors["synthetic_speech"].score is None
    assert out[1].detectors["synthetic_speech"].not_applicable == heldout.IN_SAMPLE
    assert out[2] is recs[2]
    assert counts == {"synthetic_speech": {"replaced": 1, "withdrawn": 1, "kept": 1}}


def test_no_table_withdraws_every_score() -> None:
    out, counts = heldout.apply([_record("train/x.jpg", 1, face_artifacts=0.8)], {"face_artifacts": None})
    assert out[0].detectors["face_artifacts"].score is None
    assert counts["face_artifacts"] == {"withdrawn": 1}


def test_round_trip_and_stale_sha(tmp_path: Path) -> None:
    t = heldout.HeldOut("synthetic_image", "synthetic_image-v2", "sha1", frozenset({"train/i.png"}),
                        {"train/i.png": 0.25})
    path = heldout.save(t, tmp_path)
    assert path == heldout.table_path(tmp_path, "synthetic_image")
    assert heldout.load(tmp_path, "synthetic_image", "sha1") == t
    assert heldout.load(tmp_path, "synthetic_image", "other-weights") is None
    assert heldout.load(tmp_path, "face_artifacts") is None


def test_base_rel_strips_crop_and_frame_suffixes() -> None:
    assert heldout.base_rel("train/v/x__panel1of2.mp4@1.50#left") == "train/v/x__panel1of2.mp4"
    assert heldout.base_rel("train/video_real/a.mp4#2") == "train/video_real/a.mp4"
    assert heldout.base_rel("train/faces_real/u/1.jpg") == "train/faces_real/u/1.jpg"


def test_panel_rel_files_each_half_under_its_label() -> None:
    from veracity.train.data import panel_rel

    comp = "train/video/fake/deepfacelive_A_B_0.mp4"
    assert panel_rel(comp, "train", 0, 2, "real") == "train/video/real/deepfacelive_A_B_0__panel1of2.mp4"
    assert panel_rel(comp, "train", 1, 2, "fake") == "train/video/fake/deepfacelive_A_B_0__panel2of2.mp4"


def test_learned_detectors_are_declared_by_their_specs() -> None:
    from veracity.detectors import registry

    assert heldout.learned() == ("face_artifacts", "synthetic_image", "synthetic_speech")
    for name in heldout.learned():  # a table is keyed by the card and written by the trainer
        spec = registry.spec(name)
        assert spec.card is not None and spec.trainer is not None
