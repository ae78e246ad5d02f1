"""Train the spectral detector's logistic model, then measure it on held-out images.

    python -m veracity.train.spectral --data ../shared/data \\
        --out src/veracity/models/data/spectral-v1.json

Training reads only ``train/`` rows of ``MANIFEST.tsv``: fakes from ``train/images_fake``, reals
from ``train/images_real`` and ``train/faces_real``. ``eval/image`` is scored afterwards and
never trained on.

The train set's classes differ in size more than in anything else (reals are 200-500 px JPEGs,
fakes 450-1024 px PNG/WebP), and resampling to the feature size leaves a size-dependent trace in
the spectrum. So: images smaller than the feature size are left out (they would be up-sampled:
"blurry means real"), and every image is seen at several common sizes (its centre square
down-scaled to 256-512 px) so the resampling ratio no longer tells the classes apart; natives above
512 px are not used. Sources are weighted equally within a class and the classes equally.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from veracity.detectors.spectral import (
    CARD_NAME,
    JPEG_QUALITY,
    N_FEATURES,
    SIZE,
    SpectralDetector,
    SpectralModel,
    centre_square,
    spectrum_features,
)
from veracity.errors import ConfigError
from veracity.models.cards import ModelCard, params_sha256, write_card
from veracity.models.metrics import eer, roc_auc
from veracity.train.common import Item, Progress, list_items, read_manifest, training_sets

FloatArray = npt.NDArray[np.float64]

TRAIN_DIRS = ("train/images_fake/", "train/images_real/", "train/faces_real/")
EVAL_DIR = "eval/image/"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIEW_SIDES = (256, 320, 400, 512)  # common sizes every training image is also seen at
MAX_NATIVE_SIDE = 512  # native views above this would make "large" mean "fake"
L2 = 1.0  # ridge on the standardised coefficients (intercept free)
VAL_FRACTION = 0.2


# -- data ----------------------------------------------------------------------------------------


def _items(
    rows: Sequence[dict[str, str]], data_root: Path, split: str, prefixes: Sequence[str], log: Progress
) -> list[Item]:
    out = list_items(data_root, split, prefixes, IMAGE_SUFFIXES, log, rows=rows, require=False)
    listed = {i.rel for i in out}
    for prefix in prefixes:
        folder = data_root / prefix
        if folder.is_dir():
            extra = [
                p
                for p in folder.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and p.relative_to(data_root).as_posix() not in listed
            ]
            if extra:
                log(f"warning: {len(extra)} files in {prefix} are not in MANIFEST.tsv; ignored")
    return sorted(out, key=lambda i: i.rel)


def read_rgb(path: Path) -> npt.NDArray[np.uint8]:
    """As the image loader does: EXIF-upright RGB (alpha and palettes flattened by Pillow)."""
    with Image.open(path) as im:
        im.load()
        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8))


def training_views(rgb: npt.NDArray[np.uint8]) -> list[tuple[int, FloatArray]]:
    """(side, features) for the native centre square when ``SIZE <= side <= MAX_NATIVE_SIDE``
    and for area-downscaled copies at each of ``VIEW_SIDES`` below the native side."""
    square = np.ascontiguousarray(centre_square(rgb))
    side = int(square.shape[0])
    if side < SIZE:
        return []
    out: list[tuple[int, FloatArray]] = []
    if side <= MAX_NATIVE_SIDE:
        out.append((side, spectrum_features(square)))
    for target in VIEW_SIDES:
        if target < 0.95 * side:
            small = cv2.resize(square, (target, target), interpolation=cv2.INTER_AREA)
            out.append((target, spectrum_features(np.asarray(small, dtype=np.uint8))))
    return out


# -- model ---------------------------------------------------------------------------------------


def balanced_weights(labels: npt.NDArray[np.int64], groups: Sequence[str]) -> FloatArray:
    """Each class weighs half; within a class each source weighs the same; mean weight 1."""
    g = np.asarray(groups)
    w = np.zeros(labels.shape[0], dtype=np.float64)
    for c in (0, 1):
        in_class = labels == c
        names = sorted(set(g[in_class].tolist()))
        for name in names:
            m = in_class & (g == name)
            w[m] = 1.0 / (2 * len(names) * int(m.sum()))
    return np.asarray(w * (w.size / w.sum()), dtype=np.float64)


def fit_logistic(
    x: FloatArray, y: npt.NDArray[np.int64], w: FloatArray, *, l2: float = L2, max_iter: int = 100, tol: float = 1e-9
) -> tuple[FloatArray, float]:
    """Weighted L2-regularised logistic regression by Newton's method (intercept unpenalised).

    Minimises ``sum_i w_i * logloss_i + l2/2 * |coef|^2``; converges in a handful of steps on
    standardised features.
    """
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(max_iter):
        z = np.clip(xb @ beta, -30.0, 30.0)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = xb.T @ (w * (p - y)) + reg * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.max(np.abs(step))) < tol:
            break
    return beta[:-1].copy(), float(beta[-1])


# -- measurement ---------------------------------------------------------------------------------


def auc_table(
    labels: Sequence[int], scores: Sequence[float], groups: Sequence[str], details: Sequence[str]
) -> dict[str, Any]:
    """Overall AUC/EER, AUC within each source having both classes, and each fake kind (and each
    real-only source) against the whole other class."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(groups)
    d = np.asarray(details)
    eer_value, eer_threshold = eer(y, s)
    table: dict[str, Any] = {
        "auc": round(roc_auc(y, s), 4),
        "eer": round(eer_value, 4),
        "eer_threshold": round(eer_threshold, 4),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
    }
    within: dict[str, Any] = {}
    for name in sorted(set(g.tolist())):
        m = g == name
        if 0 < int(y[m].sum()) < int(m.sum()):
            within[name] = {
                "auc": round(roc_auc(y[m], s[m]), 4),
                "n_real": int((y[m] == 0).sum()),
                "n_fake": int(y[m].sum()),
            }
    fakes: dict[str, Any] = {}
    for kind in sorted(set(d[y == 1].tolist())):
        m = (y == 0) | ((y == 1) & (d == kind))
        fakes[kind] = {"auc": round(roc_auc(y[m], s[m]), 4), "n_fake": int(((y == 1) & m).sum())}
    reals: dict[str, Any] = {}
    for name in sorted(set(g[y == 0].tolist())):
        m = (y == 1) | ((y == 0) & (g == name))
        reals[name] = {"auc": round(roc_auc(y[m], s[m]), 4), "n_real": int(((y == 0) & m).sum())}
    table["within_source"] = within
    table["fake_kind_vs_all_real"] = fakes
    table["real_source_vs_all_fake"] = reals
    return table


