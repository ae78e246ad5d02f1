"""vwm1 in video: every frame of an MP4 carries the same mark; audio is copied untouched.

Signing re-encodes the video track (H.264, CRF 16: close to visually lossless, and the mark
survives it like it survives JPEG q75); the C2PA manifest is then bound to the re-encoded file.
Detection reads a couple of frames: one found mark with the CRC intact is enough.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from veracity.provenance import vwm

_CRF = "16"
_PROBE_AT = (0.1, 0.5)  # fractions of the duration whose nearest frames are checked


def embed_mp4(data: bytes, signing_id: int) -> tuple[bytes, str | None]:
    """(watermarked MP4 bytes, None) or (the input unchanged, why not)."""
    try:
        return _embed_mp4(data, signing_id)
    except (av.FFmpegError, ValueError) as exc:  # e.g. an audio codec MP4 cannot carry
        return data, f"watermark not applied: re-encoding failed ({exc})"


def _embed_mp4(data: bytes, signing_id: int) -> tuple[bytes, str | None]:
    with av.open(io.BytesIO(data), mode="r") as inp:
        if not inp.streams.video:
            return data, "watermark not applied: no video track"
        vin = inp.streams.video[0]
        w, h = vin.codec_context.width, vin.codec_context.height
        if min(w, h) < 2 * vwm.TILE:
            return data, f"watermark not applied: video smaller than {2 * vwm.TILE} px a side"
        ain = inp.streams.audio[0] if inp.streams.audio else None
        buf = io.BytesIO()
        with av.open(buf, "w", format="mp4") as out:
            rate = vin.average_rate or Fraction(25, 1)
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
            vout.time_base = vin.time_base
            vout.options = {"crf": _CRF, "preset": "fast"}
            aout = out.add_stream_from_template(ain) if ain is not None else None
            streams = [s for s in (vin, ain) if s is not None]
            for packet in inp.demux(*streams):
                if packet.stream is ain and aout is not None:
                    if packet.dts is None:
                        continue
                    packet.stream = aout
                    out.mux(packet)
                    continue
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    rgb = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                    new = av.VideoFrame.from_ndarray(vwm.embed(rgb, signing_id), format="rgb24")
                    new.pts, new.time_base = frame.pts, frame.time_base
                    for pkt in vout.encode(new):
                        out.mux(pkt)
            for pkt in vout.encode():
                out.mux(pkt)
    return buf.getvalue(), None


def detect_video(path: Path) -> vwm.Detection | None:
    """The first frame (of a few spread over the clip) that carries a mark, else the last read."""
    last: vwm.Detection | None = None
    try:
        with av.open(str(path), mode="r") as inp:
            if not inp.streams.video:
                return None
            vs = inp.streams.video[0]
            duration = float(vs.duration * vs.time_base) if vs.duration and vs.time_base else None
            for frac in _PROBE_AT if duration else (0.0,):
                if duration and vs.time_base:
                    inp.seek(int(duration * frac / vs.time_base), stream=vs, backward=True, any_frame=False)
                frame = next(inp.decode(vs), None)
                if frame is None:
                    continue
                det = vwm.detect(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8))
                if det is not None and det.found:
                    return det
                last = det or last
    except (av.FFmpegError, StopIteration, ValueError):
        return last
    return last
