"""train/heldout: in-sample scores of learned detectors never reach the fusion fit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

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
    assert path == heldout.table_path(tmp_path, "synthetic_image-v2")  # one table per card
    assert heldout.load(tmp_path, "synthetic_image-v2", "sha1") == t
    assert heldout.load(tmp_path, "synthetic_image-v2", "other-weights") is None
    assert heldout.load(tmp_path, "face_artifacts-v4") is None


def test_a_table_limited_to_its_cards_kinds_leaves_other_kinds_alone() -> None:
    table = heldout.HeldOut("synthetic_speech", "synthetic_speech-audio-v1", "abc",
                            trained_on=frozenset({"train/a.wav", "train/v.mp4"}), scores={"train/a.wav": 0.3},
                            kinds=frozenset({"audio"}))
    video = replace(_record("train/v.mp4", 0, synthetic_speech=0.7), kind="video")
    out, counts = heldout.apply([_record("train/a.wav", 1, synthetic_speech=0.99), video],
                                {"synthetic_speech": table})
    assert out[0].detectors["synthetic_speech"].score == 0.3
    assert out[1] is video  # scored by another head, which this table does not describe
    assert counts == {"synthetic_speech": {"replaced": 1, "other_head": 1}}
    assert "kinds" not in table.to_json()  # derived from the registry, never stored


def test_a_detector_with_a_card_per_kind_takes_its_kind_cards_table(tmp_path: Path) -> None:
    from veracity.detectors.registry import DetectorSpec
    from veracity.train import fusion

    spec = DetectorSpec("synthetic_speech", "m:C", "", "", "", {}, {}, 0.0, card="synthetic_speech-v2",
                        kind_cards={"audio": "synthetic_speech-audio-v1"}, held_out_scores=True)
    shas = {"synthetic_speech-v2": "video-sha", "synthetic_speech-audio-v1": "audio-sha"}
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(heldout, "card_sha", shas.__getitem__)
        assert fusion.kind_card_table(spec, tmp_path, lines.append) is None  # no tables at all
        heldout.save(heldout.HeldOut("synthetic_speech", "synthetic_speech-v2", "video-sha",
                                     frozenset({"train/a.wav"})), tmp_path)
        got = fusion.kind_card_table(spec, tmp_path, lines.append)
        assert got is not None and got.card == "synthetic_speech-v2" and got.kinds == {"image", "video"}
        heldout.save(heldout.HeldOut("synthetic_speech", "synthetic_speech-audio-v1", "stale",
                                     frozenset({"train/a.wav"})), tmp_path)
        got = fusion.kind_card_table(spec, tmp_path, lines.append)
        assert got is not None and got.card == "synthetic_speech-v2"  # the audio table is for other weights
        heldout.save(heldout.HeldOut("synthetic_speech", "synthetic_speech-audio-v1", "audio-sha",
                                     frozenset({"train/a.wav"}), {"train/a.wav": 0.4}), tmp_path)
        got = fusion.kind_card_table(spec, tmp_path, lines.append)
    assert got is not None and got.card == "synthetic_speech-audio-v1" and got.kinds == {"audio"}
    assert got.scores == {"train/a.wav": 0.4}
    assert any("no held-out table for synthetic_speech-audio-v1" in line for line in lines)


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
