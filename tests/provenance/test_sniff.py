"""Formats are recognised from content: a table of magic numbers, and the misleading-extension case."""

from __future__ import annotations

from pathlib import Path

import pytest

from veracity.provenance.sniff import sniff, sniff_bytes

CASES = [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"RIFF\x00\x00\x00\x00AVI LIST", "video/avi"),
    (b"II*\x00\x08\x00\x00\x00", "image/tiff"),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", "video/mp4"),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", "video/quicktime"),
    (b"\x00\x00\x00\x1cftypavif\x00\x00", "image/avif"),
    (b"\x00\x00\x00\x1cftypheic\x00\x00", "image/heic"),
    (b"\x00\x00\x00\x18stypmsdh\x00\x00", "video/mp4"),
    (b"\x00\x02\x00\x00jumb\x00\x00", "application/c2pa"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"ID3\x04\x00\x00", "audio/mpeg"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml"),
    (b"hello world", None),
    (b"", None),
]


@pytest.mark.parametrize(("head", "mime"), CASES)
def test_sniff_bytes(head: bytes, mime: str | None) -> None:
    assert sniff_bytes(head) == mime


@pytest.mark.realdata
def test_wrong_extension_is_still_a_jpeg(shared_data: Path) -> None:
    assert sniff(shared_data / "eval/c2pa/py_file_with_wrong_extension.xyz.jpg") == "image/jpeg"
    assert sniff(shared_data / "eval/c2pa/py_C.dng") == "image/tiff"
