"""One frame of a kept video as a small JPEG: what the web timeline shows on hover or click."""

from __future__ import annotations

import io
from pathlib import Path

import av
from PIL import Image

from veracity.errors import CorruptMedia, UnsupportedMedia

__all__ = ["frame_jpeg"]


def frame_jpeg(path: Path, t: float, *, max_side: int = 360, quality: int = 80) -> bytes:
    """The first frame at or after ``t`` seconds (the last one when ``t`` is past the end).

    Seeks to the keyframe before ``t`` and decodes forward, so the cost is one GOP at most.
    Still images are returned whole (scaled), whatever ``t`` is.
    """
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise CorruptMedia(f"cannot open {path.name}: {exc}") from exc
    with container:
        if not container.streams.video:
            raise UnsupportedMedia(f"{path.name} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = stream.time_base
        if t > 0 and tb is not None:
            try:
                container.seek(int(t / float(tb)), stream=stream, backward=True, any_frame=False)
            except av.FFmpegError:
                container.seek(0)
        chosen: av.VideoFrame | None = None
        try:
            for frame in container.decode(stream):
                chosen = frame
                if frame.time is None or frame.time >= t - 1e-3:
                    break
        except av.FFmpegError as exc:
            if chosen is None:
                raise CorruptMedia(f"cannot decode {path.name}: {exc}") from exc
        if chosen is None:
            raise CorruptMedia(f"no frame decoded from {path.name}")
        image = Image.fromarray(chosen.to_ndarray(format="rgb24"))
    image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
