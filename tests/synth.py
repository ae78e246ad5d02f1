"""Synthetic media made on the fly with PyAV, for tests that must not depend on shared data."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (160, 120),
    audio: bool = True,
    codec: str = "libx264",
    container: str | None = None,
) -> Path:
    """A small moving-gradient H.264 (+ AAC tone) clip, made with PyAV."""
    w, h = size
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            vs.options = {"preset": "ultrafast", "g": str(fps)}
        as_ = out.add_stream("aac", rate=16000) if audio else None
        n = int(seconds * fps)
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(n):
            img = np.stack([(xx + i * 3) % 256, (yy + i) % 256, np.full_like(xx, (i * 5) % 256)], -1).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None:
            sr, chunk = 16000, 1024
            t = np.arange(int(seconds * sr)) / sr
            tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
            for k in range(0, tone.shape[0] - chunk + 1, chunk):
                af = av.AudioFrame.from_ndarray(tone[None, k : k + chunk], format="flt", layout="mono")
                af.sample_rate = sr
                af.pts = k
                af.time_base = Fraction(1, sr)
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path
