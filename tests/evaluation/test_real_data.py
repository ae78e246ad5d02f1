"""The harness on a few files of ../shared/data/eval (measurement only, never training)."""

from __future__ import annotations

from pathlib import Path

import pytest

from veracity.config import Options
from veracity.evaluation.dataset import read_manifest
from veracity.evaluation.runner import run_set
from veracity.evaluation.summary import FUSED, summarise

pytestmark = pytest.mark.realdata


def test_eval_images_through_face_artifacts(shared_data: Path) -> None:
    items = read_manifest(shared_data / "MANIFEST.tsv", split="eval", kinds=("image",), prefixes=("eval/image/",))
    reals = [i for i in items if i.label == "real"][:2]
    fakes = [i for i in items if i.label == "fake"][:2]
    assert len(reals) == 2 and len(fakes) == 2
    records = run_set(reals + fakes, options=Options(detectors=("face_artifacts", "spectral")))
    assert [r.rel for r in records] == [i.rel for i in reals + fakes]
    assert all(r.error is None for r in records)
    applied = [r for r in records if r.detectors["face_artifacts"].score is not None]
    assert applied, "face photos must get a face_artifacts score"
    for r in applied:
        assert 0.0 <= (r.detectors["face_artifacts"].score or 0.0) <= 1.0
    s = summarise(records, fused_threshold=0.45)
    assert s["n_real"] == 2 and s["n_fake"] == 2
    assert s["scores"][FUSED]["n"] == 4
    fa = s["scores"]["face_artifacts"]
    assert fa["n"] == len(applied) and set(fa["per_source"]) <= {i.source for i in reals + fakes}
