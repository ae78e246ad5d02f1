"""Typed heatmaps: a detector hands over an RGB array, the report carries it as JPEG once, and
reports stored before the typed field (heatmaps as evidence lists) still load, typed."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from tests.reports import detector, image_b64, video_report

from veracity.detectors.base import DetectorResult, Heatmap
from veracity.report.images import heatmap_image, jpeg_b64
from veracity.report.model import Report


def test_a_heatmap_is_encoded_once_as_jpeg_with_where_and_when() -> None:
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = (255, 0, 0)
    out = heatmap_image(Heatmap(rgb, score=0.91234, t=1.23456, track_id=2))
    assert (out.track_id, out.t, out.score) == (2, 1.235, 0.9123)
    with Image.open(io.BytesIO(base64.b64decode(out.jpeg_b64))) as im:
        assert im.format == "JPEG" and im.size == (60, 40)
    with Image.open(io.BytesIO(base64.b64decode(jpeg_b64(rgb, size=16)))) as im:
        assert im.size == (16, 16)


@pytest.mark.parametrize("bad", [
    {"image": np.zeros((4, 4), np.uint8)},
    {"image": np.zeros((4, 4, 3), np.float32)},
    {"image": np.zeros((0, 4, 3), np.uint8)},
    {"image": np.zeros((4, 4, 3), np.uint8), "score": 1.5},
    {"image": np.zeros((4, 4, 3), np.uint8), "t": -1.0},
])
def test_a_malformed_heatmap_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="heatmap"):
        Heatmap(**bad)  # type: ignore[arg-type]


def test_results_carry_heatmaps_apart_from_evidence() -> None:
    h = Heatmap(np.zeros((8, 8, 3), np.uint8), score=0.8)
    r = DetectorResult(name="x", version="1", score=0.8, heatmaps=(h,), evidence={"n": 1})
    assert r.heatmaps == (h,) and dict(r.evidence) == {"n": 1}


def test_a_stored_report_with_heatmap_evidence_loads_typed() -> None:
    heat = image_b64()
    legacy = {"heatmap_jpeg_b64": [heat, heat, 7], "heatmap_track_ids": [0, True], "heatmap_t": [1.5, -2.0],
              "heatmap_scores": [0.93, 0.4], "heatmap_cells": [0.1, 0.2], "n_crops": 4}
    data = json.loads(video_report(detectors=[detector("face_artifacts", 0.9)]).model_dump_json())
    del data["detectors"][0]["heatmaps"]  # as stored before the field existed
    data["detectors"][0]["evidence"] = legacy
    report = Report.model_validate_json(json.dumps(data))
    (d,) = report.detectors
    assert d.evidence == {"n_crops": 4}
    assert [(h.jpeg_b64, h.track_id, h.t, h.score) for h in d.heatmaps] == [(heat, 0, 1.5, 0.93),
                                                                              (heat, None, None, 0.4)]
    assert Report.model_validate_json(report.model_dump_json()) == report  # new reports round-trip as they are
