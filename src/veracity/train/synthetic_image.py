"""Train the synthetic_image head: logistic regression on frozen CLIP embeddings.

    veracity train synthetic_image --data ../shared/data

Training reads only ``train/`` rows of MANIFEST.tsv: fakes from ``train/images_fake`` (every
image, several random views each), reals from ``train/images_real``, a seeded subset of
``train/faces_real/utkface`` and frames of the sharper ``train/video_real`` clips (real faces at
256-700 px; see :func:`video_items`). The LFW-derived faces are left out: they are grayscale and no fake is,
so "grey means real" would be learnt. Every view, real or fake, goes through the same random
crop / bottleneck size / JPEG quality / flip (:func:`random_view`), which removes the format,
size and compression differences between the classes (../shared/data/README.md).

The ridge strength is chosen by leave-one-fake-source-out validation on train (a generator the
head has not seen vs held-out reals), never on eval. ``eval/image`` is scored once afterwards,
per source, and the re-encoding check (each eval real re-saved as PNG, WebP and JPEG q75) is
recorded in the card. Embeddings are cached under ``<cache_dir>/embeddings`` so a retrain costs
seconds; the first run embeds ~1,400 views (minutes on two cores).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.config import Settings
from veracity.detectors.synthetic_image import (
    CARD_NAME,
    TTA_QUALITIES,
    LinearHead,
    SyntheticImageDetector,
    inference_views,
    preprocessing_config,
    random_view,
)
from veracity.models.cards import ModelCard, params_sha256, write_card
from veracity.models.clip import CARD_NAME as ENCODER_CARD
from veracity.models.clip import ClipEncoder
from veracity.models.fetch import load_fetched
from veracity.models.metrics import roc_auc
from veracity.train.common import (
    FeatureCache,
    Item,
    Progress,
    Roots,
    cap_per_group,
    list_items,
    training_sets,
)
from veracity.train.spectral import auc_table, balanced_weights, fit_logistic, read_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
TRAIN_DIRS = ("train/images_fake/", "train/images_real/", "train/faces_real/")
EVAL_DIR = "eval/image/"
CAPS = {"train/faces_real/utkface": 400, "train/faces_real/fe_lfw_gray": 0}
VIDEO_DIR = "train/video_real/"
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mov", ".avi", ".webm", ".mkv")
VIDEO_MIN_SIDE = 240  # only clips sharp enough to be seen at the bottleneck without up-sampling
FRAMES_PER_CLIP = 4
VIDEO_GROUP = "train/video_real"
VIEWS_FAKE = 3
VIEWS_FAKE_FACES = 8  # the few GAN faces: the one fake source that looks like eval
VIEWS_REAL = 1
VIEWS_REAL_SCENES = 2  # ImageNet: the non-face reals, so "not a face" does not mean "fake"
L2_GRID = (1.0, 10.0, 30.0, 100.0, 300.0)
FloatArray = npt.NDArray[np.float64]


def video_items(data_root: Roots, log: Progress) -> list[Item]:
    """``FRAMES_PER_CLIP`` frame items (``rel#k``) of each train/video_real clip at least
    ``VIDEO_MIN_SIDE`` px: real faces at 256-700 px. Without them the only sharp, high-resolution
    faces in training would be the StyleGAN fakes (the real faces are 200 px UTKFace crops), and
    face sharpness would stand in for the label. All clips form one source for the weights."""
    import av

    out: list[Item] = []
    for it in list_items(data_root, "train", (VIDEO_DIR,), VIDEO_SUFFIXES, log):
        with av.open(str(it.path)) as container:
            ctx = container.streams.video[0].codec_context
            side = min(int(ctx.width), int(ctx.height))
        if side < VIDEO_MIN_SIDE:
            continue
        out.extend(dataclasses.replace(it, rel=f"{it.rel}#{k}", group=VIDEO_GROUP) for k in range(FRAMES_PER_CLIP))
    return out


@functools.lru_cache(maxsize=2)
def _clip_frames(path: Path) -> tuple[npt.NDArray[np.uint8], ...]:
    """``FRAMES_PER_CLIP`` RGB frames spread over the clip (decoded once, in order)."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    idx = np.linspace(0, len(frames) - 1, FRAMES_PER_CLIP + 2)[1:-1].round().astype(int)
    return tuple(np.ascontiguousarray(frames[i], dtype=np.uint8) for i in idx)


def load_rgb(item: Item) -> npt.NDArray[np.uint8]:
    """An image file, or frame ``k`` of a clip for ``rel#k`` items."""
    if "#" in item.rel:
        return _clip_frames(item.path)[int(item.rel.rsplit("#", 1)[1])]
    return read_rgb(item.path)


def n_views(item: Item) -> int:
    if item.label == 1:
        return VIEWS_FAKE_FACES if "stylegan" in item.group else VIEWS_FAKE
    return VIEWS_REAL_SCENES if "images_real" in item.group else VIEWS_REAL


def resave(rgb: npt.NDArray[np.uint8], fmt: str, **kwargs: Any) -> npt.NDArray[np.uint8]:
    """Encode and decode with Pillow, as a user re-saving the file would."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kwargs)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


RESAVES: dict[str, dict[str, Any]] = {"png": {"fmt": "PNG"}, "webp": {"fmt": "WEBP", "quality": 80},
                                      "jpeg75": {"fmt": "JPEG", "quality": 75}}


def embed_items(items: Sequence[Item], encoder: ClipEncoder, cache: FeatureCache, seed: int,
                log: Progress) -> tuple[FloatArray, list[int]]:
    """All training views: rows of embeddings and, per row, the item index."""
    rows: list[FloatArray] = []
    owner: list[int] = []
    started = time.perf_counter()
    fresh = 0
    for i, item in enumerate(items):
        k = n_views(item)
        key = f"train:{item.rel}:{k}:{seed}"
        emb = cache.get(key)
        if emb is None or emb.shape[0] != k:
            rng = np.random.default_rng([seed, i, len(item.rel)])
            rgb = load_rgb(item)
            emb = encoder.embed([random_view(rgb, rng) for _ in range(k)])
            cache.put(key, emb)
            fresh += 1
        rows.extend(np.asarray(emb, dtype=np.float64))
        owner.extend([i] * k)
        if (i + 1) % 50 == 0 or i + 1 == len(items):
            log(f"train embeddings: {i + 1}/{len(items)} images ({fresh} embedded now, "
                f"{time.perf_counter() - started:.0f} s)")
    return np.vstack(rows), owner


def embed_eval(items: Sequence[Item], encoder: ClipEncoder, cache: FeatureCache, variant: str,
               log: Progress) -> FloatArray:
    """``len(TTA_QUALITIES)`` rows per item: the inference copies, one encoder run each."""
    out: list[FloatArray] = []
    for i, item in enumerate(items):
        key = f"eval:{item.rel}:{variant}:tta{'-'.join(map(str, TTA_QUALITIES))}"
        emb = cache.get(key)
        if emb is None:
            rgb = read_rgb(item.path)
            if variant != "original":
                other = resave(rgb, **RESAVES[variant])
                same = np.array_equal(other, rgb)  # lossless (PNG): the original's copies, not re-run
                rgb = other
                if same:
                    emb = cache.get(key.replace(f":{variant}:", ":original:"))
            if emb is None:
                emb = encoder.embed(inference_views(rgb))
            cache.put(key, emb)
        out.extend(np.asarray(emb, dtype=np.float64))
        if (i + 1) % 50 == 0 or i + 1 == len(items):
            log(f"eval embeddings ({variant}): {i + 1}/{len(items)}")
    return np.vstack(out)


def fit_head(x: FloatArray, y: npt.NDArray[np.int64], groups: Sequence[str], l2: float) -> LinearHead:
    mean = x.mean(axis=0)
    std = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    coef, intercept = fit_logistic((x - mean) / std, y, balanced_weights(y, groups), l2=l2)
    return LinearHead(version=SyntheticImageDetector.version, mean=mean, std=std, coef=coef, intercept=intercept)


def leave_source_out(x: FloatArray, y: npt.NDArray[np.int64], groups: Sequence[str], owner: npt.NDArray[np.int64],
                     l2: float, seed: int) -> dict[str, float]:
    """For each fake source: train without it (and without a seeded 25% of the real images),
    then AUC of that source's fakes against the held-out reals (image-level: views averaged)."""
    g = np.asarray(groups)
    rng = np.random.default_rng(seed)
    real_items = np.unique(owner[y == 0])
    held_real = set(rng.choice(real_items, size=max(1, real_items.size // 4), replace=False).tolist())
    is_held_real = np.isin(owner, sorted(held_real))
    out: dict[str, float] = {}
    for source in sorted(set(g[y == 1].tolist())):
        test_fake = (y == 1) & (g == source)
        fit = ~test_fake & ~is_held_real
        head = fit_head(x[fit], y[fit], g[fit].tolist(), l2)
        test = test_fake | is_held_real
        scores = head.logits(x[test])
        ids = owner[test]
        labels = y[test]
        uniq = np.unique(ids)
        img_scores = np.asarray([scores[ids == u].mean() for u in uniq])
        img_labels = np.asarray([labels[ids == u][0] for u in uniq])
        out[source] = round(roc_auc(img_labels, img_scores), 4)
    return out


def train_synthetic_image(data_root: Roots, out: Path, *, settings: Settings | None = None, seed: int = 0,
                          progress: Progress | None = None, measure_eval: bool = True) -> ModelCard:
    """Embed, choose the ridge by leave-one-fake-source-out on train, fit on all of train,
    measure on eval/image, write the card to ``out``."""
    log = progress or (lambda _m: None)
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    enc_card, enc_path = load_fetched(ENCODER_CARD, settings.cache_dir)
    encoder = ClipEncoder(enc_path, threads=settings.onnx_threads)
    views_config = {k: v for k, v in preprocessing_config().items() if k != "tta_qualities"}
    cache = FeatureCache(settings.cache_dir / "embeddings" / "synthetic_image",
                         {"preprocessing": views_config, "encoder_sha256": enc_card.sha256})
    rng = np.random.default_rng(seed)
    all_items = list_items(data_root, "train", TRAIN_DIRS, IMAGE_SUFFIXES, log)
    items = sorted(cap_per_group(all_items, CAPS, rng) + video_items(data_root, log), key=lambda i: i.rel)
    log(f"training images: {len(items)} of {len(all_items)} listed "
        f"({dict(sorted(Counter(i.group for i in items).items()))})")

    x, owner_list = embed_items(items, encoder, cache, seed, log)
    owner = np.asarray(owner_list, dtype=np.int64)
    y = np.asarray([items[i].label for i in owner_list], dtype=np.int64)
    groups = [items[i].group for i in owner_list]

    cv: dict[str, dict[str, float]] = {}
    for l2 in L2_GRID:
        cv[str(l2)] = leave_source_out(x, y, groups, owner, l2, seed)
        log(f"leave-one-fake-source-out, l2={l2}: {cv[str(l2)]}")
    best_l2 = max(L2_GRID, key=lambda v: float(np.mean(list(cv[str(v)].values()))))
    log(f"chosen l2={best_l2} (mean held-out-source AUC {np.mean(list(cv[str(best_l2)].values())):.3f})")
    head = fit_head(x, y, groups, best_l2)

    metrics: dict[str, Any] = {
        "train_leave_one_fake_source_out": {
            "auc_by_held_out_source": cv[str(best_l2)], "l2": best_l2,
            "l2_grid_mean_auc": {k: round(float(np.mean(list(v.values()))), 4) for k, v in cv.items()},
            "note": "train only: each fake source left out of fitting and scored against a held-out 25% "
                    "of the real training images; chooses the ridge strength",
        },
    }
    if measure_eval:
        ev = list_items(data_root, "eval", (EVAL_DIR,), IMAGE_SUFFIXES, log)
        labels = [it.label for it in ev]
        n_tta = len(TTA_QUALITIES)
        scores = head.predict_views(embed_eval(ev, encoder, cache, "original", log), n_tta)
        table = auc_table(labels, scores.tolist(), [it.group for it in ev], [it.detail for it in ev])
        log(f"eval/image AUC {table['auc']:.3f} (real {table['n_real']}, fake {table['n_fake']})")
        reals = [it for it in ev if it.label == 0]
        base = np.asarray([s for s, it in zip(scores, ev, strict=True) if it.label == 0])
        resaved: dict[str, Any] = {}
        for variant in RESAVES:
            other = head.predict_views(embed_eval(reals, encoder, cache, variant, log), n_tta)
            flips = int(np.sum((base >= 0.5) != (other >= 0.5)))
            resaved[variant] = {"max_abs_change": round(float(np.max(np.abs(other - base))), 4),
                                "mean_abs_change": round(float(np.mean(np.abs(other - base))), 4),
                                "label_flips_at_0.5": flips}
            log(f"eval reals re-saved as {variant}: max |change| {resaved[variant]['max_abs_change']}, "
                f"flips {flips}/{len(reals)}")
        metrics["eval_image"] = table
        metrics["eval_image"]["note"] = ("eval/image, never trained on: whole image through inference_views() "
                                         "(mean logit over the TTA copies) at the "
                                         "inference settings, as the detector scores a still")
        metrics["eval_image_resave_invariance"] = {**resaved, "n_real": len(reals),
                                                   "note": "each eval real re-saved with Pillow; score change"}

    params = head.params()
    params["l2"] = best_l2
    training_data = training_sets(items, Counter(it.group for it in items),
                                  sources={VIDEO_GROUP: "several (see MANIFEST.tsv)"})
    card = ModelCard(
        name=CARD_NAME,
        version=SyntheticImageDetector.version,
        kind="logistic",
        params=params,
        sha256=params_sha256(params),
        input=f"512-d unit CLIP ViT-B/16 image embedding ({ENCODER_CARD}) of one prepared image",
        preprocessing=(
            "centre square -> 176x176 (INTER_AREA) -> JPEG round trip at q80/85/90/95 (4 copies, logits "
            "averaged) -> CLIP input (bicubic to 224, "
            "CLIP mean/std) -> int8 CLIP encoder -> L2-normalise -> standardise with stored mean/std. Training "
            "views, identical for both classes: 70% first re-saved at native size (JPEG or WebP q60-95), random "
            "square crop 75-100% of the short side, side 144-208, JPEG q70-95, random flip"),
        training_data=training_data,
        metrics=metrics,
        license="head weights trained by Veracity on research-licensed images (see each set and "
                "../shared/data/MANIFEST.tsv); encoder MIT (see clip-vit-b16-int8)",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(f"{len(items)} training images, {x.shape[0]} views (fakes x{VIEWS_FAKE}, StyleGAN faces "
               f"x{VIEWS_FAKE_FACES}, ImageNet x{VIEWS_REAL_SCENES}, UTKFace and video frames x{VIEWS_REAL}; "
               f"{FRAMES_PER_CLIP} frames of each train/video_real clip of at least {VIDEO_MIN_SIDE} px); seed {seed}; "
               f"classes and sources weighted equally. LFW gray faces left out (grayscale is real-only). "
               f"Took {time.perf_counter() - started:.0f} s."),
    )
    write_card(card, out)
    log(f"wrote {out}")
    return card
