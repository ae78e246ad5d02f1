"""The second view of ``synthetic_image``: EfficientNet-Lite0 (ImageNet init) fine-tuned on
native-resolution 128 px crops (Wang et al. 2020, Corvi et al. 2023: a CNN that sees the
pixels as the generator left them, with blur and re-compression in training, finds the
up-sampling traces that survive re-saving).

Same data and same degradation chain as the CLIP probe (:func:`veracity.train.synthetic_image.augment`,
drawn the same way for both classes), except that the chain never shrinks an image below the
crop side (a 128 px face would otherwise be enlarged again). ``CROPS_PER_IMAGE`` crops per
training image are drawn once and kept in one ``.npz`` under the cache (a few hundred MB, a few
minutes to build); training samples them with class- and source-balanced weights, mirrors at
random. Held out: the images :func:`veracity.train.synthetic_image.is_holdout` marks (a quarter,
by file name hash), the same ones the CLIP probe and the calibration hold out.

CPU budget: stem and the first ``FREEZE_BLOCKS`` blocks frozen (ImageNet statistics kept),
``torch.set_num_threads(threads)``, a few thousand steps. Exported to ONNX with float16 weights
(cast to float32 in the graph) and a per-position logit map (``cam``) for the heatmap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.detectors.synthetic_image import CNN_CROP
from veracity.models.patch_cnn import normalise
from veracity.train.common import Item, Progress
from veracity.train.spectral import balanced_weights
from veracity.train.synthetic_image import augment, is_holdout, load_rgb, random_crop

CROPS_PER_IMAGE = 6
FREEZE_BLOCKS = 3
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class CnnConfig:
    steps: int = 1500
    batch: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    log_every: int = 25
    val_every: int = 500


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


class PatchClassifier:
    """EfficientNet-Lite0 with a one-logit head; torch imported lazily."""

    def __init__(self, seed: int) -> None:
        import torch
        from torch import nn

        from veracity.train.effnet_lite import HEAD, load_imagenet

        torch.manual_seed(seed)
        self.torch = torch
        self.net = load_imagenet()
        self.net._fc = nn.Linear(HEAD, 1)
        nn.init.normal_(self.net._fc.weight, std=0.01)
        nn.init.zeros_(self.net._fc.bias)
        self.frozen = [self.net._conv_stem, self.net._bn0, *self.net._blocks[:FREEZE_BLOCKS]]
        for module in self.frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def train_mode(self) -> None:
        self.net.train()
        for module in self.frozen:
            module.eval()

    def logits(self, x: Any) -> Any:
        with self.torch.no_grad():
            h = self.net.stem(x)
            for block in self.net._blocks[:FREEZE_BLOCKS]:
                h = block(h)
        f = self.net.features(h, start_block=FREEZE_BLOCKS, stem=False).mean(dim=(2, 3))
        return self.net._fc(self.net._dropout(f)).squeeze(1)

    def predict_logits(self, crops: U8, batch: int = 64) -> npt.NDArray[np.float64]:
        self.net.eval()
        out: list[npt.NDArray[np.float64]] = []
        with self.torch.no_grad():
            for s in range(0, len(crops), batch):
                out.append(np.asarray(self.logits(self.torch.from_numpy(normalise(crops[s:s + batch]))).numpy(),
                                      dtype=np.float64))
        return np.concatenate(out) if out else np.zeros(0)


def train_cnn(items: Sequence[Item], crops: U8, owner: npt.NDArray[np.int64], config: CnnConfig,
              ckpt: Path, log: Progress) -> tuple[PatchClassifier, list[dict[str, float]]]:
    """Fine-tune on the crops of the non-held-out images; resumes from ``ckpt`` (saved every
    ``val_every`` steps). Returns the model and the held-out crop-AUC history."""
    import torch

    from veracity.models.metrics import roc_auc

    torch.set_num_threads(config.threads)
    clf = PatchClassifier(config.seed)
    hold = np.asarray([is_holdout(items[i]) for i in owner])
    labels = np.asarray([items[i].label for i in owner], dtype=np.int64)
    groups = [items[i].group for i in owner]
    fit_idx = np.flatnonzero(~hold)
    val_idx = np.flatnonzero(hold)
    w = balanced_weights(labels[fit_idx], [groups[i] for i in fit_idx])
    p = w / w.sum()
    params = [q for q in clf.net.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    history: list[dict[str, float]] = []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        clf.net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        start = int(state["step"])
        history = list(state["history"])
        log(f"resumed from step {start}")
    warm = max(1, config.steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return config.lr * (step + 1) / warm
        return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, config.steps - warm)))

    rng = np.random.default_rng([config.seed, start])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    run_loss = 0.0
    t0 = time.perf_counter()
    for step in range(start, config.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pick = rng.choice(fit_idx, size=config.batch, p=p)
        x = crops[pick]
        flip = rng.uniform(size=len(pick)) < 0.5
        x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
        clf.train_mode()
        out = clf.logits(torch.from_numpy(normalise(x)))
        loss = loss_fn(out, torch.from_numpy(labels[pick].astype(np.float32)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run_loss += float(loss.item())
        if (step + 1) % config.log_every == 0:
            rate = (step + 1 - start) * config.batch / (time.perf_counter() - t0)
            log(f"step {step + 1}/{config.steps} loss {run_loss / config.log_every:.4f} lr {lr_at(step):.2e} "
                f"{rate:.1f} crops/s")
            run_loss = 0.0
        if (step + 1) % config.val_every == 0 or step + 1 == config.steps:
            z = clf.predict_logits(crops[val_idx])
            auc = roc_auc(labels[val_idx], z)
            history.append({"step": step + 1, "holdout_crop_auc": round(auc, 4)})
            log(f"held-out crop AUC at step {step + 1}: {auc:.4f}")
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"net": clf.net.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                        "history": history}, ckpt)
    return clf, history


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
    _halve_weights(tmp, out)


def _halve_weights(src: Path, out: Path) -> None:
    """Store float32 initialisers as float16 with a Cast back in the graph (half the file, the
    arithmetic stays float32); ``src`` is removed."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts = []
    kept = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 256:
            half = numpy_helper.from_array(arr.astype(np.float16), name=init.name + "_fp16")
            kept.append(half)
            casts.append(onnx.helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                               name=init.name + "_cast"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    model.producer_name = "veracity"
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    src.unlink()


def export_onnx(clf: PatchClassifier, out: Path) -> None:
    """ONNX: ``input`` (N, 3, CNN_CROP, CNN_CROP) -> ``logit`` (N,), ``cam`` (N, h, w) (the head
    applied at every position of the last feature map; its mean is the logit). Weights stored as
    float16 and cast back to float32 in the graph."""
    import torch

    net = clf.net.eval()

    class WithCam(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.net.features(x)
            cam = torch.einsum("nchw,c->nhw", f, self.net._fc.weight[0]) + self.net._fc.bias[0]
            return cam.mean(dim=(1, 2)), cam

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".fp32.onnx")
    torch.onnx.export(WithCam(), (torch.zeros(1, 3, CNN_CROP, CNN_CROP),), str(tmp), dynamo=False,
                      input_names=["input"], output_names=["logit", "cam"], opset_version=17,
                      dynamic_axes={"input": {0: "n"}, "logit": {0: "n"}, "cam": {0: "n"}})
    _halve_weights(tmp, out)
