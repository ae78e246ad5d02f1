"""Media type from the first bytes, never from the file name (a ``.xyz.jpg`` is still a JPEG).

The C2PA SDK hashes each container its own way, so it must be told the real format; a wrong
extension would otherwise turn a valid credential into a hash mismatch or "unsupported".
"""

from __future__ import annotations

from pathlib import Path

_HEAD = 4096

_FTYP_BRANDS = {
    b"qt  ": "video/quicktime",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"M4A ": "audio/mp4",
    b"M4V ": "video/x-m4v",
}


def sniff_bytes(head: bytes) -> str | None:
    """MIME type for the leading bytes of a file, or None when unrecognised."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return "image/webp"
        if kind == b"WAVE":
            return "audio/wav"
        if kind == b"AVI ":
            return "video/avi"
        return None
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"  # DNG is TIFF; the SDK hashes both alike
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    if len(head) >= 8 and head[4:8] in (b"styp", b"moof"):
        return "video/mp4"  # a fragment: only meaningful with its init segment
    if len(head) >= 8 and head[4:8] == b"jumb":
        return "application/c2pa"  # a bare manifest store (sidecar)
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return "audio/mpeg"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    return None


def sniff(path: Path) -> str | None:
    with path.open("rb") as fh:
        return sniff_bytes(fh.read(_HEAD))
