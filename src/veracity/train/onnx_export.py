"""ONNX files we commit: float32 initialisers stored as float16 with a Cast back in the graph.

Why: the committed file is half the size (a 6.7 MB face model instead of 13 MB) while the
arithmetic stays float32, so onnxruntime's CPU kernels and our scores are unchanged up to the
rounding of the weights. Small tensors (biases, shapes) are left alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def halve_weights(src: Path, out: Path) -> None:
    """Write ``src`` to ``out`` with its large float32 initialisers as float16 (+ Cast), checked,
    atomically; ``src`` is removed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 256:
            half = numpy_helper.from_array(arr.astype(np.float16), name=init.name + "_fp16")
            kept.append(half)
            casts.append(onnx.helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                               name=init.name + "_cast"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    model.producer_name = "veracity"
    onnx.checker.check_model(model)
    part = out.with_suffix(".part.onnx")
    onnx.save(model, str(part))
    part.replace(out)
    src.unlink()
