"""Train the synthetic_speech logistic model on band-limited speech statistics.

    veracity train synthetic_speech --data ../shared/data

Training reads only ``train/audio_real`` and ``train/audio_fake`` (MANIFEST.tsv ``train`` rows),
decoded exactly as at inference (the media stage: any format -> 16 kHz mono). Confounds handled
(../shared/data/README.md): sample rate (features use 60-3400 Hz only, which every source has),
silence (only active frames count), level (normalised), and duration (real digits are ~0.4 s,
fake sentences several seconds: long files are seen as random crops of 0.3-3 s of active speech,
so short and long units exist in both classes). Sources weigh equally within a class.

The ridge strength is chosen by leave-one-fake-source-out on train; ``eval/audio`` is scored once
afterwards through the detector's own segment scoring, and its AUC and EER go in the card.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.config import Limits
from veracity.detectors.synthetic_speech import (
    CARD_NAME,
    HOP,
    MIN_ACTIVE_FRAMES,
    N_FEATURES,
    RATE,
    SpeechModel,
    SyntheticSpeechDetector,
    active_frames,
    frame_features,
    power_frames,
    score_samples,
)
from veracity.errors import ConfigError, VeracityError
from veracity.media.audio import load_audio
from veracity.media.probe import probe
from veracity.models.cards import ModelCard, params_sha256, write_card
from veracity.models.metrics import eer, roc_auc
from veracity.train.common import Progress, Roots, list_items, training_sets
from veracity.train.spectral import auc_table, balanced_weights, fit_logistic

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
TRAIN_DIRS = ("train/audio_real/", "train/audio_fake/")
EVAL_DIR = "eval/audio/"
CROP_RANGE_S = (0.3, 3.0)
MAX_CROPS = 6
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
FloatArray = npt.NDArray[np.float64]


def read_samples(path: Path) -> npt.NDArray[np.float32]:
    """16 kHz mono float32, through the same probe and decoder as an analysis."""
    info = probe(path, Limits())
    audio, _warnings = load_audio(info)
    if audio is None:
        raise ConfigError(f"{path}: no audio stream")
    return audio.samples


def training_units(samples: npt.NDArray[np.float32], rng: np.random.Generator) -> list[FloatArray]:
    """Feature vectors for one file: the whole active speech when it is short, else random
    contiguous crops of 0.3-3 s of active frames (count grows with duration, at most MAX_CROPS)."""
    power = power_frames(samples)
    keep = np.flatnonzero(active_frames(power))
    if keep.size < MIN_ACTIVE_FRAMES:
        return []
    lo, hi = (int(s * RATE / HOP) for s in CROP_RANGE_S)
    if keep.size <= lo * 2:
        return [frame_features(power[keep])]
    n = int(min(MAX_CROPS, max(1, keep.size // (hi // 2))))
    out = []
    for _ in range(n):
        length = int(rng.integers(max(MIN_ACTIVE_FRAMES, lo), min(hi, keep.size) + 1))
        start = int(rng.integers(0, keep.size - length + 1))
        out.append(frame_features(power[keep[start:start + length]]))
    return out


def fit_model(x: FloatArray, y: npt.NDArray[np.int64], groups: Sequence[str], l2: float) -> SpeechModel:
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    std = np.where(sd > 1e-9, sd, 1.0)
    coef, intercept = fit_logistic((x - mean) / std, y, balanced_weights(y, groups), l2=l2)
    return SpeechModel(version=SyntheticSpeechDetector.version, mean=mean, std=std, coef=coef, intercept=intercept)


def leave_source_out(x: FloatArray, y: npt.NDArray[np.int64], groups: Sequence[str], owner: npt.NDArray[np.int64],
                     l2: float, seed: int) -> dict[str, float]:
    """Each fake source left out of fitting and scored against a held-out quarter of the real files
    (file level: mean logit of its units)."""
    g = np.asarray(groups)
    rng = np.random.default_rng(seed)
    real_files = np.unique(owner[y == 0])
    held = np.isin(owner, rng.choice(real_files, size=max(1, real_files.size // 4), replace=False))
    out: dict[str, float] = {}
    for source in sorted(set(g[y == 1].tolist())):
        test_fake = (y == 1) & (g == source)
        fit = ~test_fake & ~held
        model = fit_model(x[fit], y[fit], g[fit].tolist(), l2)
        test = test_fake | held
        ids, labels = owner[test], y[test]
        logits = np.asarray([model.logit(f) for f in x[test]])
        uniq = np.unique(ids)
        out[source] = round(roc_auc(np.asarray([labels[ids == u][0] for u in uniq]),
                                    np.asarray([logits[ids == u].mean() for u in uniq])), 4)
    return out


def train_synthetic_speech(data_root: Roots, out: Path, *, seed: int = 0, progress: Progress | None = None,
                           measure_eval: bool = True) -> ModelCard:
    log = progress or (lambda _m: None)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    items = list_items(data_root, "train", TRAIN_DIRS, AUDIO_SUFFIXES, log)
    feats: list[FloatArray] = []
    owner: list[int] = []
    used: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for i, item in enumerate(items):
        try:
            units = training_units(read_samples(item.path), rng)
        except VeracityError as exc:
            log(f"skipped {item.rel}: {exc.message}")
            units = []
        if not units:
            skipped[item.group] += 1
            continue
        used[item.group] += 1
        feats.extend(units)
        owner.extend([i] * len(units))
        if (i + 1) % 100 == 0 or i + 1 == len(items):
            log(f"train features: {i + 1}/{len(items)} files, {len(feats)} units")
    x = np.vstack(feats)
    owner_arr = np.asarray(owner, dtype=np.int64)
    y = np.asarray([items[i].label for i in owner], dtype=np.int64)
    groups = [items[i].group for i in owner]
    if len(set(y.tolist())) < 2:
        raise ConfigError("training needs real and synthetic speech")

    cv = {str(l2): leave_source_out(x, y, groups, owner_arr, l2, seed) for l2 in L2_GRID}
    for k, v in cv.items():
        log(f"leave-one-fake-source-out, l2={k}: {v}")
    best = max(L2_GRID, key=lambda v: float(np.mean(list(cv[str(v)].values()))))
    model = fit_model(x, y, groups, best)
    log(f"chosen l2={best}")
    metrics: dict[str, Any] = {
        "train_leave_one_fake_source_out": {
            "auc_by_held_out_source": cv[str(best)], "l2": best,
            "l2_grid_mean_auc": {k: round(float(np.mean(list(v.values()))), 4) for k, v in cv.items()},
            "note": "train only: chooses the ridge strength"},
    }
    if measure_eval:
        ev = list_items(data_root, "eval", (EVAL_DIR,), AUDIO_SUFFIXES, log)
        labels, scores, groups_ev, details = [], [], [], []
        no_speech = 0
        for it in ev:
            scored = score_samples(model, read_samples(it.path))
            if scored is None:
                no_speech += 1
                continue
            labels.append(it.label)
            scores.append(scored[0])
            groups_ev.append(it.group)
            details.append(it.detail)
        table = auc_table(labels, scores, groups_ev, details)
        e, thr = eer(labels, scores)
        table["note"] = (f"eval/audio, never trained on, scored as the detector does (3 s segments of active "
                         f"speech, mean logit); {no_speech} files without speech left out")
        metrics["eval_audio"] = table
        log(f"eval/audio: AUC {roc_auc(labels, scores):.3f}, EER {e:.3f} at {thr:.3f} ({len(labels)} files)")

    params = model.params()
    params["l2"] = best
    training_data = training_sets(items, used)
    card = ModelCard(
        name=CARD_NAME,
        version=SyntheticSpeechDetector.version,
        kind="logistic",
        params=params,
        sha256=params_sha256(params),
        input=f"{N_FEATURES} statistics of the active speech frames of a 16 kHz mono signal (speech_features)",
        preprocessing=("decode -> 16 kHz mono -> STFT (512/160, Hann) -> keep frames within 35 dB of the loudest "
                       "-> 60-3400 Hz only -> level normalised -> log-mel (32) spread and delta spread over "
                       "time, linear cepstra (20) spread, flatness mean/std, energy dynamics; standardised"),
        training_data=training_data,
        metrics=metrics,
        license="weights trained by Veracity on research-licensed speech; see ../shared/data/MANIFEST.tsv",
        created=datetime.now(UTC).strftime("%Y-%m-%d"),
        notes=(f"{x.shape[0]} units from {sum(used.values())} files (seed {seed}); files without speech: "
               f"{dict(skipped)}. Long files as random 0.3-3 s crops of active speech (at most {MAX_CROPS}). "
               f"Took {time.perf_counter() - started:.0f} s."),
    )
    write_card(card, out)
    log(f"wrote {out}")
    return card
