"""Identify media by content (never by extension) and read its headers within limits."""

from __future__ import annotations

import hashlib
import io
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av
import av.error
from PIL import Image, UnidentifiedImageError

from veracity.config import Limits
from veracity.errors import CorruptMedia, MediaTooLarge, SourceNotFound, UnsupportedMedia
from veracity.media.types import AUDIO_UNDECODABLE, MediaInfo, ffmpeg_reason

# Magic numbers of containers we know: a file that starts like one of these but fails to open
# is corrupt (truncated, damaged), not merely unsupported.
_MEDIA_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / HEIC / AVIF
    (0, b"RIFF"),  # WAV / AVI / WebP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"ID3"),
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG"),
    (0, b"GIF8"),
    (0, b"FLV"),
)


def sniff_is_media(head: bytes) -> bool:
    """True when the first bytes look like a container we know (used to tell corrupt from foreign)."""
    return any(head[off : off + len(magic)] == magic for off, magic in _MEDIA_MAGIC)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: Path, limits: Limits) -> int:
    if not path.exists():
        raise SourceNotFound("no such file", path=str(path))
    if not path.is_file():
        raise SourceNotFound("not a regular file", path=str(path))
    size = path.stat().st_size
    if size == 0:
        raise CorruptMedia("empty file (0 bytes)", path=str(path))
    if size > limits.max_bytes:
        raise MediaTooLarge(
            f"file is {size / 1e6:.0f} MB, over the {limits.max_bytes / 1e6:.0f} MB limit",
            path=str(path),
        )
    return size


def _check_pixels(width: int, height: int, limits: Limits, path: Path) -> None:
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"invalid dimensions {width}x{height}", path=str(path))
    if max(width, height) > limits.max_image_side or width * height > limits.max_pixels:
        raise MediaTooLarge(
            f"{width}x{height} pixels is over the limit "
            f"({limits.max_pixels / 1e6:.0f} MP, {limits.max_image_side} px a side)",
            path=str(path),
        )


def _probe_image(path: Path, limits: Limits) -> tuple[str, int, int, bool, int] | None:
    """Return (format, width, height, animated, n_frames) or None when Pillow does not know it."""
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's bomb warning must not escape as noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = str(im.format or "unknown")
                width, height = im.size
                animated = bool(getattr(im, "is_animated", False))
                n_frames = int(getattr(im, "n_frames", 1))
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"image dimensions over Pillow's safety limit ({exc})", path=str(path)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    _check_pixels(width, height, limits, path)
    return fmt, width, height, animated, n_frames


def _rate(value: Fraction | None) -> float | None:
    if value is None or value <= 0:
        return None
    return float(value)


def probe(path: Path, limits: Limits, *, sha256: str | None = None) -> MediaInfo:
    """Read headers and classify the file as video, image or audio.

    Raises typed errors for empty, foreign, corrupt or oversized input; decodes no payload.
    """
    path = Path(path)
    size = _check_file(path, limits)
    with path.open("rb") as fh:
        head = fh.read(64)
    digest = sha256 or sha256_file(path)

    image = _probe_image(path, limits)
    if image is not None and not image[3]:
        fmt, width, height, _, _ = image
        return MediaInfo(
            path=path,
            kind="image",
            container=fmt.lower(),
            size_bytes=size,
            sha256=digest,
            width=width,
            height=height,
        )

    with path.open("rb") as fh:
        try:
            # Through a reader without a name: FFmpeg then picks the demuxer by content alone.
            # Given the path, a file it cannot recognise gets a demuxer by its extension (a
            # tar.gz named .jpg opened as a JPEG sequence), so the verdict followed the name.
            container = av.open(_Unnamed(fh), "r", metadata_errors="ignore")
        except av.error.FFmpegError as exc:
            if image is not None or sniff_is_media(head):
                raise CorruptMedia(f"cannot open container: {ffmpeg_reason(exc)}", path=str(path)) from exc
            raise UnsupportedMedia("not a recognised video, image or audio file", path=str(path)) from exc
        with container:
            return _probe_container(container, path, size, digest, limits, animated=image is not None)


