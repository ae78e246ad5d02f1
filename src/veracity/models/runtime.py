"""ONNX Runtime sessions with the thread count set explicitly (never onnxruntime's default of
every core: the service runs several analyses side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veracity.errors import ModelUnavailable


def onnx_session(path: Path, *, threads: int) -> Any:
    """A CPU ``InferenceSession`` for ``path`` with ``threads`` intra-op threads and one inter-op
    thread. onnxruntime is imported here, not at module import."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # No pre-allocated arena: small models and single images do not need it, and it keeps a
    # worker's peak memory down (bench/analyze_speed.py).
    opts.enable_cpu_mem_arena = False
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise ModelUnavailable(f"cannot load ONNX model: {exc}", path=str(path)) from exc
