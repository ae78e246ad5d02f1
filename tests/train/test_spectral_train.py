"""Training code for the spectral model, on a tiny synthetic data folder (no shared data)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veracity.detectors.spectral import N_FEATURES, SpectralModel
from veracity.errors import ConfigError
from veracity.models.cards import read_card
from veracity.train.spectral import (
    balanced_weights,
    fit_logistic,
    train_spectral,
    training_views,
)

COLUMNS = ["path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path",
           "license", "notes"]


def natural(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    f = np.fft.fftfreq(n)
    r = np.hypot(*np.meshgrid(f, f))
    r[0, 0] = 1.0
    x = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) / r))
    gray = (x - x.mean()) / x.std() * 40 + 128
    return np.clip(np.repeat(gray[:, :, None], 3, axis=2), 0, 255).astype(np.uint8)


def generated(rng: np.random.Generator, n: int) -> npt.NDArray[np.uint8]:
    """A 'generator' that up-samples 2x by pixel repetition: a strong spectral fingerprint."""
    small = natural(rng, n // 2)
    return np.asarray(cv2.resize(small, (n, n), interpolation=cv2.INTER_NEAREST), dtype=np.uint8)


def make_data(root: Path, n_train: int = 14, n_eval: int = 6) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    plan = [("train", "train/images_fake/gen", "fake", n_train, generated, 320),
            ("train", "train/images_real/cam", "real", n_train, natural, 320),
            ("train", "train/faces_real/tiny", "real", 2, natural, 200),  # too small: left out
            ("eval", "eval/image/fake", "fake", n_eval, generated, 400),
            ("eval", "eval/image/real", "real", n_eval, natural, 400)]
    for split, folder, label, count, make, side in plan:
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rel = f"{folder}/{label}_{i}.png"
            Image.fromarray(make(rng, side)).save(root / rel)
            rows.append({"path": rel, "split": split, "label": label,
                         "detail": "synthetic" if label == "fake" else "",
                         "kind": "image", "source_repo": f"test/{folder.split('/')[-1]}",
                         "commit": "0" * 40, "source_path": rel, "license": "CC0", "notes": ""})
    with (root / "MANIFEST.tsv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_train_writes_a_verified_card_with_metrics(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    out = tmp_path / "out" / "spectral-test.json"
    messages: list[str] = []
    card = train_spectral(data, out, seed=1, progress=messages.append, detector_eval=False)
    assert read_card(out) == card
    SpectralModel.from_card(card)
    assert card.metrics["validation"]["auc"] > 0.9
    table = card.metrics["eval_image"]["centre_square"]
    assert table["n_real"] == 6
    assert table["n_fake"] == 6
    assert table["auc"] > 0.9
    assert "synthetic" in table["fake_kind_vs_all_real"]
    assert isinstance(card.training_data, list)
    names = {t.name for t in card.training_data}
    assert names == {"train/images_fake/gen", "train/images_real/cam"}
    assert any("left out 2 images of train/faces_real/tiny" in m for m in messages)


def test_training_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", n_train=8, n_eval=2)
    a = train_spectral(data, tmp_path / "a.json", seed=3, detector_eval=False)
    b = train_spectral(data, tmp_path / "b.json", seed=3, detector_eval=False)
    assert a.sha256 == b.sha256


def test_missing_manifest_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MANIFEST"):
        train_spectral(tmp_path, tmp_path / "x.json")


def test_views_skip_small_images_and_cap_native_size() -> None:
    rng = np.random.default_rng(0)
    assert training_views(natural(rng, 200)) == []
    assert [s for s, _ in training_views(natural(rng, 300))] == [300, 256]
    sides = [s for s, _ in training_views(natural(rng, 1024))]
    assert sides == [256, 320, 400, 512]  # no 1024 native view
    assert all(f.shape == (N_FEATURES,) for _, f in training_views(natural(rng, 300)))


def test_balanced_weights_give_each_class_and_source_equal_mass() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    groups = ["a", "a", "b", "c", "c", "c", "c", "d"]
    w = balanced_weights(labels, groups)
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum())
    assert w[:2].sum() == pytest.approx(w[2])
    assert w[3:7].sum() == pytest.approx(w[7])


def test_fit_logistic_recovers_direction_and_regularises() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 2] + 0.5)))
    y = (rng.random(400) < p).astype(np.int64)
    coef, intercept = fit_logistic(x, y, np.ones(400), l2=1e-6)
    np.testing.assert_allclose(coef, [2.0, 0.0, -1.0], atol=0.45)
    assert intercept == pytest.approx(0.5, abs=0.35)
    strong, _ = fit_logistic(x, y, np.ones(400), l2=1e4)
    assert np.linalg.norm(strong) < 0.1 * np.linalg.norm(coef)