class _Unnamed(io.RawIOBase):
    """A read-only view of an open file with no ``name`` for PyAV to hand FFmpeg."""

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__()
        self._fh = fh

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._fh.readinto(buffer)  # type: ignore[attr-defined,no-any-return]

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()


def _probe_container(
    container: av.container.InputContainer,
    path: Path,
    size: int,
    digest: str,
    limits: Limits,
    *,
    animated: bool,
) -> MediaInfo:
    # A stream whose codec FFmpeg has no decoder for has no codec context (unknown Matroska codec
    # ids, SVG): it cannot be analysed, and reading its fields would crash.
    all_videos = [s for s in container.streams.video if not _is_cover_art(s)]
    videos = [s for s in all_videos if s.codec_context is not None]
    all_audios = list(container.streams.audio)
    audios = [s for s in all_audios if s.codec_context is not None]
    notes: list[str] = []
    if all_videos and not videos:
        raise UnsupportedMedia("no decoder for the video codec of this file", path=str(path))
    if all_audios and not audios:
        if not videos:
            raise UnsupportedMedia("no decoder for the audio codec of this file", path=str(path))
        notes.append(f"{AUDIO_UNDECODABLE}: no decoder for the audio codec")
    container_duration = container.duration / av.time_base if container.duration and container.duration > 0 else None
    astream = audios[0] if audios else None
    audio_fields = {
        "has_audio": astream is not None,
        "audio_codec": astream.codec_context.name if astream else None,
        "audio_sample_rate": int(astream.codec_context.sample_rate or 0) or None if astream else None,
        "audio_channels": int(astream.codec_context.channels or 0) or None if astream else None,
    }
    fmt = container.format.name.split(",")[0]  # also the demuxer's short name (decoders reopen with it)
    if videos:
        vs = videos[0]
        width, height = int(vs.codec_context.width or 0), int(vs.codec_context.height or 0)
        _check_pixels(width, height, limits, path)
        fps = _rate(vs.average_rate) or _rate(vs.guessed_rate)
        duration = _duration(vs, container_duration, limits, path)
        frames = int(vs.frames) if vs.frames else (int(round(duration * fps)) if duration and fps else None)
        return MediaInfo(
            path=path,
            kind="video",
            container=fmt,
            size_bytes=size,
            sha256=digest,
            width=width,
            height=height,
            duration_s=duration,
            fps=fps,
            frame_count=frames,
            video_codec=vs.codec_context.name,
            demuxer=fmt,
            animated=animated,
            warnings=tuple(notes),
            **audio_fields,  # type: ignore[arg-type]
        )
    if astream is not None:
        duration = _duration(astream, container_duration, limits, path)
        return MediaInfo(
            path=path,
            kind="audio",
            container=fmt,
            size_bytes=size,
            sha256=digest,
            duration_s=duration,
            demuxer=fmt,
            **audio_fields,  # type: ignore[arg-type]
        )
    raise UnsupportedMedia("container holds no video or audio stream", path=str(path))


def _duration(stream: av.stream.Stream, fallback: float | None, limits: Limits, path: Path) -> float | None:
    """The stream's duration (else the container's), refused when over the limit."""
    duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    duration = duration or fallback
    if duration is not None and duration > limits.max_duration_s:
        raise MediaTooLarge(
            f"duration {duration:.0f} s is over the {limits.max_duration_s:.0f} s limit",
            path=str(path),
        )
    return duration


def _is_cover_art(stream: av.video.stream.VideoStream) -> bool:
    """Attached pictures (MP3 cover art) are video streams of one frame, not video."""
    return bool(stream.disposition & av.stream.Disposition.attached_pic)
