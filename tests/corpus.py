"""The bad-input corpus (issue 15): hostile files built on the fly, and what each must give.

Every file is made by the test run itself (PyAV, Pillow, bytes) in well under a second; nothing
is committed. One table drives the CLI test (tests/e2e/test_hostile_cli.py) and the API test
(tests/service/test_hostile.py):

* ``code``: the error code, or None when the file is analysed (then ``warning`` must be in its
  report and its label must not be ``authentic``: missing evidence never reads as authentic);
* ``http``: the status of ``POST /api/v1/jobs`` with it (202: accepted; the job then ends with
  ``code``, or succeeds);
* every case must finish well inside ``SECONDS``.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tests.synth import (
    SVG,
    make_noisy_audio_mp4,
    make_truncated_mkv,
    make_unknown_audio_codec_mkv,
    make_unknown_codec_mkv,
    make_video,
    make_zero_frame_avi,
)

SECONDS = 30.0  # per file, end to end, on these 2-core machines (the hang was forever)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb's header), tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    """A JPEG whose SOF0 claims ``width`` x ``height`` and holds no scan."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    comps = bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + comps
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data)


def _tar_gz(path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("notes.txt")
        payload = b"not media\n" * 100
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    path.write_bytes(buf.getvalue())


def _cut_mp4(path: Path) -> None:
    full = make_video(path.with_suffix(".full.mp4"), seconds=1.0, size=(64, 48))
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 3])  # the moov box (at the end) is gone


@dataclass(frozen=True)
class Case:
    name: str  # file name (its extension is a lie as often as not)
    build: Callable[[Path], None]
    code: str | None
    http: int
    warning: str | None = None


CASES: tuple[Case, ...] = (
    Case("zero_frames.avi", make_zero_frame_avi, "corrupt_media", 202),
    Case("unknown_codec.mkv", make_unknown_codec_mkv, "unsupported_media", 415),
    Case("drawing.svg", _bytes(SVG), "unsupported_media", 415),
    Case("drawing_named.png", _bytes(SVG), "unsupported_media", 415),
    Case("archive_named.jpg", _tar_gz, "unsupported_media", 415),
    Case("bomb_30000.png", _bytes(png_declaring(30_000, 30_000)), "media_too_large", 413),
    Case("bomb_65500.jpg", _bytes(jpeg_declaring(65_500, 65_500)), "media_too_large", 413),
    Case("cut_moov.mp4", _cut_mp4, "corrupt_media", 422),
    Case("empty.mp4", _bytes(b""), "corrupt_media", 422),
    Case("text.mp4", _bytes(b"this is not a video\n" * 50), "unsupported_media", 415),
    Case(
        "noise.bin",
        _bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()),
        "unsupported_media",
        415,
    ),
    Case("mute_codec.mkv", make_unknown_audio_codec_mkv, None, 202, "audio_undecodable"),
    Case("noisy_audio.mp4", make_noisy_audio_mp4, None, 202, "audio_undecodable"),
    Case("cut_half.mkv", make_truncated_mkv, None, 202, "media_truncated"),
)


def build_all(folder: Path, cases: tuple[Case, ...] = CASES) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for case in cases:
        path = folder / case.name
        case.build(path)
        out[case.name] = path
    return out
