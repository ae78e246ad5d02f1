"""ClipEncoder's parallel batch-1 runs give the very embeddings of the one-after-the-other runs,
in input order (a stand-in ONNX graph with the encoder's input and output names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veracity.config import AnalysisSettings
from veracity.models.clip import EMBED_DIM, ClipEncoder


def _stand_in(path: Path) -> Path:
    """pixel_values [N, 3, 224, 224] -> image_embeds [N, 512]: a fixed projection of a nonlinear
    pooling, so every image gets a different, order-revealing embedding."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(3 * 16, EMBED_DIM)).astype(np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Tanh", ["pixel_values"], ["t"]),
            helper.make_node("AveragePool", ["t"], ["p"], kernel_shape=[56, 56], strides=[56, 56]),
            helper.make_node("Flatten", ["p"], ["f"], axis=1),
            helper.make_node("MatMul", ["f", "w"], ["image_embeds"]),
        ],
        "stand_in_clip",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("image_embeds", TensorProto.FLOAT, ["batch", EMBED_DIM])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_parallel_runs_equal_sequential_runs_in_order(tmp_path: Path) -> None:
    path = _stand_in(tmp_path / "clip.onnx")
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (224 + 7 * i, 240, 3), dtype=np.uint8) for i in range(7)]
    one = ClipEncoder(path, threads=1).embed(images)
    side_by_side = ClipEncoder(path, threads=1, parallel=3).embed(images)
    assert one.shape == (7, EMBED_DIM)
    assert np.array_equal(one, side_by_side)
    assert len({row.tobytes() for row in one}) == 7  # distinct rows: a reordering would show


def test_crop_threads_setting_defaults_to_two_and_floors_at_one() -> None:
    assert AnalysisSettings().crop_threads == 2
    assert AnalysisSettings(crop_threads=0).crop_threads == 1  # like every thread count here
