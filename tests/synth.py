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


# --- hostile files (issue 15): each made here, small, in well under a second --------------------


def make_zero_frame_avi(path: Path) -> Path:
    """An AVI with a video stream header and not one frame (hung ``sample_video`` forever)."""
    out = av.open(str(path), "w", format="avi")
    vs = out.add_stream("mpeg4", rate=25)
    vs.width, vs.height, vs.pix_fmt = 64, 64, "yuv420p"
    out.start_encoding()
    for pkt in vs.encode():
        out.mux(pkt)
    out.close()
    return path


def make_unknown_codec_mkv(path: Path) -> Path:
    """A Matroska file whose codec ids FFmpeg does not know (V_QQQ..., A_QQQ): no codec context."""
    tmp = path.with_suffix(".src.mkv")
    make_video(tmp, seconds=1.0, codec="mpeg4", container="matroska")
    data = tmp.read_bytes().replace(b"V_MPEG4/ISO/ASP", b"V_QQQQQQQQQQQQQ").replace(b"A_AAC", b"A_QQQ")
    tmp.unlink()
    path.write_bytes(data)
    return path


def make_unknown_audio_codec_mkv(path: Path) -> Path:
    """Good pictures, an audio track no decoder reads: the audio evidence is missing."""
    tmp = path.with_suffix(".src.mkv")
    make_video(tmp, seconds=1.0, codec="mpeg4", container="matroska")
    data = tmp.read_bytes().replace(b"A_AAC", b"A_QQQ")
    tmp.unlink()
    path.write_bytes(data)
    return path


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'


def make_truncated_mkv(path: Path, seconds: float = 6.0) -> Path:
    """A streamable clip cut in half: decodes, but stops long before its declared duration."""
    tmp = path.with_suffix(".src.mkv")
    make_video(tmp, seconds=seconds, container="matroska")
    data = tmp.read_bytes()
    tmp.unlink()
    path.write_bytes(data[: len(data) // 2])
    return path


def make_noisy_audio_mp4(path: Path, seconds: float = 3.0, seed: int = 0) -> Path:
    """A clip whose AAC packets are replaced by random bytes (same sizes and timestamps): the
    pictures decode, the audio does not. Used to evade lip-sync checks; must not read authentic."""
    tmp = path.with_suffix(".src.mp4")
    make_video(tmp, seconds=seconds)
    rng = np.random.default_rng(seed)
    with av.open(str(tmp)) as src, av.open(str(path), "w", format="mp4") as dst:
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for pkt in src.demux():
            if pkt.dts is None:
                continue
            out = pkt
            if pkt.stream.type == "audio":
                out = av.Packet(rng.integers(0, 256, pkt.size, dtype=np.uint8).tobytes())
                out.pts, out.dts, out.time_base = pkt.pts, pkt.dts, pkt.time_base
                out.duration, out.is_keyframe = pkt.duration, pkt.is_keyframe
            out.stream = streams[pkt.stream.index]
            dst.mux(out)
    tmp.unlink()
    return path
