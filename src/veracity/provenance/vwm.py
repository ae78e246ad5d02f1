"""``vwm1``: our robust invisible watermark, carrying the 32-bit id of a signing record.

Why not plain dwtDct: it quantises coefficients on a fixed 8-pixel grid, so a crop that shifts the
grid, a resize, or JPEG's own quantisation wipes it. vwm1 is a periodic spread-spectrum mark:

* payload: 32-bit id + CRC-16 = 48 bits; each bit is spread over 12 chips of every tile and over
  every tile of the image (repetition code with soft combining), the CRC rejects wrong reads;
* a 96x96-pixel tile of 24x24 chips (4x4 pixels each, mid frequencies that survive JPEG q75 and a
  2x downscale) = a fixed pseudo-random *sync* pattern + the data chips, added to luminance with
  an amplitude that follows local texture (less in flat areas, where it would show);
* detection needs no original: high-pass residual -> the tile period from the residual's
  autocorrelation (handles resizing) -> residual resampled to the nominal period and folded onto
  one tile (all tiles add up) -> circular correlation with the sync pattern finds the shift
  (handles cropping) -> soft bits -> CRC. Found = CRC passes and the sync peak is >= SYNC_Z_MIN
  standard deviations above the correlation floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

NAME = "veracity_v1"
TILE = 96
CHIP = 4
N_CHIPS = TILE // CHIP  # per side
ID_BITS = 32
CRC_BITS = 16
N_BITS = ID_BITS + CRC_BITS
STRENGTH = 2.6  # luminance levels per chip unit, before texture masking
SYNC_Z_MIN = 6.0
SYNC_WEIGHT = 0.6  # sync chips are summed over the whole tile, data chips over 12: data gets more
CHASE_BITS, CHASE_FLIPS = 12, 3  # soft-decision repair: try flipping the least reliable bits
MAX_SIDE = 768  # detection reads at most this much of the centre (64 tiles at full size)
_SEED = 0x76776D31  # "vwm1"

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Key:
    sync: F64  # (N, N) +-1
    sign: F64  # (N, N) +-1
    bit_of: npt.NDArray[np.int64]  # (N, N) bit index of each chip
    sync_px: F64  # (TILE, TILE) rendered sync pattern


@lru_cache(maxsize=1)
def _key() -> _Key:
    rng = np.random.default_rng(_SEED)
    sync = rng.choice([-1.0, 1.0], size=(N_CHIPS, N_CHIPS))
    sign = rng.choice([-1.0, 1.0], size=(N_CHIPS, N_CHIPS))
    bit_of = (rng.permutation(N_CHIPS * N_CHIPS) % N_BITS).reshape(N_CHIPS, N_CHIPS).astype(np.int64)
    return _Key(sync=sync, sign=sign, bit_of=bit_of, sync_px=_render(sync))


def _render(chips: F64) -> F64:
    """Chips -> one periodic tile of pixels, softened (wrap-around blur keeps it periodic)."""
    px = np.kron(chips, np.ones((CHIP, CHIP)))
    big = np.tile(px, (3, 3))
    soft = cv2.GaussianBlur(big, (0, 0), 1.0)
    return np.asarray(soft[TILE : 2 * TILE, TILE : 2 * TILE], dtype=np.float64)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def payload_bits(record_id: int) -> npt.NDArray[np.uint8]:
    if not 0 <= record_id < 2**ID_BITS:
        raise ValueError("vwm1 carries a 32-bit id")
    raw = record_id.to_bytes(4, "big")
    full = raw + crc16(raw).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(full, dtype=np.uint8))


def _luma(rgb: npt.NDArray[np.uint8]) -> F64:
    f = rgb.astype(np.float64)
    return np.asarray(0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2], dtype=np.float64)


def embed(rgb: npt.NDArray[np.uint8], record_id: int, strength: float = STRENGTH) -> npt.NDArray[np.uint8]:
    """Add the mark for ``record_id`` to an RGB uint8 image (at least 2x2 tiles)."""
    h, w = rgb.shape[:2]
    if min(h, w) < 2 * TILE:
        raise ValueError(f"image too small for the watermark (needs {2 * TILE} px a side)")
    key = _key()
    bits = payload_bits(record_id).astype(np.float64) * 2 - 1
    data = key.sign * bits[key.bit_of]
    tile = _render(SYNC_WEIGHT * key.sync + data)
    pattern = np.tile(tile, (h // TILE + 1, w // TILE + 1))[:h, :w]
    y = _luma(rgb)
    mean = cv2.blur(y, (9, 9))
    std = np.sqrt(np.maximum(cv2.blur(y * y, (9, 9)) - mean * mean, 0))
    mask = np.clip(std / 10.0, 0.5, 2.0)
    # Keep headroom near black and white so clipping does not eat the mark.
    delta = strength * mask * pattern
    out = rgb.astype(np.float64) + delta[..., None]
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)


@dataclass(frozen=True, slots=True)
class Detection:
    found: bool
    record_id: int | None
    bits: npt.NDArray[np.uint8]  # 48 decided bits (id + crc)
    soft: F64  # per-bit t statistics
    sync_z: float
    scale: float  # detected size relative to the marked original
    confidence: float

    @property
    def payload_hex(self) -> str | None:
        return None if self.record_id is None else f"{self.record_id:08x}"

    def bit_accuracy(self, record_id: int) -> float:
        return float(np.mean(self.bits[:ID_BITS] == payload_bits(record_id)[:ID_BITS]))


def _residual(y: F64) -> npt.NDArray[np.float32]:
    """High-pass luminance, divided by its local energy so edges do not drown the chips.
    float32 and a box filter: this and the resampling below are most of the detection time."""
    y32 = y.astype(np.float32)
    r = y32 - cv2.GaussianBlur(y32, (0, 0), 2.5)
    local = np.sqrt(np.maximum(cv2.blur(r * r, (17, 17)), 0.0)) + 1.0
    return np.asarray(r / local, dtype=np.float32)


def _period_candidates(r: npt.NDArray[np.float32], top: int = 4) -> list[float]:
    """Tile periods (pixels) suggested by peaks of the residual's whitened autocorrelation."""
    spec = np.fft.rfft2(r - r.mean())
    ac = np.fft.irfft2(np.abs(spec), s=r.shape)
    lo, hi = int(TILE * 0.25), min(int(TILE * 1.6), r.shape[0] // 2 - 2, r.shape[1] // 2 - 2)
    if hi <= lo + 2:
        return [float(TILE)]
    prof = ac[0, lo:hi] + ac[lo:hi, 0]
    peaks = [i for i in range(1, len(prof) - 1) if prof[i] >= prof[i - 1] and prof[i] >= prof[i + 1]]
    peaks.sort(key=lambda i: -prof[i])
    out = []
    for i in peaks[:top]:
        a, b, c = prof[i - 1], prof[i], prof[i + 1]
        den = a - 2 * b + c
        off = 0.5 * (a - c) / den if den != 0 else 0.0
        out.append(lo + i + float(np.clip(off, -0.5, 0.5)))
    return out


def _fold(r: npt.NDArray[np.float32], scale: float) -> F64:
    """Resample so one tile is TILE pixels again, then sum every tile onto one."""
    h, w = r.shape
    nh, nw = round(h / scale), round(w / scale)
    rs = cv2.resize(r, (nw, nh), interpolation=cv2.INTER_LINEAR) if abs(scale - 1.0) > 1e-6 else r
    th, tw = nh // TILE, nw // TILE
    if th < 1 or tw < 1:
        return np.zeros((TILE, TILE))
    tiles = rs[: th * TILE, : tw * TILE].reshape(th, TILE, tw, TILE)
    return np.asarray(tiles.sum(axis=0).sum(axis=1), dtype=np.float64)


def _sync(folded: F64) -> tuple[float, int, int]:
    key = _key()
    corr = np.real(np.fft.ifft2(np.fft.fft2(folded) * np.conj(np.fft.fft2(key.sync_px))))
    idx = int(np.argmax(corr))
    dy, dx = divmod(idx, TILE)
    sd = float(corr.std())
    z = (float(corr.flat[idx]) - float(corr.mean())) / sd if sd > 0 else 0.0
    return z, dy, dx


def _read_bits(folded: F64, dy: int, dx: int) -> tuple[npt.NDArray[np.uint8], F64]:
    key = _key()
    al = np.roll(folded, (-dy, -dx), axis=(0, 1))
    chips = al.reshape(N_CHIPS, CHIP, N_CHIPS, CHIP).mean(axis=(1, 3))
    beta = float(np.mean(chips * key.sync))
    data = (chips - beta * key.sync) * key.sign
    idx = key.bit_of.ravel()
    vals = data.ravel()
    n = np.bincount(idx, minlength=N_BITS).astype(np.float64)
    mean = np.bincount(idx, weights=vals, minlength=N_BITS) / n
    var = np.bincount(idx, weights=vals * vals, minlength=N_BITS) / n - mean * mean
    t = mean / np.sqrt(np.maximum(var, 1e-12) / np.maximum(n - 1, 1))
    return (mean > 0).astype(np.uint8), np.asarray(t, dtype=np.float64)


def _crc_ok(bits: npt.NDArray[np.uint8]) -> bool:
    raw = bytes(np.packbits(bits).tolist())
    return crc16(raw[:4]) == int.from_bytes(raw[4:6], "big")


def _chase(bits: npt.NDArray[np.uint8], t: F64) -> npt.NDArray[np.uint8] | None:
    """Chase-style soft decoding: the hard decision, then 1 or 2 flips among the least reliable
    bits, first whose CRC checks wins. At most 56 tries, so the CRC-16 still rejects a random read
    with probability > 0.999, and the sync gate runs before it."""
    from itertools import combinations

    weak = np.argsort(np.abs(t))[:CHASE_BITS]
    for k in range(CHASE_FLIPS + 1):
        for flip in combinations(weak.tolist(), k):
            trial = bits.copy()
            trial[list(flip)] ^= 1
            if _crc_ok(trial):
                return trial
    return None


def detect(rgb: npt.NDArray[np.uint8]) -> Detection | None:
    """Look for a vwm1 mark; None when the image is too small to hold one tile."""
    h, w = rgb.shape[:2]
    if min(h, w) < TILE:
        return None
    top, left = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    y = _luma(rgb[top : top + MAX_SIDE, left : left + MAX_SIDE])
    r = _residual(y)
    # Coarse: each candidate period as measured; fine: +-1.5 % around the two best.
    bases = sorted(s for s in {1.0} | {p / TILE for p in _period_candidates(r)} if s * TILE <= min(r.shape))
    coarse = sorted(((*_sync(_fold(r, s)), s) for s in bases), key=lambda c: -c[0])
    # A clear coarse winner is refined alone; otherwise the runner-up gets a chance too.
    coarse = coarse[:1] if len(coarse) < 2 or coarse[0][0] >= coarse[1][0] + 3.0 else coarse[:2]
    best: tuple[float, float, int, int] | None = None
    for _z, _dy, _dx, base in coarse:
        for step in np.linspace(-0.015, 0.015, 7):
            s = base * (1 + step)
            z, dy, dx = _sync(_fold(r, s))
            if best is None or z > best[0]:
                best = (z, s, dy, dx)
    if best is None:
        return None
    z, s, dy, dx = best
    folded = _fold(r, s)
    bits, t = _read_bits(folded, dy, dx)
    fixed = _chase(bits, t) if z >= SYNC_Z_MIN else None
    found = fixed is not None
    if fixed is not None:
        bits = fixed
    raw = bytes(np.packbits(bits).tolist())
    conf = float(np.mean([math.erf(abs(v) / math.sqrt(2)) for v in t]))
    return Detection(
        found=found,
        record_id=int.from_bytes(raw[:4], "big") if found else None,
        bits=bits,
        soft=t,
        sync_z=z,
        scale=s,
        confidence=conf,
    )
