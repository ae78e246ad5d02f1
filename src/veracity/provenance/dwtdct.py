"""The invisible-watermark ``dwtDct`` codec (Stable Diffusion's reference watermark), reimplemented.

We do not depend on the ``invisible-watermark`` package (it pulls torch and a second OpenCV).
Its algorithm, as used by Stable Diffusion's ``txt2img.py`` with payload ``b"StableDiffusionV1"``:

* convert BGR to OpenCV's YUV; only the U plane carries the mark (the library's scales are
  ``[0, 36, 36]`` but it loops over the first two planes only, so Y is skipped and V never used);
* one-level Haar DWT of the plane cropped to a multiple of 4; the approximation band (LL) is cut
  into 4x4 blocks in raster order, block ``n`` carrying bit ``n mod len(payload bits)``;
* in each block the largest-magnitude coefficient other than the first is quantised with step
  ``scale=36``: ``|c| -> (floor(|c|/36) + 0.25 + 0.5*bit) * 36`` (sign kept);
* decoding reads ``(|c| mod 36) > 18`` per block and averages the votes of every bit.

(Despite its name no DCT is taken in this mode: the block itself is quantised.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import pywt

SD_PAYLOAD = b"StableDiffusionV1"
SCALE = 36.0
BLOCK = 4
MIN_PIXELS = 256 * 256  # the library refuses smaller images


@dataclass(frozen=True, slots=True)
class DwtDctDecoded:
    bits: npt.NDArray[np.uint8]
    votes: npt.NDArray[np.float64]  # per bit: share of blocks voting 1

    @property
    def payload(self) -> bytes:
        return bytes(np.packbits(self.bits).tolist())

    def bit_accuracy(self, expected: bytes) -> float:
        want = np.unpackbits(np.frombuffer(expected, dtype=np.uint8))
        n = min(len(want), len(self.bits))
        return float(np.mean(want[:n] == self.bits[:n])) if n else 0.0

    @property
    def confidence(self) -> float:
        """Mean margin of the block votes (0: coin flips, 1: every block agrees)."""
        return float(np.mean(np.abs(self.votes - 0.5) * 2.0)) if self.votes.size else 0.0


def _blocks(ll: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """(n_blocks, 16) in raster block order."""
    r, c = ll.shape[0] // BLOCK, ll.shape[1] // BLOCK
    b = ll[: r * BLOCK, : c * BLOCK].reshape(r, BLOCK, c, BLOCK).swapaxes(1, 2)
    return b.reshape(r * c, BLOCK * BLOCK)


def _u_plane(bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    return np.ascontiguousarray(yuv[:, :, 1])


def decode(bgr: npt.NDArray[np.uint8], n_bits: int = len(SD_PAYLOAD) * 8) -> DwtDctDecoded | None:
    """Read ``n_bits`` from a BGR uint8 image; None when it is too small to carry the mark."""
    h, w = bgr.shape[:2]
    if h * w < MIN_PIXELS or bgr.ndim != 3:
        return None
    plane = _u_plane(bgr)[: h // 4 * 4, : w // 4 * 4].astype(np.float64)
    ll, _ = pywt.dwt2(plane, "haar")
    blocks = _blocks(np.asarray(ll))
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    val = np.abs(blocks[np.arange(len(blocks)), pos])
    votes_per_block = (np.mod(val, SCALE) > 0.5 * SCALE).astype(np.float64)
    idx = np.arange(len(blocks)) % n_bits
    sums = np.bincount(idx, weights=votes_per_block, minlength=n_bits)
    counts = np.bincount(idx, minlength=n_bits)
    votes = sums / np.maximum(counts, 1)
    bits = (votes * 255 > 127).astype(np.uint8)
    return DwtDctDecoded(bits=bits, votes=votes)


def encode(bgr: npt.NDArray[np.uint8], payload: bytes = SD_PAYLOAD) -> npt.NDArray[np.uint8]:
    """Embed like the reference encoder (used to compare robustness, and in tests)."""
    h, w = bgr.shape[:2]
    if h * w < MIN_PIXELS:
        raise ValueError("image too small for dwtDct (needs 256x256 pixels)")
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8)).astype(np.float64)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    hh, ww = h // 4 * 4, w // 4 * 4
    plane = yuv[:hh, :ww, 1].astype(np.float64)
    ll, (ch, cv, cd) = pywt.dwt2(plane, "haar")
    ll = np.array(ll)
    r, c = ll.shape[0] // BLOCK, ll.shape[1] // BLOCK
    blocks = _blocks(ll).copy()
    pos = np.argmax(np.abs(blocks[:, 1:]), axis=1) + 1
    rows = np.arange(len(blocks))
    val = blocks[rows, pos]
    bit = bits[rows % len(bits)]
    mag = (np.floor(np.abs(val) / SCALE) + 0.25 + 0.5 * bit) * SCALE
    blocks[rows, pos] = np.where(val >= 0, mag, -mag)
    ll[: r * BLOCK, : c * BLOCK] = blocks.reshape(r, c, BLOCK, BLOCK).swapaxes(1, 2).reshape(r * BLOCK, c * BLOCK)
    # The reference passes the detail bands back in (cV, cH, cD) order; kept for fidelity.
    rec = pywt.idwt2((ll, (cv, ch, cd)), "haar")
    yuv[:hh, :ww, 1] = np.clip(rec, 0, 255).astype(np.uint8)  # truncation, as the reference does
    return np.asarray(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR), dtype=np.uint8)
