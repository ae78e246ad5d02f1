"""The spectrum view's features on synthetic arrays: fixed length and finite on any crop,
up-sampling periodicity shows as peaks at its frequencies, and the level of the noise says less
than its shape."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from veracity.models.residual_spectrum import (
    N_BINS,
    N_FEATURES,
    PERIODS,
    batch_features,
    feature_config,
    radial_profile,
    spectrum_features,
)

U8 = npt.NDArray[np.uint8]
PEAKS = slice(N_BINS, N_BINS + 2 * len(PERIODS))


def scene(seed: int, side: int = 128) -> npt.NDArray[np.float64]:
    """Smooth content plus a little sensor-like noise (no periodicity)."""
    rng = np.random.default_rng(seed)
    return np.asarray(cv2.GaussianBlur(rng.normal(128, 60, (side, side)), (0, 0), 2)
                      + rng.normal(0, 2, (side, side)), dtype=np.float64)


def with_tile(x: npt.NDArray[np.float64], period: int, seed: int = 9) -> U8:
    """``x`` plus a fixed ``period`` x ``period`` pattern repeated over it (the checkerboard an
    up-sampling layer leaves)."""
    tile = np.random.default_rng(seed).normal(0, 6, (period, period))
    reps = (x.shape[0] // period, x.shape[1] // period)
    return np.clip(x + np.tile(tile, reps), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape", [(128, 128, 3), (17, 23, 3), (16, 16), (129, 77, 3), (10, 10, 3), (64, 64, 4)])
def test_fixed_length_and_finite_on_any_crop(shape: tuple[int, ...]) -> None:
    crop = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    f = spectrum_features(crop)
    assert f.shape == (N_FEATURES,) and np.all(np.isfinite(f))


def test_flat_crop_gives_zeros_and_the_config_names_the_length() -> None:
    assert not spectrum_features(np.full((64, 64, 3), 80, dtype=np.uint8)).any()
    assert feature_config()["n_features"] == N_FEATURES
    assert batch_features([]).shape == (0, N_FEATURES)
    rows = batch_features([np.zeros((32, 32, 3), np.uint8), np.full((40, 50, 3), 7, np.uint8)])
    assert rows.shape == (2, N_FEATURES)


@pytest.mark.parametrize(("period", "slot"), [(2, 0), (2, 1), (4, 2), (4, 3), (8, 5)])
def test_periodic_pattern_raises_the_peak_of_its_period(period: int, slot: int) -> None:
    plain = np.mean([spectrum_features(np.clip(scene(s), 0, 255).astype(np.uint8))[PEAKS] for s in range(4)], axis=0)
    tiled = np.mean([spectrum_features(with_tile(scene(s), period))[PEAKS] for s in range(4)], axis=0)
    assert tiled[slot] > plain[slot] + 1.0


def test_up_sampled_noise_has_a_stronger_half_nyquist_peak_than_white_noise() -> None:
    """Zero-insertion 2x up-sampling then a small kernel (a transposed convolution) puts a replica
    of the low band at N/2; white noise has no peak there."""
    rng = np.random.default_rng(3)
    white = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    low = cv2.GaussianBlur(rng.normal(128, 60, (64, 64)), (0, 0), 1.5)
    up = np.zeros((128, 128))
    up[::2, ::2] = low
    up = cv2.filter2D(up, -1, np.asarray([[0.5, 1.0, 0.25], [1.0, 1.0, 0.5], [0.25, 0.5, 0.25]]))
    up_u8 = np.clip(up + rng.normal(0, 1, up.shape), 0, 255).astype(np.uint8)
    assert spectrum_features(up_u8)[N_BINS] > spectrum_features(white)[N_BINS] + 1.0


def test_profile_is_about_shape_not_level() -> None:
    x = scene(1)
    dim = np.clip(x * 0.5, 0, 255).astype(np.uint8)
    bright = np.clip(x * 1.0, 0, 255).astype(np.uint8)
    a, b = spectrum_features(dim)[:N_BINS], spectrum_features(bright)[:N_BINS]
    assert abs(float(a.mean())) < 1e-9 and abs(float(b.mean())) < 1e-9
    assert float(np.max(np.abs(a - b))) < 0.5


def test_radial_profile_of_a_tiny_spectrum_fills_empty_rings() -> None:
    prof = radial_profile(np.zeros((16, 16)))
    assert prof.shape == (N_BINS,) and np.all(np.isfinite(prof))
