"""Still images through Pillow, upright by EXIF orientation, at the size the detectors use.

Every detector reads stills at a few hundred pixels a side (face mesh, CLIP crops, spectra), so
a still is decoded at most :data:`STILL_MAX_SIDE` a side: JPEG through the decoder's DCT scaling
(``draft``: the full-size image never exists), other formats decoded once and box-reduced by an
integer factor. An 8900x8900 PNG then costs one decode instead of several full-size copies.
"""

from __future__ import annotations

import math
import warnings as _warnings

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.errors import CorruptMedia
from veracity.media.types import Frame, MediaInfo

STILL_MAX_SIDE = 2048

_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def load_image(info: MediaInfo, max_side: int = STILL_MAX_SIDE) -> Frame:
    """Decode the image as RGB no larger than ``max_side``, EXIF orientation applied.

    Pixel limits were checked in probe.
    """
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(info.path) as im:
                orientation = int(im.getexif().get(0x0112, 1) or 1)
                if im.format == "JPEG" and max(im.size) > max_side:
                    im.draft("RGB", (max_side, max_side))  # DCT scaling: 1/2, 1/4 or 1/8 at decode
                im.load()
                rgb_im = im if im.mode == "RGB" else im.convert("RGB")
                factor = math.ceil(max(rgb_im.size) / max_side)
                if factor > 1:
                    rgb_im = rgb_im.reduce(factor)
                if orientation in _ORIENTATION:
                    rgb_im = rgb_im.transpose(_ORIENTATION[orientation])
                rgb = np.asarray(rgb_im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptMedia(f"image cannot be decoded: {exc}", path=str(info.path)) from exc
    return Frame(t=0.0, rgb=np.ascontiguousarray(rgb), role="still")


def jpeg_round_trip(rgb: npt.NDArray[np.uint8], quality: int) -> npt.NDArray[np.uint8]:
    """Encode an RGB array as JPEG at ``quality`` and decode it again (OpenCV, 4:2:0): the
    compression a re-saved picture meets, used both by training augmentation (``train/sbi.py``)
    and by feature normalisation (``models/residual_spectrum.py``). OpenCV is imported here, not
    at module import, so decoding a still does not pay for it."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encode failed")
    return np.asarray(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB), dtype=np.uint8)
