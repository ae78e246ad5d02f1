"""The second view of ``synthetic_image``: the frozen ImageNet EfficientNet-Lite0 on native
128 px crops, its feature maps pooled (per-channel mean and standard deviation of blocks
``TAPS``) and a linear probe on them (fitted in :mod:`veracity.train.synthetic_image`).

Why frozen: fine-tuning the network (Wang et al. 2020, Corvi et al. 2023) was tried first and
did not fit this CPU share: with the stem and three blocks frozen, batch 32 at 128 px, 25 steps
had not finished after 150 s (> 6 s a step on the shared two cores), so 1,500 steps would take
hours. Extracting pooled features takes one forward pass per crop (~5 min for 7,700 crops).

Same data and the same degradation chain as the CLIP probe (:func:`veracity.train.synthetic_image.augment`,
drawn the same way for both classes), except that the chain never shrinks an image below the
crop side (a 128 px face would otherwise be enlarged again). ``CROPS_PER_IMAGE`` crops per
training image are drawn once and kept in one ``.npz`` under the cache (a few hundred MB, a few
minutes to build). Exported to ONNX with float16 weights (cast to float32 in the graph).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.detectors.synthetic_image import CNN_CROP
from veracity.train.common import Item, Progress
from veracity.train.image_aug import augment, load_rgb, random_crop
from veracity.train.onnx_export import halve_weights

CROPS_PER_IMAGE = 6
U8 = npt.NDArray[np.uint8]


def build_crops(items: Sequence[Item], path: Path, seed: int, log: Progress) -> tuple[U8, npt.NDArray[np.int64]]:
    """``(crops (N, CNN_CROP, CNN_CROP, 3), owner item index (N,))``, built once and kept in ``path``."""
    if path.is_file():
        with np.load(path) as z:
            if int(z["n_items"]) == len(items) and int(z["seed"]) == seed:
                return np.asarray(z["crops"], dtype=np.uint8), np.asarray(z["owner"], dtype=np.int64)
    crops: list[U8] = []
    owner: list[int] = []
    started = time.perf_counter()
    for i, item in enumerate(items):
        rng = np.random.default_rng([seed, i, 7])
        rgb = load_rgb(item)
        for _ in range(CROPS_PER_IMAGE):
            img = augment(rgb, rng, min_side=CNN_CROP)
            crop = random_crop(img, CNN_CROP, rng)
            if crop.shape[0] < CNN_CROP:  # an image smaller than the crop to begin with
                import cv2

                crop = np.asarray(cv2.resize(crop, (CNN_CROP, CNN_CROP), interpolation=cv2.INTER_CUBIC), np.uint8)
            crops.append(crop)
            owner.append(i)
        if (i + 1) % 100 == 0 or i + 1 == len(items):
            log(f"cnn crops: {i + 1}/{len(items)} images ({time.perf_counter() - started:.0f} s)")
    arr = np.stack(crops)
    own = np.asarray(owner, dtype=np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, crops=arr, owner=own, n_items=len(items), seed=seed)
    tmp.replace(path)
    return arr, own


TAPS = (2, 4, 7, 10, 15)  # blocks whose outputs are pooled: strides 4, 8, 16, 16, 32


def pooled_features_module() -> Any:
    """The frozen ImageNet EfficientNet-Lite0 as a feature extractor: per-channel mean and
    standard deviation of the outputs of the ``TAPS`` blocks (low-level texture statistics at
    several depths; ``FEATURE_DIM`` numbers per crop)."""
    import torch

    from veracity.train.effnet_lite import load_imagenet

    net = load_imagenet().eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.net.stem(x)
            outs: list[torch.Tensor] = []
            for i, block in enumerate(self.net._blocks[:max(TAPS) + 1]):
                h = block(h)
                if i in TAPS:
                    mean = h.mean(dim=(2, 3))
                    outs.extend((mean, torch.sqrt(((h - mean[:, :, None, None]) ** 2).mean(dim=(2, 3)) + 1e-6)))
            return torch.cat(outs, dim=1)

    return Pooled().eval()


def export_features_onnx(out: Path) -> None:
    """ONNX ``input`` (N, 3, CNN_CROP, CNN_CROP) -> ``features`` (N, FEATURE_DIM); float16 weights."""
    import torch

    module = pooled_features_module()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".fp32.onnx")
    with torch.no_grad():
        torch.onnx.export(module, (torch.zeros(1, 3, CNN_CROP, CNN_CROP),), str(tmp), dynamo=False,
                          input_names=["input"], output_names=["features"], opset_version=17,
                          dynamic_axes={"input": {0: "n"}, "features": {0: "n"}})
    halve_weights(tmp, out)

