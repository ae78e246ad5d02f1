"""Still images through Pillow, upright by EXIF orientation."""

from __future__ import annotations

import warnings as _warnings

import numpy as np
from PIL import Image, ImageOps

from veracity.errors import CorruptMedia
from veracity.media.types import Frame, MediaInfo


def load_image(info: MediaInfo) -> Frame:
    """Decode the whole image as RGB, applying EXIF orientation. Pixel limits were checked in probe."""
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(info.path) as im:
                im.load()
                upright = ImageOps.exif_transpose(im)
                rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptMedia(f"image cannot be decoded: {exc}", path=str(info.path)) from exc
    return Frame(t=0.0, rgb=np.ascontiguousarray(rgb), role="still")
