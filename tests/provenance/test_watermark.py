"""Watermarks: Stable Diffusion's dwtDct mark on real SD outputs, our vwm1 mark under attack."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.provenance.conftest import textured_rgb

from veracity.provenance import dwtdct, vwm
from veracity.provenance.watermark import SD_NAME, detect_sd, load_rgb

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}


def _jpeg(rgb: np.ndarray, q: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
    return np.asarray(Image.open(buf).convert("RGB"))


def _real_images(shared: Path) -> list[Path]:
    dirs = [shared / "eval/image/real", shared / "train/images_real"]
    return sorted(p for d in dirs for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXT)


@pytest.mark.realdata
def test_sd_samples_decode_to_stable_diffusion_v1(shared_data: Path) -> None:
    samples = sorted((shared_data / "eval/watermark").glob("*.png"))
    assert samples
    for path in samples:
        rgb = load_rgb(path)
        assert rgb is not None
        hit = detect_sd(rgb)
        assert hit is not None and hit.found, path.name
        assert hit.payload == "StableDiffusionV1" and hit.name == SD_NAME
        assert hit.bit_accuracy == 1.0


@pytest.mark.realdata
def test_no_real_image_carries_the_sd_mark(shared_data: Path) -> None:
    reals = _real_images(shared_data)
    assert len(reals) >= 100
    checked = 0
    for path in reals:
        rgb = load_rgb(path)
        if rgb is None:
            continue
        hit = detect_sd(rgb)
        if hit is None:  # under 256x256: the codec does not apply
            continue
        checked += 1
        assert not hit.found, (path.name, hit.bit_accuracy)
    assert checked >= 100


def test_dwtdct_encode_decode_round_trip() -> None:
    bgr = textured_rgb(320, 320)[:, :, ::-1].copy()
    marked = dwtdct.encode(bgr, b"Veracity")
    decoded = dwtdct.decode(marked, n_bits=64)
    assert decoded is not None and decoded.payload == b"Veracity"
    assert dwtdct.decode(bgr[:200, :200]) is None  # too small: no claim either way


def test_vwm_round_trip_and_attacks() -> None:
    rgb = textured_rgb(384, 448, seed=3)
    rid = 0x5EC0_0DE5
    marked = vwm.embed(rgb, rid)
    psnr = 10 * np.log10(255**2 / np.mean((marked.astype(float) - rgb) ** 2))
    assert psnr > 36
    h, w = marked.shape[:2]
    attacks = {
        "none": marked,
        "jpeg75": _jpeg(marked),
        "half": np.asarray(Image.fromarray(marked).resize((w // 2, h // 2), Image.Resampling.BILINEAR)),
        "crop10": marked[17 : h - 21, 13 : w - 31],
    }
    for name, img in attacks.items():
        det = vwm.detect(img)
        assert det is not None and det.found, name
        assert det.record_id == rid and det.payload_hex == f"{rid:08x}", name


def test_vwm_absent_on_unmarked_and_crc_guards() -> None:
    det = vwm.detect(textured_rgb(384, 448, seed=4))
    assert det is not None and not det.found and det.record_id is None
    bits = vwm.payload_bits(0x01020304)
    assert len(bits) == vwm.N_BITS
    with pytest.raises(ValueError, match="32-bit"):
        vwm.payload_bits(2**32)
    with pytest.raises(ValueError, match="too small"):
        vwm.embed(textured_rgb(100, 500), 1)


@pytest.mark.realdata
def test_vwm_no_false_positive_on_a_sample_of_real_images(shared_data: Path) -> None:
    """A sample keeps the suite fast; bench/watermark_robustness.py checks every real image."""
    reals = _real_images(shared_data)[::8]
    for path in reals:
        rgb = load_rgb(path)
        if rgb is None:
            continue
        det = vwm.detect(rgb)
        assert det is None or not det.found, path.name
