"""The streamed pipeline (the default) against the former whole-clip path: same report.

The old path stays callable as ``Analyzer(streaming=False)`` for this comparison. Timings differ
by nature and are left out; every score is compared within 1e-6 and the timeline exactly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from veracity.media.types import Frame
from veracity.pipeline import Analyzer, _Prefetch
from veracity.report.model import Report

# Two eval clips (one short talking head, one 1080p DFDC clip with B-frames and an 8 s GOP) and
# a still, whose detectors and provenance also run side by side on the streamed path.
CLIPS = ("video/sadtalker_result_art_2__RD_Radio31_000.mp4", "video/dfdc_brtujopkby.mp4",
         "image/real/ffhq_real_0.jpg")
_TIMING_KEYS = {"elapsed_ms", "timings_ms"}


def _comparable(report: Report) -> dict[str, object]:
    data = report.model_dump(mode="json")
    for key in _TIMING_KEYS:
        data.pop(key, None)
    for det in data["detectors"]:
        det.pop("elapsed_ms", None)
    return data


def _diff(a: object, b: object, where: str = "") -> list[str]:
    """Paths where ``a`` and ``b`` differ, floats compared within 1e-6."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{where}.{k} missing on one side")
            else:
                out.extend(_diff(a[k], b[k], f"{where}.{k}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float | int):
        return [] if math.isclose(a, float(b), rel_tol=0, abs_tol=1e-6) else [f"{where}: {a} != {b}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def analyzers() -> Iterator[tuple[Analyzer, Analyzer]]:
    streamed, whole = Analyzer(streaming=True), Analyzer(streaming=False)
    yield streamed, whole
    streamed.close()
    whole.close()


@pytest.mark.parametrize("name", CLIPS)
def test_streamed_report_equals_whole_clip_report(
    name: str, shared_data: Path, analyzers: tuple[Analyzer, Analyzer]
) -> None:
    path = shared_data / "eval" / name
    streamed, whole = analyzers
    new, old = streamed.analyze(path), whole.analyze(path)
    assert new.media.frames_analysed > 0
    assert [p.t for p in new.timeline] == [p.t for p in old.timeline]
    assert _diff(_comparable(new), _comparable(old)) == []
    if new.media.kind == "video":  # the streamed path reports its decode split
        assert {"decode_video", "decode_audio"} <= set(new.timings_ms)


def _frames(n: int) -> Iterator[Frame]:
    for k in range(n):
        yield Frame(t=float(k), rgb=np.zeros((2, 2, 3), np.uint8), role="sparse")


def test_prefetch_yields_every_item_in_order() -> None:
    pre = _Prefetch(_frames(30), 4)
    assert [f.t for f in pre] == [float(k) for k in range(30)]
    pre.close()


def test_prefetch_raises_the_source_error_in_the_consumer() -> None:
    def broken() -> Iterator[Frame]:
        yield from _frames(2)
        raise ValueError("bad packet")

    pre = _Prefetch(broken(), 4)
    seen: list[float] = []
    with pytest.raises(ValueError, match="bad packet"):
        for f in pre:
            seen.append(f.t)
    pre.close()
    assert seen == [0.0, 1.0]


def test_prefetch_close_stops_a_blocked_producer_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[Frame]:
        try:
            k = 0
            while True:
                yield Frame(t=float(k), rgb=np.zeros((2, 2, 3), np.uint8), role="sparse")
                k += 1
        finally:
            closed.set()

    pre = _Prefetch(endless(), 2)
    first = next(iter(pre))
    pre.close()
    assert first.t == 0.0
    assert closed.wait(5.0)
