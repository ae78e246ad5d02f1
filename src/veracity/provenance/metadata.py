"""Generator and capture metadata, as facts: what the file says, never a guess about it.

Read: the IPTC ``DigitalSourceType`` in XMP, PNG text chunks that image generators write
(Automatic1111 ``parameters``; ComfyUI ``prompt`` / ``workflow``; others' ``Software`` /
``Comment``), and EXIF/XMP software and camera fields. Stripped metadata proves nothing, so
absence is just an empty result.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from veracity.errors import MediaTooLarge

_EXIF_MAKE, _EXIF_MODEL, _EXIF_SOFTWARE, _EXIF_DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
_TEXT_LIMIT = 400  # prompts can be long: the report keeps a prefix

_XMP_FIELDS = {
    "digital_source_type": r"Iptc4xmpExt:DigitalSourceType",
    "creator_tool": r"xmp:CreatorTool",
    "xmp_make": r"tiff:Make",
    "xmp_model": r"tiff:Model",
    "xmp_software": r"tiff:Software",
}


class MetadataFacts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    digital_source_type: str | None = Field(default=None, description="IPTC DigitalSourceType from XMP.")
    generator: str | None = Field(default=None, description="Tool named by generator-specific chunks.")
    generator_parameters: str | None = Field(default=None, description="Start of the generation parameters text.")
    software: str | None = None
    creator_tool: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    captured_at: str | None = None
    text_chunks: list[str] = Field(default_factory=list, description="Names of PNG/WebP text chunks present.")

    @property
    def declares_ai(self) -> bool:
        dst = (self.digital_source_type or "").rsplit("/", 1)[-1]
        return dst in {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"} or self.generator is not None


def _xmp_value(xmp: str, tag: str) -> str | None:
    m = re.search(rf'{tag}\s*=\s*"([^"]*)"', xmp) or re.search(rf"<{tag}[^>]*>\s*([^<]+?)\s*</{tag}>", xmp)
    if m is None:
        m = re.search(rf'<{tag}[^>]*rdf:resource="([^"]*)"', xmp)
    return m.group(1).strip() if m else None


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "…"


def read_metadata(path: Path, *, max_pixels: int | None = None) -> MetadataFacts:
    """Facts from an image file; other media (or unreadable images) give an empty result.

    A decompression bomb (a header declaring more pixels than Pillow's safety limit, or than
    ``max_pixels``) is :class:`MediaTooLarge`: an error the caller maps to 413, never a crash.
    Only headers and chunks are read here; the pixels are never decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd chunks; facts, not lint
            with Image.open(path) as img:
                width, height = img.size
                if max_pixels is not None and width * height > max_pixels:
                    raise MediaTooLarge(
                        f"{width}x{height} pixels is over the {max_pixels / 1e6:.0f} MP limit", path=str(path)
                    )
                info = dict(img.info)
                fmt = img.format or ""
                exif = img.getexif()
                xmp_raw = info.get("xmp") or info.get("XML:com.adobe.xmp") or b""
    except MediaTooLarge:
        raise  # a ValueError too: not to be swallowed as "unreadable" below
    except Image.DecompressionBombError as exc:
        raise MediaTooLarge(f"image dimensions over the decompression safety limit ({exc})", path=str(path)) from exc
    except (UnidentifiedImageError, OSError, ValueError):
        return MetadataFacts()
    xmp = xmp_raw.decode("utf-8", "replace") if isinstance(xmp_raw, bytes) else str(xmp_raw)
    fields = {k: _xmp_value(xmp, tag) for k, tag in _XMP_FIELDS.items()} if xmp else {}
    texts = (
        {str(k): v for k, v in info.items() if isinstance(v, str) and k not in ("xmp", "XML:com.adobe.xmp")}
        if fmt in ("PNG", "WEBP")
        else {}
    )

    generator = params = None
    if "parameters" in texts and ("Steps:" in texts["parameters"] or "Sampler:" in texts["parameters"]):
        generator, params = "Automatic1111 (Stable Diffusion web UI)", texts["parameters"]
    elif "prompt" in texts or "workflow" in texts:
        generator, params = "ComfyUI", texts.get("prompt") or texts.get("workflow")
    elif "sd-metadata" in texts or "invokeai_metadata" in texts:
        generator, params = "InvokeAI", texts.get("sd-metadata") or texts.get("invokeai_metadata")
    elif "parameters" in texts:
        params = texts["parameters"]

    def exif_str(tag: int) -> str | None:
        v = exif.get(tag)
        return str(v).strip("\x00 ").strip() or None if v is not None else None

    software = exif_str(_EXIF_SOFTWARE) or fields.get("xmp_software") or texts.get("Software") or texts.get("software")
    return MetadataFacts(
        digital_source_type=fields.get("digital_source_type"),
        generator=generator,
        generator_parameters=_clip(params) if params else None,
        software=software,
        creator_tool=fields.get("creator_tool"),
        camera_make=exif_str(_EXIF_MAKE) or fields.get("xmp_make"),
        camera_model=exif_str(_EXIF_MODEL) or fields.get("xmp_model"),
        captured_at=exif_str(_EXIF_DATETIME),
        text_chunks=sorted(texts),
    )
