"""Watermark robustness: our vwm1 vs plain dwtDct under JPEG q75, half-size resize and a 10 % crop.

Hosts: the unwatermarked real photos in ../shared/data (eval/image/real, train/images_real) that
are at least 256 px a side, downscaled to at most 1024 px. Both codecs carry the same 48 bits
(a random 32-bit signing id + CRC-16); a read counts as *detected* only when all 48 bits come
back (the CRC passes and the id matches), and bit accuracy is over those 48 bits. dwtDct is the
reference algorithm (Stable Diffusion's encoder settings) with that payload.
False positives: every real image, unmarked, through both detectors (vwm1 and the
StableDiffusionV1 dwtDct check that verify runs).

    .venv/bin/python bench/watermark_robustness.py [--data ../shared/data] [--hosts 40] [--out wm.json]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.provenance import dwtdct, vwm
from veracity.provenance.watermark import detect_sd, load_rgb

RGB = npt.NDArray[np.uint8]
EXT = {".jpg", ".jpeg", ".png", ".webp"}


def jpeg75(a: RGB) -> RGB:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(buf).convert("RGB"))


def half(a: RGB) -> RGB:
    im = Image.fromarray(a)
    return np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.BICUBIC))


def crop10(a: RGB) -> RGB:
    """Keep 90 % of each side, off-centre (4 % from the top, 6 % from the left)."""
    h, w = a.shape[:2]
    top, left = int(h * 0.04), int(w * 0.06)
    return a[top : top + int(h * 0.9), left : left + int(w * 0.9)]


TRANSFORMS: dict[str, Callable[[RGB], RGB]] = {
    "none": lambda a: a,
    "jpeg_q75": jpeg75,
    "resize_0.5": half,
    "crop_10%": crop10,
}


def reals(data: Path) -> list[Path]:
    dirs = [data / "eval/image/real", data / "train/images_real"]
    return sorted(p for d in dirs for p in d.rglob("*") if p.suffix.lower() in EXT)


def fit(a: RGB, side: int = 1024) -> RGB:
    h, w = a.shape[:2]
    if max(h, w) <= side:
        return a
    f = side / max(h, w)
    return np.asarray(Image.fromarray(a).resize((round(w * f), round(h * f)), Image.Resampling.LANCZOS))


def psnr(a: RGB, b: RGB) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255**2 / mse) if mse > 0 else 99.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-fp", action="store_true", help="Skip the false-positive pass.")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    files = reals(args.data)
    images = [(p, a) for p in files if (a := load_rgb(p, max_side=100_000)) is not None]
    hosts = [(p, fit(a)) for p, a in images if min(a.shape[:2]) >= 256]
    pick = rng.choice(len(hosts), size=min(args.hosts, len(hosts)), replace=False)
    stats: dict[str, dict[str, list[float]]] = {
        c: {t: [] for t in TRANSFORMS} | {f"{t}_det": [] for t in TRANSFORMS} for c in ("vwm1", "dwtDct")
    }
    quality: dict[str, list[float]] = {"vwm1": [], "dwtDct": []}
    t0 = time.perf_counter()
    for i in sorted(pick.tolist()):
        _, host = hosts[i]
        rid = int(rng.integers(0, 2**32))
        want = vwm.payload_bits(rid)
        marked_v = vwm.embed(host, rid)
        payload = bytes(np.packbits(want).tolist())
        marked_d = np.ascontiguousarray(dwtdct.encode(np.ascontiguousarray(host[:, :, ::-1]), payload)[:, :, ::-1])
        quality["vwm1"].append(psnr(host, marked_v))
        quality["dwtDct"].append(psnr(host, marked_d))
        for name, tf in TRANSFORMS.items():
            det = vwm.detect(tf(marked_v))
            got = det.bits if det is not None else np.zeros_like(want)
            stats["vwm1"][name].append(float(np.mean(got == want)))
            stats["vwm1"][f"{name}_det"].append(float(det is not None and det.found and det.record_id == rid))
            att = tf(marked_d)
            dec = dwtdct.decode(np.ascontiguousarray(att[:, :, ::-1]), n_bits=len(want))
            bits = dec.bits if dec is not None else np.zeros_like(want)
            stats["dwtDct"][name].append(float(np.mean(bits == want)))
            stats["dwtDct"][f"{name}_det"].append(float(np.array_equal(bits, want)))
    embed_s = time.perf_counter() - t0

    fp_v = fp_sd = fp_d48 = 0
    clean_z: list[float] = []
    sd_checked = 0
    t1 = time.perf_counter()
    for _, a in [] if args.no_fp else images:
        det = vwm.detect(a)
        fp_v += int(det is not None and det.found)
        if det is not None:
            clean_z.append(det.sync_z)
        hit = detect_sd(a)
        if hit is not None:
            sd_checked += 1
            fp_sd += int(hit.found)
            dec = dwtdct.decode(np.ascontiguousarray(a[:, :, ::-1]), n_bits=48)
            if dec is not None:
                raw = bytes(np.packbits(dec.bits).tolist())
                fp_d48 += int(vwm.crc16(raw[:4]) == int.from_bytes(raw[4:6], "big"))
    fp_s = time.perf_counter() - t1

    n = len(pick)
    print(f"hosts: {n} real photos (>=256 px, <=1024 px), payload 48 bits; {embed_s:.0f} s")
    print("| codec | PSNR dB | " + " | ".join(f"{t} bit acc / detected" for t in TRANSFORMS) + " |")
    print("|---|---|" + "---|" * len(TRANSFORMS))
    table: dict[str, object] = {}
    for codec, s in stats.items():
        cells = [f"{np.mean(s[t]):.3f} / {np.mean(s[f'{t}_det']):.0%}" for t in TRANSFORMS]
        print(f"| {codec} | {np.mean(quality[codec]):.1f} | " + " | ".join(cells) + " |")
        table[codec] = {
            "psnr_db": float(np.mean(quality[codec])),
            **{
                t: {"bit_accuracy": float(np.mean(s[t])), "detection_rate": float(np.mean(s[f"{t}_det"]))}
                for t in TRANSFORMS
            },
        }
    print(
        f"false positives on {len(images)} unwatermarked real images: vwm1 {fp_v}/{len(images)}; "
        f"StableDiffusionV1 dwtDct {fp_sd}/{sd_checked} (>=256 px); dwtDct 48-bit CRC {fp_d48}/{sd_checked}; "
        f"{fp_s / max(len(images), 1):.2f} s/image"
    )
    if clean_z:
        print(
            f"vwm1 sync peak on unmarked images: max z {max(clean_z):.2f}, 99th pct "
            f"{np.percentile(clean_z, 99):.2f} (found needs z >= {vwm.SYNC_Z_MIN} and a CRC match)"
        )
    table["false_positives"] = {
        "images": len(images),
        "vwm1": fp_v,
        "sd_dwtdct": fp_sd,
        "sd_checked": sd_checked,
        "dwtdct_48bit_crc": fp_d48,
    }
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