def detector_scores(items: Sequence[Item], model: SpectralModel, log: Progress) -> list[float]:
    """Each eval image through the detector as it runs: face stage, face squares, mean score."""
    from veracity.config import Options, Settings
    from veracity.detectors.base import AnalysisContext
    from veracity.faces import FaceMesher, find_faces
    from veracity.media.types import DecodedMedia, Frame, MediaInfo

    det = SpectralDetector(model=model)
    mesher = FaceMesher(max_faces=Options().max_faces)
    options, settings = Options(), Settings()
    out: list[float] = []
    n_faces = skipped = 0
    try:
        for item in items:
            rgb = read_rgb(item.path)
            info = MediaInfo(
                path=item.path,
                kind="image",
                container=item.path.suffix.lstrip("."),
                size_bytes=item.path.stat().st_size,
                sha256="",
                width=int(rgb.shape[1]),
                height=int(rgb.shape[0]),
            )
            media = DecodedMedia(info=info, frames=[Frame(t=0.0, rgb=rgb, role="still")])
            faces = find_faces(media, mesher, keep_crops=False)
            n_faces += faces.any
            result = det.run(AnalysisContext(media=media, faces=faces, options=options, settings=settings))
            if result.score is None:  # cannot happen for a decodable still; counted if it does
                skipped += 1
            out.append(0.5 if result.score is None else result.score)
    finally:
        mesher.close()
    log(
        f"detector path: faces found in {n_faces}/{len(items)} eval images"
        + (f"; {skipped} did not apply (scored 0.5)" if skipped else "")
    )
    return out


