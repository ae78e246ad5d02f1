"""Bad input: every kind gets a clear typed error, never a hang or an untyped crash."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.synth import make_video

from veracity.config import Limits, Options
from veracity.errors import (
    CorruptMedia,
    InputError,
    MediaTooLarge,
    SourceNotFound,
    UnsupportedMedia,
    VeracityError,
)
from veracity.media import decode, plan_sampling, probe


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims the given size, with one tiny (wrong-sized) IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def _zero(tmp: Path) -> Path:
    (tmp / "empty.mp4").write_bytes(b"")
    return tmp / "empty.mp4"


def _text(tmp: Path) -> Path:
    (tmp / "notes.mp4").write_text("this is not a video\n" * 50)
    return tmp / "notes.mp4"


def _random(tmp: Path) -> Path:
    (tmp / "noise.bin").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return tmp / "noise.bin"


def _truncated_mp4(tmp: Path) -> Path:
    full = make_video(tmp / "full.mp4", seconds=2.0)
    data = full.read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) // 3])  # moov (at the end) is lost
    return tmp / "cut.mp4"


def _truncated_jpeg(tmp: Path) -> Path:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    img.save(tmp / "full.jpg", quality=90)
    data = (tmp / "full.jpg").read_bytes()
    (tmp / "cut.jpg").write_bytes(data[: len(data) // 2])
    return tmp / "cut.jpg"


def _huge_png(tmp: Path) -> Path:
    (tmp / "huge.png").write_bytes(_png_header(60_000, 60_000))
    return tmp / "huge.png"


def _huge_side_png(tmp: Path) -> Path:
    (tmp / "wide.png").write_bytes(_png_header(30_000, 10))
    return tmp / "wide.png"


def _corrupt_mp3(tmp: Path) -> Path:
    noise = np.random.default_rng(2).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    (tmp / "broken.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + noise)
    return tmp / "broken.mp3"


def _missing(tmp: Path) -> Path:
    return tmp / "does-not-exist.mp4"


def _folder(tmp: Path) -> Path:
    (tmp / "a-folder.mp4").mkdir()
    return tmp / "a-folder.mp4"


CASES: list[tuple[str, Callable[[Path], Path], type[VeracityError]]] = [
    ("zero_bytes", _zero, CorruptMedia),
    ("text_named_mp4", _text, UnsupportedMedia),
    ("random_bytes", _random, UnsupportedMedia),
    ("truncated_mp4", _truncated_mp4, CorruptMedia),
    ("truncated_jpeg", _truncated_jpeg, CorruptMedia),
    ("huge_dimensions", _huge_png, MediaTooLarge),
    ("absurd_aspect", _huge_side_png, MediaTooLarge),
    ("corrupt_mp3", _corrupt_mp3, CorruptMedia),
    ("missing_file", _missing, SourceNotFound),
    ("directory", _folder, SourceNotFound),
]


@pytest.mark.parametrize(("make", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_typed_error(
    tmp_path: Path, make: Callable[[Path], Path], expected: type[VeracityError]
) -> None:
    path = make(tmp_path)
    limits = Limits()
    with pytest.raises(expected) as info:
        media_info = probe(path, limits)
        decode(media_info, plan_sampling(media_info, Options()), limits)
    assert isinstance(info.value, InputError)  # all of these are the input's fault: exit code 2
    assert info.value.code in {"corrupt_media", "unsupported_media", "media_too_large", "not_found"}
    assert str(path.name) in str(info.value)


def test_over_duration_limit(tmp_path: Path) -> None:
    path = make_video(tmp_path / "two_seconds.mp4", seconds=2.0)
    with pytest.raises(MediaTooLarge, match="duration"):
        probe(path, Limits(max_duration_s=1.0))


def test_over_byte_limit(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", seconds=1.0)
    with pytest.raises(MediaTooLarge, match="MB"):
        probe(path, Limits(max_bytes=100))


def test_wrong_extension_is_read_by_content(tmp_path: Path) -> None:
    Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(tmp_path / "photo.mp4", format="PNG")
    info = probe(tmp_path / "photo.mp4", Limits())
    assert info.kind == "image"
    assert (info.width, info.height) == (48, 64)


def test_error_codes_double_as_builtins() -> None:
    assert issubclass(CorruptMedia, ValueError)
    assert issubclass(SourceNotFound, FileNotFoundError)
    assert CorruptMedia.exit_code == UnsupportedMedia.exit_code == MediaTooLarge.exit_code == 2