# -- training ------------------------------------------------------------------------------------


def train_spectral(
    data_root: Path, out: Path, *, seed: int = 0, progress: Progress | None = None, detector_eval: bool = True
) -> ModelCard:
    """Fit on ``train/``, validate on a random 20% of it, measure on ``eval/image``, write the
    card to ``out`` and return it. ``detector_eval`` also scores eval through the face stage."""
    log = progress or (lambda _m: None)
    started = time.perf_counter()
    rows = read_manifest(data_root)
    items = _items(rows, data_root, "train", TRAIN_DIRS, log)
    if not items:
        raise ConfigError(f"no training images under {data_root}")

    feats: list[FloatArray] = []
    view_label: list[int] = []
    view_group: list[str] = []
    view_item: list[int] = []
    view_side: list[int] = []
    native_side: list[int] = []
    used: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for i, item in enumerate(items):
        rgb = read_rgb(item.path)
        native_side.append(int(min(rgb.shape[:2])))
        views = training_views(rgb)
        if not views:
            skipped[item.group] += 1
        else:
            used[item.group] += 1
        for side, f in views:
            feats.append(f)
            view_label.append(item.label)
            view_group.append(item.group)
            view_item.append(i)
            view_side.append(side)
        if (i + 1) % 500 == 0 or i + 1 == len(items):
            log(f"train features: {i + 1}/{len(items)} images, {len(feats)} views")
    for group, n in sorted(skipped.items()):
        log(f"left out {n} images of {group}: smaller than {SIZE} px")

    x = np.vstack(feats)
    y = np.asarray(view_label, dtype=np.int64)
    item_ids = np.asarray(view_item)
    labels_all = np.asarray([it.label for it in items], dtype=np.int64)
    if len(set(y.tolist())) < 2:
        raise ConfigError("training needs both real and fake images of at least the feature size")

    # Hold out 20% of the images of each class (all views of an image on the same side).
    rng = np.random.default_rng(seed)
    used_items = np.unique(item_ids)
    held: set[int] = set()
    for c in (0, 1):
        pool = used_items[labels_all[used_items] == c]
        n_val = max(1, round(VAL_FRACTION * pool.size))
        held.update(rng.choice(pool, size=n_val, replace=False).tolist())
    val = np.isin(item_ids, sorted(held))
    fit_rows = ~val

    mean = x[fit_rows].mean(axis=0)
    std = x[fit_rows].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    w = balanced_weights(y[fit_rows], [g for g, k in zip(view_group, fit_rows, strict=True) if k])
    coef, intercept = fit_logistic((x[fit_rows] - mean) / std, y[fit_rows], w)
    model = SpectralModel(version=SpectralDetector.version, mean=mean, std=std, coef=coef, intercept=intercept)
    val_scores = np.asarray([model.predict(f) for f in x[val]])
    val_auc = roc_auc(y[val], val_scores)
    log(f"validation (random {VAL_FRACTION:.0%} of train images, {int(val.sum())} views): AUC {val_auc:.3f}")

    # How much image size alone told the classes apart, before and after matching view sizes.
    used_mask = np.isin(np.arange(len(items)), used_items)
    size_auc_raw = roc_auc(labels_all, np.asarray(native_side, dtype=np.float64))
    size_auc_views = roc_auc(y, np.asarray(view_side, dtype=np.float64))
    log(f"confound probe: native size alone gives train AUC {size_auc_raw:.3f}; view size alone {size_auc_views:.3f}")

    # Measure on eval/image, never trained on.
    ev = _items(rows, data_root, "eval", (EVAL_DIR,), log)
    metrics: dict[str, Any] = {
        "validation": {
            "auc": round(val_auc, 4),
            "n_views": int(val.sum()),
            "n_images_real": int(sum(labels_all[i] == 0 for i in held)),
            "n_images_fake": int(sum(labels_all[i] == 1 for i in held)),
            "note": "random 20% of the training images (stratified, seeded); same sources as "
            "training, so it measures fit, not generalisation",
        },
        "confound_probe": {
            "train_native_size_auc": round(size_auc_raw, 4),
            "train_view_size_auc": round(size_auc_views, 4),
            "note": "AUC of image side alone on the training labels: all images, then the views actually trained on",
        },
    }
    if ev:
        ev_labels = [it.label for it in ev]
        ev_groups = [it.group for it in ev]
        ev_details = [it.detail or "unspecified" for it in ev]
        centre = [model.predict(spectrum_features(read_rgb(it.path))) for it in ev]
        eval_metrics: dict[str, Any] = {
            "centre_square": auc_table(ev_labels, centre, ev_groups, ev_details),
        }
        log(f"eval/image, centre square: AUC {eval_metrics['centre_square']['auc']:.3f} ({len(ev)} images)")
        if detector_eval:
            det_scores = detector_scores(ev, model, log)
            eval_metrics["detector"] = auc_table(ev_labels, det_scores, ev_groups, ev_details)
            log(f"eval/image, detector path (face squares): AUC {eval_metrics['detector']['auc']:.3f}")
        metrics["eval_image"] = eval_metrics
        metrics["eval_image"]["note"] = (
            "eval/image real vs fake, never trained on. centre_square: the feature function on "
            "the whole image; detector: face squares when the face stage finds faces, else the "
            "centre square, as SpectralDetector.run does"
        )

    params = model.params()
    params["l2"] = L2
    training_data = training_sets(items, used)
    card = ModelCard(
        name=CARD_NAME,
        version=SpectralDetector.version,
        kind="logistic",
        params=params,
        sha256=params_sha256(params),
        input=f"{N_FEATURES} spectral features of one image region (spectrum_features)",
        preprocessing=(
            f"centre square -> {SIZE}x{SIZE} (INTER_AREA; cubic when up-sampling) -> JPEG "
            f"q{JPEG_QUALITY} round trip -> grayscale -> Hann window -> FFT power -> "
            f"azimuthal log mean in radial bins -> residuals to a 1/f line; standardised with "
            f"the stored mean/std"
        ),
        training_data=training_data,
        metrics=metrics,
        license="weights trained by Veracity on research-licensed images; see each set's "
        "license and ../shared/data/MANIFEST.tsv",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(
            f"Trained on {int(fit_rows.sum())} views of {len(used_items) - len(held)} images "
            f"(seed {seed}); views at {list(VIEW_SIDES)} px plus natives up to "
            f"{MAX_NATIVE_SIDE} px; left out as smaller than {SIZE} px: "
            f"{dict(sorted(skipped.items()))}. Sources weigh equally within a class. "
            f"{int(used_mask.sum())} of {len(items)} training images used. "
            f"Took {time.perf_counter() - started:.0f} s."
        ),
    )
    write_card(card, out)
    log(f"wrote {out}")
    return card


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the spectral detector's logistic model.")
    ap.add_argument(
        "--data", type=Path, default=Path("../shared/data"), help="the shared data folder (holds MANIFEST.tsv)"
    )
    ap.add_argument("--out", type=Path, required=True, help="where to write the model card JSON")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-detector-eval", action="store_true", help="skip scoring eval/image through the face stage")
    args = ap.parse_args(argv)
    card = train_spectral(
        args.data,
        args.out,
        seed=args.seed,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        detector_eval=not args.no_detector_eval,
    )
    ev = card.metrics.get("eval_image", {})
    summary = {"validation_auc": card.metrics["validation"]["auc"]}
    for path_name in ("centre_square", "detector"):
        if path_name in ev:
            summary[f"eval_image_{path_name}_auc"] = ev[path_name]["auc"]
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
